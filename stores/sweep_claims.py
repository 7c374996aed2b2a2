"""The refresh-ahead sweep's queue: tokens coming due, claimed in batches that no two refreshers share.

A claim is one short write transaction. It reads the next `limit` due tokens in expiry order through the sweep index
(client_id, status, refresh_ahead, expiry), skipping rows another claim is taking (`FOR UPDATE SKIP LOCKED` on
PostgreSQL; on SQLite, `BEGIN IMMEDIATE` makes claims take turns) and rows leased to a refresher. Of those it:

- leases the tokens used within the activity window to this refresher (`sweep_claimed_until`, `sweep_owner`), so
  every other refresher's claim passes them by until the lease ends: a refresher that dies loses nothing, its
  lease lapses by itself;
- sets aside the tokens nobody used within the window (`refresh_ahead` false): they leave the index range the claim
  reads, so they are read once per period of disuse, not on every sweep, and are renewed on their next use instead
  (`stores.usage` sets the flag again). A token never used counts as used when it was granted (`installed_at`).

Nothing a sweep has claimed is read again by it while its lease lasts, so the rows a sweep reads grow with the
tokens due, never with their square. Bot tokens (one per workspace) are always refreshed ahead. The token manager's
per-token lock still guards each refresh: a lease only keeps refreshers from reading the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, false, func, or_, select, true, update

from .database import write_transaction
from .schema import NONE, STATUS_ACTIVE
from .token_rows import BOT, USER, Slot, TokenKey, TokenRows

__all__ = ["Claim", "SweepClaims"]

# Each slot's lease columns: until when it is claimed, and by whom (a token manager's owner string).
_LEASE = {USER.kind: ("sweep_claimed_until", "sweep_owner"), BOT.kind: ("bot_sweep_claimed_until", "bot_sweep_owner")}


@dataclass(frozen=True)
class Claim:
    """What one claim took: tokens leased to this refresher (soonest first), and how many it set aside as unused."""

    keys: list[TokenKey]
    set_aside: int = 0

    @property
    def rows(self) -> int:
        """Rows the claim read (and wrote): when 0, nothing is left to claim."""
        return len(self.keys) + self.set_aside


class SweepClaims:
    """Claims, releases and counts of due tokens for the sweep, on one store's token rows."""

    def __init__(self, rows: TokenRows, owner: str):
        self.rows = rows
        self.owner = owner[:64]
        self.postgres = rows.engine.dialect.name == "postgresql"

    def _due_where(self, slot: Slot, before: datetime, now: datetime) -> list[Any]:
        """Active rotating tokens of this client expiring before the moment, not paused, not leased to anyone."""
        c = self.rows.table(slot).c
        claimed_until = c[_LEASE[slot.kind][0]]
        where = [c.client_id == self.rows.client_id, c[slot.status] == STATUS_ACTIVE]
        if slot is USER:
            where.append(c.refresh_ahead == true())
        return [
            *where,
            c[slot.expires] < before,
            c[slot.refresh].is_not(None),
            or_(c[slot.retry_at].is_(None), c[slot.retry_at] <= now),
            or_(claimed_until.is_(None), claimed_until <= now),
        ]

    @staticmethod
    def _used_since(c: Any, active_since: datetime) -> ColumnElement[bool]:
        """Used, or granted, at or after the moment (a token never used counts as used when it was granted)."""
        return or_(c.last_used_at >= active_since, c.installed_at >= active_since)

    def _due_and_used_where(self, slot: Slot, before: datetime, now: datetime, active_since: datetime) -> list[Any]:
        """What `due` lists: the due tokens, user tokens only if used since `active_since`."""
        where = self._due_where(slot, before, now)
        if slot is USER:
            where.append(self._used_since(self.rows.table(slot).c, active_since))
        return where

    def claim_query(self, slot: Slot, *, before: datetime, now: datetime, active_since: datetime, limit: int) -> Select[Any]:
        """The claim's read: the next `limit` due tokens of the slot in expiry order, through the sweep index, rows
        another claim is taking skipped (PostgreSQL), with whether each was used since `active_since` (users)."""
        table = self.rows.table(slot)
        c = table.c
        columns: list[Any] = [c.id, c.enterprise_id, c.team_id]
        if slot is USER:
            columns += [c.user_id, self._used_since(c, active_since).label("used")]
        query = select(*columns).where(*self._due_where(slot, before, now)).order_by(c[slot.expires]).limit(limit)
        return query.with_for_update(skip_locked=True, of=table) if self.postgres else query

    def claim(
        self, slot: Slot, *, before: datetime, now: datetime, active_since: datetime, lease_until: datetime, limit: int
    ) -> Claim:
        """Lease up to `limit` due tokens of the slot to this refresher, setting aside those unused since
        `active_since` (user tokens only)."""
        table = self.rows.table(slot)
        c = table.c
        claimed_until, claimed_by = _LEASE[slot.kind]
        query = self.claim_query(slot, before=before, now=now, active_since=active_since, limit=limit)
        with write_transaction(self.rows.engine) as conn:
            found = conn.execute(query).all()
            used = [r for r in found if slot is BOT or r.used]
            unused = [r.id for r in found if slot is USER and not r.used]
            if used:
                values = {claimed_until: lease_until, claimed_by: self.owner}
                conn.execute(update(table).where(c.id.in_([r.id for r in used])).values(values))
            if unused:
                conn.execute(update(table).where(c.id.in_(unused)).values(refresh_ahead=false()))
        keys = [TokenKey(r.enterprise_id, r.team_id, r.user_id if slot is USER else NONE) for r in used]
        return Claim(keys=keys, set_aside=len(unused))

    def release(self, keys: Sequence[TokenKey]) -> None:
        """End this refresher's lease on tokens it claimed and will not refresh (it is stopping)."""
        for slot in (USER, BOT):
            mine = [key for key in keys if key.slot is slot]
            if not mine:
                continue
            claimed_until, claimed_by = _LEASE[slot.kind]
            table = self.rows.table(slot)
            with write_transaction(self.rows.engine) as conn:
                for key in mine:
                    conn.execute(
                        update(table)
                        .where(self.rows.where(key), table.c[claimed_by] == self.owner)
                        .values({claimed_until: None, claimed_by: None})
                    )

    def due(self, *, before: datetime, now: datetime, active_since: datetime, limit: int) -> list[TokenKey]:
        """The tokens a claim would take next (user tokens used since `active_since`, then bots), soonest first; a
        read that leases and sets aside nothing."""
        keys: list[TokenKey] = []
        with self.rows.engine.connect() as conn:
            for slot in (USER, BOT):
                keys.extend(self._listed(conn, slot, before, now, active_since, limit))
        return keys[:limit]

    def _listed(
        self, conn: Connection, slot: Slot, before: datetime, now: datetime, active_since: datetime, limit: int
    ) -> list[TokenKey]:
        c = self.rows.table(slot).c
        where = self._due_and_used_where(slot, before, now, active_since)
        columns = [c.enterprise_id, c.team_id, *([c.user_id] if slot is USER else [])]
        rows = conn.execute(select(*columns).where(*where).order_by(c[slot.expires]).limit(limit)).all()
        return [TokenKey(r.enterprise_id, r.team_id, r.user_id if slot is USER else NONE) for r in rows]

    def count_due(self, *, before: datetime, now: datetime, active_since: datetime) -> int:
        """How many tokens `due` would list without a limit (one count per table)."""
        total = 0
        with self.rows.engine.connect() as conn:
            for slot in (USER, BOT):
                where = self._due_and_used_where(slot, before, now, active_since)
                count = select(func.count()).select_from(self.rows.table(slot)).where(*where)
                total += int(conn.execute(count).scalar_one())
        return total
