"""What the domain needs from outside: one unit of work (its repositories), a clock, the
procedure's time limits and a protector of sensitive values."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, Self

from domain.messages import Outgoing, Queued
from domain.model import (
    AcknowledgeTime,
    Attachment,
    Campaign,
    CaseEvent,
    Channel,
    ConsoleSession,
    Conversation,
    Declaration,
    DeclarationStatus,
    FailedDelivery,
    Flow,
    Invite,
    LedgerItem,
    LoginLink,
    NewDeclaration,
    Notice,
    NoticeStatus,
    OverdueCount,
    Person,
    Phase,
    Recipient,
    Report,
    ReportDraft,
    Role,
    RoutedTo,
    ScanTotal,
    ScheduledItem,
    Task,
    TaskStatus,
    Township,
    Verdict,
    Village,
)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in the service's time zone."""
        ...


class DeadlineRules(Protocol):
    """The time limits of the procedure (from the policy file, on the official calendar)."""

    def due(self, step: str, start: datetime) -> datetime:
        """When `step` begun at `start` is due.

        Steps: "acknowledge", "visit", "feedback", "whole", "public_notice".
        """
        ...

    def notice_ends(self, start: datetime) -> datetime:
        """The earliest a public notice (村内公示) begun at `start` may end."""
        ...

    @property
    def remind_before(self) -> timedelta:
        """How long before a due time its owner is reminded."""
        ...

    @property
    def escalation(self) -> tuple[tuple[timedelta, str], ...]:
        """(time after the due time, "owner" or "township"), in order: 预警, then up to the township."""
        ...

    def quiet(self, moment: datetime) -> bool:
        """Within quiet hours (22:00-07:00 by default): reminders wait, unless urgent."""
        ...

    def next_outside_quiet(self, moment: datetime) -> datetime: ...

    def take_unknown_years(self) -> set[int]:
        """Years the official calendar did not know since last asked (weekdays were used)."""
        ...


class Unreadable(Exception):
    """A sealed value that no key opens (made under a key the service no longer has)."""


class Fingerprint(str):
    """A fingerprint as it is stored (under the current key) that also carries the same value's
    fingerprints under older keys, so a lookup finds rows not yet re-keyed. It is a `str`, so the
    use cases pass it along unchanged; stored or serialised it is the current fingerprint alone."""

    earlier: tuple[str, ...]

    def __new__(cls, current: str, earlier: tuple[str, ...] = ()) -> Fingerprint:
        made = super().__new__(cls, current)
        made.earlier = tuple(e for e in earlier if e != current)
        return made

    def variants(self) -> tuple[str, ...]:
        """The current fingerprint first, then those under older keys."""
        return (str(self), *self.earlier)


class Protector(Protocol):
    """Keeps sensitive values (ID numbers) unreadable at rest."""

    def seal(self, value: str) -> str:
        """Encrypt `value` for storage (under the current key)."""
        ...

    def unseal(self, token: str) -> str:
        """The value `seal` encrypted; `Unreadable` when no key opens it."""
        ...

    def fingerprint(self, value: str) -> str:
        """A keyed hash of `value`: equal values match, the value cannot be read back. It may be a
        `Fingerprint`, which repositories also match under its older keys."""
        ...


class GeographyRepository(Protocol):
    async def township_by_name(self, name: str) -> Township | None: ...
    async def townships(self) -> list[Township]: ...
    async def villages_in(self, township_id: int) -> list[Village]: ...
    async def all_villages(self) -> list[Village]: ...
    async def add_township(self, name: str, county: str | None = None) -> Township: ...
    async def set_township_county(self, township_id: int, county: str | None) -> None: ...
    async def townships_of_county(self, county: str) -> list[Township]: ...
    async def village_by_code(self, code: str) -> Village | None: ...
    async def village(self, village_id: int) -> Village | None: ...
    async def villages(self, village_ids: tuple[int, ...]) -> list[Village]: ...
    async def add_village(self, code: str, name: str, township_id: int) -> Village: ...
    async def update_village(self, village_id: int, name: str, township_id: int) -> None: ...


