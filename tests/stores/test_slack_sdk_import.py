"""Importing slack_sdk's tables again (a resumed or repeated `db import-slack-sdk`) never brings back an older token."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from click.testing import CliRunner
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore as StockStore
from sqlalchemy.engine import Engine

from app import cli
from stores import SQLAlchemyInstallationStore, generate_key
from stores.rotation import TokenKey, TokenManager
from tests.conftest import CLIENT_ID
from tests.support.token_server import CLIENT_SECRET, TokenServerState, running_token_server

GRANTED = time.time() - 3600  # the person connected an hour ago, in the app still running on slack_sdk


@pytest.fixture
def token_server() -> Iterator[tuple[str, TokenServerState]]:
    with running_token_server(CLIENT_ID) as server:
        yield server


@pytest.fixture
def key(engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    key = generate_key()
    SQLAlchemyInstallationStore(CLIENT_ID, engine, encryption_keys=key).create_tables()
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SLACK_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("TOKEN_ENCRYPTION_KEYS", key)
    return key


@pytest.fixture
def stock(engine: Engine) -> StockStore:
    stock = StockStore(client_id=CLIENT_ID, engine=engine)
    stock.create_tables()
    return stock


def grant(access: str, refresh: str, *, installed_at: float = GRANTED, expires_in: int = 39600) -> Installation:
    return Installation(
        app_id="A1", team_id="T1", user_id="U1", bot_token="xoxb-bot", bot_id="B1", bot_user_id="UB",
        bot_scopes="commands", user_token=access, user_refresh_token=refresh, user_token_expires_in=expires_in,
        user_scopes="chat:write", installed_at=installed_at,
    )  # fmt: skip


def import_tables() -> str:
    result = CliRunner().invoke(cli, ["db", "import-slack-sdk"])
    assert result.exit_code == 0, result.output
    return result.output


def user_token(engine: Engine, key: str) -> str | None:
    found = SQLAlchemyInstallationStore(CLIENT_ID, engine, encryption_keys=key).find_installation(
        enterprise_id=None, team_id="T1", user_id="U1"
    )
    return None if found is None else found.user_token


def test_a_second_import_keeps_the_token_delegate_rotated_since(engine, key, stock, token_server) -> None:  # type: ignore[no-untyped-def]
    api_url, state = token_server
    access, refresh = state.issue("U1")
    stock.save(grant(access, refresh))
    assert "imported 1 installation row(s)" in import_tables()
    assert user_token(engine, key) == access

    store = SQLAlchemyInstallationStore(CLIENT_ID, engine, encryption_keys=key)
    manager = TokenManager(store, client_secret=CLIENT_SECRET, api_url=api_url, background_refresh=False)
    tk = TokenKey.of(None, "T1", "U1")
    rotated = manager.refresh(tk, manager.read(tk), force=True)  # type: ignore[arg-type]
    manager.close()
    assert rotated.refreshed_here and rotated.token != access

    output = import_tables()  # the run again: slack_sdk's row holds the spent refresh token
    assert "imported 0 installation row(s) and 0 bot row(s); 2 row(s) skipped" in output
    assert user_token(engine, key) == rotated.token
    fresh = store.find_installation(enterprise_id=None, team_id="T1", user_id="U1")
    assert fresh.user_refresh_token == rotated.refresh_token


def test_a_newer_slack_sdk_row_is_imported_again(engine, key, stock) -> None:  # type: ignore[no-untyped-def]
    stock.save(grant("xoxe.xoxp-1-first", "xoxe-1-first"))
    import_tables()
    stock.save(grant("xoxe.xoxp-1-rotated", "xoxe-1-rotated", expires_in=43200))  # slack_sdk's app rotated it since
    assert "imported 1 installation row(s)" in import_tables()
    assert user_token(engine, key) == "xoxe.xoxp-1-rotated"
    stock.save(grant("xoxe.xoxp-1-again", "xoxe-1-again", installed_at=time.time()))  # a new grant, later
    assert "imported 1 installation row(s)" in import_tables()
    assert user_token(engine, key) == "xoxe.xoxp-1-again"


def test_a_person_deleted_in_delegate_is_not_brought_back_by_an_older_grant(engine, key, stock) -> None:  # type: ignore[no-untyped-def]
    stock.save(grant("xoxe.xoxp-1-first", "xoxe-1-first"))
    import_tables()
    SQLAlchemyInstallationStore(CLIENT_ID, engine, encryption_keys=key).delete_user_tokens(
        enterprise_id=None, team_id="T1", user_id="U1"
    )  # the person disconnected
    import_tables()
    assert user_token(engine, key) is None
    stock.save(grant("xoxe.xoxp-1-later", "xoxe-1-later", installed_at=time.time() + timedelta(minutes=1).seconds))
    import_tables()
    assert user_token(engine, key) == "xoxe.xoxp-1-later"  # granted after the deletion: a connection of its own


@pytest.mark.postgres
def test_after_a_bulk_import_a_token_is_read_by_its_key(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Until a table is analyzed PostgreSQL has no statistics for it: with 100,000 people in one workspace it read a
    token by (client, enterprise, team, user) through the (client, enterprise, team, installed_at) index, filtering
    the whole workspace (33 ms a read instead of 0.06). The import analyzes what it wrote."""
    from sqlalchemy import insert, text

    from stores import create_database_engine

    engine = create_database_engine(postgres_url)
    try:
        key = generate_key()
        store = SQLAlchemyInstallationStore(CLIENT_ID, engine, encryption_keys=key)
        store.create_tables()
        stock = StockStore(client_id=CLIENT_ID, engine=engine)
        stock.create_tables()
        with engine.begin() as conn:
            conn.execute(
                insert(stock.installations),
                [
                    {"client_id": CLIENT_ID, "app_id": "A1", "team_id": "T1", "user_id": f"U{n:05d}",
                     "is_enterprise_install": False, "user_token": f"xoxp-{n}", "user_scopes": "chat:write"}  # fmt: skip
                    for n in range(2000)
                ],
            )
        monkeypatch.setenv("DATABASE_URL", postgres_url)
        monkeypatch.setenv("SLACK_CLIENT_ID", CLIENT_ID)
        monkeypatch.setenv("TOKEN_ENCRYPTION_KEYS", key)
        assert "imported 2000 installation row(s)" in import_tables()
        table = store.installations.name
        with engine.connect() as conn:
            analyzed = conn.execute(
                text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = :t AND schemaname = current_schema()"),
                {"t": table},
            ).scalar_one()
            plan = conn.execute(
                text(f"EXPLAIN SELECT id FROM {table} WHERE client_id = :c AND enterprise_id = '' AND team_id = 'T1' "
                     "AND user_id = 'U01000'"),  # fmt: skip
                {"c": CLIENT_ID},
            ).scalars().all()
        assert analyzed is not None, "the import analyzed the table it wrote"
        assert f"{table}_key" in plan[0], plan
    finally:
        engine.dispose()
