"""Everything the sandbox remembers: users, tokens, codes, messages, views, faults and counters, behind one lock."""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sandbox.clock import Clock
from sandbox.config import SandboxChannel, SandboxConfig, SandboxEnterprise, SandboxTeam, SandboxUser
from sandbox.errors import SlackError

if TYPE_CHECKING:
    from sandbox.persistence import StateFile

TokenKind = Literal["bot", "user"]
CALL_LOG_SIZE = 10_000


def redact(value: str | None) -> str:
    """A token shown safely: its prefix and a short fingerprint, never the secret part."""
    if not value:
        return ""
    prefix = value.split("-", 2)
    head = "-".join(prefix[:2]) if value.startswith("xoxe") else prefix[0]
    return f"{head}-…{hashlib.sha256(value.encode()).hexdigest()[:8]}"


class Tracked:
    """A dataclass whose every field assignment marks it unsaved, so a state file writes only what changed."""

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        object.__setattr__(self, "unsaved", True)


@dataclass
class Token(Tracked):
    """An access token the sandbox issued."""

    value: str = field(repr=False)
    kind: TokenKind
    team_id: str | None  # None for an org-level token (an org-wide install), which reaches every workspace of the org
    user_id: str
    scopes: list[str]
    issued_at: float
    expires_at: float | None
    grant: str
    refresh_token: str | None = field(default=None, repr=False)
    revoked_at: float | None = None
    revoked_reason: str = ""
    exchanged: bool = False
    enterprise_id: str | None = None
    is_enterprise_install: bool = False

    @property
    def rotating(self) -> bool:
        """Whether the token expires and comes with a refresh token."""
        return self.expires_at is not None

    def status(self, now: float) -> str:
        """`active`, `expired` or `revoked` at time `now`."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    def describe(self, now: float) -> dict[str, Any]:
        """A JSON-safe view of the token, with the value redacted."""
        return {
            "token": redact(self.value),
            "fingerprint": hashlib.sha256(self.value.encode()).hexdigest()[:8],
            "kind": self.kind,
            "team_id": self.team_id,
            "enterprise_id": self.enterprise_id,
            "is_enterprise_install": self.is_enterprise_install,
            "user_id": self.user_id,
            "scopes": list(self.scopes),
            "rotating": self.rotating,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "expires_in": None if self.expires_at is None else round(self.expires_at - now, 1),
            "grant": self.grant,
            "status": self.status(now),
            "revoked_reason": self.revoked_reason,
            "exchanged": self.exchanged,
        }


@dataclass
class RefreshToken(Tracked):
    """A single-use refresh token; `used_at` starts its grace period."""

    value: str = field(repr=False)
    kind: TokenKind
    team_id: str | None
    user_id: str
    scopes: list[str]
    issued_at: float
    used_at: float | None = None
    revoked_at: float | None = None
    enterprise_id: str | None = None
    is_enterprise_install: bool = False


@dataclass
class AuthorizationCode(Tracked):
    """A code the authorize page issued; single-use and short-lived."""

    value: str = field(repr=False)
    team_id: str
    user_id: str
    bot_scopes: list[str]
    user_scopes: list[str]
    redirect_uri: str | None
    created_at: float
    used: bool = False
    is_enterprise_install: bool = False  # the person chose the whole org (an org admin), or the org has the app


@dataclass
class Fault:
    """A fault to inject into calls of one method (or `*` for all)."""

    method: str
    latency_ms: int = 0
    status: int | None = None
    retry_after: int = 1
    error: str | None = None
    drop_after_action: bool = False
    times: int | None = None
    hits: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The fault as JSON."""
        return asdict(self)


