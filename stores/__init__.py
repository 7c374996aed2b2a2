"""Tokens at rest and their lifecycle: the encrypted installation store, OAuth states, and the token manager."""

from .crypto import DecryptionError, EncryptionKeyError, KeyRing, TokenCryptoError, generate_key
from .database import create_database_engine, default_database_url
from .installation_store import SQLAlchemyInstallationStore
from .keys import KeyCount, ReencryptReport, key_usage, reencrypt
from .oauth_state_store import SQLAlchemyOAuthStateStore
from .observe import NO_OBSERVER, Observer

__all__ = [
    "DecryptionError",
    "EncryptionKeyError",
    "KeyCount",
    "KeyRing",
    "NO_OBSERVER",
    "Observer",
    "ReencryptReport",
    "SQLAlchemyInstallationStore",
    "SQLAlchemyOAuthStateStore",
    "TokenCryptoError",
    "create_database_engine",
    "default_database_url",
    "generate_key",
    "key_usage",
    "reencrypt",
]
