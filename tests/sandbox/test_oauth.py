"""OAuth v2 as Slack documents it: the consent page, code and refresh grants, exchange, and their errors."""

from __future__ import annotations

import base64
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from sandbox.server import SandboxServer
from tests.sandbox.conftest import ALICE, BOB, BOT_SCOPES, CAROL, DAVE, USER_SCOPES
from tests.sandbox.httputil import consent_token, request

REDIRECT = "http://127.0.0.1:3000/slack/oauth_redirect"


def authorize_query(sandbox: SandboxServer, **overrides: str) -> dict[str, str]:
    query = {
        "client_id": sandbox.config.client_id,
        "scope": BOT_SCOPES,
        "user_scope": USER_SCOPES,
        "redirect_uri": REDIRECT,
        "state": "st-123",
    }
    query.update(overrides)
    return {key: value for key, value in query.items() if value is not None}


def consent(sandbox: SandboxServer, action: str, user_id: str = ALICE, **overrides: str) -> dict[str, list[str]]:
    query = authorize_query(sandbox, **overrides)
    form = {**query, "action": action, "user_id": user_id, "consent_token": consent_token(sandbox, query)}
    reply = request("POST", sandbox.authorize_url, form=form)
    assert reply.status == 302, reply.text
    location = reply.headers["Location"]
    assert location.startswith(overrides.get("redirect_uri") or REDIRECT)
    return parse_qs(urlsplit(location).query)


def access(client: WebClient, sandbox: SandboxServer, **kwargs: Any) -> dict[str, Any]:
    return client.oauth_v2_access(
        client_id=sandbox.config.client_id, client_secret=sandbox.config.client_secret, **kwargs
    ).data  # type: ignore[return-value]


