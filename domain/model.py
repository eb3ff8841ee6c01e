"""Entities and value objects of prevent-return-to-poverty monitoring."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

# 防止返贫监测和乡村振兴咨询服务电话, the national hotline shown wherever someone may be stuck.
HOTLINE = "12317"
# An attachment uploaded through the web form is kept in the database; its ref is this plus an id.
UPLOAD_REF = "upload:"


class Role(enum.StrEnum):
    FARMER = "farmer"
    CADRE = "cadre"
    TOWNSHIP = "township"
    COUNTY = "county"  # 县级: sees every township of its county, records 县级审定


class Channel(enum.StrEnum):
    TELEGRAM = "telegram"
    SMS = "sms"  # text messages through the township's SMS provider (address: an 11-digit mobile number)


class DeclarationStatus(enum.StrEnum):
    """Where a declaration is in the procedure (see domain.procedure for the moves)."""

    SUBMITTED = "submitted"
    ACKNOWLEDGED = "acknowledged"  # 签收
    VISITED = "visited"  # 入户核实 recorded
    PROPOSED = "proposed"  # found eligible; 民主评议 to come
    PUBLICIZING = "publicizing"  # 村内公示 under way
    TOWNSHIP_REVIEW = "township_review"  # 乡镇审核
    APPROVED = "approved"  # township approved; 县级确认 and entry to come
    ENTERED = "entered"  # confirmed by the county and entered in the national system
    NOT_ELIGIBLE = "not_eligible"  # 不纳入, the reason fed back
    OBJECTED = "objected"  # the household objected; township re-check
    CLOSED = "closed"  # not eligible, upheld after the re-check
    WITHDRAWN = "withdrawn"

    @property
    def open(self) -> bool:
        """Still being worked on (a repeat declaration adds to it rather than opening another)."""
        return self not in (
            DeclarationStatus.ENTERED,
            DeclarationStatus.NOT_ELIGIBLE,
            DeclarationStatus.CLOSED,
            DeclarationStatus.WITHDRAWN,
        )


class Audience(enum.StrEnum):
    """Who a township notice goes to."""

    CADRES = "cadres"  # every village cadre of the township
    VILLAGES = "villages"  # the cadres of chosen villages
    STAFF = "staff"  # the township's staff (a role)


class Verdict(enum.StrEnum):
    """The result of identification (认定结果)."""

    UNSTABLE = "unstable"  # 脱贫不稳定户
    MARGINAL = "marginal"  # 边缘易致贫户
    SUDDEN = "sudden"  # 突发严重困难户
    NOT_ELIGIBLE = "not_eligible"  # 不纳入

    @property
    def eligible(self) -> bool:
        return self is not Verdict.NOT_ELIGIBLE


class TaskStatus(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    DONE = "done"
    CLOSED = "closed"  # the declaration was withdrawn


class RoutedTo(enum.StrEnum):
    """Who a task went to: the village's cadres, or the township when none is bound."""

    VILLAGE = "village"
    TOWNSHIP = "township"


class Flow(enum.StrEnum):
    """What a person's open conversation is collecting."""

    INTAKE = "intake"
    VERDICT_REASON = "verdict_reason"
    ADD_INFO = "add_info"
    VISIT = "visit"
    OBJECTION = "objection"
    CAMPAIGN = "campaign"  # township staff defining a campaign (/campaign)
    NOTICE = "notice"  # township staff writing a notice (/notice)
    REPORT = "report"  # a cadre answering a village's progress report (填报)
    LEDGER = "ledger"  # a cadre adding a problem to the ledger (/problem)


class IntakeStep(enum.StrEnum):
    CONSENT = "consent"
    TOWNSHIP = "township"
    VILLAGE = "village"
    NAME = "name"
    DECLARANT = "declarant"
    RELATION = "relation"
    PHONE = "phone"
    SMS_CONSENT = "sms_consent"  # 代报: whether the household agreed to text messages (texts on)
    ID_NUMBER = "id_number"
    HOUSEHOLD = "household"
    RISKS = "risks"
    FOLLOWUP = "followup"
    DESCRIPTION = "description"
    PHOTOS = "photos"
    CONFIRM = "confirm"


class AttachmentKind(enum.StrEnum):
    TEXT = "text"
    VOICE = "voice"
    PHOTO = "photo"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True)
class Township:
    id: int
    name: str
    county: str | None = None  # the county it belongs to (the roster's county column)


@dataclass(frozen=True)
class Village:
    id: int
    code: str
    name: str
    township_id: int
    township_name: str = ""


@dataclass(frozen=True)
class Person:
    id: int
    role: Role
    name: str | None = None
    phone: str | None = None
    township_id: int | None = None
    locale: str | None = None
    village_ids: tuple[int, ...] = ()
    county: str | None = None  # a county person's county


@dataclass(frozen=True)
class Conversation:
    """A person's unfinished exchange with the bot; `id` changes with every new one."""

    id: int
    person_id: int
    flow: Flow
    step: str
    data: dict[str, Any]
    updated_at: datetime
    reminded_at: datetime | None = None


@dataclass(frozen=True)
class Declaration:
    id: int
    receipt: str
    village_id: int
    declared_by: int
    head_name: str
    phone: str
    risk_types: tuple[str, ...]
    description: str
    status: DeclarationStatus
    created_at: datetime
    verdict: Verdict | None = None
    verdict_reason: str | None = None
    relation: str | None = None  # None: the head of household declared; else the relative's relation
    filed_by_cadre: int | None = None  # 代报: the cadre who filed it for the household
    household_size: int | None = None
    id_sealed: str | None = None  # 身份证号, encrypted; see domain.ports.Protector
    followups: dict[str, Any] = field(default_factory=dict)
    consent_version: str | None = None
    green_channel: bool = False
    notice_started_at: datetime | None = None
    sms_consent_at: datetime | None = None  # agreed to hear of the case by text message
    via: str = "chat"  # the front end it was declared through: "chat" or "web" (domain.actor)

    @property
    def risk_type(self) -> str:
        """The first (main) risk type."""
        return self.risk_types[0]


