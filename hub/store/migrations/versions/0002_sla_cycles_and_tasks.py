"""SLA cycles and tasks

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from hub.store.schema import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sla_cycles",
        sa.Column("conversation_id", ID, nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("policy", sa.String(length=100), nullable=False),
        sa.Column("team_id", ID, nullable=True),
        sa.Column("assignee_id", ID, nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=True),
        sa.Column("warn_at", UTCDateTime(), nullable=True),
        sa.Column("fulfilled_at", UTCDateTime(), nullable=True),
        sa.Column("breached_at", UTCDateTime(), nullable=True),
        sa.Column("paused", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("business_seconds", sa.BigInteger(), nullable=True),
        sa.Column("digest", sa.String(length=16), nullable=False),
        sa.Column("warned_event_at", UTCDateTime(), nullable=True),
        sa.Column("breached_event_at", UTCDateTime(), nullable=True),
        sa.Column("fulfilled_event_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_sla_cycles_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name=op.f("fk_sla_cycles_team_id_teams")),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["agents.id"], name=op.f("fk_sla_cycles_assignee_id_agents")
        ),
        sa.PrimaryKeyConstraint("conversation_id", "metric", "seq", name=op.f("pk_sla_cycles")),
    )
    op.create_index("ix_sla_cycles_started", "sla_cycles", ["started_at"])
    op.create_index("ix_sla_cycles_due", "sla_cycles", ["due_at"])
    op.create_table(
        "tasks",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("conversation_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("not_before", UTCDateTime(), nullable=True),
        sa.Column("assignee_id", ID, nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("done_at", UTCDateTime(), nullable=True),
        sa.Column("done_by", ID, nullable=True),
        sa.Column("overdue_event_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"], name=op.f("fk_tasks_conversation_id_conversations")
        ),
        sa.ForeignKeyConstraint(["assignee_id"], ["agents.id"], name=op.f("fk_tasks_assignee_id_agents")),
        sa.ForeignKeyConstraint(["done_by"], ["agents.id"], name=op.f("fk_tasks_done_by_agents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint("key", name=op.f("uq_tasks_key")),
    )
    op.create_index("ix_tasks_conversation_id", "tasks", ["conversation_id"])
    op.create_index("ix_tasks_status_due", "tasks", ["status", "due_at"])
    op.create_index("ix_timers_conversation_kind", "timers", ["conversation_id", "kind"])


def downgrade() -> None:
    op.drop_index("ix_timers_conversation_kind", table_name="timers")
    op.drop_table("tasks")
    op.drop_table("sla_cycles")
