"""The token manager: fresh tokens, single-flight refresh across threads and processes, and Slack's errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store import Bot, Installation
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from stores import SQLAlchemyInstallationStore
from stores.errors import (
    MissingScope,
    NeedsReauth,
    NotConnected,
    RefreshTimeout,
    SlackUnavailable,
    TokenManagerConfigError,
    TokenRevoked,
)
from stores.rotation import TokenKey, TokenManager
from stores.schema import utcnow
from stores.user_client import UserClient
from tests.conftest import CLIENT_ID
from tests.support.concurrency import in_threads
from tests.support.token_server import CLIENT_SECRET, TokenServerState, running_token_server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def token_server() -> Iterator[tuple[str, TokenServerState]]:
    with running_token_server(CLIENT_ID) as server:
        yield server


@pytest.fixture
def manager(store: SQLAlchemyInstallationStore, token_server: tuple[str, TokenServerState]) -> Iterator[TokenManager]:
    api_url, _ = token_server
    manager = TokenManager(
        store, client_secret=CLIENT_SECRET, api_url=api_url, background_refresh=False, wait_timeout=timedelta(seconds=5)
    )
    yield manager
    manager.close()


def connect(
    store: SQLAlchemyInstallationStore,
    state: TokenServerState,
    user_id: str = "U1",
    *,
    stored_expires_in: int = 43200,
    server_expires_in: int | None = None,
    lifetime: int | None = 43200,
) -> tuple[str, str]:
    """Install for a user as the OAuth flow would: tokens minted by the server, saved in the store."""
    access, refresh = state.issue(
        user_id, expires_in=server_expires_in if server_expires_in is not None else stored_expires_in
    )
    state.access_tokens["xoxb-static-bot"] = ("UBOT", time.time() + 86400)
    store.save(
        Installation(
            app_id="A1",
            team_id="T1",
            team_name="Acme",
            bot_token="xoxb-static-bot",
            bot_id="B1",
            bot_user_id="UBOT",
            bot_scopes="commands",
            user_id=user_id,
            user_token=access,
            user_refresh_token=refresh,
            user_token_expires_in=stored_expires_in,
            user_scopes="chat:write,users.profile:write",
            token_type="bot",
        )
    )
    # Slack issued it for 12 hours; stored_expires_in says how much of that is left now.
    with store.engine.begin() as conn:
        mine = store.installations.c.user_id == user_id
        conn.execute(update(store.installations).where(mine).values(lifetime_seconds=lifetime))
    return access, refresh


def events(engine: Engine, store: SQLAlchemyInstallationStore, user_id: str = "U1") -> list[tuple[str, str | None]]:
    e = store.tables.token_events.c
    with engine.connect() as conn:
        rows = conn.execute(select(e.event, e.detail).where(e.user_id == user_id).order_by(e.id)).all()
    return [(r.event, r.detail) for r in rows]


def user_row(engine: Engine, store: SQLAlchemyInstallationStore, user_id: str = "U1"):  # type: ignore[no-untyped-def]
    u = store.installations.c
    with engine.connect() as conn:
        return conn.execute(select(store.installations).where(u.user_id == user_id)).one()


def test_valid_token_is_returned_without_calling_slack(store, manager, token_server) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    access, _ = connect(store, state)
    fresh = manager.fresh_user_token(enterprise_id=None, team_id="T1", user_id="U1")
    assert fresh.token == access
    assert "xox" not in repr(fresh)
    assert state.refresh_calls == 0


def test_expiring_token_is_refreshed_and_committed_before_use(store, manager, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    old_access, old_refresh = connect(store, state, stored_expires_in=60)
    fresh = manager.fresh_user_token(enterprise_id=None, team_id="T1", user_id="U1")
    assert fresh.token != old_access and fresh.token in state.access_tokens
    assert state.refresh_calls == 1
    stored = store.find_installation(enterprise_id=None, team_id="T1", user_id="U1")
    assert stored.user_token == fresh.token
    assert stored.user_refresh_token not in (None, old_refresh)
    assert stored.user_token_expires_at > time.time() + 43000
    row = user_row(engine, store)
    assert row.last_refresh_outcome == "refreshed" and row.last_refreshed_at is not None and row.refresh_owner is None
    assert events(engine, store)[-1] == ("refreshed", None)


def test_token_within_margin_is_refreshed_in_the_background(store, token_server) -> None:  # type: ignore[no-untyped-def]
    api_url, state = token_server
    old_access, _ = connect(store, state, stored_expires_in=3600)  # within the 2 h margin, far from expiry
    manager = TokenManager(store, client_secret=CLIENT_SECRET, api_url=api_url, background_refresh=True)
    assert manager.fresh_user_token(enterprise_id=None, team_id="T1", user_id="U1").token == old_access
    manager.close()  # waits for the background refresh
    assert state.refresh_calls == 1
    assert store.find_installation(enterprise_id=None, team_id="T1", user_id="U1").user_token != old_access


def test_threads_of_one_process_share_one_refresh(store, manager, token_server) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    connect(store, state, stored_expires_in=-10)
    state.latency = 0.3
    results = in_threads(lambda: manager.fresh_user_token(enterprise_id=None, team_id="T1", user_id="U1").token, 16)
    assert state.refresh_calls == 1 and state.rejected_refreshes == 0
    assert len(results) == 16 and len(set(results)) == 1


def test_waiting_for_a_live_holder_is_bounded(store, token_server) -> None:  # type: ignore[no-untyped-def]
    api_url, state = token_server
    connect(store, state, stored_expires_in=-10)
    other = TokenManager(store, client_secret=CLIENT_SECRET, api_url=api_url, background_refresh=False)
    manager = TokenManager(
        store, client_secret=CLIENT_SECRET, api_url=api_url, background_refresh=False, wait_timeout=timedelta(seconds=0.5)
    )
    with other.locks.hold(TokenKey.of(None, "T1", "U1"), wait=1) as held:  # another worker holds the lock
        assert held is not None
        started = time.monotonic()
        with pytest.raises(RefreshTimeout, match="another worker"):
            manager.fresh_user_token(enterprise_id=None, team_id="T1", user_id="U1")
        assert time.monotonic() - started < 3
    assert state.refresh_calls == 0
    # once it lets go, the next caller refreshes
    assert manager.fresh_user_token(enterprise_id=None, team_id="T1", user_id="U1").token in state.access_tokens
    assert state.refresh_calls == 1


def test_rejected_refresh_token_means_needs_reauth_and_no_loop(store, manager, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    _, refresh = connect(store, state, stored_expires_in=-10)
    state.refresh_tokens.pop(refresh)  # Slack no longer knows it
    with pytest.raises(NeedsReauth) as caught:
        manager.fresh_user_token(enterprise_id=None, team_id="T1", user_id="U1")
    assert caught.value.reason == "invalid_refresh_token"
    assert "xox" not in str(caught.value)
    row = user_row(engine, store)
    assert (row.status, row.status_reason, row.user_refresh_token_enc) == ("needs_reauth", "invalid_refresh_token", None)
    assert ("needs_reauth", "invalid_refresh_token") in events(engine, store)
    for _ in range(3):
        with pytest.raises(NeedsReauth):
            manager.fresh_user_token(enterprise_id=None, team_id="T1", user_id="U1")
    assert state.refresh_calls == 1  # asked Slack once, never again
    # Bolt, reading the store, is not handed the dead refresh token either
    assert store.find_installation(enterprise_id=None, team_id="T1", user_id="U1").user_refresh_token is None


def test_lost_refresh_response_ends_in_needs_reauth_without_crash(store, manager, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    connect(store, state, stored_expires_in=-10)
    state.faults = ["drop"]  # Slack rotates, the connection drops before the answer
    with pytest.raises(NeedsReauth) as caught:
        manager.fresh_user_token(enterprise_id=None, team_id="T1", user_id="U1")
    assert caught.value.reason == "refresh_answer_lost"
    assert state.refresh_calls == 1  # the spent refresh token is never sent again
    row = user_row(engine, store)
    assert (row.status, row.status_reason) == ("needs_reauth", "refresh_answer_lost")
    with pytest.raises(NeedsReauth):
        manager.fresh_user_token(enterprise_id=None, team_id="T1", user_id="U1")
    assert state.refresh_calls == 1 and state.rejected_refreshes == 0


def test_rate_limited_refresh_honours_retry_after(store, manager, token_server) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    connect(store, state, stored_expires_in=-10)
    state.faults = ["429"]
    started = time.monotonic()
    fresh = manager.fresh_user_token(enterprise_id=None, team_id="T1", user_id="U1")
    assert time.monotonic() - started >= 1.0  # Retry-After: 1
    assert fresh.token in state.access_tokens and state.refresh_calls == 2


def test_server_errors_keep_a_still_valid_token_in_use(store, manager, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    access, _ = connect(store, state, stored_expires_in=120)  # inside the inline margin, still valid
    state.faults = ["500"]
    fresh = manager.fresh_user_token(enterprise_id=None, team_id="T1", user_id="U1")
    assert fresh.token == access and state.refresh_calls == 1  # one attempt, no retry while holding the lock
    row = user_row(engine, store)
    assert row.status == "active" and row.refresh_failures == 1 and row.refresh_sent_at is None
    assert row.last_refresh_outcome == "fatal_error" and row.refresh_retry_at > utcnow()
    # paused until the retry time: the old token serves, Slack is not asked again
    assert manager.fresh_user_token(enterprise_id=None, team_id="T1", user_id="U1").token == access
    assert state.refresh_calls == 1
    with engine.begin() as conn:
        conn.execute(update(store.installations).values(refresh_retry_at=utcnow() - timedelta(seconds=1)))
    assert manager.fresh_user_token(enterprise_id=None, team_id="T1", user_id="U1").token != access
    assert user_row(engine, store).refresh_failures == 0


def test_server_errors_with_an_expired_token_are_a_clear_transient_error(store, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    api_url, state = token_server
    connect(store, state, stored_expires_in=-10)
    state.faults = ["500"] * 20
    manager = TokenManager(
        store, client_secret=CLIENT_SECRET, api_url=api_url, background_refresh=False, wait_timeout=timedelta(seconds=1.5)
    )
    with pytest.raises(SlackUnavailable, match="try again"):
        manager.fresh_user_token(enterprise_id=None, team_id="T1", user_id="U1")
    assert 1 <= state.refresh_calls <= 3  # retried with backoff within the caller's budget, outside the lock
    assert user_row(engine, store).status == "active"  # never a reconnect prompt for Slack's own failure


def test_wrong_client_secret_is_a_configuration_error_not_the_users_fault(store, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    api_url, state = token_server
    connect(store, state, stored_expires_in=-10)
    manager = TokenManager(store, client_secret="wrong", api_url=api_url, background_refresh=False)
    with pytest.raises(TokenManagerConfigError) as caught:
        manager.fresh_user_token(enterprise_id=None, team_id="T1", user_id="U1")
    assert "wrong" not in str(caught.value) and "wrong" not in repr(manager)
    assert user_row(engine, store).status == "active"


def test_no_token_is_not_connected(manager) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotConnected):
        manager.fresh_user_token(enterprise_id=None, team_id="T1", user_id="U404")


# -- the user client ------------------------------------------------------------------------------------------


def user_client(manager: TokenManager, user_id: str = "U1") -> UserClient:
    return UserClient(manager, enterprise_id=None, team_id="T1", user_id=user_id, base_url=manager.api_url)


def test_user_client_refreshes_once_and_retries_once_on_token_expired(store, manager, token_server) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    connect(store, state, stored_expires_in=43200, server_expires_in=-1)  # we think it is valid, Slack does not
    response = user_client(manager).chat_postMessage(channel="C1", text="hi")
    assert response["ok"] and response["user_id"] == "U1"
    assert state.refresh_calls == 1
    assert state.api_calls == [("chat.postMessage", "U1")]


def test_user_client_on_revoked_token_drops_the_tokens(store, manager, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    connect(store, state)
    state.revoked_users.add("U1")
    with pytest.raises(TokenRevoked):
        user_client(manager).chat_postMessage(channel="C1", text="hi")
    row = user_row(engine, store)
    assert (row.status, row.user_token_enc, row.user_refresh_token_enc) == ("revoked", None, None)
    assert ("revoked", "token_revoked") in events(engine, store)
    with pytest.raises(TokenRevoked):
        user_client(manager).chat_postMessage(channel="C1", text="again")
    assert state.api_calls == []


def test_user_client_missing_scope_keeps_needed_and_provided(store, manager, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    connect(store, state)
    with pytest.raises(MissingScope) as caught:
        user_client(manager).search_messages(query="lunch")
    assert caught.value.needed == ["search:read"] and caught.value.provided == ["chat:write"]
    row = user_row(engine, store)
    assert (row.needed_scopes, row.provided_scopes) == ("search:read", "chat:write")
    assert ("missing_scope", "search:read") in events(engine, store)


def test_user_client_never_falls_back_to_another_token(store, manager, token_server) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    connect(store, state, "U1")
    with pytest.raises(NotConnected):
        user_client(manager, "U2").chat_postMessage(channel="C1", text="as U2", token=None)
    with pytest.raises(NotConnected):
        user_client(manager, "U2").api_call("chat.postMessage", data={"channel": "C1", "token": "xoxb-static-bot"})
    assert state.api_calls == []


def test_unknown_token_means_needs_reauth(store, manager, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    connect(store, state)
    state.access_tokens.clear()
    with pytest.raises(NeedsReauth):
        user_client(manager).chat_postMessage(channel="C1", text="hi")
    row = user_row(engine, store)
    assert row.status == "needs_reauth" and row.status_reason == "invalid_auth"
    assert row.user_refresh_token_enc is not None  # kept: nothing is dropped for good on an API call's word


def test_invalid_auth_from_an_ip_allow_list_drops_nothing(store, manager, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    connect(store, state)
    state.ip_blocked = {"chat.postMessage"}  # Slack refuses this host, but the token is fine
    with pytest.raises(SlackApiError) as caught:
        user_client(manager).chat_postMessage(channel="C1", text="hi")
    assert caught.value.response["error"] == "invalid_auth"
    assert ("auth.test", "U1") in state.api_calls  # checked once with Slack before judging the token
    row = user_row(engine, store)
    assert row.status == "active" and row.user_token_enc is not None and row.user_refresh_token_enc is not None


def test_a_short_lived_token_is_not_refreshed_on_every_use(store, manager, token_server) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    state.expires_in = 120  # a Slack test org, or the sandbox's --expires-in
    connect(store, state, "U1", stored_expires_in=100, lifetime=120)  # margin: half of 120 s
    for _ in range(10):
        manager.fresh_user_token(enterprise_id=None, team_id="T1", user_id="U1")
    assert state.refresh_calls == 0
    connect(store, state, "U2", stored_expires_in=20, lifetime=120)  # inside half its lifetime: refreshed once
    tokens = {manager.fresh_user_token(enterprise_id=None, team_id="T1", user_id="U2").token for _ in range(10)}
    assert state.refresh_calls == 1 and len(tokens) == 1


def test_unknown_refresh_errors_back_off_and_end_in_reconnect_naming_the_error(store, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    api_url, state = token_server
    access, _ = connect(store, state, stored_expires_in=120)  # due now, still valid
    state.faults = ["error:team_added_to_org"] * 5
    manager = TokenManager(store, client_secret=CLIENT_SECRET, api_url=api_url, background_refresh=False,
                           max_refresh_failures=3, failure_backoff=timedelta(seconds=60))  # fmt: skip
    ask = lambda: manager.fresh_user_token(enterprise_id=None, team_id="T1", user_id="U1")  # noqa: E731
    pauses = []
    for attempt in (1, 2):
        assert ask().token == access  # the old token serves while Slack is asked again later
        row = user_row(engine, store)
        assert (row.refresh_failures, row.status, row.last_refresh_outcome) == (attempt, "active", "team_added_to_org")
        pauses.append((row.refresh_retry_at - utcnow()).total_seconds())
        assert ask().token == access and state.refresh_calls == attempt  # paused: Slack is not asked meanwhile
        with engine.begin() as conn:
            conn.execute(update(store.installations).values(refresh_retry_at=utcnow() - timedelta(seconds=1)))
    assert 55 < pauses[0] <= 60 and 115 < pauses[1] <= 120  # exponential
    with pytest.raises(NeedsReauth) as caught:
        ask()
    assert caught.value.reason == "team_added_to_org" and "team_added_to_org" in str(caught.value)
    assert user_row(engine, store).status == "needs_reauth" and state.refresh_calls == 3
    with pytest.raises(NeedsReauth):
        ask()
    assert state.refresh_calls == 3  # bounded: never again


def test_a_revocation_seen_by_an_old_call_never_erases_a_newer_connection(store, manager, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    connect(store, state)
    key = TokenKey.of(None, "T1", "U1")
    old = manager.fresh_token(key)
    new_access, _ = connect(store, state)  # the person reconnects while the old call is in flight
    with pytest.raises(TokenRevoked):
        manager.record_api_error(key, "token_revoked", generation=old.generation)
    row = user_row(engine, store)
    assert row.status == "active" and manager.fresh_token(key).token == new_access


def reconnect_during_refresh(store, state, manager) -> tuple[object, str]:  # type: ignore[no-untyped-def]
    """Start a refresh Slack answers slowly, reconnect the person meanwhile; returns (refresh result, new token)."""
    connect(store, state, stored_expires_in=-10)
    state.latency = 0.6
    outcome: list[object] = []

    def refresh() -> None:
        try:
            outcome.append(manager.fresh_user_token(enterprise_id=None, team_id="T1", user_id="U1").token)
        except Exception as error:  # noqa: BLE001 - the test inspects it
            outcome.append(error)

    worker = threading.Thread(target=refresh)
    worker.start()
    time.sleep(0.3)
    new_access, _ = connect(store, state)
    worker.join()
    return outcome[0], new_access


def test_a_reconnect_racing_a_refresh_keeps_the_reconnect(store, manager, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    result, new_access = reconnect_during_refresh(store, state, manager)
    assert result == new_access and state.refresh_calls == 1
    assert store.find_installation(enterprise_id=None, team_id="T1", user_id="U1").user_token == new_access
    assert user_row(engine, store).status == "active"


def test_a_refresh_answered_revoked_after_a_reconnect_keeps_the_reconnect(store, manager, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    state.faults = ["error:token_revoked"]
    result, new_access = reconnect_during_refresh(store, state, manager)
    assert result == new_access
    row = user_row(engine, store)
    assert row.status == "active" and row.user_token_enc is not None
    assert store.find_installation(enterprise_id=None, team_id="T1", user_id="U1").user_token == new_access


def test_other_api_errors_pass_through_untouched(store, manager, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    connect(store, state)
    with pytest.raises(SlackApiError) as caught:
        user_client(manager).chat_delete(channel="C404", ts="1.2")
    assert caught.value.response["error"] == "channel_not_found"
    assert user_row(engine, store).status == "active"


def test_attached_store_hands_bolt_only_fresh_tokens(store, manager, token_server) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    connect(store, state, stored_expires_in=60)
    manager.attach()
    found = store.find_installation(enterprise_id=None, team_id="T1", user_id="U1")
    assert found.user_refresh_token is None  # Bolt's own rotator has nothing to do
    assert found.user_token in state.access_tokens and found.user_token_expires_at > time.time() + 43000
    assert state.refresh_calls == 1


def test_rotating_bot_token_is_refreshed_once_too(store, manager, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    access, refresh = state.issue("UBOT", expires_in=-1)
    store.save_bot(
        Bot(
            app_id="A1", team_id="T1", bot_token=access, bot_refresh_token=refresh, bot_token_expires_in=-1,
            bot_id="B1", bot_user_id="UBOT", bot_scopes="commands", installed_at=time.time(),
        )
    )  # fmt: skip
    tokens = in_threads(lambda: manager.fresh_bot_token(enterprise_id=None, team_id="T1").token, 6)
    assert state.refresh_calls == 1 and state.rejected_refreshes == 0
    assert len(set(tokens)) == 1 and tokens[0] != access
    bot = store.find_bot(enterprise_id=None, team_id="T1")
    assert bot.bot_token == tokens[0] and bot.bot_refresh_token not in (None, refresh)


def test_a_host_with_a_fast_clock_cannot_take_a_held_lock(store, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    api_url, state = token_server
    connect(store, state, stored_expires_in=-10)
    holder = TokenManager(store, client_secret=CLIENT_SECRET, api_url=api_url, background_refresh=False)
    skewed = TokenManager(
        store,
        client_secret=CLIENT_SECRET,
        api_url=api_url,
        background_refresh=False,
        clock=lambda: utcnow() + timedelta(hours=2),  # this host's clock runs two hours ahead
        wait_timeout=timedelta(seconds=0.3),
    )
    key = TokenKey.of(None, "T1", "U1")
    with holder.locks.hold(key, wait=1) as held:  # the lock is the database's or the kernel's, not a clock's
        assert held is not None
        with skewed.locks.hold(key, wait=0.2) as stolen:
            assert stolen is None
        with pytest.raises(RefreshTimeout):
            skewed.fresh_token(key)
    assert state.refresh_calls == 0


def test_a_token_rotated_by_another_worker_is_not_condemned(store, manager, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    old_access, _ = connect(store, state)
    key = TokenKey.of(None, "T1", "U1")
    client = UserClient(manager, enterprise_id=None, team_id="T1", user_id="U1", base_url=manager.api_url,
                        fresh=manager.fresh_token(key))  # fmt: skip
    manager.refresh(key, manager.read(key), force=True)  # another worker rotates it meanwhile
    state.access_tokens.pop(old_access)  # and Slack no longer knows the old one
    assert client.chat_postMessage(channel="C1", text="hi")["ok"]
    row = user_row(engine, store)
    assert row.status == "active" and state.refresh_calls == 1


def test_a_bot_deleted_between_the_stores_read_and_its_refresh_is_not_found(store, manager, token_server) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    access, refresh = state.issue("UBOT", expires_in=-1)
    store.save_bot(
        Bot(
            app_id="A1", team_id="T1", bot_token=access, bot_refresh_token=refresh, bot_token_expires_in=-1,
            bot_id="B1", bot_user_id="UBOT", bot_scopes="commands", installed_at=time.time(),
        )
    )  # fmt: skip
    read = store.find_bot(enterprise_id=None, team_id="T1")  # what find_bot read, just before...
    store.delete_bot(enterprise_id=None, team_id="T1")  # ...an app_uninstalled event deleted it
    assert manager.prepare_bot(read) is None  # not found, rather than TokenRevoked out of find_bot
    assert state.refresh_calls == 0


def test_a_revocation_event_drops_the_tokens_keeps_the_row_and_says_when(store, manager, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    connect(store, state)
    moment = utcnow() + timedelta(seconds=1)
    assert manager.forget_user(
        enterprise_id=None, team_id="T1", user_id="U1", reason="tokens_revoked", installed_at_or_before=moment
    )
    row = user_row(engine, store)
    assert (row.status, row.status_reason, row.user_token_enc, row.user_refresh_token_enc) == (
        "revoked", "tokens_revoked", None, None
    )  # fmt: skip
    with pytest.raises(TokenRevoked) as raised:
        manager.token_for_request(TokenKey.of(None, "T1", "U1"), manager.read_for_request(TokenKey.of(None, "T1", "U1"))[1])
    assert raised.value.reason == "tokens_revoked" and raised.value.since == row.updated_at
    info = manager.connection_info(enterprise_id=None, team_id="T1", user_id="U1")
    assert info is not None and info.status == "revoked" and info.status_changed_at == row.updated_at
    # A redelivery of the event drops nothing more and writes no second audit line.
    assert not manager.forget_user(
        enterprise_id=None, team_id="T1", user_id="U1", reason="tokens_revoked", installed_at_or_before=moment
    )
    assert [event for event, _ in events(engine, store)].count("revoked") == 1


def test_a_revocation_event_older_than_the_grant_keeps_it(store, manager, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    before = utcnow() - timedelta(minutes=1)  # Slack revoked the old grant; the person connected again since
    connect(store, state)
    dropped = manager.forget_user(
        enterprise_id=None, team_id="T1", user_id="U1", reason="tokens_revoked", installed_at_or_before=before
    )
    assert not dropped and user_row(engine, store).status == "active"
    assert manager.fresh_user_token(enterprise_id=None, team_id="T1", user_id="U1").token


def test_the_bot_client_renews_an_expired_bot_token_once_and_retries(store, manager, token_server) -> None:  # type: ignore[no-untyped-def]
    from stores.bot_client import BotClient

    api_url, state = token_server
    store.save_bot(
        Bot(
            app_id="A1", team_id="T1", bot_token="xoxb-old", bot_refresh_token="xoxe-bot-1", bot_token_expires_in=43200,
            bot_id="B1", bot_user_id="UBOT", bot_scopes=["commands"], installed_at=time.time(),
        )
    )  # fmt: skip
    state.refresh_tokens["xoxe-bot-1"] = "UBOT"
    state.access_tokens["xoxb-old"] = ("UBOT", time.time() - 5)  # Slack says it expired; Delegate's clock does not
    client = BotClient(manager, key=TokenKey.of(None, "T1"), token="xoxb-old", base_url=api_url)
    answer = client.auth_test()
    assert answer["ok"] and client.token != "xoxb-old"
    assert state.refresh_calls == 1
    assert "xoxb" not in repr(client)
