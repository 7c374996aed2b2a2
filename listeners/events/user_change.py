"""user_change: when a person's account is deactivated, their tokens are revoked and dropped, and their Home tab says so.

A reactivation (deleted: false) changes nothing: the tokens stay revoked and the tab already says so; republishing
on every user_change would mean a views.publish for each profile edit in the workspace.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, BoltContext

from ..context import delegate_of, person_of
from ..home import republish_home

logger = logging.getLogger(__name__)


def user_change_ack(ack: Ack) -> None:
    ack()


def user_change_callback(event: dict[str, Any], context: BoltContext) -> None:
    user = event.get("user") or {}
    if not user.get("deleted") or not user.get("id"):
        return
    person = person_of(context, user_id=user["id"])
    delegate = delegate_of(context)
    try:
        delegate.manager.forget_user(**person.key(), reason="user_deactivated")
    except Exception:
        logger.exception("forgetting the tokens of deactivated user %s failed", person.user_id)
        return
    logger.info("user %s was deactivated: their tokens are revoked", person.user_id)
    republish_home(context.client, delegate, person)
