"""One clock in sandbox mode: Delegate wired to the sandbox as `python app.py run` wires it follows the sandbox's clock,
so moving it forward makes refresh-ahead happen, and every time Delegate states is on that clock."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Delegate, running_delegate, wait_for

ALICE, GENERAL = "U0ALICE001", "C0GENERAL1"
HOUR = 3600
LIFETIME = 12 * HOUR  # the sandbox's expires_in, as Slack's


@pytest.fixture
def delegate(tmp_path: Path) -> Iterator[Delegate]:
    with running_delegate(tmp_path, sandbox_mode=True) as running:
        running.install(ALICE)
        yield running


def replies(delegate: Delegate, needle: str) -> list[dict[str, Any]]:
    return [m for m in delegate.sandbox.ephemerals(ALICE) if needle in json.dumps(m)]


def stated_time(text: str, field: str) -> int:
    """The <!date^…> stamp shown under a connection field, e.g. "Token expires"."""
    match = re.search(re.escape(f"*{field}*") + r"\\n<!date\^(\d+)\^", text)
    assert match, f"no date under {field} in {text}"
    return int(match.group(1))


def user_refreshes(delegate: Delegate) -> list[dict[str, Any]]:
    return [r for r in delegate.sandbox.refreshes(ALICE) if r["kind"] == "user"]


def test_eleven_hours_later_the_refresher_renews_ahead_and_connection_tells_the_truth(delegate: Delegate) -> None:
    sandbox = delegate.sandbox
    assert user_refreshes(delegate) == []
    now = sandbox.advance_clock(11 * HOUR)  # the 12 h token now has 1 h left: inside the refresher's 2 h window

    [grant] = wait_for(lambda: user_refreshes(delegate), timeout=30)  # no command: the refresher did it
    assert 0 < grant["left_on_old"] <= HOUR  # renewed ahead, before the old token expired
    assert grant["at"] >= now
    wait_for(lambda: (row := delegate.user_row(ALICE)) is not None and row.last_refresh_outcome == "refreshed")
    assert sandbox.counters()["refreshes_by_user"] == {ALICE: 1}

    delegate.sandbox.send_slash_command(ALICE, "/delegate", "connection", channel_id=GENERAL)
    [shown] = wait_for(lambda: replies(delegate, "Token expires"))
    text = json.dumps(shown)
    expires, renewed = stated_time(text, "Token expires"), stated_time(text, "Last renewal")
    assert abs(expires - (grant["at"] + LIFETIME)) <= 2  # 12 h after the renewal on the sandbox's clock, never "now"
    assert abs(renewed - grant["at"]) <= 2
    assert expires == int(grant["expires_at"]) or abs(expires - grant["expires_at"]) <= 1
    assert len(user_refreshes(delegate)) == 1  # the command used the renewed token: no second grant


def test_the_first_grant_is_dated_on_the_sandbox_clock(tmp_path: Path) -> None:
    with running_delegate(tmp_path, sandbox_mode=True) as delegate:
        now = delegate.sandbox.advance_clock(30 * HOUR)  # before anyone connects
        delegate.install(ALICE)
        delegate.sandbox.send_slash_command(ALICE, "/delegate", "connection", channel_id=GENERAL)
        [shown] = wait_for(lambda: replies(delegate, "Token expires"))
        text = json.dumps(shown)
        assert abs(stated_time(text, "Token expires") - (now + LIFETIME)) <= 5
        assert abs(stated_time(text, "Connected since") - now) <= 5
        assert ":large_green_circle: Connected" in text


def test_status_for_two_hours_after_twelve_hours_counts_from_the_sandbox_now(delegate: Delegate) -> None:
    sandbox = delegate.sandbox
    sandbox.advance_clock(12 * HOUR)  # the token has expired at the sandbox; Delegate knows, and renews it
    before = sandbox.now()
    sandbox.send_slash_command(ALICE, "/set-my-status", ":coffee: Break for 2h", channel_id=GENERAL)
    [shown] = wait_for(lambda: replies(delegate, "Your status is now"))
    after = sandbox.now()
    stamp = int(re.search(r"until <!date\^(\d+)\^", json.dumps(shown)).group(1))  # type: ignore[union-attr]
    assert before + 2 * HOUR - 1 <= stamp <= after + 2 * HOUR
    assert int(sandbox.state.profile_json(ALICE)["status_expiration"]) == stamp  # what Slack holds, not just what was said


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


@pytest.mark.browser
def test_the_console_shows_refresh_ahead_happen_after_eleven_hours(delegate: Delegate, page: Any) -> None:
    page.goto(delegate.sandbox.url)
    page.wait_for_selector(f"#tokens tr[data-user='{ALICE}'][data-kind='user'][data-status='active']")
    assert "No token renewed yet" in page.inner_text("#refreshes")
    page.click("#advance-eleven-hours")
    renewal = page.wait_for_selector(f"#refreshes li[data-user='{ALICE}'][data-kind='user'][data-ahead='true']")
    text = renewal.inner_text()
    assert "Alice" in text and "before it was due (refresh-ahead)" in text
    assert re.search(r"the new one expires in (11 h 59|12 h 0) min", text), text
    newest = page.wait_for_selector(f"#tokens tr[data-user='{ALICE}'][data-kind='user']")
    assert "refresh_token" in newest.inner_text() and "s ago" in newest.inner_text()
