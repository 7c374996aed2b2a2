"""The Alembic migrations build exactly the schema the code declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import inspect

from stores import create_database_engine
from stores.migrations import current_revision, upgrade
from stores.schema import metadata


def test_upgrade_creates_the_declared_schema(database_url: str) -> None:
    upgrade(database_url)
    assert current_revision(database_url) is not None
    engine = create_database_engine(database_url)
    try:
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert differences == []
    assert {"delegate_workspaces", "delegate_user_tokens", "delegate_token_events", "delegate_oauth_states"} <= tables
    upgrade(database_url)  # idempotent


def test_db_upgrade_command(database_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from app import cli

    monkeypatch.setenv("DATABASE_URL", database_url)
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "database at revision 0003" in result.output
