"""call legs, and call routing, duration and wrap-up

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from hub.store.schema import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("line", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("team_id", ID, nullable=True))
        batch.add_column(sa.Column("route", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("time_to_answer_seconds", sa.Float(), nullable=True))
        batch.add_column(sa.Column("duration_seconds", sa.Float(), nullable=True))
        batch.add_column(sa.Column("wrapped_up_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("summary_note_id", ID, nullable=True))
        batch.create_foreign_key(op.f("fk_calls_team_id_teams"), "teams", ["team_id"], ["id"])
        batch.create_foreign_key(
            op.f("fk_calls_summary_note_id_messages"), "messages", ["summary_note_id"], ["id"]
        )
    op.create_table(
        "call_legs",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("channel_account", sa.String(length=100), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("parent_sid", sa.String(length=64), nullable=True),
        sa.Column("call_id", ID, nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("agent_id", ID, nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], name=op.f("fk_call_legs_call_id_calls")),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_call_legs_agent_id_agents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_legs")),
        sa.UniqueConstraint("channel_account", "call_sid", "status", "sequence", name="uq_call_legs_event"),
    )
    op.create_index("ix_call_legs_call", "call_legs", ["call_id", "at"])
    op.create_index("ix_call_legs_parent", "call_legs", ["channel_account", "parent_sid"])


def downgrade() -> None:
    op.drop_index("ix_call_legs_parent", table_name="call_legs")
    op.drop_index("ix_call_legs_call", table_name="call_legs")
    op.drop_table("call_legs")
    with op.batch_alter_table("calls") as batch:
        batch.drop_constraint(op.f("fk_calls_summary_note_id_messages"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_calls_team_id_teams"), type_="foreignkey")
        for column in (
            "summary_note_id", "wrapped_up_at", "duration_seconds", "time_to_answer_seconds", "route",
            "team_id", "line",
        ):  # fmt: skip
            batch.drop_column(column)
