"""What notices, the schedule and delivery need from storage, beyond the skeleton's ports."""

from __future__ import annotations

import enum
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from domain.messages import Outgoing
from domain.model import Audience as Audience  # re-exported: notices and benchmarks read it here
from domain.model import Channel, Person, Village
from domain.ports import UnitOfWork


class NoticeStatus(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENT = "sent"
    CANCELLED = "cancelled"


class NoticeStep(enum.StrEnum):
    """The question a draft notice is waiting on."""

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
    step: NoticeStep
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
class Queued:
    """A message a scheduled item wants sent; the tick queues them all in one statement."""

    person_id: int
    message: Outgoing
    key: str


class ScheduleRepository(Protocol):
    async def add(self, key: str, kind: str, due_at: datetime, payload: dict[str, Any], at: datetime) -> bool:
        """Schedule once; False (and nothing changed) when `key` was scheduled before."""
        ...

    async def due(self, now: datetime, limit: int) -> list[ScheduledItem]:
        """The oldest pending items due by `now`, locked for this transaction (others skip them)."""
        ...

    async def done(self, item_ids: list[int], at: datetime) -> None: ...
    async def defer(self, item_ids: list[int], due_at: datetime) -> None: ...
    async def failed(self, item_id: int, at: datetime, error: str) -> None: ...
    def isolated(self) -> AbstractAsyncContextManager[object]:
        """A savepoint: what fails inside is undone without undoing the rest of the tick."""
        ...


class NoticeRepository(Protocol):
    async def add_draft(self, township_id: int, author_id: int, at: datetime) -> Notice: ...
    async def get(self, notice_id: int) -> Notice | None: ...
    async def draft_of(self, author_id: int) -> Notice | None: ...
    async def update_draft(self, notice_id: int, **values: Any) -> bool:
        """Change a draft (body, step, audience, send_at); False when it is no longer a draft."""
        ...

    async def transition(
        self, notice_id: int, *, expected: tuple[NoticeStatus, ...], to: NoticeStatus, at: datetime
    ) -> bool: ...
    async def next_remind_round(self, notice_id: int) -> int: ...
    async def township_villages(self, township_id: int) -> list[Village]: ...
    async def cadres_of_township(self, township_id: int) -> list[Person]: ...
    async def cadres_of_villages(self, village_ids: tuple[int, ...]) -> list[Person]: ...
    async def add_recipients(self, notice_id: int, person_ids: list[int]) -> None: ...
    async def recipients(self, notice_id: int, channel: Channel) -> list[Recipient]: ...
    async def acknowledge(self, notice_id: int, person_id: int, at: datetime) -> bool | None:
        """True when recorded now, False when already acknowledged, None when not a recipient."""
        ...


@dataclass(frozen=True)
class FailedDelivery:
    person_name: str | None
    role: str
    template: str
    error: str
    at: datetime


class DeliveryRepository(Protocol):
    async def mark_unreachable(self, person_id: int, channel: Channel, at: datetime) -> bool:
        """Record that the person blocked us; False when already recorded since the last binding."""
        ...

    async def townships_of(self, person_id: int) -> list[int]: ...
    async def failed_in_township(self, township_id: int, limit: int) -> list[FailedDelivery]:
        """Messages given up on, to people of the township (cadres, staff), newest first."""
        ...

    async def queue_many(self, messages: list[Queued], at: datetime, channel: Channel) -> int:
        """Queue many keyed messages at once; a key queued before is skipped. Returns how many."""
        ...


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


class CampaignRepository(Protocol):
    async def add(
        self, township_id: int, name: str, reports: dict[str, Any], village_ids: list[int], at: datetime
    ) -> int: ...
    async def add_phase(self, campaign_id: int, seq: int, name: str, deadline: date) -> int: ...
    async def phase(self, phase_id: int) -> Phase | None: ...
    async def villages_of(self, campaign_id: int) -> list[Village]: ...
    async def villages_not_done(self, phase_id: int) -> list[Village]: ...
    async def mark_done(self, phase_id: int, village_id: int, person_id: int, at: datetime) -> bool:
        """Record a village's phase done; False when it already was."""
        ...

    async def get(self, campaign_id: int) -> Campaign | None: ...
    async def latest(self, township_id: int) -> Campaign | None: ...
    async def newest_township(self) -> int | None:
        """The township of the newest campaign of all."""
        ...

    async def reports(self, campaign_id: int, period: date | None = None) -> list[Report]: ...
    async def start_draft(
        self, person_id: int, campaign_id: int, period: date, village_id: int, step: str, at: datetime
    ) -> None: ...
    async def draft_of(self, person_id: int) -> ReportDraft | None: ...
    async def update_draft(self, person_id: int, step: str, data: dict[str, Any], at: datetime) -> None: ...
    async def drop_draft(self, person_id: int) -> bool: ...
    async def save_report(self, draft: ReportDraft, data: dict[str, Any], at: datetime) -> None:
        """Store (or replace) the village's report for the period and close the draft."""
        ...


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


class LedgerRepository(Protocol):
    async def add(
        self,
        village_id: int,
        added_by: int,
        what: str,
        measure: str,
        deadline: date,
        responsible: str,
        at: datetime,
    ) -> int: ...
    async def get(self, item_id: int) -> LedgerItem | None: ...
    async def close(self, item_id: int, person_id: int, at: datetime) -> bool:
        """整改销号; False when it was already closed."""
        ...

    async def of_villages(self, village_ids: tuple[int, ...], *, open_only: bool) -> list[LedgerItem]: ...
    async def of_township(self, township_id: int) -> list[LedgerItem]: ...
    async def draft_of(self, person_id: int) -> tuple[str, dict[str, Any]] | None: ...
    async def save_draft(self, person_id: int, step: str, data: dict[str, Any], at: datetime) -> None: ...
    async def drop_draft(self, person_id: int) -> bool: ...


class NotificationsUnitOfWork(UnitOfWork, Protocol):
    @property
    def ledger(self) -> LedgerRepository: ...
    @property
    def campaigns(self) -> CampaignRepository: ...
    @property
    def schedule(self) -> ScheduleRepository: ...
    @property
    def notices(self) -> NoticeRepository: ...
    @property
    def delivery(self) -> DeliveryRepository: ...
