"""The sweep's claims: batches no two refreshers share, rows read once per sweep, unused tokens set aside, leases
that lapse by themselves, and 429s that pause without failing a token; on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from stores import SQLAlchemyInstallationStore
from stores.listing import read_detail
from stores.refresher import Refresher
from stores.rotation import USER, TokenKey, TokenManager
from tests.conftest import CLIENT_ID
from tests.stores.test_rotation import CLIENT_SECRET, connect, user_row
from tests.support.db_counting import counting
from tests.support.seeding import seed_people
from tests.support.token_server import TokenServerState, running_token_server

DAY = timedelta(days=1)


@pytest.fixture
def token_server() -> Iterator[tuple[str, TokenServerState]]:
    with running_token_server(CLIENT_ID) as server:
        yield server


def new_manager(store: SQLAlchemyInstallationStore, api_url: str = "http://127.0.0.1:9/api/") -> TokenManager:
    return TokenManager(store, client_secret=CLIENT_SECRET, api_url=api_url, background_refresh=False)


def test_refreshers_claiming_at_once_never_share_a_token(store: SQLAlchemyInstallationStore) -> None:
    users = seed_people(store, 300, now=store.clock(), expires_in=timedelta(minutes=10))
    managers = [new_manager(store) for _ in range(6)]
    barrier = threading.Barrier(len(managers))
    claimed: list[list[TokenKey]] = [[] for _ in managers]

    def claim_until_empty(n: int) -> None:
        barrier.wait()
        while True:
            claim = managers[n].claim_due(timedelta(hours=2), 7, lease=timedelta(minutes=5))
            if claim.rows == 0:
                return
            claimed[n].extend(claim.keys)
            time.sleep(0.005)  # a refresher works through its batch before claiming the next

    threads = [threading.Thread(target=claim_until_empty, args=(n,)) for n in range(len(managers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for manager in managers:
        manager.close()
    everything = [key.user_id for keys in claimed for key in keys]
    assert sorted(everything) == users, "every due token claimed exactly once"
    assert sum(1 for keys in claimed if keys) > 1, "the claims ran side by side"
    u = store.installations.c
    with store.engine.connect() as conn:
        owners = dict(conn.execute(select(u.user_id, u.sweep_owner)).all())
    for manager, keys in zip(managers, claimed, strict=True):
        assert {owners[key.user_id] for key in keys} <= {manager.owner}, "each lease names its refresher"


def test_a_sweep_reads_each_due_token_once_not_the_square(store: SQLAlchemyInstallationStore, engine: Engine) -> None:
    # 2,000 tokens inside the sweep's window but not yet inside their own 2 h margin (6 h left of 12): each is read,
    # found not due, and passed by without a call to Slack. The sweep used to re-read every token it had tried.
    seed_people(store, 2000, now=store.clock(), expires_in=timedelta(hours=6))
    manager = new_manager(store)
    refresher = Refresher(manager, window=timedelta(hours=8), jitter=timedelta(0), batch_size=100, max_per_minute=6000)
    try:
        with counting(engine, store.installations.name) as counts:
            result = refresher.sweep_once()
        assert (result.due, result.skipped, result.refreshed) == (2000, 2000, 0)
        # the 2,000 due-snapshot reads (one row each) and the claims' 2,000 rows: 4,000 (the old sweep read 25,000)
        assert counts.rows <= 2 * 2000 + 100, counts.rows
        with counting(engine, store.installations.name) as again:
            assert refresher.sweep_once().due == 0, "still leased to this refresher: nothing is read twice"
        assert again.rows == 0
    finally:
        manager.close()


def test_unused_tokens_are_set_aside_and_renewed_on_use_again(
    store: SQLAlchemyInstallationStore, token_server: tuple[str, TokenServerState], engine: Engine
) -> None:
    api_url, state = token_server
    now = store.clock()
    for user in ("U_USED", "U_NEW", "U_IDLE", "U_NEVER"):
        connect(store, state, user, stored_expires_in=600)  # all due: 10 minutes left
    u = store.installations.c
    with engine.begin() as conn:
        conn.execute(update(store.installations).where(u.user_id == "U_USED").values(last_used_at=now - DAY,
                                                                                  installed_at=now - 40 * DAY))  # fmt: skip
        conn.execute(update(store.installations).where(u.user_id == "U_IDLE").values(last_used_at=now - 20 * DAY,
                                                                                  installed_at=now - 40 * DAY))  # fmt: skip
        conn.execute(update(store.installations).where(u.user_id == "U_NEVER").values(installed_at=now - 15 * DAY))
    manager = new_manager(store, api_url)
    try:
        refresher = Refresher(manager, jitter=timedelta(0), max_per_minute=6000)
        result = refresher.sweep_once()
        assert (result.due, result.refreshed, result.set_aside) == (2, 2, 2)
        refreshed = {user for _, user in state.refresh_log}
        assert refreshed == {"U_USED", "U_NEW"}, "used within 14 days, or granted within them and never used"
        assert [user_row(engine, store, user).refresh_ahead for user in ("U_IDLE", "U_NEVER")] == [False, False]
        shown = read_detail(engine, store.tables, CLIENT_ID, enterprise_id=None, team_id="T1", user_id="U_IDLE")
        assert shown is not None and not shown.refresh_ahead and shown.last_used_at == now - 20 * DAY  # tokens show
        assert refresher.sweep_once().set_aside == 0, "set aside once, not read again by later sweeps"
        assert manager.due_for_refresh(timedelta(hours=2), 10) == []

        key = TokenKey.of(None, "T1", "U_IDLE")
        manager.token_for_request(key, manager.read(key))  # U_IDLE runs a command: noted, written after the ack
        assert user_row(engine, store, "U_IDLE").last_used_at < now - 19 * DAY, "nothing written on the request path"
        assert manager.usage.flush() == 1
        row = user_row(engine, store, "U_IDLE")
        assert row.refresh_ahead and row.last_used_at >= now
        assert Refresher(manager, jitter=timedelta(0), max_per_minute=6000).sweep_once().refreshed == 1
        assert state.refresh_calls == 3 and state.rejected_refreshes == 0
    finally:
        manager.close()


def test_the_activity_window_is_the_managers_argument(store: SQLAlchemyInstallationStore) -> None:
    now = store.clock()
    used_3_days_ago = {"now": now, "expires_in": timedelta(minutes=10), "last_used_at": now - 3 * DAY,
                       "installed_at": now - 10 * DAY}  # fmt: skip
    seed_people(store, 3, prefix="OLD", **used_3_days_ago)  # type: ignore[arg-type]
    manager = TokenManager(store, client_secret=CLIENT_SECRET, background_refresh=False, active_window=2 * DAY)
    try:
        assert manager.claim_due(timedelta(hours=2), 10, lease=timedelta(minutes=5)).set_aside == 3
    finally:
        manager.close()
    seed_people(store, 3, prefix="NEW", **used_3_days_ago)  # type: ignore[arg-type]
    manager = TokenManager(store, client_secret=CLIENT_SECRET, background_refresh=False, active_window=4 * DAY)
    try:
        claim = manager.claim_due(timedelta(hours=2), 10, lease=timedelta(minutes=5))
        assert (len(claim.keys), claim.set_aside) == (3, 0)
    finally:
        manager.close()
    seed_people(store, 3, prefix="REF", **used_3_days_ago)  # type: ignore[arg-type]
    manager = TokenManager(store, client_secret=CLIENT_SECRET, background_refresh=False)
    try:  # the Refresher's own argument wins over the manager's 14 days
        result = Refresher(manager, jitter=timedelta(0), active_window=2 * DAY, max_per_minute=6000).sweep_once()
        assert (result.due, result.set_aside) == (0, 3)
    finally:
        manager.close()


def test_a_lease_lapses_by_itself_and_a_stopped_sweep_releases_its_own(store: SQLAlchemyInstallationStore) -> None:
    now = [store.clock()]
    seed_people(store, 5, now=now[0], expires_in=timedelta(minutes=10))
    first = TokenManager(store, client_secret=CLIENT_SECRET, background_refresh=False, clock=lambda: now[0])
    second = TokenManager(store, client_secret=CLIENT_SECRET, background_refresh=False, clock=lambda: now[0])
    try:
        taken = first.claim_due(timedelta(hours=2), 5, lease=timedelta(seconds=30)).keys
        assert len(taken) == 5
        assert second.claim_due(timedelta(hours=2), 5, lease=timedelta(seconds=30)).rows == 0
        now[0] += timedelta(seconds=31)  # the first refresher died: its lease ends on its own
        again = second.claim_due(timedelta(hours=2), 5, lease=timedelta(seconds=30)).keys
        assert again == taken
        second.release_claims(again[:2])  # stopping: two handed back at once
        first.release_claims(again[2:])  # not the first's lease any more: nothing released
        assert first.claim_due(timedelta(hours=2), 5, lease=timedelta(seconds=30)).keys == again[:2]
    finally:
        first.close()
        second.close()


def test_a_429_pauses_the_sweep_and_never_fails_the_token(
    store: SQLAlchemyInstallationStore, token_server: tuple[str, TokenServerState], engine: Engine
) -> None:
    api_url, state = token_server
    connect(store, state, "U1", stored_expires_in=600)
    manager = new_manager(store, api_url)
    try:
        state.faults.append("429")  # Retry-After: 1
        result = Refresher(manager, jitter=timedelta(0), max_per_minute=6000, lease=timedelta(seconds=1)).sweep_once()
        assert (result.refreshed, result.failed) == (0, 0)
        row = user_row(engine, store, "U1")
        assert (row.status, row.refresh_failures, row.last_refresh_outcome) == ("active", 0, "ratelimited")
        assert row.refresh_retry_at is not None, "paused until Slack's Retry-After"
        manager.clock = lambda: store.clock() + timedelta(seconds=2)  # after Retry-After (and the lease)
        manager.answers.clock = manager.clock
        result = Refresher(manager, jitter=timedelta(0), max_per_minute=6000).sweep_once()
        assert result.refreshed == 1
        assert user_row(engine, store, "U1").status == "active" and state.rejected_refreshes == 0
    finally:
        manager.close()


def test_the_claim_reads_through_the_sweep_index_with_the_activity_filter(
    store: SQLAlchemyInstallationStore, engine: Engine
) -> None:
    now = store.clock()
    seed_people(store, 3000, now=now, expires_in=-20 * DAY, prefix="IDLE", installed_at=now - 40 * DAY)
    seed_people(store, 300, now=now, expires_in=timedelta(hours=5), prefix="USED", last_used_at=now - DAY)
    manager = new_manager(store)
    try:
        claims = manager.claims
        first = claims.claim(USER, before=now + timedelta(hours=6), now=now, active_since=now - 14 * DAY,
                             lease_until=now + timedelta(minutes=5), limit=5000)  # fmt: skip
        assert (len(first.keys), first.set_aside) == (300, 3000)
        claims.release(first.keys)
        query = claims.claim_query(USER, before=now + timedelta(hours=6), now=now, active_since=now - 14 * DAY, limit=100)
        sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("ANALYZE delegate_user_tokens")
                plan = "\n".join(conn.exec_driver_sql("EXPLAIN " + sql).scalars())
            else:
                conn.exec_driver_sql("ANALYZE")
                plan = "\n".join(str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
        assert "delegate_user_tokens_sweep_idx" in plan, plan
        assert "refresh_ahead" in plan, plan  # the activity filter is part of the index condition
        assert "Sort" not in plan and "TEMP B-TREE" not in plan, f"the index gives the order: {plan}"
        assert len(manager.claim_due(timedelta(hours=6), 1000, lease=timedelta(minutes=5)).keys) == 300
    finally:
        manager.close()
