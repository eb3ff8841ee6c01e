"""console cases: the indexes of the console's list of cases

Revision ID: 0011
Revises: 0010

The list (storage/case_views.py) counts and pages a person's scope with filters. Covering
indexes let it read no row it does not show: declarations by village with the date and every
filtered column but the risk types; declarations by date (the usual order); the cadres who filed
(代报); tasks by village with the due time, the task's status and its declaration (the order by
due time, and the overdue steps).
Create Date: 2026-12-09 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    (
        "declarations",
        "ix_declarations_console",
        ["village_id", "created_at", "status", "filed_by_cadre", "declared_by", "head_name"],
    ),
    ("declarations", "ix_declarations_created", ["created_at", "id"]),
    ("declarations", "ix_declarations_filer", ["filed_by_cadre", "village_id"]),
    ("tasks", "ix_tasks_console", ["village_id", "due_at", "status", "declaration_id"]),
)


def upgrade() -> None:
    for table, name, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for table, name, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
