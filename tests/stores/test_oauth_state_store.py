"""OAuth states are accepted once, only before they expire, even when callbacks race."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import update
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
