"""events: an index of status changes only (SLA histories read them per conversation among
all its events); conversations: drop the contact index that the contact-channel one covers

Revision ID: 0013
Revises: 0012
"""

from alembic import op

from hub.store.schema import STATUS_CHANGES

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_events_status_changes",
        "events",
        ["conversation_id", "id"],
        sqlite_where=STATUS_CHANGES,
        postgresql_where=STATUS_CHANGES,
    )
    op.drop_index("ix_conversations_contact_id", table_name="conversations")


def downgrade() -> None:
    op.create_index("ix_conversations_contact_id", "conversations", ["contact_id"])
    op.drop_index("ix_events_status_changes", table_name="events")
