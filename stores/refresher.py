"""Refresh-ahead: a sweep of tokens close to expiry, as a thread inside the app or a process of its own.

Several refreshers may run at once (threads, processes, hosts). Each takes its batches from the due tokens with a
claim (`stores.sweep_claims`: `FOR UPDATE SKIP LOCKED` and a lease on PostgreSQL, `BEGIN IMMEDIATE` on SQLite), so no
two refreshers read the same tokens, a sweep never reads a token twice (the rows it reads grow with the tokens due),
and a refresher that dies leaves only a lease that lapses by itself. Only user tokens used within the token manager's
activity window are claimed; the others are set aside and renewed on their next use. Each refresh still takes the
token manager's lock without waiting (the advisory form of SKIP LOCKED on PostgreSQL, a non-blocking byte-range lock
on SQLite) and happens only if the token is still due, so none is refreshed twice. Their pace comes from one budget
in the database (`stores.budget`), so together they stay under the app's rate however many run; a 429 pauses them
all until Retry-After and never fails a token. A turn is spent only on a token still due once the turn comes.
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
from .sweep_claims import Claim

__all__ = ["Pacer", "Refresher", "SweepResult"]

logger = logging.getLogger(__name__)


class Pacer(BudgetPacer):
    """Spaces calls evenly so that at most max_per_minute start in any minute, across the threads of one process: the
    budget's timeline kept in this process (`tokens exchange`; the refresher's budget is shared by every process)."""

    def __init__(self, max_per_minute: float):
        super().__init__(ProcessBudget(), max_per_minute, claim_size=1)


_STOPPED = "stopped"  # a token left alone because the sweep is stopping: its lease is released


class _Queue:
    """The sweep's tokens, handed out one at a time to its workers; the worker that finds it empty claims the next
    batch (one claim at a time), so no worker waits for a batch's slowest refresh before the next batch starts."""

    def __init__(
        self, claim: Callable[[], Claim], result: SweepResult, stopped: threading.Event, on_claim: Callable[[], None]
    ):
        self._claim = claim
        self._result = result
        self._stopped = stopped
        self._on_claim = on_claim
        self._keys: deque[TokenKey] = deque()
        self._handed_back: list[TokenKey] = []
        self._lock = threading.Lock()
        self._exhausted = False
        self.error: Exception | None = None  # a claim that failed ends the sweep; raised once the workers are done

    def next(self) -> TokenKey | None:
        with self._lock:
            while not self._keys and not self._exhausted and not self._stopped.is_set():
                try:
                    claim = self._claim()
                except Exception as error:  # noqa: BLE001 - raised by sweep_once, after the workers stop
                    self.error, self._exhausted = error, True
                    break
                if claim.rows == 0:
                    self._exhausted = True
                    break
                self._result.set_aside += claim.set_aside
                self._result.due += len(claim.keys)
                self._keys.extend(claim.keys)
                self._on_claim()  # a first sweep may set aside a million idle tokens: that is progress too
            return self._keys.popleft() if self._keys else None

    def hand_back(self, key: TokenKey) -> None:
        """A token taken and left alone because the sweep is stopping."""
        with self._lock:
            self._handed_back.append(key)

    def rest(self) -> list[TokenKey]:
        """The tokens nobody took or that were handed back (the sweep was stopped), emptied."""
        with self._lock:
            rest, self._keys, self._handed_back = [*self._keys, *self._handed_back], deque(), []
        return rest


@dataclass
class SweepResult:
    """What one sweep did."""

    due: int = 0  # claimed by this sweep
    refreshed: int = 0
    skipped: int = 0
    failed: int = 0
    set_aside: int = 0  # unused for the activity window: renewed on their next use, not ahead


