"""When each person's token was last used, recorded cheaply: refresh-ahead renews only the tokens people use.

The request path only notes a use in memory (a dictionary lookup; no database write, no lock held for long). A use
is queued for writing at most once per `interval` per person in each process, and a background thread writes the
queue a moment later, long after the acknowledgement left, in transactions of at most CHUNK rows taken in key order:
a transaction holds the row lock of every row it wrote until it commits, and one over thousands of rows (the first
hour of a busy day) kept refreshes of those people waiting a minute for their in-flight mark; in one order, two
processes' recorders never deadlock. The write itself is guarded by the same interval in SQL, so a person served by
several processes is written once an interval however many noted it.
Memory is bounded: what was recorded is forgotten after the interval (an older note could not spare a write), and
at most `max_people` are kept (the oldest go first; forgetting one costs at most one extra write).

Recording a use also sets the row's `refresh_ahead` again: a token the sweep set aside as unused is renewed ahead
once more from its next use on (that use itself refreshes it, after the ack, if it has expired meanwhile).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, or_, update
from sqlalchemy.exc import SQLAlchemyError

from .database import write_transaction

if TYPE_CHECKING:
    from .installation_store import SQLAlchemyInstallationStore
    from .token_rows import TokenKey

__all__ = ["CHUNK", "UsageRecorder"]

logger = logging.getLogger(__name__)

CHUNK = 100  # rows written (and row locks held) by one transaction


class UsageRecorder:
    """Notes each person's token use in memory and writes `last_used_at` in the background, at most once an interval."""

    def __init__(
        self,
        store: SQLAlchemyInstallationStore,
        *,
        clock: Callable[[], datetime],
        interval: timedelta = timedelta(hours=1),
        max_people: int = 10_000,
        flush_delay: float = 1.0,
    ):
        self.store = store
        self.clock = clock
        self.interval = interval
        self.max_people = max(1, max_people)
        self.flush_delay = flush_delay  # notes gathered this long are written together
        self._recorded: dict[TokenKey, datetime] = {}  # queued for writing at that moment, oldest first
        self._pending: dict[TokenKey, datetime] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        u = store.installations.c
        self._write = (
            update(store.installations)
            .where(
                u.client_id == store.client_id,
                u.enterprise_id == bindparam("k_enterprise"),
                u.team_id == bindparam("k_team"),
                u.user_id == bindparam("k_user"),
                or_(u.last_used_at.is_(None), u.last_used_at < bindparam("k_since"), u.refresh_ahead.is_(False)),
            )
            .values(last_used_at=bindparam("k_used"), refresh_ahead=True)
        )

    def note(self, key: TokenKey) -> None:
        """The person's token is serving a request now (the request path: memory only, never the database)."""
        now = self.clock()
        last = self._recorded.get(key)
        if last is not None and now - last < self.interval:
            return
        with self._lock:
            last = self._recorded.pop(key, None)
            if last is not None and now - last < self.interval:  # another thread noted it meanwhile
                self._recorded[key] = last
                return
            self._recorded[key] = now  # re-inserted: the newest last
            while len(self._recorded) > self.max_people:
                del self._recorded[next(iter(self._recorded))]
            if len(self._pending) < self.max_people:
                self._pending[key] = now
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="delegate-last-used", daemon=True)
                self._thread.start()
        self._wake.set()

    def flush(self) -> int:
        """Write what is queued now, CHUNK rows a transaction; returns how many rows were written."""
        with self._lock:
            pending, self._pending = self._pending, {}
            self._forget_older_than(self.clock() - self.interval)
        queued = sorted(pending.items(), key=lambda item: (item[0].enterprise_id, item[0].team_id, item[0].user_id))
        written = 0
        for start in range(0, len(queued), CHUNK):
            chunk = queued[start : start + CHUNK]
            params = [
                {
                    "k_enterprise": key.enterprise_id,
                    "k_team": key.team_id,
                    "k_user": key.user_id,
                    "k_used": used,
                    "k_since": used - self.interval,
                }
                for key, used in chunk
            ]
            try:
                with write_transaction(self.store.engine) as conn:
                    written += max(0, int(conn.execute(self._write, params).rowcount or 0))
            except SQLAlchemyError as error:
                # A hint, not a token: kept for the next round (bounded); losing it only means a refresh on next use.
                unwritten = queued[start:]
                logger.warning("could not record when %d token(s) were last used (%s)", len(unwritten), type(error).__name__)
                with self._lock:
                    for key, used in unwritten:
                        if len(self._pending) < self.max_people:
                            self._pending.setdefault(key, used)
                break
        return written

    def _forget_older_than(self, moment: datetime) -> None:
        """Drop notes that can no longer spare a write (called under the lock; they are in insertion order)."""
        while self._recorded:
            key = next(iter(self._recorded))
            if self._recorded[key] >= moment:
                break
            del self._recorded[key]

    def remembered(self) -> int:
        """How many people this process remembers (bounded by max_people)."""
        return len(self._recorded)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.wait(self.flush_delay):
                break
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the recorder must outlive any one failure
                logger.exception("recording when tokens were last used failed")

    def close(self) -> None:
        """Write what is queued and stop the background thread."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
        try:
            self.flush()
        except SQLAlchemyError:
            pass
