"""One home for a token row: its reads, its encryption, and its writes, each fenced by the row's generation.

A token lives in a slot: a person's user token (a row of the user table) or a workspace's bot token (columns of the
workspace table). Every slot has a generation counter. Rotations, saves, exchanges and revocations bump it; every
write names the generation it read and lands only if the row still has it, so no stale writer (a re-encryption, a
late refresh, a revoke, a reconnect) can overwrite a newer token. The token manager talks to slots only through
`TokenRows`; nothing else reaches into these columns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, and_, bindparam, or_, select, update

from .database import write_transaction
from .schema import NONE, STATUS_ACTIVE, STATUS_NEEDS_REAUTH, STATUS_REVOKED, UTCDateTime

if TYPE_CHECKING:
    from .installation_store import SQLAlchemyInstallationStore

__all__ = ["BOT", "USER", "Slot", "Snapshot", "TokenKey", "TokenRows"]


@dataclass(frozen=True)
class Slot:
    """The columns that hold one kind of token (a user's, or a workspace's bot)."""

    kind: str
    token: str
    refresh: str
    expires: str
    status: str
    outcome: str
    refreshed_at: str
    sent_owner: str
    sent_at: str
    scopes: str
    generation: str
    lifetime: str
    failures: str
    retry_at: str


USER = Slot(
    "user", "user_token_enc", "user_refresh_token_enc", "user_token_expires_at", "status", "last_refresh_outcome",
    "last_refreshed_at", "refresh_owner", "refresh_sent_at", "user_scopes", "generation", "lifetime_seconds",
    "refresh_failures", "refresh_retry_at",
)  # fmt: skip
BOT = Slot(
    "bot", "bot_token_enc", "bot_refresh_token_enc", "bot_token_expires_at", "bot_status", "bot_last_refresh_outcome",
    "bot_last_refreshed_at", "bot_refresh_owner", "bot_refresh_sent_at", "bot_scopes", "bot_generation",
    "bot_lifetime_seconds", "bot_refresh_failures", "bot_refresh_retry_at",
)  # fmt: skip


@dataclass(frozen=True)
class TokenKey:
    """Whose token: enterprise and team in stored (sentinel) form, and the user, or NONE for the bot."""

    enterprise_id: str
    team_id: str
    user_id: str = NONE

    @classmethod
    def of(cls, enterprise_id: str | None, team_id: str | None, user_id: str | None = None) -> TokenKey:
        return cls(enterprise_id or NONE, team_id or NONE, user_id or NONE)

    @property
    def slot(self) -> Slot:
        return USER if self.user_id else BOT

    def describe(self) -> str:
        who = f"user {self.user_id}" if self.user_id else "bot"
        return f"{who} of team {self.team_id or '-'} (enterprise {self.enterprise_id or '-'})"


@dataclass(frozen=True)
class Snapshot:
    """One read of a token's slot; the refresh token is decrypted only when a refresh needs it."""

    row_id: int
    token: str | None = field(repr=False)
    refresh_cipher: str | None = field(repr=False)
    expires_at: datetime | None
    status: str
    scopes: tuple[str, ...]
    generation: int
    lifetime: int | None = None
    failures: int = 0
    retry_at: datetime | None = None
    sent_owner: str | None = None
    sent_at: datetime | None = None
    outcome: str | None = None
    status_reason: str | None = None
    installed_at: datetime | None = None
    changed_at: datetime | None = None  # the user row's last write: when a revoked or refused token became so
    refreshed_here: bool = False  # set on the state this very call committed, never read from the database
    open_refresh_token: Callable[[], str | None] = field(repr=False, compare=False, default=lambda: None)

    @cached_property
    def refresh_token(self) -> str | None:
        return self.open_refresh_token()

    @property
    def rotating(self) -> bool:
        return self.refresh_cipher is not None and self.expires_at is not None


