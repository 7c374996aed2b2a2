"""Engines for Delegate's databases: SQLite (embedded default) and PostgreSQL (scale-out)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import Engine, make_url

from .files import private_sqlite_files
from .schema import metadata

__all__ = ["create_database_engine", "default_database_url", "delete_all_rows", "write_transaction"]

_IMMEDIATE = "delegate_write"


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it takes the write lock at BEGIN (BEGIN IMMEDIATE), so it waits
    under busy_timeout instead of failing with "database is locked" when it upgrades a read to a write."""
    with engine.connect() as conn:
        conn.execution_options(**{_IMMEDIATE: True})
        with conn.begin():
            yield conn


def delete_all_rows(engine: Engine) -> None:
    """Empty every Delegate table (installs, tokens, their events, OAuth states) in one transaction; the schema stays."""
    with write_transaction(engine) as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


def default_database_url(data_dir: Path) -> str:
    """The embedded default: a SQLite file in the data folder."""
    return f"sqlite:///{(data_dir / 'delegate.sqlite3').resolve()}"


def create_database_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine tuned for many threads and processes sharing one database."""
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
    kwargs.setdefault("pool_pre_ping", True)
    if make_url(url).get_backend_name() == "postgresql":
        # A host that vanishes (no FIN) is noticed within about 20 s, releasing the locks its session held.
        connect_args = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 3, "keepalives_count": 3}
        connect_args.update(kwargs.pop("connect_args", {}))
        kwargs["connect_args"] = connect_args
    return create_engine(url, **kwargs)
