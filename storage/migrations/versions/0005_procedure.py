"""procedure

Revision ID: 0005
Revises: 0003

The procedure after the verdict: green channel and public notice on the declaration; the due
step of each task with its reminder, warning and escalation times, and when to look next.
Create Date: 2026-11-23 08:56:45.561217
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("declarations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("green_channel", sa.Boolean(), server_default=sa.text("(false)"), nullable=False)
        )
        batch_op.add_column(sa.Column("notice_started_at", sa.DateTime(timezone=True), nullable=True))

    # Declarations decided under the first procedure: an eligible verdict counts as entered.
    op.execute(
        "UPDATE declarations SET status = 'entered' WHERE status = 'decided' AND verdict != 'not_eligible'"
    )
    op.execute("UPDATE declarations SET status = 'not_eligible' WHERE status = 'decided'")

    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("step", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("warned_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_tasks_next_check_at"), ["next_check_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_next_check_at"))
        batch_op.drop_column("next_check_at")
        batch_op.drop_column("escalated_at")
        batch_op.drop_column("warned_at")
        batch_op.drop_column("reminded_at")
        batch_op.drop_column("step")

    with op.batch_alter_table("declarations", schema=None) as batch_op:
        batch_op.drop_column("notice_started_at")
        batch_op.drop_column("green_channel")
