"""Migration to token rotation: exchange every stored long-lived token for a rotating one (oauth.v2.exchange).

Each result is saved the moment Slack returns it, so the command can be interrupted and run again: a token that
already rotates has a refresh token and is skipped, and Slack's token_already_exchanged is taken as done.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy import select

from .refresher import Pacer
from .rotation import BOT, USER, Slot, TokenKey, TokenManager
from .schema import NONE, STATUS_ACTIVE

__all__ = ["ExchangeReport", "exchange_long_lived_tokens"]

logger = logging.getLogger(__name__)

ALREADY_EXCHANGED = "already_exchanged"


@dataclass
class ExchangeReport:
    """What one run of the migration did."""

    exchanged: int = 0
    already_exchanged: int = 0
    failed: int = 0
    remaining: int = 0


def exchange_long_lived_tokens(
    manager: TokenManager,
    *,
    max_per_minute: float = 50,
    limit: int | None = None,
    stop: threading.Event | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ExchangeReport:
    """Exchange long-lived xoxp-/xoxb- tokens for rotating ones, paced under oauth.v2.exchange's Tier 3 limit;
    on_progress(done, total) is called after each token; `stop` ends the run between two tokens."""
    report = ExchangeReport()
    pacer = Pacer(max_per_minute)
    candidates = _candidates(manager)
    total = len(candidates) if limit is None else min(limit, len(candidates))
    for done, (slot, key, generation) in enumerate(candidates):
        if limit is not None and done >= limit:
            report.remaining = len(candidates) - done
            break
        pacer.wait(stop)
        if stop is not None and stop.is_set():
            report.remaining = len(candidates) - done
            break
        outcome = _exchange_one(manager, slot, key, generation)
        setattr(report, outcome, getattr(report, outcome) + 1)
        if on_progress is not None:
            on_progress(done + 1, total)
    return report


def _candidates(manager: TokenManager) -> list[tuple[Slot, TokenKey, int]]:
    found = []
    with manager.store.engine.connect() as conn:
        for slot in (USER, BOT):
            table = manager.rows.table(slot)
            c = table.c
            rows = conn.execute(
                select(table)
                .where(
                    c.client_id == manager.client_id,
                    c[slot.status] == STATUS_ACTIVE,
                    c[slot.token].is_not(None),
                    c[slot.refresh].is_(None),
                    c[slot.outcome].is_distinct_from(ALREADY_EXCHANGED),
                )
                .order_by(c.id)
            ).all()
            for row in rows:
                key = TokenKey(row.enterprise_id, row.team_id, row.user_id if slot is USER else NONE)
                token = manager.store.unseal(row, slot.token, key.user_id)
                if token and not token.startswith("xoxe."):
                    found.append((slot, key, getattr(row, slot.generation)))
    return found


def _exchange_one(manager: TokenManager, slot: Slot, key: TokenKey, generation: int) -> str:
    current = manager.rows.read(key)
    if current is None or current.generation != generation or current.token is None:
        return "failed"  # changed since the list was made (a reconnect, a revoke): the next run sees it again
    try:
        response = manager.oauth.oauth_v2_exchange(
            client_id=manager.client_id, client_secret=manager._client_secret, token=current.token
        )
    except SlackApiError as error:
        code = error.response.get("error") or "unknown_error"
        outcome = ALREADY_EXCHANGED if code == "token_already_exchanged" else f"exchange_failed:{code}"
        # Over the generation we exchanged: a reconnect or revoke meanwhile is newer and must stay.
        manager.rows.write(key, generation, {slot.outcome: outcome[:64]}, event="exchange_failed", detail=code)
        return "already_exchanged" if code == "token_already_exchanged" else "failed"
    except (SlackClientError, OSError) as error:
        logger.warning("oauth.v2.exchange could not be reached: %s", type(error).__name__)
        return "failed"
    # Slack answers an exchange as it answers a refresh: a rotating token, its refresh token and its lifetime.
    values = manager.rows.refreshed_values(key, response.data, manager.clock())  # type: ignore[arg-type]
    values[slot.outcome] = "exchanged"
    manager.rows.write(key, generation, values, event="exchanged")
    return "exchanged"
