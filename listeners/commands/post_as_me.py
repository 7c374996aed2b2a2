"""/post-as-me [#channel] text: post a message as the person, here or in the channel they name."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, BoltContext, Respond

from ..acting import ack_for_person, attempt, ready_client, tell
from ..parsing import UsageError, parse_post
from ..replies import Reply, text_reply

NEEDED = ("chat:write",)
DOING = "post as you"


def post_as_me_ack(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
    try:
        parse_post(command.get("text") or "", current_channel=command["channel_id"])
    except UsageError as error:
        ack(response_type="ephemeral", **text_reply(str(error)))
        return
    ack_for_person(ack, context, needed=NEEDED, doing=DOING)


def post_as_me_callback(command: dict[str, Any], context: BoltContext, respond: Respond) -> None:
    client = ready_client(context, NEEDED)
    if client is None:
        return
    try:
        request = parse_post(command.get("text") or "", current_channel=command["channel_id"])
    except UsageError:
        return

    def post() -> Reply | None:
        client.chat_postMessage(channel=request.channel_id, text=request.text)
        # The message itself is the answer where it was typed; elsewhere, say where it went.
        return text_reply(f"Posted as you in <#{request.channel_id}>.") if request.named_channel else None

    reply = attempt(post, context, doing=DOING)
    if reply is not None:
        tell(respond, reply)
