"""Adoption: copy what slack_sdk's SQLAlchemyInstallationStore holds into Delegate's store, encrypting the tokens.

Why it is more than a replay of save(): the command may be interrupted and run again, and by then Delegate may have
rotated a token it imported (its refresh token is single-use: the one in slack_sdk's table is spent). Saving the old
row again would overwrite the live token with a dead one. So each side of a row (the person's token, the workspace's
bot token) is written only when Delegate holds nothing for it yet, or when slack_sdk's row is newer: a later grant
(a later installed_at), or the same grant rotated further (a later expiry) by an app still running on slack_sdk.
A person Delegate has deleted (a disconnect) is not brought back by a grant older than the deletion.

Rows are read oldest first, a page at a time by (installed_at, id), so the latest installation of each workspace
and user wins, as it does when slack_sdk's store answers. Each page is one transaction: what Delegate holds for the
page's people and workspaces is read in it (a few indexed SELECTs, the rows locked FOR UPDATE on PostgreSQL, so no
rotation lands between the check and the write), then the newer sides are written with the store's bulk path
(`stores.bulk_save`: the same sealed rows, fences and events as save()). Memory stays bounded by the page. In one
run on a loaded machine, 5,000 rows took 8 s instead of 123 s on SQLite and 10 s instead of 138 s on PostgreSQL
(about 15x). A page that meets a row another process has just inserted (IntegrityError) is imported again one row
at a time, each in its own transaction, as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, and_, func, or_, select
from sqlalchemy.exc import IntegrityError

from .bulk_save import BulkItem, write_chunk
from .database import refresh_statistics, write_transaction
from .installation_store import from_timestamp, to_key
from .schema import NONE, STATUS_ACTIVE

if TYPE_CHECKING:
    from slack_sdk.oauth.installation_store.models.installation import Installation

    from .installation_store import SQLAlchemyInstallationStore

__all__ = ["ImportReport", "count_slack_sdk_rows", "import_from_slack_sdk"]

# Stored moments round-trip through floats and the database's precision; grants and rotations are seconds apart.
_SAME = timedelta(seconds=1)


@dataclass
class ImportReport:
    """What one run imported, and what it left alone because Delegate's copy was as new or newer."""

    installations: int = 0
    bots: int = 0
    skipped: int = 0
    stopped: bool = False


@dataclass(frozen=True)
class _Held:
    """What Delegate holds for one side of a row: when it was granted, until when it lives, and its state."""

    installed_at: datetime | None
    expires_at: datetime | None
    status: str


def count_slack_sdk_rows(source: Any, client_id: str) -> int:
    """How many rows of this client id slack_sdk's two tables hold (one count each)."""
    with source.engine.connect() as conn:
        return sum(
            int(conn.execute(select(func.count()).select_from(t).where(t.c.client_id == client_id)).scalar_one())
            for t in (source.installations, source.bots)
        )


def _pages(source: Any, table: Table, client_id: str, page_size: int) -> Iterator[list[Any]]:
    """The table's rows of the client id, oldest first, a page at a time (keyset on installed_at, id)."""
    c = table.c
    last: tuple[Any, int] | None = None
    while True:
        query = select(table).where(c.client_id == client_id)
        if last is not None:
            query = query.where(or_(c.installed_at > last[0], and_(c.installed_at == last[0], c.id > last[1])))
        with source.engine.connect() as conn:
            rows = conn.execute(query.order_by(c.installed_at, c.id).limit(page_size)).mappings().all()
        if rows:
            yield list(rows)
        if len(rows) < page_size:
            return
        last = (rows[-1]["installed_at"], rows[-1]["id"])


def _is_newer(held: _Held | None, installed_at: float | None, expires_at: float | None) -> bool:
    """Whether slack_sdk's side of a row should replace what Delegate holds."""
    if held is None:
        return True
    granted, expires = from_timestamp(installed_at), from_timestamp(expires_at)
    if granted is not None and held.installed_at is not None and granted - held.installed_at > _SAME:
        return True  # a later grant
    if granted is not None and held.installed_at is not None and held.installed_at - granted > _SAME:
        return False  # an older grant
    # The same grant: newer only if slack_sdk's app rotated it past what Delegate holds (never over a revocation).
    return (
        held.status == STATUS_ACTIVE and expires is not None and held.expires_at is not None
        and expires - held.expires_at > _SAME
    )  # fmt: skip


