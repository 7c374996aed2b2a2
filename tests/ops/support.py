"""Shared by the command-line tests: a person connected through the sandbox, and the environment the commands read."""

from __future__ import annotations

from datetime import timedelta

import pytest
from slack_sdk.oauth.installation_store import Installation
from sqlalchemy import update

from sandbox.server import SandboxServer
from stores import SQLAlchemyInstallationStore
from stores.schema import utcnow

TEAM = "T0SANDBOX1"
ALICE, BOB, CAROL = "U0ALICE001", "U0BOB00002", "U0CAROL003"


def connect(
    store: SQLAlchemyInstallationStore, slack: SandboxServer, user_id: str, *, left: timedelta | None = None
) -> list[str]:
    """Connect `user_id` through the sandbox as the OAuth flow would; `left`: how long Delegate's row says the token has
    left (a 12-hour token issued long ago). Returns every secret issued: the user's access and refresh tokens first,
    then the bot's."""
    answer = slack.install(user_id, scope="commands", user_scope="chat:write")
    person = answer["authed_user"]
    store.save(
        Installation(
            app_id=answer["app_id"],
            team_id=answer["team"]["id"],
            bot_token=answer.get("access_token"),
            bot_refresh_token=answer.get("refresh_token"),
            bot_token_expires_in=answer.get("expires_in"),
            bot_user_id=answer.get("bot_user_id"),
            user_id=user_id,
            user_token=person["access_token"],
            user_refresh_token=person["refresh_token"],
            user_token_expires_in=person["expires_in"],
            user_scopes=person["scope"],
        )
    )
    if left is not None:
        u = store.installations.c
        with store.engine.begin() as conn:
            conn.execute(
                update(store.installations)
                .where(u.user_id == user_id)
                .values(user_token_expires_at=utcnow() + left, lifetime_seconds=43200)
            )
    return [person["access_token"], person["refresh_token"], answer["access_token"], answer["refresh_token"]]


def use_sandbox(monkeypatch: pytest.MonkeyPatch, database_url: str, slack: SandboxServer, key: str) -> None:
    """The environment the commands read: this database, the sandbox as slack.com, its app's credentials."""
    for name, value in {
        "DATABASE_URL": database_url,
        "SLACK_CLIENT_ID": slack.config.client_id,
        "SLACK_CLIENT_SECRET": slack.config.client_secret,
        "SLACK_API_URL": slack.api_url,
        "TOKEN_ENCRYPTION_KEYS": key,
    }.items():
        monkeypatch.setenv(name, value)
