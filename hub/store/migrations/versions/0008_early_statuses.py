"""early_statuses: provider status reports that arrive before the send that they report on is recorded

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from hub.store.schema import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "early_statuses",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("channel_account", sa.String(length=100), nullable=False),
        sa.Column("provider_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_early_statuses")),
    )
    op.create_index("ix_early_statuses_ref", "early_statuses", ["channel_account", "provider_id"])


def downgrade() -> None:
    op.drop_index("ix_early_statuses_ref", table_name="early_statuses")
    op.drop_table("early_statuses")
