"""app_uninstalled: forget the workspace's bot and every person's tokens, unless the app was installed again since.

Bolt's own handler (App.enable_token_revocation_listeners) is replaced for the reasons listeners/events/
tokens_revoked.py gives: acknowledged first, idempotent, and a reinstall saved after the event's time is kept.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, BoltContext

from ..context import RevocationStore, clock_of, event_moment, installation_key

logger = logging.getLogger(__name__)


def app_uninstalled_ack(ack: Ack) -> None:
    ack()


def app_uninstalled_callback(body: dict[str, Any], context: BoltContext, store: RevocationStore | None = None) -> None:
    if store is None:
        logger.error("app_uninstalled: the app has no installation store, nothing deleted")
        return
    enterprise_id, team_id = installation_key(context)
    uninstalled_at = event_moment(body, clock_of(context))
    try:
        store.delete_all(enterprise_id=enterprise_id, team_id=team_id, installed_at_or_before=uninstalled_at)
    except Exception:
        logger.exception("forgetting the tokens of uninstalled team %s failed", team_id)
        return
    logger.info("Delegate was uninstalled from team %s: its tokens are deleted", team_id)
