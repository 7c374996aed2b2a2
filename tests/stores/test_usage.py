"""When each person's token was last used: noted in memory on the request path, written in the background at most
once an interval per person, with bounded memory; on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from stores import SQLAlchemyInstallationStore
from stores.rotation import TokenKey, TokenManager
from stores.usage import CHUNK, UsageRecorder
from tests.stores.test_rotation import CLIENT_SECRET, connect, token_server, user_row  # noqa: F401
from tests.support.concurrency import in_threads
from tests.support.db_counting import counting
from tests.support.seeding import seed_people
from tests.support.token_server import TokenServerState

__all__ = ["token_server"]

KEY = TokenKey.of(None, "T1", "U1")


def test_a_use_is_written_once_an_interval_and_never_on_the_request_path(
    store: SQLAlchemyInstallationStore, token_server: tuple[str, TokenServerState], engine: Engine
) -> None:
    _, state = token_server
    connect(store, state, "U1")
    now = [store.clock()]
    manager = TokenManager(store, client_secret=CLIENT_SECRET, background_refresh=False, clock=lambda: now[0])
    manager.usage.flush_delay = 3600  # the background writer stays out of the way: flush() is called here
    table = store.installations.name
    try:
        snapshot = manager.read(KEY)
        with counting(engine, table) as on_request:
            in_threads(lambda: [manager.token_for_request(KEY, snapshot) for _ in range(200)], 8)
        assert on_request.statements == [], "1,600 requests: no statement at all on the request path"
        with counting(engine, table) as written:
            assert manager.usage.flush() == 1
            assert manager.usage.flush() == 0
        assert len(written.writes()) == 1, "one write for 1,600 uses"
        assert user_row(engine, store, "U1").last_used_at == now[0]

        now[0] += timedelta(minutes=59)
        manager.token_for_request(KEY, snapshot)
        with counting(engine, table) as within_the_hour:
            assert manager.usage.flush() == 0
        assert within_the_hour.statements == []
        now[0] += timedelta(minutes=2)
        manager.token_for_request(KEY, snapshot)
        assert manager.usage.flush() == 1
        assert user_row(engine, store, "U1").last_used_at == now[0]
    finally:
        manager.close()


def test_processes_noting_the_same_person_write_the_row_once(
    store: SQLAlchemyInstallationStore, token_server: tuple[str, TokenServerState], engine: Engine
) -> None:
    _, state = token_server
    connect(store, state, "U1")
    now = store.clock()
    workers = [UsageRecorder(store, clock=lambda: now, flush_delay=3600) for _ in range(4)]  # one per worker process
    for worker in workers:
        worker.note(KEY)
    assert sum(worker.flush() for worker in workers) == 1, "the row is written by the first; the others find it recent"
    for worker in workers:
        worker.close()


def test_what_a_process_remembers_is_bounded(store: SQLAlchemyInstallationStore, engine: Engine) -> None:
    now = [store.clock()]
    recorder = UsageRecorder(store, clock=lambda: now[0], max_people=100, flush_delay=3600)
    try:
        for n in range(5000):
            recorder.note(TokenKey.of(None, "T1", f"U{n}"))
        assert recorder.remembered() == 100 and len(recorder._pending) == 100
        now[0] += timedelta(hours=2)
        recorder.flush()  # no such rows: nothing written, and what can no longer spare a write is forgotten
        assert recorder.remembered() == 0 and len(recorder._pending) == 0
    finally:
        recorder.close()


def test_the_background_writer_records_a_use_soon_after_it(
    store: SQLAlchemyInstallationStore, token_server: tuple[str, TokenServerState], engine: Engine
) -> None:
    _, state = token_server
    connect(store, state, "U1")
    manager = TokenManager(store, client_secret=CLIENT_SECRET, background_refresh=False)
    manager.usage.flush_delay = 0.05
    try:
        manager.token_for_request(KEY, manager.read(KEY))
        deadline = time.monotonic() + 5
        used: datetime | None = None
        while used is None and time.monotonic() < deadline:
            used = user_row(engine, store, "U1").last_used_at
            time.sleep(0.02)
        assert used is not None, "written by the background writer, with no flush() from the caller"
    finally:
        manager.close()


def test_a_busy_hour_is_written_a_chunk_a_transaction_so_no_refresh_waits_behind_it(
    store: SQLAlchemyInstallationStore, engine: Engine, database_url: str
) -> None:
    """The first hour of a busy day queues thousands of uses. Written in one transaction, every row it touched
    stayed locked until the last was written, and refreshes of those people (their in-flight mark, an UPDATE of the
    same row) waited for it: a minute, measured with 10,000 active people. Chunks commit as they go."""
    now = store.clock()
    users = seed_people(store, 2 * CHUNK + 50, now=now, expires_in=timedelta(hours=6))
    recorder = UsageRecorder(store, clock=lambda: now, flush_delay=3600)
    commits: list[int] = []

    def committed(_conn: object) -> None:
        commits.append(1)

    event.listen(engine, "commit", committed)
    try:
        for user in reversed(users):  # noted in any order; written in key order
            recorder.note(TokenKey.of(None, "T1", user))
        if engine.dialect.name == "postgresql":
            # Another transaction holds the last person's row (a refresh writing it): the first chunks are visible
            # to everyone before the recorder reaches that row.
            blocker = engine.connect()
            blocker.begin()
            blocker.execute(
                text(f"SELECT 1 FROM {store.installations.name} WHERE user_id = :u FOR UPDATE"), {"u": users[-1]}
            )
            flushing = threading.Thread(target=recorder.flush)
            flushing.start()
            deadline = time.monotonic() + 10
            while user_row(engine, store, users[CHUNK - 1]).last_used_at is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert user_row(engine, store, users[0]).last_used_at == now, "the first chunk committed"
            assert user_row(engine, store, users[CHUNK - 1]).last_used_at == now
            assert flushing.is_alive(), "the recorder is still waiting for the last row"
            blocker.rollback()
            blocker.close()
            flushing.join(10)
        else:
            assert recorder.flush() == len(users)
        assert len(commits) >= 3, f"{len(users)} rows in transactions of at most {CHUNK}"
        assert all(user_row(engine, store, user).last_used_at == now for user in (users[0], users[CHUNK], users[-1]))
    finally:
        event.remove(engine, "commit", committed)
        recorder.close()
