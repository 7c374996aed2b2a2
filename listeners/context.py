"""What listeners read from Bolt's context: the Delegate object, the acting person, their client and scopes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypedDict

from slack_bolt import BoltContext

from stores.disconnect import DisconnectResult
from stores.errors import MissingScope, NotConnected, TokenError
from stores.rotation import ConnectionInfo, FreshToken, TokenKey
from stores.user_client import UserClient

__all__ = [
    "ConnectionManager",
    "Delegate",
    "Person",
    "PersonKey",
    "RevocationStore",
    "acting_problem",
    "clock_of",
    "delegate_of",
    "event_moment",
    "granted_scopes",
    "installation_key",
    "now_of",
    "person_of",
    "user_client_of",
]


class ConnectionManager(Protocol):
    """The part of stores.rotation.TokenManager the listeners use."""

    api_url: str

    def fresh_bot_token(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
        wait: timedelta | None = None,
    ) -> FreshToken:
        """The workspace's valid bot token, renewed first if due (after the ack only)."""
        ...

    def refresh_after_expired(self, key: TokenKey, used_token: str) -> FreshToken:
        """Slack said the token used has expired: renew it, unless someone already has."""
        ...

    def connection_info(self, *, enterprise_id: str | None, team_id: str | None, user_id: str) -> ConnectionInfo | None:
        """The person's connection as stored, or None when they never connected (or disconnected)."""
        ...

    def disconnect(self, *, enterprise_id: str | None, team_id: str | None, user_id: str) -> DisconnectResult:
        """Revoke the person's token at Slack and delete Delegate's copy (stores.disconnect.disconnect)."""
        ...

    def forget_user(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str,
        reason: str,
        installed_at_or_before: datetime | None = None,
    ) -> bool:
        """Mark the person's tokens revoked and drop them (unless granted after the moment); True when it did."""
        ...


class RevocationStore(Protocol):
    """The deletes of stores.installation_store.SQLAlchemyInstallationStore the revocation events use."""

    def delete_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        installed_at_or_before: datetime | None = None,
    ) -> None: ...

    def delete_bot(
        self, *, enterprise_id: str | None, team_id: str | None, installed_at_or_before: datetime | None = None
    ) -> None: ...

    def delete_all(
        self, *, enterprise_id: str | None, team_id: str | None, installed_at_or_before: datetime | None = None
    ) -> None: ...


class Delegate(Protocol):
    """What app.py puts in context["delegate"]."""

    @property
    def manager(self) -> ConnectionManager:
        """The token manager (stores.rotation.TokenManager)."""
        ...

    @property
    def user_scopes(self) -> tuple[str, ...]:
        """The user scopes Delegate asks for (from the manifest)."""
        ...

    def connect_url(self, *, team_id: str | None, user_scopes: Sequence[str] | None = None) -> str:
        """An https URL that connects the person (user scopes only), or reconnects asking for the given scopes."""
        ...

    @property
    def clock(self) -> Callable[[], datetime]:
        """The current time as the token manager sees it (the sandbox's clock in sandbox mode)."""
        ...

    @property
    def support_url(self) -> str | None:
        """The operator's support page (DELEGATE_SUPPORT_URL), if any."""
        ...

    @property
    def privacy_url(self) -> str | None:
        """The operator's privacy policy (DELEGATE_PRIVACY_URL), if any."""
        ...


class PersonKey(TypedDict):
    """Keyword arguments for the token manager's per-person methods."""

    enterprise_id: str | None
    team_id: str | None
    user_id: str


@dataclass(frozen=True)
class Person:
    """Whose tokens a request is about, keyed the way the token store keys them."""

    enterprise_id: str | None
    team_id: str | None
    user_id: str
    workspace_id: str | None  # the workspace the request came from, for the connect URL

    def key(self) -> PersonKey:
        """Keyword arguments for the token manager's per-person methods."""
        return {"enterprise_id": self.enterprise_id, "team_id": self.team_id, "user_id": self.user_id}


def delegate_of(context: BoltContext) -> Delegate:
    """context["delegate"], or a clear error when app.py did not provide it."""
    delegate = context.get("delegate")
    if delegate is None:
        raise RuntimeError('context["delegate"] is missing: app.py must set it for every request')
    return delegate  # type: ignore[no-any-return]


def clock_of(context: BoltContext) -> Callable[[], datetime]:
    """Delegate's clock, so that every answer agrees with the token expiries; real time when no Delegate is set."""
    delegate: Delegate | None = context.get("delegate")
    return delegate.clock if delegate is not None else _real_now


def now_of(context: BoltContext) -> datetime:
    """The current time for this request's answers, on Delegate's clock."""
    return clock_of(context)()


def _real_now() -> datetime:
    return datetime.now(UTC)


def person_of(context: BoltContext, user_id: str | None = None) -> Person:
    """The acting person (or user_id, in the same installation), keyed like stores.authorize.DelegateAuthorize does.

    The acting person's key is the one authorize used (context["acting_person"]): on an org-wide install that is the
    org's, with no workspace, even though Bolt's actor_team_id names the workspace the person acted in.
    """
    workspace_team = None if context.is_enterprise_install else context.team_id
    acting = context.get("acting_person")
    if user_id is None and acting is not None:
        enterprise_id, team_id, who = acting
        return Person(
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=who,
            workspace_id=context.actor_team_id or context.team_id,
        )
    who = user_id or context.user_id
    if not who:
        raise RuntimeError("this request has no acting person")
    return Person(enterprise_id=context.enterprise_id, team_id=workspace_team, user_id=who, workspace_id=context.team_id)


def installation_key(context: BoltContext) -> tuple[str | None, str | None]:
    """(enterprise_id, team_id) of the installation an event is about, keyed like the token store keys it."""
    return context.enterprise_id, None if context.is_enterprise_install else context.team_id


def event_moment(body: dict[str, Any], now: Callable[[], datetime] = _real_now) -> datetime:
    """The latest moment an event can have happened: the envelope's event_time is whole seconds, so the end of that
    second (a grant made within it counts as before the event); else the event's event_ts; else now (`now()`)."""
    event = body.get("event") or {}
    for value, resolution in ((body.get("event_time"), _WHOLE_SECOND), (event.get("event_ts"), timedelta(0))):
        try:
            return datetime.fromtimestamp(float(value or ""), tz=UTC) + resolution
        except (TypeError, ValueError, OverflowError, OSError):
            continue
    return now()


_WHOLE_SECOND = timedelta(seconds=1) - timedelta(microseconds=1)


def user_client_of(context: BoltContext) -> UserClient | None:
    """The acting person's own client, or None when Delegate cannot act as them."""
    client: UserClient | None = context.get("user_client")
    return client


def granted_scopes(context: BoltContext) -> tuple[str, ...] | None:
    """The scopes of the person's token, or None when unknown."""
    result: Any = context.authorize_result
    scopes = result.user_scopes if result is not None else None
    return tuple(scope for scope in scopes if scope) if scopes else None


def acting_problem(context: BoltContext, needed: Sequence[str]) -> TokenError | None:
    """Why Delegate cannot act as this person with these scopes right now, or None when it can."""
    if user_client_of(context) is None:
        error = context.get("user_token_error")
        if isinstance(error, TokenError):
            return error
        return NotConnected("no token for this person", user_id=context.user_id)
    granted = granted_scopes(context)
    if granted is not None:
        missing = [scope for scope in needed if scope not in granted]
        if missing:
            return MissingScope(
                f"the token lacks {', '.join(missing)}", needed=missing, provided=list(granted), user_id=context.user_id
            )
    return None
