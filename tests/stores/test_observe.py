"""The stores' observer: one report per refresh outcome and per lock attempt, and every failed Slack call once."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from sandbox.server import SandboxServer
from sandbox.testing import running_sandbox
from stores import SQLAlchemyInstallationStore
from stores.errors import TokenError
from stores.observe import NO_OBSERVER, ApiErrorCounter, error_name, method_name, with_api_error_counter
from stores.rotation import TokenKey, TokenManager
from stores.user_client import UserClient
from tests.conftest import CLIENT_ID
from tests.stores.test_rotation import connect
from tests.support.token_server import CLIENT_SECRET, TokenServerState, running_token_server


class Recorder:
    """An Observer that keeps what it was told."""

    def __init__(self) -> None:
        self.refreshes: list[tuple[str, str]] = []
        self.locks: list[str] = []
        self.budget: list[float] = []
        self.errors: list[tuple[str, str]] = []

    def refresh_finished(self, kind: str, outcome: str, seconds: float) -> None:
        assert seconds >= 0
        self.refreshes.append((kind, outcome))

    def lock_waited(self, result: str, seconds: float) -> None:
        self.locks.append(result)

    def budget_waited(self, seconds: float) -> None:
        self.budget.append(seconds)

    def api_error(self, method: str, error: str) -> None:
        self.errors.append((method, error))


@pytest.fixture
def token_server() -> Iterator[tuple[str, TokenServerState]]:
    with running_token_server(CLIENT_ID) as server:
        yield server


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with running_sandbox() as server:
        yield server


@pytest.mark.parametrize(
    ("fault", "outcome", "api_error"),
    [
        (None, "refreshed", None),
        ("error:invalid_refresh_token", "invalid_refresh_token", "invalid_refresh_token"),
        ("error:invalid_grant", "invalid_refresh_token", "invalid_grant"),
        ("error:token_revoked", "revoked", "token_revoked"),
        ("error:bad_client_secret", "config_error", "bad_client_secret"),
        ("429", "ratelimited", "ratelimited"),
        ("500", "transient", "fatal_error"),
        ("drop", "answer_lost", "connection_error"),
        ("error:team_added_to_org", "other", "team_added_to_org"),
    ],
)
def test_each_refresh_reports_its_outcome_once(
    store: SQLAlchemyInstallationStore,
    token_server: tuple[str, TokenServerState],
    fault: str | None,
    outcome: str,
    api_error: str | None,
) -> None:
    api_url, state = token_server
    recorder = Recorder()
    manager = TokenManager(
        store, client_secret=CLIENT_SECRET, api_url=api_url, background_refresh=False, observer=recorder,
        wait_timeout=timedelta(seconds=1),
    )  # fmt: skip
    try:
        connect(store, state, stored_expires_in=60)  # due, and urgent: refreshed before use
        if fault:
            state.faults.append(fault)
        try:
            manager.fresh_user_token(enterprise_id=None, team_id="T1", user_id="U1")
        except TokenError:
            pass
    finally:
        manager.close()
    assert state.refresh_calls == 1
    assert recorder.refreshes == [("user", outcome)]
    assert recorder.locks == ["acquired"]
    assert recorder.errors == ([("oauth.v2.access", api_error)] if api_error else [])


def test_a_lock_held_elsewhere_is_busy_for_the_sweeper(
    store: SQLAlchemyInstallationStore, token_server: tuple[str, TokenServerState]
) -> None:
    api_url, state = token_server
    recorder = Recorder()
    manager = TokenManager(store, client_secret=CLIENT_SECRET, api_url=api_url, background_refresh=False, observer=recorder)
    try:
        connect(store, state, stored_expires_in=60)
        key = TokenKey.of(None, "T1", "U1")
        with manager.locks.hold(key, wait=1) as held:  # another refresher holds it
            assert held is not None
            assert manager.refresh_if_due(key, timedelta(hours=2)) is False
    finally:
        manager.close()
    assert recorder.locks == ["busy"] and recorder.refreshes == [] and state.refresh_calls == 0


def test_a_failed_call_is_counted_once_whatever_the_retries(sandbox: SandboxServer) -> None:
    recorder = Recorder()
    handlers = with_api_error_counter([RateLimitErrorRetryHandler(max_retry_count=2)], recorder)
    answer = sandbox.install("U0ALICE001", scope="commands", user_scope="chat:write")
    good = WebClient(token=answer["access_token"], base_url=sandbox.api_url, retry_handlers=handlers)
    assert good.auth_test()["ok"]
    assert recorder.errors == []  # a success counts nothing

    sandbox.add_fault("auth.test", status=429, retry_after=0, times=1)
    assert good.auth_test()["ok"]  # retried once, then answered
    assert recorder.errors == []  # the 429 was retried: the call did not fail

    sandbox.add_fault("auth.test", status=429, retry_after=0, times=5)
    with pytest.raises(SlackApiError):
        good.auth_test()  # three attempts, all refused
    assert recorder.errors == [("auth.test", "ratelimited")]
    sandbox.clear_faults()

    bad = WebClient(token="xoxb-not-a-token", base_url=sandbox.api_url, retry_handlers=handlers)
    with pytest.raises(SlackApiError):
        bad.chat_postMessage(channel="C0GENERAL1", text="hi")
    assert recorder.errors[-1] == ("chat.postMessage", "invalid_auth")

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    unreachable = WebClient(
        token="xoxb-x", base_url=f"http://127.0.0.1:{port}/api/",
        retry_handlers=with_api_error_counter([ConnectionErrorRetryHandler(max_retry_count=1)], recorder),
    )  # fmt: skip
    with pytest.raises((SlackClientError, OSError)):
        unreachable.auth_test()
    assert recorder.errors[-1] == ("auth.test", "connection_error")
    assert len(recorder.errors) == 3


def test_the_counter_is_last_and_single_and_absent_without_an_observer() -> None:
    recorder = Recorder()
    retry = RateLimitErrorRetryHandler(max_retry_count=2)
    once = with_api_error_counter([retry], recorder)
    twice = with_api_error_counter(once, recorder)
    assert twice[0] is retry and isinstance(twice[-1], ApiErrorCounter) and len(twice) == 2
    assert with_api_error_counter([retry], NO_OBSERVER) == [retry]


def test_user_and_bot_clients_count_through_the_managers_observer(
    store: SQLAlchemyInstallationStore, token_server: tuple[str, TokenServerState]
) -> None:
    from stores.bot_client import BotClient

    api_url, _ = token_server
    recorder = Recorder()
    manager = TokenManager(store, client_secret=CLIENT_SECRET, api_url=api_url, background_refresh=False, observer=recorder)
    try:
        user = UserClient(manager, enterprise_id=None, team_id="T1", user_id="U1", base_url=api_url)
        bot = BotClient(manager, key=TokenKey.of(None, "T1"), token="xoxb-x", base_url=api_url)
        for client in (user, bot):
            assert isinstance(client.retry_handlers[-1], ApiErrorCounter)
            assert client.retry_handlers[-1].observer is recorder
    finally:
        manager.close()


def test_labels_are_bounded() -> None:
    assert error_name(200, {"ok": True}, b"{}") is None
    assert error_name(200, {"ok": False, "error": "channel_not_found"}, None) == "channel_not_found"
    assert error_name(200, {"ok": False, "error": "Spaces and CAPITALS " * 9}, None) == "unknown_error"
    assert error_name(503, None, b"<html>down</html>") == "http_503"
    assert error_name(500, None, b'{"ok": false, "error": "internal_error"}') == "internal_error"
    assert error_name(429, None, None) == "ratelimited"
    assert method_name("https://slack.com/api/chat.postMessage?x=1") == "chat.postMessage"
    assert method_name("https://slack.com/api/<script>") == "other"
