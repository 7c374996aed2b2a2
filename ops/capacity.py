"""How many PostgreSQL connections Delegate's processes open, and a warning at start when they cannot all fit.

What one app process holds at most (docs/deploy.md, "Connections and pools" has the whole arithmetic):
- its pool: `DATABASE_POOL_SIZE` kept open, plus `max_overflow_for(pool)` more for a burst. Every thread that reads or
  writes borrows one for a few milliseconds (waitress's 8 request threads, the 32 listener threads, the refresher's
  workers, the token manager's 2 background refreshers), so a few connections serve them all;
- one lock connection per refresh in flight (`stores.locks`: a pool of their own that keeps up to 6 for the next
  refreshes and never makes a holder wait): the refresher's concurrency (4, when DELEGATE_REFRESHER=workers) plus
  the 2 background refreshes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Engine

from stores.database import max_overflow_for

__all__ = ["LOCK_CONNECTIONS_BACKGROUND", "ConnectionPlan", "check_max_connections", "default_pool_size", "plan"]

logger = logging.getLogger("delegate.capacity")

LOCK_CONNECTIONS_BACKGROUND = 2  # the token manager's background refresh executor (stores.rotation)
REFRESHER_CONCURRENCY = 4  # the in-app refresher's refreshes in flight (stores.refresher's default)
POOL_BUDGET_PER_HOST = 20  # pooled connections one host's workers keep open by default, all together


def default_pool_size(workers: int) -> int:
    """DATABASE_POOL_SIZE's default: about 20 pooled connections per host in all, 2 to 5 per worker."""
    return max(2, min(5, POOL_BUDGET_PER_HOST // max(1, workers)))


@dataclass(frozen=True)
class ConnectionPlan:
    """The connections one host's processes may open at once."""

    processes: int
    pool_size: int
    max_overflow: int
    lock_connections: int

    @property
    def per_process(self) -> int:
        return self.pool_size + self.max_overflow + self.lock_connections

    @property
    def total(self) -> int:
        return self.processes * self.per_process


def plan(processes: int, pool_size: int, *, refresher_in_workers: bool) -> ConnectionPlan:
    locks = LOCK_CONNECTIONS_BACKGROUND + (REFRESHER_CONCURRENCY if refresher_in_workers else 0)
    return ConnectionPlan(processes, pool_size, max_overflow_for(pool_size), locks)


def check_max_connections(engine: Engine, connections: ConnectionPlan) -> str | None:
    """On PostgreSQL, a warning (logged and returned) when this host's processes alone could open more connections
    than the server accepts (max_connections minus superuser_reserved_connections); None when they fit."""
    if engine.url.get_backend_name() != "postgresql":
        return None
    try:
        with engine.connect() as conn:
            limit = int(conn.execute(text("SHOW max_connections")).scalar_one())
            reserved = int(conn.execute(text("SHOW superuser_reserved_connections")).scalar_one())
    except Exception as error:  # noqa: BLE001 - a check, never a reason not to start (PgBouncer may refuse SHOW)
        logger.info("could not read max_connections (%s); connection arithmetic not checked", type(error).__name__)
        return None
    available = limit - reserved
    if connections.total <= available:
        return None
    warning = (
        f"{connections.processes} processes x {connections.per_process} connections (pool {connections.pool_size} + "
        f"overflow {connections.max_overflow} + {connections.lock_connections} refresh locks) = {connections.total} "
        f"at peak, but PostgreSQL accepts {available} (max_connections {limit} - superuser_reserved_connections "
        f"{reserved}), and every other host adds as many: lower DATABASE_POOL_SIZE or the worker count, run the "
        "refresher alone (DELEGATE_REFRESHER=off), raise max_connections, or put PgBouncer in front "
        "(docs/deploy.md, 'Connections and pools')"
    )
    logger.warning("database connections: %s", warning)
    return warning
