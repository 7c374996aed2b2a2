"""The sandbox as an Enterprise Grid organisation: org-wide installs, org-level tokens, and Grid's payloads."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from wsgiref.simple_server import make_server

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from sandbox.config import GRID_ENTERPRISE, GRID_NORTH, GRID_SOUTH, SandboxConfig
from sandbox.server import SandboxServer
from sandbox.testing import running_sandbox
from tests.sandbox.conftest import BOT_SCOPES, USER_SCOPES, QuietHandler
from tests.sandbox.httputil import consent_token, request

OLIVIA, NORA, SAM, CLEO = "W0OLIVIA01", "W0NORA0002", "W0SAM00003", "W0CLEO0004"
NORTH_GENERAL, SOUTH_GENERAL, SHARED = "C0NORTHGN1", "C0SOUTHGN2", "C0SHARED03"


@pytest.fixture
def grid() -> Iterator[SandboxServer]:
    with running_sandbox(SandboxConfig.grid()) as server:
        yield server


@pytest.fixture
def received(grid: SandboxServer) -> Iterator[list[dict[str, Any]]]:
    """Every payload the sandbox delivers, parsed, from a bare HTTP endpoint that acknowledges everything."""
    bodies: list[dict[str, Any]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)).decode()
        if environ.get("CONTENT_TYPE", "").startswith("application/json"):
            bodies.append(json.loads(raw))
        else:
            form = {key: values[0] for key, values in parse_qs(raw).items()}
            bodies.append(json.loads(form["payload"]) if "payload" in form else form)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b""]

    server = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    grid.configure(request_url=f"http://127.0.0.1:{server.server_port}/slack/events")
    yield bodies
    server.shutdown()
    thread.join(5)
    server.server_close()


def test_an_org_admin_installs_org_wide_and_gets_org_level_tokens(grid: SandboxServer) -> None:
    answer = grid.install(OLIVIA, scope=BOT_SCOPES, user_scope=USER_SCOPES, org_wide=True)
    assert answer["is_enterprise_install"] is True and answer["team"] is None
    assert answer["enterprise"] == {"id": GRID_ENTERPRISE, "name": "Sandbox Grid"}
    assert answer["authed_user"]["id"] == OLIVIA and answer["authed_user"]["access_token"].startswith("xoxe.xoxp-1-")
    for token in (answer["access_token"], answer["authed_user"]["access_token"]):
        who = WebClient(base_url=grid.api_url, token=token).auth_test()
        assert who["team_id"] == GRID_ENTERPRISE and who["enterprise_id"] == GRID_ENTERPRISE
        assert who["is_enterprise_install"] is True and who["url"] == "https://sandbox-grid.enterprise.slack.com/"
    assert {(t["team_id"], t["enterprise_id"], t["is_enterprise_install"]) for t in grid.tokens()} == {
        (None, GRID_ENTERPRISE, True)
    }


def test_only_an_org_admin_may_install_org_wide_and_a_workspace_install_still_names_its_org(grid: SandboxServer) -> None:
    with pytest.raises(Exception, match="org_admin_required"):
        grid.install(NORA, scope=BOT_SCOPES, org_wide=True)
    answer = grid.install(NORA, scope=BOT_SCOPES, user_scope=USER_SCOPES)
    assert answer["is_enterprise_install"] is False and answer["team"] == {"id": GRID_NORTH, "name": "Grid North"}
    assert answer["enterprise"] == {"id": GRID_ENTERPRISE, "name": "Sandbox Grid"}
    who = WebClient(base_url=grid.api_url, token=answer["authed_user"]["access_token"]).auth_test()
    assert (who["team_id"], who["enterprise_id"], who["is_enterprise_install"]) == (GRID_NORTH, GRID_ENTERPRISE, False)
    with pytest.raises(Exception, match="not_in_team"):
        grid.install(SAM, scope=BOT_SCOPES, team_id=GRID_NORTH)  # Sam is not in North


def test_after_an_org_wide_install_a_person_connects_once_for_the_whole_org(grid: SandboxServer) -> None:
    grid.install(OLIVIA, scope=BOT_SCOPES, user_scope=USER_SCOPES, org_wide=True)
    answer = grid.install(SAM, user_scope=USER_SCOPES)
    assert answer["is_enterprise_install"] is True and answer["team"] is None
    sam = WebClient(base_url=grid.api_url, token=answer["authed_user"]["access_token"])
    # An org-level token reaches every workspace the person belongs to, and the channels shared into them...
    assert sam.chat_postMessage(channel=SHARED, text="from the south")["ok"]
    assert sam.chat_postMessage(channel=SOUTH_GENERAL, text="at home")["ok"]
    # ... but not a channel of a workspace they are not in.
    with pytest.raises(SlackApiError) as refused:
        sam.chat_postMessage(channel=NORTH_GENERAL, text="trespass")
    assert refused.value.response["error"] == "channel_not_found"
    [shared] = grid.messages(SHARED)
    assert (shared["user"], shared["team"], shared["as"]) == (SAM, GRID_SOUTH, "user")
    # search.messages needs team_id with an org token ("required if org token is used").
    with pytest.raises(SlackApiError) as missing:
        sam.search_messages(query="from")
    assert missing.value.response["error"] == "missing_argument"
    found = sam.search_messages(query="from", team_id=GRID_SOUTH)["messages"]["matches"]
    assert [m["text"] for m in found] == ["from the south"]


def test_the_call_log_names_whose_token_made_each_call(grid: SandboxServer) -> None:
    grid.install(OLIVIA, scope=BOT_SCOPES, user_scope=USER_SCOPES, org_wide=True)
    sam_token = grid.install(SAM, user_scope=USER_SCOPES)["authed_user"]["access_token"]
    WebClient(base_url=grid.api_url, token=sam_token).chat_postMessage(channel=SHARED, text="hi")
    [call] = grid.api_call_log("chat.postMessage")
    assert (call["user_id"], call["kind"], call["team_id"], call["enterprise_id"]) == (SAM, "user", None, GRID_ENTERPRISE)
    assert call["is_enterprise_install"] is True and "xoxe.xoxp-1-…" in call["token"] and sam_token not in json.dumps(call)


def test_grid_payloads_carry_the_org_and_the_workspace_acted_in(grid: SandboxServer, received: list[dict[str, Any]]) -> None:
    grid.install(OLIVIA, scope=BOT_SCOPES, org_wide=True)
    grid.send_slash_command(SAM, "/delegate", "hi", channel_id=SHARED)
    command = received[-1]
    assert (command["team_id"], command["enterprise_id"], command["is_enterprise_install"]) == (
        GRID_SOUTH,
        GRID_ENTERPRISE,
        "true",
    )
    assert command["channel_id"] == SHARED and command["user_id"] == SAM and command["enterprise_name"] == "Sandbox Grid"
    grid.send_slash_command(CLEO, "/delegate", "", channel_id=SHARED, team_id=GRID_SOUTH)
    assert received[-1]["team_id"] == GRID_SOUTH  # Cleo is in both: where she typed decides
    grid.send_global_shortcut(SAM, "set_my_status")
    shortcut = received[-1]
    assert shortcut["is_enterprise_install"] is True and shortcut["enterprise"] == {
        "id": GRID_ENTERPRISE,
        "name": "Sandbox Grid",
    }
    assert shortcut["team"] is None  # an org-wide install's global shortcut: only user.team_id names the workspace
    assert shortcut["user"] == {"id": SAM, "username": "sam", "name": "sam", "team_id": GRID_SOUTH}
    grid.say(NORA, SHARED, "a message")
    [said] = grid.messages(SHARED)
    grid.send_message_shortcut(SAM, "reply_as_me", channel_id=SHARED, message_ts=said["ts"])
    assert received[-1]["team"] == {
        "id": GRID_SOUTH,
        "domain": "grid-south",
        "enterprise_id": GRID_ENTERPRISE,
        "enterprise_name": "Sandbox Grid",
    }
    assert received[-1]["user"]["team_id"] == GRID_SOUTH and received[-1]["is_enterprise_install"] is True
    grid.send_app_home_opened(NORA)
    grid.wait_for_events()
    event = received[-1]
    assert event["team_id"] == GRID_NORTH and event["enterprise_id"] == GRID_ENTERPRISE
    assert event["is_ext_shared_channel"] is False and event["context_team_id"] == GRID_NORTH
    assert event["authorizations"] == [
        {
            "enterprise_id": GRID_ENTERPRISE,
            "team_id": None,
            "user_id": grid.config.bot_user_id,
            "is_bot": True,
            "is_enterprise_install": True,
        }
    ]


def test_an_org_wide_uninstall_revokes_every_org_level_token_and_tells_the_org(
    grid: SandboxServer, received: list[dict[str, Any]]
) -> None:
    grid.install(OLIVIA, scope=BOT_SCOPES, user_scope=USER_SCOPES, org_wide=True)
    grid.install(SAM, user_scope=USER_SCOPES)
    nora = grid.install(NORA, scope=BOT_SCOPES, user_scope=USER_SCOPES, team_id=GRID_NORTH)  # org-wide already
    assert nora["is_enterprise_install"] is True
    tokens = grid.uninstall(GRID_ENTERPRISE)
    assert sorted(tokens["oauth"]) == sorted([OLIVIA, SAM, NORA]) and tokens["bot"] == [grid.config.bot_user_id]
    assert {t["status"] for t in grid.tokens()} == {"revoked"}
    grid.wait_for_events()
    revoked, uninstalled = received[-2:]
    for envelope in (revoked, uninstalled):
        assert envelope["team_id"] is None and envelope["enterprise_id"] == GRID_ENTERPRISE
        assert envelope["authorizations"][0]["is_enterprise_install"] is True
    assert (revoked["event"]["type"], uninstalled["event"]["type"]) == ("tokens_revoked", "app_uninstalled")


def test_the_consent_page_offers_the_whole_org_on_grid_only(grid: SandboxServer, sandbox: SandboxServer) -> None:
    query = {"client_id": grid.config.client_id, "scope": "commands", "user_scope": "chat:write", "team": GRID_ENTERPRISE}
    page = request("GET", f"{grid.authorize_url}?{urlencode(query)}")
    assert page.status == 200 and "the whole organisation" in page.text
    assert f"value='{GRID_ENTERPRISE}' checked" in page.text
    plain = request("GET", f"{sandbox.authorize_url}?client_id={sandbox.config.client_id}&scope=commands")
    assert plain.status == 200 and "install_on" not in plain.text


def test_pressing_allow_for_the_whole_org_needs_an_org_admin(grid: SandboxServer) -> None:
    query = {"client_id": grid.config.client_id, "scope": BOT_SCOPES, "user_scope": USER_SCOPES, "state": "s1"}

    def allow(user_id: str, install_on: str) -> Any:
        form = {**query, "action": "allow", "user_id": user_id, "install_on": install_on}
        return request("POST", grid.authorize_url, form={**form, "consent_token": consent_token(grid, query)})

    refused = allow(NORA, GRID_ENTERPRISE)
    assert refused.status == 400 and "org_admin_required" in refused.text and "Location" not in refused.headers
    assert grid.tokens() == []
    allowed = allow(OLIVIA, GRID_ENTERPRISE)
    assert allowed.status == 302
    code = parse_qs(urlsplit(allowed.headers["Location"]).query)["code"][0]
    client = WebClient(base_url=grid.api_url)
    answer = client.oauth_v2_access(client_id=grid.config.client_id, client_secret=grid.config.client_secret, code=code)
    assert answer["is_enterprise_install"] is True and answer["team"] is None
    assert answer["enterprise"]["id"] == GRID_ENTERPRISE
    elsewhere = allow(SAM, GRID_NORTH)  # a workspace Sam is not in
    assert elsewhere.status == 400 and "not_in_team" in elsewhere.text


def test_an_org_wide_install_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "grid-state.sqlite3"
    first = SandboxServer(SandboxConfig.grid(), state_path=path).start()
    try:
        token = first.install(OLIVIA, scope=BOT_SCOPES, user_scope=USER_SCOPES, org_wide=True)["authed_user"]["access_token"]
    finally:
        first.close()
    second = SandboxServer(SandboxConfig.grid(), state_path=path).start()
    try:
        who = WebClient(base_url=second.api_url, token=token).auth_test()
        assert who["is_enterprise_install"] is True and who["team_id"] == GRID_ENTERPRISE
        assert second.state.org_installed(GRID_SOUTH)  # the org-wide install is remembered: South still has the app
    finally:
        second.close()


@pytest.mark.browser
def test_the_console_and_consent_page_in_a_browser_on_grid(grid: SandboxServer, chromium: Any) -> None:
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(5000)
    try:
        page.goto(grid.url)
        page.select_option("#user-select", SAM)  # South only: South's channels and the one shared into South
        page.wait_for_function("document.querySelector('#channel-select').options.length === 2")
        options = page.eval_on_selector_all("#channel-select option", "options => options.map(o => o.textContent)")
        assert options == ["#south-general", "#shared-launch (shared)"]
        page.select_option("#user-select", CLEO)  # both workspaces: all three channels
        page.wait_for_function("document.querySelector('#channel-select').options.length === 3")
        # The consent page: Olivia, an org admin, picks the whole organisation and presses Allow.
        page.route("http://127.0.0.1:3000/**", lambda route: route.fulfill(body="ok"))
        query = urlencode({"client_id": grid.config.client_id, "scope": BOT_SCOPES, "user_scope": USER_SCOPES, "state": "g"})
        page.goto(f"{grid.authorize_url}?{query}")
        page.check(f"input[name='user_id'][value='{OLIVIA}']")
        page.check(f"input[name='install_on'][value='{GRID_ENTERPRISE}']")
        page.click("#allow")
        page.wait_for_url("http://127.0.0.1:3000/**")
        code = parse_qs(urlsplit(page.url).query)["code"][0]
    finally:
        context.close()
    answer = WebClient(base_url=grid.api_url).oauth_v2_access(
        client_id=grid.config.client_id, client_secret=grid.config.client_secret, code=code
    )
    assert answer["is_enterprise_install"] is True and answer["authed_user"]["id"] == OLIVIA