def _held_user(store: SQLAlchemyInstallationStore, installation: Installation) -> _Held | None:
    ent, team = to_key(installation.enterprise_id), to_key(installation.team_id)
    u = store.installations.c
    with store.engine.connect() as conn:
        row = conn.execute(
            select(u.installed_at, u.user_token_expires_at, u.status).where(
                store._user_where(ent, team, installation.user_id)
            )
        ).first()
        if row is not None:
            return _Held(row.installed_at, row.user_token_expires_at, row.status)
        e = store.tables.token_events.c
        deleted = conn.execute(
            select(func.max(e.occurred_at)).where(
                e.client_id == store.client_id, e.enterprise_id == ent, e.team_id == team,
                e.user_id == (installation.user_id or NONE), e.token_kind == "user", e.event == "deleted",
            )
        ).scalar()  # fmt: skip
    if deleted is None:
        return None
    return _Held(deleted, None, "deleted")  # a grant from before the deletion is not newer; a later one is


def _held_bot(store: SQLAlchemyInstallationStore, enterprise_id: str | None, team_id: str | None) -> _Held | None:
    w = store.bots.c
    with store.engine.connect() as conn:
        row = conn.execute(
            select(w.bot_installed_at, w.bot_token_expires_at, w.bot_status, w.bot_token_enc.is_not(None).label("has"))
            .where(store._workspace_where(to_key(enterprise_id), to_key(team_id)))
        ).first()  # fmt: skip
    if row is None or (not row.has and row.bot_status == STATUS_ACTIVE):
        return None  # no bot yet (the workspace row of a user-only grant)
    return _Held(row.bot_installed_at, row.bot_token_expires_at, row.bot_status)


def import_from_slack_sdk(
    store: SQLAlchemyInstallationStore,
    source: Any,
    *,
    page_size: int = 500,
    on_row: Callable[[bool], None] | None = None,
    stop: threading.Event | None = None,
) -> ImportReport:
    """Copy every installation and bot row of store.client_id from slack_sdk's store, skipping what Delegate holds
    newer; on_row(imported) is called for each row once its page is committed; `stop` ends the run between pages."""
    report = ImportReport()
    for table, is_bot in ((source.installations, False), (source.bots, True)):
        for page in _pages(source, table, store.client_id, page_size):
            if stop is not None and stop.is_set():
                report.stopped = True
                return report
            try:
                with write_transaction(store.engine) as conn:
                    outcomes = _import_page(store, source, conn, page, is_bot)
            except IntegrityError:  # another process inserted one of these rows meanwhile
                outcomes = [
                    _import_bot(store, source, r) if is_bot else _import_installation(store, source, r) for r in page
                ]
            for imported in outcomes:
                if not imported:
                    report.skipped += 1
                elif is_bot:
                    report.bots += 1
                else:
                    report.installations += 1
                if on_row is not None:
                    on_row(imported)
    if report.installations + report.bots:
        refresh_statistics(store.engine, store.metadata)  # the planner's statistics for the rows just written
    return report


def _import_page(
    store: SQLAlchemyInstallationStore, source: Any, conn: Connection, page: list[Any], is_bot: bool
) -> list[bool]:
    """Decide, row by row in order, which sides are newer than what Delegate holds (or what an earlier row of the
    page imported), then write them all; returns whether each row imported something."""
    entities: list[Any] = [source.build_bot_entity(r) if is_bot else source.build_installation_entity(r) for r in page]
    people = {} if is_bot else _held_users(store, conn, entities)
    bots = _held_bots(store, conn, [e for e in entities if e.bot_token])
    items: list[BulkItem] = []
    outcomes: list[bool] = []
    for entity in entities:
        bot_key = (to_key(entity.enterprise_id), to_key(entity.team_id))
        bot_newer = bool(entity.bot_token) and _is_newer(bots.get(bot_key), entity.installed_at, entity.bot_token_expires_at)
        if bot_newer:
            bots[bot_key] = _Held(
                from_timestamp(entity.installed_at), from_timestamp(entity.bot_token_expires_at), STATUS_ACTIVE
            )
        user_newer = False
        if not is_bot:
            user_key = (*bot_key, entity.user_id)
            user_newer = _is_newer(people.get(user_key), entity.installed_at, entity.user_token_expires_at)
            if user_newer:
                people[user_key] = _Held(
                    from_timestamp(entity.installed_at), from_timestamp(entity.user_token_expires_at), STATUS_ACTIVE
                )
        if user_newer:
            # Without a newer bot token, the workspace's names are saved and its bot token is left alone.
            items.append(BulkItem(entity, entity.to_bot() if bot_newer else None))
        elif bot_newer:
            items.append(BulkItem(None, entity if is_bot else entity.to_bot()))
        outcomes.append(user_newer or bot_newer)
    write_chunk(store, conn, items)
    return outcomes


