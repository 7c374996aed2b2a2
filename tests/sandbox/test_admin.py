"""Admin operations: the clock, token expiry and revocation, fault injection, counters, and the JSON admin API."""

from __future__ import annotations

import http.client
import time
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from sandbox.config import SandboxConfig
from sandbox.server import SandboxServer
from sandbox.state import redact
from sandbox.testing import running_sandbox
from tests.sandbox.conftest import ALICE, BOB, GENERAL
from tests.sandbox.httputil import admin, request


def refresh(client: WebClient, sandbox: SandboxServer, refresh_token: str) -> dict[str, Any]:
    return client.oauth_v2_access(
        client_id=sandbox.config.client_id,
        client_secret=sandbox.config.client_secret,
        grant_type="refresh_token",
        refresh_token=refresh_token,
    ).data  # type: ignore[return-value]


def test_running_sandbox_picks_a_free_port_and_stops() -> None:
    with running_sandbox(SandboxConfig(app_name="Other app")) as first, running_sandbox() as second:
        assert first.port != second.port and first.api_url.endswith("/api/")
        assert "Other app" in request("GET", f"{first.authorize_url}?client_id={first.config.client_id}&scope=commands").text
    with pytest.raises(OSError):
        http.client.HTTPConnection("127.0.0.1", first.port, timeout=1).request("GET", "/")


def test_clock_expires_tokens_and_refresh_still_works(
    sandbox: SandboxServer, client: WebClient, installed: dict[str, Any]
) -> None:
    user = installed["authed_user"]
    sandbox.advance_clock(43199)
    assert client.auth_test(token=user["access_token"])["ok"] is True
    sandbox.advance_clock(2)
    with pytest.raises(SlackApiError, match="token_expired"):
        client.auth_test(token=user["access_token"])
    fresh = refresh(client, sandbox, user["refresh_token"])
    assert client.auth_test(token=fresh["access_token"])["user_id"] == ALICE


def test_expire_a_users_tokens_now(sandbox: SandboxServer, client: WebClient, installed: dict[str, Any]) -> None:
    bob = sandbox.install(BOB, user_scope="chat:write")["authed_user"]["access_token"]
    assert sandbox.expire_tokens(ALICE) == 1
    with pytest.raises(SlackApiError, match="token_expired"):
        client.auth_test(token=installed["authed_user"]["access_token"])
    assert client.auth_test(token=bob)["ok"] is True
    assert client.auth_test(token=installed["access_token"])["ok"] is True
    states = {(token["user_id"], token["kind"]): token["status"] for token in sandbox.tokens()}
    assert states[(ALICE, "user")] == "expired" and states[(BOB, "user")] == "active"


def test_revoked_users_refresh_token_is_dead_too(
    sandbox: SandboxServer, client: WebClient, installed: dict[str, Any]
) -> None:
    sandbox.revoke_tokens(ALICE)
    with pytest.raises(SlackApiError, match="token_revoked"):
        client.auth_test(token=installed["authed_user"]["access_token"])
    with pytest.raises(SlackApiError, match="invalid_refresh_token"):
        refresh(client, sandbox, installed["authed_user"]["refresh_token"])


def test_fault_429_with_retry_after_then_recovers(sandbox: SandboxServer, user_token: str) -> None:
    sandbox.add_fault("auth.test", status=429, retry_after=7, times=1)
    client = WebClient(base_url=sandbox.api_url, retry_handlers=[])
    with pytest.raises(SlackApiError) as raised:
        client.auth_test(token=user_token)
    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "7" and raised.value.response["error"] == "ratelimited"
    assert client.auth_test(token=user_token)["ok"] is True


