"""OAuth states are accepted once, only before they expire, even when callbacks race."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Engine

from stores import SQLAlchemyOAuthStateStore
from stores.schema import utcnow


def test_state_is_single_use(state_store: SQLAlchemyOAuthStateStore) -> None:
    state = state_store.issue()
    assert state_store.consume(state) is True
    assert state_store.consume(state) is False


def test_forged_and_garbage_states_are_refused(state_store: SQLAlchemyOAuthStateStore) -> None:
    state_store.issue()
    for forged in ("", "nope", "x" * 5000, "' OR 1=1 --"):
        assert state_store.consume(forged) is False


def test_expired_state_is_refused(state_store: SQLAlchemyOAuthStateStore, engine: Engine) -> None:
    state = state_store.issue()
    with engine.begin() as conn:
        conn.execute(update(state_store.oauth_states).values(expire_at=utcnow() - timedelta(seconds=1)))
    assert state_store.consume(state) is False


def test_racing_callbacks_accept_a_state_exactly_once(state_store: SQLAlchemyOAuthStateStore) -> None:
    states = [state_store.issue() for _ in range(5)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for state in states:
            results = list(pool.map(state_store.consume, [state] * 8))
            assert results.count(True) == 1, results


def _expired_rows(state_store: SQLAlchemyOAuthStateStore, engine: Engine, count: int) -> None:
    past = utcnow() - timedelta(seconds=1)
    with engine.begin() as conn:
        conn.execute(
            insert(state_store.oauth_states), [{"state": f"old-{i}-{'x' * 20}", "expire_at": past} for i in range(count)]
        )


def _rows(state_store: SQLAlchemyOAuthStateStore, engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(state_store.oauth_states)).scalar_one())


def test_expired_states_are_pruned_in_bounded_batches_while_issuing(engine: Engine) -> None:
    states = SQLAlchemyOAuthStateStore(expiration_seconds=600, engine=engine, prune_every=10, prune_batch=100)
    states.create_tables()
    _expired_rows(states, engine, 250)
    states.issue()  # the first issue of a process prunes, at most one batch
    assert _rows(states, engine) == 250 - 100 + 1
    for _ in range(9):
        states.issue()  # not due again until ten more issues
    assert _rows(states, engine) == 150 + 10
    states.issue()
    assert _rows(states, engine) == 50 + 11
    for _ in range(10):
        states.issue()
    assert _rows(states, engine) == 21  # every expired row gone, every live one kept
    assert states.prune() == 0


def test_pruning_keeps_live_states(state_store: SQLAlchemyOAuthStateStore, engine: Engine) -> None:
    live = [state_store.issue() for _ in range(3)]
    _expired_rows(state_store, engine, 5)
    assert state_store.prune() == 5
    assert all(state_store.consume(state) for state in live)


def test_states_that_cannot_be_ones_issued_never_reach_the_database(state_store: SQLAlchemyOAuthStateStore) -> None:
    state_store.issue()
    for forged in ("\x00" * 43, "a\x00" * 20, "é" * 43, "a" * 129, "a b c d e f g h i j k l m n o p"):
        assert state_store.consume(forged) is False  # a NUL would make PostgreSQL raise, not refuse
