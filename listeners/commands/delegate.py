"""/delegate help | connection | connect | disconnect: the person's connection to Delegate, and help."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, BoltContext, Respond

from ..acting import tell
from ..connection import connection_blocks, disconnect_button
from ..context import delegate_of, person_of
from ..help import help_reply
from ..parsing import unescape
from ..replies import Reply, connect_prompt, escape, section, text_reply, unexpected_error_reply

logger = logging.getLogger(__name__)

SUBCOMMANDS = ("help", "connection", "connect", "disconnect")
ALIASES = {"": "help", "status": "connection", "me": "connection", "reconnect": "connect", "revoke": "disconnect"}
USAGE = "Usage: `/delegate help`, `/delegate connection`, `/delegate connect` or `/delegate disconnect`."


def subcommand(command: dict[str, Any]) -> str | None:
    """The subcommand asked for, or None when it is not one of SUBCOMMANDS."""
    word = (command.get("text") or "").strip().lower()
    word = ALIASES.get(word, word)
    return word if word in SUBCOMMANDS else None


def delegate_ack(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
    action = subcommand(command)
    if action is None:
        typed = escape(unescape(command.get("text") or "").strip()[:60]).replace("`", "'")
        ack(response_type="ephemeral", **text_reply(f"`/delegate {typed}`? {USAGE}"))
    elif action == "help":
        ack(response_type="ephemeral", **help_reply())
    elif action == "connect":
        ack(response_type="ephemeral", **connect_reply(context))
    else:
        ack()  # connection and disconnect read the store: answered right after


def connect_reply(context: BoltContext) -> Reply:
    """A connect button asking for Delegate's usual scopes (reconnecting renews the connection too)."""
    reconnecting = context.get("user_client") is not None or context.get("user_token_error") is not None
    return connect_prompt(
        delegate_of(context),
        person_of(context),
        "Open Slack's consent page to connect your account to Delegate. It acts as you only when you ask it to, "
        "and `/delegate disconnect` revokes its access at any time.",
        label="Reconnect" if reconnecting else "Connect Delegate",
    )


def disconnect_prompt() -> Reply:
    text = "Disconnect Delegate? It will ask Slack to revoke its access to your account and delete your token."
    return {"text": text, "blocks": [section(text), {"type": "actions", "elements": [disconnect_button()]}]}


def delegate_callback(command: dict[str, Any], context: BoltContext, respond: Respond) -> None:
    action = subcommand(command)
    if action not in ("connection", "disconnect"):
        return
    try:
        delegate = delegate_of(context)
        person = person_of(context)
        info = delegate.manager.connection_info(**person.key())
        if action == "connection":
            text = "Your Delegate connection" if info else "Delegate is not connected to your account"
            reply: Reply = {"text": text, "blocks": connection_blocks(info, delegate, person)}
        elif info is None:
            reply = text_reply("Delegate is not connected to your account: there is nothing to disconnect.")
        else:
            reply = disconnect_prompt()
    except Exception:
        logger.exception("/delegate %s failed for %s", action, context.user_id)
        reply = unexpected_error_reply(doing="read your connection")
    tell(respond, reply)