@dataclass(frozen=True)
class NewDeclaration:
    """What the household declared, as the intake collected it."""

    village_id: int
    declared_by: int
    head_name: str
    phone: str
    risk_types: tuple[str, ...]
    description: str
    consent_version: str
    consent_at: datetime
    relation: str | None = None
    filed_by_cadre: int | None = None
    household_size: int | None = None
    id_sealed: str | None = None
    id_fingerprint: str | None = None
    followups: dict[str, Any] = field(default_factory=dict)
    sms_consent_at: datetime | None = None  # agreed to hear of the case by text message
    via: str = "chat"  # the front end it was declared through: "chat" or "web" (domain.actor)


@dataclass(frozen=True)
class Attachment:
    declaration_id: int
    kind: AttachmentKind
    ref: str  # channel file reference (Telegram file_id), UPLOAD_REF + id, or for text the text itself
    added_by: int
    at: datetime
    duration: int | None = None


@dataclass(frozen=True)
class Task:
    id: int
    declaration_id: int
    village_id: int
    routed_to: RoutedTo
    status: TaskStatus
    created_at: datetime
    acknowledged_by: int | None = None
    decided_by: int | None = None
    due_at: datetime | None = None
    step: str | None = None  # the step whose deadline `due_at` is
    reminded_at: datetime | None = None
    warned_at: datetime | None = None
    escalated_at: datetime | None = None


@dataclass(frozen=True)
class CaseEvent:
    declaration_id: int
    kind: str
    actor_id: int | None
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Invite:
    id: int
    person_id: int
    expires_at: datetime
    used_at: datetime | None


# --- notices, the schedule, delivery, campaigns, reports, the problem ledger, scans ------------


class NoticeStatus(enum.StrEnum):
    SCHEDULED = "scheduled"  # stored when sent, or for later: a notice being written is a conversation
    SENT = "sent"
    CANCELLED = "cancelled"


class NoticeStep(enum.StrEnum):
    """The question a notice being written waits on (its conversation's step)."""

    TEXT = "text"
    AUDIENCE = "audience"
    VILLAGES = "villages"
    WHEN = "when"
    TIME = "time"
    CONFIRM = "confirm"
    DONE = "done"


@dataclass(frozen=True)
class Notice:
    id: int
    township_id: int
    author_id: int
    status: NoticeStatus
    body: str | None
    audience: dict[str, Any]
    send_at: datetime | None
    created_at: datetime
    sent_at: datetime | None = None
    remind_rounds: int = 0
    media: dict[str, str] | None = None


@dataclass(frozen=True)
class Recipient:
    person: Person
    acknowledged_at: datetime | None
    reachable: bool


@dataclass(frozen=True)
class ScheduledItem:
    id: int
    key: str
    kind: str
    payload: dict[str, Any]
    due_at: datetime


@dataclass(frozen=True)
class FailedDelivery:
    person_name: str | None
    role: str
    template: str
    error: str
    at: datetime


@dataclass(frozen=True)
class Phase:
    id: int
    campaign_id: int
    campaign_name: str
    seq: int
    name: str
    deadline: date


class ReportStep(enum.StrEnum):
    VISITED = "visited"
    NEW_RISKS = "new_risks"
    FOUND = "problems_found"
    CLOSED = "problems_closed"
    NOTE = "note"


@dataclass(frozen=True)
class Report:
    village_id: int
    period: date
    visited: int
    new_risks: int
    problems_found: int
    problems_closed: int
    note: str
    person_id: int
    at: datetime


@dataclass(frozen=True)
class ReportDraft:
    """A village's report being answered in chat (its conversation's step and answers)."""

    person_id: int
    campaign_id: int
    period: date
    village_id: int
    step: ReportStep
    data: dict[str, Any]


@dataclass(frozen=True)
class Campaign:
    id: int
    township_id: int
    name: str
    reports: dict[str, Any]
    created_at: datetime
    end: date  # the last phase deadline


class LedgerStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # 整改销号


@dataclass(frozen=True)
class LedgerItem:
    id: int
    village_id: int
    village_name: str
    added_by: int
    what: str
    measure: str
    deadline: date
    responsible: str
    status: LedgerStatus
    created_at: datetime
    closed_at: datetime | None = None


@dataclass(frozen=True)
class ScanTotal:
    village_code: str
    batch: str
    web: int
    telegram: int


# --- the console: sign-in links and sessions --------------------------------------------------------


@dataclass(frozen=True)
class LoginLink:
    """A one-time link to sign in to the console, asked for in chat with /web."""

    id: int
    person_id: int
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True)
class ConsoleSession:
    """A signed-in browser: who, as which role, since when, last seen when."""

    id: int
    person_id: int
    role: Role
    created_at: datetime
    last_seen_at: datetime
    ended_at: datetime | None = None


# --- the console's overview: what its counts come back as ----------------------------------------


@dataclass(frozen=True)
class OverdueCount:
    """Unfinished cases of one village whose step (`step.*`) was due and is not done."""

    step: str
    village_id: int
    count: int


@dataclass(frozen=True)
class AcknowledgeTime:
    """A declaration's arrival and its first 签收 (None: not acknowledged yet)."""

    created_at: datetime
    acknowledged_at: datetime | None
    status: DeclarationStatus
