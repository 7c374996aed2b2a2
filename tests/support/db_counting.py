"""Count what an engine does at the DBAPI cursor: statements executed and rows fetched, per table named."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


@dataclass
class Counts:
    """Statements and fetched rows whose SQL names a table (every statement when `table` is None)."""

    table: str | None
    statements: list[str] = field(default_factory=list)
    rows: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def writes(self) -> list[str]:
        return [s for s in self.statements if s.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE"))]


class _CountingCursor:
    """The DBAPI cursor with its fetches counted; everything else passes through."""

    def __init__(self, cursor: Any, counts: Counts):
        self._cursor = cursor
        self._counts = counts

    def _add(self, rows: int) -> None:
        with self._counts.lock:
            self._counts.rows += rows

    def fetchone(self) -> Any:
        row = self._cursor.fetchone()
        self._add(row is not None)
        return row

    def fetchmany(self, *args: Any) -> Any:
        rows = self._cursor.fetchmany(*args)
        self._add(len(rows))
        return rows

    def fetchall(self) -> Any:
        rows = self._cursor.fetchall()
        self._add(len(rows))
        return rows

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


@contextmanager
def counting(engine: Engine, table: str | None = None) -> Iterator[Counts]:
    """Count the statements the engine runs on `table` (its name in the SQL) and the rows they return."""
    counts = Counts(table)

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if table is not None and table not in statement:
            return
        with counts.lock:
            counts.statements.append(statement)
        if context is not None and cursor.description is not None:
            context.cursor = _CountingCursor(cursor, counts)  # what SQLAlchemy fetches the result from

    event.listen(engine, "after_cursor_execute", after)
    try:
        yield counts
    finally:
        event.remove(engine, "after_cursor_execute", after)
