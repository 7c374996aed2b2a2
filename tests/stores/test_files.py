"""The data folder is owner-only (0700) and every SQLite file Delegate keeps is 0600, also when found looser."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from stores import SQLAlchemyInstallationStore, create_database_engine, generate_key
from stores.locks import locks_for
from stores.token_rows import TokenKey
from tests.conftest import CLIENT_ID
from tests.stores.test_crypto import save_two_users


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The umask most hosts run with (022), under which SQLite would make its files world-readable."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def use(database: Path) -> None:
    """Open the database as Delegate does, write tokens, and take a refresh lock, leaving every file in place."""
    engine = create_database_engine(f"sqlite:///{database}")
    try:
        store = SQLAlchemyInstallationStore(CLIENT_ID, engine, encryption_keys=generate_key())
        store.create_tables()
        save_two_users(store)
        locks = locks_for(engine, CLIENT_ID)
        with locks.hold(TokenKey.of(None, "T1", "U1"), wait=1) as held:
            assert held is not None
            with engine.connect() as conn:  # the WAL and shared-memory files exist while a connection is open
                conn.execute(text("SELECT 1"))
                for suffix in ("-wal", "-shm", "-locks"):
                    assert mode(database.with_name(database.name + suffix)) == 0o600, suffix
    finally:
        engine.dispose()


def test_a_new_database_and_its_folder_are_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "data" / "delegate.sqlite3"
    use(database)
    assert mode(database.parent) == 0o700
    assert mode(database) == 0o600
    assert mode(database.with_name("delegate.sqlite3-locks")) == 0o600


def test_files_left_readable_by_others_are_tightened_at_start(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir(mode=0o755)
    database = folder / "delegate.sqlite3"
    with sqlite3.connect(database) as conn:  # as an earlier version of Delegate left them: 0644
        conn.execute("CREATE TABLE earlier (x)")
    companions = [database.with_name(database.name + suffix) for suffix in ("-wal", "-shm", "-journal", "-locks")]
    for path in [database, *companions]:
        path.touch()
        os.chmod(path, 0o644)
    create_database_engine(f"sqlite:///{database}").dispose()
    for path in [database, *companions]:
        assert mode(path) == 0o600, path.name
    use(database)
    assert mode(database) == 0o600


def test_an_existing_shared_parent_folder_is_left_alone(tmp_path: Path) -> None:
    shared = tmp_path / "var-lib"
    shared.mkdir(mode=0o755)
    use(shared / "delegate.sqlite3")
    assert mode(shared) == 0o755
    assert mode(shared / "delegate.sqlite3") == 0o600
