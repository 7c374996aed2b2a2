"""tokens_revoked: Slack revoked some of Delegate's tokens; delete the copies, unless granted again since.

This replaces Bolt's own handler (App.enable_token_revocation_listeners), which deletes every row unconditionally
and inside the request: on SQLite its delete raced Delegate's own disconnect ("database is locked"), the exception
became an HTTP 500, and a revocation delivered after the person reconnected erased the new connection. Here the
event is acknowledged first, the deletes are idempotent, and a grant saved after the event's time is kept. Slack's
event_time is whole seconds, so a grant saved within that second counts as revoked (Delegate never shows a revoked
connection as live); a reconnect that fast is not humanly possible. A delete that fails after the acknowledgement is
logged, not retried: the dead token is dropped at its first use, when Slack answers token_revoked.

A person's row is kept, marked revoked with no token in it (TokenManager.forget_user), so that Delegate can tell
them their connection was revoked in Slack and when, rather than "connect first"; their Home tab is republished to
say so. The bot's token is deleted as before (without it there is no Home tab to publish).
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, BoltContext

from ..context import RevocationStore, clock_of, delegate_of, event_moment, installation_key, person_of
from ..home import bot_client_of, republish_home

logger = logging.getLogger(__name__)


def tokens_revoked_ack(ack: Ack) -> None:
    ack()


def tokens_revoked_callback(
    body: dict[str, Any], event: dict[str, Any], context: BoltContext, store: RevocationStore | None = None
) -> None:
    if store is None:
        logger.error("tokens_revoked: the app has no installation store, nothing deleted")
        return
    revoked_at = event_moment(body, clock_of(context))
    enterprise_id, team_id = installation_key(context)
    tokens = event.get("tokens") or {}
    delegate = delegate_of(context)
    bot_revoked = bool(tokens.get("bot"))  # an uninstall: no bot token left to publish with, and no Home tab
    client: Any = None
    for user_id in tokens.get("oauth") or []:
        person = person_of(context, user_id=user_id)
        try:
            dropped = delegate.manager.forget_user(
                **person.key(), reason="tokens_revoked", installed_at_or_before=revoked_at
            )
        except Exception:
            logger.exception("deleting the revoked tokens of %s failed", user_id)
            continue
        # Nothing dropped: a redelivery, or the revoke of Delegate's own disconnect, which republishes itself.
        if dropped and not bot_revoked:
            client = client or bot_client_of(context)  # Bolt authorizes no tokens_revoked: context.client has no token
            republish_home(client, delegate, person)
    if tokens.get("bot"):
        try:
            store.delete_bot(enterprise_id=enterprise_id, team_id=team_id, installed_at_or_before=revoked_at)
        except Exception:
            logger.exception("deleting the revoked bot token of team %s failed", team_id)
