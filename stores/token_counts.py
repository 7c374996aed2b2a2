"""How many tokens the store holds, by kind and state, and how many are due within the refresh-ahead window.

One grouped statement over both tables (a UNION ALL of two GROUP BYs), for a metrics scrape or an operator: it reads
no ciphertext and decrypts nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import and_, case, func, literal_column, or_, select, true, union_all

from .schema import STATUS_ACTIVE
from .token_rows import BOT, USER

if TYPE_CHECKING:
    from .installation_store import SQLAlchemyInstallationStore

__all__ = ["TokenCount", "count_tokens"]


@dataclass(frozen=True)
class TokenCount:
    """Tokens of one kind ("user" or "bot") in one state; `expiring`: active rotating ones expiring before the
    window ends (expired ones included: the refresher should have renewed them), except user tokens the refresher set
    aside as unused (renewed on their next use, not ahead)."""

    kind: str
    state: str
    tokens: int
    expiring: int


def count_tokens(store: SQLAlchemyInstallationStore, *, now: datetime, window: timedelta) -> list[TokenCount]:
    """Every (kind, state) with at least one token, in one statement. A row that never held a token of that kind
    (a workspace installed without a bot, a bot-only install's empty user row) is not counted."""
    horizon = now + window
    selects = []
    for slot, table in ((USER, store.installations), (BOT, store.bots)):
        c = table.c
        due = and_(c[slot.status] == STATUS_ACTIVE, c[slot.refresh].is_not(None), c[slot.expires] < horizon)
        if slot is USER:
            due = and_(due, c.refresh_ahead == true())
        selects.append(
            select(
                literal_column(f"'{slot.kind}'").label("kind"),  # a constant of ours, typed by the server
                c[slot.status].label("state"),
                func.count().label("tokens"),
                func.coalesce(func.sum(case((due, 1), else_=0)), 0).label("expiring"),
            )
            .where(c.client_id == store.client_id, or_(c[slot.token].is_not(None), c[slot.status] != STATUS_ACTIVE))
            .group_by(c[slot.status])
        )
    with store.engine.connect() as conn:
        rows = conn.execute(union_all(*selects)).all()
    return [TokenCount(str(r.kind), str(r.state), int(r.tokens), int(r.expiring)) for r in rows]
