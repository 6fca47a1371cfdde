"""sla_cycles: drop the index on due_at, which no query reads (reports select cycles by start)

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_sla_cycles_due", table_name="sla_cycles")


def downgrade() -> None:
    op.create_index("ix_sla_cycles_due", "sla_cycles", ["due_at"])
