"""full declaration

Revision ID: 0002
Revises: 0001

The declaration gets every answer of the full intake; attachments (voice, photos, added text);
task due times; draft reminders.
Create Date: 2026-11-23 08:38:35.325846
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "attachments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("declaration_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.Text(), nullable=False),
        sa.Column("duration", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("added_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["added_by"], ["persons.id"], name=op.f("fk_attachments_added_by_persons")),
        sa.ForeignKeyConstraint(
            ["declaration_id"], ["declarations.id"], name=op.f("fk_attachments_declaration_id_declarations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
    )
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attachments_declaration_id"), ["declaration_id"], unique=False)

    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("declarations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("risk_types", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(sa.Column("relation", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("filed_by_cadre", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True)
        )
        batch_op.add_column(
            sa.Column("household_size", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True)
        )
        batch_op.add_column(sa.Column("id_sealed", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("id_fingerprint", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("followups", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
        batch_op.add_column(sa.Column("consent_version", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("consent_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_declarations_id_fingerprint"), ["id_fingerprint"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_declarations_filed_by_cadre_persons"), "persons", ["filed_by_cadre"], ["id"]
        )

    # Declarations from before carried one risk type.
    array = "json_array" if op.get_bind().dialect.name == "sqlite" else "json_build_array"
    op.execute(f"UPDATE declarations SET risk_types = {array}(risk_type)")

    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_tasks_due_at"), ["due_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_due_at"))
        batch_op.drop_column("due_at")

    with op.batch_alter_table("declarations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_declarations_filed_by_cadre_persons"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_declarations_id_fingerprint"))
        batch_op.drop_column("consent_at")
        batch_op.drop_column("consent_version")
        batch_op.drop_column("followups")
        batch_op.drop_column("id_fingerprint")
        batch_op.drop_column("id_sealed")
        batch_op.drop_column("household_size")
        batch_op.drop_column("filed_by_cadre")
        batch_op.drop_column("relation")
        batch_op.drop_column("risk_types")

    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("reminded_at")

    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attachments_declaration_id"))

    op.drop_table("attachments")
