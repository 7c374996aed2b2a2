"""A grant is dated on the app's clock: slack_sdk stamps an Installation with the real time."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from slack_sdk.oauth.installation_store import Installation

from web.oauth import on_clock


def fresh_grant() -> Installation:
    return Installation(
        team_id="T1", user_id="U1", user_token="xoxe.xoxp-1-a", bot_token="xoxe.xoxb-1-b",
        user_token_expires_in=43200, bot_token_expires_in=43200,
    )  # fmt: skip


def test_a_clock_ahead_moves_issue_and_both_expiries_with_it() -> None:
    ahead = datetime.now(UTC) + timedelta(hours=30)
    installation = on_clock(fresh_grant(), lambda: ahead)
    assert abs(installation.installed_at - ahead.timestamp()) < 2
    assert abs(installation.user_token_expires_at - (ahead.timestamp() + 43200)) < 2  # type: ignore[operator]
    assert abs(installation.bot_token_expires_at - (ahead.timestamp() + 43200)) < 2  # type: ignore[operator]


def test_on_real_time_nothing_changes() -> None:
    installation = fresh_grant()
    issued, expires = installation.installed_at, installation.user_token_expires_at
    assert on_clock(installation, lambda: datetime.now(UTC)).installed_at == issued
    assert installation.user_token_expires_at == expires and expires is not None and expires > time.time()
