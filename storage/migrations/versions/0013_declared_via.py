"""declared via: the front end a declaration came through (the chat, or the web form)

Revision ID: 0013
Revises: 0012

The console's 渠道 (filter and column) read it from whether the declarant has a chat, which a
cadre's 代报 on the web form, or a household with a chat that used the form, got wrong. Each
declaration now records it: declarations.via, "chat" or "web". Earlier rows are filled in the way
the console used to tell (a declarant with a chat: "chat"), the best that is known of them. The
console's covering index gains the column, so the filter still reads no row.
Create Date: 2026-12-07 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = ["village_id", "created_at", "status", "filed_by_cadre", "declared_by", "head_name"]


def upgrade() -> None:
    with op.batch_alter_table("declarations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("via", sa.String(length=8), server_default=sa.text("'chat'"), nullable=False)
        )
    op.execute(
        "UPDATE declarations SET via = 'web' WHERE NOT EXISTS (SELECT 1 FROM channel_accounts a"
        " WHERE a.person_id = declarations.declared_by AND a.channel = 'telegram')"
    )
    op.drop_index("ix_declarations_console", table_name="declarations")
    op.create_index("ix_declarations_console", "declarations", [*OLD, "via"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_declarations_console", table_name="declarations")
    op.create_index("ix_declarations_console", "declarations", OLD, unique=False)
    with op.batch_alter_table("declarations", schema=None) as batch_op:
        batch_op.drop_column("via")