class TokenRows:
    """Reads, encryption and generation-fenced writes of token slots, for one store (one client id)."""

    def __init__(self, store: SQLAlchemyInstallationStore):
        self.store = store
        self.engine = store.engine
        self.client_id = store.client_id
        self._queries = _Queries(store)
        self._pair = _RawSelect(self._queries.pair, store.engine)

    # -- encryption ---------------------------------------------------------------------------------------------

    def seal(self, key: TokenKey, column: str, value: str | None) -> str | None:
        return self.store.seal(value, key.enterprise_id, key.team_id, key.user_id, column)

    def open(self, key: TokenKey, column: str, cipher: str | None) -> str | None:
        context = self.store.field_context(key.enterprise_id, key.team_id, key.user_id, column)
        return self.store.keyring.decrypt(cipher, context)

    # -- reads --------------------------------------------------------------------------------------------------

    def table(self, slot: Slot) -> Table:
        return self.store.installations if slot is USER else self.store.bots

    def where(self, key: TokenKey) -> Any:
        """The slot's row, as the store selects it."""
        if key.slot is USER:
            return self.store._user_where(key.enterprise_id, key.team_id, key.user_id)
        return self.store._workspace_where(key.enterprise_id, key.team_id)

    def read(self, key: TokenKey) -> Snapshot | None:
        """Read and decrypt the slot (one indexed read)."""
        params = {"client_id": self.client_id, "enterprise_id": key.enterprise_id, "team_id": key.team_id}
        if key.slot is USER:
            params["user_id"] = key.user_id
        with self.engine.connect() as conn:
            row = conn.execute(self._queries.one[key.slot.kind], params).first()
        return None if row is None else self.snapshot(key, row)

    def read_row(self, key: TokenKey) -> Any:
        """The whole row of the slot (for showing a connection), or None."""
        with self.engine.connect() as conn:
            return conn.execute(select(self.table(key.slot)).where(self.where(key))).first()

    def read_for_request(self, key: TokenKey) -> tuple[Snapshot | None, Snapshot | None, Any]:
        """The workspace's bot and one person's token in one indexed read: (bot, user, workspace row)."""
        params = {
            "client_id": self.client_id,
            "enterprise_id": key.enterprise_id,
            "team_id": key.team_id,
            "user_id": key.user_id,
        }
        row = self._pair.first(params)
        if row is None:
            return None, self.read(key) if key.user_id else None, None
        workspace = _Prefixed(row, "w_")
        user = _Prefixed(row, "u_")
        bot_key = TokenKey(key.enterprise_id, key.team_id)
        bot = self.snapshot(bot_key, workspace) if workspace.bot_token_enc is not None else None
        person = self.snapshot(key, user) if key.user_id and user.id is not None else None
        return bot, person, workspace

    def snapshot(self, key: TokenKey, row: Any) -> Snapshot:
        slot = key.slot
        scopes = getattr(row, slot.scopes) or ""
        refresh_cipher = getattr(row, slot.refresh)
        return Snapshot(
            row_id=row.id,
            token=self.open(key, slot.token, getattr(row, slot.token)),
            refresh_cipher=refresh_cipher,
            open_refresh_token=lambda: self.open(key, slot.refresh, refresh_cipher),
            expires_at=getattr(row, slot.expires),
            status=getattr(row, slot.status),
            scopes=tuple(s for s in scopes.split(",") if s),
            generation=getattr(row, slot.generation) or 0,
            lifetime=getattr(row, slot.lifetime, None),
            failures=getattr(row, slot.failures, 0) or 0,
            retry_at=getattr(row, slot.retry_at, None),
            sent_owner=getattr(row, slot.sent_owner, None),
            sent_at=getattr(row, slot.sent_at, None),
            outcome=getattr(row, slot.outcome, None),
            status_reason=getattr(row, "status_reason", None) if slot is USER else None,
            installed_at=getattr(row, "installed_at" if slot is USER else "bot_installed_at", None),
            changed_at=getattr(row, "updated_at", None) if slot is USER else None,
        )

    # -- fenced writes ------------------------------------------------------------------------------------------

    def write(
        self,
        key: TokenKey,
        generation: int | None,
        values: dict[str, Any],
        *,
        conn: Connection | None = None,
        event: str,
        detail: str | None = None,
        conditions: Sequence[Any] = (),
    ) -> bool:
        """Write values to the slot if it still has the generation (None: whatever it has) and meets the conditions;
        True when written."""
        table = self.table(key.slot)
        where = [self.where(key), *conditions]
        if generation is not None:
            where.append(table.c[key.slot.generation] == generation)
        statement = update(table).where(*where).values(values)
        if conn is not None:
            written = conn.execute(statement).rowcount == 1
            if written and event:
                self.record_event(conn, key, event, detail)
            return written
        with write_transaction(self.engine) as own:
            written = own.execute(statement).rowcount == 1
            if written and event:
                self.record_event(own, key, event, detail)
        return written

    def mark_sent(self, key: TokenKey, generation: int, owner: str, now: datetime) -> bool:
        """Record, durably, that a refresh of this generation is about to be sent to Slack."""
        slot = key.slot
        return self.write(key, generation, {slot.sent_owner: owner, slot.sent_at: now}, event="")

    def refresh_failed(
        self, key: TokenKey, generation: int, *, outcome: str, retry_at: datetime | None, count_failure: bool
    ) -> bool:
        """Slack answered without rotating: clear the in-flight mark, record the outcome and when to try again."""
        slot = key.slot
        c = self.table(slot).c
        values: dict[str, Any] = {
            slot.sent_owner: None,
            slot.sent_at: None,
            slot.outcome: outcome[:64],
            slot.retry_at: retry_at,
        }
        if count_failure:
            values[slot.failures] = c[slot.failures] + 1
        return self.write(key, generation, values, event="refresh_failed", detail=outcome)

    def refreshed_values(self, key: TokenKey, data: dict[str, Any], now: datetime) -> dict[str, Any]:
        """The slot's new state after Slack rotated it (tokens sealed, generation bumped)."""
        slot = key.slot
        c = self.table(slot).c
        expires_in = data.get("expires_in")
        values: dict[str, Any] = {
            slot.token: self.seal(key, slot.token, data["access_token"]),
            slot.refresh: self.seal(key, slot.refresh, data.get("refresh_token")),
            slot.expires: now + timedelta(seconds=int(expires_in)) if expires_in is not None else None,
            slot.lifetime: int(expires_in) if expires_in is not None else None,
            slot.refreshed_at: now,
            slot.outcome: "refreshed",
            slot.status: STATUS_ACTIVE,
            slot.failures: 0,
            slot.retry_at: None,
            slot.sent_owner: None,
            slot.sent_at: None,
            slot.generation: c[slot.generation] + 1,
            "updated_at": now,
        }
        if slot is USER:
            values["status_reason"] = None
        if data.get("scope"):
            values[slot.scopes] = data["scope"]
        return values

    def commit_refresh(
        self, key: TokenKey, generation: int, values: dict[str, Any], *, conn: Connection | None = None
    ) -> bool:
        """Store a rotation Slack answered, over the generation it rotated; False when a newer one is there."""
        return self.write(key, generation, values, conn=conn, event="refreshed")

    def set_status(
        self,
        key: TokenKey,
        generation: int | None,
        status: str,
        reason: str,
        *,
        drop_refresh: bool = False,
        drop_token: bool = False,
        bump: bool = True,
        now: datetime,
        installed_at_or_before: datetime | None = None,
        unless_revoked: bool = False,
    ) -> bool:
        """Mark the slot needs_reauth or revoked, over the generation the decision was made on (and, for a revocation
        event, only a grant made before it, and only if not revoked already: a redelivery changes nothing)."""
        slot = key.slot
        c = self.table(slot).c
        values: dict[str, Any] = {slot.status: status, slot.outcome: reason[:64], "updated_at": now}
        if slot is USER:
            values["status_reason"] = reason[:64]
        if drop_refresh:
            values[slot.refresh] = None
        if drop_token:
            values[slot.token] = None
            values[slot.expires] = None
        if bump:
            values[slot.generation] = c[slot.generation] + 1
            values[slot.sent_owner] = None
            values[slot.sent_at] = None
        event = {STATUS_NEEDS_REAUTH: "needs_reauth", STATUS_REVOKED: "revoked"}.get(status, status)
        conditions = []
        if installed_at_or_before is not None and slot is USER:
            conditions.append(c.installed_at <= installed_at_or_before)
        if unless_revoked:
            conditions.append(or_(c[slot.status] != STATUS_REVOKED, c[slot.token].is_not(None)))
        return self.write(key, generation, values, event=event, detail=reason, conditions=conditions)

    def record_scopes(self, key: TokenKey, needed: list[str], provided: list[str]) -> None:
        """Keep what a call lacked (missing_scope's needed and provided) for the reconnect link."""
        with write_transaction(self.engine) as conn:
            if key.slot is USER:
                conn.execute(
                    update(self.store.installations)
                    .where(self.where(key))
                    .values(needed_scopes=",".join(needed), provided_scopes=",".join(provided))
                )
            self.record_event(conn, key, "missing_scope", ",".join(needed))

    def record_event(self, conn: Connection, key: TokenKey, event: str, detail: str | None) -> None:
        self.store.record_event(
            conn, enterprise_key=key.enterprise_id, team_key=key.team_id, user_id=key.user_id or None,
            token_kind=key.slot.kind, event=event, detail=detail,
        )  # fmt: skip


