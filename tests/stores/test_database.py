"""delete_all_rows: what sandbox mode's "Start over" does to Delegate's tables, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from stores.database import delete_all_rows
from stores.installation_store import SQLAlchemyInstallationStore
from stores.oauth_state_store import SQLAlchemyOAuthStateStore
from stores.schema import metadata
from tests.stores.test_installation_store import workspace_install


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in metadata.sorted_tables
        }


def test_delete_all_rows_empties_every_table_and_keeps_the_schema(
    store: SQLAlchemyInstallationStore, state_store: SQLAlchemyOAuthStateStore, engine: Engine
) -> None:
    store.save(workspace_install())
    state_store.issue()
    assert all(
        row_counts(engine)[name] > 0 for name in ("delegate_workspaces", "delegate_user_tokens", "delegate_oauth_states")
    )
    delete_all_rows(engine)
    assert set(row_counts(engine).values()) == {0}
    assert store.find_installation(enterprise_id=None, team_id="T1") is None
    store.save(workspace_install())  # the tables are still there, ready for a new install
    assert store.find_installation(enterprise_id=None, team_id="T1", user_id="U1") is not None
