"""The token manager: a fresh token on demand, refreshed exactly once per token across threads, processes and hosts.

How one refresh is made single-flight:
- within a process, one lock per token: the first thread refreshes, the others wait and then re-read the row;
- across processes and hosts, a lease on the row: an UPDATE that succeeds only if nobody holds an unexpired lease
  and the refresh token is still the one the caller read. The holder calls Slack, commits the new access token,
  refresh token and expiry, and only then returns them; the others poll the row until it changes. A holder that
  dies leaves a lease that simply expires.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.web import WebClient
from sqlalchemy import Table, and_, bindparam, func, or_, select, update

from .errors import (
    MissingScope,
    NeedsReauth,
    NotConnected,
    RefreshTimeout,
    SlackUnavailable,
    TokenManagerConfigError,
    TokenRevoked,
)
from .installation_store import SQLAlchemyInstallationStore, to_key, to_timestamp
from .schema import NONE, STATUS_ACTIVE, STATUS_NEEDS_REAUTH, STATUS_REVOKED, UTCDateTime, utcnow

__all__ = ["ConnectionInfo", "FreshToken", "TokenKey", "TokenManager"]

logger = logging.getLogger(__name__)

# Slack's answers to a refresh, by what they mean for the stored token.
REAUTH_ERRORS = frozenset({"invalid_refresh_token", "invalid_grant", "invalid_auth", "not_authed"})
REVOKED_ERRORS = frozenset({"token_revoked", "account_inactive", "tokens_revoked", "app_uninstalled", "user_not_found"})
CONFIG_ERRORS = frozenset({"invalid_client_id", "bad_client_secret", "invalid_client", "invalid_grant_type"})


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
    lease_owner: str
    lease_expires: str
    scopes: str


USER = Slot(
    "user", "user_token_enc", "user_refresh_token_enc", "user_token_expires_at", "status", "last_refresh_outcome",
    "last_refreshed_at", "refresh_owner", "refresh_sent_at", "user_scopes",
)  # fmt: skip
BOT = Slot(
    "bot", "bot_token_enc", "bot_refresh_token_enc", "bot_token_expires_at", "bot_status", "bot_last_refresh_outcome",
    "bot_last_refreshed_at", "bot_refresh_owner", "bot_refresh_sent_at", "bot_scopes",
)  # fmt: skip


@dataclass(frozen=True)
class TokenKey:
    """Whose token: enterprise and team in stored (sentinel) form, and the user, or NONE for the bot."""

    enterprise_id: str
    team_id: str
    user_id: str = NONE

    @classmethod
    def of(cls, enterprise_id: str | None, team_id: str | None, user_id: str | None = None) -> TokenKey:
        return cls(to_key(enterprise_id), to_key(team_id), user_id or NONE)

    @property
    def slot(self) -> Slot:
        return USER if self.user_id else BOT


@dataclass(frozen=True)
class Snapshot:
    """One read of a token's row; the refresh token is decrypted only when a refresh needs it."""

    row_id: int
    token: str | None
    refresh_cipher: str | None
    expires_at: datetime | None
    status: str
    scopes: tuple[str, ...]
    row: Any = field(repr=False)
    open_refresh_token: Callable[[], str | None] = field(repr=False, compare=False, default=lambda: None)

    @cached_property
    def refresh_token(self) -> str | None:
        return self.open_refresh_token()


@dataclass(frozen=True)
class FreshToken:
    """A token that is valid now, with what it may do."""

    token: str = field(repr=False)
    scopes: tuple[str, ...]
    expires_at: datetime | None
    key: TokenKey


@dataclass(frozen=True)
class ConnectionInfo:
    """What Delegate knows of one person's connection, for showing it to them (no secrets)."""

    user_id: str
    team_id: str | None
    enterprise_id: str | None
    status: str
    status_reason: str | None
    scopes: tuple[str, ...]
    expires_at: datetime | None
    last_refreshed_at: datetime | None
    last_refresh_outcome: str | None
    installed_at: datetime | None
    needed_scopes: tuple[str, ...]
    rotating: bool


