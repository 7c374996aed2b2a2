"""Token rows as an operator sees them: who, where, scopes, expiry, state and the last refresh, never a secret.

Why a module of its own: listing a million connections must neither load them all nor decrypt anything. The queries
here select only columns that hold no secret (no ``*_enc`` column is ever read, so no key ring is needed) and page
by primary key (keyset pagination), so memory stays one page deep however many rows there are.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, and_, func, select, true
from sqlalchemy.engine import Engine

from .schema import NONE, STATUS_ACTIVE, Tables

__all__ = ["TokenDetail", "TokenEvent", "TokenFilter", "TokenSummary", "count_by_state", "read_detail", "iter_tokens"]

USER_KIND, BOT_KIND = "user", "bot"


@dataclass(frozen=True)
class TokenFilter:
    """Which rows to list; None means any."""

    status: str | None = None
    team_id: str | None = None
    user_id: str | None = None
    expires_before: datetime | None = None  # only tokens expiring before this moment (expired ones included)


@dataclass(frozen=True)
class TokenSummary:
    """One token as `tokens list` shows it (no secret: none is read)."""

    kind: str  # user | bot
    enterprise_id: str | None
    team_id: str | None
    user_id: str | None  # None for a bot token
    scopes: tuple[str, ...]
    expires_at: datetime | None
    status: str
    status_reason: str | None
    rotating: bool  # holds a refresh token
    has_token: bool
    last_refreshed_at: datetime | None
    last_refresh_outcome: str | None


@dataclass(frozen=True)
class TokenEvent:
    """One audit event of a token (the audit table never holds a secret)."""

    occurred_at: datetime
    event: str
    detail: str | None


@dataclass(frozen=True)
class TokenDetail:
    """Everything `tokens show` prints about one token."""

    summary: TokenSummary
    generation: int
    lifetime_seconds: int | None
    failures: int
    retry_at: datetime | None
    refresh_owner: str | None  # set while a refresh was sent to Slack and its answer is not committed
    refresh_sent_at: datetime | None
    needed_scopes: tuple[str, ...]
    provided_scopes: tuple[str, ...]
    installed_at: datetime | None
    updated_at: datetime | None
    events: tuple[TokenEvent, ...]
    last_used_at: datetime | None = None  # user tokens: the last use recorded (at most once an hour)
    refresh_ahead: bool = True  # false: set aside as unused, renewed on its next use
    claimed_until: datetime | None = None  # a refresher's lease on it (stores.sweep_claims)
    claimed_by: str | None = None


def _scopes(value: str | None) -> tuple[str, ...]:
    return tuple(s for s in (value or "").split(",") if s)


def _user_columns(u: Table) -> list[Any]:
    c = u.c
    return [
        c.id, c.enterprise_id, c.team_id, c.user_id, c.user_scopes.label("scopes"),
        c.user_token_expires_at.label("expires_at"), c.status, c.status_reason,
        c.user_refresh_token_enc.is_not(None).label("rotating"), c.user_token_enc.is_not(None).label("has_token"),
        c.last_refreshed_at, c.last_refresh_outcome,
    ]  # fmt: skip


def _bot_columns(w: Table) -> list[Any]:
    c = w.c
    return [
        c.id, c.enterprise_id, c.team_id, c.bot_scopes.label("scopes"), c.bot_token_expires_at.label("expires_at"),
        c.bot_status.label("status"), c.bot_refresh_token_enc.is_not(None).label("rotating"),
        c.bot_token_enc.is_not(None).label("has_token"), c.bot_last_refreshed_at.label("last_refreshed_at"),
        c.bot_last_refresh_outcome.label("last_refresh_outcome"),
    ]  # fmt: skip


def _summary(kind: str, row: Any) -> TokenSummary:
    return TokenSummary(
        kind=kind,
        enterprise_id=row.enterprise_id or None,
        team_id=row.team_id or None,
        user_id=row.user_id if kind == USER_KIND else None,
        scopes=_scopes(row.scopes),
        expires_at=row.expires_at,
        status=row.status,
        status_reason=row.status_reason if kind == USER_KIND else None,
        rotating=bool(row.rotating),
        has_token=bool(row.has_token),
        last_refreshed_at=row.last_refreshed_at,
        last_refresh_outcome=row.last_refresh_outcome,
    )


def _where(table: Table, client_id: str, kind: str, wanted: TokenFilter) -> list[ColumnElement[bool]]:
    c = table.c
    status, expires = (c.status, c.user_token_expires_at) if kind == USER_KIND else (c.bot_status, c.bot_token_expires_at)
    clauses: list[ColumnElement[bool]] = [c.client_id == client_id]
    if kind == USER_KIND:
        clauses.append(c.user_token_enc.is_not(None) | (c.status != STATUS_ACTIVE))  # an installer without a user token
    else:
        clauses.append(c.bot_token_enc.is_not(None) | (c.bot_status != STATUS_ACTIVE))  # a workspace that had a bot
    if wanted.status is not None:
        clauses.append(status == wanted.status)
    if wanted.team_id is not None:
        clauses.append(c.team_id == wanted.team_id)
    if wanted.user_id is not None:
        clauses.append(c.user_id == wanted.user_id if kind == USER_KIND else ~true())
    if wanted.expires_before is not None:
        clauses.append(expires < wanted.expires_before)
    return clauses


def iter_tokens(
    engine: Engine,
    tables: Tables,
    client_id: str,
    wanted: TokenFilter = TokenFilter(),
    *,
    bots: bool = False,
    page_size: int = 500,
) -> Iterator[TokenSummary]:
    """Every user token of the client id (then every bot token, with `bots`) that matches, page by page by id."""
    sources: list[tuple[str, Table, list[Any]]] = [(USER_KIND, tables.user_tokens, _user_columns(tables.user_tokens))]
    if bots:
        sources.append((BOT_KIND, tables.workspaces, _bot_columns(tables.workspaces)))
    for kind, table, columns in sources:
        after = 0
        while True:
            query: Select[Any] = (
                select(*columns)
                .where(*_where(table, client_id, kind, wanted), table.c.id > after)
                .order_by(table.c.id)
                .limit(page_size)
            )
            with engine.connect() as conn:  # one short read per page: no transaction held across the whole listing
                rows = conn.execute(query).all()
            for row in rows:
                yield _summary(kind, row)
            if len(rows) < page_size:
                break
            after = rows[-1].id


def read_detail(
    engine: Engine, tables: Tables, client_id: str, *, enterprise_id: str | None, team_id: str | None,
    user_id: str | None, events: int = 10,
) -> TokenDetail | None:  # fmt: skip
    """One person's token (or, without user_id, the workspace's bot token) in detail, with its last audit events."""
    ent, team = enterprise_id or NONE, team_id or NONE
    if user_id:
        u = tables.user_tokens
        c = u.c
        extra = [
            c.generation, c.lifetime_seconds, c.refresh_failures.label("failures"), c.refresh_retry_at.label("retry_at"),
            c.refresh_owner, c.refresh_sent_at, c.needed_scopes, c.provided_scopes, c.installed_at, c.updated_at,
            c.last_used_at, c.refresh_ahead, c.sweep_claimed_until.label("claimed_until"), c.sweep_owner.label("claimed_by"),
        ]  # fmt: skip
        where = and_(c.client_id == client_id, c.enterprise_id == ent, c.team_id == team, c.user_id == user_id)
        query = select(*_user_columns(u), *extra).where(where)
        kind = USER_KIND
    else:
        w = tables.workspaces
        c = w.c
        extra = [
            c.bot_generation.label("generation"), c.bot_lifetime_seconds.label("lifetime_seconds"),
            c.bot_refresh_failures.label("failures"), c.bot_refresh_retry_at.label("retry_at"),
            c.bot_refresh_owner.label("refresh_owner"), c.bot_refresh_sent_at.label("refresh_sent_at"),
            c.bot_installed_at.label("installed_at"), c.updated_at,
            c.bot_sweep_claimed_until.label("claimed_until"), c.bot_sweep_owner.label("claimed_by"),
        ]  # fmt: skip
        query = select(*_bot_columns(w), *extra).where(c.client_id == client_id, c.enterprise_id == ent, c.team_id == team)
        kind = BOT_KIND
    e = tables.token_events.c
    recent = (
        select(e.occurred_at, e.event, e.detail)
        .where(e.client_id == client_id, e.enterprise_id == ent, e.team_id == team, e.user_id == (user_id or NONE))
        .where(e.token_kind == kind)
        .order_by(e.occurred_at.desc(), e.id.desc())
        .limit(events)
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
        history = conn.execute(recent).all() if row is not None else []
    if row is None:
        return None
    return TokenDetail(
        summary=_summary(kind, row),
        generation=row.generation or 0,
        lifetime_seconds=row.lifetime_seconds,
        failures=row.failures or 0,
        retry_at=row.retry_at,
        refresh_owner=row.refresh_owner,
        refresh_sent_at=row.refresh_sent_at,
        needed_scopes=_scopes(getattr(row, "needed_scopes", None)),
        provided_scopes=_scopes(getattr(row, "provided_scopes", None)),
        installed_at=row.installed_at,
        updated_at=row.updated_at,
        events=tuple(TokenEvent(h.occurred_at, h.event, h.detail) for h in reversed(history)),
        last_used_at=getattr(row, "last_used_at", None),
        refresh_ahead=bool(getattr(row, "refresh_ahead", True)),
        claimed_until=row.claimed_until,
        claimed_by=row.claimed_by,
    )


def count_by_state(engine: Engine, tables: Tables) -> dict[tuple[str, str], int]:
    """Tokens per (kind, state) over every client id, for `db check`."""
    u, w = tables.user_tokens.c, tables.workspaces.c
    with engine.connect() as conn:
        users = conn.execute(select(u.status, func.count()).group_by(u.status)).all()
        bots = conn.execute(
            select(w.bot_status, func.count())
            .where(w.bot_token_enc.is_not(None) | (w.bot_status != STATUS_ACTIVE))
            .group_by(w.bot_status)
        ).all()
    counts = {(USER_KIND, status): int(n) for status, n in users}
    counts.update({(BOT_KIND, status): int(n) for status, n in bots})
    return counts
