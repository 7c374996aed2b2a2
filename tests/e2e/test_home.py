"""App Home stays true through the real sandbox and Delegate: the bot token renewed, and the tab republished after
every change of the person's connection."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Delegate, running_delegate, wait_for

ALICE, BOB = "U0ALICE001", "U0BOB00002"
TEAM, GENERAL = "T0SANDBOX1", "C0GENERAL1"


@pytest.fixture
def delegate(tmp_path: Path) -> Iterator[Delegate]:
    with running_delegate(tmp_path) as running:
        running.install(ALICE)
        wait_for(lambda: home_of(running, ALICE))  # published right after the install
        yield running


def home_of(delegate: Delegate, user_id: str) -> dict[str, Any] | None:
    """The person's App Home view as the sandbox holds it (what the Home tab shows), or None."""
    homes = [view for view in delegate.sandbox.open_views(user_id) if view.get("type") == "home"]
    return homes[-1] if homes else None


def home_says(delegate: Delegate, user_id: str, *needles: str) -> dict[str, Any] | None:
    """The person's App Home view once it shows every needle, else None."""
    home = home_of(delegate, user_id)
    text = json.dumps(home["blocks"]) if home else ""
    return home if home and all(needle in text for needle in needles) else None


def republished(delegate: Delegate, user_id: str, before: dict[str, Any] | None) -> dict[str, Any] | None:
    """The person's App Home view once Delegate has published it again since `before`, else None."""
    home = home_of(delegate, user_id)
    return home if home and (before is None or home["hash"] != before["hash"]) else None


def bot_refreshes(delegate: Delegate) -> int:
    """Bot tokens the sandbox issued for a refresh grant."""
    bot = delegate.sandbox.config.bot_user_id
    return sum(1 for token in delegate.sandbox.tokens(bot) if token["kind"] == "bot" and token["grant"] == "refresh_token")


def test_app_home_after_13_hours_renews_the_bot_token_once_and_publishes(delegate: Delegate) -> None:
    before = home_of(delegate, ALICE)
    assert before is not None
    delegate.sandbox.advance_clock(13 * 3600)  # every token expired at Slack; no refresher ran meanwhile
    assert bot_refreshes(delegate) == 0
    delegate.sandbox.send_app_home_opened(ALICE)
    after = wait_for(lambda: republished(delegate, ALICE, before))
    assert "Your Delegate connection" in json.dumps(after["blocks"])
    assert bot_refreshes(delegate) == 1
    assert delegate.sandbox.counters()["grant_failures"].get("refresh_token", 0) == 0
    assert delegate.sandbox.counters()["refreshes_by_user"].get(ALICE, 0) == 0  # App Home needs no user token
