"""/set-my-status :emoji: text [for 2h | until 17:00] | clear: set or clear the person's status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk.errors import SlackApiError

from stores.user_client import UserClient

from ..acting import ack_for_person, attempt, ready_client, tell
from ..connection import slack_date
from ..context import now_of
from ..parsing import ClearStatus, SetStatus, StatusExpiry, UsageError, parse_status, unescape
from ..replies import Reply, escape, text_reply

DOING = "set your status"
# What users.profile.set answers for an emoji the workspace does not have, or a value that is no emoji code at all.
EMOJI_ERRORS = ("profile_status_set_failed_not_valid_emoji", "profile_status_set_failed_not_emoji_syntax")


def needed_scopes(request: SetStatus | ClearStatus) -> tuple[str, ...]:
    """users.profile:write, and users:read to learn the person's time zone for `until 17:00`."""
    if isinstance(request, SetStatus) and request.expiry is not None and request.expiry.at is not None:
        return ("users.profile:write", "users:read")
    return ("users.profile:write",)


def set_my_status_ack(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
    try:
        request = parse_status(unescape(command.get("text") or ""))
    except UsageError as error:
        ack(response_type="ephemeral", **text_reply(str(error)))
        return
    ack_for_person(ack, context, needed=needed_scopes(request), doing=DOING)


def person_zone(client: UserClient, user_id: str) -> tzinfo:
    """The person's time zone as Slack knows it (users.info), UTC when it does not say."""
    user = client.users_info(user=user_id).get("user") or {}
    name = user.get("tz")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    offset = user.get("tz_offset")
    return timezone(timedelta(seconds=int(offset))) if isinstance(offset, int | float) else UTC


def expiration(client: UserClient, user_id: str, expiry: StatusExpiry | None, now: datetime) -> datetime | None:
    """When the status clears, counted from `now`, or None for never."""
    if expiry is None:
        return None
    zone = person_zone(client, user_id) if expiry.at is not None else UTC
    return expiry.resolve(now, zone)


def set_status(client: UserClient, *, emoji: str, text: str, clears_at: datetime | None) -> None:
    """users.profile.set as the person."""
    profile = {
        "status_text": text,
        "status_emoji": emoji,
        "status_expiration": int(clears_at.timestamp()) if clears_at is not None else 0,
    }
    client.users_profile_set(profile=profile)


def describe_status(emoji: str, text: str, clears_at: datetime | None, not_expiry: str = "") -> str:
    """`:coffee: Break, until <date>` for the confirmation; `not_expiry` is words that looked like an expiry but are not."""
    shown = " ".join(part for part in (emoji, escape(text)) if part)
    until = f", until {slack_date(clears_at)}" if clears_at is not None else " (it stays until you change it)"
    if not_expiry:
        words = escape(not_expiry).replace("`", "'")
        until += (
            f". No expiry was set: `{words}` is not a duration or a time of day, so it is part of the text. "
            "To clear it later, end with `for 2h` or `until 17:00`"
        )
    return f"Your status is now {shown}{until}."


def emoji_refused(emoji: str) -> Reply:
    """The answer when Slack does not know the status emoji: say which, and change nothing."""
    return text_reply(
        f"Slack has no emoji `{escape(emoji)}` in this workspace, so your status was not changed. "
        "Use a name from Slack's emoji picker, like `:coffee:` or `:palm_tree:`."
    )


def set_my_status_callback(command: dict[str, Any], context: BoltContext, respond: Respond) -> None:
    try:
        request = parse_status(unescape(command.get("text") or ""))
    except UsageError:
        return
    client = ready_client(context, needed_scopes(request))
    if client is None:
        return

    def change() -> Reply:
        if isinstance(request, ClearStatus):
            set_status(client, emoji="", text="", clears_at=None)
            return text_reply("Your status is cleared.")
        clears_at = expiration(client, client.user_id, request.expiry, now_of(context))
        try:
            set_status(client, emoji=request.emoji, text=request.text, clears_at=clears_at)
        except SlackApiError as error:
            if error.response.get("error") in EMOJI_ERRORS:
                return emoji_refused(request.emoji)
            raise
        return text_reply(describe_status(request.emoji, request.text, clears_at, request.not_expiry))

    reply = attempt(change, context, doing=DOING)
    if reply is not None:
        tell(respond, reply)
