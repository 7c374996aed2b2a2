"""Refresh-ahead spends Slack's budget only on tokens people use: a person idle for longer than the activity window is
set aside by the refresher and renewed on their next command, after its acknowledgement, through the real app against
the sandbox (on the sandbox's clock, the refresher running as in `python app.py run`)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.harness import running_delegate, wait_for

ALICE, GENERAL = "U0ALICE001", "C0GENERAL1"
DAY = 24 * 3600


def test_an_idle_persons_expired_token_is_renewed_after_the_ack_of_their_next_command(tmp_path: Path) -> None:
    with running_delegate(tmp_path, sandbox_mode=True) as delegate:
        sandbox = delegate.sandbox
        delegate.install(ALICE)
        sandbox.advance_clock(15 * DAY)  # idle for 15 days: her 12 h token expired long ago, and the refresher woke
        row = wait_for(lambda: (r := delegate.user_row(ALICE)) is not None and not r.refresh_ahead and r, timeout=30)
        assert row.user_token_expires_at.timestamp() < sandbox.now(), "set aside, not renewed ahead"
        assert sandbox.counters()["refreshes_by_user"].get(ALICE, 0) == 0

        answer = sandbox.send_slash_command(ALICE, "/post-as-me", "back from holiday", channel_id=GENERAL)
        assert answer["status"] == 200 and not answer["late"]
        assert answer["elapsed_ms"] < 1000, "the ack left before any refresh"
        [message] = wait_for(lambda: [m for m in sandbox.messages(GENERAL) if m["text"] == "back from holiday"])
        assert message["user"] == ALICE and message["as"] == "user"
        assert sandbox.counters()["refreshes_by_user"][ALICE] == 1, "one refresh, after the ack"

        # Her use is recorded after the ack: from now on the refresher renews her token ahead again.
        row = wait_for(lambda: (r := delegate.user_row(ALICE)) is not None and r.refresh_ahead and r.last_used_at and r)
        assert row.last_used_at.timestamp() >= sandbox.now() - 60
        sandbox.advance_clock(11 * 3600)  # her renewed token has an hour left: inside the refresher's window
        wait_for(lambda: sandbox.counters()["refreshes_by_user"][ALICE] == 2, timeout=30)