# What authorizing a request reads: the token columns and the ids it reports, nothing else.
_KEY_COLUMNS = ("id", "client_id", "enterprise_id", "team_id")
_WORKSPACE_REQUEST_COLUMNS = (
    *_KEY_COLUMNS, "bot_token_enc", "bot_refresh_token_enc", "bot_token_expires_at", "bot_status", "bot_scopes", "bot_id",
    "bot_user_id", "bot_generation", "bot_lifetime_seconds",
)  # fmt: skip
_USER_REQUEST_COLUMNS = (
    *_KEY_COLUMNS, "user_id", "user_token_enc", "user_refresh_token_enc", "user_token_expires_at", "status",
    "status_reason", "user_scopes", "generation", "lifetime_seconds", "updated_at",
)  # fmt: skip


class _Queries:
    """The hot-path SELECTs, built once with bound parameters (building them per request costs more than running them)."""

    def __init__(self, store: SQLAlchemyInstallationStore):
        w, u = store.bots, store.installations
        same_workspace = [
            w.c.client_id == bindparam("client_id"),
            w.c.enterprise_id == bindparam("enterprise_id"),
            w.c.team_id == bindparam("team_id"),
        ]
        same_user = [
            u.c.client_id == bindparam("client_id"),
            u.c.enterprise_id == bindparam("enterprise_id"),
            u.c.team_id == bindparam("team_id"),
            u.c.user_id == bindparam("user_id"),
        ]
        self.one = {"user": select(u).where(*same_user), "bot": select(w).where(*same_workspace)}
        joined = w.outerjoin(
            u,
            and_(
                u.c.client_id == w.c.client_id,
                u.c.enterprise_id == w.c.enterprise_id,
                u.c.team_id == w.c.team_id,
                u.c.user_id == bindparam("user_id"),
            ),
        )
        self.pair = (
            select(
                *[w.c[name].label(f"w_{name}") for name in _WORKSPACE_REQUEST_COLUMNS],
                *[u.c[name].label(f"u_{name}") for name in _USER_REQUEST_COLUMNS],
            )
            .select_from(joined)
            .where(*same_workspace)
        )


