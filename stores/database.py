"""Engines for Delegate's databases: SQLite (embedded default) and PostgreSQL (scale-out)."""

from __future__ import annotations

import select
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, MetaData, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, InvalidatePoolError

from .files import private_sqlite_files
from .schema import metadata

__all__ = [
    "POOL_TIMEOUT",
    "behind_pgbouncer",
    "create_database_engine",
    "default_database_url",
    "delete_all_rows",
    "max_overflow_for",
    "read_retrying",
    "refresh_statistics",
    "write_transaction",
]

T = TypeVar("T")
_IMMEDIATE = "delegate_write"
# A request waiting longer than this for a pooled connection has missed Slack's 3 s ack anyway: it fails
# (StoreUnavailable, "try again") instead of piling up threads behind a database that is not keeping up.
POOL_TIMEOUT = 2.0
# Pooled PostgreSQL connections are replaced after this long, before a server, proxy or firewall drops them.
POOL_RECYCLE = 1800
_BEHIND_PGBOUNCER: weakref.WeakSet[Engine] = weakref.WeakSet()


def max_overflow_for(pool_size: int) -> int:
    """Connections a pool may open beyond pool_size for a burst (closed again when returned): half as many again."""
    return max(1, pool_size // 2)


def behind_pgbouncer(engine: Engine) -> bool:
    """Whether the engine was made for a PgBouncer in transaction pooling (no prepared statements)."""
    return engine in _BEHIND_PGBOUNCER


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it takes the write lock at BEGIN (BEGIN IMMEDIATE), so it waits
    under busy_timeout instead of failing with "database is locked" when it upgrades a read to a write."""
    with engine.connect() as conn:
        conn.execution_options(**{_IMMEDIATE: True})
        with conn.begin():
            yield conn


def read_retrying(engine: Engine, read: Callable[[Connection], T]) -> T:
    """Run a read on a pooled connection, once more on a new one if the first was found dead (the server restarted
    or ended it): SQLAlchemy has then invalidated every connection pooled before it, so the retry reconnects."""
    try:
        with engine.connect() as conn:
            return read(conn)
    except DBAPIError as error:
        if not error.connection_invalidated:
            raise
    with engine.connect() as conn:
        return read(conn)


def refresh_statistics(engine: Engine, tables: MetaData = metadata) -> None:
    """ANALYZE Delegate's tables after a bulk write, so the planner reads each row by its unique key.

    Until a table of many rows is analyzed, PostgreSQL has no statistics for it and may pick another index that starts
    with the same columns: measured on 100,000 people in one workspace, a token read by (client, enterprise, team,
    user) went through the (client, enterprise, team, installed_at) index and filtered the whole workspace, 33 ms a
    read instead of 0.06. Autovacuum analyzes a table in time, where it runs; a bulk import should not wait for it.
    """
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        quote = engine.dialect.identifier_preparer.format_table
        for table in tables.sorted_tables:
            conn.exec_driver_sql(f"ANALYZE {quote(table)}")


def delete_all_rows(engine: Engine) -> None:
    """Empty every Delegate table (installs, tokens, their events, OAuth states) in one transaction; the schema stays."""
    with write_transaction(engine) as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


def default_database_url(data_dir: Path) -> str:
    """The embedded default: a SQLite file in the data folder."""
    return f"sqlite:///{(data_dir / 'delegate.sqlite3').resolve()}"


def create_database_engine(url: str, *, pool_size: int | None = None, pgbouncer: bool = False, **kwargs: Any) -> Engine:
    """Create an engine tuned for many threads and processes sharing one database.

    On PostgreSQL, `pool_size` connections are kept per process (plus `max_overflow_for(pool_size)` for bursts, each
    waited for at most POOL_TIMEOUT); `pgbouncer` says the URL points at a PgBouncer in transaction pooling, where a
    prepared statement would land on another server connection, so psycopg prepares none.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            private_sqlite_files(Path(parsed.database))
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # pysqlite's own transaction handling defers BEGIN; take it over so BEGIN IMMEDIATE is possible.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Straight to the driver: going through SQLAlchemy's execution path costs more than the BEGIN itself.
            immediate = conn.get_execution_options().get(_IMMEDIATE)
            conn.connection.driver_connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = str(parsed.set(drivername="postgresql+psycopg"))
    if make_url(url).get_backend_name() == "postgresql":
        # A host that vanishes (no FIN) is noticed within about 20 s, releasing the locks its session held.
        # (keepalives are the client socket's own: they work through PgBouncer too, to PgBouncer.)
        connect_args: dict[str, Any] = {
            "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 3, "keepalives_count": 3,
        }  # fmt: skip
        if pgbouncer:
            connect_args["prepare_threshold"] = None
        connect_args.update(kwargs.pop("connect_args", {}))
        kwargs["connect_args"] = connect_args
        if pool_size is not None and "poolclass" not in kwargs:
            kwargs.setdefault("pool_size", pool_size)
            kwargs.setdefault("max_overflow", max_overflow_for(pool_size))
            kwargs.setdefault("pool_timeout", POOL_TIMEOUT)
        # No pool_pre_ping: its SELECT was a round trip on every checkout (0.34 ms of a 1.23 ms read). A connection
        # the server ended is seen at checkout without one (_closed_by_server), and one that dies during a read is
        # retried once (read_retrying, and stores.token_rows' raw read).
        kwargs.setdefault("pool_recycle", POOL_RECYCLE)
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "postgresql":
        event.listen(engine, "checkout", _closed_by_server)
    if pgbouncer:
        _BEHIND_PGBOUNCER.add(engine)
    return engine


def _closed_by_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """At checkout, drop a pooled connection the server has ended (restart, pg_terminate_backend, idle timeout),
    with no round trip: an idle connection's socket has nothing to read unless the server said goodbye (a FATAL
    message, then EOF). SQLAlchemy then replaces it and every connection pooled before it."""
    if dbapi_connection.closed or dbapi_connection.broken:
        raise InvalidatePoolError("the connection was closed")
    readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    if readable:
        raise InvalidatePoolError("the server ended the connection")
