"""The refresh budget shared by every refresher of an app, on every host (stores.budget).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 13:30:00
"""

import sqlalchemy as sa
from alembic import op

from stores.schema.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delegate_refresh_budget",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("next_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("client_id"),
    )


def downgrade() -> None:
    op.drop_table("delegate_refresh_budget")
