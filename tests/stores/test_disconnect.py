"""Disconnect against the sandbox's auth.revoke on real databases: the truth when Slack fails, and no lost race."""

from __future__ import annotations

import logging
import multiprocessing
import random
import threading
import time
import traceback
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from slack_bolt import BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store import Installation
from sqlalchemy import select
from sqlalchemy.engine import Engine

from listeners.events.tokens_revoked import tokens_revoked_callback
from sandbox.server import SandboxServer
from sandbox.testing import running_sandbox
from stores import KeyRing, SQLAlchemyInstallationStore, create_database_engine, generate_key
from stores.disconnect import DisconnectResult, disconnect
from stores.rotation import TokenManager
from stores.schema import utcnow

ALICE, BOB = "U0ALICE001", "U0BOB00002"
TEAM = "T0SANDBOX1"


@pytest.fixture
def slack() -> Iterator[SandboxServer]:
    with running_sandbox() as server:
        yield server


@pytest.fixture
def sandbox_store(engine: Engine, keyring: KeyRing, slack: SandboxServer) -> SQLAlchemyInstallationStore:
    store = SQLAlchemyInstallationStore(slack.config.client_id, engine, encryption_keys=keyring)
    store.create_tables()
    return store


def token_manager(store: SQLAlchemyInstallationStore, slack: SandboxServer, api_url: str | None = None) -> TokenManager:
    return TokenManager(
        store,
        client_secret=slack.config.client_secret,
        api_url=api_url or slack.api_url,
        background_refresh=False,
        wait_timeout=timedelta(seconds=10),
        http_timeout=5,
    )


@pytest.fixture
def manager(sandbox_store: SQLAlchemyInstallationStore, slack: SandboxServer) -> Iterator[TokenManager]:
    manager = token_manager(sandbox_store, slack)
    yield manager
    manager.close()


def connect(store: SQLAlchemyInstallationStore, slack: SandboxServer, user_id: str = ALICE) -> str:
    """Connect through the sandbox as the OAuth flow would; returns the person's access token."""
    answer = slack.install(user_id, scope="commands", user_scope="chat:write")
    person = answer["authed_user"]
    store.save(
        Installation(
            app_id=answer["app_id"],
            team_id=answer["team"]["id"],
            bot_token=answer.get("access_token"),
            bot_user_id=answer.get("bot_user_id"),
            user_id=user_id,
            user_token=person["access_token"],
            user_refresh_token=person.get("refresh_token"),
            user_token_expires_in=person.get("expires_in"),
            user_scopes=person["scope"],
        )
    )
    return str(person["access_token"])


def live_at_slack(slack: SandboxServer, token: str) -> bool:
    try:
        WebClient(token=token, base_url=slack.api_url, timeout=5).auth_test()
        return True
    except SlackApiError:
        return False


def stored(store: SQLAlchemyInstallationStore, user_id: str = ALICE) -> Installation | None:
    return store.find_installation(enterprise_id=None, team_id=TEAM, user_id=user_id)


def deletion_details(store: SQLAlchemyInstallationStore, user_id: str = ALICE) -> list[str | None]:
    e = store.tables.token_events.c
    with store.engine.connect() as conn:
        query = select(e.detail).where(e.user_id == user_id, e.event == "deleted").order_by(e.id)
        return list(conn.execute(query).scalars())


def revocations(store: SQLAlchemyInstallationStore, user_id: str = ALICE) -> list[str | None]:
    e = store.tables.token_events.c
    with store.engine.connect() as conn:
        query = select(e.detail).where(e.user_id == user_id, e.event == "revoked").order_by(e.id)
        return list(conn.execute(query).scalars())


def test_disconnect_revokes_at_slack_and_deletes_the_copy(sandbox_store, manager, slack) -> None:  # type: ignore[no-untyped-def]
    token = connect(sandbox_store, slack)
    result = disconnect(manager, enterprise_id=None, team_id=TEAM, user_id=ALICE)
    assert result == DisconnectResult(had_connection=True, revoked_at_slack=True, slack_error=None, deleted=True)
    assert not result.grant_may_be_live
    assert stored(sandbox_store) is None and not live_at_slack(slack, token)
    assert deletion_details(sandbox_store) == ["disconnect (auth.revoke confirmed)"]


