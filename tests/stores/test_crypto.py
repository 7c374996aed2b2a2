"""Tokens are encrypted at rest, bound to their row and field, under a key ring that rotates."""

from __future__ import annotations

import glob
from pathlib import Path

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.engine import Engine

from stores import DecryptionError, EncryptionKeyError, KeyRing, SQLAlchemyInstallationStore, generate_key
from stores.crypto import FieldContext
from tests.conftest import CLIENT_ID
from tests.stores.test_installation_store import workspace_install

SECRETS = ("xoxb-bot-T1", "xoxp-user-U1", "xoxp-user-U2", "xoxe-1-refresh-U1", "https://hooks.slack.com/services/T1/B1/x")


def save_two_users(store: SQLAlchemyInstallationStore) -> None:
    first = workspace_install()
    first.user_refresh_token = "xoxe-1-refresh-U1"
    first.incoming_webhook_url = "https://hooks.slack.com/services/T1/B1/x"
    store.save(first)
    store.save(workspace_install("U2", bot=False, installed_at=first.installed_at + 1))


def test_no_token_text_in_the_database(store: SQLAlchemyInstallationStore, engine: Engine, database_url: str) -> None:
    save_two_users(store)
    if engine.dialect.name == "sqlite":
        engine.dispose()  # checkpoint-free: read the main file and the write-ahead log both
        raw = b"".join(Path(path).read_bytes() for path in glob.glob(database_url.removeprefix("sqlite:///") + "*"))
        assert b"xoxp" not in raw and b"xoxb" not in raw and b"xoxe" not in raw
    else:
        with engine.connect() as conn:
            dump = ""
            for table in (store.bots, store.installations, store.tables.token_events):
                dump += repr(conn.execute(text(f'SELECT * FROM "{table.name}"')).all())
        for secret in SECRETS:
            assert secret not in dump
        assert "xox" not in dump
    assert store.find_installation(enterprise_id=None, team_id="T1", user_id="U1").user_token == "xoxp-user-U1"


def test_ciphertext_copied_into_another_users_row_fails_to_decrypt(
    store: SQLAlchemyInstallationStore, engine: Engine
) -> None:
    save_two_users(store)
    u = store.installations.c
    with engine.begin() as conn:
        stolen = conn.execute(select(u.user_token_enc).where(u.user_id == "U1")).scalar_one()
        conn.execute(update(store.installations).where(u.user_id == "U2").values(user_token_enc=stolen))
    with pytest.raises(DecryptionError) as caught:
        store.find_installation(enterprise_id=None, team_id="T1", user_id="U2")
    message = str(caught.value)
    assert "user_token_enc" in message and "'U2'" in message
    assert "xoxp" not in message


def test_ciphertext_moved_to_another_field_fails(store: SQLAlchemyInstallationStore, engine: Engine) -> None:
    save_two_users(store)
    u = store.installations.c
    with engine.begin() as conn:
        access = conn.execute(select(u.user_token_enc).where(u.user_id == "U1")).scalar_one()
        conn.execute(update(store.installations).where(u.user_id == "U1").values(user_refresh_token_enc=access))
    found = store.find_installation(enterprise_id=None, team_id="T1", user_id="U1")
    assert found is not None
    with pytest.raises(DecryptionError):  # the refresh token is opened when read, and refuses to open there
        found.user_refresh_token  # noqa: B018


def test_key_rotation_reencrypts_every_row_and_the_old_key_can_go(engine: Engine) -> None:
    old_key, new_key = generate_key(), generate_key()
    old_store = SQLAlchemyInstallationStore(CLIENT_ID, engine, encryption_keys=old_key)
    old_store.create_tables()
    save_two_users(old_store)

    only_new = SQLAlchemyInstallationStore(CLIENT_ID, engine, encryption_keys=new_key)
    with pytest.raises(DecryptionError, match="not in TOKEN_ENCRYPTION_KEYS"):
        only_new.find_bot(enterprise_id=None, team_id="T1")

    rotating = SQLAlchemyInstallationStore(CLIENT_ID, engine, encryption_keys=[new_key, old_key])
    assert rotating.find_bot(enterprise_id=None, team_id="T1").bot_token == "xoxb-bot-T1"
    # bot token; U1's token, refresh token and webhook URL; U2's token
    assert rotating.reencrypt_all() == 5
    assert rotating.reencrypt_all() == 0

    assert only_new.find_bot(enterprise_id=None, team_id="T1").bot_token == "xoxb-bot-T1"
    first = only_new.find_installation(enterprise_id=None, team_id="T1", user_id="U1")
    assert (first.user_token, first.user_refresh_token, first.incoming_webhook_url) == (
        "xoxp-user-U1",
        "xoxe-1-refresh-U1",
        "https://hooks.slack.com/services/T1/B1/x",
    )
    assert only_new.find_installation(enterprise_id=None, team_id="T1", user_id="U2").user_token == "xoxp-user-U2"


def test_missing_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, engine: Engine) -> None:
    monkeypatch.delenv("TOKEN_ENCRYPTION_KEYS", raising=False)
    with pytest.raises(EncryptionKeyError, match="set TOKEN_ENCRYPTION_KEYS"):
        SQLAlchemyInstallationStore(CLIENT_ID, engine)
    key = generate_key()
    monkeypatch.setenv("TOKEN_ENCRYPTION_KEYS", key)
    assert SQLAlchemyInstallationStore(CLIENT_ID, engine).keyring.key_ids == KeyRing.from_string(key).key_ids


@pytest.mark.parametrize("bad", ["not base64!!", "c2hvcnQ=", ","])
def test_malformed_keys_are_rejected_without_echoing_them(bad: str) -> None:
    with pytest.raises(EncryptionKeyError) as caught:
        KeyRing.from_string(bad)
    assert bad.strip(",") == "" or bad not in str(caught.value)


def test_repr_shows_no_key_material() -> None:
    key = generate_key()
    ring = KeyRing.from_string(key)
    assert key not in repr(ring)
    context = FieldContext("c", "", "T1", "U1", "user_token_enc")
    sealed = ring.encrypt("xoxp-secret", context)
    assert "xoxp" not in sealed and ring.decrypt(sealed, context) == "xoxp-secret"
    assert ring.encrypt("xoxp-secret", context) != sealed  # fresh nonce each time
