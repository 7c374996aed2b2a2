"""AES-GCM encryption of token fields, bound to their row and field, under a rotating key ring.

Exceptions:
    TokenCryptoError
    ├── EncryptionKeyError   the key ring is missing or malformed
    └── DecryptionError      a ciphertext does not open under any key for the row and field it was read from
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "DecryptionError",
    "EncryptionKeyError",
    "FieldContext",
    "KeyRing",
    "TokenCryptoError",
    "generate_key",
]

ENV_NAME = "TOKEN_ENCRYPTION_KEYS"
_PREFIX = "enc1"
_NONCE_BYTES = 12
_KEY_ID_CHARS = 12
# How many leading characters of a ciphertext name its key: "enc1.<key id>." (lets SQL count ciphertexts per key).
SEALED_HEAD_LENGTH = len(_PREFIX) + 1 + _KEY_ID_CHARS + 1


class TokenCryptoError(Exception):
    """Base class for encryption errors; never carries key or token material."""


class EncryptionKeyError(TokenCryptoError):
    """The key ring is missing or one of its keys is malformed."""


class DecryptionError(TokenCryptoError):
    """A stored ciphertext cannot be opened for the row and field it was read from."""


@dataclass(frozen=True)
class FieldContext:
    """Where a ciphertext lives: it only opens in the same client, enterprise, team, user and field."""

    client_id: str
    enterprise_id: str
    team_id: str
    user_id: str
    field: str

    def associated_data(self) -> bytes:
        return _associated_data(self.client_id, self.enterprise_id, self.team_id, self.user_id, self.field)

    def describe(self) -> str:
        return (
            f"field {self.field!r} of client {self.client_id!r}, enterprise {self.enterprise_id or '-'!r}, "
            f"team {self.team_id or '-'!r}, user {self.user_id or '-'!r}"
        )


# Entries are per person and field (about 600 bytes each): 65,536 of them grew a worker by 9% over its first 10,000
# people (benchmarks/worker_memory.py); a few thousand keep the people active at once, and a miss costs a few µs.
@lru_cache(maxsize=4096)
def _associated_data(*parts: str) -> bytes:
    # Length-prefix every part so that no two different contexts serialize to the same bytes.
    return b"delegate-token-v1" + b"".join(len(p.encode()).to_bytes(2, "big") + p.encode() for p in parts)


def generate_key() -> str:
    """Return a new random 32-byte key in URL-safe base64, the format TOKEN_ENCRYPTION_KEYS expects."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"delegate-key-id" + key).hexdigest()[:_KEY_ID_CHARS]


def sealed_prefix(key_id: str) -> str:
    """The text every ciphertext sealed with the given key starts with."""
    return f"{_PREFIX}.{key_id}."


def key_id_of_head(head: str) -> str | None:
    """The key id named by the first SEALED_HEAD_LENGTH characters of a ciphertext, or None if it is not one of ours."""
    parts = head.split(".")
    if len(parts) != 3 or parts[0] != _PREFIX or len(parts[1]) != _KEY_ID_CHARS or parts[2]:
        return None
    return parts[1]


def _decode_key(text: str, position: int) -> bytes:
    stripped = text.strip()
    try:
        raw = base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError):
        raise EncryptionKeyError(
            f"{ENV_NAME}: key #{position} is not URL-safe base64 (make one with: python app.py keys generate)"
        ) from None
    if len(raw) != 32:
        raise EncryptionKeyError(f"{ENV_NAME}: key #{position} decodes to {len(raw)} bytes, expected 32")
    return raw


class KeyRing:
    """Ordered AES-256-GCM keys: the first encrypts, every key decrypts."""

    def __init__(self, keys: Sequence[bytes]):
        if not keys:
            raise EncryptionKeyError(f"no encryption key: set {ENV_NAME} (make one with: python app.py keys generate)")
        self._keys = [(_key_id(k), AESGCM(k)) for k in keys]
        self._by_id = dict(self._keys)

    @classmethod
    def from_string(cls, value: str | None) -> KeyRing:
        """Parse a comma-separated list of URL-safe base64 keys."""
        texts = [t for t in (value or "").split(",") if t.strip()]
        if not texts:
            raise EncryptionKeyError(f"no encryption key: set {ENV_NAME} (make one with: python app.py keys generate)")
        return cls([_decode_key(t, i + 1) for i, t in enumerate(texts)])

    @classmethod
    def from_keys(cls, keys: Iterable[str]) -> KeyRing:
        """Build a ring from key strings (URL-safe base64)."""
        return cls.from_string(",".join(keys))

    @classmethod
    def from_env(cls) -> KeyRing:
        """Build a ring from TOKEN_ENCRYPTION_KEYS."""
        return cls.from_string(os.environ.get(ENV_NAME))

    @property
    def primary_key_id(self) -> str:
        return self._keys[0][0]

    @property
    def key_ids(self) -> list[str]:
        return [kid for kid, _ in self._keys]

    def __repr__(self) -> str:
        return f"KeyRing(key_ids={self.key_ids!r})"

    def encrypt(self, plaintext: str | None, context: FieldContext) -> str | None:
        """Encrypt a token for the given row and field; None stays None."""
        if plaintext is None:
            return None
        kid, aead = self._keys[0]
        nonce = os.urandom(_NONCE_BYTES)
        sealed = aead.encrypt(nonce, plaintext.encode(), context.associated_data())
        return f"{_PREFIX}.{kid}.{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"

    def key_id_of(self, ciphertext: str) -> str:
        """Return the id of the key a ciphertext was sealed with."""
        parts = ciphertext.split(".")
        if len(parts) != 3 or parts[0] != _PREFIX:
            raise DecryptionError("stored value is not a Delegate ciphertext")
        return parts[1]

    def decrypt(self, ciphertext: str | None, context: FieldContext) -> str | None:
        """Open a ciphertext read from the given row and field; None stays None."""
        if ciphertext is None:
            return None
        kid = self.key_id_of(ciphertext)
        aead = self._by_id.get(kid)
        if aead is None:
            raise DecryptionError(
                f"cannot decrypt {context.describe()}: it was encrypted with key {kid}, which is not in {ENV_NAME}"
            )
        body = ciphertext.split(".")[2]
        try:
            blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            plaintext = aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], context.associated_data())
        except (InvalidTag, binascii.Error, ValueError):
            raise DecryptionError(
                f"cannot decrypt {context.describe()}: the ciphertext was not written for this row and field, "
                "or it was altered"
            ) from None
        return plaintext.decode()

    def needs_reencryption(self, ciphertext: str | None) -> bool:
        """Whether a stored ciphertext is sealed with a key other than the primary one."""
        return ciphertext is not None and self.key_id_of(ciphertext) != self.primary_key_id
