"""The Slack Marketplace's path through the sandbox: "Add to Slack" on the listing starts at /slack/install with no
page of Delegate's before it, and what a new person is told to do next, on the success page and in App Home."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from listeners.manifest import load, slash_command_details
from tests.e2e.harness import Delegate, Page, fetch, running_delegate, wait_for

ALICE, BOB = "U0ALICE001", "U0BOB00002"
SUPPORT = "https://help.example.com/delegate?from=slack&lang=en"
PRIVACY = "https://example.com/legal/privacy"
LINKS = {"DELEGATE_SUPPORT_URL": SUPPORT, "DELEGATE_PRIVACY_URL": PRIVACY}


@pytest.fixture
def delegate(tmp_path: Path, database_url: str) -> Iterator[Delegate]:
    with running_delegate(tmp_path, database_url=database_url, env=LINKS) as running:
        running.sandbox.config.directory_links.update(
            {"Privacy policy": f"{running.base_url}/privacy", "Support": f"{running.base_url}/support"}
        )
        yield running


def listing(delegate: Delegate) -> Page:
    page = fetch(f"{delegate.sandbox.url}apps/{delegate.sandbox.config.app_id}")
    assert page.status == 200, page.body
    return page


def add_to_slack(page: Page) -> str:
    """The href of the listing's "Add to Slack" button."""
    found = re.search(r'id="add-to-slack" href="([^"]+)"', page.body)
    assert found, page.body
    return unescape(found.group(1))


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def stored_rows(delegate: Delegate) -> int:
    table = delegate.stores.installation_store.installations
    with delegate.stores.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def home_of(delegate: Delegate, user_id: str) -> dict[str, Any] | None:
    homes = [view for view in delegate.sandbox.open_views(user_id) if view.get("type") == "home"]
    return homes[-1] if homes else None


def home_text(delegate: Delegate, user_id: str, *needles: str) -> str | None:
    """The person's Home tab as JSON once it shows every needle, else None."""
    home = home_of(delegate, user_id)
    text = json.dumps(home["blocks"]) if home else ""
    return text if home and all(needle in text for needle in needles) else None


def test_the_listing_shows_the_manifests_display_information(delegate: Delegate) -> None:
    page = listing(delegate)
    display = load()["display_information"]
    for key in ("name", "description", "long_description"):
        assert unescape(page.body).count(display[key]) >= 1, key
    assert display["background_color"] in page.body
    assert fetch(f"{delegate.sandbox.url}apps/A0NOTTHEAPP").status == 404


def test_a_direct_install_from_the_listing_completes_with_the_next_steps(delegate: Delegate) -> None:
    start_url = add_to_slack(listing(delegate))
    assert start_url == f"{delegate.base_url}/slack/install"  # direct install: the app's URL, not Slack's
    start = fetch(start_url)  # a browser with no cookie of Delegate's, and no page of it seen before
    assert start.status == 302 and start.location.startswith(delegate.sandbox.authorize_url)
    query = query_of(start.location)
    cookie = start.headers["set-cookie"].split(";", 1)[0]
    assert cookie == f"slack-app-oauth-state={query['state']}"  # the state is bound to this browser
    consent = fetch(start.location)
    assert consent.status == 200 and "Delegate is requesting permission" in consent.body
    redirect = delegate.sandbox.approve(
        ALICE, scope=query["scope"], user_scope=query["user_scope"], redirect_uri=query["redirect_uri"], state=query["state"]
    )
    page = fetch(redirect, cookie=cookie)
    assert page.status == 200 and "installed in <strong>Sandbox Inc</strong>" in page.body
    text = unescape(page.body)
    assert "What to do next" in text
    for entry in slash_command_details():  # every command, as the manifest declares it
        assert f"{entry.command} {entry.usage_hint}".strip() in text and entry.description in text
    assert "Connect Delegate" in text and "/delegate connect" in text  # how teammates connect
    assert f'href="{SUPPORT.replace("&", "&amp;")}"' in page.body and f'href="{PRIVACY}"' in page.body
    assert delegate.stores.installation_store.find_installation(enterprise_id=None, team_id="T0SANDBOX1", user_id=ALICE)
    wait_for(lambda: home_text(delegate, ALICE, "Try these"))
    replay = fetch(redirect, cookie=cookie)  # the same callback again: its state is spent
    assert replay.status == 400 and "expired or was already used" in replay.body


