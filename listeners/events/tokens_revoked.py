"""tokens_revoked: Slack revoked some of Delegate's tokens; delete the copies, unless granted again since.

This replaces Bolt's own handler (App.enable_token_revocation_listeners), which deletes every row unconditionally
and inside the request: on SQLite its delete raced Delegate's own disconnect ("database is locked"), the exception
became an HTTP 500, and a revocation delivered after the person reconnected erased the new connection. Here the
event is acknowledged first, the deletes are idempotent, and a grant saved after the event's time is kept. Slack's
event_time is whole seconds, so a grant saved within that second counts as revoked (Delegate never shows a revoked
connection as live); a reconnect that fast is not humanly possible. A delete that fails after the acknowledgement is
logged, not retried: the dead token is dropped at its first use, when Slack answers token_revoked.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, BoltContext

from ..context import RevocationStore, clock_of, event_moment, installation_key

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
    for user_id in tokens.get("oauth") or []:
        try:
            store.delete_installation(
                enterprise_id=enterprise_id, team_id=team_id, user_id=user_id, installed_at_or_before=revoked_at
            )
        except Exception:
            logger.exception("deleting the revoked tokens of %s failed", user_id)
    if tokens.get("bot"):
        try:
            store.delete_bot(enterprise_id=enterprise_id, team_id=team_id, installed_at_or_before=revoked_at)
        except Exception:
            logger.exception("deleting the revoked bot token of team %s failed", team_id)
