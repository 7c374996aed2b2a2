"""Owner-only files: the data folder (0700) and a SQLite database with its journal, WAL, shared memory and lock
file (0600), which hold every ciphertext and every pending OAuth state.

SQLite creates a database file 0644 (less the umask) and gives its -wal, -shm and -journal files the database
file's own mode, so the database is created 0600 before SQLite opens it; files left with looser modes by an
earlier version are tightened when the engine is made.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["SQLITE_COMPANIONS", "private_directory", "private_file", "private_sqlite_files", "sqlite_companions"]

SQLITE_COMPANIONS = ("-wal", "-shm", "-journal", "-locks")


def private_directory(path: Path) -> Path:
    """Create the folder owner-only (0700), or tighten it to 0700 if it exists; returns it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def private_file(path: Path) -> Path:
    """Create the file empty and owner-only (0600) if it is missing, else tighten it to 0600; returns it.

    A missing parent folder is created 0700; an existing one is left as it is (it may be shared, such as /var/lib).
    """
    if not path.parent.exists():
        private_directory(path.parent)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
    finally:
        os.close(descriptor)
    return path


def sqlite_companions(database: Path) -> list[Path]:
    """The journal, WAL, shared-memory and lock files SQLite (and Delegate's file locks) keep beside a database."""
    return [database.with_name(database.name + suffix) for suffix in SQLITE_COMPANIONS]


def private_sqlite_files(database: Path) -> None:
    """Make the database file (and a missing parent folder, as private_file does) and whichever of its companion
    files exist owner-only (0600)."""
    private_file(database)
    for companion in sqlite_companions(database):
        if companion.exists():
            os.chmod(companion, 0o600)