def _held_users(store: SQLAlchemyInstallationStore, conn: Connection, installations: list[Any]) -> dict[Any, _Held]:
    """What Delegate holds for each person of the page (their row, or else when it deleted them), per workspace."""
    u, e = store.installations.c, store.tables.token_events.c
    held: dict[Any, _Held] = {}
    for (ent, team), users in _by_workspace(
        (to_key(i.enterprise_id), to_key(i.team_id), i.user_id) for i in installations
    ).items():
        same = [u.client_id == store.client_id, u.enterprise_id == ent, u.team_id == team, u.user_id.in_(users)]
        for row in conn.execute(
            select(u.user_id, u.installed_at, u.user_token_expires_at, u.status).where(*same).with_for_update()
        ):
            held[(ent, team, row.user_id)] = _Held(row.installed_at, row.user_token_expires_at, row.status)
        gone = [user for user in users if (ent, team, user) not in held]
        if gone:
            deleted = conn.execute(
                select(e.user_id, func.max(e.occurred_at))
                .where(e.client_id == store.client_id, e.enterprise_id == ent, e.team_id == team, e.user_id.in_(gone))
                .where(e.token_kind == "user", e.event == "deleted")
                .group_by(e.user_id)
            )
            for user, moment in deleted:
                held[(ent, team, user)] = _Held(moment, None, "deleted")  # an older grant is not newer; a later one is
    return held


def _held_bots(store: SQLAlchemyInstallationStore, conn: Connection, entities: list[Any]) -> dict[Any, _Held]:
    """What Delegate holds for each workspace's bot of the page (nothing for a row with no bot token yet)."""
    w = store.bots.c
    held: dict[Any, _Held] = {}
    for (ent,), teams in _by_workspace((to_key(b.enterprise_id), to_key(b.team_id)) for b in entities).items():
        for row in conn.execute(
            select(w.team_id, w.bot_installed_at, w.bot_token_expires_at, w.bot_status, w.bot_token_enc.is_not(None))
            .where(w.client_id == store.client_id, w.enterprise_id == ent, w.team_id.in_(teams))
            .with_for_update()
        ):
            team, installed_at, expires_at, status, has = row
            if has or status != STATUS_ACTIVE:
                held[(ent, team)] = _Held(installed_at, expires_at, status)
    return held


def _by_workspace(keys: Iterable[tuple[str, ...]]) -> dict[tuple[str, ...], list[str]]:
    """Keys grouped by all but their last part, the last parts listed once each."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for key in keys:
        group = groups.setdefault(key[:-1], [])
        if key[-1] not in group:
            group.append(key[-1])
    return groups


def _import_installation(store: SQLAlchemyInstallationStore, source: Any, row: Any) -> bool:
    installation: Installation = source.build_installation_entity(row)
    user_newer = _is_newer(_held_user(store, installation), installation.installed_at, installation.user_token_expires_at)
    bot_newer = installation.bot_token is not None and _is_newer(
        _held_bot(store, installation.enterprise_id, installation.team_id),
        installation.installed_at,
        installation.bot_token_expires_at,
    )
    if user_newer:
        if not bot_newer:
            installation.bot_token = None  # the workspace's names are saved, its newer bot token is left alone
        store.save(installation)
    elif bot_newer:
        store.save_bot(installation.to_bot())
    return user_newer or bot_newer


def _import_bot(store: SQLAlchemyInstallationStore, source: Any, row: Any) -> bool:
    bot = source.build_bot_entity(row)
    if not bot.bot_token or not _is_newer(
        _held_bot(store, bot.enterprise_id, bot.team_id), bot.installed_at, bot.bot_token_expires_at
    ):
        return False
    store.save_bot(bot)
    return True
