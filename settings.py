"""Delegate's settings, read from the environment once at start and checked with clear messages."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from stores.crypto import ENV_NAME as KEYS_ENV
from stores.crypto import EncryptionKeyError, KeyRing
from stores.database import default_database_url

__all__ = ["Settings", "SettingsError"]

DEFAULT_API_URL = "https://slack.com/api/"
DEFAULT_AUTHORIZE_URL = "https://slack.com/oauth/v2/authorize"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings; raise SettingsError naming every malformed value."""
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
        if problems:
            raise SettingsError("Delegate cannot start:\n" + "\n".join(f"  - {p}" for p in problems))
        return cls(
            data_dir=data_dir,
            database_url=env.get("DATABASE_URL") or default_database_url(data_dir),
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
        )

    def replace(self, **changes: object) -> Settings:
        """A copy with some values changed."""
        from dataclasses import replace

        return replace(self, **changes)  # type: ignore[arg-type]

    def keyring(self) -> KeyRing:
        """The token encryption key ring; a clear error when there is none."""
        return KeyRing.from_string(self.encryption_keys)

    def missing_for_slack(self) -> list[str]:
        """The settings a real Slack app needs that are not set."""
        needed = {
            "SLACK_CLIENT_ID": self.client_id,
            "SLACK_CLIENT_SECRET": self.client_secret,
            "SLACK_SIGNING_SECRET": self.signing_secret,
            KEYS_ENV: self.encryption_keys,
        }
        return [name for name, value in needed.items() if not value]