def test_fault_5xx_and_latency(sandbox: SandboxServer, user_token: str) -> None:
    client = WebClient(base_url=sandbox.api_url, retry_handlers=[])
    sandbox.add_fault("auth.test", status=503, times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as raised:
            client.auth_test(token=user_token)
        assert raised.value.response.status_code == 503
    sandbox.add_fault("*", latency_ms=150, times=1)
    started = time.monotonic()
    assert client.auth_test(token=user_token)["ok"] is True
    assert time.monotonic() - started >= 0.15


def test_dropped_connection_after_the_refresh_happened(sandbox: SandboxServer, installed: dict[str, Any]) -> None:
    client = WebClient(base_url=sandbox.api_url, retry_handlers=[])
    sandbox.add_fault("oauth.v2.access", drop_after_action=True, times=1)
    old = installed["authed_user"]["refresh_token"]
    with pytest.raises(Exception) as raised:  # noqa: B017 - whatever urllib raises for a closed connection
        refresh(client, sandbox, old)
    assert not isinstance(raised.value, SlackApiError)
    assert sandbox.counters()["grants"]["refresh_token"] == 1
    with pytest.raises(SlackApiError, match="invalid_refresh_token"):
        refresh(client, sandbox, old)


def test_faults_can_be_cleared_and_forced_errors(sandbox: SandboxServer, client: WebClient, user_token: str) -> None:
    sandbox.add_fault("chat.postMessage", error="fatal_error")
    with pytest.raises(SlackApiError, match="fatal_error"):
        client.chat_postMessage(token=user_token, channel=GENERAL, text="x")
    sandbox.clear_faults("chat.postMessage")
    assert client.chat_postMessage(token=user_token, channel=GENERAL, text="x")["ok"] is True


def test_admin_http_api(sandbox: SandboxServer, installed: dict[str, Any]) -> None:
    before = sandbox.now()
    assert admin(sandbox, "POST", "clock/advance", {"seconds": 3600}).json()["now"] >= before + 3600
    assert admin(sandbox, "POST", f"users/{ALICE}/expire_tokens", {}).json()["expired"] == 1
    tokens = admin(sandbox, "GET", f"tokens?user_id={ALICE}").json()["tokens"]
    assert {token["status"] for token in tokens if token["kind"] == "user"} == {"expired"}
    assert admin(sandbox, "POST", "faults", {"method": "auth.test", "status": 500}).json()["ok"] is True
    assert admin(sandbox, "GET", "faults").json()["faults"][0]["status"] == 500
    assert admin(sandbox, "DELETE", "faults").json()["ok"] is True
    assert admin(sandbox, "POST", "faults", {"nope": 1}).status == 400
    assert admin(sandbox, "POST", "config", {"expires_in": 60}).json()["config"]["expires_in"] == 60
    answer = admin(sandbox, "POST", "install", {"user_id": BOB, "user_scope": "chat:write"}).json()
    assert answer["authed_user"]["expires_in"] == 60
    assert admin(sandbox, "POST", f"users/{BOB}/revoke_tokens").json()["tokens"] == {"oauth": [BOB], "bot": []}
    assert admin(sandbox, "POST", f"users/{BOB}/deactivate").json()["user"]["deleted"] is True
    assert admin(sandbox, "POST", f"users/{BOB}/reactivate").json()["user"]["deleted"] is False
    assert admin(sandbox, "POST", "teams/T0SANDBOX1/uninstall").json()["ok"] is True
    assert admin(sandbox, "POST", "users/U0NOBODY/deactivate").json()["error"] == "user_not_found"
    counters = admin(sandbox, "GET", "counters").json()
    assert counters["grants"]["direct_install"] == 2
    state = admin(sandbox, "GET", "state").json()
    assert {"users", "channels", "messages", "tokens", "views", "deliveries", "counters"} <= set(state)
    assert admin(sandbox, "GET", "messages").json()["messages"] == []
    assert admin(sandbox, "GET", "deliveries").json()["ok"] is True


def test_admin_deliver_endpoint(sandbox: SandboxServer) -> None:
    sandbox.configure(request_url=None)
    reply = admin(sandbox, "POST", "deliver/slash_command", {"user_id": ALICE, "command": "/delegate", "text": "x"})
    assert reply.json()["error"] == "no_request_url"
    assert admin(sandbox, "POST", "deliver/nope", {}).status == 404
    assert admin(sandbox, "POST", "deliver/slash_command", {}).status == 400


def test_response_url_limits(sandbox: SandboxServer) -> None:
    url = sandbox.state.new_response_url(sandbox.url, "T0SANDBOX1", GENERAL, ALICE, "/delegate")
    for _ in range(5):
        assert request("POST", url, body={"text": "hi"}).status == 200
    assert request("POST", url, body={"text": "hi"}).status == 404
    assert request("POST", f"{sandbox.url}sandbox/response/unknown", body={"text": "hi"}).status == 404


def test_no_token_values_in_dumps_or_reprs(sandbox: SandboxServer, installed: dict[str, Any]) -> None:
    secret_values = [
        installed["access_token"],
        installed["refresh_token"],
        installed["authed_user"]["access_token"],
        installed["authed_user"]["refresh_token"],
        sandbox.config.client_secret,
        sandbox.config.signing_secret,
    ]
    dumps = admin(sandbox, "GET", "state").text + repr(sandbox) + repr(sandbox.config)
    dumps += "".join(repr(token) for token in sandbox.state.tokens.values())
    assert not any(value in dumps for value in secret_values)
    assert redact(installed["access_token"]).startswith("xoxe.xoxb-1-…")


def test_rate_limits_per_method(sandbox: SandboxServer, user_token: str) -> None:
    sandbox.configure(rate_limits={"auth.test": 2})
    client = WebClient(base_url=sandbox.api_url, retry_handlers=[])
    client.auth_test(token=user_token)
    client.auth_test(token=user_token)
    with pytest.raises(SlackApiError) as raised:
        client.auth_test(token=user_token)
    assert raised.value.response.status_code == 429 and 1 <= int(raised.value.response.headers["Retry-After"]) <= 60
    assert client.users_profile_get(token=user_token)["ok"] is True
