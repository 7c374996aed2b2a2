"""Delegate's composition root and command line: settings -> engine -> store -> token manager -> Bolt App."""

from __future__ import annotations

import sys

import click

from settings import Settings, SettingsError


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


@click.group(invoke_without_command=True)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Delegate: a Slack app that acts as its users, with rotating user tokens done right."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@cli.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to.")
def db_upgrade(revision: str) -> None:
    """Apply the schema migrations to DATABASE_URL (default: the SQLite file in the data folder)."""
    from stores.migrations import current_revision, upgrade

    settings = load_settings()
    upgrade(settings.database_url, revision)
    click.echo(f"database at revision {current_revision(settings.database_url)}")


@cli.group()
def keys() -> None:
    """Token encryption key commands (TOKEN_ENCRYPTION_KEYS)."""


@keys.command("generate")
def keys_generate() -> None:
    """Print a new random key; put it first in TOKEN_ENCRYPTION_KEYS to make it the encrypting key."""
    from stores.crypto import generate_key

    click.echo(generate_key())


@keys.command("reencrypt")
@click.option("--client-id", envvar="SLACK_CLIENT_ID", required=True, help="The Slack app's client id (SLACK_CLIENT_ID).")
def keys_reencrypt(client_id: str) -> None:
    """Re-encrypt every stored token under the first key of TOKEN_ENCRYPTION_KEYS."""
    from stores import EncryptionKeyError, SQLAlchemyInstallationStore, create_database_engine

    settings = load_settings()
    try:
        keyring = settings.keyring()
    except EncryptionKeyError as error:
        raise click.ClickException(str(error)) from None
    engine = create_database_engine(settings.database_url)
    try:
        store = SQLAlchemyInstallationStore(client_id, engine, encryption_keys=keyring)
        count = store.reencrypt_all()
    finally:
        engine.dispose()
    click.echo(f"re-encrypted {count} token field(s) under key {keyring.primary_key_id}")


@cli.command("run")
@click.option("--port", type=int, default=None, help="HTTP port (default: PORT or 3000).")
def run(port: int | None) -> None:
    """Run Delegate: against the sandbox when no Slack app is configured, else against Slack."""
    settings = load_settings()
    missing = settings.missing_for_slack()
    if missing:
        raise click.ClickException(
            "Delegate needs a Slack app to talk to. Missing: "
            + ", ".join(missing)
            + ". Create a Slack app from manifest.yml and set these variables (see README.md)."
        )
    raise click.ClickException("the HTTP app is not built yet (see the app issue)")


def _register_sandbox() -> None:
    try:
        from sandbox.cli import sandbox_command
    except ImportError:  # the sandbox package is being built
        return
    cli.add_command(sandbox_command, name="sandbox")


_register_sandbox()


def main() -> None:
    cli()


if __name__ == "__main__":
    sys.exit(main())
