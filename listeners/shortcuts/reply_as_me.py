"""Message shortcut reply_as_me: a form that replies in the chosen message's thread as the person."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, BoltContext

from ..acting import problem_reply, tell_modal_failed
from ..modals import notice_modal, reply_form

logger = logging.getLogger(__name__)

NEEDED = ("chat:write",)
DOING = "reply as you"


def reply_as_me_ack(ack: Ack) -> None:
    ack()


def reply_as_me_callback(body: dict[str, Any], context: BoltContext) -> None:
    problem = problem_reply(context, NEEDED, doing=DOING)
    if problem is not None:
        view = notice_modal("Reply as me", problem)
    else:
        message = body.get("message") or {}
        view = reply_form(
            channel_id=(body.get("channel") or {}).get("id", ""),
            # A reply to a reply goes into the same thread; a reply to a top-level message starts its thread.
            thread_ts=message.get("thread_ts") or message.get("ts", ""),
            author=message.get("user"),
            text=message.get("text") or "",
        )
    try:
        context.client.views_open(trigger_id=body["trigger_id"], view=view)
    except Exception:
        tell_modal_failed(body, context, title="Reply as me")
        logger.exception("opening the reply form for %s failed", context.user_id)
