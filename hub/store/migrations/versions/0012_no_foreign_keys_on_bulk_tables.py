"""events, timers, sla_cycles, sla_inputs: no foreign keys to conversations, agents, teams (see `hub.store.schema`)

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

DROPPED = {
    "events": {"conversation_id": "conversations", "agent_id": "agents"},
    "timers": {"conversation_id": "conversations"},
    "sla_cycles": {"conversation_id": "conversations", "team_id": "teams", "assignee_id": "agents"},
    "sla_inputs": {"conversation_id": "conversations"},
}


def upgrade() -> None:
    for table, columns in DROPPED.items():
        with op.batch_alter_table(table) as batch:
            for column, referred in columns.items():
                batch.drop_constraint(f"fk_{table}_{column}_{referred}", type_="foreignkey")


def downgrade() -> None:
    for table, columns in DROPPED.items():
        with op.batch_alter_table(table) as batch:
            for column, referred in columns.items():
                batch.create_foreign_key(f"fk_{table}_{column}_{referred}", referred, [column], ["id"])
