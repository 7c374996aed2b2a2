"""The Disconnect button (App Home or /delegate): revoke the person's grant at Slack, delete Delegate's copy, and say
exactly what happened, including when Slack did not confirm and the grant may still be live (stores/disconnect.py)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, BoltContext, Respond

from ..connection import disconnect_outcome
from ..context import delegate_of, person_of
from ..home import republish_home
from ..replies import text_reply, unexpected_error_reply

logger = logging.getLogger(__name__)


def disconnect_ack(ack: Ack) -> None:
    ack()


def disconnect_callback(body: dict[str, Any], context: BoltContext, respond: Respond) -> None:
    # Only the person who clicked is ever disconnected: the button carries no user id.
    delegate = delegate_of(context)
    person = person_of(context)
    from_home = (body.get("view") or {}).get("type") == "home"
    try:
        result = delegate.manager.disconnect(**person.key())
    except Exception:
        logger.exception("disconnecting %s failed", person.user_id)
        said = unexpected_error_reply(doing="disconnect you")["text"]
    else:
        logger.info(
            "%s disconnected Delegate (revoked at Slack: %s%s, copy deleted: %s)",
            person.user_id,
            result.revoked_at_slack,
            f", {result.slack_error}" if result.slack_error else "",
            result.deleted,
        )
        said = disconnect_outcome(result)
    if not from_home:
        respond(response_type="ephemeral", replace_original=True, **text_reply(said))
    # The Home tab shows the new state either way; clicked there, it is also where the person reads what happened.
    republish_home(context.client, delegate, person, notice=said if from_home else None)
