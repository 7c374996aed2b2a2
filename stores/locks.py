"""The cross-process refresh lock: one holder per token across processes and hosts, released when its holder dies.

- PostgreSQL: a transaction-scoped advisory lock (`pg_advisory_xact_lock`) on a connection of its own, held across
  the call to Slack; the rotation is committed in that same transaction, so the new tokens and the release become
  visible together. Waiters give up after `lock_timeout`; the sweeper only tries (`pg_try_advisory_xact_lock`, the
  advisory form of SKIP LOCKED). A holder that dies closes its socket and the server rolls back at once; a host that
  vanishes is cut off by TCP keepalives and `idle_in_transaction_session_timeout`.
- SQLite (one host by nature): an OS byte-range lock (a Linux open-file-description lock) at the token's own
  offset in one lock file beside the database, which the kernel releases when the process dies. Never
  `BEGIN IMMEDIATE` across an HTTP call: that would block every writer of the database for the whole call.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, RootTransaction, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from .files import private_file
from .token_rows import TokenKey

__all__ = ["FileLocks", "Held", "PostgresLocks", "RefreshLocks", "locks_for"]

POLL_SECONDS = 0.01


@dataclass
class Held:
    """A held refresh lock; on PostgreSQL, the transaction that holds it, where the rotation is committed."""

    connection: Connection | None = None
    transaction: RootTransaction | None = None
    waited: bool = False  # another holder had it first (ProcessLocks): what it did may be in the database now

    def commit(self) -> None:
        """Commit what was written on the lock's connection (which also releases the lock on PostgreSQL)."""
        if self.transaction is not None and self.transaction.is_active:
            self.transaction.commit()


class RefreshLocks(Protocol):
    def hold(self, key: TokenKey, *, wait: float) -> AbstractContextManager[Held | None]:
        """Hold the token's lock, waiting at most `wait` seconds (0: only try); yields None if it is taken."""
        ...

    def close(self) -> None:
        """Release what the locks keep open (the PostgreSQL lock pool)."""
        ...


_WRITE_LOCK_TIMEOUT = "5000"  # ms: how long the holder's final write may wait for its row
_TRY_LOCK = text(
    "SELECT pg_try_advisory_xact_lock(:n), set_config('idle_in_transaction_session_timeout', :idle, true), "
    f"set_config('lock_timeout', '{_WRITE_LOCK_TIMEOUT}', true)"
)
_SET_TIMEOUTS = text(
    "SELECT set_config('idle_in_transaction_session_timeout', :idle, true), set_config('lock_timeout', :wait, true)"
)
_LOCK = text("SELECT pg_advisory_xact_lock(:n)")


def _lock_number(client_id: str, key: TokenKey) -> int:
    digest = hashlib.sha256(f"{client_id}/{key.slot.kind}/{key.enterprise_id}/{key.team_id}/{key.user_id}".encode())
    return int.from_bytes(digest.digest()[:8], "big", signed=True)


class PostgresLocks:
    """Advisory locks held by a transaction on a connection of the locks' own pool.

    A holder also writes through the app's pool while it holds the lock (the durable in-flight mark); with both on
    one pool, enough concurrent holders could take every connection and wait forever for one more. So lock
    connections come from a pool of their own that never makes anyone wait: it keeps `pool_size` connections for
    the next refreshes (a new PostgreSQL connection costs the server a process: more CPU than the whole refresh; 6 is
    an app process's refresher and background refreshes, as ops.capacity counts them) and opens one more for each
    holder beyond them, closed when it is done. The lock ends with its transaction, never with the connection, so a
    pooled connection comes back holding nothing.
    """

    def __init__(self, engine: Engine, client_id: str, *, idle_timeout: float = 30.0, pool_size: int = 6):
        from .database import behind_pgbouncer, create_database_engine

        url = engine.url.render_as_string(hide_password=False)
        self.engine = create_database_engine(
            url, pool_size=pool_size, max_overflow=-1, pgbouncer=behind_pgbouncer(engine)
        )  # max_overflow -1: a holder never waits for a connection, whatever else is waiting on the app's pool
        self.client_id = client_id
        self.idle_timeout = idle_timeout

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def hold(self, key: TokenKey, *, wait: float) -> Iterator[Held | None]:
        number = _lock_number(self.client_id, key)
        with self.engine.connect() as conn:
            transaction = conn.begin()
            try:
                # The holder is idle in this transaction while Slack answers: bounded, so a stuck holder cannot
                # keep the lock forever (Slack's calls are cut off well before this by the HTTP timeout). The final
                # write never waits long for a row. set_config(..., true) is SET LOCAL, in the lock's round trip.
                settings = {"idle": str(int(self.idle_timeout * 1000)), "n": number}
                if wait <= 0:
                    got = bool(conn.execute(_TRY_LOCK, settings).scalar())
                else:
                    conn.execute(_SET_TIMEOUTS, {**settings, "wait": str(max(1, int(wait * 1000)))})
                    try:
                        conn.execute(_LOCK, settings)
                        got = True
                    except DBAPIError as error:
                        if getattr(error.orig, "sqlstate", None) != "55P03":  # lock_not_available
                            raise
                        got = False
                    if got:
                        conn.execute(_SET_TIMEOUTS, {**settings, "wait": _WRITE_LOCK_TIMEOUT})
                if not got:
                    transaction.rollback()
                    yield None
                    return
                yield Held(conn, transaction)
            finally:
                if transaction.is_active:
                    try:
                        transaction.rollback()
                    except DBAPIError:
                        conn.invalidate()  # the server is gone, and with it the lock: nothing left to release


