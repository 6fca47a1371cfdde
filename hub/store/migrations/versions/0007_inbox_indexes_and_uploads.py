"""inbox list indexes (per-status SLA-due order with channel and assignee, latest, breached); uploads

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from hub.store.schema import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

NEW = {
    "ix_conversations_status_channel_due": ["status", "channel", "due_at", "id"],
    "ix_conversations_status_assignee_due": ["status", "assignee_id", "due_at", "id"],
    "ix_conversations_updated": ["updated_at", "id"],
    "ix_conversations_due": ["due_at"],
    "ix_conversations_promise_due": ["promise_due_at"],
}


def upgrade() -> None:
    op.drop_index("ix_conversations_status_due", table_name="conversations")
    op.create_index("ix_conversations_status_due", "conversations", ["status", "due_at", "id"])
    for name, columns in NEW.items():
        op.create_index(name, "conversations", columns)
    op.create_table(
        "uploads",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("agent_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_uploads_agent_id_agents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
    )
    op.create_index(op.f("ix_uploads_agent_id"), "uploads", ["agent_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_uploads_agent_id"), table_name="uploads")
    op.drop_table("uploads")
    for name in NEW:
        op.drop_index(name, table_name="conversations")
    op.drop_index("ix_conversations_status_due", table_name="conversations")
    op.create_index("ix_conversations_status_due", "conversations", ["status", "due_at"])
