"""Readiness (/readyz): whether this process can serve Slack now. Liveness (/healthz) is only "the process answers".

Four checks, each named in the answer: `database` (a SELECT 1), `schema` (the Alembic revision is the head these
migrations define), `keys` (the ring seals and opens a canary, and opens the newest stored token of each table, so a
ring lacking the key other hosts now write with shows at once) and `refresher` (this process's refresh-ahead thread
is alive, and its last sweep finished, or its current sweep refreshed a token, within 3 intervals; with no refresher
in this process, `off (runs as its own process)`, which passes). The database checks run at most once per
`cache_seconds` (about 4 reads on one connection), so load balancers probing every second cost almost nothing.

/healthz stays free of the database on purpose: an orchestrator restarts a process whose liveness fails, and
restarting every worker of every host because the database is down fixes nothing and turns a blip into an outage;
readiness takes the hosts out of the load balancer instead, and puts them back when the database answers.

No answer carries a secret or a traceback: failures are named by the exception's type, never its message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import text

from stores.keys import key_ring_problem
from stores.migrations import head_revision, revision_on

if TYPE_CHECKING:
    from stores.refresher import Refresher

    from .wiring import Stores

__all__ = ["Check", "Readiness"]

OFF = "off (runs as its own process)"


@dataclass(frozen=True)
class Check:
    """One readiness check's result: `detail` is "ok", or what is wrong (never a secret)."""

    name: str
    ok: bool
    detail: str = "ok"

    def line(self) -> str:
        return f"{self.name}: {self.detail}"


class Readiness:
    """The readiness checks of one process, with the database's answers kept for `cache_seconds`."""

    def __init__(
        self,
        stores: Stores,
        *,
        refresher: Refresher | None,
        cache_seconds: float = 2.0,
        head: Callable[[], str | None] = head_revision,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.stores = stores
        self.refresher = refresher
        self.cache_seconds = cache_seconds
        self.head = head
        self.clock = clock
        self._cached: tuple[float, list[Check]] | None = None
        self._lock = threading.Lock()

    def checks(self) -> list[Check]:
        """Every check's result, in order: database, schema, keys, refresher."""
        return [*self._stored_checks(), self.refresher_check()]

    def answer(self) -> tuple[int, str]:
        """The HTTP status and plain-text body of /readyz."""
        checks = self.checks()
        ready = all(check.ok for check in checks)
        lines = ["ready" if ready else "not ready", *(check.line() for check in checks)]
        return (200 if ready else 503), "\n".join(lines) + "\n"

    def _stored_checks(self) -> list[Check]:
        with self._lock:  # concurrent probes share one round of queries
            now = self.clock()
            if self._cached is not None and now - self._cached[0] < self.cache_seconds:
                return self._cached[1]
            checks = self.database_checks()
            self._cached = (self.clock(), checks)
            return checks

    def database_checks(self) -> list[Check]:
        """database, schema and keys, on one connection (uncached)."""
        try:
            with self.stores.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
                revision = revision_on(conn)
        except Exception as error:  # noqa: BLE001 - any failure to reach it means the same: not ready
            reason = f"not checked (database: {type(error).__name__})"
            return [Check("database", False, f"unreachable ({type(error).__name__})"), Check("schema", False, reason),
                    Check("keys", False, reason)]  # fmt: skip
        head = self.head()
        if revision == head:
            schema = Check("schema", True)
        else:
            schema = Check("schema", False, f"at {revision or 'no revision'}, head is {head} (python app.py db upgrade)")
        try:
            problem = key_ring_problem(self.stores.installation_store)
            keys = Check("keys", problem is None, problem or "ok")
        except Exception as error:  # noqa: BLE001 - the table missing (no schema), the database gone meanwhile
            keys = Check("keys", False, f"not checked ({type(error).__name__})")
        return [Check("database", True), schema, keys]

    def refresher_check(self) -> Check:
        """The refresh-ahead thread of this process: alive, and sweeping on time."""
        refresher = self.refresher
        if refresher is None:
            return Check("refresher", True, OFF)
        if not refresher.alive:
            return Check("refresher", False, "its thread is not running")
        interval = refresher.interval.total_seconds()
        last = refresher.last_progress
        if last is None:
            return Check("refresher", False, "not started")
        age = time.monotonic() - last
        if age > 3 * interval:
            return Check("refresher", False, f"no sweep finished for {age:.0f} s (every {interval:.0f} s expected)")
        return Check("refresher", True)
