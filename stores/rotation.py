"""The token manager: a valid token on demand, each refresh token sent to Slack at most once across threads,
processes and hosts, and every answer Slack gives turned into the right state.

How one refresh happens (`TokenManager.refresh`):
1. threads of one process queue on a per-token lock, so one of them does the work and the others reuse its result;
2. that thread takes the token's cross-process lock (`stores.locks`), which dies with its holder, and re-reads the
   row under it: if someone else has rotated it meanwhile, that result is used;
3. it records, durably, that a refresh of this generation is being sent, then calls `oauth.v2.access` once, with no
   retry and no sleep while holding the lock;
4. on success it commits the new tokens over the generation it read (on PostgreSQL in the lock's own transaction)
   and only then hands them out; if that write fails, the tokens stay in this process, are served from memory,
   and the write is retried until it lands;
5. on a 429 or a 5xx it clears the mark, releases the lock, backs off outside it, and tries again while the caller's
   budget lasts; a still-valid old token stays in use meanwhile and nothing turns into a reconnect prompt.

A refresh whose outcome is unknown (the holder died after sending, or Slack's answer was lost) is never sent
again: with zero grace the refresh token is presumed spent, the row becomes needs_reauth and the person is told.
The request path never comes here: `token_for_request` only reads, and schedules a refresh in the background.
What each refusal means is decided in `stores.refresh_answers`; rotations waiting for the database live in
`stores.pending`; the row itself, its encryption and its fenced writes, in `stores.token_rows`.
"""

from __future__ import annotations

import contextvars
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.web import WebClient
from sqlalchemy.exc import SQLAlchemyError

from .budget import RefreshBudget, budget_for
from .errors import (
    MissingScope,
    NeedsReauth,
    NotConnected,
    RefreshTimeout,
    SlackUnavailable,
    StoreUnavailable,
    TokenRevoked,
)
from .installation_reads import holds
from .installation_store import SQLAlchemyInstallationStore, to_timestamp
from .locks import Held, ProcessLocks, locks_for
from .log_context import log_context
from .observe import NO_OBSERVER, Observer, with_api_error_counter
from .pending import PendingRotations
from .refresh_answers import ROW_CHANGED, Backoff, RefreshAnswers, refusal_outcome, unanswered_outcome
from .schema import STATUS_ACTIVE, STATUS_NEEDS_REAUTH, STATUS_REVOKED
from .sweep_claims import Claim, SweepClaims
from .token_rows import BOT, USER, Slot, Snapshot, TokenKey, TokenRows, jitter_fraction
from .usage import UsageRecorder

if TYPE_CHECKING:
    from .disconnect import DisconnectResult

