"""The command line: every subcommand has --help, and the key commands work end to end."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from app import cli
from stores import KeyRing, SQLAlchemyInstallationStore, generate_key
from tests.conftest import CLIENT_ID
from tests.stores.test_crypto import save_two_users


def all_command_paths(group=cli, prefix=()):  # type: ignore[no-untyped-def]
    yield prefix
    for name, command in getattr(group, "commands", {}).items():
        yield from all_command_paths(command, (*prefix, name))


@pytest.mark.parametrize("path", list(all_command_paths()), ids=lambda p: " ".join(p) or "delegate")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_keys_generate_prints_a_usable_key() -> None:
    result = CliRunner().invoke(cli, ["keys", "generate"])
    assert result.exit_code == 0
    assert KeyRing.from_string(result.output.strip()).key_ids


def test_keys_reencrypt_moves_every_token_to_the_first_key(
    engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_key, new_key = generate_key(), generate_key()
    store = SQLAlchemyInstallationStore(CLIENT_ID, engine, encryption_keys=old_key)
    store.create_tables()
    save_two_users(store)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SLACK_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("TOKEN_ENCRYPTION_KEYS", f"{new_key},{old_key}")
    result = CliRunner().invoke(cli, ["keys", "reencrypt"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 5 token field(s)" in result.output
    assert new_key not in result.output and old_key not in result.output
    only_new = SQLAlchemyInstallationStore(CLIENT_ID, engine, encryption_keys=new_key)
    assert only_new.find_installation(enterprise_id=None, team_id="T1", user_id="U1").user_token == "xoxp-user-U1"


def test_keys_reencrypt_without_keys_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    monkeypatch.delenv("TOKEN_ENCRYPTION_KEYS", raising=False)
    result = CliRunner().invoke(cli, ["keys", "reencrypt", "--client-id", CLIENT_ID])
    assert result.exit_code != 0
    assert "TOKEN_ENCRYPTION_KEYS is not set" in result.output and "keys generate" in result.output
    assert "Traceback" not in result.output


def test_prune_events_deletes_only_old_events(engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    from sqlalchemy import func, select, update

    from stores.schema import utcnow

    key = generate_key()
    store = SQLAlchemyInstallationStore(CLIENT_ID, engine, encryption_keys=key)
    store.create_tables()
    save_two_users(store)
    events = store.tables.token_events
    with engine.begin() as conn:
        total = conn.execute(select(func.count()).select_from(events)).scalar_one()
        first = conn.execute(select(func.min(events.c.id))).scalar_one()
        conn.execute(update(events).where(events.c.id == first).values(occurred_at=utcnow() - timedelta(days=200)))
    for name, value in {
        "DATABASE_URL": database_url, "SLACK_CLIENT_ID": CLIENT_ID, "SLACK_CLIENT_SECRET": "s", "TOKEN_ENCRYPTION_KEYS": key,
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["tokens", "prune-events", "--older-than-days", "90"])
    assert result.exit_code == 0, result.output
    assert "deleted 1 audit event(s)" in result.output
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == total - 1


def test_import_lists_the_client_id_and_the_keys_at_once(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for name in ("SLACK_CLIENT_ID", "TOKEN_ENCRYPTION_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    result = CliRunner().invoke(cli, ["db", "import-slack-sdk"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "SLACK_CLIENT_ID is not set" in result.output and "TOKEN_ENCRYPTION_KEYS is not set" in result.output


def test_token_commands_list_every_missing_credential_at_once(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for name in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "SLACK_SIGNING_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    monkeypatch.setenv("TOKEN_ENCRYPTION_KEYS", "short")
    result = CliRunner().invoke(cli, ["tokens", "refresher", "--once"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    for expected in ("SLACK_CLIENT_ID is not set", "SLACK_CLIENT_SECRET is not set", "TOKEN_ENCRYPTION_KEYS: key #1"):
        assert expected in result.output
