"""An injected clock reaches every token decision: the store's stamps, the token manager, the refresher and its wake-up."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sqlalchemy import select

from stores.refresher import Refresher
from stores.rotation import TokenKey, TokenManager
from stores.schema import utcnow
from tests.stores.test_rotation import CLIENT_SECRET, connect, token_server, user_row  # noqa: F401

__all__ = ["token_server"]

KEY = TokenKey.of(None, "T1", "U1")


class MovableClock:
    """Real time plus an offset that a test moves, like the sandbox's clock."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.offset


def test_the_token_manager_runs_on_its_stores_clock(store, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    api_url, state = token_server
    clock = MovableClock()
    store.clock = clock
    manager = TokenManager(store, client_secret=CLIENT_SECRET, api_url=api_url, background_refresh=False)
    try:
        assert manager.clock is clock
        connect(store, state, "U1")  # a 12-hour token, dated by slack_sdk with the real time
        refresher = Refresher(manager, jitter=timedelta(0), max_per_minute=6000)
        assert refresher.sweep_once().due == 0
        clock.offset = timedelta(hours=11)  # an hour left on this clock: inside the 2-hour window
        assert manager.due_for_refresh(timedelta(hours=2), 10) == [KEY]
        assert refresher.sweep_once().refreshed == 1
        row = user_row(engine, store, "U1")
        assert abs(row.user_token_expires_at - (clock() + timedelta(hours=12))) < timedelta(seconds=5)
        assert abs(row.last_refreshed_at - clock()) < timedelta(seconds=5)
        e = store.tables.token_events.c
        with engine.connect() as conn:
            stamped = conn.execute(select(e.occurred_at).where(e.event == "refreshed")).scalar_one()
        assert abs(stamped - clock()) < timedelta(seconds=5)  # the audit trail is on the same clock
    finally:
        manager.close()


def test_wake_makes_the_refresher_sweep_now_instead_of_at_its_next_interval(store, token_server) -> None:  # type: ignore[no-untyped-def]
    api_url, state = token_server
    clock = MovableClock()
    store.clock = clock
    manager = TokenManager(store, client_secret=CLIENT_SECRET, api_url=api_url, background_refresh=False)
    connect(store, state, "U1")
    refresher = Refresher(manager, jitter=timedelta(0), max_per_minute=6000, interval=timedelta(hours=1))
    swept = threading.Event()
    sweep_once = refresher.sweep_once

    def observed_sweep():  # type: ignore[no-untyped-def]
        result = sweep_once()
        swept.set()
        return result

    refresher.sweep_once = observed_sweep  # type: ignore[method-assign]
    refresher.start()
    try:
        assert swept.wait(10)  # the first sweep, at start: nothing due yet
        swept.clear()
        assert state.refresh_calls == 0
        clock.offset = timedelta(hours=11)
        refresher.wake()
        assert swept.wait(10)  # long before the hour-long interval
        assert state.refresh_calls == 1
    finally:
        refresher.stop()
        manager.close()