class FileLocks:
    """An open-file-description byte-range lock (Linux `F_OFD_SETLK`) at the token's own offset in one lock file
    beside the SQLite database (0600): one lock per token, no lock file per token, and, unlike classic POSIX record
    locks, it conflicts between threads of one process too and ends when its descriptor closes or its process dies."""

    def __init__(self, path: Path, *, client_id: str):
        self.path = path
        self.client_id = client_id
        private_file(path)  # tightened too if an earlier version left it readable by others

    def close(self) -> None:
        pass

    @contextmanager
    def hold(self, key: TokenKey, *, wait: float) -> Iterator[Held | None]:
        offset = _lock_number(self.client_id, key) & 0x3FFF_FFFF_FFFF_FFFF  # a non-negative off_t
        fd = os.open(self.path, os.O_RDWR)
        try:
            deadline = time.monotonic() + max(0.0, wait)
            while not _try_range_lock(fd, offset):
                if time.monotonic() >= deadline:
                    yield None
                    return
                time.sleep(POLL_SECONDS)
            yield Held()
        finally:
            os.close(fd)  # releases the lock


def _try_range_lock(fd: int, offset: int) -> bool:
    # struct flock: l_type, l_whence, l_start, l_len, l_pid (which must be 0 for OFD locks)
    request = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, offset, 1, 0)
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, request)
        return True
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise


class ProcessLocks:
    """Per-token thread locks within one process: the token manager's turns between its own threads, and the whole
    lock for an in-memory SQLite database, which no other process can see.

    An entry lives only while some thread holds or waits for its lock (a count of them), so the map holds the tokens
    being refreshed right now, not every token this process ever refreshed.
    """

    def __init__(self) -> None:
        self._locks: dict[TokenKey, _Turn] = {}
        self._guard = threading.Lock()

    def close(self) -> None:
        pass

    def __len__(self) -> int:
        """Tokens whose lock some thread holds or waits for."""
        return len(self._locks)

    @contextmanager
    def hold(self, key: TokenKey, *, wait: float) -> Iterator[Held | None]:
        with self._guard:
            turn = self._locks.get(key)
            if turn is None:
                turn = self._locks[key] = _Turn()
            turn.users += 1
        try:
            acquired = turn.lock.acquire(blocking=False)
            waited = not acquired and wait > 0
            if waited:
                acquired = turn.lock.acquire(timeout=wait)
            if not acquired:
                yield None
                return
            try:
                yield Held(waited=waited)
            finally:
                turn.lock.release()
        finally:
            with self._guard:
                turn.users -= 1
                if turn.users == 0:
                    del self._locks[key]


@dataclass
class _Turn:
    """One token's lock, and how many threads hold or wait for it."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0


def locks_for(engine: Engine, client_id: str) -> PostgresLocks | FileLocks | ProcessLocks:
    """The right lock for the engine's database."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        return PostgresLocks(engine, client_id)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return FileLocks(Path(f"{url.database}-locks"), client_id=client_id)
    return ProcessLocks()