def test_the_listing_links_lead_to_the_operators_pages(delegate: Delegate) -> None:
    body = listing(delegate).body
    for label, path, target in (("Privacy policy", "/privacy", PRIVACY), ("Support", "/support", SUPPORT)):
        assert f'href="{delegate.base_url}{path}">{label}</a>' in body
        answer = fetch(delegate.base_url + path)
        assert answer.status == 302 and answer.location == target
    landing = fetch(delegate.base_url + "/").body
    assert f'href="{PRIVACY}"' in landing


def test_without_direct_install_the_callback_leads_to_the_install_link_and_changes_nothing(
    tmp_path: Path, database_url: str
) -> None:
    with running_delegate(tmp_path, database_url=database_url, direct_install=False) as delegate:
        start_url = add_to_slack(listing(delegate))
        assert start_url.startswith(delegate.sandbox.authorize_url)  # Slack's own page, with no state of Delegate's
        query = query_of(start_url)
        assert "state" not in query
        assert fetch(start_url).status == 200
        redirect = delegate.sandbox.approve(ALICE, scope=query["scope"], user_scope=query["user_scope"])
        _, _, stale_cookie = delegate.start_oauth("/slack/install")  # an earlier, unfinished start in this browser
        for cookie in (None, stale_cookie):
            page = fetch(redirect, cookie=cookie)
            assert page.status == 400, page.body
            assert "Please add Delegate from its install link" in page.body and 'href="/slack/install"' in page.body
        assert stored_rows(delegate) == 0
        assert delegate.sandbox.counters()["grants"].get("authorization_code", 0) == 0  # the code was never used
        page = delegate.install(ALICE)  # the page's link: /slack/install, and it completes
        assert page.status == 200 and "What to do next" in page.body


@pytest.mark.parametrize("socket_mode", [False, True], ids=["http", "socket_mode"])
def test_a_new_person_sees_how_to_connect_then_what_to_try(tmp_path: Path, socket_mode: bool) -> None:
    with running_delegate(tmp_path, socket_mode=socket_mode, env=LINKS) as delegate:
        assert delegate.install(ALICE).status == 200
        delegate.sandbox.send_app_home_opened(BOB)  # a teammate opens Delegate's Home tab after the install
        text = wait_for(lambda: home_text(delegate, BOB, "not connected", "Connect Delegate"))
        assert "Once you have connected" in text and "Try these" not in text
        assert "/post-as-me" in text and "`/delegate help` lists everything" in text
        assert f"<{SUPPORT.replace('&', '&amp;')}|Get help>" in text and f"<{PRIVACY}|Privacy policy>" in text
        home = home_of(delegate, BOB)
        assert home is not None
        [button] = [
            element
            for block in home["blocks"]
            if block["type"] == "actions"
            for element in block["elements"]
            if element.get("url")
        ]
        connect = urlsplit(button["url"])
        assert f"{connect.scheme}://{connect.netloc}" == delegate.base_url
        page = delegate.authorize(BOB, f"{connect.path}?{connect.query}")  # Bob presses the Home tab's button
        assert page.status == 200 and "connected to your account" in page.body
        assert "Everyone else in the workspace" not in page.body  # that is for the one who installed
        text = wait_for(lambda: home_text(delegate, BOB, "Try these", "Your Delegate connection"))
        assert "Once you have connected" not in text and "not connected" not in text
        for entry in slash_command_details():
            assert entry.command in text
        transports = {d.get("transport") for d in delegate.sandbox.deliveries()}
        assert transports == {"socket_mode" if socket_mode else "http"}


@pytest.mark.browser
def test_in_a_browser_add_to_slack_on_the_listing_installs_and_says_what_next(tmp_path: Path, chromium: Any) -> None:
    with running_delegate(tmp_path, env=LINKS) as delegate:
        context = chromium.new_context()  # no cookie of Delegate's, no page of it opened before
        try:
            page = context.new_page()
            page.set_default_timeout(10000)
            page.goto(f"{delegate.sandbox.url}apps/{delegate.sandbox.config.app_id}")
            assert page.inner_text("#app-name") == "Delegate"
            page.click("#add-to-slack")
            page.wait_for_selector("#allow")
            page.check(f"input[value='{ALICE}']")
            page.click("#allow")
            page.wait_for_selector("text=What to do next")
            assert page.url.startswith(f"{delegate.base_url}/slack/oauth_redirect?code=")
            assert "installed in Sandbox Inc" in page.inner_text("main")
            assert page.get_attribute("text=Get help", "href") == SUPPORT
        finally:
            context.close()
        assert delegate.stores.installation_store.find_installation(enterprise_id=None, team_id="T0SANDBOX1", user_id=ALICE)