class TokenManager:
    """Hands out fresh user and bot tokens, refreshing each one at most once however many workers ask."""

    def __init__(
        self,
        store: SQLAlchemyInstallationStore,
        *,
        client_secret: str,
        client_id: str | None = None,
        api_url: str = "https://slack.com/api/",
        refresh_margin: timedelta = timedelta(hours=2),
        margin_jitter: timedelta = timedelta(minutes=10),
        inline_margin: timedelta = timedelta(minutes=5),
        lease: timedelta = timedelta(seconds=60),
        wait_timeout: timedelta = timedelta(seconds=30),
        poll_interval: float = 0.05,
        background_refresh: bool = True,
        clock: Callable[[], datetime] = utcnow,
        oauth_client: WebClient | None = None,
        http_timeout: int = 10,
    ):
        self.store = store
        self.client_id = client_id or store.client_id
        self._client_secret = client_secret
        self.api_url = api_url
        self.refresh_margin = refresh_margin
        self.margin_jitter = margin_jitter
        self.inline_margin = inline_margin
        self.lease = lease
        self.wait_timeout = wait_timeout
        self.poll_interval = poll_interval
        self.clock = clock
        self.owner = f"{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.oauth = oauth_client or WebClient(
            base_url=api_url,
            timeout=http_timeout,
            retry_handlers=[
                ConnectionErrorRetryHandler(max_retry_count=1),
                RateLimitErrorRetryHandler(max_retry_count=2),
                ServerErrorRetryHandler(max_retry_count=2),
            ],
        )
        self._queries = _Queries(store)
        self._pair = _RawSelect(self._queries.pair, store.engine)
        self._locks: dict[TokenKey, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._background = (
            ThreadPoolExecutor(max_workers=2, thread_name_prefix="delegate-refresh") if background_refresh else None
        )
        self._scheduled: set[TokenKey] = set()

    def __repr__(self) -> str:
        return f"TokenManager(client_id={self.client_id!r}, owner={self.owner!r})"

    def close(self) -> None:
        """Stop the background refresh threads (waiting for refreshes in flight)."""
        if self._background is not None:
            self._background.shutdown(wait=True)

    # -- public API -----------------------------------------------------------------------------------------

    def fresh_user_token(self, *, enterprise_id: str | None, team_id: str | None, user_id: str) -> FreshToken:
        """The person's valid token: one indexed read, and a refresh only when it is about to expire."""
        if not user_id:
            raise NotConnected("no user to act as", user_id=user_id)
        return self.fresh_token(TokenKey.of(enterprise_id, team_id, user_id))

    def fresh_bot_token(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> FreshToken:
        """The workspace's (or org's) valid bot token."""
        return self.fresh_token(TokenKey.of(enterprise_id, None if is_enterprise_install else team_id))

    def fresh_token(self, key: TokenKey, snapshot: Snapshot | None = None) -> FreshToken:
        """A valid token for the key; pass a snapshot already read to spare the read."""
        snapshot = snapshot if snapshot is not None else self.read(key)
        self._raise_if_unusable(key, snapshot)
        assert snapshot is not None and snapshot.token is not None
        if snapshot.refresh_cipher is None or snapshot.expires_at is None:
            return self._fresh(key, snapshot)  # a token that does not rotate
        remaining = snapshot.expires_at - self.clock()
        if remaining > self.margin_for(key):
            return self._fresh(key, snapshot)
        if remaining > self.inline_margin and self._background is not None:
            self._schedule(key, snapshot)
            return self._fresh(key, snapshot)
        return self._fresh(key, self.refresh(key, snapshot))

    def refresh_after_expired(self, key: TokenKey, used_token: str) -> FreshToken:
        """Slack said the token we used has expired: refresh it, unless someone already has."""
        snapshot = self.read(key)
        self._raise_if_unusable(key, snapshot)
        assert snapshot is not None
        if snapshot.token != used_token:
            return self._fresh(key, snapshot)
        return self._fresh(key, self.refresh(key, snapshot, force=True))

    def newer_token(self, key: TokenKey, used_token: str) -> FreshToken | None:
        """The stored token if it differs from the one a failed call used (rotated or reconnected meanwhile), else None."""
        snapshot = self.read(key)
        if snapshot is None or snapshot.token in (None, used_token) or snapshot.status != STATUS_ACTIVE:
            return None
        return self._fresh(key, snapshot)

    def margin_for(self, key: TokenKey) -> timedelta:
        """The refresh margin for this token, spread by a stable jitter so tokens do not all refresh at once."""
        return self.refresh_margin + self.margin_jitter * (2 * _jitter_fraction(key) - 1)

    # -- reading ------------------------------------------------------------------------------------------

    def _table(self, slot: Slot) -> Table:
        return self.store.installations if slot is USER else self.store.bots

    def _where(self, key: TokenKey) -> Any:
        if key.slot is USER:
            return self.store._user_where(key.enterprise_id, key.team_id, key.user_id)
        return self.store._workspace_where(key.enterprise_id, key.team_id)

    def read(self, key: TokenKey) -> Snapshot | None:
        """Read and decrypt the token's row (one indexed read)."""
        params = {"client_id": self.client_id, "enterprise_id": key.enterprise_id, "team_id": key.team_id}
        if key.slot is USER:
            params["user_id"] = key.user_id
        with self.store.engine.connect() as conn:
            row = conn.execute(self._queries.one[key.slot.kind], params).first()
        return None if row is None else self._snapshot(key, row)

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
        bot = self._snapshot(bot_key, workspace) if workspace.bot_token_enc is not None else None
        person = self._snapshot(key, user) if key.user_id and user.id is not None else None
        return bot, person, workspace

    def _snapshot(self, key: TokenKey, row: Any) -> Snapshot:
        slot = key.slot
        user = key.user_id
        scopes = getattr(row, slot.scopes) or ""
        return Snapshot(
            row_id=row.id,
            token=self.store.unseal(row, slot.token, user),
            refresh_cipher=getattr(row, slot.refresh),
            open_refresh_token=lambda: self.store.unseal(row, slot.refresh, user),
            expires_at=getattr(row, slot.expires),
            status=getattr(row, slot.status),
            scopes=tuple(s for s in scopes.split(",") if s),
            row=row,
        )

    def _fresh(self, key: TokenKey, snapshot: Snapshot) -> FreshToken:
        assert snapshot.token is not None
        return FreshToken(token=snapshot.token, scopes=snapshot.scopes, expires_at=snapshot.expires_at, key=key)

    def _raise_if_unusable(self, key: TokenKey, snapshot: Snapshot | None) -> None:
        who = key.user_id or "the bot"
        if snapshot is None:
            raise NotConnected(f"no token stored for {who}", user_id=key.user_id)
        if snapshot.status == STATUS_NEEDS_REAUTH:
            raise NeedsReauth(
                f"Slack no longer accepts the stored token of {who}; reconnect to continue",
                user_id=key.user_id,
                reason=getattr(snapshot.row, "status_reason", None) if key.slot is USER else None,
            )
        if snapshot.status == STATUS_REVOKED or snapshot.token is None:
            raise TokenRevoked(f"the token of {who} was revoked", user_id=key.user_id)

    # -- refreshing -----------------------------------------------------------------------------------------

    def _schedule(self, key: TokenKey, snapshot: Snapshot) -> None:
        assert self._background is not None
        with self._locks_guard:
            if key in self._scheduled:
                return
            self._scheduled.add(key)

        def run() -> None:
            try:
                self.refresh(key, snapshot)
            except Exception:  # noqa: BLE001 - a background refresh must never take the worker down
                logger.exception("background refresh failed for %s", _describe(key))
            finally:
                with self._locks_guard:
                    self._scheduled.discard(key)

        self._background.submit(run)

    @contextmanager
    def _local_turn(self, key: TokenKey) -> Iterator[None]:
        with self._locks_guard:
            lock = self._locks.setdefault(key, threading.Lock())
        if not lock.acquire(timeout=self.wait_timeout.total_seconds()):
            raise RefreshTimeout(f"timed out waiting for another thread's refresh of {_describe(key)}", user_id=key.user_id)
        try:
            yield
        finally:
            lock.release()

    def refresh(self, key: TokenKey, seen: Snapshot, *, force: bool = False) -> Snapshot:
        """Refresh the token unless another worker already has; returns the committed fresh row."""
        deadline = time.monotonic() + self.wait_timeout.total_seconds()
        with self._local_turn(key):
            while True:
                current = self.read(key)
                self._raise_if_unusable(key, current)
                assert current is not None
                if not self._still_needs_refresh(key, current, seen, force):
                    return current
                if current.refresh_cipher is None:
                    raise NeedsReauth(f"{_describe(key)} has no refresh token left", user_id=key.user_id)
                if self._acquire_lease(key, current):
                    return self._refresh_holding_lease(key, current)
                if time.monotonic() > deadline:
                    raise RefreshTimeout(
                        f"timed out waiting for another worker's refresh of {_describe(key)}", user_id=key.user_id
                    )
                time.sleep(self.poll_interval)

    def _still_needs_refresh(self, key: TokenKey, current: Snapshot, seen: Snapshot, force: bool) -> bool:
        if force:
            return current.token == seen.token
        if current.expires_at is None:
            return False
        return current.expires_at - self.clock() <= self.margin_for(key)

    def _lease_now(self) -> Any:
        """The clock leases are read and written by: the database's own on PostgreSQL, where processes on hosts
        whose clocks disagree share the rows; this process's on SQLite, which lives on a single host."""
        return func.now() if self.store.engine.dialect.name == "postgresql" else self.clock()

    def _acquire_lease(self, key: TokenKey, current: Snapshot) -> bool:
        slot, table = key.slot, self._table(key.slot)
        now = self._lease_now()
        c = table.c
        statement = (
            update(table)
            .where(
                c.id == current.row_id,
                c[slot.refresh] == current.refresh_cipher,
                or_(c[slot.lease_owner].is_(None), c[slot.lease_expires] < now),
            )
            .values({slot.lease_owner: self.owner, slot.lease_expires: now + self.lease})
        )
        with self.store.engine.begin() as conn:
            return conn.execute(statement).rowcount == 1

    def _refresh_holding_lease(self, key: TokenKey, current: Snapshot) -> Snapshot:
        try:
            response = self.oauth.oauth_v2_access(
                client_id=self.client_id,
                client_secret=self._client_secret,
                grant_type="refresh_token",
                refresh_token=current.refresh_token,
            )
        except SlackApiError as error:
            return self._refresh_failed(
                key, current, error.response.get("error") or "unknown_error", error.response.status_code
            )
        except (SlackClientError, OSError) as error:  # connection refused, reset, dropped, timed out
            return self._refresh_failed(key, current, f"connection_error:{type(error).__name__}", None)
        return self._commit_refresh(key, current, response.data)  # type: ignore[arg-type]

    def _commit_refresh(self, key: TokenKey, current: Snapshot, data: dict[str, Any]) -> Snapshot:
        slot, table = key.slot, self._table(key.slot)
        now = self.clock()
        expires_in = data.get("expires_in")
        values: dict[str, Any] = {
            slot.token: self.store.seal(data["access_token"], key.enterprise_id, key.team_id, key.user_id, slot.token),
            slot.refresh: self.store.seal(
                data.get("refresh_token"), key.enterprise_id, key.team_id, key.user_id, slot.refresh
            ),
            slot.expires: now + timedelta(seconds=int(expires_in)) if expires_in is not None else None,
            slot.refreshed_at: now,
            slot.outcome: "refreshed",
            slot.lease_owner: None,
            slot.lease_expires: None,
            "updated_at": now,
        }
        if data.get("scope"):
            values[slot.scopes] = data["scope"]
        if slot is USER:
            values["refresh_failures"] = 0
        c = table.c
        with self.store.engine.begin() as conn:
            # The generation we refreshed: committed even if our lease ran out, since Slack has already rotated it.
            written = conn.execute(
                update(table).where(c.id == current.row_id, c[slot.refresh] == current.refresh_cipher).values(values)
            ).rowcount
            if written:
                self.store.record_event(
                    conn, enterprise_key=key.enterprise_id, team_key=key.team_id, user_id=key.user_id or None,
                    token_kind=slot.kind, event="refreshed",
                )  # fmt: skip
        if not written:
            logger.warning("refreshed %s but another worker had already rotated it; keeping theirs", _describe(key))
        fresh = self.read(key)
        self._raise_if_unusable(key, fresh)
        assert fresh is not None
        return fresh

    def _refresh_failed(self, key: TokenKey, current: Snapshot, code: str, http_status: int | None) -> Snapshot:
        if code in REAUTH_ERRORS:
            self._set_status(key, current, STATUS_NEEDS_REAUTH, code, drop_refresh=True)
            raise NeedsReauth(
                f"Slack refused to refresh the token of {key.user_id or 'the bot'} ({code}); reconnect to continue",
                user_id=key.user_id,
                reason=code,
            )
        if code in REVOKED_ERRORS:
            self._set_status(key, current, STATUS_REVOKED, code, drop_refresh=True, drop_token=True)
            raise TokenRevoked(
                f"the token of {key.user_id or 'the bot'} was revoked ({code})", user_id=key.user_id, reason=code
            )
        self._release_lease(key, current, code)
        if code in CONFIG_ERRORS:
            logger.error("Slack refused the app's client credentials while refreshing a token: %s", code)
            raise TokenManagerConfigError(f"Slack refused the app's client credentials ({code})", reason=code)
        # Transient (429, 5xx, connection): the old token stays in use while it is still valid.
        logger.warning("refresh of %s failed for a transient reason: %s (HTTP %s)", _describe(key), code, http_status)
        if current.expires_at is not None and current.expires_at > self.clock():
            return current
        raise SlackUnavailable(
            f"Slack could not refresh the token of {key.user_id or 'the bot'} right now ({code}); try again shortly",
            user_id=key.user_id,
            reason=code,
        )

    def _release_lease(self, key: TokenKey, current: Snapshot, outcome: str) -> None:
        slot, table = key.slot, self._table(key.slot)
        c = table.c
        values: dict[str, Any] = {slot.lease_owner: None, slot.lease_expires: None, slot.outcome: outcome[:64]}
        if slot is USER:
            values["refresh_failures"] = c.refresh_failures + 1
        with self.store.engine.begin() as conn:
            conn.execute(update(table).where(c.id == current.row_id, c[slot.lease_owner] == self.owner).values(values))
            self.store.record_event(
                conn, enterprise_key=key.enterprise_id, team_key=key.team_id, user_id=key.user_id or None,
                token_kind=slot.kind, event="refresh_failed", detail=outcome,
            )  # fmt: skip

    def _set_status(
        self,
        key: TokenKey,
        current: Snapshot | None,
        status: str,
        reason: str,
        *,
        drop_refresh: bool = False,
        drop_token: bool = False,
    ) -> None:
        slot, table = key.slot, self._table(key.slot)
        c = table.c
        values: dict[str, Any] = {
            slot.status: status,
            slot.outcome: reason[:64],
            slot.lease_owner: None,
            slot.lease_expires: None,
            "updated_at": self.clock(),
        }
        if slot is USER:
            values["status_reason"] = reason[:64]
        if drop_refresh:
            values[slot.refresh] = None
        if drop_token:
            values[slot.token] = None
            values[slot.expires] = None
        where = [self._where(key)]
        if current is not None and status == STATUS_NEEDS_REAUTH:
            where.append(c[slot.refresh] == current.refresh_cipher)  # unless a newer generation was committed meanwhile
        with self.store.engine.begin() as conn:
            if conn.execute(update(table).where(and_(*where)).values(values)).rowcount:
                event = {STATUS_NEEDS_REAUTH: "needs_reauth", STATUS_REVOKED: "revoked"}.get(status, status)
                self.store.record_event(
                    conn, enterprise_key=key.enterprise_id, team_key=key.team_id, user_id=key.user_id or None,
                    token_kind=slot.kind, event=event, detail=reason,
                )  # fmt: skip

    # -- what API calls taught us ----------------------------------------------------------------------------

    def record_api_error(self, key: TokenKey, code: str, response: dict[str, Any] | None = None) -> None:
        """Act on an error Slack gave for a call made with this token; raises the matching TokenError."""
        who = key.user_id or "the bot"
        if code in ("token_revoked", "account_inactive"):
            self._set_status(key, None, STATUS_REVOKED, code, drop_refresh=True, drop_token=True)
            raise TokenRevoked(
                f"Slack says the token of {who} is no longer valid ({code})", user_id=key.user_id, reason=code
            )
        if code in ("invalid_auth", "not_authed"):
            self._set_status(key, None, STATUS_NEEDS_REAUTH, code)
            raise NeedsReauth(f"Slack does not accept the token of {who} ({code})", user_id=key.user_id, reason=code)
        if code == "missing_scope":
            needed = _scope_list((response or {}).get("needed"))
            provided = _scope_list((response or {}).get("provided"))
            with self.store.engine.begin() as conn:
                if key.slot is USER:
                    conn.execute(
                        update(self.store.installations)
                        .where(self._where(key))
                        .values(needed_scopes=",".join(needed), provided_scopes=",".join(provided))
                    )
                self.store.record_event(
                    conn, enterprise_key=key.enterprise_id, team_key=key.team_id, user_id=key.user_id or None,
                    token_kind=key.slot.kind, event="missing_scope", detail=",".join(needed),
                )  # fmt: skip
            raise MissingScope(
                f"the token of {who} lacks the scope(s) {', '.join(needed) or '(unknown)'}",
                needed=needed,
                provided=provided,
                user_id=key.user_id,
            )

    def forget_user(self, *, enterprise_id: str | None, team_id: str | None, user_id: str, reason: str) -> None:
        """Mark a person's tokens revoked and drop them (user deactivated, tokens_revoked event, disconnect)."""
        key = TokenKey.of(enterprise_id, team_id, user_id)
        self._set_status(key, None, STATUS_REVOKED, reason, drop_refresh=True, drop_token=True)

    def connection_info(self, *, enterprise_id: str | None, team_id: str | None, user_id: str) -> ConnectionInfo | None:
        """The person's connection as stored, or None when they never connected (or disconnected)."""
        key = TokenKey.of(enterprise_id, team_id, user_id)
        with self.store.engine.connect() as conn:
            row = conn.execute(select(self.store.installations).where(self._where(key))).first()
        if row is None or (row.user_token_enc is None and row.status == STATUS_ACTIVE):
            return None
        return ConnectionInfo(
            user_id=user_id,
            team_id=team_id,
            enterprise_id=enterprise_id,
            status=row.status,
            status_reason=row.status_reason,
            scopes=tuple(_scope_list(row.user_scopes)),
            expires_at=row.user_token_expires_at,
            last_refreshed_at=row.last_refreshed_at,
            last_refresh_outcome=row.last_refresh_outcome,
            installed_at=row.installed_at,
            needed_scopes=tuple(_scope_list(row.needed_scopes)),
            rotating=row.user_refresh_token_enc is not None,
        )

    def disconnect(self, *, enterprise_id: str | None, team_id: str | None, user_id: str) -> bool:
        """Revoke the person's token at Slack (auth.revoke) and delete it here; True when Slack confirmed."""
        key = TokenKey.of(enterprise_id, team_id, user_id)
        snapshot = self.read(key)
        revoked_at_slack = False
        if snapshot is not None and snapshot.token is not None and snapshot.status != STATUS_REVOKED:
            try:
                client = WebClient(token=snapshot.token, base_url=self.api_url, timeout=self.oauth.timeout)
                revoked_at_slack = bool(client.auth_revoke().get("revoked"))
            except (SlackApiError, SlackClientError, OSError) as error:
                # Deleting our copy is what matters to the person; a token Slack already dropped is fine too.
                logger.warning("auth.revoke for %s failed: %s", _describe(key), type(error).__name__)
        self.store.delete_installation(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id)
        return revoked_at_slack

    # -- stock Bolt safety ----------------------------------------------------------------------------------

    def attach(self) -> TokenManager:
        """Make the store hand out tokens already refreshed here, so Bolt's own rotator has nothing to do."""
        self.store.before_return = self.prepare_installation
        self.store.before_return_bot = self.prepare_bot
        return self

    def prepare_installation(self, installation: Installation) -> Installation:
        """Refresh an installation's tokens through the manager and hide refresh tokens from other rotators."""
        if installation.user_token is not None and installation.user_refresh_token is not None:
            key = TokenKey.of(installation.enterprise_id, installation.team_id, installation.user_id)
            try:
                fresh = self.fresh_token(key)
                installation.user_token = fresh.token
                installation.user_token_expires_at = to_timestamp(fresh.expires_at)
            except (NeedsReauth, TokenRevoked, NotConnected):
                installation.user_token = None
                installation.user_token_expires_at = None
        installation.user_refresh_token = None
        if installation.bot_token is not None and installation.bot_refresh_token is not None:
            fresh = self.fresh_token(TokenKey.of(installation.enterprise_id, installation.team_id))
            installation.bot_token = fresh.token
            installation.bot_token_expires_at = to_timestamp(fresh.expires_at)
        installation.bot_refresh_token = None
        return installation

    def prepare_bot(self, bot: Bot) -> Bot:
        if bot.bot_refresh_token is not None:
            fresh = self.fresh_token(TokenKey.of(bot.enterprise_id, bot.team_id))
            bot.bot_token = fresh.token
            bot.bot_token_expires_at = to_timestamp(fresh.expires_at)
        bot.bot_refresh_token = None
        return bot

    # -- sweeping ---------------------------------------------------------------------------------------------

    def due_for_refresh(self, window: timedelta, limit: int) -> list[TokenKey]:
        """Active rotating tokens that expire within the window and nobody is refreshing, soonest first."""
        now = self.clock()
        lease_now = self._lease_now()
        keys: list[TokenKey] = []
        with self.store.engine.connect() as conn:
            for slot in (USER, BOT):
                table = self._table(slot)
                c = table.c
                user_col = c.user_id if slot is USER else None
                rows = conn.execute(
                    select(c.enterprise_id, c.team_id, *([user_col] if user_col is not None else []))
                    .where(
                        c.client_id == self.client_id,
                        c[slot.status] == STATUS_ACTIVE,
                        c[slot.expires] < now + window,
                        c[slot.refresh].is_not(None),
                        or_(c[slot.lease_owner].is_(None), c[slot.lease_expires] < lease_now),
                    )
                    .order_by(c[slot.expires])
                    .limit(limit)
                ).all()
                keys.extend(TokenKey(r.enterprise_id, r.team_id, r.user_id if slot is USER else NONE) for r in rows)
        return keys[:limit]

    def refresh_if_due(self, key: TokenKey, window: timedelta) -> bool:
        """Refresh one token if it still expires within the window; True when this call committed a new one."""
        snapshot = self.read(key)
        if snapshot is None or snapshot.status != STATUS_ACTIVE or snapshot.refresh_cipher is None:
            return False
        if snapshot.expires_at is None or snapshot.expires_at - self.clock() > window:
            return False
        with self._local_turn(key):
            current = self.read(key)
            if current is None or current.refresh_cipher != snapshot.refresh_cipher:
                return False  # someone else refreshed it meanwhile
            if not self._acquire_lease(key, current):
                return False  # someone else is refreshing it now
            fresh = self._refresh_holding_lease(key, current)
            return fresh.refresh_cipher != current.refresh_cipher


# What authorizing a request reads: the token columns and the ids it reports, nothing else.
_KEY_COLUMNS = ("id", "client_id", "enterprise_id", "team_id")
_WORKSPACE_REQUEST_COLUMNS = (
    *_KEY_COLUMNS, "bot_token_enc", "bot_refresh_token_enc", "bot_token_expires_at", "bot_status", "bot_scopes", "bot_id",
    "bot_user_id",
)  # fmt: skip
_USER_REQUEST_COLUMNS = (
    *_KEY_COLUMNS, "user_id", "user_token_enc", "user_refresh_token_enc", "user_token_expires_at", "status",
    "status_reason", "user_scopes",
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
def _jitter_fraction(key: TokenKey) -> float:
    """A stable number in [0, 1] per token, the same in every process."""
    digest = hashlib.sha256(f"{key.enterprise_id}/{key.team_id}/{key.user_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 0xFFFFFFFF


def _scope_list(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        return [s for s in value.split(",") if s]
    return [str(s) for s in value]


def _describe(key: TokenKey) -> str:
    who = f"user {key.user_id}" if key.user_id else "bot"
    return f"{who} of team {key.team_id or '-'} (enterprise {key.enterprise_id or '-'})"
