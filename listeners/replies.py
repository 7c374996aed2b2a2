"""What Delegate says to people: connect and reconnect prompts, Slack errors in plain words, small block helpers."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from slack_sdk.errors import SlackApiError

from stores.errors import (
    MissingScope,
    NeedsReauth,
    NotConnected,
    RefreshTimeout,
    SlackUnavailable,
    StoreUnavailable,
    TokenError,
    TokenManagerConfigError,
    TokenRevoked,
)

from .context import Delegate, Person

__all__ = [
    "CONNECT_ACTION_ID",
    "Reply",
    "connect_button",
    "connect_prompt",
    "context_line",
    "escape",
    "lost_connection",
    "section",
    "slack_error_reply",
    "text_reply",
    "token_problem_reply",
    "unexpected_error_reply",
]

Reply = dict[str, Any]  # keyword arguments for ack(), respond() or chat.postEphemeral: text and blocks

CONNECT_ACTION_ID = "connect"  # url buttons still send an action, which listeners/actions/connect.py acknowledges

logger = logging.getLogger(__name__)


def escape(text: str) -> str:
    """Text safe to put in mrkdwn (Slack's three control characters escaped)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def context_line(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def text_reply(text: str) -> Reply:
    """A plain ephemeral answer."""
    return {"text": text, "blocks": [section(text)]}


def connect_button(url: str, label: str) -> dict[str, Any]:
    """A link button that opens Slack's consent page."""
    return {
        "type": "button",
        "action_id": CONNECT_ACTION_ID,
        "text": {"type": "plain_text", "text": label},
        "url": url,
        "style": "primary",
    }


def connect_prompt(
    delegate: Delegate, person: Person, explanation: str, *, label: str, scopes: Sequence[str] | None = None
) -> Reply:
    """An explanation and a button that connects the person, asking for `scopes` (None: Delegate's usual scopes)."""
    url = delegate.connect_url(team_id=person.workspace_id, user_scopes=list(scopes) if scopes is not None else None)
    return {
        "text": explanation,
        "blocks": [section(explanation), {"type": "actions", "elements": [connect_button(url, label)]}],
    }


def _scope_words(scopes: Sequence[str]) -> str:
    return ", ".join(f"`{scope}`" for scope in scopes)


def token_problem_reply(error: TokenError, delegate: Delegate, person: Person, *, doing: str) -> Reply:
    """The answer to a person Delegate cannot act as; `doing` completes "to ..." (e.g. "post as you")."""
    if isinstance(error, MissingScope):
        needed = [scope for scope in error.needed if scope] or list(delegate.user_scopes)
        return connect_prompt(
            delegate,
            person,
            f"To {doing}, Delegate needs your permission for {_scope_words(needed)}, which your connection does not "
            "include yet. Reconnect to grant just that; everything else stays as it is.",
            label="Reconnect",
            scopes=needed,
        )
    if isinstance(error, NotConnected):
        return connect_prompt(
            delegate,
            person,
            f"To {doing}, connect your Slack account to Delegate first. It will act as you only when you ask it to, "
            "and you can disconnect at any time with `/delegate disconnect`.",
            label="Connect Delegate",
        )
    if isinstance(error, NeedsReauth):
        return connect_prompt(
            delegate,
            person,
            f"{lost_connection('needs_reauth', error.reason, error.since)}, so Delegate could not {doing}. "
            "Reconnect to carry on.",
            label="Reconnect",
        )
    if isinstance(error, TokenRevoked):
        return connect_prompt(
            delegate,
            person,
            f"{lost_connection('revoked', error.reason, error.since)}, so Delegate could not {doing}. "
            "Connect again to use Delegate.",
            label="Connect again",
        )
    if isinstance(error, SlackUnavailable | RefreshTimeout):
        if error.reason == "ratelimited":
            return text_reply(f"Slack asked Delegate to slow down, so it could not {doing} just now. Try again in a minute.")
        return text_reply(f"Slack is not answering Delegate right now, so it could not {doing}. Try again in a minute.")
    if isinstance(error, StoreUnavailable):
        return text_reply(f"Delegate could not reach its database, so it did not {doing}. Try again in a moment.")
    if isinstance(error, TokenManagerConfigError):
        return text_reply(f"Delegate could not {doing}: its own Slack credentials are misconfigured. Tell your Slack admin.")
    return text_reply(f"Delegate could not {doing} because of a problem with your connection. Try again in a minute.")


_REVOKED_BY = {
    "tokens_revoked": "Your Delegate connection was revoked in Slack",
    "token_revoked": "Slack says your Delegate connection was revoked",
    "user_deactivated": "Your Delegate connection was revoked when your Slack account was deactivated",
    "account_inactive": "Your Delegate connection was revoked: Slack says your account is deactivated",
    "app_uninstalled": "Your Delegate connection ended when Delegate was removed from this workspace",
}


def lost_connection(status: str, reason: str | None, since: datetime | None) -> str:
    """Why a connection that existed no longer works, when, and Slack's word for it: never the "connect first" of a
    person who never connected (status is the row's: needs_reauth or revoked)."""
    from .connection import slack_date  # connection.py builds on this module

    code = f"`{escape(reason)}`" if reason else ""
    if status == "needs_reauth":
        said = _reauth_reason(reason)
        if code in said:
            code = ""
        details = [part for part in (code, f"since {slack_date(since)}" if since is not None else "") if part]
        return said + (f" ({', '.join(details)})" if details else "")
    said = _REVOKED_BY.get(reason or "", "Your Delegate connection was revoked")
    return said + (f" on {slack_date(since)}" if since is not None else "") + (f" ({code})" if code else "")


def _reauth_reason(reason: str | None) -> str:
    """Why the connection needs renewing, in the person's words, naming Slack's error when it is not the usual one."""
    if reason in (None, "invalid_refresh_token", "invalid_grant"):
        return "Slack no longer accepts your Delegate connection"
    if reason in ("refresh_interrupted", "refresh_answer_lost"):
        return "Delegate lost Slack's answer while renewing your connection, and Slack accepts each renewal only once"
    if reason in ("invalid_auth", "not_authed"):
        return f"Slack did not accept your Delegate connection (`{reason}`)"
    return f"Slack kept refusing to renew your Delegate connection (`{escape(reason)}`)"


_SLACK_ERRORS = {
    "channel_not_found": "that channel does not exist or you cannot see it",
    "not_in_channel": "you are not a member of that channel",
    "is_archived": "that channel is archived",
    "restricted_action": "a workspace setting does not allow it",
    "restricted_action_read_only_channel": "that channel is read-only for you",
    "restricted_action_thread_only_channel": "that channel accepts replies in threads only",
    "restricted_action_non_threadable_channel": "that channel does not accept thread replies",
    "cant_reply_to_message": "that message cannot be replied to",
    "thread_not_found": "that thread no longer exists",
    "message_not_found": "that message no longer exists",
    "msg_too_long": "the message is too long",
    "no_text": "the message is empty",
    "too_long": "the text is too long",
    "invalid_profile": "Slack refused those profile values",
    "profile_set_failed": "Slack refused those profile values",
    "profile_status_set_failed_not_valid_emoji": "Slack has no emoji by that name in this workspace",
    "profile_status_set_failed_not_emoji_syntax": "an emoji is written like `:coffee:`",
    "snooze_not_active": "you are not snoozing",
    "snooze_end_failed": "Slack could not end the snooze",
    "snooze_failed": "Slack could not start the snooze",
    "no_query": "the search is empty",
    "ratelimited": "Slack asked Delegate to slow down",
    "fatal_error": "Slack had an internal error",
    "internal_error": "Slack had an internal error",
    "service_unavailable": "Slack is temporarily unavailable",
    "request_timeout": "Slack took too long to answer",
    "team_access_not_granted": "your organization has not granted Delegate access to that workspace",
}


def slack_error_reply(error: SlackApiError, *, doing: str) -> Reply:
    """A Slack error in plain words, with its code for anyone who needs to look it up."""
    code = str(error.response.get("error") or "unknown_error")
    reason = _SLACK_ERRORS.get(code, "Slack refused it")
    return text_reply(f"Delegate could not {doing}: {reason} (`{code}`).")


def unexpected_error_reply(*, doing: str) -> Reply:
    """What to say when something failed on Delegate's side (the details go to the log, never to the person)."""
    return text_reply(f"Delegate could not {doing}: something went wrong on its side. Try again in a minute.")
