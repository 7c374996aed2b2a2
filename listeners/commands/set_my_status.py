"""/set-my-status :emoji: text [for 2h | until 17:00] | clear: set or clear the person's status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_bolt import Ack, BoltContext, Respond

from stores.user_client import UserClient

from ..acting import ack_for_person, attempt, ready_client, tell
from ..connection import slack_date
from ..context import now_of
from ..parsing import ClearStatus, SetStatus, StatusExpiry, UsageError, parse_status
from ..replies import Reply, escape, text_reply

DOING = "set your status"


def needed_scopes(request: SetStatus | ClearStatus) -> tuple[str, ...]:
    """users.profile:write, and users:read to learn the person's time zone for `until 17:00`."""
    if isinstance(request, SetStatus) and request.expiry is not None and request.expiry.at is not None:
        return ("users.profile:write", "users:read")
    return ("users.profile:write",)


def set_my_status_ack(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
    try:
        request = parse_status(command.get("text") or "")
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


def describe_status(emoji: str, text: str, clears_at: datetime | None) -> str:
    """`:coffee: Break, until <date>` for the confirmation."""
    shown = " ".join(part for part in (emoji, escape(text)) if part)
    until = f", until {slack_date(clears_at)}" if clears_at is not None else " (it stays until you change it)"
    return f"Your status is now {shown}{until}."


def set_my_status_callback(command: dict[str, Any], context: BoltContext, respond: Respond) -> None:
    try:
        request = parse_status(command.get("text") or "")
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
        set_status(client, emoji=request.emoji, text=request.text, clears_at=clears_at)
        return text_reply(describe_status(request.emoji, request.text, clears_at))

    reply = attempt(change, context, doing=DOING)
    if reply is not None:
        tell(respond, reply)
