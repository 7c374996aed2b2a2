"""A person in a real browser: Add to Slack, Slack's consent page, Allow or Cancel, and Delegate's result page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Delegate, running_delegate, wait_for

ALICE, BOB = "U0ALICE001", "U0BOB00002"


@pytest.fixture
def delegate(tmp_path: Path) -> Iterator[Delegate]:
    with running_delegate(tmp_path) as running:
        yield running


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context()
    yield context.new_page()
    context.close()


@pytest.mark.browser
def test_install_through_the_consent_page(delegate: Delegate, page: Any) -> None:
    page.goto(delegate.base_url + "/")
    page.click("text=Add to Slack")
    page.wait_for_selector("#allow")
    assert "Delegate" in page.inner_text("#app-name")
    assert "chat:write" in page.inner_text("#user-scopes")
    page.check(f"input[value='{ALICE}']")
    page.click("#allow")
    page.wait_for_selector("h1")
    assert "connected" in page.inner_text("h1")
    found = delegate.stores.installation_store.find_installation(enterprise_id=None, team_id="T0SANDBOX1", user_id=ALICE)
    assert found is not None and found.user_token and found.bot_token


@pytest.mark.browser
def test_cancel_on_the_consent_page(delegate: Delegate, page: Any) -> None:
    page.goto(delegate.base_url + "/slack/connect")
    page.wait_for_selector("#cancel")
    page.click("#cancel")
    page.wait_for_selector("h1")
    assert page.inner_text("h1") == "You cancelled"
    assert delegate.user_row(ALICE) is None


@pytest.mark.browser
def test_connect_from_the_console_and_open_slack_back_to_it(delegate: Delegate, page: Any) -> None:
    delegate.install(ALICE)
    sandbox = delegate.sandbox
    page.set_default_timeout(10000)
    page.goto(sandbox.url)
    page.select_option("#user-select", BOB)
    page.fill("#composer-input", "/snooze-me 30m")
    page.press("#composer-input", "Enter")
    button = page.wait_for_selector("#messages li.ephemeral button.link-button")
    with page.context.expect_page() as opened:
        button.click()
    consent = opened.value
    consent.wait_for_selector("#allow")
    # Slack sends a link button's click too; Delegate acks it.
    [click] = wait_for(lambda: [d for d in sandbox.deliveries() if d["kind"] == "block_actions"])
    assert click["status"] == 200 and click["error"] is None
    consent.check(f"input[value='{BOB}']")
    consent.click("#allow")
    consent.wait_for_selector("text=Open Slack")
    assert delegate.user_row(BOB) is not None
    consent.click("text=Open Slack")
    consent.wait_for_selector("#user-select option", state="attached")
    assert consent.url == sandbox.url


@pytest.mark.browser
def test_a_search_result_opens_the_message_in_the_console(delegate: Delegate, page: Any) -> None:
    delegate.install(ALICE)
    sandbox = delegate.sandbox
    said = sandbox.say(ALICE, "C0RANDOM02", "the quarterly numbers are in")
    page.set_default_timeout(10000)
    page.goto(sandbox.url)
    page.select_option("#user-select", ALICE)
    page.fill("#composer-input", "/search-mine quarterly")
    page.press("#composer-input", "Enter")
    link = page.wait_for_selector("#messages li.ephemeral a:text('open')")
    with page.context.expect_page() as opened:
        link.click()
    console = opened.value
    highlighted = console.wait_for_selector("#messages li.highlight")
    assert highlighted.get_attribute("data-ts") == said["ts"]
    assert "the quarterly numbers are in" in highlighted.text_content()
