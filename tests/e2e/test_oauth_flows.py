"""Install and connect through the sandbox, and every way the OAuth callback can fail, seen as a person sees it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from listeners.manifest import user_scopes
from stores.rotation import TokenKey
from tests.e2e.harness import Delegate, fetch, running_delegate

ALICE, BOB, DAVE = "U0ALICE001", "U0BOB00002", "U0DAVE0004"
TEAM = "T0SANDBOX1"


@pytest.fixture
def delegate(tmp_path: Path) -> Iterator[Delegate]:
    with running_delegate(tmp_path) as running:
        yield running


def stored_users(delegate: Delegate) -> int:
    table = delegate.stores.installation_store.installations
    with delegate.stores.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_add_to_slack_installs_the_bot_and_captures_the_installers_token(delegate: Delegate) -> None:
    page = delegate.install(ALICE)
    assert page.status == 200 and "connected" in page.body
    assert "Sandbox Inc" in page.body
    installation = delegate.stores.installation_store.find_installation(enterprise_id=None, team_id=TEAM, user_id=ALICE)
    assert installation.bot_token.startswith("xoxe.xoxb-1-")
    assert installation.user_token.startswith("xoxe.xoxp-1-")
    assert installation.user_refresh_token is None  # kept from Bolt's own rotator: the token manager refreshes
    stored = delegate.stores.manager.read(TokenKey.of(None, TEAM, ALICE))
    assert stored.refresh_token.startswith("xoxe-1-") and stored.expires_at is not None
    assert installation.bot_user_id and installation.bot_id
    assert "xox" not in page.body
    [home] = [v for v in delegate.sandbox.open_views(ALICE) if v.get("type") == "home"]  # shown right away
    assert "Disconnect" in str(home)


def test_connect_my_account_asks_for_user_scopes_only(delegate: Delegate) -> None:
    delegate.install(ALICE)
    start, query, _ = delegate.start_oauth("/slack/connect")
    assert query["scope"] == "" and "chat:write" in query["user_scope"]
    page = delegate.connect(BOB)
    assert page.status == 200 and "connected to your account" in page.body
    bob = delegate.stores.installation_store.find_installation(enterprise_id=None, team_id=TEAM, user_id=BOB)
    alice = delegate.stores.installation_store.find_installation(enterprise_id=None, team_id=TEAM, user_id=ALICE)
    assert bob.user_token and bob.user_token != alice.user_token
    assert bob.bot_token == alice.bot_token  # the workspace's bot is untouched


def test_reconnect_asks_for_the_apps_user_scopes_again(delegate: Delegate) -> None:
    _, query, _ = delegate.start_oauth("/slack/connect?scopes=search:read,dnd:write")
    assert query["user_scope"].split(",") == list(user_scopes())


def test_cancelled_consent_changes_nothing(delegate: Delegate) -> None:
    _, query, cookie = delegate.start_oauth("/slack/install")
    page = fetch(f"{delegate.base_url}/slack/oauth_redirect?error=access_denied&state={query['state']}", cookie=cookie)
    assert page.status == 200 and "You cancelled" in page.body
    assert stored_users(delegate) == 0


def test_forged_state_is_refused(delegate: Delegate) -> None:
    _, query, _ = delegate.start_oauth("/slack/install")
    code_url = delegate.sandbox.approve(ALICE, scope=query["scope"], user_scope=query["user_scope"], state="forged")
    no_cookie = fetch(code_url)
    assert no_cookie.status == 400 and "start again" in no_cookie.body.lower()
    forged_cookie = fetch(code_url, cookie="slack-app-oauth-state=forged")
    assert forged_cookie.status == 400 and "expired or was already used" in forged_cookie.body
    assert stored_users(delegate) == 0


def test_a_replayed_callback_is_refused(delegate: Delegate) -> None:
    start, query, cookie = delegate.start_oauth("/slack/install")
    redirect = delegate.sandbox.approve(
        ALICE, scope=query["scope"], user_scope=query["user_scope"], redirect_uri=query["redirect_uri"], state=query["state"]
    )
    assert fetch(redirect, cookie=cookie).status == 200
    replay = fetch(redirect, cookie=cookie)
    assert replay.status == 400 and "expired or was already used" in replay.body


def test_a_code_used_twice_is_refused_with_a_clear_page(delegate: Delegate) -> None:
    _, query, cookie = delegate.start_oauth("/slack/install")
    redirect = delegate.sandbox.approve(
        ALICE, scope=query["scope"], user_scope=query["user_scope"], redirect_uri=query["redirect_uri"], state=query["state"]
    )
    assert fetch(redirect, cookie=cookie).status == 200
    code = redirect.split("code=")[1].split("&")[0]
    _, fresh_query, fresh_cookie = delegate.start_oauth("/slack/install")
    page = fetch(f"{delegate.base_url}/slack/oauth_redirect?code={code}&state={fresh_query['state']}", cookie=fresh_cookie)
    assert page.status == 400 and "already used or has expired" in page.body


def test_non_distributed_app_explains_the_fix(delegate: Delegate) -> None:
    page = delegate.install(DAVE)
    assert page.status == 400
    assert "public distribution" in page.body and "invalid_team_for_non_distributed_app" in page.body
    assert stored_users(delegate) == 0


def test_slack_unreachable_during_the_callback(delegate: Delegate) -> None:
    delegate.sandbox.add_fault("oauth.v2.access", status=503, times=1)
    page = delegate.install(ALICE)
    assert page.status == 502 and "Slack could not be reached" in page.body
    assert stored_users(delegate) == 0


def test_garbage_parameters_get_a_clear_page_not_a_500(delegate: Delegate) -> None:
    for path in (
        "/slack/oauth_redirect",
        "/slack/oauth_redirect?code=%3Cscript%3Ealert(1)%3C/script%3E&state=%3Cb%3E",
        "/slack/oauth_redirect?error=%3Cscript%3E&state=x",
        "/slack/connect?scopes=DROP%20TABLE",
        "/slack/connect?team=%3Cscript%3E",
    ):
        page = fetch(delegate.base_url + path)
        assert page.status < 500, (path, page.status)
        assert "<script>" not in page.body and "Traceback" not in page.body
    assert stored_users(delegate) == 0


def test_landing_health_and_not_found_pages(delegate: Delegate) -> None:
    assert "Add to Slack" in fetch(delegate.base_url + "/").body
    assert fetch(delegate.base_url + "/healthz").body == "ok"
    assert fetch(delegate.base_url + "/nope").status == 404


def test_forged_request_signature_is_refused(delegate: Delegate) -> None:
    page = fetch(
        delegate.base_url + "/slack/events",
        method="POST",
        body="command=%2Fdelegate&text=help&user_id=U0ALICE001&team_id=T0SANDBOX1",
    )
    assert page.status == 401