class PersonRepository(Protocol):
    async def get(self, person_id: int) -> Person | None: ...
    async def by_phone(self, phone: str) -> Person | None: ...
    async def by_address(self, channel: Channel, address: str) -> Person | None: ...
    async def add(
        self,
        role: Role,
        *,
        name: str | None = None,
        phone: str | None = None,
        township_id: int | None = None,
        locale: str | None = None,
        county: str | None = None,
    ) -> Person: ...
    async def update(
        self,
        person_id: int,
        *,
        role: Role,
        name: str | None,
        township_id: int | None,
        county: str | None = None,
    ) -> None: ...
    async def of_county(self, county: str) -> list[Person]:
        """The county's people (role county)."""
        ...

    async def set_villages(self, person_id: int, village_ids: tuple[int, ...]) -> None: ...
    async def set_locale(self, person_id: int, locale: str | None) -> None: ...
    async def bind(self, person_id: int, channel: Channel, address: str, at: datetime) -> None: ...
    async def address_of(self, person_id: int, channel: Channel) -> str | None: ...
    async def cadres_of_village(self, village_id: int) -> list[Person]: ...
    async def staff_of_township(self, township_id: int) -> list[Person]: ...
    async def reachable(self, person_ids: list[int]) -> set[int]:
        """Those of `person_ids` with an address on a channel messages go by (domain.delivery)."""
        ...


class InviteRepository(Protocol):
    async def add(self, person_id: int, token_hash: str, expires_at: datetime) -> Invite: ...
    async def by_hash(self, token_hash: str) -> Invite | None: ...
    async def use(self, invite_id: int, at: datetime) -> bool:
        """Mark used; False when it already was (one use only)."""
        ...

    async def revoke(self, person_id: int, at: datetime) -> int:
        """Mark every unused invite of the person as used; how many were."""
        ...


class LoginRepository(Protocol):
    """One-time sign-in links and the console's sessions (only hashes of their tokens are kept)."""

    async def add_link(
        self, person_id: int, token_hash: str, expires_at: datetime, at: datetime
    ) -> LoginLink: ...
    async def link(self, token_hash: str) -> LoginLink | None: ...
    async def use_link(self, link_id: int, at: datetime) -> bool:
        """Mark used; False when it already was (one use only)."""
        ...

    async def add_session(
        self, person_id: int, role: Role, token_hash: str, at: datetime
    ) -> ConsoleSession: ...
    async def find_session(self, token_hash: str) -> ConsoleSession | None: ...
    async def touch(self, session_id: int, at: datetime) -> None: ...
    async def end(self, session_id: int, at: datetime, why: str) -> bool:
        """End a session; False when it had ended before."""
        ...

    async def end_for(self, person_id: int, at: datetime, why: str) -> int:
        """End every open session of a person (their role changed); how many."""
        ...


class ConversationRepository(Protocol):
    async def get(self, person_id: int) -> Conversation | None: ...
    async def start(
        self, person_id: int, flow: Flow, step: str, data: dict[str, Any], at: datetime
    ) -> Conversation:
        """Replace any open conversation of the person with a new one (new id)."""
        ...

    async def update(self, conversation_id: int, step: str, data: dict[str, Any], at: datetime) -> bool: ...
    async def finish(self, conversation_id: int) -> bool:
        """Close it; False when it was already closed (so a double submit does nothing)."""
        ...

    async def idle(self, flow: Flow, before: datetime, limit: int = 500) -> list[Conversation]: ...
    async def mark_reminded(self, conversation_id: int, at: datetime) -> bool: ...


