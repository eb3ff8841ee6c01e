"""web intake

Revision ID: 0006
Revises: 0005

The landing page and the web form: scans of the printed codes counted per village, print batch,
channel and day; photos uploaded through the web form.
Create Date: 2026-11-23 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "qr_scans",
        sa.Column("id", Id, nullable=False),
        sa.Column("village_code", sa.String(length=16), nullable=False),
        sa.Column("batch", sa.String(length=50), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("count", Id, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qr_scans")),
        sa.UniqueConstraint("village_code", "batch", "channel", "day", name="uq_qr_scans_key"),
    )
    op.create_table(
        "uploads",
        sa.Column("id", Id, nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
    )


def downgrade() -> None:
    op.drop_table("uploads")
    op.drop_table("qr_scans")
