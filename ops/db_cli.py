"""`db`: schema migrations, the schema check, and the import from slack_sdk's tables."""

from __future__ import annotations

from typing import Any

import click

from ops.cli_support import PROGRESS, load_settings
from ops.progress import Interrupted, Progress, interrupted_exit, progress_mode, run_interruptibly
from stores.crypto import ENV_NAME as KEYS_ENV

__all__ = ["db"]


@click.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to.")
def db_upgrade(revision: str) -> None:
    """Apply the schema migrations to DATABASE_URL (default: the SQLite file in the data folder)."""
    from stores.migrations import current_revision, upgrade

    settings = load_settings()
    upgrade(settings.database_url, revision, pgbouncer=settings.database_pgbouncer)
    click.echo(f"database at revision {current_revision(settings.database_url, pgbouncer=settings.database_pgbouncer)}")


@db.command("check")
def db_check() -> None:
    """Check DATABASE_URL's schema against this version of Delegate: revision at head, every table, column and index
    present; print row counts per table and tokens by state. Exits 1 naming each problem."""
    from sqlalchemy.exc import SQLAlchemyError

    from stores.database import create_database_engine
    from stores.schema_check import check_schema

    settings = load_settings()
    engine = create_database_engine(settings.database_url, pgbouncer=settings.database_pgbouncer)
    try:
        report = check_schema(engine)
    except SQLAlchemyError as error:
        raise click.ClickException(f"the database did not answer ({type(error).__name__})") from None
    finally:
        engine.dispose()
    click.echo(f"revision: {report.revision or '(none)'} (head {report.head})")
    for table, count in report.row_counts.items():
        click.echo(f"  {table}: {count} row(s)")
    for (kind, state), count in sorted(report.tokens_by_state.items()):
        click.echo(f"  {kind} tokens {state}: {count}")
    if report.problems:
        for problem in report.problems:
            click.echo(f"problem: {problem}", err=True)
        click.echo(f"{len(report.problems)} problem(s); `python app.py db upgrade` fixes a schema behind head", err=True)
        raise click.exceptions.Exit(1)
    click.echo("schema ok")


@db.command("import-slack-sdk")
@click.option("--from-url", default=None, help="Database holding slack_sdk's tables [default: DATABASE_URL].")
@click.option("--bots-table", default="slack_bots", show_default=True, help="slack_sdk's bots table.")
@click.option(
    "--installations-table", default="slack_installations", show_default=True, help="slack_sdk's installations table."
)
@PROGRESS
def db_import_slack_sdk(from_url: str | None, bots_table: str, installations_table: str, progress: bool | None) -> None:
    """Copy the installations of slack_sdk's SQLAlchemyInstallationStore into Delegate's store, encrypting the tokens.
    Safe to interrupt and run again: a token Delegate holds newer (rotated since) is never overwritten."""
    from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore as SlackSdkStore

    from stores import EncryptionKeyError, SQLAlchemyInstallationStore, create_database_engine
    from stores.slack_sdk_import import ImportReport, count_slack_sdk_rows, import_from_slack_sdk

    settings = load_settings(required=("SLACK_CLIENT_ID", KEYS_ENV))  # the installations imported are that app's
    assert settings.client_id
    try:
        keyring = settings.keyring()
    except EncryptionKeyError as error:
        raise click.ClickException(str(error)) from None
    target_engine = create_database_engine(settings.database_url, pgbouncer=settings.database_pgbouncer)
    source_engine = create_database_engine(from_url, pgbouncer=settings.database_pgbouncer) if from_url else target_engine
    report = ImportReport()
    try:
        source = SlackSdkStore(
            client_id=settings.client_id,
            engine=source_engine,
            bots_table_name=bots_table,
            installations_table_name=installations_table,
        )
        target = SQLAlchemyInstallationStore(settings.client_id, target_engine, encryption_keys=keyring)
        with Progress("importing", count_slack_sdk_rows(source, settings.client_id), progress_mode(progress)) as bar:

            def work(stop: Any) -> ImportReport:
                return import_from_slack_sdk(target, source, on_row=lambda _: bar.advance(), stop=stop)

            report = run_interruptibly(work)
    except Interrupted:
        raise interrupted_exit(bar.done, "row(s)") from None
    finally:
        target_engine.dispose()
        source_engine.dispose()
    click.echo(
        f"imported {report.installations} installation row(s) and {report.bots} bot row(s); {report.skipped} row(s) "
        "skipped (Delegate's copy is as new or newer); the old tables are left as they were"
    )
