"""app_home_opened: publish the person's Home tab (their connection and its controls)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, BoltContext

from ..context import delegate_of, person_of
from ..home import publish_home

logger = logging.getLogger(__name__)


def app_home_opened_ack(ack: Ack) -> None:
    ack()


def app_home_opened_callback(event: dict[str, Any], context: BoltContext) -> None:
    if event.get("tab", "home") != "home":
        return
    person = person_of(context, user_id=event.get("user"))
    try:
        publish_home(context.client, delegate_of(context), person)
    except Exception:
        logger.exception("publishing the Home tab of %s failed", person.user_id)
