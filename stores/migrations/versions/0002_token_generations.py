"""Token generations, issued lifetimes, retry pacing, and refresh-in-flight markers instead of leases.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 01:35:00
"""

import sqlalchemy as sa
from alembic import op

from stores.schema.types import UTCDateTime

MOMENT = sa.DateTime(timezone=True)

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delegate_user_tokens", schema=None) as batch_op:
        batch_op.alter_column("lease_owner", new_column_name="refresh_owner", existing_type=sa.String(length=64))
        batch_op.alter_column("lease_expires_at", new_column_name="refresh_sent_at", existing_type=MOMENT)
        batch_op.add_column(sa.Column("refresh_retry_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("lifetime_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("generation", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("delegate_workspaces", schema=None) as batch_op:
        batch_op.alter_column("bot_lease_owner", new_column_name="bot_refresh_owner", existing_type=sa.String(length=64))
        batch_op.alter_column("bot_lease_expires_at", new_column_name="bot_refresh_sent_at", existing_type=MOMENT)
        batch_op.add_column(sa.Column("bot_refresh_failures", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("bot_refresh_retry_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("bot_lifetime_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("bot_generation", sa.Integer(), nullable=False, server_default="0"))
    # The defaults only filled existing rows; the code always writes these columns itself.
    with op.batch_alter_table("delegate_user_tokens", schema=None) as batch_op:
        batch_op.alter_column("generation", server_default=None, existing_type=sa.Integer(), existing_nullable=False)
    with op.batch_alter_table("delegate_workspaces", schema=None) as batch_op:
        batch_op.alter_column(
            "bot_refresh_failures", server_default=None, existing_type=sa.Integer(), existing_nullable=False
        )
        batch_op.alter_column("bot_generation", server_default=None, existing_type=sa.Integer(), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("delegate_workspaces", schema=None) as batch_op:
        batch_op.drop_column("bot_generation")
        batch_op.drop_column("bot_lifetime_seconds")
        batch_op.drop_column("bot_refresh_retry_at")
        batch_op.drop_column("bot_refresh_failures")
        batch_op.alter_column("bot_refresh_sent_at", new_column_name="bot_lease_expires_at", existing_type=MOMENT)
        batch_op.alter_column("bot_refresh_owner", new_column_name="bot_lease_owner", existing_type=sa.String(length=64))
    with op.batch_alter_table("delegate_user_tokens", schema=None) as batch_op:
        batch_op.drop_column("generation")
        batch_op.drop_column("lifetime_seconds")
        batch_op.drop_column("refresh_retry_at")
        batch_op.alter_column("refresh_sent_at", new_column_name="lease_expires_at", existing_type=MOMENT)
        batch_op.alter_column("refresh_owner", new_column_name="lease_owner", existing_type=sa.String(length=64))
