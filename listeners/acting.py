"""Acting as a person: acknowledge at once (saying why not, when Delegate cannot), then do it and report back."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk.errors import SlackApiError

from stores.errors import MissingScope, TokenError, TokenUnavailable
from stores.user_client import UserClient

from .context import acting_problem, delegate_of, person_of, user_client_of
from .replies import Reply, slack_error_reply, token_problem_reply, unexpected_error_reply

__all__ = ["ack_for_person", "attempt", "problem_reply", "ready_client", "tell", "tell_modal_failed"]

logger = logging.getLogger(__name__)


def problem_reply(context: BoltContext, needed: Sequence[str], *, doing: str) -> Reply | None:
    """The connect / reconnect / try-later answer when Delegate cannot act as the person now, else None."""
    problem = acting_problem(context, needed)
    if problem is None:
        return None
    logger.info("cannot %s for %s: %s (%s)", doing, context.user_id, type(problem).__name__, problem.reason or "-")
    return token_problem_reply(problem, delegate_of(context), person_of(context), doing=doing)


def ack_for_person(ack: Ack, context: BoltContext, *, needed: Sequence[str], doing: str) -> bool:
    """Acknowledge a command; when Delegate cannot act as the person, the acknowledgement says why. True if it can."""
    reply = problem_reply(context, needed, doing=doing)
    if reply is None:
        ack()
        return True
    ack(response_type="ephemeral", **reply)
    return False


def ready_client(context: BoltContext, needed: Sequence[str]) -> UserClient | None:
    """The person's client when Delegate can act as them (else None: the acknowledgement already said why)."""
    if acting_problem(context, needed) is not None:
        return None
    return user_client_of(context)


def attempt(work: Callable[[], Reply | None], context: BoltContext, *, doing: str) -> Reply | None:
    """Run `work` as the person; turn whatever goes wrong into the answer they should see."""
    try:
        return work()
    except (TokenUnavailable, MissingScope) as error:
        # The person's own state (not connected, reconnect, missing a scope): expected, and fixed by the button.
        logger.info("could not %s for %s: %s (%s)", doing, context.user_id, type(error).__name__, error.reason or "-")
        return token_problem_reply(error, delegate_of(context), person_of(context), doing=doing)
    except TokenError as error:
        logger.exception("could not %s for %s: token manager failure", doing, context.user_id)
        return token_problem_reply(error, delegate_of(context), person_of(context), doing=doing)
    except SlackApiError as error:
        code: Any = error.response.get("error")
        logger.warning("Slack refused to %s for %s: %s", doing, context.user_id, code)
        return slack_error_reply(error, doing=doing)
    except Exception:
        logger.exception("could not %s for %s", doing, context.user_id)
        return unexpected_error_reply(doing=doing)


def tell(respond: Respond, reply: Reply) -> None:
    """Answer the person privately through the response_url; a failure to reach it is logged, not raised."""
    try:
        respond(response_type="ephemeral", replace_original=False, **reply)
    except Exception:
        logger.exception("could not answer through the response_url")


def tell_modal_failed(body: dict[str, Any], context: BoltContext, *, title: str) -> None:
    """A shortcut's form could not open within its trigger's 3 s (a token renewal took too long, or Slack refused):
    say so privately instead of failing silently: through a message shortcut's response_url, or, for a global
    shortcut (which has none), in the person's direct messages with Delegate."""
    from slack_sdk.webhook import WebhookClient

    text = f"Delegate could not open the {title} form in time. Please try the shortcut again."
    url = body.get("response_url")
    try:
        if url:
            WebhookClient(url, timeout=5).send(text=text, response_type="ephemeral", replace_original=False)
        elif context.user_id and context.client is not None:
            context.client.chat_postMessage(channel=context.user_id, text=text)
    except Exception:
        logger.exception("could not tell %s that the %s form did not open", context.user_id, title)
