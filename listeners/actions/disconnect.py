"""The Disconnect button (App Home or /delegate): revoke the person's token at Slack, delete it, and say so."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, BoltContext, Respond

from ..context import delegate_of, person_of
from ..home import publish_home
from ..replies import text_reply

logger = logging.getLogger(__name__)


def disconnect_ack(ack: Ack) -> None:
    ack()


def disconnect_callback(body: dict[str, Any], context: BoltContext, respond: Respond) -> None:
    # Only the person who clicked is ever disconnected: the button carries no user id.
    delegate = delegate_of(context)
    person = person_of(context)
    from_home = (body.get("view") or {}).get("type") == "home"
    try:
        revoked = delegate.manager.disconnect(**person.key())
    except Exception:
        logger.exception("disconnecting %s failed", person.user_id)
        if not from_home:
            respond(
                response_type="ephemeral",
                replace_original=True,
                **text_reply("Delegate could not disconnect you: something went wrong on its side. Try again in a minute."),
            )
        return
    logger.info("%s disconnected Delegate (revoked at Slack: %s)", person.user_id, revoked)
    if from_home:
        try:
            publish_home(context.client, delegate, person)
        except Exception:
            logger.exception("republishing the Home tab of %s failed", person.user_id)
        return
    done = "Slack revoked Delegate's access and" if revoked else "Delegate"
    respond(
        response_type="ephemeral",
        replace_original=True,
        **text_reply(f"Disconnected: {done} deleted your token. `/delegate connect` connects you again."),
    )
