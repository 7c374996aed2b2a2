"""Whether a database holds the schema this version expects: revision at head, and every table, column, index and
unique constraint of ``stores.schema.metadata`` present (compared with what SQLAlchemy's inspector reflects)."""

from __future__ import annotations

from dataclasses import dataclass, field

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Index, Table, UniqueConstraint, func, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from .listing import count_by_state
from .migrations import alembic_config
from .schema import default_tables, metadata

__all__ = ["SchemaReport", "check_schema"]


@dataclass
class SchemaReport:
    """What `db check` found; an empty `problems` means the schema is as expected."""

    revision: str | None
    head: str
    problems: list[str] = field(default_factory=list)
    row_counts: dict[str, int] = field(default_factory=dict)
    tokens_by_state: dict[tuple[str, str], int] = field(default_factory=dict)


def _head() -> str:
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    return ",".join(sorted(heads))


def _columns(reflected: dict[str, object]) -> tuple[str, ...]:
    names = reflected.get("column_names")
    return tuple(str(name) for name in names) if isinstance(names, list) else ()


def _check_table(
    table: Table, reflected_columns: set[str], indexes: list[dict[str, object]], uniques: list[dict[str, object]]
) -> list[str]:
    problems = [
        f"table {table.name} lacks column {column.name}" for column in table.columns if column.name not in reflected_columns
    ]
    index_names = {index["name"] for index in indexes}
    index_columns = {_columns(index) for index in indexes}
    unique_columns = {_columns(u) for u in uniques} | {_columns(index) for index in indexes if index.get("unique")}
    for index in table.indexes:
        assert isinstance(index, Index)
        columns = tuple(column.name for column in index.columns)
        if index.name not in index_names and columns not in index_columns:
            problems.append(f"table {table.name} lacks index {index.name} on ({', '.join(columns)})")
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            columns = tuple(column.name for column in constraint.columns)
            if columns not in unique_columns:
                name = constraint.name if isinstance(constraint.name, str) else "unique"
                problems.append(f"table {table.name} lacks unique constraint {name} on ({', '.join(columns)})")
    for column in table.columns:
        if column.unique and (column.name,) not in unique_columns:
            problems.append(f"table {table.name} lacks the unique constraint on ({column.name})")
    return problems


def check_schema(engine: Engine) -> SchemaReport:
    """Compare the database with the schema at head; counts rows of the tables that exist."""
    with engine.connect() as conn:
        revision = MigrationContext.configure(conn).get_current_revision()
    report = SchemaReport(revision=revision, head=_head())
    if revision is None:
        report.problems.append(f"no schema revision recorded (expected {report.head}): run `python app.py db upgrade`")
    elif revision != report.head:
        report.problems.append(f"schema at revision {revision}, expected {report.head}: run `python app.py db upgrade`")
    inspector = inspect(engine)
    present = set(inspector.get_table_names())
    for table in metadata.sorted_tables:
        if table.name not in present:
            report.problems.append(f"table {table.name} is missing")
            continue
        columns = {column["name"] for column in inspector.get_columns(table.name)}
        indexes: list[dict[str, object]] = [dict(i) for i in inspector.get_indexes(table.name)]
        uniques: list[dict[str, object]] = [dict(u) for u in inspector.get_unique_constraints(table.name)]
        report.problems.extend(_check_table(table, columns, indexes, uniques))
        with engine.connect() as conn:
            report.row_counts[table.name] = int(conn.execute(select(func.count()).select_from(table)).scalar_one())
    if {default_tables.user_tokens.name, default_tables.workspaces.name} <= present:
        try:
            report.tokens_by_state = count_by_state(engine, default_tables)
        except SQLAlchemyError as error:  # a column it reads is missing: already named above
            report.problems.append(f"tokens by state could not be counted ({type(error).__name__})")
    return report