class DeclarationRepository(Protocol):
    async def add(self, new: NewDeclaration, at: datetime) -> Declaration: ...
    async def open_for_household(
        self, *, phone: str | None, id_fingerprint: str | None, since: datetime
    ) -> Declaration | None: ...
    async def by_declarant(self, person_id: int, limit: int = 10) -> list[Declaration]: ...
    async def count_since(
        self,
        since: datetime,
        *,
        declarant_id: int | None = None,
        filer_id: int | None = None,
        phone: str | None = None,
    ) -> int:
        """Declarations made since `since` by this declarant, or declared or filed (代报) by this
        person, or with this phone."""

    async def lock_phone(self, phone: str) -> None:
        """Until this transaction ends, no other worker counts or adds declarations of `phone`
        (so a limit per phone holds across workers; SQLite has one writer anyway)."""
        ...

    async def set_notice_start(self, declaration_id: int, at: datetime) -> None: ...
    async def in_villages(
        self, village_ids: tuple[int, ...], *, since: datetime | None = None, until: datetime | None = None
    ) -> list[Declaration]: ...
    async def set_green_channel(self, declaration_id: int) -> bool:
        """Open the green channel; False when it already was."""
        ...

    async def get(self, declaration_id: int) -> Declaration | None: ...
    async def by_receipt(self, receipt: str) -> Declaration | None: ...
    async def transition(
        self,
        declaration_id: int,
        *,
        expected: DeclarationStatus,
        to: DeclarationStatus,
        at: datetime,
        verdict: Verdict | None = None,
        reason: str | None = None,
    ) -> bool:
        """Move from `expected` to `to`; False when the declaration was not in `expected`."""
        ...


class TaskRepository(Protocol):
    async def add(
        self,
        declaration_id: int,
        village_id: int,
        routed_to: RoutedTo,
        at: datetime,
        due_at: datetime | None = None,
        step: str | None = None,
        next_check_at: datetime | None = None,
    ) -> Task: ...
    async def get(self, task_id: int) -> Task | None: ...
    async def for_declaration(self, declaration_id: int) -> Task | None: ...
    async def advance(
        self,
        task_id: int,
        *,
        status: TaskStatus,
        owner: int | None,
        step: str | None,
        due_at: datetime | None,
        next_check_at: datetime | None,
        at: datetime,
    ) -> None:
        """The task after a move (`at`, on the service's clock): status, owner (when given; signed
        for at `at`), the next due step and its clock."""
        ...

    async def due_for_check(self, now: datetime, limit: int) -> list[Task]:
        """Tasks whose deadline needs looking at now (a reminder, a warning, an escalation)."""
        ...

    async def mark(self, task_id: int, *, field: str, at: datetime, next_check_at: datetime | None) -> None:
        """Record a reminder ("reminded_at"), warning ("warned_at") or escalation ("escalated_at")."""
        ...

    async def reschedule(self, task_id: int, next_check_at: datetime | None) -> None: ...
    async def open_in(self, village_ids: tuple[int, ...]) -> list[Task]:
        """Unfinished tasks of these villages, the soonest due first."""
        ...

    async def hand_over(self, task_id: int, *, expected_owner: int | None, to: int) -> bool: ...
    async def close(self, task_id: int) -> bool:
        """Close a task nobody acknowledged yet; False when someone did first."""
        ...


class AttachmentRepository(Protocol):
    async def add(self, attachment: Attachment) -> None: ...
    async def for_declaration(self, declaration_id: int) -> list[Attachment]: ...


class EventLog(Protocol):
    async def add(self, event: CaseEvent) -> None: ...
    async def for_declaration(self, declaration_id: int) -> list[CaseEvent]: ...


class Outbox(Protocol):
    async def add(
        self,
        person_id: int,
        message: Outgoing,
        *,
        at: datetime,
        key: str | None = None,
    ) -> bool:
        """Queue a message on the first channel of domain.delivery.CHANNELS the person has an
        address on; False (and nothing queued) when `key` was queued before, or when the person
        has no address at all (never bound: nothing would reach them).

        A reply to what a person just did needs no key; a notification caused by a change
        of state gets one derived from that change, so it can never be queued twice.
        """
        ...

    async def hold_press(self, person_id: int, message_id: int, *, at: datetime, key: str) -> int | None:
        """Before a pressed button's use case runs: queue the taking away of its keyboard first,
        so it goes before whatever the use case queues. Returns what `settle_press` needs."""
        ...

    async def settle_press(
        self, person_id: int, held: int, *, keep: bool, ack: str | None, text: bool
    ) -> None:
        """After the use case: drop the held edit (`keep` False: the press did not take effect),
        or fold it into the first message the use case queued for the person when that can be
        an edit of the pressed `text` message (one call: "✓ <answer>" and the next question),
        or leave it (only the keyboard goes)."""
        ...

    async def redraw(
        self,
        person_id: int,
        message_id: int,
        message: Outgoing,
        *,
        at: datetime,
        key: str,
    ) -> None:
        """Queue an edit of `message_id` into `message` (a toggled list), retried like a message."""
        ...

    async def editing(self, person_id: int, message_id: int) -> bool:
        """Whether an edit of `message_id` is still queued or on its way (being retried)."""
        ...

    async def disarm(self, person_id: int, key: str, *, at: datetime) -> None:
        """Take the buttons away from the message queued for the person under `key` (its offer is
        over: a case someone has signed): once sent, an edit of its keyboard, retried like a
        message; while it waits, its buttons are dropped. Nothing when none was queued."""
        ...


