"""The refresh budget shared by every refresher of one Slack app, on every host: one row per client id.

Slack allows `oauth.v2.access` 600 calls a minute per app, however many processes make them. Pacing in each process
(the old `Pacer`) let k processes call k times the budget. Here every refresher draws its turns from one row,
`delegate_refresh_budget.next_at`, the start of the first turn nobody holds yet:

- a claim is one atomic `UPDATE ... SET next_at = max(next_at, now) + turns x interval RETURNING next_at`, so no two
  claimers ever get the same turn, and the turns of all claimers are spaced one interval apart on one timeline;
- a claimer takes a few turns at once (about a second's worth, at most `MAX_CLAIM`), to keep the database round trips
  low; one that dies wastes at most those;
- it then sleeps until its turn outside any transaction or lock; a turn not used within LATE_SECONDS (or half an
  interval, if longer) of its start is dropped, never used later in a burst, so a window of W seconds holds at most
  the turns of W + LATE_SECONDS;
- on PostgreSQL the server's clock (`clock_timestamp()`) is the timeline and the claim returns how far ahead of
  it the turns are, so host clocks may disagree; on SQLite (one host) the wall clock, under `BEGIN IMMEDIATE`;
- a 429 with Retry-After, seen by any process, pushes `next_at` past it, so every refresher pauses.

An in-memory SQLite database (tests, one process) keeps the same timeline in the process instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import insert, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.dml import Insert

from .database import write_transaction
from .schema import utcnow
from .schema.tables import refresh_budget

__all__ = ["LATE_SECONDS", "MAX_CLAIM", "BudgetPacer", "DatabaseBudget", "ProcessBudget", "RefreshBudget", "budget_for"]

logger = logging.getLogger(__name__)

# PostgreSQL: on the server's clock, read when the row is locked; returns how far ahead the claimed span ends.
_CLAIM = text(
    f"UPDATE {refresh_budget.name} SET next_at = GREATEST(next_at, clock_timestamp()) + make_interval(secs => :span) "
    "WHERE client_id = :client_id RETURNING EXTRACT(EPOCH FROM next_at - clock_timestamp())"
)
_PAUSE = text(
    f"UPDATE {refresh_budget.name} SET next_at = GREATEST(next_at, clock_timestamp() + make_interval(secs => :seconds)) "
    "WHERE client_id = :client_id"
)
NEVER = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLAIM = 8  # turns claimed at once at most: what a claimer that dies can waste
CLAIM_SECONDS = 1.0  # about this much of the timeline per claim
# A thread back from its last refresh a little after its next turn began still takes it: at a high rate (10 ms turns)
# dropping every turn a few ms late wasted a third of the budget. Slack's limit counts calls per minute, so calls up to
# this late add at most LATE_SECONDS' worth of turns to any window (under 0.1% of a minute).
LATE_SECONDS = 0.05


class RefreshBudget(Protocol):
    def claim(self, turns: int, interval: float) -> float:
        """Claim `turns` consecutive turns `interval` seconds apart; returns how many seconds from now the first one
        starts (0 when the budget is idle)."""
        ...

    def pause_for(self, seconds: float) -> None:
        """Nobody's turn starts before `seconds` from now (Slack's Retry-After)."""
        ...


class DatabaseBudget:
    """The budget row of one client id, on PostgreSQL (the server's clock) or a SQLite file (the wall clock)."""

    def __init__(self, engine: Engine, client_id: str):
        self.engine = engine
        self.client_id = client_id
        self.postgres = engine.url.get_backend_name() == "postgresql"
        self._row_exists = False

    def claim(self, turns: int, interval: float) -> float:
        span = turns * interval
        self._ensure_row()
        first = self._claim(span)
        if first is None:  # the row was deleted meanwhile (every table emptied): start its timeline again
            self._row_exists = False
            self._ensure_row()
            first = self._claim(span)
        return first or 0.0

    def _claim(self, span: float) -> float | None:
        table = refresh_budget
        if self.postgres:
            with self.engine.begin() as conn:
                ahead = conn.execute(_CLAIM, {"client_id": self.client_id, "span": span}).scalar()
            return None if ahead is None else max(0.0, float(ahead) - span)
        with write_transaction(self.engine) as conn:  # BEGIN IMMEDIATE: one claimer at a time on this host
            current = conn.execute(select(table.c.next_at).where(table.c.client_id == self.client_id)).scalar()
            if current is None:
                return None
            now = utcnow()
            start = max(current, now)
            conn.execute(
                update(table).where(table.c.client_id == self.client_id).values(next_at=start + timedelta(seconds=span))
            )
        return float((start - now).total_seconds())

    def pause_for(self, seconds: float) -> None:
        self._ensure_row()
        table = refresh_budget
        if self.postgres:
            with self.engine.begin() as conn:
                conn.execute(_PAUSE, {"client_id": self.client_id, "seconds": seconds})
            return
        with write_transaction(self.engine) as conn:
            current = conn.execute(select(table.c.next_at).where(table.c.client_id == self.client_id)).scalar()
            until_at = utcnow() + timedelta(seconds=seconds)
            if current is not None and until_at > current:
                conn.execute(update(table).where(table.c.client_id == self.client_id).values(next_at=until_at))

    def _ensure_row(self) -> None:
        if self._row_exists:
            return
        table = refresh_budget
        with write_transaction(self.engine) as conn:
            exists = conn.execute(select(table.c.client_id).where(table.c.client_id == self.client_id)).first()
            if exists is None:
                if self.postgres:
                    from sqlalchemy.dialects.postgresql import insert as pg_insert

                    statement: Insert = pg_insert(table).on_conflict_do_nothing(index_elements=["client_id"])
                else:
                    statement = insert(table)  # BEGIN IMMEDIATE: nobody else can have inserted it meanwhile
                # No turn claimed yet: a moment long past, so the first claim starts at the timeline's own now.
                conn.execute(statement.values(client_id=self.client_id, next_at=NEVER))
        self._row_exists = True


class ProcessBudget:
    """The same timeline kept in this process: for an in-memory SQLite database, which no other process sees."""

    def __init__(self) -> None:
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def claim(self, turns: int, interval: float) -> float:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + turns * interval
        return start - now

    def pause_for(self, seconds: float) -> None:
        with self._lock:
            self._next = max(self._next, time.monotonic() + seconds)


def budget_for(engine: Engine, client_id: str) -> DatabaseBudget | ProcessBudget:
    """The shared budget for the engine's database (in this process only for an in-memory SQLite database)."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and (not url.database or url.database == ":memory:"):
        return ProcessBudget()
    return DatabaseBudget(engine, client_id)


class BudgetPacer:
    """Spaces one process's refreshes on the shared timeline: at most `max_per_minute` start in any minute, summed over
    every process drawing from the same budget. Threads of this process share the turns it claimed."""

    def __init__(
        self,
        budget: RefreshBudget,
        max_per_minute: float,
        *,
        claim_size: int | None = None,
        on_wait: Callable[[float], None] | None = None,
        threads: int | None = None,
    ):
        self.budget = budget
        self.interval = 60.0 / max_per_minute if max_per_minute > 0 else 0.0
        default_claim = int(CLAIM_SECONDS / self.interval) if self.interval else MAX_CLAIM
        # No more turns at once than threads to use them (`threads`): the others would come due while every thread
        # is busy, be dropped, and be lost to every process sharing the budget.
        default_claim = min(default_claim, threads or default_claim)
        self.claim_size = max(1, min(MAX_CLAIM, claim_size or default_claim))
        self.late = max(LATE_SECONDS, self.interval / 2)  # a turn later than this is dropped
        self.dropped = 0  # turns this process claimed and dropped unused (each one lost to every refresher)
        self.on_wait = on_wait  # the one place where a turn's wait is measured (a metrics observer)
        self._alone = ProcessBudget()  # while the database does not answer
        self._turns: deque[float] = deque()  # monotonic start times of turns claimed and not used yet
        self._lock = threading.Lock()

    def wait(self, stop: threading.Event | None = None) -> float:
        """Sleep until this caller's turn (never holding a lock or a transaction); returns the seconds waited."""
        started = time.monotonic()
        if self.interval <= 0:
            return 0.0
        with self._lock:
            start = self._next_turn()
        delay = start - time.monotonic()
        if delay > 0:
            if stop is not None:
                stop.wait(delay)
            else:
                time.sleep(delay)
        waited = time.monotonic() - started
        if self.on_wait is not None:
            self.on_wait(waited)
        return waited

    def _next_turn(self) -> float:
        now = time.monotonic()
        # A turn nobody took within `late` of its start is dropped: used later, it would join a burst.
        while self._turns and self._turns[0] < now - self.late:
            self._turns.popleft()
            self.dropped += 1
        if not self._turns:
            try:
                first = now + self.budget.claim(self.claim_size, self.interval)
            except SQLAlchemyError as error:
                # The database did not answer (refreshes will fail too): pace this process alone meanwhile.
                logger.warning("could not claim refresh turns from the shared budget (%s)", type(error).__name__)
                first = now + self._alone.claim(self.claim_size, self.interval)
            self._turns.extend(first + n * self.interval for n in range(self.claim_size))
        return self._turns.popleft()

    def drop_turns(self, _seconds: float = 0.0) -> None:
        """Forget the turns claimed and not used yet: Slack asked everyone to wait (the budget row says until when)."""
        with self._lock:
            self._turns.clear()
