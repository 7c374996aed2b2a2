"""Submission of the Set my status form: errors shown in the form, else the status set as the person."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt import Ack, BoltContext

from ..acting import attempt, problem_reply, ready_client
from ..commands.set_my_status import describe_status, set_status
from ..context import now_of
from ..modals import EXPIRY_CHOICES, notice_modal, working_modal
from ..parsing import STATUS_TEXT_LIMIT, parse_emoji
from ..replies import Reply, text_reply

logger = logging.getLogger(__name__)

NEEDED = ("users.profile:write",)
DOING = "set your status"
TITLE = "Set my status"


@dataclass(frozen=True)
class StatusForm:
    emoji: str
    text: str
    clears_at: datetime | None


def _value(values: dict[str, Any], block_id: str) -> dict[str, Any]:
    return (values.get(block_id) or {}).get("value") or {}


def read_status_form(view: dict[str, Any], now: datetime) -> StatusForm | dict[str, str]:
    """The form's values, or the errors to show next to its fields (block_id -> message)."""
    values = (view.get("state") or {}).get("values") or {}
    raw_emoji = (_value(values, "emoji").get("value") or "").strip()
    text = " ".join((_value(values, "text").get("value") or "").split())
    choice = (_value(values, "expiry").get("selected_option") or {}).get("value") or "never"
    clear_at = _value(values, "clear_at").get("selected_date_time")
    errors: dict[str, str] = {}
    emoji = parse_emoji(raw_emoji) if raw_emoji else ""
    if emoji is None:
        errors["emoji"] = "Use an emoji code like :palm_tree: (letters, digits, - _ + between colons)."
    if len(text) > STATUS_TEXT_LIMIT:
        errors["text"] = f"{STATUS_TEXT_LIMIT} characters at most."
    if not raw_emoji and not text:
        errors["text"] = "Give an emoji, a text or both."
    minutes = EXPIRY_CHOICES.get(choice, ("", None))[1]
    clears_at: datetime | None = None
    if clear_at is not None:
        clears_at = datetime.fromtimestamp(int(clear_at), UTC)
        if minutes is not None:
            errors["clear_at"] = "Choose a duration or a time, not both."
        elif clears_at <= now:
            errors["clear_at"] = "That moment has passed."
    elif minutes is not None:
        clears_at = now + timedelta(minutes=minutes)
    if errors:
        return errors
    return StatusForm(emoji=emoji or "", text=text, clears_at=clears_at)


def set_my_status_modal_ack(ack: Ack, view: dict[str, Any], context: BoltContext) -> None:
    form = read_status_form(view, now_of(context))
    if not isinstance(form, StatusForm):
        ack(response_action="errors", errors=form)
        return
    problem = problem_reply(context, NEEDED, doing=DOING)
    if problem is not None:
        ack(response_action="update", view=notice_modal(TITLE, problem))
        return
    ack(response_action="update", view=working_modal(TITLE, "Setting your status…"))


def set_my_status_modal_callback(view: dict[str, Any], context: BoltContext) -> None:
    form = read_status_form(view, now_of(context))
    client = ready_client(context, NEEDED)
    if client is None or not isinstance(form, StatusForm):
        return

    def change() -> Reply:
        set_status(client, emoji=form.emoji, text=form.text, clears_at=form.clears_at)
        return text_reply(describe_status(form.emoji, form.text, form.clears_at))

    reply = attempt(change, context, doing=DOING) or text_reply("Done.")
    try:
        context.client.views_update(view_id=view["id"], view=notice_modal(TITLE, reply))
    except Exception:
        logger.exception("showing the status result to %s failed", context.user_id)