class RateLimits(Protocol):
    async def hit(self, key: str, *, limit: int, window: timedelta, now: datetime) -> bool:
        """Count a request under `key`; False once more than `limit` came in the window."""
        ...

    async def forget(self, before: datetime) -> int: ...


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
    async def add(
        self,
        township_id: int,
        author_id: int,
        *,
        body: str,
        audience: dict[str, Any],
        media: dict[str, str] | None,
        send_at: datetime | None,
        at: datetime,
    ) -> Notice:
        """Store a notice written in chat, scheduled (sent at once by `dispatch` when not for later)."""
        ...

    async def get(self, notice_id: int) -> Notice | None: ...

    async def transition(
        self, notice_id: int, *, expected: tuple[NoticeStatus, ...], to: NoticeStatus, at: datetime
    ) -> bool: ...
    async def next_remind_round(self, notice_id: int) -> int: ...
    async def township_villages(self, township_id: int) -> list[Village]: ...
    async def cadres_of_township(self, township_id: int) -> list[Person]: ...
    async def cadres_of_villages(self, village_ids: tuple[int, ...]) -> list[Person]: ...
    async def add_recipients(self, notice_id: int, person_ids: list[int]) -> None: ...
    async def recipients(self, notice_id: int) -> list[Recipient]: ...
    async def acknowledge(self, notice_id: int, person_id: int, at: datetime) -> bool | None:
        """True when recorded now, False when already acknowledged, None when not a recipient."""
        ...

    async def of_township(self, township_id: int, limit: int) -> list[Notice]:
        """The township's notices, newest first."""
        ...


class DeliveryRepository(Protocol):
    async def mark_unreachable(self, person_id: int, channel: Channel, at: datetime) -> bool:
        """Record that the person blocked us; False when already recorded since the last binding."""
        ...

    async def townships_of(self, person_id: int) -> list[int]: ...
    async def failed_in_township(self, township_id: int, limit: int) -> list[FailedDelivery]:
        """Messages given up on, to people of the township (cadres, staff), newest first."""
        ...

    async def queue_many(self, messages: list[Queued], at: datetime) -> int:
        """Queue many keyed messages at once, each on its person's channel (as `Outbox.add`); a
        key queued before is skipped. Returns how many."""
        ...


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
    async def save_report(self, draft: ReportDraft, data: dict[str, Any], at: datetime) -> None:
        """Store (or replace) the village's report for the period."""
        ...

    async def of_township(self, township_id: int, limit: int) -> list[Campaign]:
        """The township's campaigns, newest first."""
        ...

    async def phases(self, campaign_id: int) -> list[Phase]:
        """A campaign's phases, in order."""
        ...


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


class ScanRepository(Protocol):
    async def count(self, village_code: str, batch: str, channel: str, day: date) -> None: ...
    async def totals(self) -> list[ScanTotal]: ...


class UploadRepository(Protocol):
    async def add(self, content_type: str, data: bytes, at: datetime) -> int: ...
    async def get(self, upload_id: int) -> tuple[str, bytes] | None:
        """An uploaded file's content type and bytes."""
        ...


