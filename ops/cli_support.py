"""What every operator command shares: the settings as a clean error, the stores they open, and reading durations."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click

from settings import Settings, SettingsError
from stores.crypto import ENV_NAME as KEYS_ENV

if TYPE_CHECKING:
    from ops.wiring import Stores
    from stores.installation_store import SQLAlchemyInstallationStore
    from stores.observe import Observer

__all__ = ["CLIENT_ID", "FOR_TOKENS", "PROGRESS", "Duration", "load_settings", "open_store", "open_token_stores"]

# What the token commands need: the app's credentials to call oauth.v2.access, and the key ring.
FOR_TOKENS = ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", KEYS_ENV)

CLIENT_ID = click.option(
    "--client-id", envvar="SLACK_CLIENT_ID", default=None, help="The Slack app's client id [SLACK_CLIENT_ID]."
)

# The long runs' --progress: ops.progress.progress_mode reads it.
PROGRESS = click.option(
    "--progress/--no-progress",
    default=None,
    help="Show progress on stderr: a bar on a terminal, else a line per step [default: a bar, only on a terminal].",
)


def load_settings(required: Iterable[str] = ()) -> Settings:
    """The settings, or a clean command-line error listing everything wrong or missing at once (every command)."""
    try:
        return Settings.from_env(required=required)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


def open_token_stores(background_refresh: bool = False, observer: Observer | None = None) -> Stores:
    """The stores and token manager of DATABASE_URL, with the app's credentials and key ring (reporting to
    `observer`, when given: the metrics of a refresher process)."""
    from ops.wiring import open_stores
    from stores.crypto import EncryptionKeyError

    settings = load_settings(required=FOR_TOKENS)
    try:
        if observer is None:
            return open_stores(settings, background_refresh=background_refresh)
        return open_stores(settings, background_refresh=background_refresh, observer=observer)
    except (EncryptionKeyError, ValueError) as error:
        raise click.ClickException(str(error)) from None


def open_store(client_id: str | None) -> SQLAlchemyInstallationStore:
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


class Duration(click.ParamType):
    """A duration such as 90s, 30m, 2h or 1d (a bare number is minutes)."""

    name = "duration"
    _UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(value))
        if match is None:
            self.fail(f"{value!r} is not a duration like 90s, 30m, 2h or 1d", param, ctx)
        amount, unit = float(match.group(1)), match.group(2) or "m"
        return timedelta(**{self._UNITS[unit]: amount})
