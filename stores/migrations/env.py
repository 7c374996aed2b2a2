"""Alembic environment: runs Delegate's migrations online against the configured database."""

from __future__ import annotations

from alembic import context

from stores.database import create_database_engine
from stores.schema import metadata

config = context.config
target_metadata = metadata


def run_migrations_online() -> None:
    pgbouncer = bool(config.attributes.get("delegate_pgbouncer"))
    engine = create_database_engine(config.get_main_option("sqlalchemy.url") or "", pgbouncer=pgbouncer)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Delegate's migrations run online only: python app.py db upgrade")
run_migrations_online()
