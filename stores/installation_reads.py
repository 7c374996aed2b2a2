"""What find_installation and find_bot run: their SELECTs built once, and an Installation that decrypts on demand.

Building the 24-column join of find_installation cost most of the call (0.63 ms of it on SQLite), so the statements
are built once per store with bound parameters, as `stores.token_rows` does for the request path. And the refresh
tokens an Installation carries are decrypted only when someone reads them: Delegate's own request path never does,
and `TokenManager.attach()` checks that they are there (`holds`) without opening them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_sdk.oauth.installation_store.models.installation import Installation
from sqlalchemy import Select, Table, and_, bindparam, select

__all__ = ["FindQueries", "Sealed", "StoredInstallation", "holds"]


class Sealed:
    """A stored secret, opened (decrypted) by its opener on first read."""

    __slots__ = ("open",)

    def __init__(self, opener: Callable[[], str | None]):
        self.open = opener

    def __repr__(self) -> str:
        return "Sealed(...)"


class _OpenedOnRead:
    """An Installation attribute that may hold a Sealed value, decrypted (once) when the attribute is read."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_{name}_value"

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = instance.__dict__.get(self.slot)
        if isinstance(value, Sealed):
            value = instance.__dict__[self.slot] = value.open()
        return value

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.slot] = value


class StoredInstallation(Installation):
    """slack_sdk's Installation as the store returns it: refresh tokens and the webhook URL open on first read."""

    bot_refresh_token = _OpenedOnRead()
    user_refresh_token = _OpenedOnRead()
    incoming_webhook_url = _OpenedOnRead()

    def open_later(self, **secrets: Sealed | None) -> None:
        """Give the named secret attributes their sealed values (None: the attribute is None)."""
        for name, value in secrets.items():
            setattr(self, name, value)


def holds(installation: Installation, name: str) -> bool:
    """Whether the installation carries a value for a secret attribute, without decrypting it."""
    if isinstance(installation, StoredInstallation):
        return installation.__dict__.get(f"_{name}_value") is not None
    return getattr(installation, name) is not None


class FindQueries:
    """find_installation's and find_bot's SELECTs, built once with bound parameters."""

    def __init__(self, workspaces: Table, user_tokens: Table):
        w, u = workspaces, user_tokens
        same_workspace = [
            u.c.client_id == bindparam("client_id"),
            u.c.enterprise_id == bindparam("enterprise_id"),
            u.c.team_id == bindparam("team_id"),
        ]
        joined = u.outerjoin(
            w, and_(w.c.client_id == u.c.client_id, w.c.enterprise_id == u.c.enterprise_id, w.c.team_id == u.c.team_id)
        )
        latest: Select[Any] = (
            select(u, *[col.label(f"w_{col.name}") for col in w.c])
            .select_from(joined)
            .order_by(u.c.installed_at.desc(), u.c.id.desc())
            .limit(1)
        )
        self.installation = latest.where(*same_workspace)
        self.user_installation = latest.where(*same_workspace, u.c.user_id == bindparam("user_id"))
        self.bot = select(w).where(
            w.c.client_id == bindparam("client_id"),
            w.c.enterprise_id == bindparam("enterprise_id"),
            w.c.team_id == bindparam("team_id"),
            w.c.bot_token_enc.is_not(None),
        )
