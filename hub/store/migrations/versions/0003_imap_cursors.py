"""imap cursors

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from hub.store.schema import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imap_cursors",
        sa.Column("channel_account", sa.String(length=100), nullable=False),
        sa.Column("mailbox", sa.String(length=255), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("highest_modseq", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("channel_account", "mailbox", name=op.f("pk_imap_cursors")),
    )


def downgrade() -> None:
    op.drop_table("imap_cursors")
