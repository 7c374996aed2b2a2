"""Run the same call from many threads at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def in_threads(call: Callable[[], T], count: int) -> list[T]:
    """Start `count` threads that wait on one barrier, then all run `call`; returns every result."""
    barrier = threading.Barrier(count)
    results: list[T] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        result = call()
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
