"""prune_events reads the audit table oldest first through its own index, not by scanning every event."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event, insert
from sqlalchemy.engine import Engine

from stores import SQLAlchemyInstallationStore


def test_pruning_old_events_uses_the_occurred_at_index(store: SQLAlchemyInstallationStore, engine: Engine) -> None:
    events = store.tables.token_events
    now = store.clock()
    rows = [
        {"occurred_at": now - timedelta(minutes=n), "client_id": store.client_id, "enterprise_id": "", "team_id": "T1",
         "user_id": f"U{n % 500}", "token_kind": "user", "event": "refreshed"}
        for n in range(20000)
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(events), rows)
    cutoff = now - timedelta(minutes=19900)  # the oldest 99
    with engine.connect() as conn:  # statistics, as autovacuum keeps them
        conn.exec_driver_sql(f"ANALYZE {events.name}" if engine.dialect.name == "postgresql" else "ANALYZE")
        conn.commit()
    ran: list[tuple[str, object]] = []

    def capture(conn: object, cursor: object, statement: str, parameters: object, *args: object) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            ran.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        assert store.prune_events(cutoff) == 99
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    [(statement, parameters)] = ran
    with engine.connect() as conn:  # the very statement prune_events ran, explained
        if engine.dialect.name == "postgresql":
            plan = "\n".join(conn.exec_driver_sql("EXPLAIN " + statement, parameters).scalars())  # type: ignore[arg-type]
        else:
            found = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)  # type: ignore[arg-type]
            plan = "\n".join(str(row[-1]) for row in found)
    assert "delegate_token_events_occurred_idx" in plan, plan
