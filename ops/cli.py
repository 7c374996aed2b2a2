"""Operations commands for the stores: schema migrations, encryption keys, token refresh and migration."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from settings import Settings, SettingsError
from stores.crypto import ENV_NAME as KEYS_ENV

if TYPE_CHECKING:
    from collections.abc import Iterable

    from stores.installation_store import SQLAlchemyInstallationStore

# What the token commands need: the app's credentials to call oauth.v2.access, and the key ring.
FOR_TOKENS = ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", KEYS_ENV)


def load_settings(required: Iterable[str] = ()) -> Settings:
    """The settings, or a clean command-line error listing everything wrong or missing at once (every command)."""
    try:
        return Settings.from_env(required=required)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


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


@db.command("import-slack-sdk")
@click.option("--from-url", default=None, help="Database holding slack_sdk's tables [default: DATABASE_URL].")
@click.option("--bots-table", default="slack_bots", show_default=True, help="slack_sdk's bots table.")
@click.option(
    "--installations-table", default="slack_installations", show_default=True, help="slack_sdk's installations table."
)
def db_import_slack_sdk(from_url: str | None, bots_table: str, installations_table: str) -> None:
    """Copy the installations of slack_sdk's SQLAlchemyInstallationStore into Delegate's store, encrypting the tokens."""
    from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore as SlackSdkStore

    from stores import EncryptionKeyError, SQLAlchemyInstallationStore, create_database_engine

    settings = load_settings(required=("SLACK_CLIENT_ID", KEYS_ENV))  # the installations imported are that app's
    assert settings.client_id
    try:
        keyring = settings.keyring()
    except EncryptionKeyError as error:
        raise click.ClickException(str(error)) from None
    target_engine = create_database_engine(settings.database_url, pgbouncer=settings.database_pgbouncer)
    source_engine = create_database_engine(from_url, pgbouncer=settings.database_pgbouncer) if from_url else target_engine
    try:
        source = SlackSdkStore(
            client_id=settings.client_id,
            engine=source_engine,
            bots_table_name=bots_table,
            installations_table_name=installations_table,
        )
        target = SQLAlchemyInstallationStore(settings.client_id, target_engine, encryption_keys=keyring)
        installations, bots = target.import_from_slack_sdk(source)
    finally:
        target_engine.dispose()
        source_engine.dispose()
    click.echo(f"imported {installations} installation row(s) and {bots} bot row(s); the old tables are left as they were")


@click.group()
def keys() -> None:
    """Token encryption key commands (TOKEN_ENCRYPTION_KEYS)."""


@keys.command("generate")
def keys_generate() -> None:
    """Print a new random key. To rotate without breaking a rolling restart, append it LAST to TOKEN_ENCRYPTION_KEYS
    on every host and restart them all, then move it first everywhere and restart again, then run `keys reencrypt`
    (the README has the steps)."""
    from stores.crypto import generate_key

    click.echo(generate_key())


_CLIENT_ID = click.option(
    "--client-id", envvar="SLACK_CLIENT_ID", default=None, help="The Slack app's client id [SLACK_CLIENT_ID]."
)


def _open_store(client_id: str | None) -> SQLAlchemyInstallationStore:
    """The installation store of this client id on DATABASE_URL, with the ring of TOKEN_ENCRYPTION_KEYS."""
    from stores import EncryptionKeyError, SQLAlchemyInstallationStore, create_database_engine

    # A missing client id is listed with the other problems (not as a usage error of its own, in a round of its own).
    settings = load_settings(required=(KEYS_ENV,) if client_id else ("SLACK_CLIENT_ID", KEYS_ENV))
    client_id = client_id or settings.client_id
    assert client_id
    try:
        keyring = settings.keyring()
    except EncryptionKeyError as error:
        raise click.ClickException(str(error)) from None
    engine = create_database_engine(settings.database_url, pgbouncer=settings.database_pgbouncer)
    return SQLAlchemyInstallationStore(client_id, engine, encryption_keys=keyring)


@keys.command("status")
@_CLIENT_ID
def keys_status(client_id: str | None) -> None:
    """Show the key ring in order (the first encrypts) and how many stored ciphertexts each key sealed; exits 1 with a
    warning when some are sealed with a key missing from TOKEN_ENCRYPTION_KEYS."""
    from stores.keys import key_usage

    store = _open_store(client_id)
    client_id = store.client_id
    try:
        usage = key_usage(store)
    finally:
        store.engine.dispose()
    ring = store.keyring.key_ids
    click.echo(f"TOKEN_ENCRYPTION_KEYS for client {client_id}, in ring order (the first encrypts, every key decrypts):")
    for position, key_id in enumerate(ring, start=1):
        role = "primary" if position == 1 else ""
        click.echo(f"  {position}. {key_id}  {role:<7}  {usage[key_id].ciphertexts} ciphertext(s)")
    missing = {key_id: count for key_id, count in usage.items() if not count.in_ring}
    if missing:
        click.echo("Not in TOKEN_ENCRYPTION_KEYS:")
        for key_id, count in missing.items():
            click.echo(f"  -  {key_id}  {count.ciphertexts} ciphertext(s)")
    under_old = sum(usage[key_id].ciphertexts for key_id in ring[1:])
    if under_old:
        click.echo(f"{under_old} ciphertext(s) are under an older key: run `keys reencrypt`.")
    else:
        idle = ring[1:]
        if idle:
            click.echo(
                f"No ciphertext under {', '.join(idle)}: once every host has the primary key first, it can be dropped."
            )
    if missing:
        total = sum(count.ciphertexts for count in missing.values())
        click.echo(
            f"Warning: {total} stored ciphertext(s) use a key not in TOKEN_ENCRYPTION_KEYS "
            f"({', '.join(missing)}); those tokens cannot be decrypted. Put the missing key back in the ring (last), "
            "or have those people reconnect.",
            err=True,
        )
        raise click.exceptions.Exit(1)


@keys.command("reencrypt")
@_CLIENT_ID
@click.option("--batch-size", type=click.IntRange(min=1), default=200, show_default=True, help="Rows per transaction.")
@click.option(
    "--progress/--no-progress", default=None, help="Print a line per batch to stderr [default: when stderr is a terminal]."
)
def keys_reencrypt(client_id: str | None, batch_size: int, progress: bool | None) -> None:
    """Re-encrypt this app's stored tokens under the first key of TOKEN_ENCRYPTION_KEYS, batch by batch, under live
    traffic; safe to interrupt and run again. Run it only once every host has the new key first. Exits 1 when some
    rows could not be decrypted."""
    from stores.keys import ReencryptProgress, reencrypt

    show_progress = sys.stderr.isatty() if progress is None else progress

    def print_progress(step: ReencryptProgress) -> None:
        totals = step.report
        click.echo(
            f"{step.table}: {step.rows_done}/{step.rows_to_do} row(s) read, {totals.rows_rewritten} rewritten, "
            f"{totals.rows_skipped} changed meanwhile, {len(totals.undecryptable)} field(s) undecryptable",
            err=True,
        )

    store = _open_store(client_id)
    try:
        report = reencrypt(store, batch_size=batch_size, on_progress=print_progress if show_progress else None)
    except KeyboardInterrupt:
        raise click.ClickException("interrupted; the batches done are kept, run the command again to resume") from None
    finally:
        store.engine.dispose()
    click.echo(
        f"re-encrypted {report.fields_rewritten} token field(s) in {report.rows_rewritten} row(s) under key "
        f"{store.keyring.primary_key_id}; {report.rows_skipped} row(s) changed meanwhile, "
        f"{len(report.undecryptable)} field(s) could not be decrypted, {report.rows_remaining} row(s) left under other keys"
    )
    for failure in report.undecryptable:
        click.echo(f"cannot decrypt {failure.describe()}", err=True)
    if report.undecryptable:
        raise click.exceptions.Exit(1)
    if report.rows_remaining:
        click.echo("some rows changed while they were being re-encrypted: run the command again", err=True)


@click.group()
def tokens() -> None:
    """Token lifecycle commands: the background refresher and the migration to rotating tokens."""


def _open(background_refresh: bool = False):  # type: ignore[no-untyped-def]
    from ops.wiring import open_stores
    from stores.crypto import EncryptionKeyError

    settings = load_settings(required=FOR_TOKENS)
    try:
        return open_stores(settings, background_refresh=background_refresh)
    except (EncryptionKeyError, ValueError) as error:
        raise click.ClickException(str(error)) from None


@tokens.command("refresher")
@click.option("--window-minutes", default=120, show_default=True, help="Refresh tokens expiring within this many minutes.")
@click.option("--interval-seconds", default=60, show_default=True, help="Pause between sweeps.")
@click.option("--batch-size", default=100, show_default=True, help="Tokens read per batch.")
@click.option("--concurrency", default=4, show_default=True, help="Refreshes in flight at once.")
@click.option(
    "--max-per-minute",
    default=500,
    show_default=True,
    help="Refreshes a minute for every refresher of this app together (one budget in the database), under "
    "oauth.v2.access's 600; the rest is headroom for installs.",
)
@click.option("--once", is_flag=True, help="Sweep once and exit (for cron).")
def tokens_refresher(
    window_minutes: int, interval_seconds: int, batch_size: int, concurrency: int, max_per_minute: int, once: bool
) -> None:
    """Run the refresh-ahead sweeper as a process of its own (several may run at once, on any hosts; with
    DELEGATE_REFRESHER=off the app's workers run none)."""
    from datetime import timedelta

    from stores.refresher import Refresher

    stores = _open()
    refresher = Refresher(
        stores.manager,
        window=timedelta(minutes=window_minutes),
        batch_size=batch_size,
        concurrency=concurrency,
        max_per_minute=max_per_minute,
        interval=timedelta(seconds=interval_seconds),
    )
    try:
        if once:
            result = refresher.sweep_once()
            click.echo(f"{result.due} due, {result.refreshed} refreshed, {result.skipped} skipped, {result.failed} failed")
        else:
            click.echo(f"refresher running: window {window_minutes} min, every {interval_seconds} s (Ctrl-C stops)")
            refresher.run_forever()
    except KeyboardInterrupt:
        refresher.stop()
    finally:
        stores.close()


@tokens.command("exchange")
@click.option("--max-per-minute", default=50, show_default=True, help="Pace under oauth.v2.exchange's Tier 3 limit.")
@click.option("--limit", type=int, default=None, help="Stop after this many tokens (run again to resume).")
def tokens_exchange(max_per_minute: int, limit: int | None) -> None:
    """Exchange every stored long-lived token for a rotating one; safe to interrupt and run again."""
    from stores.exchange import exchange_long_lived_tokens

    stores = _open()
    try:
        report = exchange_long_lived_tokens(stores.manager, max_per_minute=max_per_minute, limit=limit)
    except KeyboardInterrupt:
        raise click.ClickException("interrupted; run the command again to resume") from None
    finally:
        stores.close()
    click.echo(
        f"{report.exchanged} exchanged, {report.already_exchanged} already exchanged, "
        f"{report.failed} failed, {report.remaining} left for the next run"
    )


@tokens.command("prune-events")
@click.option(
    "--older-than-days", type=click.IntRange(min=1), default=90, show_default=True, help="Age of events to delete."
)
def tokens_prune_events(older_than_days: int) -> None:
    """Delete token audit events older than the given number of days (the table never holds secrets)."""
    from datetime import timedelta

    from stores.schema import utcnow

    stores = _open()
    try:
        count = stores.installation_store.prune_events(utcnow() - timedelta(days=older_than_days))
    finally:
        stores.close()
    click.echo(f"deleted {count} audit event(s) older than {older_than_days} day(s)")
