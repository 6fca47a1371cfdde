"""message_raw: the raw bytes of pulled mail kept in the database with the message

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

from hub.store.schema import Id

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_raw",
        sa.Column("message_id", Id, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_message_raw_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_message_raw")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Stored uncompressed, as the blob files were: compressing every pulled mail cost the
        # server about a fifth of a batch's storing time.
        op.execute("ALTER TABLE message_raw ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_table("message_raw")
