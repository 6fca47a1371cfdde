"""messages completed after storing; quarantine resolutions

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from hub.store.schema import Id, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_content",
        sa.Column("message_id", Id, nullable=False),
        sa.Column("channel_account", sa.String(length=100), nullable=False),
        sa.Column("event_at", UTCDateTime(), nullable=False),
        sa.Column("new_conversation", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_pending_content_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_pending_content")),
    )
    op.create_index(
        "ix_pending_content_account", "pending_content", ["channel_account", "message_id"], unique=False
    )
    with op.batch_alter_table("quarantine") as batch:
        batch.add_column(sa.Column("resolution", sa.Text(), nullable=True))
        batch.add_column(sa.Column("resolved_by", Id, nullable=True))
        batch.add_column(sa.Column("message_id", Id, nullable=True))
        batch.create_foreign_key(op.f("fk_quarantine_resolved_by_agents"), "agents", ["resolved_by"], ["id"])
        batch.create_foreign_key(
            op.f("fk_quarantine_message_id_messages"), "messages", ["message_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.drop_constraint(op.f("fk_quarantine_message_id_messages"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_quarantine_resolved_by_agents"), type_="foreignkey")
        batch.drop_column("message_id")
        batch.drop_column("resolved_by")
        batch.drop_column("resolution")
    op.drop_index("ix_pending_content_account", table_name="pending_content")
    op.drop_table("pending_content")
