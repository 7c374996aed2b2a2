"""Operations commands for the stores: schema migrations, encryption keys, token refresh and migration."""

from __future__ import annotations

import click

from settings import Settings, SettingsError


def load_settings() -> Settings:
    try:
        return Settings.from_env()
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
    upgrade(settings.database_url, revision)
    click.echo(f"database at revision {current_revision(settings.database_url)}")


@click.group()
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


@click.group()
def tokens() -> None:
    """Token lifecycle commands: the background refresher and the migration to rotating tokens."""