__all__ = ["BOT", "USER", "ConnectionInfo", "FreshToken", "Slot", "Snapshot", "TokenKey", "TokenManager"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FreshToken:
    """A token as stored now, with what it may do; `stale` when it must be refreshed before use."""

    token: str = field(repr=False)
    scopes: tuple[str, ...]
    expires_at: datetime | None
    key: TokenKey
    generation: int = 0
    stale: bool = False


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
    status_changed_at: datetime | None = None  # when it was revoked or refused (the row's last write), if it was


class TokenManager:
    """Hands out valid user and bot tokens, sending each refresh token to Slack at most once however many ask."""

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
        wait_timeout: timedelta = timedelta(seconds=10),
        in_flight_grace: timedelta | None = None,
        max_refresh_failures: int = 5,
        failure_backoff: timedelta = timedelta(seconds=30),
        max_backoff: timedelta = timedelta(minutes=30),
        background_refresh: bool = True,
        clock: Callable[[], datetime] | None = None,
        oauth_client: WebClient | None = None,
        http_timeout: int = 10,
        observer: Observer = NO_OBSERVER,
        active_window: timedelta = timedelta(days=14),
        last_used_interval: timedelta = timedelta(hours=1),
    ):
        self.store = store
        self.observer = observer  # told of every refresh, lock wait and failed Slack call (stores.observe)
        self.rows = TokenRows(store)
        self.locks = locks_for(store.engine, store.client_id)
        self.client_id = client_id or store.client_id
        # The app's refresh budget, shared with every refresher of this client id (stores.budget).
        self.budget: RefreshBudget = budget_for(store.engine, self.client_id)
        self.rate_limit_listeners: list[Callable[[float], None]] = []
        self._client_secret = client_secret
        self.api_url = api_url
        self.refresh_margin = refresh_margin
        self.margin_jitter = margin_jitter
        self.inline_margin = inline_margin
        self.wait_timeout = wait_timeout
        # How long a refresh sent by someone else may still be answered and committed (their HTTP call and write).
        self.in_flight_grace = in_flight_grace or timedelta(seconds=2 * http_timeout + 5)
        self.max_refresh_failures = max_refresh_failures
        self.failure_backoff = failure_backoff
        self.max_backoff = max_backoff
        self.clock = clock or store.clock  # every expiry, margin and backoff is judged on this clock
        self.owner = f"{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # No retry handlers: a refresh token is sent once per attempt, and every wait happens outside the lock.
        self.oauth = oauth_client or WebClient(
            base_url=api_url, timeout=http_timeout, retry_handlers=with_api_error_counter([], observer)
        )
        self._turns = ProcessLocks()  # threads of this process take turns per token before the shared lock
        self._locks_guard = threading.Lock()
        self._background = (
            ThreadPoolExecutor(max_workers=2, thread_name_prefix="delegate-refresh") if background_refresh else None
        )
        self._scheduled: set[TokenKey] = set()
        self.answers = RefreshAnswers(
            self.rows, clock=self.clock, max_failures=max_refresh_failures, failure_backoff=failure_backoff,
            max_backoff=max_backoff, on_rate_limited=self._rate_limited,
        )  # fmt: skip
        self.pending = PendingRotations(self.rows)
        # Refresh-ahead renews only user tokens used within active_window (stores.sweep_claims); each person's use is
        # recorded at most once per last_used_interval, after the ack (stores.usage).
        self.active_window = active_window
        self.usage = UsageRecorder(store, clock=self.clock, interval=last_used_interval)
        self.claims = SweepClaims(self.rows, self.owner)

    def __repr__(self) -> str:
        return f"TokenManager(client_id={self.client_id!r}, owner={self.owner!r})"

    def close(self) -> None:
        """Stop the background refresh threads (waiting for refreshes in flight)."""
        if self._background is not None:
            self._background.shutdown(wait=True)
        self.usage.close()
        self.locks.close()

    def _rate_limited(self, seconds: float) -> None:
        """Slack answered a refresh with 429: no refresher of this app, on any host, starts one before Retry-After."""
        try:
            self.budget.pause_for(seconds)
        except SQLAlchemyError as error:
            logger.warning("could not record Slack's Retry-After in the refresh budget (%s)", type(error).__name__)
        for listener in self.rate_limit_listeners:
            listener(seconds)

    # -- public API -----------------------------------------------------------------------------------------

    def fresh_user_token(self, *, enterprise_id: str | None, team_id: str | None, user_id: str) -> FreshToken:
        """The person's valid token, refreshed first if it must be (this may wait: never call it before the ack)."""
        if not user_id:
            raise NotConnected("no user to act as", user_id=user_id)
        return self.fresh_token(TokenKey.of(enterprise_id, team_id, user_id))

    def fresh_bot_token(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
        wait: timedelta | None = None,
    ) -> FreshToken:
        """The workspace's (or org's) valid bot token (this may wait: never call it before the ack)."""
        return self.fresh_token(TokenKey.of(enterprise_id, None if is_enterprise_install else team_id), wait=wait)

    def read(self, key: TokenKey) -> Snapshot | None:
        """Read and decrypt the token's row (one indexed read)."""
        pending = self.pending.get(key)
        if pending is not None:
            return pending
        return self._guarded_read(key)

    def read_for_request(self, key: TokenKey) -> tuple[Snapshot | None, Snapshot | None, Any]:
        """The workspace's bot and one person's token in one indexed read: (bot, user, workspace row)."""
        bot, person, workspace = self.rows.read_for_request(key)
        if self.pending:  # rotations the database has not taken yet are served from memory
            bot_pending = self.pending.get(TokenKey(key.enterprise_id, key.team_id))
            bot = bot_pending if bot_pending is not None and bot is not None else bot
            person_pending = self.pending.get(key) if key.user_id else None
            person = person_pending if person_pending is not None else person
        return bot, person, workspace

    def token_for_request(self, key: TokenKey, snapshot: Snapshot | None) -> FreshToken:
        """The stored token for the request path: never calls Slack, never waits on a lock.

        A token inside its refresh margin is handed out as is and refreshed in the background; one about to expire
        is marked stale, so that the work after the acknowledgement refreshes it before use.
        """
        self._raise_if_unusable(key, snapshot)
        assert snapshot is not None
        if key.user_id:
            self.usage.note(key)  # in memory; written after the ack, at most once an interval
        if not snapshot.rotating or snapshot.status != STATUS_ACTIVE or not self._due(key, snapshot):
            return self._fresh(key, snapshot)
        self.schedule_refresh(key)
        return self._fresh(key, snapshot, stale=self._urgent(key, snapshot))

    def fresh_token(self, key: TokenKey, snapshot: Snapshot | None = None, *, wait: timedelta | None = None) -> FreshToken:
        """A valid token for the key, refreshed now if it is about to expire (waits at most `wait`)."""
        snapshot = snapshot if snapshot is not None else self.read(key)
        self._raise_if_unusable(key, snapshot)
        assert snapshot is not None
        if not snapshot.rotating or not self._due(key, snapshot):
            return self._fresh(key, snapshot)
        if not self._urgent(key, snapshot) and self._background is not None:
            self.schedule_refresh(key)
            return self._fresh(key, snapshot)
        return self._fresh(key, self.refresh(key, snapshot, wait=wait))

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

    def pending_writes(self) -> int:
        """How many rotations are held in memory until the database takes them."""
        return len(self.pending)

    def margin_for(self, key: TokenKey, lifetime: int | None = None) -> timedelta:
        """How long before expiry the token is refreshed: the margin spread by a stable per-token jitter, and at
        most half the lifetime Slack gave it (so a short-lived token is not refreshed on every use)."""
        margin = self.refresh_margin + self.margin_jitter * (2 * jitter_fraction(key) - 1)
        if lifetime:
            margin = min(margin, timedelta(seconds=lifetime / 2))
        return margin

    def inline_margin_for(self, margin: timedelta) -> timedelta:
        """Left to live below which a token is refreshed before use rather than in the background."""
        return min(self.inline_margin, margin / 4)

    # -- reading ------------------------------------------------------------------------------------------

    def _guarded_read(self, key: TokenKey) -> Snapshot | None:
        try:
            return self.rows.read(key)
        except SQLAlchemyError as error:
            raise _store_unavailable(key, error) from None

    def _due(self, key: TokenKey, snapshot: Snapshot) -> bool:
        """Whether the token is inside its refresh margin (or past its expiry)."""
        return snapshot.expires_at is not None and self._remaining(snapshot) <= self.margin_for(key, snapshot.lifetime)

    def _urgent(self, key: TokenKey, snapshot: Snapshot) -> bool:
        """Whether the token is so close to expiry that it must be refreshed before use, not in the background."""
        margin = self.margin_for(key, snapshot.lifetime)
        return self._remaining(snapshot) <= self.inline_margin_for(margin)

    def _remaining(self, snapshot: Snapshot) -> timedelta:
        assert snapshot.expires_at is not None
        return snapshot.expires_at - self.clock()

    def _fresh(self, key: TokenKey, snapshot: Snapshot, *, stale: bool = False) -> FreshToken:
        assert snapshot.token is not None
        return FreshToken(
            token=snapshot.token,
            scopes=snapshot.scopes,
            expires_at=snapshot.expires_at,
            key=key,
            generation=snapshot.generation,
            stale=stale,
        )

    def _raise_if_unusable(self, key: TokenKey, snapshot: Snapshot | None) -> None:
        who = key.user_id or "the bot"
        if snapshot is None:
            raise NotConnected(f"no token stored for {who}", user_id=key.user_id)
        if snapshot.status == STATUS_NEEDS_REAUTH:
            raise NeedsReauth(
                f"Slack no longer accepts the stored token of {who}; reconnect to continue",
                user_id=key.user_id,
                reason=snapshot.status_reason or snapshot.outcome,
                since=snapshot.changed_at,
            )
        if snapshot.status == STATUS_REVOKED or snapshot.token is None:
            raise TokenRevoked(
                f"the token of {who} was revoked",
                user_id=key.user_id,
                reason=snapshot.status_reason,
                since=snapshot.changed_at if snapshot.status == STATUS_REVOKED else None,
            )

    def _still_valid(self, snapshot: Snapshot) -> bool:
        return snapshot.expires_at is None or snapshot.expires_at > self.clock()

    # -- refreshing -----------------------------------------------------------------------------------------

    def schedule_refresh(self, key: TokenKey) -> None:
        """Refresh the token on a background thread (at most one scheduled per token); returns at once."""
        if self._background is None:
            return
        with self._locks_guard:
            if key in self._scheduled:
                return
            self._scheduled.add(key)

        def run() -> None:
            try:
                snapshot = self.read(key)
                if snapshot is not None and snapshot.status == STATUS_ACTIVE and snapshot.rotating:
                    if self._due(key, snapshot):
                        self.refresh(key, snapshot)
            except (NeedsReauth, TokenRevoked, NotConnected):
                pass  # recorded on the row; the person is told on their next use
            except Exception:  # noqa: BLE001 - a background refresh must never take the worker down
                logger.exception("background refresh failed for %s", key.describe())
            finally:
                with self._locks_guard:
                    self._scheduled.discard(key)

        def run_in_context() -> None:
            with log_context(enterprise=key.enterprise_id, team=key.team_id, user=key.user_id):
                run()

        try:
            # The request's log context (its id) goes along to the background thread, with the token's owner.
            self._background.submit(contextvars.copy_context().run, run_in_context)
        except RuntimeError:  # shutting down
            with self._locks_guard:
                self._scheduled.discard(key)

    def refresh(self, key: TokenKey, seen: Snapshot, *, force: bool = False, wait: timedelta | None = None) -> Snapshot:
        """Refresh the token unless another worker already has; returns the fresh state (or the old, still valid
        one when Slack cannot rotate it right now). Waits at most `wait` (default: wait_timeout) in all."""
        budget = (self.wait_timeout if wait is None else wait).total_seconds()
        deadline = time.monotonic() + budget
        with self._turns.hold(key, wait=budget) as turn:
            if turn is None:
                return self._keep_or_raise(key, self.read(key), RefreshTimeout, "another thread is refreshing it")
            # The caller's snapshot was just read; after waiting for another thread's turn, read what it did.
            current: Snapshot | None = self.read(key) if turn.waited else seen
            while True:
                self._raise_if_unusable(key, current)
                assert current is not None
                if not self._still_needs_refresh(key, current, seen, force):
                    return current
                # Checked again under the lock; here it spares taking the lock while Slack asked for a pause.
                step: Snapshot | Backoff | None = self._paused(current)
                if step is None:
                    try:
                        wait_for_lock = max(0.0, deadline - time.monotonic())
                        asked = time.perf_counter()
                        with self.locks.hold(key, wait=wait_for_lock) as held:
                            result = "acquired" if held is not None else "busy" if wait_for_lock <= 0 else "timeout"
                            self.observer.lock_waited(result, time.perf_counter() - asked)
                            if held is None:
                                return self._keep_or_raise(key, current, RefreshTimeout, "another worker is refreshing it")
                            step = self._refresh_holding_lock(key, seen, force, held)
                    except SQLAlchemyError as error:
                        raise _store_unavailable(key, error) from None
                if isinstance(step, Snapshot):
                    return step
                if step.reason != ROW_CHANGED:
                    # Slack did not rotate it: a still-valid token serves meanwhile; an expired one is worth waiting for.
                    if self._still_valid(current) or step.seconds > deadline - time.monotonic():
                        return self._keep_or_raise(key, current, SlackUnavailable, step.reason)
                    time.sleep(max(0.0, step.seconds))
                current = self.read(key)

    def _keep_or_raise(
        self, key: TokenKey, current: Snapshot | None, error: type[SlackUnavailable | RefreshTimeout], reason: str
    ) -> Snapshot:
        """The old token while it is still valid; past its expiry, a clear transient error."""
        self._raise_if_unusable(key, current)
        assert current is not None
        if self._still_valid(current):
            return current
        who = key.user_id or "the bot"
        raise error(
            f"the token of {who} has expired and could not be renewed right now ({reason}); try again in a moment",
            user_id=key.user_id,
            reason=reason,
        )

    def _still_needs_refresh(self, key: TokenKey, current: Snapshot, seen: Snapshot, force: bool) -> bool:
        if force:
            return current.generation == seen.generation and current.token == seen.token
        return self._due(key, current)

    def _paused(self, current: Snapshot) -> Backoff | None:
        """Slack asked for a pause (Retry-After) or an error is being backed off: how long to wait it out."""
        now = self.clock()
        if current.retry_at is None or current.retry_at <= now:
            return None
        return Backoff((current.retry_at - now).total_seconds(), current.outcome or "retry_later")

    def _refresh_holding_lock(self, key: TokenKey, seen: Snapshot, force: bool, held: Held) -> Snapshot | Backoff:
        current = self.rows.read(key)  # under the lock: what the last holder committed is visible now
        self._raise_if_unusable(key, current)
        assert current is not None
        if not self._still_needs_refresh(key, current, seen, force):
            return current
        paused = self._paused(current)
        if paused is not None:
            return paused
        now = self.clock()
        if current.sent_at is not None:
            # A refresh of this generation went to Slack and its answer was never committed.
            age = now - current.sent_at
            if age < self.in_flight_grace:
                return Backoff(min(1.0, (self.in_flight_grace - age).total_seconds()), "refresh_in_flight")
            self.observer.refresh_finished(key.slot.kind, "interrupted", 0.0)
            self.answers.interrupted(key, current)
        if current.refresh_cipher is None:
            raise NeedsReauth(f"{key.describe()} has no refresh token left", user_id=key.user_id)
        if not self.rows.mark_sent(key, current.generation, self.owner, now):
            return Backoff(0.0, ROW_CHANGED)  # a save or revoke landed meanwhile: read again
        outcome, started = "other", time.perf_counter()
        try:
            try:
                response = self.oauth.oauth_v2_access(
                    client_id=self.client_id,
                    client_secret=self._client_secret,
                    grant_type="refresh_token",
                    refresh_token=current.refresh_token,
                )
            except SlackApiError as error:
                outcome = refusal_outcome(error)
                return self.answers.refused(key, current, error)
            except (SlackClientError, OSError) as error:
                outcome = unanswered_outcome(error)
                return self.answers.unanswered(key, current, error)
            outcome = "refreshed"  # Slack rotated it: whatever happens to the write, the old refresh token is spent
            return self._commit(key, current, response.data, held)  # type: ignore[arg-type]
        finally:
            self.observer.refresh_finished(key.slot.kind, outcome, time.perf_counter() - started)

    def _commit(self, key: TokenKey, current: Snapshot, data: dict[str, Any], held: Held) -> Snapshot:
        now = self.clock()
        values = self.rows.refreshed_values(key, data, now)
        fresh = self._snapshot_after(key, current, data, values, now)
        try:
            written = self.rows.commit_refresh(key, current.generation, values, conn=held.connection)
            held.commit()
        except SQLAlchemyError as error:
            # Slack has rotated: the old refresh token is dead and these are the only copies. Keep them.
            logger.error(
                "could not store the refreshed token of %s (%s); serving it from memory and retrying the write",
                key.describe(), type(error).__name__,
            )  # fmt: skip
            self.pending.keep(key, current.generation, values, fresh)
            return fresh
        if not written:
            logger.warning("refreshed %s, but a newer token was saved meanwhile; keeping the newer one", key.describe())
            newer = self.rows.read(key)
            self._raise_if_unusable(key, newer)
            assert newer is not None
            return newer
        return fresh

    def _snapshot_after(
        self, key: TokenKey, current: Snapshot, data: dict[str, Any], values: dict[str, Any], now: datetime
    ) -> Snapshot:
        slot = key.slot
        scope = data.get("scope")
        return replace(
            current,
            token=data["access_token"],
            refresh_cipher=values[slot.refresh],
            open_refresh_token=lambda: data.get("refresh_token"),
            expires_at=values[slot.expires],
            lifetime=values[slot.lifetime],
            status=STATUS_ACTIVE,
            status_reason=None,
            scopes=tuple(s for s in scope.split(",") if s) if scope else current.scopes,
            generation=current.generation + 1,
            failures=0,
            retry_at=None,
            sent_owner=None,
            sent_at=None,
            outcome="refreshed",
            refreshed_here=True,
        )

    # -- what API calls taught us ----------------------------------------------------------------------------

    def record_api_error(
        self, key: TokenKey, code: str, response: dict[str, Any] | None = None, *, generation: int | None = None
    ) -> None:
        """Act on an error Slack gave for a call made with this token (of that generation); raises the TokenError."""
        who = key.user_id or "the bot"
        now = self.clock()
        if code in ("token_revoked", "account_inactive"):
            self.rows.set_status(key, generation, STATUS_REVOKED, code, drop_refresh=True, drop_token=True, now=now)
            raise TokenRevoked(
                f"Slack says the token of {who} is no longer valid ({code})", user_id=key.user_id, reason=code
            )
        if code in ("invalid_auth", "not_authed"):
            # Kept, not dropped: reconnecting replaces it, and a refresh token may still be good.
            self.rows.set_status(key, generation, STATUS_NEEDS_REAUTH, code, bump=False, now=now)
            raise NeedsReauth(f"Slack does not accept the token of {who} ({code})", user_id=key.user_id, reason=code)
        if code == "missing_scope":
            needed = _scope_list((response or {}).get("needed"))
            provided = _scope_list((response or {}).get("provided"))
            self.rows.record_scopes(key, needed, provided)
            raise MissingScope(
                f"the token of {who} lacks the scope(s) {', '.join(needed) or '(unknown)'}",
                needed=needed,
                provided=provided,
                user_id=key.user_id,
            )

    def token_still_accepted(self, fresh: FreshToken) -> bool:
        """One auth.test with the token: whether Slack accepts it (an invalid_auth on a call can also mean an IP
        allow-list refused this host, not that the token is gone)."""
        try:
            client = WebClient(
                token=fresh.token,
                base_url=self.api_url,
                timeout=self.oauth.timeout,
                retry_handlers=with_api_error_counter([], self.observer),
            )
            return bool(client.auth_test().get("ok"))
        except SlackApiError:
            return False
        except (SlackClientError, OSError):
            return True  # unknown: never condemn a token because Slack could not be asked

    def forget_user(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str,
        reason: str,
        installed_at_or_before: datetime | None = None,
    ) -> bool:
        """Mark a person's tokens revoked and drop them (user deactivated, tokens_revoked event), keeping the row so
        that they can be told why; a grant saved after `installed_at_or_before` is kept. True when it revoked something
        (False: no row, already revoked, or granted again since)."""
        key = TokenKey.of(enterprise_id, team_id, user_id)
        dropped = self.rows.set_status(
            key, None, STATUS_REVOKED, reason, drop_refresh=True, drop_token=True, now=self.clock(),
            installed_at_or_before=installed_at_or_before, unless_revoked=True,
        )  # fmt: skip
        if installed_at_or_before is None or dropped:
            self.pending.drop(key)
        return dropped

    def connection_info(self, *, enterprise_id: str | None, team_id: str | None, user_id: str) -> ConnectionInfo | None:
        """The person's connection as stored, or None when they never connected (or disconnected)."""
        row = self.rows.read_row(TokenKey.of(enterprise_id, team_id, user_id))
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
            status_changed_at=row.updated_at if row.status != STATUS_ACTIVE else None,
        )

    def disconnect(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str, keep_unless_confirmed: bool = False
    ) -> DisconnectResult:
        """Revoke the person's grant at Slack (auth.revoke), delete Delegate's copy (with `keep_unless_confirmed`, only
        once Slack confirmed), and say what really happened."""
        from .disconnect import disconnect

        result = disconnect(
            self, enterprise_id=enterprise_id, team_id=team_id, user_id=user_id, keep_unless_confirmed=keep_unless_confirmed
        )
        if result.deleted or not keep_unless_confirmed:  # a copy held back keeps its rotations waiting for the database
            self.pending.drop(TokenKey.of(enterprise_id, team_id, user_id))
        return result

    # -- stock Bolt safety ----------------------------------------------------------------------------------

    def attach(self) -> TokenManager:
        """Make the store hand out tokens already refreshed here, so Bolt's own rotator has nothing to do."""
        self.store.before_return = self.prepare_installation
        self.store.before_return_bot = self.prepare_bot
        return self

    def prepare_installation(self, installation: Installation) -> Installation:
        """Refresh an installation's tokens through the manager and hide refresh tokens from other rotators."""
        if installation.user_token is not None and holds(installation, "user_refresh_token"):
            key = TokenKey.of(installation.enterprise_id, installation.team_id, installation.user_id)
            self.usage.note(key)  # a stock Bolt app serving a request with it
            try:
                fresh = self.fresh_token(key)
                installation.user_token = fresh.token
                installation.user_token_expires_at = to_timestamp(fresh.expires_at)
            except (NeedsReauth, TokenRevoked, NotConnected):
                installation.user_token = None
                installation.user_token_expires_at = None
        installation.user_refresh_token = None
        if installation.bot_token is not None and holds(installation, "bot_refresh_token"):
            try:
                fresh = self.fresh_token(TokenKey.of(installation.enterprise_id, installation.team_id))
                installation.bot_token = fresh.token
                installation.bot_token_expires_at = to_timestamp(fresh.expires_at)
            except (NeedsReauth, TokenRevoked, NotConnected):  # deleted or refused since the store read it
                installation.bot_token = None
                installation.bot_token_expires_at = None
        installation.bot_refresh_token = None
        return installation

    def prepare_bot(self, bot: Bot) -> Bot | None:
        """The bot with a token refreshed here, or None when it was deleted or refused since the store read it."""
        if bot.bot_refresh_token is not None:
            try:
                fresh = self.fresh_token(TokenKey.of(bot.enterprise_id, bot.team_id))
            except (NeedsReauth, TokenRevoked, NotConnected):
                return None
            bot.bot_token = fresh.token
            bot.bot_token_expires_at = to_timestamp(fresh.expires_at)
        bot.bot_refresh_token = None
        return bot

    # -- sweeping ---------------------------------------------------------------------------------------------

    def claim_due(self, window: timedelta, limit: int, *, lease: timedelta, active_window: timedelta | None = None) -> Claim:
        """Lease up to `limit` tokens expiring within the window to this manager's owner for `lease`, bots first, then
        user tokens used within the activity window (default: the manager's; those unused are set aside: renewed on
        their next use)."""
        now = self.clock()
        due = {"before": now + window, "now": now, "lease_until": now + lease}
        bots = self.claims.claim(BOT, **due, active_since=now, limit=limit)
        if bots.rows >= limit:
            return bots
        active_since = now - (self.active_window if active_window is None else active_window)
        users = self.claims.claim(USER, **due, active_since=active_since, limit=limit - bots.rows)
        return Claim(keys=bots.keys + users.keys, set_aside=users.set_aside)

    def release_claims(self, keys: list[TokenKey]) -> None:
        """End this manager's lease on tokens it claimed and will not refresh now."""
        self.claims.release(keys)

    def due_for_refresh(self, window: timedelta, limit: int) -> list[TokenKey]:
        """Active rotating tokens that expire within the window, not paused after an error nor leased to a refresher,
        user tokens only if used within the activity window; soonest first (a read: claims nothing)."""
        now = self.clock()
        return self.claims.due(before=now + window, now=now, active_since=now - self.active_window, limit=limit)

    def due_snapshot(self, key: TokenKey, window: timedelta) -> Snapshot | None:
        """The token's row if it is due (active, rotating, within the window and its own margin), else None."""
        snapshot = self.read(key)
        if snapshot is None or snapshot.status != STATUS_ACTIVE or not snapshot.rotating:
            return None
        if not self._due(key, snapshot) or self._remaining(snapshot) > window:
            return None
        return snapshot

    def count_due_for_refresh(self, window: timedelta) -> int:
        """How many tokens due_for_refresh would list without a limit (for a progress bar's total)."""
        now = self.clock()
        return self.claims.count_due(before=now + window, now=now, active_since=now - self.active_window)

    def refresh_if_due(self, key: TokenKey, window: timedelta, snapshot: Snapshot | None = None) -> bool:
        """Refresh one token if it is due (within the window and its own margin), without waiting on anyone;
        True when this call stored a new one. `snapshot`: what due_snapshot just returned, not read again."""
        snapshot = snapshot if snapshot is not None else self.due_snapshot(key, window)
        if snapshot is None:
            return False
        return self.refresh(key, snapshot, wait=timedelta(0)).refreshed_here


def _store_unavailable(key: TokenKey, error: SQLAlchemyError) -> StoreUnavailable:
    return StoreUnavailable(
        f"Delegate's database did not answer ({type(error).__name__}); try again in a moment", user_id=key.user_id
    )


def _scope_list(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        return [s for s in value.split(",") if s]
    return [str(s) for s in value]
