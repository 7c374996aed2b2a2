"""Delegate's settings, read from the environment once at start and checked with clear messages."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from stores.crypto import ENV_NAME as KEYS_ENV
from stores.crypto import EncryptionKeyError, KeyRing
from stores.database import default_database_url

__all__ = ["FOR_SLACK", "SLACK_APP_SETTINGS", "Settings", "SettingsError", "required_for_run"]

DEFAULT_API_URL = "https://slack.com/api/"
DEFAULT_AUTHORIZE_URL = "https://slack.com/oauth/v2/authorize"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")  # ops.logs writes them
REFRESHER_MODES = ("workers", "off")
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off", "")
# Any of these set means the operator is configuring a real Slack app, never the built-in sandbox.
SLACK_APP_SETTINGS = (
    "SLACK_CLIENT_ID",
    "SLACK_CLIENT_SECRET",
    "SLACK_SIGNING_SECRET",
    "SLACK_REDIRECT_URI",
    "SLACK_APP_TOKEN",
)
# What talking to Slack needs.
FOR_SLACK = ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "SLACK_SIGNING_SECRET", KEYS_ENV)
_WHERE = {
    "SLACK_CLIENT_ID": "copy it from your Slack app's Basic Information page (App Credentials)",
    "SLACK_CLIENT_SECRET": "copy it from your Slack app's Basic Information page (App Credentials)",
    "SLACK_SIGNING_SECRET": "copy it from your Slack app's Basic Information page (App Credentials)",
    KEYS_ENV: "make a key with: python app.py keys generate",
}
# A bearer token's characters (RFC 6750 token68), long enough not to be guessed.
_METRICS_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{16,256}")
DATABASE_EXAMPLES = (
    "for example postgresql+psycopg://user:password@host:5432/delegate or sqlite:////var/lib/delegate/db.sqlite3"
)


class SettingsError(Exception):
    """One or more settings are missing or malformed; the message lists each with its fix."""


def _secret_repr(value: str | None) -> str:
    return "None" if value is None else "'***'"


@dataclass(frozen=True)
class Settings:
    """Everything Delegate reads from its environment."""

    data_dir: Path
    database_url: str
    encryption_keys: str | None = field(default=None, repr=False)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    signing_secret: str | None = field(default=None, repr=False)
    app_token: str | None = field(default=None, repr=False)
    redirect_uri: str | None = None
    scopes: str | None = None
    user_scopes: str | None = None
    api_url: str = DEFAULT_API_URL
    authorize_url: str = DEFAULT_AUTHORIZE_URL
    port: int = 3000
    log_level: str = "INFO"
    log_format: str = "text"
    # Reverse proxies whose X-Forwarded-For names the client, for the per-address limit on install and connect links.
    trusted_proxies: tuple[str, ...] = ()
    # Where "Open Slack" on the install/connect success page leads: the Slack client, or in sandbox mode its console.
    slack_home_url: str = "slack://open"
    # With it, /metrics answers only requests carrying "Authorization: Bearer <token>".
    metrics_token: str | None = field(default=None, repr=False)
    # Connections kept in each process's pool (PostgreSQL); None: derived from the worker count (ops.capacity).
    database_pool_size: int | None = None
    # DATABASE_URL points at a PgBouncer in transaction pooling: no prepared statements.
    database_pgbouncer: bool = False
    # "workers": a refresh-ahead thread in each app process; "off": none (run `python app.py tokens refresher`).
    refresher: str = "workers"
    # Refresh-ahead renews user tokens used within this many days; the others are renewed on their next use.
    refresh_ahead_days: int = 14

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, required: Iterable[str] = ()) -> Settings:
        """Read the settings; raise one SettingsError listing every malformed value and every required one missing."""
        env = os.environ if env is None else env
        problems: list[str] = []
        data_dir = Path(env.get("DELEGATE_DATA_DIR") or "data")
        port_text = env.get("PORT") or "3000"
        try:
            port = int(port_text)
            if not 0 < port < 65536:
                raise ValueError
        except ValueError:
            problems.append(f"PORT must be a TCP port number (1-65535), got {port_text!r}")
            port = 3000
        log_level = (env.get("LOG_LEVEL") or "INFO").upper()
        if log_level not in LOG_LEVELS:
            problems.append(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
        log_format = (env.get("LOG_FORMAT") or "text").strip().lower()
        if log_format not in LOG_FORMATS:
            problems.append(f"LOG_FORMAT must be text (the default) or json, got {log_format!r}")
        api_url = env.get("SLACK_API_URL") or DEFAULT_API_URL
        authorize_url = env.get("SLACK_AUTHORIZE_URL") or DEFAULT_AUTHORIZE_URL
        for name, value in (("SLACK_API_URL", api_url), ("SLACK_AUTHORIZE_URL", authorize_url)):
            parsed = urlparse(value)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                problems.append(f"{name} must be an http(s) URL, got {value!r}")
        if not api_url.endswith("/"):
            api_url += "/"
        redirect_uri = env.get("SLACK_REDIRECT_URI") or None
        if redirect_uri and urlparse(redirect_uri).scheme not in ("http", "https"):
            problems.append(f"SLACK_REDIRECT_URI must be an http(s) URL, got {redirect_uri!r}")
        keys = env.get(KEYS_ENV) or None
        if keys:
            try:
                KeyRing.from_string(keys)
            except EncryptionKeyError as error:
                problems.append(str(error))
        app_token = env.get("SLACK_APP_TOKEN") or None
        if app_token and not app_token.startswith("xapp-"):
            problems.append("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
        metrics_token = env.get("METRICS_TOKEN") or None
        if metrics_token is not None and not _METRICS_TOKEN.fullmatch(metrics_token):
            problems.append(
                "METRICS_TOKEN must be 16 to 256 letters, digits or ._~+/=- with no spaces "
                "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        database_url = env.get("DATABASE_URL") or default_database_url(data_dir)
        database_problem = _database_url_problem(database_url)
        if database_problem:
            problems.append(database_problem)
        pool_text = env.get("DATABASE_POOL_SIZE") or ""
        pool_size = None
        if pool_text:
            try:
                pool_size = int(pool_text)
                if not 1 <= pool_size <= 100:
                    raise ValueError
            except ValueError:
                problems.append(f"DATABASE_POOL_SIZE must be a whole number of connections from 1 to 100, got {pool_text!r}")
                pool_size = None
        pgbouncer_text = (env.get("DATABASE_PGBOUNCER") or "").strip().lower()
        if pgbouncer_text not in _TRUE + _FALSE:
            problems.append(f"DATABASE_PGBOUNCER must be true or false, got {env.get('DATABASE_PGBOUNCER')!r}")
        refresher = (env.get("DELEGATE_REFRESHER") or "workers").strip().lower()
        if refresher not in REFRESHER_MODES:
            problems.append(
                f"DELEGATE_REFRESHER must be workers (a refresher in each app process) or off (run `python app.py tokens "
                f"refresher` yourself), got {env.get('DELEGATE_REFRESHER')!r}"
            )
            refresher = "workers"
        days_text = (env.get("DELEGATE_REFRESH_AHEAD_DAYS") or "14").strip()
        try:
            refresh_ahead_days = int(days_text)
            if not 1 <= refresh_ahead_days <= 365:
                raise ValueError
        except ValueError:
            problems.append(
                "DELEGATE_REFRESH_AHEAD_DAYS must be a whole number of days from 1 to 365 (tokens used within them are "
                f"refreshed ahead), got {days_text!r}"
            )
            refresh_ahead_days = 14
        problems.extend(_missing(env, required))
        if problems:
            message = "Delegate cannot start:\n" + "\n".join(f"  - {p}" for p in problems)
            if any(name.startswith("SLACK_") for name in required if not env.get(name)):
                message += "\nCreate a Slack app from manifest.yml for its credentials; README.md explains every setting."
            raise SettingsError(message)
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            encryption_keys=keys,
            client_id=env.get("SLACK_CLIENT_ID") or None,
            client_secret=env.get("SLACK_CLIENT_SECRET") or None,
            signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
            app_token=app_token,
            redirect_uri=redirect_uri,
            scopes=env.get("SLACK_SCOPES") or None,
            user_scopes=env.get("SLACK_USER_SCOPES") or None,
            api_url=api_url,
            authorize_url=authorize_url,
            port=port,
            log_level=log_level,
            log_format=log_format,
            trusted_proxies=tuple(p.strip() for p in (env.get("DELEGATE_TRUSTED_PROXIES") or "").split(",") if p.strip()),
            metrics_token=metrics_token,
            database_pool_size=pool_size,
            database_pgbouncer=pgbouncer_text in _TRUE,
            refresher=refresher,
            refresh_ahead_days=refresh_ahead_days,
        )

    def replace(self, **changes: object) -> Settings:
        """A copy with some values changed."""
        from dataclasses import replace

        return replace(self, **changes)  # type: ignore[arg-type]

    def keyring(self) -> KeyRing:
        """The token encryption key ring; a clear error when there is none."""
        return KeyRing.from_string(self.encryption_keys)


def required_for_run(env: Mapping[str, str], *, sandbox: bool) -> tuple[str, ...]:
    """What `python app.py run` needs: nothing for the sandbox (asked for, or no Slack setting at all), else FOR_SLACK."""
    if sandbox or not any(env.get(name) for name in SLACK_APP_SETTINGS):
        return ()
    return FOR_SLACK


def _missing(env: Mapping[str, str], required: Iterable[str]) -> list[str]:
    problems = []
    for name in required:
        if env.get(name):
            continue
        problem = f"{name} is not set: {_WHERE.get(name, 'set it')}"
        if name == "SLACK_CLIENT_ID":
            others = [other for other in SLACK_APP_SETTINGS if env.get(other)]
            if others:
                # A half-configured Slack app must not quietly become the sandbox, whose secrets are public.
                problem += (
                    f" ({', '.join(others)} {'is' if len(others) == 1 else 'are'} set, so Delegate expects a Slack app;"
                    " unset them to run the built-in sandbox instead)"
                )
        problems.append(problem)
    return problems


def _database_url_problem(url: str) -> str | None:
    """What is wrong with DATABASE_URL, in one line that never repeats the URL (it may hold a password)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return f"DATABASE_URL is not a database URL ({DATABASE_EXAMPLES})"
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # as the engine will (stores.database)
    try:
        parsed.get_dialect().import_dbapi()
    except NoSuchModuleError:
        return f"DATABASE_URL names an unknown database kind {parsed.drivername!r} ({DATABASE_EXAMPLES})"
    except ImportError:
        return f"DATABASE_URL needs a database driver that is not installed for {parsed.drivername!r} ({DATABASE_EXAMPLES})"
    except (ArgumentError, ValueError):
        return f"DATABASE_URL is not a database URL ({DATABASE_EXAMPLES})"
    return None