def error_of(call: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as raised:
        call()
    return raised.value.response.data  # type: ignore[no-any-return]


def test_authorize_page_shows_app_scopes_users_and_buttons(sandbox: SandboxServer) -> None:
    reply = request("GET", f"{sandbox.authorize_url}?{urlencode(authorize_query(sandbox))}")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/html")
    assert "Delegate" in reply.text
    for scope in ("commands", "chat:write", "search:read", "dnd:write"):
        assert f"<code>{scope}</code>" in reply.text
    for name in ("Alice Admin", "Bob Builder", "Carol Cook"):
        assert name in reply.text
    assert 'value="allow"' in reply.text and 'value="cancel"' in reply.text


def test_authorize_rejects_unknown_client_and_redirect_without_redirecting(sandbox: SandboxServer) -> None:
    bad_client = request("GET", f"{sandbox.authorize_url}?{urlencode(authorize_query(sandbox, client_id='nope'))}")
    assert bad_client.status == 400 and "invalid_client_id" in bad_client.text and "Location" not in bad_client.headers
    wrong = authorize_query(sandbox, redirect_uri=REDIRECT + "/extra")
    bad_redirect = request("GET", f"{sandbox.authorize_url}?{urlencode(wrong)}")
    assert bad_redirect.status == 400 and "bad_redirect_uri" in bad_redirect.text
    posted = request("POST", sandbox.authorize_url, form={**wrong, "action": "allow", "user_id": ALICE})
    assert posted.status == 400 and "Location" not in posted.headers


def test_cancel_redirects_with_access_denied_and_state(sandbox: SandboxServer) -> None:
    query = consent(sandbox, "cancel")
    assert query == {"error": ["access_denied"], "state": ["st-123"]}


def test_allow_then_code_grant_returns_slacks_shape(sandbox: SandboxServer, client: WebClient) -> None:
    query = consent(sandbox, "allow", BOB)
    assert query["state"] == ["st-123"]
    answer = access(client, sandbox, code=query["code"][0], redirect_uri=REDIRECT)
    assert answer["ok"] is True and answer["app_id"] == sandbox.config.app_id
    user = answer["authed_user"]
    assert user["id"] == BOB and user["token_type"] == "user" and user["scope"] == USER_SCOPES
    assert user["access_token"].startswith("xoxe.xoxp-1-") and user["refresh_token"].startswith("xoxe-1-")
    assert user["expires_in"] == 43200
    assert answer["token_type"] == "bot" and answer["access_token"].startswith("xoxe.xoxb-1-")
    assert answer["refresh_token"].startswith("xoxe-1-") and answer["expires_in"] == 43200
    assert answer["scope"] == BOT_SCOPES and answer["bot_user_id"] == sandbox.config.bot_user_id
    assert answer["team"] == {"id": "T0SANDBOX1", "name": "Sandbox Inc"}
    assert answer["enterprise"] is None and answer["is_enterprise_install"] is False


def test_codes_are_single_use(sandbox: SandboxServer, client: WebClient) -> None:
    code = consent(sandbox, "allow")["code"][0]
    access(client, sandbox, code=code, redirect_uri=REDIRECT)
    assert error_of(lambda: access(client, sandbox, code=code, redirect_uri=REDIRECT))["error"] == "invalid_code"
    assert error_of(lambda: access(client, sandbox, code="made-up", redirect_uri=REDIRECT))["error"] == "invalid_code"


def test_codes_expire_after_ten_minutes(sandbox: SandboxServer, client: WebClient) -> None:
    fresh = consent(sandbox, "allow")["code"][0]
    stale = consent(sandbox, "allow")["code"][0]
    sandbox.advance_clock(599)
    access(client, sandbox, code=fresh, redirect_uri=REDIRECT)
    sandbox.advance_clock(2)
    assert error_of(lambda: access(client, sandbox, code=stale, redirect_uri=REDIRECT))["error"] == "invalid_code"


def test_redirect_uri_must_match_the_authorize_one(sandbox: SandboxServer, client: WebClient) -> None:
    code = consent(sandbox, "allow")["code"][0]
    answer = error_of(lambda: access(client, sandbox, code=code, redirect_uri=REDIRECT + "?x=1"))
    assert answer["error"] == "bad_redirect_uri"
    code = consent(sandbox, "allow")["code"][0]
    assert error_of(lambda: access(client, sandbox, code=code))["error"] == "bad_redirect_uri"


def test_client_credentials_as_form_fields_or_basic(sandbox: SandboxServer) -> None:
    code = consent(sandbox, "allow")["code"][0]
    form = {
        "client_id": sandbox.config.client_id,
        "client_secret": sandbox.config.client_secret,
        "code": code,
        "redirect_uri": REDIRECT,
    }
    assert request("POST", f"{sandbox.api_url}oauth.v2.access", form=form).json()["ok"] is True
    code = consent(sandbox, "allow")["code"][0]
    basic = base64.b64encode(f"{sandbox.config.client_id}:{sandbox.config.client_secret}".encode()).decode()
    reply = request(
        "POST",
        f"{sandbox.api_url}oauth.v2.access",
        form={"code": code, "redirect_uri": REDIRECT},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert reply.json()["ok"] is True


def test_wrong_client_credentials_and_grant_type(sandbox: SandboxServer) -> None:
    wrong_id = WebClient(base_url=sandbox.api_url)
    answer = error_of(
        lambda: wrong_id.oauth_v2_access(client_id="1.2", client_secret=sandbox.config.client_secret, code="x")
    )
    assert answer["error"] == "invalid_client_id"
    answer = error_of(lambda: wrong_id.oauth_v2_access(client_id=sandbox.config.client_id, client_secret="nope", code="x"))
    assert answer["error"] == "bad_client_secret"
    answer = error_of(lambda: access(wrong_id, sandbox, grant_type="password"))
    assert answer["error"] == "invalid_grant_type"


def test_user_scopes_only_has_no_bot_token(sandbox: SandboxServer, client: WebClient) -> None:
    code = consent(sandbox, "allow", BOB, scope="")["code"][0]
    answer = access(client, sandbox, code=code, redirect_uri=REDIRECT)
    assert "access_token" not in answer and "bot_user_id" not in answer
    assert answer["authed_user"]["access_token"].startswith("xoxe.xoxp-1-")


def test_without_rotation_tokens_are_long_lived(sandbox: SandboxServer, client: WebClient) -> None:
    sandbox.configure(token_rotation=False)
    code = consent(sandbox, "allow")["code"][0]
    answer = access(client, sandbox, code=code, redirect_uri=REDIRECT)
    assert answer["access_token"].startswith("xoxb-") and answer["authed_user"]["access_token"].startswith("xoxp-")
    assert "refresh_token" not in answer and "expires_in" not in answer
    assert "refresh_token" not in answer["authed_user"] and "expires_in" not in answer["authed_user"]


def test_expires_in_is_configurable(sandbox: SandboxServer) -> None:
    sandbox.configure(expires_in=120)
    answer = sandbox.install(ALICE, user_scope="chat:write")
    assert answer["authed_user"]["expires_in"] == 120


def test_non_distributed_team_is_refused(sandbox: SandboxServer, client: WebClient) -> None:
    code = consent(sandbox, "allow", DAVE)["code"][0]
    answer = error_of(lambda: access(client, sandbox, code=code, redirect_uri=REDIRECT))
    assert answer["error"] == "invalid_team_for_non_distributed_app"


def test_refresh_rotates_and_the_old_refresh_token_dies(
    sandbox: SandboxServer, client: WebClient, installed: dict[str, Any]
) -> None:
    old = installed["authed_user"]["refresh_token"]
    answer = access(client, sandbox, grant_type="refresh_token", refresh_token=old)
    assert answer["token_type"] == "user" and answer["user_id"] == ALICE
    assert (
        answer["access_token"].startswith("xoxe.xoxp-1-")
        and answer["access_token"] != installed["authed_user"]["access_token"]
    )
    assert answer["refresh_token"].startswith("xoxe-1-") and answer["refresh_token"] != old
    assert answer["expires_in"] == 43200 and answer["scope"] == USER_SCOPES
    assert answer["team"]["id"] == "T0SANDBOX1" and answer["enterprise"] is None
    assert client.auth_test(token=answer["access_token"])["user_id"] == ALICE
    again = error_of(lambda: access(client, sandbox, grant_type="refresh_token", refresh_token=old))
    assert again["error"] == "invalid_refresh_token"
    assert sandbox.counters()["grants"]["refresh_token"] == 1
    assert sandbox.counters()["grant_failures"]["refresh_token"] == 1
    assert sandbox.counters()["refreshes_by_user"] == {ALICE: 1}


def test_bot_refresh_says_bot(sandbox: SandboxServer, client: WebClient, installed: dict[str, Any]) -> None:
    answer = access(client, sandbox, grant_type="refresh_token", refresh_token=installed["refresh_token"])
    assert answer["token_type"] == "bot" and answer["access_token"].startswith("xoxe.xoxb-1-")
    assert answer["bot_user_id"] == sandbox.config.bot_user_id


def test_refresh_grace_period_and_invalid_grant_switch(
    sandbox: SandboxServer, client: WebClient, installed: dict[str, Any]
) -> None:
    sandbox.configure(refresh_grace_seconds=30, refresh_error_name="invalid_grant")
    old = installed["authed_user"]["refresh_token"]
    access(client, sandbox, grant_type="refresh_token", refresh_token=old)
    sandbox.advance_clock(10)
    access(client, sandbox, grant_type="refresh_token", refresh_token=old)
    sandbox.advance_clock(25)
    assert (
        error_of(lambda: access(client, sandbox, grant_type="refresh_token", refresh_token=old))["error"] == "invalid_grant"
    )


def test_refresh_without_rotation_is_refused(sandbox: SandboxServer, client: WebClient, installed: dict[str, Any]) -> None:
    sandbox.configure(token_rotation=False)
    answer = error_of(
        lambda: access(client, sandbox, grant_type="refresh_token", refresh_token=installed["authed_user"]["refresh_token"])
    )
    assert answer["error"] == "token_rotation_not_enabled"


def exchange(client: WebClient, sandbox: SandboxServer, token: str) -> dict[str, Any]:
    return client.oauth_v2_exchange(
        client_id=sandbox.config.client_id, client_secret=sandbox.config.client_secret, token=token
    ).data  # type: ignore[return-value]


def test_exchange_turns_a_long_lived_token_into_a_rotating_one_once(sandbox: SandboxServer, client: WebClient) -> None:
    sandbox.configure(token_rotation=False)
    long_lived = sandbox.install(BOB, user_scope="chat:write")["authed_user"]["access_token"]
    assert long_lived.startswith("xoxp-")
    assert error_of(lambda: exchange(client, sandbox, long_lived))["error"] == "token_rotation_not_enabled"
    sandbox.configure(token_rotation=True)
    answer = exchange(client, sandbox, long_lived)
    assert answer["access_token"].startswith("xoxe.xoxp-1-") and answer["refresh_token"].startswith("xoxe-1-")
    assert answer["expires_in"] == 43200 and answer["token_type"] == "user" and answer["user_id"] == BOB
    assert error_of(lambda: exchange(client, sandbox, long_lived))["error"] == "token_already_exchanged"
    refreshed = access(client, sandbox, grant_type="refresh_token", refresh_token=answer["refresh_token"])
    assert refreshed["user_id"] == BOB
    assert sandbox.counters()["grants"]["exchange"] == 1


def test_authorize_needs_some_scope_and_preselects_the_console_user(sandbox: SandboxServer) -> None:
    empty = request("GET", f"{sandbox.authorize_url}?{urlencode(authorize_query(sandbox, scope='', user_scope=''))}")
    assert empty.status == 400 and "invalid_scope" in empty.text
    page = request(
        "GET", f"{sandbox.authorize_url}?{urlencode(authorize_query(sandbox))}", headers={"Cookie": f"sandbox_user={BOB}"}
    )
    assert f"value='{BOB}' checked" in page.text and f"value='{ALICE}' checked" not in page.text
    only_team = request("GET", f"{sandbox.authorize_url}?{urlencode(authorize_query(sandbox, team='T0ELSEWHR2'))}")
    assert "Dave Elsewhere" in only_team.text and "Alice Admin" not in only_team.text


def test_concurrent_refreshes_of_one_token_let_exactly_one_win(sandbox: SandboxServer, installed: dict[str, Any]) -> None:
    old = installed["authed_user"]["refresh_token"]
    barrier = threading.Barrier(8)

    def attempt(_: int) -> str:
        client = WebClient(base_url=sandbox.api_url)
        barrier.wait()
        try:
            return str(access(client, sandbox, grant_type="refresh_token", refresh_token=old)["access_token"])
        except SlackApiError as error:
            return str(error.response["error"])

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    winners = [outcome for outcome in outcomes if outcome.startswith("xoxe.xoxp-1-")]
    assert len(winners) == 1 and outcomes.count("invalid_refresh_token") == 7
    assert sandbox.counters()["grants"]["refresh_token"] == 1


def test_approve_helper_and_direct_install(sandbox: SandboxServer, client: WebClient) -> None:
    redirect = sandbox.approve(CAROL, scope="commands", user_scope="chat:write", redirect_uri=REDIRECT, state="xyz")
    query = parse_qs(urlsplit(redirect).query)
    assert redirect.startswith(REDIRECT + "?") and query["state"] == ["xyz"]
    answer = access(client, sandbox, code=query["code"][0], redirect_uri=REDIRECT)
    assert answer["authed_user"]["id"] == CAROL and sandbox.counters()["grants"] == {"authorization_code": 1}
    with pytest.raises(Exception, match="bad_redirect_uri"):
        sandbox.approve(CAROL, scope="commands", redirect_uri="http://evil.example/cb")
    assert sandbox.install(CAROL, user_scope="search:read")["authed_user"]["scope"] == "search:read"