class Refresher:
    """Sweeps tokens that expire within the window, in claimed batches, with bounded concurrency and pacing.

    Only user tokens used within `active_window` (default: the token manager's, 14 days) are refreshed ahead. `lease`
    is how long a claimed batch stays this refresher's (on the token manager's clock): it must outlast a
    batch's refreshes (batch_size x 60 / max_per_minute seconds when this refresher has the whole budget, times the
    number of refreshers sharing it), and is how long a dead refresher's batch waits before another claims it.
    """

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
        lease: timedelta = timedelta(minutes=5),
        active_window: timedelta | None = None,
    ):
        self.manager = manager
        self.window = window
        self.jitter = jitter
        self.batch_size = max(1, batch_size)
        self.lease = lease
        self.active_window = active_window  # user tokens used within it are refreshed ahead (None: the manager's)
        self.concurrency = max(1, concurrency)
        # Turns from the app's budget shared with every refresher; on_budget_wait gets each turn's wait in seconds
        # (by default the token manager's observer's budget_waited, when it has one).
        observer = getattr(manager, "observer", None)
        if on_budget_wait is None and observer is not None:
            on_budget_wait = observer.budget_waited
        self.pacer = BudgetPacer(manager.budget, max_per_minute, on_wait=on_budget_wait, threads=self.concurrency)
        manager.rate_limit_listeners.append(self.pacer.drop_turns)
        self.interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._running: threading.Thread | None = None  # the thread inside run_forever
        # When it started, its last sweep finished or its current sweep reached a token (monotonic): for readiness.
        self.last_progress: float | None = None

    def sweep_once(self) -> SweepResult:
        """Refresh every token due within the window (plus jitter), batch after claimed batch, soonest first."""
        result = SweepResult()
        window = self.window + self.jitter * random.random()

        def claim() -> Claim:
            return self.manager.claim_due(window, self.batch_size, lease=self.lease, active_window=self.active_window)

        def progress() -> None:
            self.last_progress = time.monotonic()

        queue = _Queue(claim, result, self._stop, progress)
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="delegate-sweep") as pool:
            for outcomes in pool.map(lambda _: self._work(queue, window), range(self.concurrency)):
                for outcome in outcomes:
                    setattr(result, outcome, getattr(result, outcome) + 1)
        unswept = queue.rest()
        if unswept:  # stopped mid-batch: other refreshers may take them now rather than after the lease
            self.manager.release_claims(unswept)
        if queue.error is not None:
            raise queue.error
        return result

    def _work(self, queue: _Queue, window: timedelta) -> list[str]:
        """One worker: take the next token, wait for a turn, refresh it if still due; a turn finds a token still due."""
        outcomes: list[str] = []
        have_turn = False
        while not self._stop.is_set() and (key := queue.next()) is not None:
            # Every line about this token (here, in the token manager, slack_sdk's) names its team and user.
            with log_context(fresh=True, enterprise=key.enterprise_id, team=key.team_id, user=key.user_id):
                outcome, have_turn = self._refresh_logged(key, window, have_turn)
            if outcome == _STOPPED:
                queue.hand_back(key)
                continue
            outcomes.append(outcome)
            self.last_progress = time.monotonic()
        return outcomes

    def _refresh_logged(self, key: TokenKey, window: timedelta, have_turn: bool) -> tuple[str, bool]:
        """Wait for a turn unless one is in hand, then refresh the token if it is still due; (outcome, turn in hand).
        A token no longer due (someone renewed it meanwhile) leaves the turn in hand for the next."""
        try:
            if not have_turn:
                self.pacer.wait(self._stop)
                have_turn = True
                if self._stop.is_set():
                    return _STOPPED, have_turn
            snapshot = self.manager.due_snapshot(key, window)
            if snapshot is None:
                return "skipped", have_turn
            refreshed = self.manager.refresh_if_due(key, window, snapshot)  # read again under the lock; never waits
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
                if result.due or result.set_aside:
                    logger.info(
                        "refresher sweep: %d due, %d refreshed, %d skipped, %d failed, %d set aside as unused",
                        result.due, result.refreshed, result.skipped, result.failed, result.set_aside,
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