def test_a_second_disconnect_has_nothing_to_disconnect_and_does_not_fail(sandbox_store, manager, slack) -> None:  # type: ignore[no-untyped-def]
    connect(sandbox_store, slack)
    disconnect(manager, enterprise_id=None, team_id=TEAM, user_id=ALICE)
    again = disconnect(manager, enterprise_id=None, team_id=TEAM, user_id=ALICE)
    assert again == DisconnectResult(had_connection=False, revoked_at_slack=False, slack_error=None, deleted=True)
    assert not again.grant_may_be_live


def test_when_auth_revoke_fails_the_copy_is_deleted_and_the_result_says_slack_did_not_confirm(  # type: ignore[no-untyped-def]
    sandbox_store, manager, slack, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    token = connect(sandbox_store, slack)
    slack.add_fault("auth.revoke", status=500)
    result = disconnect(manager, enterprise_id=None, team_id=TEAM, user_id=ALICE)
    assert result == DisconnectResult(
        had_connection=True, revoked_at_slack=False, slack_error="http_500 internal_error", deleted=True
    )
    assert result.grant_may_be_live
    assert stored(sandbox_store) is None
    assert live_at_slack(slack, token)  # the truth: Slack still honours the grant
    assert deletion_details(sandbox_store) == ["disconnect (auth.revoke not confirmed: http_500 internal_error)"]
    assert token not in caplog.text and token not in repr(result)


def test_invalid_auth_from_auth_revoke_is_not_a_confirmation(sandbox_store, manager, slack) -> None:  # type: ignore[no-untyped-def]
    connect(sandbox_store, slack)
    slack.add_fault("auth.revoke", error="invalid_auth")
    result = disconnect(manager, enterprise_id=None, team_id=TEAM, user_id=ALICE)
    assert (result.revoked_at_slack, result.slack_error, result.deleted) == (False, "invalid_auth", True)


def test_slack_unreachable_is_a_transport_failure_said_by_name(sandbox_store, slack, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    token = connect(sandbox_store, slack)
    manager = token_manager(sandbox_store, slack, api_url="http://127.0.0.1:9/api/")  # nothing listens on port 9
    result = disconnect(manager, enterprise_id=None, team_id=TEAM, user_id=ALICE)
    assert not result.revoked_at_slack and (result.slack_error or "").startswith("connection_error:")
    assert result.deleted and stored(sandbox_store) is None
    assert token not in caplog.text


def test_a_token_slack_already_revoked_is_a_successful_disconnect(sandbox_store, manager, slack) -> None:  # type: ignore[no-untyped-def]
    connect(sandbox_store, slack)
    slack.revoke_tokens(ALICE)  # Slack revoked it; the event has not reached Delegate
    result = disconnect(manager, enterprise_id=None, team_id=TEAM, user_id=ALICE)
    assert (result.revoked_at_slack, result.slack_error, result.deleted) == (True, None, True)


def test_an_expired_token_is_refreshed_once_so_the_live_grant_is_revoked(sandbox_store, manager, slack) -> None:  # type: ignore[no-untyped-def]
    connect(sandbox_store, slack)
    slack.expire_tokens(ALICE, "user")
    result = disconnect(manager, enterprise_id=None, team_id=TEAM, user_id=ALICE)
    assert (result.revoked_at_slack, result.slack_error) == (True, None)
    assert [token["status"] for token in slack.tokens(ALICE) if token["kind"] == "user"].count("active") == 0


def test_a_token_delegate_knows_expired_is_refreshed_before_auth_revoke(sandbox_store, manager, slack) -> None:  # type: ignore[no-untyped-def]
    connect(sandbox_store, slack)
    slack.advance_clock(13 * 3600)  # expired at Slack and, on the same clock, in Delegate's row
    manager.clock = lambda: utcnow() + timedelta(hours=13)
    result = disconnect(manager, enterprise_id=None, team_id=TEAM, user_id=ALICE)
    assert (result.revoked_at_slack, result.slack_error, result.deleted) == (True, None, True)
    counters = slack.counters()
    assert counters["api_calls"].get("auth.revoke") == 1  # never sent with the token known to be dead
    assert counters["refreshes_by_user"].get(ALICE) == 1
    assert [token["status"] for token in slack.tokens(ALICE) if token["kind"] == "user"].count("active") == 0


def test_a_reconnect_during_auth_revoke_is_kept(sandbox_store, manager, slack) -> None:  # type: ignore[no-untyped-def]
    connect(sandbox_store, slack)
    slack.add_fault("auth.revoke", latency_ms=600)
    reconnected: list[str] = []
    worker = threading.Thread(target=lambda: (time.sleep(0.2), reconnected.append(connect(sandbox_store, slack))))
    worker.start()
    result = disconnect(manager, enterprise_id=None, team_id=TEAM, user_id=ALICE)
    worker.join()
    found = stored(sandbox_store)
    assert result.revoked_at_slack and found is not None and found.user_token == reconnected[0]


# -- the race of the finding: a disconnect and the tokens_revoked its own auth.revoke causes -------------------------


def _race_worker(
    role: str, url: str, keys: str, client_id: str, secret: str, api_url: str, rounds: int, barrier: Any, out: Any
) -> None:
    """One OS process of the race: `disconnect` runs the disconnect, `event` the tokens_revoked listener."""
    engine = create_database_engine(url)
    store = SQLAlchemyInstallationStore(client_id, engine, encryption_keys=keys)
    manager = TokenManager(store, client_secret=secret, api_url=api_url, background_refresh=False)
    delegate = SimpleNamespace(manager=manager, clock=manager.clock)  # what the listener reaches as context["delegate"]
    context = BoltContext({"enterprise_id": None, "team_id": TEAM, "is_enterprise_install": False, "delegate": delegate})
    event = {"type": "tokens_revoked", "tokens": {"oauth": [ALICE], "bot": []}}
    failures: list[str] = []
    confirmed = 0
    logging.getLogger("listeners.events.tokens_revoked").addHandler(_FailureCollector(failures))
    try:
        for _ in range(rounds):
            barrier.wait(60)
            try:
                if role == "disconnect":
                    result = disconnect(manager, enterprise_id=None, team_id=TEAM, user_id=ALICE)
                    if not result.deleted or (result.had_connection and not result.revoked_at_slack):
                        failures.append(f"unexpected result {result}")
                    confirmed += result.had_connection  # else nothing was left to disconnect
                else:
                    time.sleep(random.uniform(0, 0.008))  # spread over the disconnect's read, revoke and delete
                    body = {"event": event, "event_time": int(time.time())}
                    tokens_revoked_callback(body=body, event=event, context=context, store=store)
            except Exception:  # noqa: BLE001 - reported to the test, which fails on any
                failures.append(traceback.format_exc(limit=3))
            barrier.wait(60)
    finally:
        out.put((role, confirmed, failures))
        manager.close()
        engine.dispose()


class _FailureCollector(logging.Handler):
    def __init__(self, failures: list[str]):
        super().__init__(logging.ERROR)
        self.failures = failures

    def emit(self, record: logging.LogRecord) -> None:
        self.failures.append(f"{record.getMessage()} {record.exc_info[1] if record.exc_info else ''}")


@pytest.mark.slow
def test_disconnect_and_tokens_revoked_race_from_two_processes_without_locks_or_leftovers(  # type: ignore[no-untyped-def]
    engine, slack, database_url
) -> None:
    rounds = 200
    keys = generate_key()
    sandbox_store = SQLAlchemyInstallationStore(slack.config.client_id, engine, encryption_keys=keys)
    sandbox_store.create_tables()
    spawn = multiprocessing.get_context("spawn")
    barrier, out = spawn.Barrier(3), spawn.Queue()
    args = (database_url, keys, slack.config.client_id, slack.config.client_secret, slack.api_url, rounds, barrier, out)
    workers = [spawn.Process(target=_race_worker, args=(role, *args)) for role in ("disconnect", "event")]
    for worker in workers:
        worker.start()
    leftovers = 0
    try:
        for _ in range(rounds):
            connect(sandbox_store, slack)
            barrier.wait(60)  # both workers go at once
            barrier.wait(60)  # both are done
            leftovers += stored(sandbox_store) is not None
        reports = {role: (confirmed, failures) for role, confirmed, failures in (out.get(timeout=60) for _ in workers)}
    finally:
        for worker in workers:
            worker.join(30)
    assert reports["disconnect"][1] == [] and reports["event"][1] == []  # no "database is locked", no error
    assert 0 < reports["disconnect"][0] <= rounds  # disconnects that found a row: Slack confirmed, copy gone
    assert leftovers == 0
    assert len(deletion_details(sandbox_store)) == rounds  # exactly one deletion per grant: the disconnect's
    # The event marks the row revoked when it comes first (the disconnect then deletes it), and finds nothing when it
    # comes after: both happened, so the race was really run.
    assert 0 < len(revocations(sandbox_store)) < rounds
