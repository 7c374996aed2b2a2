"""Migration to token rotation: exchange every stored long-lived token for a rotating one (oauth.v2.exchange).

Each result is saved the moment Slack returns it, so the command can be interrupted and run again: a token that
already rotates has a refresh token and is skipped, and Slack's token_already_exchanged is taken as done.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy import select, update

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
) -> ExchangeReport:
    """Exchange long-lived xoxp-/xoxb- tokens for rotating ones, paced under oauth.v2.exchange's Tier 3 limit."""
    report = ExchangeReport()
    pacer = Pacer(max_per_minute)
    candidates = _candidates(manager)
    for done, (slot, key, row_id, cipher) in enumerate(candidates):
        if (stop is not None and stop.is_set()) or (limit is not None and done >= limit):
            report.remaining = len(candidates) - done
            break
        pacer.wait(stop)
        outcome = _exchange_one(manager, slot, key, row_id, cipher)
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def _candidates(manager: TokenManager) -> list[tuple[Slot, TokenKey, int, str]]:
    found = []
    with manager.store.engine.connect() as conn:
        for slot in (USER, BOT):
            table = manager._table(slot)
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
                    found.append((slot, key, row.id, getattr(row, slot.token)))
    return found


def _exchange_one(manager: TokenManager, slot: Slot, key: TokenKey, row_id: int, cipher: str) -> str:
    token = manager.store.keyring.decrypt(
        cipher, manager.store.field_context(key.enterprise_id, key.team_id, key.user_id, slot.token)
    )
    try:
        response = manager.oauth.oauth_v2_exchange(
            client_id=manager.client_id, client_secret=manager._client_secret, token=token or ""
        )
    except SlackApiError as error:
        code = error.response.get("error") or "unknown_error"
        outcome = ALREADY_EXCHANGED if code == "token_already_exchanged" else f"exchange_failed:{code}"
        _record(manager, slot, key, row_id, cipher, {slot.outcome: outcome[:64]}, "exchange_failed", code)
        return "already_exchanged" if code == "token_already_exchanged" else "failed"
    except (SlackClientError, OSError) as error:
        logger.warning("oauth.v2.exchange could not be reached: %s", type(error).__name__)
        return "failed"
    data: dict[str, Any] = response.data  # type: ignore[assignment]
    now = manager.clock()
    seal = manager.store.seal
    values = {
        slot.token: seal(data["access_token"], key.enterprise_id, key.team_id, key.user_id, slot.token),
        slot.refresh: seal(data.get("refresh_token"), key.enterprise_id, key.team_id, key.user_id, slot.refresh),
        slot.expires: now + timedelta(seconds=int(data["expires_in"])) if data.get("expires_in") else None,
        slot.refreshed_at: now,
        slot.outcome: "exchanged",
        "updated_at": now,
    }
    _record(manager, slot, key, row_id, cipher, values, "exchanged", None)
    return "exchanged"


def _record(
    manager: TokenManager,
    slot: Slot,
    key: TokenKey,
    row_id: int,
    cipher: str,
    values: dict[str, Any],
    event: str,
    detail: str | None,
) -> None:
    table = manager._table(slot)
    c = table.c
    with manager.store.engine.begin() as conn:
        # Only over the token we exchanged: a reconnect meanwhile has newer tokens that must stay.
        if conn.execute(update(table).where(c.id == row_id, c[slot.token] == cipher).values(values)).rowcount:
            manager.store.record_event(
                conn, enterprise_key=key.enterprise_id, team_key=key.team_id, user_id=key.user_id or None,
                token_kind=slot.kind, event=event, detail=detail,
            )  # fmt: skip
