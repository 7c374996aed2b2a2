"""The App Home tab: the person's connection, its controls, and what Delegate can do."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from slack_bolt import BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from stores.bot_client import BotClient
from stores.errors import TokenError, TokenUnavailable

from .connection import connection_blocks
from .context import ConnectionManager, Delegate, Person
from .help import SHORTCUTS_TEXT, command_lines
from .replies import context_line, escape, section

__all__ = ["bot_client_for", "bot_client_of", "help_line", "home_view", "next_steps", "publish_home", "republish_home"]

logger = logging.getLogger(__name__)


def home_view(delegate: Delegate, person: Person, notice: str | None = None) -> dict[str, Any]:
    """The Home tab for this person, from what the token manager knows of their connection, with an optional notice
    (what a button just did: the tab has no other place to say it)."""
    info = delegate.manager.connection_info(**person.key())
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Delegate"}},
        *([section(notice), {"type": "divider"}] if notice else []),
        section("Delegate acts as you in Slack, with your own token, only when you ask it to."),
        *connection_blocks(info, delegate, person),
        {"type": "divider"},
        section(next_steps(info is not None and info.status == "active")),
        section(f"*Shortcuts*\n{SHORTCUTS_TEXT}"),
        context_line(help_line(delegate)),
    ]
    return {"type": "home", "blocks": blocks}


def next_steps(connected: bool) -> str:
    """The commands to try (from the manifest): now when connected, else once connected with the button above."""
    if connected:
        return f"*Try these* in any channel:\n{command_lines()}"
    return f"*Once you have connected* (the button above), try these in any channel:\n{command_lines()}"


def help_line(delegate: Delegate) -> str:
    """Where to learn more: `/delegate help`, and the operator's support and privacy pages when set."""
    links = [
        f"<{escape(url)}|{label}>"
        for label, url in (("Get help", delegate.support_url), ("Privacy policy", delegate.privacy_url))
        if url
    ]
    return " · ".join(
        [
            "`/delegate help` lists everything. Everything Delegate says to you is visible to you only, except what it "
            "posts as you.",
            *links,
        ]
    )


def publish_home(client: WebClient, delegate: Delegate, person: Person, notice: str | None = None) -> None:
    """Publish the Home tab to the person with the bot client (the tab is Delegate's own view, not an action as them)."""
    client.views_publish(user_id=person.user_id, view=home_view(delegate, person, notice))


def republish_home(client: WebClient | None, delegate: Delegate, person: Person, notice: str | None = None) -> bool:
    """Publish the Home tab again after the person's connection changed, so it never shows a stale state; a failure
    is logged (by Slack's error name, never a token) and never raised into the action that changed it."""
    if client is None or not client.token:
        logger.info("no bot token in this workspace: the Home tab of %s was not republished", person.user_id)
        return False
    try:
        publish_home(client, delegate, person, notice)
    except SlackApiError as error:
        logger.warning("Slack refused to republish the Home tab of %s: %s", person.user_id, error.response.get("error"))
        return False
    except Exception:  # noqa: BLE001 - the change itself is done; a stale tab is fixed at its next opening
        logger.exception("republishing the Home tab of %s failed", person.user_id)
        return False
    return True


def bot_client_of(context: BoltContext) -> WebClient | None:
    """context.client when it holds the bot token; else (Bolt authorizes no tokens_revoked or app_uninstalled event) a
    client with the bot token from the token manager, renewed first if due: call it after the ack only."""
    client = context.client
    if client is not None and client.token:
        return client
    delegate = context.get("delegate")
    if delegate is None:
        return None
    base_url = client.base_url if client is not None else delegate.manager.api_url
    return bot_client_for(
        delegate.manager,
        enterprise_id=context.enterprise_id,
        team_id=context.team_id,
        is_enterprise_install=context.is_enterprise_install,
        base_url=base_url,
    )


def bot_client_for(
    manager: ConnectionManager,
    *,
    enterprise_id: str | None,
    team_id: str | None,
    is_enterprise_install: bool | None,
    base_url: str,
    wait: timedelta | None = None,
    timeout: int = 10,
) -> BotClient | None:
    """A client with the workspace's bot token from the token manager, renewed first if due (so it may wait: after
    the ack only), that renews it again on token_expired; None when there is no usable bot token."""
    try:
        fresh = manager.fresh_bot_token(
            enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=is_enterprise_install, wait=wait
        )
    except TokenUnavailable:
        logger.info("no bot token in team %s (yet): there is no Home tab to publish", team_id)
        return None
    except TokenError as error:  # Slack unreachable and the old token expired: the next opening publishes it
        logger.warning("no usable bot token in team %s: %s", team_id, type(error).__name__)
        return None
    return BotClient(manager, key=fresh.key, token=fresh.token, base_url=base_url, timeout=timeout)
