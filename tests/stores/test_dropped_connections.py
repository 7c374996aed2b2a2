"""Pooled PostgreSQL connections the server has ended (a restart, a failover, pg_terminate_backend): the next request
still authorizes, reads and saves, with no pre-ping round trip on every checkout.

The server really ends the pool's backends here (pg_terminate_backend from another session); nothing is mocked.
"""

from __future__ import annotations

import select
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from slack_bolt import BoltContext
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from stores import SQLAlchemyInstallationStore, create_database_engine
from stores.authorize import DelegateAuthorize
from stores.crypto import KeyRing
from stores.rotation import TokenKey, TokenManager
from tests.conftest import CLIENT_ID, _reset_postgres
from tests.stores.test_installation_store import workspace_install

pytestmark = pytest.mark.postgres


@pytest.fixture
def pooled(postgres_url: str) -> Iterator[tuple[Engine, Engine, str]]:
    """(the app's engine, an admin engine, the app's application_name) on the session's PostgreSQL schema."""
    _reset_postgres(postgres_url)
    name = f"delegate-drop-{uuid.uuid4().hex[:8]}"
    engine = create_database_engine(postgres_url, pool_size=3, connect_args={"application_name": name})
    admin = create_database_engine(postgres_url)
    yield engine, admin, name
    engine.dispose()
    admin.dispose()


@pytest.fixture
def app_store(pooled: tuple[Engine, Engine, str], keyring: KeyRing) -> SQLAlchemyInstallationStore:
    engine = pooled[0]
    store = SQLAlchemyInstallationStore(CLIENT_ID, engine, encryption_keys=keyring)
    store.create_tables()
    store.save(workspace_install("U1"))
    return store


def fill_pool(engine: Engine, count: int = 3) -> None:
    """Open `count` pooled connections at once, each having talked to the server, and return them to the pool."""
    held = [engine.raw_connection() for _ in range(count)]
    for connection in held:
        cursor = connection.cursor()
        cursor.execute("SELECT 1")
        cursor.close()
        connection.rollback()
    for connection in held:
        connection.close()


def end_backends(admin: Engine, application_name: str) -> int:
    """End every server session of the app's pool and wait until the server has dropped them; how many it ended."""
    with admin.connect() as conn:
        ended = conn.execute(
            text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :name"),
            {"name": application_name},
        ).scalar_one()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with admin.connect() as conn:
            left = conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"), {"name": application_name}
            ).scalar_one()
        if left == 0:
            return int(ended)
        time.sleep(0.02)
    raise AssertionError("the server did not end the pool's sessions")


def authorize(manager: TokenManager, user_id: str = "U1") -> Any:
    context = BoltContext()
    return DelegateAuthorize(manager)(context=context, enterprise_id=None, team_id="T1", user_id=user_id)


def test_every_read_and_write_works_after_the_server_ended_the_pooled_connections(
    pooled: tuple[Engine, Engine, str], app_store: SQLAlchemyInstallationStore
) -> None:
    engine, admin, name = pooled
    manager = TokenManager(app_store, client_secret="secret", background_refresh=False)
    steps = {
        "authorize (the request's raw read)": lambda: authorize(manager).user_token == "xoxp-user-U1",
        "find_installation": lambda: app_store.find_installation(enterprise_id=None, team_id="T1", user_id="U1") is not None,
        "find_bot": lambda: app_store.find_bot(enterprise_id=None, team_id="T1") is not None,
        "the token manager's read": lambda: manager.read(TokenKey.of(None, "T1", "U1")) is not None,
        "save": lambda: app_store.save(workspace_install("U2")) is None,
    }
    for step, run in steps.items():
        fill_pool(engine)
        assert end_backends(admin, name) >= 3, step
        assert run(), step
    manager.close()


def test_a_read_whose_connection_dies_after_checkout_is_run_again(
    pooled: tuple[Engine, Engine, str], app_store: SQLAlchemyInstallationStore
) -> None:
    """The server ends the connection after the pool handed it out healthy: the read is retried on another."""
    engine, admin, _ = pooled
    manager = TokenManager(app_store, client_secret="secret", background_refresh=False)
    armed = {"kills": 0, "on": False}

    @event.listens_for(engine, "checkout")
    def end_it_after_the_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if not armed["on"]:
            return
        armed["on"] = False
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": dbapi_connection.info.backend_pid})
        select.select([dbapi_connection.fileno()], [], [], 5)  # the server's goodbye has arrived
        armed["kills"] += 1

    reads = {
        "authorize (the request's raw read)": lambda: authorize(manager).user_token == "xoxp-user-U1",
        "find_installation": lambda: app_store.find_installation(enterprise_id=None, team_id="T1", user_id="U1") is not None,
        "the token manager's read": lambda: manager.read(TokenKey.of(None, "T1", "U1")) is not None,
    }
    for step, read in reads.items():
        fill_pool(engine, 1)
        armed["on"] = True
        assert read(), step
    assert armed["kills"] == len(reads)
    manager.close()
