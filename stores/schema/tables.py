"""Delegate's tables: current state of installs and user tokens, an audit trail, and OAuth states.

Absent keys (no enterprise for a plain workspace, no team for an org-wide install) are stored as the
empty string NONE, never NULL, so that the unique constraints hold on SQLite, PostgreSQL and MySQL alike.
Every column ending in ``_enc`` holds an AES-GCM ciphertext from ``stores.crypto``.

Each token slot (a user's, or a workspace's bot) carries a ``generation``: bumped by every rotation, save, exchange
and revocation, and compared by every write, so no stale writer can overwrite a newer token. ``refresh_owner`` and
``refresh_sent_at`` mark a refresh request sent to Slack whose answer is not committed yet; ``lifetime_seconds`` is
the lifetime Slack gave the current token; ``refresh_failures`` and ``refresh_retry_at`` pace retries after errors.

Refresh-ahead (``stores.refresher``) reads ``last_used_at`` (when the person's token was last used to serve a request,
recorded at most once an interval, ``stores.usage``) and ``refresh_ahead`` (false once the sweep found the token unused
for the activity window: it is then renewed on its next use, not ahead); ``sweep_claimed_until`` and ``sweep_owner``
are a refresher's lease on a token it claimed, which other refreshers' claims skip until it ends.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    true,
)

from .types import UTCDateTime

NONE = ""

WORKSPACES = "delegate_workspaces"
USER_TOKENS = "delegate_user_tokens"
TOKEN_EVENTS = "delegate_token_events"
OAUTH_STATES = "delegate_oauth_states"
REFRESH_BUDGET = "delegate_refresh_budget"

STATUS_ACTIVE = "active"
STATUS_NEEDS_REAUTH = "needs_reauth"
STATUS_REVOKED = "revoked"


@dataclass(frozen=True)
class Tables:
    """The tables one store works with."""

    metadata: MetaData
    workspaces: Table
    user_tokens: Table
    token_events: Table


def build_tables(
    metadata: MetaData | None = None,
    *,
    workspaces_name: str = WORKSPACES,
    user_tokens_name: str = USER_TOKENS,
    token_events_name: str = TOKEN_EVENTS,
) -> Tables:
    """Declare the installation tables on a metadata object (names configurable, like slack_sdk's store)."""
    metadata = metadata if metadata is not None else MetaData()
    workspaces = Table(
        workspaces_name,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("client_id", String(64), nullable=False),
        Column("enterprise_id", String(32), nullable=False, default=NONE),
        Column("team_id", String(32), nullable=False, default=NONE),
        Column("app_id", String(32)),
        Column("enterprise_name", String(200)),
        Column("enterprise_url", String(200)),
        Column("team_name", String(200)),
        Column("is_enterprise_install", Boolean, nullable=False, default=False),
        Column("bot_token_enc", Text),
        Column("bot_refresh_token_enc", Text),
        Column("bot_token_expires_at", UTCDateTime()),
        Column("bot_id", String(32)),
        Column("bot_user_id", String(32)),
        Column("bot_scopes", Text),
        Column("bot_installed_at", UTCDateTime()),
        Column("bot_status", String(16), nullable=False, default="active"),
        Column("bot_last_refreshed_at", UTCDateTime()),
        Column("bot_last_refresh_outcome", String(64)),
        Column("bot_refresh_failures", Integer, nullable=False, default=0),
        Column("bot_refresh_retry_at", UTCDateTime()),
        Column("bot_refresh_owner", String(64)),
        Column("bot_refresh_sent_at", UTCDateTime()),
        Column("bot_lifetime_seconds", Integer),
        Column("bot_generation", Integer, nullable=False, default=0),
        Column("bot_sweep_claimed_until", UTCDateTime()),
        Column("bot_sweep_owner", String(64)),
        Column("installer_user_id", String(32)),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
        UniqueConstraint("client_id", "enterprise_id", "team_id", name=f"{workspaces_name}_key"),
        Index(f"{workspaces_name}_expiry_idx", "bot_status", "bot_token_expires_at"),
        # The refresher's claim: equality on the first two, then the expiry range in the order it reads.
        Index(f"{workspaces_name}_sweep_idx", "client_id", "bot_status", "bot_token_expires_at"),
    )
    user_tokens = Table(
        user_tokens_name,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("client_id", String(64), nullable=False),
        Column("enterprise_id", String(32), nullable=False, default=NONE),
        Column("team_id", String(32), nullable=False, default=NONE),
        Column("user_id", String(32), nullable=False),
        Column("app_id", String(32)),
        Column("is_enterprise_install", Boolean, nullable=False, default=False),
        Column("token_type", String(32)),
        Column("user_token_enc", Text),
        Column("user_refresh_token_enc", Text),
        Column("user_token_expires_at", UTCDateTime()),
        Column("user_scopes", Text),
        Column("enterprise_url", String(200)),
        Column("incoming_webhook_url_enc", Text),
        Column("incoming_webhook_channel", String(200)),
        Column("incoming_webhook_channel_id", String(200)),
        Column("incoming_webhook_configuration_url", String(200)),
        Column("status", String(16), nullable=False, default=STATUS_ACTIVE),
        Column("status_reason", String(64)),
        Column("needed_scopes", Text),
        Column("provided_scopes", Text),
        Column("last_refreshed_at", UTCDateTime()),
        Column("last_refresh_outcome", String(64)),
        Column("refresh_failures", Integer, nullable=False, default=0),
        Column("refresh_retry_at", UTCDateTime()),
        Column("refresh_owner", String(64)),
        Column("refresh_sent_at", UTCDateTime()),
        Column("lifetime_seconds", Integer),
        Column("generation", Integer, nullable=False, default=0),
        Column("last_used_at", UTCDateTime()),
        Column("refresh_ahead", Boolean, nullable=False, default=True, server_default=true()),
        Column("sweep_claimed_until", UTCDateTime()),
        Column("sweep_owner", String(64)),
        Column("installed_at", UTCDateTime(), nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
        UniqueConstraint("client_id", "enterprise_id", "team_id", "user_id", name=f"{user_tokens_name}_key"),
        Index(f"{user_tokens_name}_latest_idx", "client_id", "enterprise_id", "team_id", "installed_at"),
        Index(f"{user_tokens_name}_expiry_idx", "status", "user_token_expires_at"),
        # The refresher's claim: equality on the first three (refresh_ahead is the activity filter), then the expiry
        # range in the order it reads, so tokens set aside as unused are never walked again.
        Index(f"{user_tokens_name}_sweep_idx", "client_id", "status", "refresh_ahead", "user_token_expires_at"),
    )
    token_events = Table(
        token_events_name,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("occurred_at", UTCDateTime(), nullable=False),
        Column("client_id", String(64), nullable=False),
        Column("enterprise_id", String(32), nullable=False, default=NONE),
        Column("team_id", String(32), nullable=False, default=NONE),
        Column("user_id", String(32), nullable=False, default=NONE),
        Column("token_kind", String(8), nullable=False),
        Column("event", String(32), nullable=False),
        Column("detail", String(200)),
        Index(f"{token_events_name}_subject_idx", "client_id", "enterprise_id", "team_id", "user_id", "occurred_at"),
        Index(f"{token_events_name}_occurred_idx", "occurred_at", "client_id"),  # prune_events: oldest first
    )
    return Tables(metadata=metadata, workspaces=workspaces, user_tokens=user_tokens, token_events=token_events)


def build_oauth_states_table(metadata: MetaData | None = None, *, name: str = OAUTH_STATES) -> Table:
    """Declare the OAuth state table: one row per issued state until it is consumed or expires."""
    metadata = metadata if metadata is not None else MetaData()
    return Table(
        name,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("state", String(200), nullable=False, unique=True),
        Column("expire_at", UTCDateTime(), nullable=False, index=True),
    )


def build_refresh_budget_table(metadata: MetaData | None = None, *, name: str = REFRESH_BUDGET) -> Table:
    """Declare the shared refresh budget: per client id, when the first turn nobody has claimed starts
    (`stores.budget`)."""
    metadata = metadata if metadata is not None else MetaData()
    return Table(
        name,
        metadata,
        Column("client_id", String(64), primary_key=True),
        Column("next_at", UTCDateTime(), nullable=False),
    )


metadata = MetaData()
default_tables = build_tables(metadata)
oauth_states = build_oauth_states_table(metadata)
refresh_budget = build_refresh_budget_table(metadata)