@dataclass(frozen=True)
class CaseQuery:
    """One page of the console's list of cases: the villages in scope and the filters, each
    already checked by the use case (domain.office.cases); None means "any"."""

    village_ids: tuple[int, ...]
    status: DeclarationStatus | None = None
    risk: str | None = None  # a risk type's code, among any of the declaration's
    overdue_at: datetime | None = None  # only unfinished cases whose step was due before this
    by_chat: bool | None = None  # True: declared in chat (Declaration.via); False: on the web form
    daibao: bool | None = None  # True: filed by a cadre (代报); False: by the household
    filer: int | None = None  # filed by this cadre
    since: datetime | None = None  # submitted at or after
    until: datetime | None = None  # submitted before
    receipt: str | None = None  # a receipt number, or its first digits
    name: str | None = None  # part of the head of household's name
    sort: str = "date"  # "date", "due", "state" or "village"
    descending: bool = True
    offset: int = 0
    limit: int = 50


@dataclass(frozen=True)
class CaseRow:
    """A case as a line of the console's list."""

    declaration_id: int
    task_id: int
    receipt: str
    village_id: int
    village: str
    head_name: str
    status: DeclarationStatus
    risk_types: tuple[str, ...]
    created_at: datetime
    due_at: datetime | None
    task_status: TaskStatus
    owner: str | None  # who acknowledged it
    filer: str | None  # the cadre who filed it (代报)
    daibao: bool
    by_chat: bool  # False: declared on the web form (Declaration.via)
    green_channel: bool


@dataclass(frozen=True)
class CasePage:
    """A page of the list, and how many cases match: all of them when `exact`, else at least
    `total` (counting a filter no index holds stops some pages past this one)."""

    rows: list[CaseRow]
    total: int
    exact: bool = True


class CaseViews(Protocol):
    """The console's reading of cases: a filtered, sorted page of them."""

    async def page(self, query: CaseQuery) -> CasePage:
        """The page of cases `query` asks for, and how many match it."""
        ...

    async def filers(self, village_ids: tuple[int, ...]) -> list[tuple[int, str]]:
        """The cadres who filed (代报) cases of these villages: id and name, by name."""
        ...


class OverviewViews(Protocol):
    """The console's overview counted by the database, each over the villages given (the
    caller's scope) and nothing else; times are compared as stored, bounds are the caller's."""

    async def by_state(self, village_ids: tuple[int, ...]) -> dict[DeclarationStatus, int]: ...
    async def by_risk(self, village_ids: tuple[int, ...]) -> dict[str, int]:
        """Declarations naming each risk type (one naming two is counted under both)."""
        ...

    async def declared(self, village_ids: tuple[int, ...], bounds: Sequence[datetime]) -> list[int]:
        """Declarations made between each two consecutive `bounds` (one count fewer than bounds)."""
        ...

    async def overdue(self, village_ids: tuple[int, ...], now: datetime) -> list[OverdueCount]:
        """Cases still being worked on whose step was due before `now`, per step and village."""
        ...

    async def acknowledge_times(
        self, village_ids: tuple[int, ...], since: datetime, until: datetime
    ) -> list[AcknowledgeTime]:
        """Declarations made in [since, until), each with its first 签收 (None: none yet)."""
        ...

    async def scans(self, village_codes: tuple[str, ...]) -> list[ScanTotal]:
        """Flyer scans so far of these villages, per village and batch, by channel."""
        ...


class UnitOfWork(Protocol):
    @property
    def geography(self) -> GeographyRepository: ...
    @property
    def persons(self) -> PersonRepository: ...
    @property
    def invites(self) -> InviteRepository: ...
    @property
    def logins(self) -> LoginRepository: ...
    @property
    def conversations(self) -> ConversationRepository: ...
    @property
    def declarations(self) -> DeclarationRepository: ...
    @property
    def tasks(self) -> TaskRepository: ...
    @property
    def events(self) -> EventLog: ...
    @property
    def attachments(self) -> AttachmentRepository: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def limits(self) -> RateLimits: ...
    @property
    def schedule(self) -> ScheduleRepository: ...
    @property
    def notices(self) -> NoticeRepository: ...
    @property
    def delivery(self) -> DeliveryRepository: ...
    @property
    def campaigns(self) -> CampaignRepository: ...
    @property
    def ledger(self) -> LedgerRepository: ...
    @property
    def scans(self) -> ScanRepository: ...
    @property
    def uploads(self) -> UploadRepository: ...
    @property
    def case_views(self) -> CaseViews: ...
    @property
    def overview(self) -> OverviewViews: ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...
