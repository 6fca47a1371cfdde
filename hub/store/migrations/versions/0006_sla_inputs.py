"""SLA inputs: what each conversation's SLA state was computed from, and until when it holds

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from hub.store.schema import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sla_inputs",
        sa.Column("conversation_id", ID, nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.Column("recheck_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_sla_inputs_conversation_id_conversations"),
        ),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_sla_inputs")),
    )


def downgrade() -> None:
    op.drop_table("sla_inputs")
