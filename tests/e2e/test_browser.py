"""A person in a real browser: Add to Slack, Slack's consent page, Allow or Cancel, and Delegate's result page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Delegate, running_delegate

ALICE = "U0ALICE001"


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
