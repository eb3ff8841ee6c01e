"""console: the county (a township's county, a county person), sign-in links and sessions

Revision ID: 0010
Revises: 0009

The roster's new county column names the county a township belongs to, and a county person's
county (role county, 县级). The console is signed in to with a one-time link asked for in chat
(/web); a browser's session is a row of console_sessions. Only hashes of the tokens are kept.
Create Date: 2026-12-07 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
STAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("townships", schema=None) as batch_op:
        batch_op.add_column(sa.Column("county", sa.String(length=100), nullable=True))
        batch_op.create_index(batch_op.f("ix_townships_county"), ["county"], unique=False)
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.add_column(sa.Column("county", sa.String(length=100), nullable=True))
    op.create_table(
        "login_links",
        sa.Column("id", Id, nullable=False),
        sa.Column("person_id", Id, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.Column("expires_at", STAMP, nullable=False),
        sa.Column("used_at", STAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_login_links_person_id_persons"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_login_links_token_hash")),
    )
    with op.batch_alter_table("login_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_login_links_person_id"), ["person_id"], unique=False)
    op.create_table(
        "console_sessions",
        sa.Column("id", Id, nullable=False),
        sa.Column("person_id", Id, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.Column("last_seen_at", STAMP, nullable=False),
        sa.Column("ended_at", STAMP, nullable=True),
        sa.Column("ended_why", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["persons.id"],
            name=op.f("fk_console_sessions_person_id_persons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_console_sessions_token_hash")),
    )
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_console_sessions_person_id"), ["person_id"], unique=False)


def downgrade() -> None:
    op.drop_table("console_sessions")
    op.drop_table("login_links")
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.drop_column("county")
    with op.batch_alter_table("townships", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_townships_county"))
        batch_op.drop_column("county")
