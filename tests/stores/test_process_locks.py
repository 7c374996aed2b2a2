"""The per-token thread locks of one process stay bounded: an entry lives only while a thread holds or waits for it,
and one thread at a time still holds each token's lock."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from stores import SQLAlchemyInstallationStore
from stores.locks import ProcessLocks
from stores.rotation import TokenKey, TokenManager
from tests.stores.test_rotation import CLIENT_SECRET, connect, token_server  # noqa: F401
from tests.support.concurrency import in_threads
from tests.support.token_server import TokenServerState

__all__ = ["token_server"]


def test_refreshing_many_tokens_leaves_no_lock_behind_and_each_is_refreshed_once(
    store: SQLAlchemyInstallationStore, token_server: tuple[str, TokenServerState]
) -> None:
    api_url, state = token_server
    users = [f"U{n:03d}" for n in range(60)]
    for user in users:
        connect(store, state, user, stored_expires_in=60)  # about to expire: refreshed before use
    manager = TokenManager(store, client_secret=CLIENT_SECRET, api_url=api_url, background_refresh=False)
    try:
        state.latency = 0.01
        with ThreadPoolExecutor(max_workers=8) as pool:
            # every token asked for by 4 threads at once
            list(pool.map(lambda user: manager.fresh_token(TokenKey.of(None, "T1", user)), users * 4))
        assert state.refresh_calls == len(users) and state.rejected_refreshes == 0, "one refresh per token"
        assert len(manager._turns._locks) == 0, "no lock kept for a token nobody is refreshing"

        connect(store, state, "U_HOT", stored_expires_in=60)
        tokens = in_threads(lambda: manager.fresh_token(TokenKey.of(None, "T1", "U_HOT")).token, 16)
        assert len(set(tokens)) == 1 and state.refresh_calls == len(users) + 1, "single flight still holds"
        assert len(manager._turns._locks) == 0
    finally:
        manager.close()


def test_a_waiter_keeps_the_entry_and_one_thread_at_a_time_holds_a_token() -> None:
    locks = ProcessLocks()
    key = TokenKey.of(None, "T1", "U1")
    got: list[bool] = []
    with locks.hold(key, wait=0) as held:
        assert held is not None
        waiter = threading.Thread(target=lambda: got.append(_hold_briefly(locks, key, wait=5)))
        waiter.start()
        time.sleep(0.1)
        with locks.hold(key, wait=0.05) as other:
            assert other is None, "taken: a timed-out waiter gets nothing"
        assert len(locks._locks) == 1, "the waiter still needs the same lock"
    waiter.join()
    assert got == [True] and len(locks._locks) == 0

    keys = [TokenKey.of(None, "T1", f"U{n}") for n in range(3)]
    inside = dict.fromkeys(keys, 0)
    overlaps: list[TokenKey] = []

    def churn(n: int) -> None:
        for i in range(300):
            k = keys[(n + i) % len(keys)]
            with locks.hold(k, wait=5) as held:
                assert held is not None
                inside[k] += 1
                if inside[k] > 1:
                    overlaps.append(k)
                inside[k] -= 1

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(churn, range(8)))
    assert overlaps == [] and len(locks._locks) == 0


def _hold_briefly(locks: ProcessLocks, key: TokenKey, *, wait: float) -> bool:
    with locks.hold(key, wait=wait) as held:
        return held is not None
