"""Refresh ahead only what is used, claimed without overlap: last use, the activity flag, the sweep's lease and the
indexes the sweep's claim and prune_events read.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 17:00:00
"""

import sqlalchemy as sa
from alembic import op

from stores.schema.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delegate_user_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_used_at", UTCDateTime(), nullable=True))
        # Every token stored so far is refreshed ahead until a sweep finds it unused for the activity window.
        batch_op.add_column(sa.Column("refresh_ahead", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column("sweep_claimed_until", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("sweep_owner", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "delegate_user_tokens_sweep_idx",
            ["client_id", "status", "refresh_ahead", "user_token_expires_at"],
            unique=False,
        )
    with op.batch_alter_table("delegate_workspaces", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bot_sweep_claimed_until", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("bot_sweep_owner", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "delegate_workspaces_sweep_idx", ["client_id", "bot_status", "bot_token_expires_at"], unique=False
        )
    with op.batch_alter_table("delegate_token_events", schema=None) as batch_op:
        batch_op.create_index("delegate_token_events_occurred_idx", ["occurred_at", "client_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("delegate_token_events", schema=None) as batch_op:
        batch_op.drop_index("delegate_token_events_occurred_idx")
    with op.batch_alter_table("delegate_workspaces", schema=None) as batch_op:
        batch_op.drop_index("delegate_workspaces_sweep_idx")
        batch_op.drop_column("bot_sweep_owner")
        batch_op.drop_column("bot_sweep_claimed_until")
    with op.batch_alter_table("delegate_user_tokens", schema=None) as batch_op:
        batch_op.drop_index("delegate_user_tokens_sweep_idx")
        batch_op.drop_column("sweep_owner")
        batch_op.drop_column("sweep_claimed_until")
        batch_op.drop_column("refresh_ahead")
        batch_op.drop_column("last_used_at")
