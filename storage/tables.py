"""SQLAlchemy 2 typed models. Times are stored in UTC and come back timezone-aware."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp kept in UTC; SQLite forgets the zone, so it is put back on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Integer on SQLite (so the column is the rowid alias), BIGINT elsewhere.
Id = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {int: Id}  # noqa: RUF012 (SQLAlchemy reads it as a class attribute)


class TownshipRow(Base):
    __tablename__ = "townships"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    county: Mapped[str | None] = mapped_column(String(100), index=True)


class VillageRow(Base):
    __tablename__ = "villages"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    township_id: Mapped[int] = mapped_column(ForeignKey("townships.id"), index=True)


class PersonRow(Base):
    __tablename__ = "persons"
    id: Mapped[int] = mapped_column(primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(60))
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)
    township_id: Mapped[int | None] = mapped_column(ForeignKey("townships.id"), index=True)
    locale: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    county: Mapped[str | None] = mapped_column(String(100))  # a county person's county


class CadreVillageRow(Base):
    __tablename__ = "cadre_villages"
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), primary_key=True, index=True)


class ChannelAccountRow(Base):
    """A person's address on a channel (for Telegram, the private chat id)."""

    __tablename__ = "channel_accounts"
    __table_args__ = (
        UniqueConstraint("channel", "address", name="uq_channel_accounts_address"),
        UniqueConstraint("person_id", "channel", name="uq_channel_accounts_person"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(64))
    bound_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Set when the person blocked the bot; binding again (a new row) clears it.
    unreachable_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class InviteRow(Base):
    __tablename__ = "invites"
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LoginLinkRow(Base):
    """A one-time link to sign in to the console (only the token's hash is kept)."""

    __tablename__ = "login_links"
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ConsoleSessionRow(Base):
    """A browser signed in to the console (only the cookie's hash is kept)."""

    __tablename__ = "console_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_why: Mapped[str | None] = mapped_column(String(16))


class ConversationRow(Base):
    """What a person is in the middle of, whatever its flow (a declaration, a visit, a notice, a
    report...); survives restarts. One open conversation a person (`person_id` is unique)."""

    __tablename__ = "conversations"
    # Buttons carry the conversation id, so an id must never come back after a delete.
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), unique=True)
    flow: Mapped[str] = mapped_column(String(32))
    step: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DeclarationRow(Base):
    __tablename__ = "declarations"
    __table_args__ = (
        # The console's list (storage/case_views.py): the scope and every filter on a declaration
        # but its risk types, so a count reads no row; the order by date; the cadres who filed.
        Index(
            "ix_declarations_console",
            "village_id",
            "created_at",
            "status",
            "filed_by_cadre",
            "declared_by",
            "head_name",
            "via",
        ),
        Index("ix_declarations_created", "created_at", "id"),
        Index("ix_declarations_filer", "filed_by_cadre", "village_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    receipt: Mapped[str | None] = mapped_column(String(32), unique=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    declared_by: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    head_name: Mapped[str] = mapped_column(String(60))
    phone: Mapped[str] = mapped_column(String(20), index=True)
    risk_type: Mapped[str] = mapped_column(String(32))  # the main one: the first of risk_types
    risk_types: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    description: Mapped[str] = mapped_column(Text)
    relation: Mapped[str | None] = mapped_column(String(32))
    filed_by_cadre: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    household_size: Mapped[int | None] = mapped_column()
    # 身份证号: encrypted (id_sealed) for display and export, keyed hash (id_fingerprint) to find repeats.
    id_sealed: Mapped[str | None] = mapped_column(Text)
    id_fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)
    followups: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))
    consent_version: Mapped[str | None] = mapped_column(String(32))
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The household agreed to hear of its case by text message (on the form, or to the cadre who filed).
    sms_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    via: Mapped[str] = mapped_column(String(8), default="chat", server_default=text("'chat'"))
    green_channel: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    notice_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(32), index=True)
    verdict: Mapped[str | None] = mapped_column(String(32))
    verdict_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TaskRow(Base):
    __tablename__ = "tasks"
    # The console's list: a scope's due times in order, its overdue steps, without reading a row.
    __table_args__ = (Index("ix_tasks_console", "village_id", "due_at", "status", "declaration_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    declaration_id: Mapped[int] = mapped_column(ForeignKey("declarations.id"), index=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    routed_to: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    step: Mapped[str | None] = mapped_column(String(32))
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the deadline tick must next look at this task (a reminder, a warning, escalation);
    # indexed so a tick reads only what is due.
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)


class AttachmentRow(Base):
    """A voice note, photo or added text that came with a declaration or was added later."""

    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    declaration_id: Mapped[int] = mapped_column(ForeignKey("declarations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(Text)
    duration: Mapped[int | None] = mapped_column()
    added_by: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class CaseEventRow(Base):
    """Append-only: who did what to a case, and when. Never updated or deleted."""

    __tablename__ = "case_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    declaration_id: Mapped[int] = mapped_column(ForeignKey("declarations.id"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class OutboxRow(Base):
    """A message to a person on a channel, written with the change that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        # Messages to one person go out in order: the claim looks for an earlier open one.
        Index("ix_outbox_person_open", "person_id", "status", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    external_id: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(String(500))
    # The worker whose claim this is (status sending); taken back at once when that worker is dead.
    claimed_by: Mapped[str | None] = mapped_column(String(40))


class SmsSendRow(Base):
    """A text message handed to the SMS provider: what the per-number limits count, and where its
    delivery receipt is written. One per outbox row (its `out_id`, sent as the provider's
    OutId/SessionContext, finds it again after a time-out and in receipts)."""

    __tablename__ = "sms_sends"
    __table_args__ = (Index("ix_sms_sends_phone", "phone", "kind", "accepted_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"), unique=True)
    out_id: Mapped[str] = mapped_column(String(64), unique=True)
    phone: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(16))
    provider_id: Mapped[str | None] = mapped_column(String(64), index=True)
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # None until a receipt comes: "delivered" or "undelivered" (with the provider's code).
    delivery: Mapped[str | None] = mapped_column(String(16))
    delivery_code: Mapped[str | None] = mapped_column(String(64))
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ScheduledRow(Base):
    """Something due at a time: survives restarts; the tick finds due rows through ix_schedule_due."""

    __tablename__ = "schedule"
    __table_args__ = (Index("ix_schedule_due", "status", "due_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))


class NoticeRow(Base):
    """A township notice, scheduled or sent (one being written is its writer's conversation)."""

    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_author_status", "author_id", "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    township_id: Mapped[int] = mapped_column(ForeignKey("townships.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    status: Mapped[str] = mapped_column(String(16))
    body: Mapped[str | None] = mapped_column(Text)
    audience: Mapped[dict[str, Any]] = mapped_column(JSON)
    media: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # a photo or document sent with it
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    remind_rounds: Mapped[int] = mapped_column(default=0)


class NoticeRecipientRow(Base):
    __tablename__ = "notice_recipients"
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CampaignRow(Base):
    """A campaign of the township (集中排查...): phases with deadlines over some villages."""

    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(primary_key=True)
    township_id: Mapped[int] = mapped_column(ForeignKey("townships.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # {"kind": "half-monthly" | "weekly" | "monthly" | "dates", "dates": [...]}
    reports: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CampaignPhaseRow(Base):
    __tablename__ = "campaign_phases"
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column()
    name: Mapped[str] = mapped_column(String(100))
    deadline: Mapped[date] = mapped_column(Date())


class CampaignVillageRow(Base):
    __tablename__ = "campaign_villages"
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), primary_key=True)


class PhaseDoneRow(Base):
    """A village reported a phase done: its reminders stop."""

    __tablename__ = "phase_done"
    phase_id: Mapped[int] = mapped_column(
        ForeignKey("campaign_phases.id", ondelete="CASCADE"), primary_key=True
    )
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReportRow(Base):
    """A village's progress report for one period of a campaign; a later answer replaces it."""

    __tablename__ = "reports"
    __table_args__ = (
        UniqueConstraint("campaign_id", "period", "village_id", name="uq_reports_period_village"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    period: Mapped[date] = mapped_column(Date())
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    visited: Mapped[int] = mapped_column()
    new_risks: Mapped[int] = mapped_column()
    problems_found: Mapped[int] = mapped_column()
    problems_closed: Mapped[int] = mapped_column()
    note: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class LedgerItemRow(Base):
    """A problem in the ledger (问题台账): what, the measure, deadline, who answers for it."""

    __tablename__ = "ledger_items"
    __table_args__ = (Index("ix_ledger_items_village_status", "village_id", "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"))
    added_by: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    what: Mapped[str] = mapped_column(Text)
    measure: Mapped[str] = mapped_column(Text)
    deadline: Mapped[date] = mapped_column(Date())
    responsible: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))


class QrScanRow(Base):
    """How often a village's printed code was scanned, per print batch, channel and day."""

    __tablename__ = "qr_scans"
    __table_args__ = (UniqueConstraint("village_code", "batch", "channel", "day", name="uq_qr_scans_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    village_code: Mapped[str] = mapped_column(String(16))
    batch: Mapped[str] = mapped_column(String(50))  # "" for codes printed without a batch id
    channel: Mapped[str] = mapped_column(String(16))  # "web" (the landing page) or "telegram"
    day: Mapped[date] = mapped_column(Date())
    count: Mapped[int] = mapped_column(default=0)


class UploadRow(Base):
    """A photo uploaded through the web form, kept with the case (attachments ref it by id)."""

    __tablename__ = "uploads"
    id: Mapped[int] = mapped_column(primary_key=True)
    content_type: Mapped[str] = mapped_column(String(32))
    data: Mapped[bytes] = mapped_column(LargeBinary())
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class RateLimitRow(Base):
    """A counter of one kind of request by one sender in a fixed window, shared by every worker."""

    __tablename__ = "rate_limits"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    hits: Mapped[int] = mapped_column(default=0)


class InboxRow(Base):
    """An update from Telegram, recorded before it is acknowledged (the next getUpdates offset, or
    the webhook's 200): `update_id` is unique, so a redelivered update is a no-op. `done_at` is set
    in the transaction of the handler that processed it; a row without it is processed again from
    its payload (by a worker whose claim it is, or by anyone once that worker is dead)."""

    __tablename__ = "inbox"
    __table_args__ = (Index("ix_inbox_open", "done_at", "chat_id", "update_id"),)
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    worker: Mapped[str | None] = mapped_column(String(40))
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WorkerRow(Base):
    """A running worker process: claims (outbox, inbox) name it; a worker whose heartbeat is
    older than a few seconds is dead, and what it had claimed is taken back at once."""

    __tablename__ = "workers"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    host: Mapped[str] = mapped_column(String(100))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
