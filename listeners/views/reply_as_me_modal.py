"""Submission of the Reply as me form: the reply is posted in the message's thread as the person."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, BoltContext

from ..acting import attempt, problem_reply, ready_client
from ..modals import notice_modal, working_modal
from ..replies import Reply, text_reply

logger = logging.getLogger(__name__)

NEEDED = ("chat:write",)
DOING = "reply as you"
TITLE = "Reply as me"


def read_reply_form(view: dict[str, Any]) -> tuple[str, str, str] | dict[str, str]:
    """(channel, thread_ts, text) from the form, or the errors to show next to its fields."""
    values = (view.get("state") or {}).get("values") or {}
    text = (((values.get("message") or {}).get("value") or {}).get("value") or "").strip()
    try:
        target = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        target = {}
    channel, thread_ts = str(target.get("channel") or ""), str(target.get("thread_ts") or "")
    if not text:
        return {"message": "Write a reply."}
    if not channel or not thread_ts:
        return {"message": "Delegate lost track of the message; close this and use the shortcut again."}
    return channel, thread_ts, text


def reply_as_me_modal_ack(ack: Ack, view: dict[str, Any], context: BoltContext) -> None:
    form = read_reply_form(view)
    if isinstance(form, dict):
        ack(response_action="errors", errors=form)
        return
    problem = problem_reply(context, NEEDED, doing=DOING)
    if problem is not None:
        ack(response_action="update", view=notice_modal(TITLE, problem))
        return
    ack(response_action="update", view=working_modal(TITLE, "Posting your reply…"))


def reply_as_me_modal_callback(view: dict[str, Any], context: BoltContext) -> None:
    form = read_reply_form(view)
    client = ready_client(context, NEEDED)
    if client is None or isinstance(form, dict):
        return
    channel, thread_ts, text = form

    def reply() -> Reply:
        client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)
        return text_reply(f":white_check_mark: Replied as you in the thread, in <#{channel}>.")

    answer = attempt(reply, context, doing=DOING) or text_reply("Done.")
    try:
        context.client.views_update(view_id=view["id"], view=notice_modal(TITLE, answer))
    except Exception:
        logger.exception("showing the reply result to %s failed", context.user_id)
