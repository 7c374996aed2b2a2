"""Listeners take "now" from Delegate's clock (context["delegate"].clock), never from the machine's."""

from __future__ import annotations

from datetime import UTC, datetime

from slack_bolt import BoltContext

from listeners.context import clock_of, event_moment, now_of
from listeners.events.app_uninstalled import app_uninstalled_callback
from listeners.events.tokens_revoked import tokens_revoked_callback

from .fakes import TEAM, FakeRevocationStore, world

AHEAD = datetime(2031, 5, 4, 12, 0, tzinfo=UTC)  # a clock far from the real one, like the sandbox's after "+N hours"


def test_now_is_delegates_clock() -> None:
    w = world(now=AHEAD)
    assert now_of(w.context) == AHEAD and clock_of(w.context)() == AHEAD


def test_without_a_delegate_it_is_the_real_time() -> None:
    assert abs((now_of(BoltContext({})) - datetime.now(UTC)).total_seconds()) < 5


def test_an_event_without_a_time_of_its_own_happened_now_on_delegates_clock() -> None:
    assert event_moment({"event": {}}, lambda: AHEAD) == AHEAD
    w, store = world(now=AHEAD), FakeRevocationStore()
    event = {"type": "tokens_revoked", "tokens": {"oauth": ["U1"], "bot": []}}
    tokens_revoked_callback(body={"event": event}, event=event, context=w.context, store=store)
    app_uninstalled_callback(body={"event": {"type": "app_uninstalled"}}, context=w.context, store=store)
    # tokens_revoked marks the person's row revoked (so that they can be told why); app_uninstalled deletes all
    assert [forgotten["installed_at_or_before"] for forgotten in w.delegate.manager.forgotten] == [AHEAD]
    assert [call[1]["installed_at_or_before"] for call in store.deleted] == [AHEAD]
    assert w.delegate.manager.forgotten[0]["team_id"] == store.deleted[0][1]["team_id"] == TEAM
