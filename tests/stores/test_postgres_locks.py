"""The refresh locks' own PostgreSQL pool: connections reused from one refresh to the next, and never waited for."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from stores import create_database_engine
from stores.locks import PostgresLocks, _lock_number
from stores.rotation import TokenKey

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    engine = create_database_engine(postgres_url)
    yield engine
    engine.dispose()


def backend(held) -> int:  # type: ignore[no-untyped-def]
    return int(held.connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_lock_connection_serves_the_next_refresh_and_comes_back_holding_nothing(pg_engine: Engine) -> None:
    locks = PostgresLocks(pg_engine, "111.222", pool_size=2)
    first, second = TokenKey(None, "T1", "U1"), TokenKey(None, "T1", "U2")
    try:
        with locks.hold(first, wait=0) as held:
            assert held is not None
            pid = backend(held)
        with locks.hold(second, wait=0) as held:
            assert held is not None
            assert backend(held) == pid, "a new PostgreSQL connection (a server process) per refresh"
        # What the pooled connection held ended with its transaction: another session takes the first lock at once.
        with pg_engine.connect() as other:
            taken = other.execute(text("SELECT pg_try_advisory_lock(:n)"), {"n": _lock_number("111.222", first)})
            assert taken.scalar_one() is True
            other.execute(text("SELECT pg_advisory_unlock_all()"))
    finally:
        locks.close()


def test_more_holders_than_the_pool_keeps_never_wait_for_a_connection(pg_engine: Engine) -> None:
    locks = PostgresLocks(pg_engine, "111.222", pool_size=2)
    holders = 6
    all_holding = threading.Barrier(holders, timeout=10)
    got: list[bool] = []

    def hold(n: int) -> None:
        with locks.hold(TokenKey(None, "T1", f"U{n}"), wait=0) as held:
            got.append(held is not None)
            all_holding.wait()  # raises BrokenBarrierError if any holder is left waiting for a connection

    threads = [threading.Thread(target=hold, args=(n,)) for n in range(holders)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(15)
        assert got == [True] * holders
        assert not all_holding.broken
    finally:
        locks.close()
