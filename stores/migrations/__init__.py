"""Alembic migrations for Delegate's schema, runnable without an alembic.ini."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config

__all__ = ["alembic_config", "current_revision", "head_revision", "revision_on", "upgrade"]

if TYPE_CHECKING:
    from sqlalchemy import Connection

HERE = Path(__file__).resolve().parent


def alembic_config(database_url: str, *, pgbouncer: bool = False) -> Config:
    """An Alembic configuration pointing at these migrations and the given database (behind PgBouncer or not)."""
    config = Config()
    config.attributes["delegate_pgbouncer"] = pgbouncer
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head", *, pgbouncer: bool = False) -> None:
    """Apply migrations up to the given revision."""
    command.upgrade(alembic_config(database_url, pgbouncer=pgbouncer), revision)


def current_revision(database_url: str, *, pgbouncer: bool = False) -> str | None:
    """The revision the database is at, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    from stores.database import create_database_engine

    engine = create_database_engine(database_url, pgbouncer=pgbouncer)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    """The newest revision these migrations define (read from the migration files once per process)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(HERE)).get_current_head()


def revision_on(conn: Connection) -> str | None:
    """The revision the connected database is at, or None when it has no Alembic version table."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()