class _RawSelect:
    """A SELECT compiled once for the engine's dialect and run on a pooled DBAPI connection.

    On the request path SQLAlchemy's per-statement execution context cost more than the indexed read itself
    (profiled: about three quarters of authorize), so the one hot query skips it; everything else uses Core.
    """

    def __init__(self, statement: Any, engine: Any):
        compiled = statement.compile(dialect=engine.dialect)
        self.engine = engine
        self.sql = str(compiled)
        self.order = list(compiled.positiontup or []) if compiled.positional else None
        self.names = [column.name for column in statement.selected_columns]
        self.moments = [column.name for column in statement.selected_columns if isinstance(column.type, UTCDateTime)]

    def first(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """The first row as a dict keyed by column label, datetimes as aware UTC, or None."""
        args: Any = [params[name] for name in self.order] if self.order is not None else params
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(self.sql, args)
                values = cursor.fetchone()
            finally:
                cursor.close()
        finally:
            connection.close()  # back to the pool, which rolls back whatever the read opened
        if values is None:
            return None
        row = dict(zip(self.names, values, strict=True))
        for name in self.moments:
            row[name] = _as_utc(row[name])
        return row


def _as_utc(value: Any) -> datetime | None:
    """A stored moment as an aware UTC datetime (SQLite keeps naive ISO text, PostgreSQL an aware timestamp)."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class _Prefixed:
    """Attribute access to the columns of a joined row that carry one prefix."""

    def __init__(self, mapping: Any, prefix: str):
        self._mapping = mapping
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        try:
            return self._mapping[self._prefix + name]
        except KeyError:
            raise AttributeError(name) from None


@lru_cache(maxsize=65536)
def jitter_fraction(key: TokenKey) -> float:
    """A stable number in [0, 1] per token, the same in every process."""
    digest = hashlib.sha256(f"{key.enterprise_id}/{key.team_id}/{key.user_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 0xFFFFFFFF
