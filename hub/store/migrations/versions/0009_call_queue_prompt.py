"""calls.queue_prompted_at: when a caller's wait in the queue passed the line's limit (P3)

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

from hub.store.schema import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("queue_prompted_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("queue_prompted_at")
