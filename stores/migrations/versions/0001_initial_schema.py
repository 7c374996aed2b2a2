"""Initial schema: workspaces, user tokens, token events, OAuth states.

Revision ID: 0001
Revises:
Create Date: 2026-11-29 03:47:47.608944
"""

import sqlalchemy as sa
from alembic import op

from stores.schema.types import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delegate_oauth_states",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("state", sa.String(length=200), nullable=False),
        sa.Column("expire_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("state"),
    )
    with op.batch_alter_table("delegate_oauth_states", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delegate_oauth_states_expire_at"), ["expire_at"], unique=False)

    op.create_table(
        "delegate_token_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("enterprise_id", sa.String(length=32), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("token_kind", sa.String(length=8), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("delegate_token_events", schema=None) as batch_op:
        batch_op.create_index(
            "delegate_token_events_subject_idx",
            ["client_id", "enterprise_id", "team_id", "user_id", "occurred_at"],
            unique=False,
        )

    op.create_table(
        "delegate_user_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("enterprise_id", sa.String(length=32), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("app_id", sa.String(length=32), nullable=True),
        sa.Column("is_enterprise_install", sa.Boolean(), nullable=False),
        sa.Column("token_type", sa.String(length=32), nullable=True),
        sa.Column("user_token_enc", sa.Text(), nullable=True),
        sa.Column("user_refresh_token_enc", sa.Text(), nullable=True),
        sa.Column("user_token_expires_at", UTCDateTime(), nullable=True),
        sa.Column("user_scopes", sa.Text(), nullable=True),
        sa.Column("enterprise_url", sa.String(length=200), nullable=True),
        sa.Column("incoming_webhook_url_enc", sa.Text(), nullable=True),
        sa.Column("incoming_webhook_channel", sa.String(length=200), nullable=True),
        sa.Column("incoming_webhook_channel_id", sa.String(length=200), nullable=True),
        sa.Column("incoming_webhook_configuration_url", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.String(length=64), nullable=True),
        sa.Column("needed_scopes", sa.Text(), nullable=True),
        sa.Column("provided_scopes", sa.Text(), nullable=True),
        sa.Column("last_refreshed_at", UTCDateTime(), nullable=True),
        sa.Column("last_refresh_outcome", sa.String(length=64), nullable=True),
        sa.Column("refresh_failures", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
        sa.Column("installed_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id", "enterprise_id", "team_id", "user_id", name="delegate_user_tokens_key"),
    )
    with op.batch_alter_table("delegate_user_tokens", schema=None) as batch_op:
        batch_op.create_index("delegate_user_tokens_expiry_idx", ["status", "user_token_expires_at"], unique=False)
        batch_op.create_index(
            "delegate_user_tokens_latest_idx", ["client_id", "enterprise_id", "team_id", "installed_at"], unique=False
        )

    op.create_table(
        "delegate_workspaces",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("enterprise_id", sa.String(length=32), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("app_id", sa.String(length=32), nullable=True),
        sa.Column("enterprise_name", sa.String(length=200), nullable=True),
        sa.Column("enterprise_url", sa.String(length=200), nullable=True),
        sa.Column("team_name", sa.String(length=200), nullable=True),
        sa.Column("is_enterprise_install", sa.Boolean(), nullable=False),
        sa.Column("bot_token_enc", sa.Text(), nullable=True),
        sa.Column("bot_refresh_token_enc", sa.Text(), nullable=True),
        sa.Column("bot_token_expires_at", UTCDateTime(), nullable=True),
        sa.Column("bot_id", sa.String(length=32), nullable=True),
        sa.Column("bot_user_id", sa.String(length=32), nullable=True),
        sa.Column("bot_scopes", sa.Text(), nullable=True),
        sa.Column("bot_installed_at", UTCDateTime(), nullable=True),
        sa.Column("bot_status", sa.String(length=16), nullable=False),
        sa.Column("bot_last_refreshed_at", UTCDateTime(), nullable=True),
        sa.Column("bot_last_refresh_outcome", sa.String(length=64), nullable=True),
        sa.Column("bot_lease_owner", sa.String(length=64), nullable=True),
        sa.Column("bot_lease_expires_at", UTCDateTime(), nullable=True),
        sa.Column("installer_user_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id", "enterprise_id", "team_id", name="delegate_workspaces_key"),
    )
    with op.batch_alter_table("delegate_workspaces", schema=None) as batch_op:
        batch_op.create_index("delegate_workspaces_expiry_idx", ["bot_status", "bot_token_expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("delegate_workspaces", schema=None) as batch_op:
        batch_op.drop_index("delegate_workspaces_expiry_idx")

    op.drop_table("delegate_workspaces")
    with op.batch_alter_table("delegate_user_tokens", schema=None) as batch_op:
        batch_op.drop_index("delegate_user_tokens_latest_idx")
        batch_op.drop_index("delegate_user_tokens_expiry_idx")

    op.drop_table("delegate_user_tokens")
    with op.batch_alter_table("delegate_token_events", schema=None) as batch_op:
        batch_op.drop_index("delegate_token_events_subject_idx")

    op.drop_table("delegate_token_events")
    with op.batch_alter_table("delegate_oauth_states", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delegate_oauth_states_expire_at"))

    op.drop_table("delegate_oauth_states")
