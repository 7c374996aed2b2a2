"""/snooze-me <duration> | off: snooze the person's notifications, or end the snooze."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, BoltContext, Respond

from ..acting import ack_for_person, attempt, ready_client, tell
from ..parsing import UsageError, describe_duration, parse_snooze
from ..replies import Reply, text_reply

NEEDED = ("dnd:write",)
DOING = "change your notifications"


def snooze_me_ack(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
    try:
        parse_snooze(command.get("text") or "")
    except UsageError as error:
        ack(response_type="ephemeral", **text_reply(str(error)))
        return
    ack_for_person(ack, context, needed=NEEDED, doing=DOING)


def snooze_me_callback(command: dict[str, Any], context: BoltContext, respond: Respond) -> None:
    client = ready_client(context, NEEDED)
    if client is None:
        return
    try:
        request = parse_snooze(command.get("text") or "")
    except UsageError:
        return

    def snooze() -> Reply:
        if request.duration is None:
            client.dnd_endSnooze()
            return text_reply(":bell: Snooze ended: your notifications are back on.")
        answer = client.dnd_setSnooze(num_minutes=request.minutes)
        end = answer.get("snooze_endtime")
        until = f" until <!date^{int(end)}^{{time}}|the snooze ends>" if end else ""
        return text_reply(
            f":zzz: Notifications snoozed for {describe_duration(request.duration)}{until}. End it with `/snooze-me off`."
        )

    reply = attempt(snooze, context, doing=DOING)
    if reply is not None:
        tell(respond, reply)
