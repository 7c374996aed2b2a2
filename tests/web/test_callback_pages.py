"""The OAuth callback's failure page explains only names Slack really sends, and its state cookie is well formed."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine

from stores import SQLAlchemyInstallationStore, SQLAlchemyOAuthStateStore
from tests.e2e.harness import Delegate, fetch, running_delegate
from tests.web.support import token_tables, unlimited
from web.oauth import build_oauth_settings

ALICE = "U0ALICE001"


@pytest.fixture(scope="module")
def delegate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Delegate]:
    with running_delegate(tmp_path_factory.mktemp("callback")) as running:
        yield unlimited(running)


@pytest.mark.parametrize(
    "error",
    [
        "Your%20account%20is%20locked.%20Call%20%2B1-555-0100",
        "invalid_client_id",  # a real name, but one Slack never puts on the redirect: a link claiming it lies
        "bad_redirect_uri",
        "storage_error",
        "x" * 300,
    ],
)
def test_an_error_parameter_slack_does_not_send_is_not_shown(delegate: Delegate, error: str) -> None:
    _, query, cookie = delegate.start_oauth("/slack/install")
    before = token_tables(delegate)
    page = fetch(f"{delegate.base_url}/slack/oauth_redirect?error={error}&state={query['state']}", cookie=cookie)
    assert page.status == 400 and "The authorization did not complete" in page.body
    assert "Slack's reason" not in page.body
    for echoed in ("locked", "555", "invalid_client_id", "bad_redirect_uri", "storage_error", "xxxxxxxx", "credentials"):
        assert echoed not in page.body
    assert token_tables(delegate) == before


def test_the_cancel_slack_sends_is_still_explained(delegate: Delegate) -> None:
    _, query, cookie = delegate.start_oauth("/slack/install")
    page = fetch(f"{delegate.base_url}/slack/oauth_redirect?error=access_denied&state={query['state']}", cookie=cookie)
    assert page.status == 200 and "You cancelled" in page.body and "<code>access_denied</code>" in page.body


def test_an_unknown_error_is_logged_short_and_on_one_line(delegate: Delegate, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="web.oauth")
    fetch(f"{delegate.base_url}/slack/oauth_redirect?error=evil%0d%0aFAKE%20LOG%20LINE{'y' * 200}")
    [line] = [r.getMessage() for r in caplog.records if r.name == "web.oauth" and "callback failed" in r.getMessage()]
    assert "\n" not in line and "\r" not in line and len(line) < 120
    assert "evil??FAKE?LOG?LINE" in line


def test_slacks_own_answer_is_still_shown_by_name(delegate: Delegate) -> None:
    page = delegate.install("U0DAVE0004")  # the sandbox's user in a workspace the app is not distributed to
    assert page.status == 400 and "<code>invalid_team_for_non_distributed_app</code>" in page.body


def test_a_code_slack_never_makes_is_not_sent_to_slack(delegate: Delegate) -> None:
    _, query, cookie = delegate.start_oauth("/slack/install")
    calls = delegate.sandbox.counters()["api_calls"].get("oauth.v2.access", 0)
    page = fetch(f"{delegate.base_url}/slack/oauth_redirect?code=%00%0d%0a&state={query['state']}", cookie=cookie)
    assert page.status == 400 and "already used or has expired" in page.body
    assert delegate.sandbox.counters()["api_calls"].get("oauth.v2.access", 0) == calls


def cookie_attributes(header: str) -> tuple[str, dict[str, str]]:
    first, *rest = [part.strip() for part in header.split(";")]
    return first, {part.split("=", 1)[0].lower(): (part.split("=", 1) + [""])[1] for part in rest}


def test_the_state_cookie_is_lax_http_only_and_not_secure_on_http(delegate: Delegate) -> None:
    for path in ("/slack/install", "/slack/connect"):
        start, query, _ = delegate.start_oauth(path)
        value, attributes = cookie_attributes(start.headers["set-cookie"])
        assert value == f"slack-app-oauth-state={query['state']}"
        assert attributes["samesite"] == "Lax" and "httponly" in attributes and attributes["path"] == "/"
        assert attributes["max-age"] == "600"
        assert "secure" not in attributes  # the sandbox's http://127.0.0.1: a Secure cookie may be dropped there


def test_the_deletion_cookie_after_the_callback_has_the_same_attributes(delegate: Delegate) -> None:
    page = delegate.install(ALICE)
    value, attributes = cookie_attributes(page.headers["set-cookie"])
    assert value == "slack-app-oauth-state=deleted" and attributes["samesite"] == "Lax" and "httponly" in attributes
    assert "secure" not in attributes and attributes["path"] == "/"


def test_the_state_cookie_is_secure_when_the_redirect_uri_is_https() -> None:
    engine = create_engine("sqlite://")
    settings = build_oauth_settings(
        client_id="111.222",
        client_secret="not-used",
        bot_scopes=["commands"],
        user_scopes=["chat:write"],
        redirect_uri="https://delegate.example/slack/oauth_redirect",
        authorization_url="https://slack.com/oauth/v2/authorize",
        installation_store=SQLAlchemyInstallationStore.__new__(SQLAlchemyInstallationStore),
        state_store=SQLAlchemyOAuthStateStore(expiration_seconds=600, engine=engine),
    )
    for header in (
        settings.state_utils.build_set_cookie_for_new_state("abc"),
        settings.state_utils.build_set_cookie_for_deletion(),
    ):
        _, attributes = cookie_attributes(header)
        assert "secure" in attributes and attributes["samesite"] == "Lax" and "httponly" in attributes
    assert settings.state_utils.is_valid_browser("abc", {"cookie": ["slack-app-oauth-state=abc"]})


def test_privacy_and_support_are_not_found_until_the_operator_sets_them(delegate: Delegate) -> None:
    for path in ("/privacy", "/support"):
        page = fetch(delegate.base_url + path)
        assert page.status == 404 and "location" not in page.headers
    landing = fetch(delegate.base_url + "/").body
    assert "Privacy policy" not in landing and "Get help" not in landing


def test_a_callback_without_state_uses_no_code_and_leads_to_the_install_link(delegate: Delegate) -> None:
    before = token_tables(delegate)
    grants = delegate.sandbox.counters()["grants"].get("authorization_code", 0)
    for query in ("code=1.2.abc", "code=1.2.abc&state=", "state=&code=1.2.abc&utm_source=marketplace"):
        page = fetch(f"{delegate.base_url}/slack/oauth_redirect?{query}", cookie="slack-app-oauth-state=left-over")
        assert page.status == 400 and "Please add Delegate from its install link" in page.body, query
        assert 'href="/slack/install"' in page.body
    cancelled = fetch(f"{delegate.base_url}/slack/oauth_redirect?error=access_denied&state=")
    assert cancelled.status == 200 and "You cancelled" in cancelled.body  # a cancel says so, state or not
    assert token_tables(delegate) == before
    assert delegate.sandbox.counters()["grants"].get("authorization_code", 0) == grants


def test_open_slack_leads_to_delegates_home_tab_where_slack_named_the_app_and_workspace() -> None:
    from slack_sdk.oauth.installation_store import Installation

    from web.oauth import app_home_link

    def installed(**values: str | None) -> Installation:
        return Installation(user_id="U1", **{"app_id": "A0APP", "team_id": "T0TEAM", **values})  # type: ignore[arg-type]

    assert app_home_link("slack://open", installed()) == "slack://app?team=T0TEAM&id=A0APP&tab=home"
    assert app_home_link("http://127.0.0.1:4000/", installed()) == "http://127.0.0.1:4000/"  # the sandbox's console
    for odd in ({"app_id": None}, {"team_id": None}, {"app_id": "A0&x=1"}, {"team_id": "T0\r\nX"}):
        assert app_home_link("slack://open", installed(**odd)) == "slack://open", odd