@dataclass
class View(Tracked):
    """A modal or App Home view an app opened, updated or published."""

    id: str
    team_id: str
    user_id: str
    view: dict[str, Any]
    hash: str
    type: str
    created_at: float
    external_id: str | None = None
    root_view_id: str | None = None
    previous_view_id: str | None = None
    closed: bool = False
    errors: dict[str, str] = field(default_factory=dict)

    def to_payload(self, app_id: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
        """The view object as Slack includes it in payloads and API answers."""
        body = {
            "id": self.id,
            "team_id": self.team_id,
            "type": self.type,
            "title": self.view.get("title"),
            "submit": self.view.get("submit"),
            "close": self.view.get("close"),
            "blocks": self.view.get("blocks", []),
            "private_metadata": self.view.get("private_metadata", ""),
            "callback_id": self.view.get("callback_id", ""),
            "state": {"values": values or {}},
            "hash": self.hash,
            "clear_on_close": bool(self.view.get("clear_on_close", False)),
            "notify_on_close": bool(self.view.get("notify_on_close", False)),
            "root_view_id": self.root_view_id or self.id,
            "previous_view_id": self.previous_view_id,
            "app_id": app_id,
            "external_id": self.external_id or "",
            "app_installed_team_id": self.team_id,
            "bot_id": None,
        }
        return body


@dataclass
class UserState(Tracked):
    """A sandbox user's mutable state: profile, status, snooze, deactivation."""

    user: SandboxUser
    deleted: bool = False
    status_text: str = ""
    status_emoji: str = ""
    status_expiration: int = 0
    snooze_endtime: float | None = None
    display_name: str = ""


class SandboxState:
    """The sandbox's memory; every public method takes the lock, so any thread may call it."""

    def __init__(self, config: SandboxConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or Clock()
        self.lock = threading.RLock()
        self.teams: dict[str, SandboxTeam] = {team.id: team for team in config.teams}
        self.enterprises: dict[str, SandboxEnterprise] = {org.id: org for org in config.enterprises}
        self.users: dict[str, UserState] = {user.id: UserState(user, display_name=user.name) for user in config.users}
        self.channels: dict[str, SandboxChannel] = {channel.id: channel for channel in config.channels}
        self.tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.triggers: dict[str, tuple[float, str, str, bool]] = {}
        self.views: dict[str, View] = {}
        self.messages: list[dict[str, Any]] = []
        self.ephemerals: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        self.installed_teams: set[str] = set()
        self.installed_enterprises: set[str] = set()  # orgs the app is installed into org-wide
        # The last CALL_LOG_SIZE authenticated Web API calls: method, and whose token made it (redacted), newest last;
        # bounded so that a long run or a benchmark does not grow it without end; not persisted.
        self.call_log: deque[dict[str, Any]] = deque(maxlen=CALL_LOG_SIZE)
        self.faults: list[Fault] = []
        self.api_calls: Counter[str] = Counter()
        self.grants: Counter[str] = Counter()
        self.grant_failures: Counter[str] = Counter()
        self.rate_limited_calls: Counter[str] = Counter()
        self.refreshes_by_user: Counter[str] = Counter()
        self.refreshes: list[dict[str, Any]] = []
        self._issued_with: dict[str, str] = {}  # refresh token -> the access token issued with it (not persisted)
        self.response_urls: dict[str, dict[str, Any]] = {}
        self.pending_events: list[tuple[str, dict[str, Any]]] = []
        self.consent_key = secrets.token_bytes(32)
        self._ts_counter = 0
        self._call_times: dict[str, deque[float]] = {}
        self.store: StateFile | None = None

    # ----- on disk -----

    def persist(self) -> None:
        """Write what changed to the state file, if there is one (SandboxServer's `state_path`)."""
        if self.store is not None:
            with self.lock:
                self.store.save(self)

    def reset(self) -> None:
        """Start over: forget every token, code, message, view, fault and counter, and every user's changes."""
        with self.lock:
            fresh = SandboxState(self.config, self.clock)
            for name, value in vars(fresh).items():
                if name not in ("config", "clock", "lock", "store"):
                    setattr(self, name, value)
            self.persist()

    # ----- identities -----

    def now(self) -> float:
        """The sandbox clock's time."""
        return self.clock.now()

    def new_id(self, prefix: str, length: int = 10) -> str:
        """A Slack-looking id such as `V0A1B2C3D4`."""
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        return prefix + "".join(secrets.choice(alphabet) for _ in range(length))

    def next_ts(self) -> str:
        """A message timestamp, unique and increasing within the sandbox."""
        with self.lock:
            self._ts_counter += 1
            return f"{int(self.now())}.{self._ts_counter:06d}"

    def user(self, user_id: str) -> UserState:
        """The user with this id, or `user_not_found`."""
        with self.lock:
            if user_id not in self.users:
                raise SlackError("user_not_found")
            return self.users[user_id]

    def team(self, team_id: str) -> SandboxTeam:
        """The team with this id, or `team_not_found`."""
        with self.lock:
            if team_id not in self.teams:
                raise SlackError("team_not_found")
            return self.teams[team_id]

    def enterprise_of(self, team_id: str | None) -> SandboxEnterprise | None:
        """The Enterprise Grid org a workspace belongs to, if any."""
        with self.lock:
            team = self.teams.get(team_id or "")
            return self.enterprises.get(team.enterprise_id or "") if team is not None else None

    def org_installed(self, team_id: str) -> bool:
        """Whether the app is installed org-wide in the org this workspace belongs to (so it works in all of them)."""
        with self.lock:
            org = self.enterprise_of(team_id)
            return org is not None and org.id in self.installed_enterprises

    def token_teams(self, token: Token) -> list[str]:
        """The workspaces a token acts in: its own, or for an org-level token every workspace of its org (a person's
        only those they belong to, their home one first)."""
        with self.lock:
            if token.team_id is not None:
                return [token.team_id]
            org_teams = [team.id for team in self.teams.values() if team.enterprise_id == token.enterprise_id]
            person = self.users.get(token.user_id)
            if token.kind == "user" and person is not None:
                return [team_id for team_id in person.user.workspaces if team_id in org_teams]
            return org_teams

    def reaches(self, token: Token, team_id: str | None) -> bool:
        """Whether the token may act in this workspace."""
        return team_id is not None and team_id in self.token_teams(token)

    def channel_for(self, token: Token, name_or_id: str) -> SandboxChannel:
        """The channel a token's call names: in one of the workspaces it reaches, else `channel_not_found`."""
        with self.lock:
            for team_id in self.token_teams(token):
                try:
                    return self.channel(team_id, name_or_id)
                except SlackError:
                    continue
            raise SlackError("channel_not_found")

    def record_call(self, method: str, token: Token) -> None:
        """Remember which token made a Web API call (redacted), for tests that prove whose token acted."""
        with self.lock:
            self.call_log.append(
                {
                    "method": method,
                    "token": redact(token.value),
                    "kind": token.kind,
                    "user_id": token.user_id,
                    "team_id": token.team_id,
                    "enterprise_id": token.enterprise_id,
                    "is_enterprise_install": token.is_enterprise_install,
                    "at": self.now(),
                }
            )

    def user_json(self, user_id: str) -> dict[str, Any]:
        """A user object shaped like users.info's `user`."""
        with self.lock:
            if user_id == self.config.bot_user_id:
                team_id = self.config.default_team.id
                return {
                    "id": user_id,
                    "team_id": team_id,
                    "name": self.config.app_name.lower(),
                    "real_name": self.config.app_name,
                    "deleted": False,
                    "is_bot": True,
                    "is_admin": False,
                    "profile": {"real_name": self.config.app_name, "bot_id": self.config.bot_id, "team": team_id},
                }
            state = self.user(user_id)
            answer: dict[str, Any] = {
                "id": state.user.id,
                "team_id": state.user.team_id,
                "name": state.user.name,
                "real_name": state.user.real_name,
                "deleted": state.deleted,
                "is_bot": False,
                "is_admin": state.user.is_admin,
                "is_owner": state.user.is_admin,
                "tz": state.user.tz,
                "profile": self.profile_json(user_id),
            }
            org = self.enterprise_of(state.user.team_id)
            if org is not None:  # users.info on Grid: the person's org and every workspace of it they belong to
                answer["enterprise_user"] = {
                    "id": state.user.id,
                    "enterprise_id": org.id,
                    "enterprise_name": org.name,
                    "is_admin": state.user.is_org_admin,
                    "is_owner": state.user.is_org_admin,
                    "teams": list(state.user.workspaces),
                }
            return answer

    def profile_json(self, user_id: str) -> dict[str, Any]:
        """A profile object shaped like users.profile.get's `profile`."""
        with self.lock:
            state = self.user(user_id)
            if state.status_expiration and self.now() >= state.status_expiration:
                state.status_text, state.status_emoji, state.status_expiration = "", "", 0
            return {
                "real_name": state.user.real_name,
                "display_name": state.display_name,
                "email": state.user.email,
                "status_text": state.status_text,
                "status_emoji": state.status_emoji,
                "status_expiration": state.status_expiration,
                "team": state.user.team_id,
            }

    def channel(self, team_id: str, name_or_id: str) -> SandboxChannel:
        """A channel (or a DM, created on first use) by id, `name` or `#name`, or `channel_not_found`."""
        with self.lock:
            wanted = name_or_id.lstrip("#")
            if wanted in self.channels and self.channels[wanted].in_team(team_id):
                return self.channels[wanted]
            for channel in self.channels.values():
                if channel.team_id == team_id and channel.name == wanted:
                    return channel
            for channel in self.channels.values():  # a channel another workspace of the org shares with this one
                if channel.in_team(team_id) and channel.name == wanted:
                    return channel
            if wanted in self.users and self.users[wanted].user.team_id == team_id:
                dm_id = "D" + wanted[1:]
                if dm_id not in self.channels:
                    self.channels[dm_id] = SandboxChannel(dm_id, f"dm-{self.users[wanted].user.name}", team_id)
                return self.channels[dm_id]
            if wanted.startswith("D") and wanted in self.channels:
                return self.channels[wanted]
            raise SlackError("channel_not_found")

    # ----- tokens -----

    def _new_token_value(self, kind: TokenKind, team_id: str, user_id: str, rotating: bool) -> str:
        team_number = int(hashlib.sha256(team_id.encode()).hexdigest()[:8], 16)  # an org-level token passes its org's id
        user_number = int(hashlib.sha256(user_id.encode()).hexdigest()[:8], 16)
        random_part = f"{secrets.randbelow(10**12):012d}-{secrets.token_hex(16)}"
        short = "xoxp" if kind == "user" else "xoxb"
        if rotating:
            return f"xoxe.{short}-1-{secrets.token_urlsafe(30)}"
        return f"{short}-{team_number}-{user_number}-{random_part}"

    def issue_token(
        self,
        kind: TokenKind,
        team_id: str | None,
        user_id: str,
        scopes: list[str],
        grant: str,
        rotating: bool | None = None,
        *,
        enterprise_id: str | None = None,
        is_enterprise_install: bool = False,
    ) -> Token:
        """Create an access token (and a refresh token when rotating) and remember both.

        An org-wide install's tokens are org-level: no team, the org's id, `is_enterprise_install`.
        """
        with self.lock:
            rotating = self.config.token_rotation if rotating is None else rotating
            now = self.now()
            token = Token(
                value=self._new_token_value(kind, team_id or enterprise_id or "", user_id, rotating),
                kind=kind,
                team_id=None if is_enterprise_install else team_id,
                user_id=user_id,
                scopes=list(scopes),
                issued_at=now,
                expires_at=now + self.config.expires_in if rotating else None,
                grant=grant,
                enterprise_id=enterprise_id,
                is_enterprise_install=is_enterprise_install,
            )
            if rotating:
                refresh = RefreshToken(
                    f"xoxe-1-{secrets.token_urlsafe(40)}",
                    kind,
                    token.team_id,
                    user_id,
                    list(scopes),
                    now,
                    enterprise_id=enterprise_id,
                    is_enterprise_install=is_enterprise_install,
                )
                self.refresh_tokens[refresh.value] = refresh
                token.refresh_token = refresh.value
                self._issued_with[refresh.value] = token.value
            self.tokens[token.value] = token
            return token

    def seed_people(
        self, user_ids: Sequence[str], expires_at: Sequence[float], *, scopes: Sequence[str] = ("chat:write",)
    ) -> list[tuple[str, str]]:
        """Bulk for benchmarks: add people to the first team, each with a rotating user token that expires at the given
        sandbox time (issued one lifetime before); returns each one's (access token, refresh token)."""
        with self.lock:
            team_id = self.config.default_team.id
            lifetime = self.config.expires_in
            issued: list[tuple[str, str]] = []
            for user_id, expiry in zip(user_ids, expires_at, strict=True):
                if user_id not in self.users:
                    self.users[user_id] = UserState(SandboxUser(user_id, user_id.lower(), user_id, team_id))
                value, refresh_value = (
                    self._new_token_value("user", team_id, user_id, True),
                    f"xoxe-1-{secrets.token_urlsafe(40)}",
                )
                issued_at = expiry - lifetime
                self.tokens[value] = Token(
                    value, "user", team_id, user_id, list(scopes), issued_at, expiry, "authorization_code", refresh_value
                )
                self.refresh_tokens[refresh_value] = RefreshToken(
                    refresh_value, "user", team_id, user_id, list(scopes), issued_at
                )
                self._issued_with[refresh_value] = value
                issued.append((value, refresh_value))
            return issued

    def authenticate(self, value: str | None) -> Token:
        """The active token behind `value`, or the Slack error that calling with it would get."""
        with self.lock:
            if not value:
                raise SlackError("not_authed")
            token = self.tokens.get(value)
            if token is None:
                raise SlackError("invalid_auth")
            if token.revoked_at is not None:
                raise SlackError("token_revoked")
            if token.kind == "user" and self.users.get(token.user_id) and self.users[token.user_id].deleted:
                raise SlackError("account_inactive")
            if token.expires_at is not None and self.now() >= token.expires_at:
                raise SlackError("token_expired")
            return token

    def revoke_token(self, token: Token, reason: str) -> None:
        """Kill an access token and its refresh token."""
        with self.lock:
            now = self.now()
            if token.revoked_at is None:
                token.revoked_at = now
                token.revoked_reason = reason
            if token.refresh_token and token.refresh_token in self.refresh_tokens:
                refresh = self.refresh_tokens[token.refresh_token]
                refresh.revoked_at = refresh.revoked_at or now

    def user_tokens(self, user_id: str) -> list[Token]:
        """Every token issued to a user, newest last."""
        with self.lock:
            return [token for token in self.tokens.values() if token.user_id == user_id]

    def expire_user_tokens(self, user_id: str, kind: str | None = None) -> int:
        """Make every unexpired rotating token of a user expire now; returns how many."""
        with self.lock:
            if user_id != self.config.bot_user_id:
                self.user(user_id)
            now = self.now()
            count = 0
            for token in self.user_tokens(user_id):
                if kind and token.kind != kind:
                    continue
                if token.revoked_at is None and token.expires_at is not None and token.expires_at > now:
                    token.expires_at = now
                    count += 1
            return count

    def revoke_user_tokens(self, user_id: str, reason: str = "revoked by admin") -> dict[str, list[str]]:
        """Revoke every live token of a user; returns the `tokens` field of a tokens_revoked event."""
        with self.lock:
            revoked: dict[str, list[str]] = {"oauth": [], "bot": []}
            for token in self.user_tokens(user_id):
                if token.revoked_at is None:
                    self.revoke_token(token, reason)
                    bucket = revoked["bot" if token.kind == "bot" else "oauth"]
                    if token.user_id not in bucket:
                        bucket.append(token.user_id)
            for refresh in self.refresh_tokens.values():
                if refresh.user_id == user_id and refresh.revoked_at is None:
                    refresh.revoked_at = self.now()
            return revoked

    def uninstall(self, team_id: str) -> dict[str, list[str]]:
        """Remove the app from a team, or (an org id) from an org it is installed in org-wide: revoke every token of
        that installation; returns the tokens_revoked `tokens` field."""
        with self.lock:
            org_wide = team_id in self.enterprises
            if not org_wide:
                self.team(team_id)

            def installed_here(item: Token | RefreshToken) -> bool:
                if org_wide:
                    return item.is_enterprise_install and item.enterprise_id == team_id
                return item.team_id == team_id

            revoked: dict[str, list[str]] = {"oauth": [], "bot": []}
            for token in self.tokens.values():
                if installed_here(token) and token.revoked_at is None:
                    self.revoke_token(token, "app uninstalled")
                    bucket = revoked["bot" if token.kind == "bot" else "oauth"]
                    if token.user_id not in bucket:
                        bucket.append(token.user_id)
            for refresh in self.refresh_tokens.values():
                if installed_here(refresh) and refresh.revoked_at is None:
                    refresh.revoked_at = self.now()
            self.installed_teams.discard(team_id)
            self.installed_enterprises.discard(team_id)
            return revoked

    def record_refresh(self, refresh: RefreshToken, token: Token) -> dict[str, Any]:
        """Remember one refresh_token grant served: whose, when, and how long the token it replaced had left."""
        with self.lock:
            old = self.tokens.get(self._issued_with.get(refresh.value, ""))
            if old is None:  # issued before a restart from the state file: look it up the slow way
                old = next((t for t in self.tokens.values() if t.refresh_token == refresh.value and t is not token), None)
            record = {
                "at": token.issued_at,
                "kind": token.kind,
                "team_id": token.team_id,
                "user_id": token.user_id,
                "old_token": redact(old.value) if old is not None else "",
                "old_expires_at": old.expires_at if old is not None else None,
                # How long before its expiry the old token was renewed: negative when it had already expired.
                "left_on_old": (
                    round(old.expires_at - token.issued_at, 1) if old is not None and old.expires_at is not None else None
                ),
                "token": redact(token.value),
                "expires_at": token.expires_at,
            }
            self.refreshes.append(record)
            return record

    def refresh_history(self, user_id: str | None = None) -> list[dict[str, Any]]:
        """Every refresh_token grant served, oldest first (optionally one user's)."""
        with self.lock:
            return [dict(r) for r in self.refreshes if user_id is None or r["user_id"] == user_id]

    def token_summary(self) -> list[dict[str, Any]]:
        """Every token, redacted, with its state at the sandbox's current time."""
        with self.lock:
            now = self.now()
            return [token.describe(now) for token in self.tokens.values()]

    # ----- triggers and response URLs -----

    def new_trigger(self, team_id: str, user_id: str) -> str:
        """A fresh trigger_id for an interaction by `user_id`."""
        with self.lock:
            value = f"{secrets.randbelow(10**13)}.{secrets.randbelow(10**13)}.{secrets.token_hex(16)}"
            self.triggers[value] = (self.now(), team_id, user_id, False)
            return value

    def use_trigger(self, value: str | None) -> tuple[str, str]:
        """Consume a trigger_id; returns (team_id, user_id) or raises invalid/expired_trigger_id."""
        with self.lock:
            if not value or value not in self.triggers:
                raise SlackError("invalid_trigger_id")
            created_at, team_id, user_id, used = self.triggers[value]
            if used:
                raise SlackError("invalid_trigger_id")
            if self.now() - created_at > self.config.trigger_ttl_seconds:
                raise SlackError("expired_trigger_id")
            self.triggers[value] = (created_at, team_id, user_id, True)
            return team_id, user_id

    def new_response_url(self, base_url: str, team_id: str, channel_id: str, user_id: str, source: str) -> str:
        """A response_url that works up to 5 times within 30 minutes, like Slack's."""
        with self.lock:
            key = secrets.token_urlsafe(24)
            self.response_urls[key] = {
                "team_id": team_id,
                "channel_id": channel_id,
                "user_id": user_id,
                "source": source,
                "created_at": self.now(),
                "uses": 0,
            }
            return f"{base_url.rstrip('/')}/sandbox/response/{key}"

    # ----- messages -----

    def record_message(
        self,
        *,
        team_id: str,
        channel_id: str,
        user_id: str,
        text: str,
        blocks: Any = None,
        thread_ts: str | None = None,
        bot_id: str | None = None,
        via: str,
        as_kind: str,
    ) -> dict[str, Any]:
        """Store a channel message and return it as Slack would."""
        with self.lock:
            message: dict[str, Any] = {
                "type": "message",
                "ts": self.next_ts(),
                "channel": channel_id,
                "team": team_id,
                "user": user_id,
                "text": text,
                "blocks": blocks or [],
                "via": via,
                "as": as_kind,
            }
            if bot_id:
                message["bot_id"] = bot_id
                message["app_id"] = self.config.app_id
            if thread_ts:
                message["thread_ts"] = thread_ts
            self.messages.append(message)
            return message

    def record_ephemeral(
        self,
        *,
        team_id: str,
        channel_id: str,
        user_id: str,
        text: str,
        blocks: Any = None,
        via: str,
        posted_by: str | None = None,
    ) -> dict[str, Any]:
        """Store a message only `user_id` sees."""
        with self.lock:
            message = {
                "type": "ephemeral",
                "ts": self.next_ts(),
                "channel": channel_id,
                "team": team_id,
                "to_user": user_id,
                "user": posted_by or self.config.bot_user_id,
                "text": text,
                "blocks": blocks or [],
                "via": via,
            }
            self.ephemerals.append(message)
            return message

    # ----- events -----

    def emit_event(self, team_id: str, event: dict[str, Any]) -> None:
        """Queue an Events API event for delivery to the app."""
        with self.lock:
            self.pending_events.append((team_id, event))

    def take_pending_events(self) -> list[tuple[str, dict[str, Any]]]:
        """Hand over (and forget) the events waiting for delivery."""
        with self.lock:
            pending, self.pending_events = self.pending_events, []
            return pending

    # ----- faults -----

    def add_fault(self, fault: Fault) -> None:
        """Start injecting a fault."""
        with self.lock:
            self.faults.append(fault)

    def clear_faults(self, method: str | None = None) -> None:
        """Stop injecting faults (all, or those of one method)."""
        with self.lock:
            self.faults = [fault for fault in self.faults if method is not None and fault.method != method]

    def take_fault(self, method: str) -> Fault | None:
        """The fault that applies to this call of `method`, counting it against its `times`."""
        with self.lock:
            for fault in self.faults:
                if fault.method in (method, "*"):
                    fault.hits += 1
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    return fault
            return None

    def rate_limited(self, method: str) -> int | None:
        """Seconds to wait (Retry-After, in real seconds) if `method` is over its configured calls per minute of the
        sandbox clock (app-wide), else None; the call is counted in `rate_limited_calls` when refused."""
        with self.lock:
            limit = self.config.rate_limits.get(method)
            if not limit:
                return None
            minute = 60 / self.clock.speed  # a sandbox minute in real seconds
            now = time.monotonic()
            calls = self._call_times.setdefault(method, deque())
            while calls and now - calls[0] >= minute:
                calls.popleft()
            if len(calls) >= limit:
                self.rate_limited_calls[method] += 1
                return max(1, math.ceil(minute - (now - calls[0])))
            calls.append(now)
            return None

    # ----- snapshot -----

    def snapshot(self) -> dict[str, Any]:
        """Everything the console shows, as JSON, with tokens redacted."""
        with self.lock:
            now = self.now()
            return {
                "app": {"name": self.config.app_name, "app_id": self.config.app_id, "bot_user_id": self.config.bot_user_id},
                "now": now,
                "clock_offset": self.clock.offset,
                "config": {
                    "token_rotation": self.config.token_rotation,
                    "expires_in": self.config.expires_in,
                    "refresh_grace_seconds": self.config.refresh_grace_seconds,
                    "refresh_error_name": self.config.refresh_error_name,
                    "trigger_ttl_seconds": self.config.trigger_ttl_seconds,
                    "rate_limits": dict(self.config.rate_limits),
                    "request_url": self.config.request_url,
                    "install_url": self.install_url(),
                    "links": self.console_links(),
                    "commands": self.config.commands,
                    "global_shortcuts": self.config.global_shortcuts,
                    "message_shortcuts": self.config.message_shortcuts,
                    "shortcuts": self.shortcuts(),
                },
                "teams": [
                    {**asdict(team), "installed": team.id in self.installed_teams or self.org_installed(team.id)}
                    for team in self.teams.values()
                ],
                "enterprises": [
                    {**asdict(org), "installed": org.id in self.installed_enterprises} for org in self.enterprises.values()
                ],
                "users": [self.user_json(user_id) for user_id in self.users],
                "channels": [asdict(channel) for channel in self.channels.values()],
                "messages": list(self.messages),
                "ephemerals": list(self.ephemerals),
                "tokens": [token.describe(now) for token in self.tokens.values()],
                "refreshes": self.refresh_history()[-50:],
                "views": [
                    {
                        **view.to_payload(self.config.app_id),
                        "user_id": view.user_id,
                        "closed": view.closed,
                        "errors": view.errors,
                    }
                    for view in self.views.values()
                ],
                "deliveries": list(self.deliveries[-50:]),
                "faults": [fault.to_dict() for fault in self.faults],
                "counters": self.counters(),
            }

    def shortcuts(self) -> list[dict[str, str]]:
        """The app's shortcuts as the console offers them: type, callback_id and the name people see."""
        names = self.config.shortcut_names
        return [
            {"type": kind, "callback_id": callback_id, "name": names.get(callback_id, callback_id)}
            for kind, callback_ids in (("global", self.config.global_shortcuts), ("message", self.config.message_shortcuts))
            for callback_id in callback_ids
        ]

    def install_url(self) -> str | None:
        """Where the app starts its OAuth flow (Bolt's /slack/install next to /slack/events), if known."""
        url = self.config.install_url
        if url is None and self.config.request_url and self.config.request_url.endswith("/slack/events"):
            url = self.config.request_url[: -len("events")] + "install"
        return url

    def console_links(self) -> dict[str, str]:
        """Links the console offers (the app's install page by default)."""
        links = dict(self.config.links)
        install = self.install_url()
        if install and not links:
            links["Add to Slack"] = install
        return links

    def counters(self) -> dict[str, Any]:
        """Calls per Web API method and oauth.v2.access / exchange grants, for tests that count refreshes."""
        with self.lock:
            return {
                "api_calls": dict(self.api_calls),
                "grants": dict(self.grants),
                "grant_failures": dict(self.grant_failures),
                "refreshes_by_user": dict(self.refreshes_by_user),
                "rate_limited": dict(self.rate_limited_calls),
            }
