"""Refresh-ahead sweeps and the exchange migration."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from slack_sdk.oauth.installation_store import Installation
from sqlalchemy import select, update

from stores.exchange import exchange_long_lived_tokens
from stores.refresher import Pacer, Refresher
from stores.rotation import TokenManager
from tests.stores.test_rotation import CLIENT_SECRET, connect, events, manager, token_server, user_row  # noqa: F401

__all__ = ["manager", "token_server"]


def test_sweep_refreshes_only_tokens_inside_the_window(store, manager, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    connect(store, state, "U1", stored_expires_in=600)  # due
    connect(store, state, "U2", stored_expires_in=5 * 3600)  # not due
    result = Refresher(manager, window=timedelta(hours=2), jitter=timedelta(0), max_per_minute=6000).sweep_once()
    assert (result.due, result.refreshed, result.failed) == (1, 1, 0)
    assert state.refresh_calls == 1
    assert user_row(engine, store, "U1").user_token_expires_at - manager.clock() > timedelta(hours=11)


def test_concurrent_refreshers_never_refresh_a_token_twice(store, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    api_url, state = token_server
    for n in range(24):
        connect(store, state, f"U{n}", stored_expires_in=300)
    state.latency = 0.02
    refreshers = [
        Refresher(
            TokenManager(store, client_secret=CLIENT_SECRET, api_url=api_url, background_refresh=False),
            jitter=timedelta(0),
            concurrency=3,
            max_per_minute=60000,
        )
        for _ in range(4)
    ]
    results = []
    threads = [threading.Thread(target=lambda r=r: results.append(r.sweep_once())) for r in refreshers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.refreshed for r in results) == 24
    assert state.refresh_calls == 24 and state.rejected_refreshes == 0
    e = store.tables.token_events.c
    with engine.connect() as conn:
        refreshed = conn.execute(select(e.user_id).where(e.event == "refreshed")).scalars().all()
    assert sorted(refreshed) == sorted(f"U{n}" for n in range(24))


def test_a_slow_refresh_holds_up_no_other_batch(store, manager, token_server) -> None:  # type: ignore[no-untyped-def]
    """The worker that finds the queue empty claims the next batch: nobody waits for a batch's slowest refresh."""
    _, state = token_server
    for n in range(6):
        connect(store, state, f"U{n}", stored_expires_in=300 + n)  # U0 first, in the first batch of two
    state.slow_users["U0"] = 1.5
    refresher = Refresher(manager, jitter=timedelta(0), batch_size=2, concurrency=2, max_per_minute=60000)
    result = refresher.sweep_once()
    assert (result.due, result.refreshed, result.failed) == (6, 6, 0)
    arrived = {user: at for at, user in state.refresh_log}
    slow_answered = arrived["U0"] + 1.5
    # With a barrier between batches, U2..U5 (batches 2 and 3) would reach Slack only after U0's answer.
    assert all(arrived[f"U{n}"] < slow_answered - 0.5 for n in range(2, 6)), arrived


def test_sweep_skips_needs_reauth_and_records_failures(store, manager, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    _, refresh = connect(store, state, "U1", stored_expires_in=300)
    state.refresh_tokens.pop(refresh)
    refresher = Refresher(manager, jitter=timedelta(0), max_per_minute=6000)
    assert refresher.sweep_once().failed == 1
    assert user_row(engine, store, "U1").status == "needs_reauth"
    assert refresher.sweep_once().due == 0  # no loop
    assert state.refresh_calls == 1


def test_pacer_spaces_calls() -> None:
    pacer = Pacer(max_per_minute=600)  # one per 100 ms
    started = time.monotonic()
    for _ in range(4):
        pacer.wait()
    assert time.monotonic() - started >= 0.29


def test_refresher_thread_starts_and_stops(manager) -> None:  # type: ignore[no-untyped-def]
    refresher = Refresher(manager, interval=timedelta(seconds=30))
    thread = refresher.start()
    assert thread.is_alive()
    refresher.stop(timeout=5)
    assert not thread.is_alive()


def _save_long_lived(store, state, user_id: str) -> str:  # type: ignore[no-untyped-def]
    token = f"xoxp-long-lived-{user_id}"
    state.long_lived[token] = user_id
    store.save(Installation(app_id="A1", team_id="T1", user_id=user_id, user_token=token, user_scopes="chat:write"))
    return token


def test_exchange_migrates_long_lived_tokens_and_resumes(store, manager, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    for n in range(3):
        _save_long_lived(store, state, f"U{n}")
    first = exchange_long_lived_tokens(manager, max_per_minute=60000, limit=1)
    assert (first.exchanged, first.remaining) == (1, 2)
    second = exchange_long_lived_tokens(manager, max_per_minute=60000)
    assert (second.exchanged, second.remaining) == (2, 0)
    assert state.exchange_calls == 3
    for n in range(3):
        found = store.find_installation(enterprise_id=None, team_id="T1", user_id=f"U{n}")
        assert found.user_token.startswith("xoxe.xoxp-1-") and found.user_refresh_token
        assert found.user_token_expires_at > time.time() + 43000
        assert ("exchanged", None) in events(engine, store, f"U{n}")
    assert exchange_long_lived_tokens(manager, max_per_minute=60000).exchanged == 0
    assert state.exchange_calls == 3


def test_exchange_treats_already_exchanged_as_done(store, manager, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    token = _save_long_lived(store, state, "U1")
    state.exchanged.add(token)  # exchanged by an earlier run whose answer was lost
    report = exchange_long_lived_tokens(manager, max_per_minute=60000)
    assert report.already_exchanged == 1
    assert user_row(engine, store, "U1").last_refresh_outcome == "already_exchanged"
    assert exchange_long_lived_tokens(manager, max_per_minute=60000).already_exchanged == 0
    assert state.exchange_calls == 1


def test_sweep_refreshes_a_bot_token_due_like_a_user_token(store, manager, token_server, engine) -> None:  # type: ignore[no-untyped-def]
    from slack_sdk.oauth.installation_store import Bot

    _, state = token_server
    store.save_bot(
        Bot(
            app_id="A1", team_id="T1", bot_token="xoxb-rotating", bot_refresh_token="xoxe-bot-1", bot_token_expires_in=600,
            bot_id="B1", bot_user_id="UBOT", bot_scopes=["commands"], installed_at=time.time(),
        )
    )  # fmt: skip
    state.refresh_tokens["xoxe-bot-1"] = "UBOT"
    with engine.begin() as conn:  # Slack issued it for 12 hours, 10 minutes of which are left
        conn.execute(update(store.bots).where(store.bots.c.team_id == "T1").values(bot_lifetime_seconds=43200))
    result = Refresher(manager, window=timedelta(hours=2), jitter=timedelta(0), max_per_minute=6000).sweep_once()
    assert (result.due, result.refreshed, result.failed) == (1, 1, 0)
    bots = store.bots
    with engine.connect() as conn:
        row = conn.execute(select(bots).where(bots.c.team_id == "T1")).one()
    assert row.bot_last_refresh_outcome == "refreshed" and row.bot_token_expires_at - manager.clock() > timedelta(hours=11)
    found = store.find_bot(enterprise_id=None, team_id="T1")
    assert found is not None and found.bot_token != "xoxb-rotating"
