"""Refresh-ahead: a sweep of tokens close to expiry, as a thread inside the app or a process of its own.

Several refreshers may run at once (threads, processes, hosts): each token is claimed with the token manager's
lock without waiting (the advisory form of SKIP LOCKED on PostgreSQL, a non-blocking byte-range lock on SQLite) and refreshed
only if it is still due, so none is refreshed twice and no refresher queues behind another.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from .errors import TokenError
from .log_context import log_context
from .rotation import TokenKey, TokenManager

__all__ = ["Pacer", "Refresher", "SweepResult"]

logger = logging.getLogger(__name__)


class Pacer:
    """Spaces calls evenly so that at most max_per_minute start in any minute, across threads."""

    def __init__(self, max_per_minute: float):
        self.interval = 60.0 / max_per_minute if max_per_minute > 0 else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self, stop: threading.Event | None = None) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        delay = start - time.monotonic()
        if delay > 0:
            if stop is not None:
                stop.wait(delay)
            else:
                time.sleep(delay)


@dataclass
class SweepResult:
    """What one sweep did."""

    due: int = 0
    refreshed: int = 0
    skipped: int = 0
    failed: int = 0


class Refresher:
    """Sweeps tokens that expire within the window, in batches, with bounded concurrency and pacing."""

    def __init__(
        self,
        manager: TokenManager,
        *,
        window: timedelta = timedelta(hours=2),
        jitter: timedelta = timedelta(minutes=10),
        batch_size: int = 100,
        concurrency: int = 4,
        max_per_minute: float = 500,
        interval: timedelta = timedelta(minutes=1),
    ):
        self.manager = manager
        self.window = window
        self.jitter = jitter
        self.batch_size = batch_size
        self.concurrency = max(1, concurrency)
        self.pacer = Pacer(max_per_minute)
        self.interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        # When it started, its last sweep finished or its current sweep reached a token (monotonic): for readiness.
        self.last_progress: float | None = None

    def sweep_once(self) -> SweepResult:
        """Refresh every token due within the window (plus jitter), batch after batch."""
        result = SweepResult()
        window = self.window + self.jitter * random.random()
        attempted: set[TokenKey] = set()
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="delegate-sweep") as pool:
            while not self._stop.is_set():
                batch = [
                    k for k in self.manager.due_for_refresh(window, self.batch_size + len(attempted)) if k not in attempted
                ]
                batch = batch[: self.batch_size]
                if not batch:
                    break
                attempted.update(batch)
                result.due += len(batch)
                for outcome in pool.map(lambda key: self._refresh_one(key, window), batch):
                    setattr(result, outcome, getattr(result, outcome) + 1)
        return result

    def _refresh_one(self, key: TokenKey, window: timedelta) -> str:
        if self._stop.is_set():
            return "skipped"
        asked = time.perf_counter()
        self.pacer.wait(self._stop)
        self.manager.observer.budget_waited(time.perf_counter() - asked)
        self.last_progress = time.monotonic()
        # Every line about this token (here, in the token manager, slack_sdk's) names its team and user.
        with log_context(fresh=True, enterprise=key.enterprise_id, team=key.team_id, user=key.user_id):
            return self._refresh_logged(key, window)

    def _refresh_logged(self, key: TokenKey, window: timedelta) -> str:
        try:
            return "refreshed" if self.manager.refresh_if_due(key, window) else "skipped"
        except TokenError as error:
            logger.warning("sweep could not refresh a token: %s", error)
            return "failed"
        except Exception:  # noqa: BLE001 - one bad row must not stop the sweep
            logger.exception("sweep failed on a token")
            return "failed"

    def run_forever(self) -> None:
        """Sweep, sleep for the interval (or until woken), and again, until stop() is called."""
        while not self._stop.is_set():
            self._wake.clear()  # a wake() from here on means sweep again: it may have come after this sweep's read
            try:
                result = self.sweep_once()
                self.last_progress = time.monotonic()
                if result.due:
                    logger.info(
                        "refresher sweep: %d due, %d refreshed, %d skipped, %d failed",
                        result.due, result.refreshed, result.skipped, result.failed,
                    )  # fmt: skip
            except Exception:  # noqa: BLE001 - a database hiccup must not end the refresher
                logger.exception("refresher sweep failed")
            self._wake.wait(self.interval.total_seconds())

    @property
    def alive(self) -> bool:
        """Whether the refresher's thread is running (start() was called and it has not ended)."""
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def wake(self) -> None:
        """Sweep now instead of at the next interval: the clock jumped (the sandbox's), so tokens may have become due."""
        self._wake.set()

    def start(self) -> threading.Thread:
        """Run in a daemon thread inside the app."""
        self.last_progress = time.monotonic()  # its first sweep begins now
        self._thread = threading.Thread(target=self.run_forever, name="delegate-refresher", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float | None = 10) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
