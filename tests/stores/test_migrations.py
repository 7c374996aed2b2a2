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
    assert "database at revision 0004" in result.output


def test_0004_adds_the_sweep_columns_and_indexes_and_downgrades_cleanly(database_url: str) -> None:
    from alembic import command

    from stores.migrations import alembic_config
    from stores.schema_check import check_schema

    upgrade(database_url, "0003")
    engine = create_database_engine(database_url)
    try:
        with engine.begin() as conn:  # a token stored before 0004: refreshed ahead until a sweep finds it unused
            conn.exec_driver_sql(
                "INSERT INTO delegate_user_tokens (client_id, enterprise_id, team_id, user_id, is_enterprise_install, "
                "status, refresh_failures, generation, installed_at, updated_at) VALUES ('c', '', 'T1', 'U1', false, "
                "'active', 0, 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        upgrade(database_url)
        assert check_schema(engine).problems == []
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT refresh_ahead, last_used_at FROM delegate_user_tokens").one() == (True, None)
            indexes = {i["name"] for i in inspect(conn).get_indexes("delegate_user_tokens")}
            indexes |= {i["name"] for i in inspect(conn).get_indexes("delegate_token_events")}
        assert {"delegate_user_tokens_sweep_idx", "delegate_token_events_occurred_idx"} <= indexes
        command.downgrade(alembic_config(database_url), "0003")
        with engine.connect() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("delegate_user_tokens")}
        assert not columns & {"last_used_at", "refresh_ahead", "sweep_claimed_until", "sweep_owner"}
        upgrade(database_url)
        assert check_schema(engine).problems == []
    finally:
        engine.dispose()
