"""one conversation table: notice drafts, report drafts and ledger drafts fold into conversations

Revision ID: 0009
Revises: 0008

A person had up to four things in progress, each in its own store: a conversation, a notice draft
(a notices row with status draft and a `step`), a report draft and a ledger draft. Now every one
is a row of `conversations` (flows notice, report, ledger), at most one a person. Each draft
becomes a conversation with the same step and answers; where a person had more than one, the most
recently changed is kept and the others dropped (a draft idle that long is retyped in a minute).
Notices are stored once sent or scheduled: the draft rows go and `notices.step` with them.
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
STAMP = sa.DateTime(timezone=True)

conversations = sa.table(
    "conversations",
    sa.column("id", Id),
    sa.column("person_id", Id),
    sa.column("flow", sa.String()),
    sa.column("step", sa.String()),
    sa.column("data", sa.JSON()),
    sa.column("created_at", STAMP),
    sa.column("updated_at", STAMP),
)
notices = sa.table(
    "notices",
    sa.column("id", Id),
    sa.column("township_id", Id),
    sa.column("author_id", Id),
    sa.column("status", sa.String()),
    sa.column("step", sa.String()),
    sa.column("body", sa.Text()),
    sa.column("audience", sa.JSON()),
    sa.column("media", sa.JSON()),
    sa.column("send_at", STAMP),
    sa.column("created_at", STAMP),
)
report_drafts = sa.table(
    "report_drafts",
    sa.column("person_id", Id),
    sa.column("campaign_id", Id),
    sa.column("period", sa.Date()),
    sa.column("village_id", Id),
    sa.column("step", sa.String()),
    sa.column("data", sa.JSON()),
    sa.column("updated_at", STAMP),
)
ledger_drafts = sa.table(
    "ledger_drafts",
    sa.column("person_id", Id),
    sa.column("step", sa.String()),
    sa.column("data", sa.JSON()),
    sa.column("updated_at", STAMP),
)


def _utc(value: datetime | None) -> datetime | None:
    """SQLite gives the stored UTC time back without its zone."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _drafts(bind: sa.Connection) -> list[dict[str, Any]]:
    """Every draft as the conversation it becomes."""
    found: list[dict[str, Any]] = []
    for row in bind.execute(sa.select(notices).where(notices.c.status == "draft")):
        if row.step == "done":
            continue
        send_at = _utc(row.send_at)
        found.append(
            {
                "person_id": row.author_id,
                "flow": "notice",
                "step": row.step,
                "data": {
                    "township_id": row.township_id,
                    "body": row.body,
                    "media": row.media,
                    "audience": row.audience or {},
                    "send_at": send_at.isoformat() if send_at else None,
                    "$start": {},
                },
                "at": _utc(row.created_at),
            }
        )
    for row in bind.execute(sa.select(report_drafts)):
        subject = {
            "campaign_id": row.campaign_id,
            "period": row.period.isoformat(),
            "village_id": row.village_id,
        }
        data = {**(row.data or {}), **subject, "$start": subject}
        found.append(
            {
                "person_id": row.person_id,
                "flow": "report",
                "step": row.step,
                "data": data,
                "at": _utc(row.updated_at),
            }
        )
    for row in bind.execute(sa.select(ledger_drafts)):
        data = {**(row.data or {}), "$start": {}}
        found.append(
            {
                "person_id": row.person_id,
                "flow": "ledger",
                "step": row.step,
                "data": data,
                "at": _utc(row.updated_at),
            }
        )
    return found


def upgrade() -> None:
    bind = op.get_bind()
    newest: dict[int, datetime] = {
        row.person_id: _utc(row.updated_at) or datetime.min.replace(tzinfo=UTC)
        for row in bind.execute(sa.select(conversations.c.person_id, conversations.c.updated_at))
    }
    kept: dict[int, dict[str, Any]] = {}
    for draft in _drafts(bind):
        person, at = draft["person_id"], draft["at"] or datetime.min.replace(tzinfo=UTC)
        if person in newest and newest[person] >= at:
            continue  # the person's open conversation, or another draft, changed more recently
        newest[person] = at
        kept[person] = draft
    for person, draft in kept.items():
        bind.execute(sa.delete(conversations).where(conversations.c.person_id == person))
        bind.execute(
            sa.insert(conversations).values(
                person_id=person,
                flow=draft["flow"],
                step=draft["step"],
                data=draft["data"],
                created_at=draft["at"],
                updated_at=draft["at"],
            )
        )
    bind.execute(sa.delete(notices).where(notices.c.status == "draft"))
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_column("step")
    op.drop_table("report_drafts")
    op.drop_table("ledger_drafts")


def downgrade() -> None:
    """The draft tables come back empty: conversations of the new flows are dropped, not split."""
    bind = op.get_bind()
    bind.execute(sa.delete(conversations).where(conversations.c.flow.in_(("notice", "report", "ledger"))))
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("step", sa.String(length=16), nullable=False, server_default="done"))
    op.create_table(
        "ledger_drafts",
        sa.Column("person_id", Id, nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", STAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_ledger_drafts_person_id_persons"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_ledger_drafts")),
    )
    op.create_table(
        "report_drafts",
        sa.Column("person_id", Id, nullable=False),
        sa.Column("campaign_id", Id, nullable=False),
        sa.Column("period", sa.Date(), nullable=False),
        sa.Column("village_id", Id, nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", STAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_report_drafts_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_report_drafts_person_id_persons"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["village_id"], ["villages.id"], name=op.f("fk_report_drafts_village_id_villages")
        ),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_report_drafts")),
    )
