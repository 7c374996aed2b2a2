"""Global shortcut set_my_status: a form that sets the person's status as them (or a connect prompt)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, BoltContext

from ..acting import problem_reply, tell_modal_failed
from ..modals import notice_modal, status_form

logger = logging.getLogger(__name__)

NEEDED = ("users.profile:write",)
DOING = "set your status"


def set_my_status_ack(ack: Ack) -> None:
    ack()


def set_my_status_callback(body: dict[str, Any], context: BoltContext) -> None:
    problem = problem_reply(context, NEEDED, doing=DOING)
    view = notice_modal("Set my status", problem) if problem is not None else status_form()
    try:
        context.client.views_open(trigger_id=body["trigger_id"], view=view)
    except Exception:
        tell_modal_failed(body, context, title="Set my status")
        logger.exception("opening the status form for %s failed", context.user_id)
