"""`db check` on real databases: passes on a fresh upgrade, names a dropped index and an old revision."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import Engine

from app import cli
from stores.migrations import alembic_config, upgrade


def check(database_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", database_url)
    return CliRunner().invoke(cli, ["db", "check"])


def head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() or ""


def test_a_fresh_upgrade_passes_with_row_counts(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    upgrade(database_url)
    result = check(database_url, monkeypatch)
    assert result.exit_code == 0, result.output
    assert f"revision: {head()} (head {head()})" in result.stdout
    assert "delegate_user_tokens: 0 row(s)" in result.stdout and "schema ok" in result.stdout
    assert result.stderr == ""


def test_counts_tokens_by_state(database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from stores import SQLAlchemyInstallationStore, generate_key
    from tests.conftest import CLIENT_ID
    from tests.stores.test_crypto import save_two_users

    upgrade(database_url)
    save_two_users(SQLAlchemyInstallationStore(CLIENT_ID, engine, encryption_keys=generate_key()))
    result = check(database_url, monkeypatch)
    assert result.exit_code == 0, result.output
    assert "delegate_user_tokens: 2 row(s)" in result.stdout and "user tokens active: 2" in result.stdout


def test_a_dropped_index_is_named(database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    upgrade(database_url)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX delegate_user_tokens_expiry_idx"))
    result = check(database_url, monkeypatch)
    assert result.exit_code == 1
    assert (
        "problem: table delegate_user_tokens lacks index delegate_user_tokens_expiry_idx on (status, user_token_expires_at)"
        in result.stderr
    )
    assert "1 problem(s)" in result.stderr


def test_an_old_revision_and_its_missing_columns_are_named(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    upgrade(database_url, "0001")
    result = check(database_url, monkeypatch)
    assert result.exit_code == 1
    assert f"problem: schema at revision 0001, expected {head()}: run `python app.py db upgrade`" in result.stderr
    assert "problem: table delegate_user_tokens lacks column generation" in result.stderr


def test_an_empty_database_is_named(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    result = check(database_url, monkeypatch)
    assert result.exit_code == 1
    assert "no schema revision recorded" in result.stderr and "table delegate_user_tokens is missing" in result.stderr
