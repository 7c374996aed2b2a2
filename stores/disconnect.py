"""Disconnect: revoke a person's grant at Slack (auth.revoke), delete Delegate's copy, and report what really happened.

Why a module of its own: the old ``TokenManager.disconnect`` returned one bool and let a failed delete surface as
"something went wrong", although Slack had already revoked; on SQLite its delete raced Bolt's ``tokens_revoked``
handler (which auth.revoke itself triggers) and lost about half the time with "database is locked".

What it decides:
- Delegate's copy is deleted whatever Slack answers: the person asked to disconnect, and a token Delegate no longer
  holds cannot be used by it. When Slack did not confirm (network failure, 5xx, ``invalid_auth``, a refresh that
  failed), the result says so, and the person is told the grant may still be live and where to remove it.
- Slack saying the token is already dead (``token_revoked``, ``account_inactive``) counts as confirmed.
- An access token past its expiry is refreshed once through the token manager before ``auth.revoke`` (its refresh
  token, and so the grant, is still live); one that Slack alone sees as expired (``token_expired``: Slack's clock
  ahead of Delegate's) is refreshed then, and the revoke retried once.
- The delete is conditional on the grant that was read: if the person reconnected while auth.revoke was in flight,
  the new connection stays. Losing the race to a ``tokens_revoked`` event is fine: the row is gone either way.

No token appears in the result, a log line or an exception message: errors are reported by Slack's error name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.web import WebClient
from sqlalchemy.exc import SQLAlchemyError

from .errors import TokenError
from .installation_store import SQLAlchemyInstallationStore
from .rotation import FreshToken, Snapshot, TokenKey
from .schema import STATUS_REVOKED

__all__ = ["ALREADY_REVOKED_ERRORS", "DisconnectResult", "disconnect"]

logger = logging.getLogger(__name__)

# auth.revoke answers meaning the grant is already gone at Slack: a successful disconnect.
ALREADY_REVOKED_ERRORS = frozenset({"token_revoked", "account_inactive"})


@dataclass(frozen=True)
class DisconnectResult:
    """What a disconnect did; never holds a token."""

    had_connection: bool  # Delegate held something for this person (a token, or a row marked revoked)
    revoked_at_slack: bool  # Slack confirmed the grant is gone (revoked now, or already revoked)
    slack_error: str | None  # why Slack did not confirm: its error name, "http_503", "connection_error:TimeoutError"
    deleted: bool  # Delegate holds no copy of that grant any more (False when the delete failed, or was held back)

    @property
    def grant_may_be_live(self) -> bool:
        """Slack did not confirm, so the person should remove the app in Slack themselves."""
        return self.had_connection and not self.revoked_at_slack


class DisconnectingManager(Protocol):
    """The part of stores.rotation.TokenManager a disconnect uses."""

    store: SQLAlchemyInstallationStore
    api_url: str
    oauth: WebClient

    def read(self, key: TokenKey) -> Snapshot | None: ...

    def clock(self) -> datetime: ...

    def refresh_after_expired(self, key: TokenKey, used_token: str) -> FreshToken: ...


def disconnect(
    manager: DisconnectingManager,
    *,
    enterprise_id: str | None,
    team_id: str | None,
    user_id: str,
    keep_unless_confirmed: bool = False,
) -> DisconnectResult:
    """Revoke the person's token at Slack and delete Delegate's copy; safe to call twice, or beside a revocation event.
    With `keep_unless_confirmed` (the operator's revoke) the copy stays when Slack did not confirm, to try again."""
    key = TokenKey.of(enterprise_id, team_id, user_id)
    snapshot = manager.read(key)
    if snapshot is None:
        return DisconnectResult(had_connection=False, revoked_at_slack=False, slack_error=None, deleted=True)
    if snapshot.status == STATUS_REVOKED or snapshot.token is None:
        revoked, error = True, None  # Slack already told Delegate this grant is gone
    else:
        expired = snapshot.expires_at is not None and snapshot.expires_at <= manager.clock()
        revoked, error = _revoke_at_slack(manager, key, snapshot.token, expired=expired)
    if not revoked and keep_unless_confirmed:
        return DisconnectResult(had_connection=True, revoked_at_slack=False, slack_error=error, deleted=False)
    outcome = "auth.revoke confirmed" if revoked else f"auth.revoke not confirmed: {error}"
    try:
        manager.store.delete_user_tokens(
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
            installed_at_or_before=snapshot.installed_at,
            reason=f"disconnect ({outcome})",
        )
        deleted = True
    except SQLAlchemyError:
        logger.exception("deleting the tokens of %s after a disconnect failed", user_id)
        deleted = False
    if not revoked:
        logger.warning("disconnect of %s: Slack did not confirm the revoke (%s); Delegate's copy deleted", user_id, error)
    return DisconnectResult(had_connection=True, revoked_at_slack=revoked, slack_error=error, deleted=deleted)


def _revoke_at_slack(
    manager: DisconnectingManager, key: TokenKey, token: str, *, expired: bool
) -> tuple[bool, str | None]:
    """(confirmed, error name): call auth.revoke, refreshing once first if the access token has expired."""
    error = "token_expired" if expired else _auth_revoke(manager, token)
    if error == "token_expired":
        try:
            token = manager.refresh_after_expired(key, token).token
        except TokenError as refresh_error:
            return False, f"token_expired, then refresh failed: {refresh_error.reason or type(refresh_error).__name__}"
        error = _auth_revoke(manager, token)
    if error is None or error in ALREADY_REVOKED_ERRORS:
        return True, None
    return False, error


def _auth_revoke(manager: DisconnectingManager, token: str) -> str | None:
    """None when Slack revoked the token, else why not (never the token itself)."""
    client = WebClient(
        token=token,
        base_url=manager.api_url,
        timeout=manager.oauth.timeout,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1), ServerErrorRetryHandler(max_retry_count=1)],
    )
    try:
        answer: Any = client.auth_revoke().get("revoked")
    except SlackApiError as api_error:
        status = api_error.response.status_code
        code = api_error.response.get("error") if isinstance(api_error.response.data, dict) else None
        if status >= 500 or not code:
            return f"http_{status}" + (f" {code}" if code else "")
        return str(code)
    except (SlackClientError, OSError) as transport_error:  # refused, reset, timed out, unreadable answer
        return f"connection_error:{type(transport_error).__name__}"
    return None if answer else "not_revoked"
