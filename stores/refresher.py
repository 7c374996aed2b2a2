"""Refresh-ahead: a sweep of tokens close to expiry, as a thread inside the app or a process of its own.

Several refreshers may run at once (threads, processes, hosts): each token is claimed with the token manager's
lock without waiting (the advisory form of SKIP LOCKED on PostgreSQL, a non-blocking byte-range lock on SQLite) and refreshed
only if it is still due, so none is refreshed twice and no refresher queues behind another. Their pace comes from
one budget in the database (`stores.budget`), so together they stay under the app's rate however many run. A turn
is spent only on a token still due once the turn comes: one another refresher renewed meanwhile passes the turn on
to the next token, and each sweep takes its batch in its own random order, so refreshers side by side rarely meet.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from .budget import BudgetPacer, ProcessBudget
from .errors import TokenError
from .log_context import log_context
from .rotation import TokenKey, TokenManager

__all__ = ["Pacer", "Refresher", "SweepResult"]

logger = logging.getLogger(__name__)


class Pacer(BudgetPacer):
    """Spaces calls evenly so that at most max_per_minute start in any minute, across the threads of one process: the
    budget's timeline kept in this process (`tokens exchange`; the refresher's budget is shared by every process)."""

    def __init__(self, max_per_minute: float):
        super().__init__(ProcessBudget(), max_per_minute, claim_size=1)


class _Keys:
    """The tokens of one batch, handed out one at a time to the sweep's workers."""

    def __init__(self, keys: list[TokenKey]):
        self._keys = deque(keys)
        self._lock = threading.Lock()

    def next(self) -> TokenKey | None:
        with self._lock:
            return self._keys.popleft() if self._keys else None


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
        on_budget_wait: Callable[[float], None] | None = None,
    ):
        self.manager = manager
        self.window = window
        self.jitter = jitter
        self.batch_size = batch_size
        self.concurrency = max(1, concurrency)
        # Turns from the app's budget shared with every refresher; on_budget_wait gets each turn's wait in seconds
        # (by default the token manager's observer's budget_waited, when it has one).
        observer = getattr(manager, "observer", None)
        if on_budget_wait is None and observer is not None:
            on_budget_wait = observer.budget_waited
        self.pacer = BudgetPacer(manager.budget, max_per_minute, on_wait=on_budget_wait)
        manager.rate_limit_listeners.append(self.pacer.drop_turns)
        self.interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._running: threading.Thread | None = None  # the thread inside run_forever
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
                random.shuffle(batch)  # refreshers side by side start at different tokens
                keys = _Keys(batch)
                for outcomes in pool.map(lambda _, k=keys: self._work(k, window), range(self.concurrency)):
                    for outcome in outcomes:
                        setattr(result, outcome, getattr(result, outcome) + 1)
        return result

    def _work(self, keys: _Keys, window: timedelta) -> list[str]:
        """One worker: take the next token still due, wait for a turn, refresh it; a turn finds a token still due."""
        outcomes: list[str] = []
        have_turn = False
        while not self._stop.is_set() and (key := keys.next()) is not None:
            # Every line about this token (here, in the token manager, slack_sdk's) names its team and user.
            with log_context(fresh=True, enterprise=key.enterprise_id, team=key.team_id, user=key.user_id):
                outcome, have_turn = self._refresh_logged(key, window, have_turn)
            outcomes.append(outcome)
            self.last_progress = time.monotonic()
        return outcomes

    def _refresh_logged(self, key: TokenKey, window: timedelta, have_turn: bool) -> tuple[str, bool]:
        """Refresh one token if still due, waiting for a turn first unless one is in hand; (outcome, turn in hand).
        Each token ends in one due_snapshot that says None (not due) or in one refresh_if_due."""
        try:
            snapshot = self.manager.due_snapshot(key, window)
            if snapshot is not None and not have_turn:
                self.pacer.wait(self._stop)
                have_turn = True
                snapshot = None if self._stop.is_set() else self.manager.due_snapshot(key, window)
            if snapshot is None:
                return "skipped", have_turn  # renewed by someone else, or no longer due: the turn stays for the next
            refreshed = self.manager.refresh_if_due(key, window)  # read again under the lock; never waits on one
            return ("refreshed" if refreshed else "skipped"), False
        except TokenError as error:
            logger.warning("sweep could not refresh a token: %s", error)
            return "failed", False
        except Exception:  # noqa: BLE001 - one bad row must not stop the sweep
            logger.exception("sweep failed on a token")
            return "failed", False

    def run_forever(self) -> None:
        """Sweep, sleep for the interval (or until woken), and again, until stop() is called."""
        self._running = threading.current_thread()
        if self.last_progress is None:
            self.last_progress = time.monotonic()  # its first sweep begins now
        try:
            self._sweep_until_stopped()
        finally:
            self._running = None

    def _sweep_until_stopped(self) -> None:
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
        """Whether the refresher is sweeping: in its own thread (start()) or in the caller's (run_forever())."""
        running = self._running
        return running is not None and running.is_alive() and not self._stop.is_set()

    def wake(self) -> None:
        """Sweep now instead of at the next interval: the clock jumped (the sandbox's), so tokens may have become due."""
        self._wake.set()

    def start(self) -> threading.Thread:
        """Run in a daemon thread inside the app."""
        self.last_progress = time.monotonic()  # its first sweep begins now
        self._thread = threading.Thread(target=self.run_forever, name="delegate-refresher", daemon=True)
        self._thread.start()
        self._running = self._thread  # alive from now on (run_forever says so too, once it runs)
        return self._thread

    def stop(self, timeout: float | None = 10) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
