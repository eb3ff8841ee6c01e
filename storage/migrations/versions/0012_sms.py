"""sms: the household's consent to text messages, and the texts handed to the SMS provider

Revision ID: 0012
Revises: 0011

A household without a chat may agree (on the web form, or to the cadre who files for it) to hear
of its case by text message: declarations.sms_consent_at. Its number is then its address on the
channel "sms" (channel_accounts). Each text the provider accepted is a row of sms_sends: the
per-number limits count them, and the provider's delivery receipt is written there.
Create Date: 2026-12-07 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
STAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("declarations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sms_consent_at", STAMP, nullable=True))
    op.create_table(
        "sms_sends",
        sa.Column("id", Id, nullable=False),
        sa.Column("outbox_id", Id, nullable=False),
        sa.Column("out_id", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("provider_id", sa.String(length=64), nullable=True),
        sa.Column("accepted_at", STAMP, nullable=False),
        sa.Column("delivery", sa.String(length=16), nullable=True),
        sa.Column("delivery_code", sa.String(length=64), nullable=True),
        sa.Column("reported_at", STAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox.id"], name=op.f("fk_sms_sends_outbox_id_outbox"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_sends")),
        sa.UniqueConstraint("outbox_id", name=op.f("uq_sms_sends_outbox_id")),
        sa.UniqueConstraint("out_id", name=op.f("uq_sms_sends_out_id")),
    )
    op.create_index("ix_sms_sends_phone", "sms_sends", ["phone", "kind", "accepted_at"], unique=False)
    op.create_index(op.f("ix_sms_sends_provider_id"), "sms_sends", ["provider_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_sms_sends_provider_id"), table_name="sms_sends")
    op.drop_index("ix_sms_sends_phone", table_name="sms_sends")
    op.drop_table("sms_sends")
    with op.batch_alter_table("declarations", schema=None) as batch_op:
        batch_op.drop_column("sms_consent_at")
