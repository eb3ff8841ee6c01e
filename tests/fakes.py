"""In-memory fakes of the unit of work (cosmicpython's FakeUnitOfWork and FakeRepository), and a
small world of people to run use cases in: the first layer of tests, no database at all.

Every repository keeps the semantics the use cases rely on, read from the SQL implementation in
storage/ (tests/domain/test_fakes.py runs the same checks on both): an id is never given twice (as
PostgreSQL's sequences; a new conversation gets a new id), the conditional updates
(`declarations.transition`, `tasks.close`, `tasks.hand_over`, `conversations.finish`, ...) say
False when the row was not as expected, the outbox skips a key queued before and a person with no
address, and what goes into a JSON column comes back as JSON does.

A unit of work undoes what it changed unless committed, as storage/uow.py's does: the state is
copied when it begins (and at each commit) and put back when it ends. Units of work run one at a
time; a second opened inside the first is a test's mistake and raises.

What was queued is readable as data: `FakeUnitOfWorkFactory.sent` (and `uow.outbox.sent`) lists
(person_id, Outgoing, key), and `texts_to(person_id)` the catalog keys, so tests assert on keys.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, timedelta
from types import TracebackType
from typing import Any, NamedTuple, Self, TypeVar

from bot.crypto import FernetProtector
from bot.deadlines import PolicyRules
from domain import delivery
from domain.actor import Actor, actor_for
from domain.buttons import Button
from domain.cases import FINAL, receipt_number, submit_declaration
from domain.messages import Outcome, Outgoing, Queued
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
    LedgerStatus,
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
from domain.policy import load_policy
from domain.ports import CasePage, CaseQuery, CaseRow, Fingerprint, UnitOfWork, UnitOfWorkFactory
from handlers.context import Services
from tests.support import FakeClock

T = TypeVar("T")


def _json(value: T) -> T:
    """`value` as a JSON column gives it back (and a TypeError where the column would refuse it)."""
    result: T = json.loads(json.dumps(value))
    return result


# --- what the fake outbox records ------------------------------------------------------------------


class Sent(NamedTuple):
    """A message queued for a person; `key` None for a reply (storage makes it a random one)."""

    person_id: int
    message: Outgoing
    key: str | None


class Edit(NamedTuple):
    """An edit of a message already sent: a redraw, or a press's disarm (`message` None)."""

    person_id: int
    message_id: int
    message: Outgoing | None
    key: str
    token: int


# --- the rows ---------------------------------------------------------------------------------------


@dataclass
class _Account:
    person_id: int
    bound_at: datetime
    unreachable_at: datetime | None = None


@dataclass
class _InviteRow:
    person_id: int
    token_hash: str
    expires_at: datetime
    used_at: datetime | None = None


@dataclass
class _ScheduledRow:
    key: str
    kind: str
    payload: dict[str, Any]
    due_at: datetime
    created_at: datetime
    status: str = "pending"
    done_at: datetime | None = None
    last_error: str | None = None


@dataclass
class _CampaignRow:
    township_id: int
    name: str
    reports: dict[str, Any]
    created_at: datetime


@dataclass
class _PhaseRow:
    campaign_id: int
    seq: int
    name: str
    deadline: date


@dataclass
class _LedgerRow:
    village_id: int
    added_by: int
    what: str
    measure: str
    deadline: date
    responsible: str
    status: LedgerStatus
    created_at: datetime
    closed_at: datetime | None = None
    closed_by: int | None = None


@dataclass
class _FailedRow:
    person_id: int
    template: str
    error: str
    at: datetime


# The rows whose fields are changed (a used invite, a schedule item done): copied to be put back.
_ROWS = (_Account, _InviteRow, _ScheduledRow, _CampaignRow, _PhaseRow, _LedgerRow, _FailedRow)


@dataclass
class Store:
    """Every table, in memory. The id counters stand outside what a rollback puts back: as a
    database's sequences, an id once given is never given again."""

    townships: dict[int, Township] = field(default_factory=dict)
    villages: dict[int, Village] = field(default_factory=dict)  # township_name filled when read
    persons: dict[int, Person] = field(default_factory=dict)  # village_ids kept in `links`
    links: dict[int, tuple[int, ...]] = field(default_factory=dict)  # person -> villages (cadre_villages)
    accounts: dict[tuple[str, str], _Account] = field(default_factory=dict)  # (channel, address)
    invites: dict[int, _InviteRow] = field(default_factory=dict)
    conversations: dict[int, Conversation] = field(default_factory=dict)  # by person: one open each
    declarations: dict[int, Declaration] = field(default_factory=dict)
    fingerprints: dict[int, str | None] = field(default_factory=dict)  # declaration -> id_fingerprint
    tasks: dict[int, Task] = field(default_factory=dict)
    checks: dict[int, datetime | None] = field(default_factory=dict)  # task -> next_check_at
    attachments: list[Attachment] = field(default_factory=list)
    events: list[CaseEvent] = field(default_factory=list)
    outbox: list[Sent] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)  # the outbox's unique keys (messages and edits)
    failed: list[_FailedRow] = field(default_factory=list)
    limits: dict[str, tuple[datetime, int]] = field(default_factory=dict)  # key -> (window start, hits)
    schedule: dict[int, _ScheduledRow] = field(default_factory=dict)
    notices: dict[int, Notice] = field(default_factory=dict)
    recipients: dict[tuple[int, int], datetime | None] = field(default_factory=dict)
    campaigns: dict[int, _CampaignRow] = field(default_factory=dict)
    campaign_villages: dict[int, list[int]] = field(default_factory=dict)
    phases: dict[int, _PhaseRow] = field(default_factory=dict)
    phases_done: dict[tuple[int, int], tuple[int, datetime]] = field(default_factory=dict)
    reports: dict[tuple[int, date, int], Report] = field(default_factory=dict)
    ledger: dict[int, _LedgerRow] = field(default_factory=dict)
    scans: dict[tuple[str, str, str, date], int] = field(default_factory=dict)
    uploads: dict[int, tuple[str, bytes, datetime]] = field(default_factory=dict)
    login_links: dict[int, tuple[str, LoginLink]] = field(default_factory=dict)  # id -> (hash, link)
    sessions: dict[int, tuple[str, ConsoleSession]] = field(default_factory=dict)  # id -> (hash, session)
    counters: dict[str, itertools.count[int]] = field(default_factory=dict)
    busy: bool = False  # a unit of work is open on it

    def next_id(self, table: str) -> int:
        return next(self.counters.setdefault(table, itertools.count(1)))

    def snapshot(self) -> dict[str, Any]:
        return {f.name: _copy(getattr(self, f.name)) for f in fields(self) if f.name not in _KEPT}

    def restore(self, snapshot: dict[str, Any]) -> None:
        for name, table in snapshot.items():
            setattr(self, name, _copy(table))

    # Reads shared by the repositories and the tests' assertions.

    def person(self, person_id: int) -> Person | None:
        found = self.persons.get(person_id)
        if found is None:
            return None
        # Villages are a cadre's (or staff's) assignment; a household's person has none to read.
        villages = () if found.role is Role.FARMER else tuple(sorted(self.links.get(person_id, ())))
        return replace(found, village_ids=villages)

    def village(self, village_id: int) -> Village | None:
        found = self.villages.get(village_id)
        if found is None:
            return None
        return replace(found, township_name=self.townships[found.township_id].name)

    def bound(self, person_id: int) -> list[tuple[Channel, str]]:
        """The person's addresses, by channel."""
        return [
            (Channel(channel), address)
            for (channel, address), account in self.accounts.items()
            if account.person_id == person_id
        ]

    def channel_of(self, person_id: int) -> Channel | None:
        """The first channel of CHANNELS the person has an address on (as the outbox chooses)."""
        have = {channel for channel, _ in self.bound(person_id)}
        return next((channel for channel in delivery.CHANNELS if channel in have), None)

    def queue(self, person_id: int, message: Outgoing, key: str | None) -> bool:
        if self.channel_of(person_id) is None or (key is not None and key in self.keys):
            return False
        _json(message.to_json())  # the payload column takes JSON only
        if key is not None:
            self.keys.add(key)
        self.outbox.append(Sent(person_id, message, key))
        return True


_KEPT = ("counters", "busy")  # what a rollback does not put back


def _copy(table: Any) -> Any:
    """A table copied deep enough to be put back: its rows are frozen dataclasses (never changed),
    or rows whose fields are reassigned, never changed in place; so one level is copied."""
    if isinstance(table, dict):
        return {key: _row(value) for key, value in table.items()}
    if isinstance(table, list):
        return [_row(value) for value in table]
    if isinstance(table, set):
        return set(table)
    return table


def _row(value: Any) -> Any:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, _ROWS):
        return copy.copy(value)
    return value


class _Repo:
    def __init__(self, store: Store) -> None:
        self.s = store


# --- people and places ------------------------------------------------------------------------------


class FakeGeography(_Repo):
    async def township_by_name(self, name: str) -> Township | None:
        return next((t for t in self.s.townships.values() if t.name == name), None)

    async def townships(self) -> list[Township]:
        return [self.s.townships[i] for i in sorted(self.s.townships)]

    def _sorted(self, ids: Iterable[int]) -> list[Village]:
        found = [v for v in (self.s.village(i) for i in ids) if v is not None]
        return sorted(found, key=lambda v: v.code)

    async def villages_in(self, township_id: int) -> list[Village]:
        return self._sorted(i for i, v in self.s.villages.items() if v.township_id == township_id)

    async def all_villages(self) -> list[Village]:
        return self._sorted(self.s.villages)

    async def add_township(self, name: str, county: str | None = None) -> Township:
        township = Township(self.s.next_id("townships"), name, county)
        self.s.townships[township.id] = township
        return township

    async def set_township_county(self, township_id: int, county: str | None) -> None:
        if township_id in self.s.townships:
            self.s.townships[township_id] = replace(self.s.townships[township_id], county=county)

    async def townships_of_county(self, county: str) -> list[Township]:
        return [self.s.townships[i] for i in sorted(self.s.townships) if self.s.townships[i].county == county]

    async def village_by_code(self, code: str) -> Village | None:
        found = next((i for i, v in self.s.villages.items() if v.code == code), None)
        return self.s.village(found) if found is not None else None

    async def village(self, village_id: int) -> Village | None:
        return self.s.village(village_id)

    async def villages(self, village_ids: tuple[int, ...]) -> list[Village]:
        return self._sorted(set(village_ids))

    async def add_village(self, code: str, name: str, township_id: int) -> Village:
        village_id = self.s.next_id("villages")
        self.s.villages[village_id] = Village(village_id, code, name, township_id)
        found = self.s.village(village_id)
        assert found is not None
        return found

    async def update_village(self, village_id: int, name: str, township_id: int) -> None:
        if village_id in self.s.villages:
            self.s.villages[village_id] = replace(
                self.s.villages[village_id], name=name, township_id=township_id
            )


class FakePersons(_Repo):
    async def get(self, person_id: int) -> Person | None:
        return self.s.person(person_id)

    async def by_phone(self, phone: str) -> Person | None:
        found = next((p.id for p in self.s.persons.values() if p.phone == phone), None)
        return self.s.person(found) if found is not None else None

    async def by_address(self, channel: Channel, address: str) -> Person | None:
        account = self.s.accounts.get((channel.value, address))
        return self.s.person(account.person_id) if account else None

    async def add(
        self,
        role: Role,
        *,
        name: str | None = None,
        phone: str | None = None,
        township_id: int | None = None,
        locale: str | None = None,
        county: str | None = None,
    ) -> Person:
        person = Person(
            self.s.next_id("persons"), role, name, phone, township_id, locale[:16] if locale else None,
            county=county,
        )  # fmt: skip
        self.s.persons[person.id] = person
        return person

    async def update(
        self,
        person_id: int,
        *,
        role: Role,
        name: str | None,
        township_id: int | None,
        county: str | None = None,
    ) -> None:
        if person_id in self.s.persons:
            self.s.persons[person_id] = replace(
                self.s.persons[person_id], role=role, name=name, township_id=township_id, county=county
            )

    async def of_county(self, county: str) -> list[Person]:
        return self._people(
            i for i, p in self.s.persons.items() if p.role is Role.COUNTY and p.county == county
        )

    async def set_villages(self, person_id: int, village_ids: tuple[int, ...]) -> None:
        self.s.links[person_id] = tuple(dict.fromkeys(village_ids))

    async def set_locale(self, person_id: int, locale: str | None) -> None:
        if person_id in self.s.persons:
            self.s.persons[person_id] = replace(self.s.persons[person_id], locale=locale)

    async def bind(self, person_id: int, channel: Channel, address: str, at: datetime) -> None:
        """Point the address at this person, taking it from whoever had it before (and the person
        keeps one address per channel)."""
        for key, account in list(self.s.accounts.items()):
            if key[0] == channel.value and (key[1] == address or account.person_id == person_id):
                del self.s.accounts[key]
        self.s.accounts[(channel.value, address)] = _Account(person_id, at)

    async def address_of(self, person_id: int, channel: Channel) -> str | None:
        return next((a for c, a in self.s.bound(person_id) if c is channel), None)

    def _people(self, ids: Iterable[int]) -> list[Person]:
        return [p for p in (self.s.person(i) for i in sorted(set(ids))) if p is not None]

    async def cadres_of_village(self, village_id: int) -> list[Person]:
        return self._people(
            i
            for i, p in self.s.persons.items()
            if p.role is Role.CADRE and village_id in self.s.links.get(i, ())
        )

    async def staff_of_township(self, township_id: int) -> list[Person]:
        return self._people(
            i for i, p in self.s.persons.items() if p.role is Role.TOWNSHIP and p.township_id == township_id
        )

    async def reachable(self, person_ids: list[int]) -> set[int]:
        return {i for i in person_ids if any(c in delivery.CHANNELS for c, _ in self.s.bound(i))}


class FakeLogins(_Repo):
    async def add_link(
        self, person_id: int, token_hash: str, expires_at: datetime, at: datetime
    ) -> LoginLink:
        link = LoginLink(self.s.next_id("login_links"), person_id, expires_at, None)
        self.s.login_links[link.id] = (token_hash, link)
        return link

    async def link(self, token_hash: str) -> LoginLink | None:
        return next((link for h, link in self.s.login_links.values() if h == token_hash), None)

    async def use_link(self, link_id: int, at: datetime) -> bool:
        found = self.s.login_links.get(link_id)
        if found is None or found[1].used_at is not None:
            return False
        self.s.login_links[link_id] = (found[0], replace(found[1], used_at=at))
        return True

    async def add_session(self, person_id: int, role: Role, token_hash: str, at: datetime) -> ConsoleSession:
        session = ConsoleSession(self.s.next_id("console_sessions"), person_id, role, at, at)
        self.s.sessions[session.id] = (token_hash, session)
        return session

    async def find_session(self, token_hash: str) -> ConsoleSession | None:
        return next((found for h, found in self.s.sessions.values() if h == token_hash), None)

    async def touch(self, session_id: int, at: datetime) -> None:
        if session_id in self.s.sessions:
            h, found = self.s.sessions[session_id]
            self.s.sessions[session_id] = (h, replace(found, last_seen_at=at))

    async def end(self, session_id: int, at: datetime, why: str) -> bool:
        found = self.s.sessions.get(session_id)
        if found is None or found[1].ended_at is not None:
            return False
        self.s.sessions[session_id] = (found[0], replace(found[1], ended_at=at))
        return True

    async def end_for(self, person_id: int, at: datetime, why: str) -> int:
        ended = [
            i
            for i, (_, found) in self.s.sessions.items()
            if found.person_id == person_id and not found.ended_at
        ]
        for session_id in ended:
            await self.end(session_id, at, why)
        return len(ended)


class FakeInvites(_Repo):
    def _invite(self, invite_id: int) -> Invite:
        row = self.s.invites[invite_id]
        return Invite(invite_id, row.person_id, row.expires_at, row.used_at)

    async def add(self, person_id: int, token_hash: str, expires_at: datetime) -> Invite:
        invite_id = self.s.next_id("invites")
        self.s.invites[invite_id] = _InviteRow(person_id, token_hash, expires_at)
        return self._invite(invite_id)

    async def by_hash(self, token_hash: str) -> Invite | None:
        found = next((i for i, row in self.s.invites.items() if row.token_hash == token_hash), None)
        return self._invite(found) if found is not None else None

    async def use(self, invite_id: int, at: datetime) -> bool:
        row = self.s.invites.get(invite_id)
        if row is None or row.used_at is not None:
            return False
        row.used_at = at
        return True

    async def revoke(self, person_id: int, at: datetime) -> int:
        unused = [
            row for row in self.s.invites.values() if row.person_id == person_id and row.used_at is None
        ]
        for row in unused:
            row.used_at = at
        return len(unused)


# --- conversations and cases ------------------------------------------------------------------------


class FakeConversations(_Repo):
    def _by_id(self, conversation_id: int) -> Conversation | None:
        return next((c for c in self.s.conversations.values() if c.id == conversation_id), None)

    @staticmethod
    def _out(conv: Conversation) -> Conversation:
        return replace(conv, data=_json(conv.data))

    async def get(self, person_id: int) -> Conversation | None:
        conv = self.s.conversations.get(person_id)
        return self._out(conv) if conv else None

    async def start(
        self, person_id: int, flow: Flow, step: str, data: dict[str, Any], at: datetime
    ) -> Conversation:
        conv = Conversation(self.s.next_id("conversations"), person_id, flow, str(step), _json(data), at)
        self.s.conversations[person_id] = conv  # the open one, if any, is gone with its id
        return self._out(conv)

    async def update(self, conversation_id: int, step: str, data: dict[str, Any], at: datetime) -> bool:
        conv = self._by_id(conversation_id)
        if conv is None:
            return False
        self.s.conversations[conv.person_id] = replace(
            conv, step=str(step), data=_json(data), updated_at=at, reminded_at=None
        )
        return True

    async def finish(self, conversation_id: int) -> bool:
        conv = self._by_id(conversation_id)
        if conv is None:
            return False
        del self.s.conversations[conv.person_id]
        return True

    async def idle(self, flow: Flow, before: datetime, limit: int = 500) -> list[Conversation]:
        found = [c for c in self.s.conversations.values() if c.flow is flow and c.updated_at < before]
        return [self._out(c) for c in sorted(found, key=lambda c: c.updated_at)[:limit]]

    async def mark_reminded(self, conversation_id: int, at: datetime) -> bool:
        conv = self._by_id(conversation_id)
        if conv is None or conv.reminded_at is not None:
            return False
        self.s.conversations[conv.person_id] = replace(conv, reminded_at=at)
        return True


class FakeDeclarations(_Repo):
    async def add(self, new: NewDeclaration, at: datetime) -> Declaration:
        declaration_id = self.s.next_id("declarations")
        declaration = Declaration(
            id=declaration_id,
            # The receipt shows the day in the service's time zone, which `at` carries.
            receipt=receipt_number(at.date(), declaration_id),
            village_id=new.village_id,
            declared_by=new.declared_by,
            head_name=new.head_name,
            phone=new.phone,
            risk_types=tuple(new.risk_types),
            description=new.description,
            status=DeclarationStatus.SUBMITTED,
            created_at=at,
            relation=new.relation,
            filed_by_cadre=new.filed_by_cadre,
            household_size=new.household_size,
            id_sealed=new.id_sealed,
            followups=_json(dict(new.followups)),
            consent_version=new.consent_version,
            sms_consent_at=new.sms_consent_at,
            via=new.via,
        )
        self.s.declarations[declaration_id] = declaration
        self.s.fingerprints[declaration_id] = str(new.id_fingerprint) if new.id_fingerprint else None
        return declaration

    async def open_for_household(
        self, *, phone: str | None, id_fingerprint: str | None, since: datetime
    ) -> Declaration | None:
        """The newest open declaration since `since` with this phone or this ID number."""
        if not phone and not id_fingerprint:
            return None
        prints: tuple[str, ...] = ()
        if id_fingerprint:
            # A Fingerprint also names the value under older keys: rows not yet re-keyed still match.
            prints = (
                id_fingerprint.variants() if isinstance(id_fingerprint, Fingerprint) else (id_fingerprint,)
            )
        for declaration_id in sorted(self.s.declarations, reverse=True):
            d = self.s.declarations[declaration_id]
            matches = (bool(phone) and d.phone == phone) or self.s.fingerprints.get(declaration_id) in prints
            if matches and d.created_at >= since and d.status.open:
                return d
        return None

    async def by_declarant(self, person_id: int, limit: int = 10) -> list[Declaration]:
        found = [d for d in self.s.declarations.values() if d.declared_by == person_id]
        return sorted(found, key=lambda d: d.id, reverse=True)[:limit]

    async def count_since(
        self,
        since: datetime,
        *,
        declarant_id: int | None = None,
        filer_id: int | None = None,
        phone: str | None = None,
    ) -> int:
        return sum(
            1
            for d in self.s.declarations.values()
            if d.created_at >= since
            and (declarant_id is None or d.declared_by == declarant_id)
            and (filer_id is None or filer_id in (d.declared_by, d.filed_by_cadre))
            and (phone is None or d.phone == phone)
        )

    async def lock_phone(self, phone: str) -> None:
        """One unit of work at a time: nothing to lock."""

    async def set_notice_start(self, declaration_id: int, at: datetime) -> None:
        if declaration_id in self.s.declarations:
            self.s.declarations[declaration_id] = replace(
                self.s.declarations[declaration_id], notice_started_at=at
            )

    async def in_villages(
        self, village_ids: tuple[int, ...], *, since: datetime | None = None, until: datetime | None = None
    ) -> list[Declaration]:
        return [
            self.s.declarations[i]
            for i in sorted(self.s.declarations)
            if self.s.declarations[i].village_id in village_ids
            and (since is None or self.s.declarations[i].created_at >= since)
            and (until is None or self.s.declarations[i].created_at < until)
        ]

    async def set_green_channel(self, declaration_id: int) -> bool:
        found = self.s.declarations.get(declaration_id)
        if found is None or found.green_channel:
            return False
        self.s.declarations[declaration_id] = replace(found, green_channel=True)
        return True

    async def get(self, declaration_id: int) -> Declaration | None:
        return self.s.declarations.get(declaration_id)

    async def by_receipt(self, receipt: str) -> Declaration | None:
        return next((d for d in self.s.declarations.values() if d.receipt == receipt), None)

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
        found = self.s.declarations.get(declaration_id)
        if found is None or found.status is not expected:
            return False
        moved = replace(found, status=to)
        if verdict is not None:  # as storage: the reason is written with a verdict only
            moved = replace(moved, verdict=verdict, verdict_reason=reason)
        self.s.declarations[declaration_id] = moved
        return True


class FakeTasks(_Repo):
    async def add(
        self,
        declaration_id: int,
        village_id: int,
        routed_to: RoutedTo,
        at: datetime,
        due_at: datetime | None = None,
        step: str | None = None,
        next_check_at: datetime | None = None,
    ) -> Task:
        task = Task(
            self.s.next_id("tasks"), declaration_id, village_id, routed_to, TaskStatus.OPEN, at,
            due_at=due_at, step=step,
        )  # fmt: skip
        self.s.tasks[task.id] = task
        self.s.checks[task.id] = next_check_at
        return task

    async def get(self, task_id: int) -> Task | None:
        return self.s.tasks.get(task_id)

    async def for_declaration(self, declaration_id: int) -> Task | None:
        found = [t for t in self.s.tasks.values() if t.declaration_id == declaration_id]
        return max(found, key=lambda t: t.id) if found else None

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
        found = self.s.tasks.get(task_id)
        if found is None:
            return
        moved = replace(
            found,
            status=status,
            step=step,
            due_at=due_at,
            reminded_at=None,
            warned_at=None,
            escalated_at=None,
        )
        if owner is not None:
            moved = replace(moved, acknowledged_by=owner)
        self.s.tasks[task_id] = moved
        self.s.checks[task_id] = next_check_at

    async def due_for_check(self, now: datetime, limit: int) -> list[Task]:
        due = [(at, i) for i, at in self.s.checks.items() if at is not None and at <= now]
        return [self.s.tasks[i] for _, i in sorted(due)[:limit]]

    async def mark(self, task_id: int, *, field: str, at: datetime, next_check_at: datetime | None) -> None:
        if field not in ("reminded_at", "warned_at", "escalated_at"):
            raise ValueError(field)
        if task_id in self.s.tasks:
            marked: dict[str, Any] = {field: at}
            self.s.tasks[task_id] = replace(self.s.tasks[task_id], **marked)
            self.s.checks[task_id] = next_check_at

    async def reschedule(self, task_id: int, next_check_at: datetime | None) -> None:
        if task_id in self.s.tasks:
            self.s.checks[task_id] = next_check_at

    async def open_in(self, village_ids: tuple[int, ...]) -> list[Task]:
        found = [
            t
            for t in self.s.tasks.values()
            if t.village_id in village_ids and t.status in (TaskStatus.OPEN, TaskStatus.ACKNOWLEDGED)
        ]
        # The soonest due first, those with no due time last.
        return sorted(found, key=lambda t: (t.due_at is None, t.due_at or datetime.min, t.id))

    async def hand_over(self, task_id: int, *, expected_owner: int | None, to: int) -> bool:
        found = self.s.tasks.get(task_id)
        if found is None or found.acknowledged_by != expected_owner:
            return False
        self.s.tasks[task_id] = replace(found, acknowledged_by=to)
        return True

    async def close(self, task_id: int) -> bool:
        found = self.s.tasks.get(task_id)
        if found is None or found.status is not TaskStatus.OPEN:
            return False
        self.s.tasks[task_id] = replace(found, status=TaskStatus.CLOSED)
        return True


class FakeAttachments(_Repo):
    async def add(self, attachment: Attachment) -> None:
        self.s.attachments.append(attachment)

    async def for_declaration(self, declaration_id: int) -> list[Attachment]:
        return [a for a in self.s.attachments if a.declaration_id == declaration_id]


class FakeEvents(_Repo):
    async def add(self, event: CaseEvent) -> None:
        self.s.events.append(replace(event, data=_json(event.data)))

    async def for_declaration(self, declaration_id: int) -> list[CaseEvent]:
        return [e for e in self.s.events if e.declaration_id == declaration_id]


# --- the outbox and the limits ----------------------------------------------------------------------


class FakeOutbox(_Repo):
    """Records what is queued (`sent`); the edits of pressed messages are recorded in `edits`."""

    @property
    def sent(self) -> list[Sent]:
        return list(self.s.outbox)

    def texts_to(self, person_id: int) -> list[str]:
        """The catalog keys of the messages queued for the person, in order."""
        return [m.message.template for m in self.s.outbox if m.person_id == person_id]

    async def add(
        self,
        person_id: int,
        message: Outgoing,
        *,
        at: datetime,
        key: str | None = None,
    ) -> bool:
        return self.s.queue(person_id, message, key)

    async def hold_press(self, person_id: int, message_id: int, *, at: datetime, key: str) -> int | None:
        if Channel.TELEGRAM not in {c for c, _ in self.s.bound(person_id)} or key in self.s.keys:
            return None
        token = -self.s.next_id("holds")
        self.s.keys.add(key)
        self.s.edits.append(Edit(person_id, message_id, None, key, token))
        return token

    async def settle_press(
        self, person_id: int, held: int, *, keep: bool, ack: str | None, text: bool
    ) -> None:
        """Drop the disarm when the press did not take effect; otherwise leave it (nothing folds)."""
        if not keep:
            self.s.edits = [e for e in self.s.edits if not (e.person_id == person_id and e.token == held)]

    async def redraw(
        self,
        person_id: int,
        message_id: int,
        message: Outgoing,
        *,
        at: datetime,
        key: str,
    ) -> None:
        if Channel.TELEGRAM not in {c for c, _ in self.s.bound(person_id)} or key in self.s.keys:
            return
        _json(message.to_json())
        self.s.keys.add(key)
        self.s.edits.append(Edit(person_id, message_id, message, key, 0))

    async def editing(self, person_id: int, message_id: int) -> bool:
        """No sender drains the fake outbox: every edit queued is still on its way."""
        return any(e.person_id == person_id and e.message_id == message_id for e in self.s.edits)

    async def disarm(self, person_id: int, key: str, *, at: datetime) -> None:
        """No sender drains the fake outbox: the message under `key` still waits, so its buttons
        are dropped (as storage does with a pending row)."""
        self.s.outbox = [
            Sent(m.person_id, replace(m.message, actions=()), m.key)
            if m.person_id == person_id and m.key == key
            else m
            for m in self.s.outbox
        ]


class FakeRateLimits(_Repo):
    async def hit(self, key: str, *, limit: int, window: timedelta, now: datetime) -> bool:
        """A fixed window that starts at the first request; counted even when over the limit."""
        key = key[:100]
        start, hits = self.s.limits.get(key, (now, 0))
        if start <= now - window:
            start, hits = now, 0
        self.s.limits[key] = (start, hits + 1)
        return hits + 1 <= limit

    async def forget(self, before: datetime) -> int:
        old = [k for k, (start, _) in self.s.limits.items() if start < before]
        for k in old:
            del self.s.limits[k]
        return len(old)


# --- the schedule, notices, delivery ----------------------------------------------------------------


class FakeSchedule(_Repo):
    async def add(self, key: str, kind: str, due_at: datetime, payload: dict[str, Any], at: datetime) -> bool:
        if any(row.key == key for row in self.s.schedule.values()):
            return False
        self.s.schedule[self.s.next_id("schedule")] = _ScheduledRow(key, kind, _json(payload), due_at, at)
        return True

    async def due(self, now: datetime, limit: int) -> list[ScheduledItem]:
        found = sorted(
            (row.due_at, i)
            for i, row in self.s.schedule.items()
            if row.status == "pending" and row.due_at <= now
        )
        return [
            ScheduledItem(
                i, self.s.schedule[i].key, self.s.schedule[i].kind, _json(self.s.schedule[i].payload), at
            )
            for at, i in found[:limit]
        ]

    async def done(self, item_ids: list[int], at: datetime) -> None:
        for i in item_ids:
            if i in self.s.schedule:
                self.s.schedule[i].status, self.s.schedule[i].done_at = "done", at

    async def defer(self, item_ids: list[int], due_at: datetime) -> None:
        for i in item_ids:
            if i in self.s.schedule:
                self.s.schedule[i].due_at = due_at

    async def failed(self, item_id: int, at: datetime, error: str) -> None:
        row = self.s.schedule.get(item_id)
        if row is not None:
            row.status, row.done_at, row.last_error = "failed", at, error[:500]

    def isolated(self) -> AbstractAsyncContextManager[object]:
        return _savepoint(self.s)


@asynccontextmanager
async def _savepoint(store: Store) -> AsyncIterator[object]:
    """What fails inside is undone without undoing the rest (a SAVEPOINT)."""
    saved = store.snapshot()
    try:
        yield saved
    except BaseException:
        store.restore(saved)
        raise


class FakeNotices(_Repo):
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
        notice = Notice(
            self.s.next_id("notices"), township_id, author_id, NoticeStatus.SCHEDULED, body,
            _json(audience), send_at, at, media=_json(media),
        )  # fmt: skip
        self.s.notices[notice.id] = notice
        return notice

    async def get(self, notice_id: int) -> Notice | None:
        return self.s.notices.get(notice_id)

    async def transition(
        self, notice_id: int, *, expected: tuple[NoticeStatus, ...], to: NoticeStatus, at: datetime
    ) -> bool:
        found = self.s.notices.get(notice_id)
        if found is None or found.status not in expected:
            return False
        moved = replace(found, status=to)
        self.s.notices[notice_id] = replace(moved, sent_at=at) if to is NoticeStatus.SENT else moved
        return True

    async def next_remind_round(self, notice_id: int) -> int:
        found = self.s.notices.get(notice_id)
        if found is None:
            return 0
        self.s.notices[notice_id] = replace(found, remind_rounds=found.remind_rounds + 1)
        return found.remind_rounds + 1

    async def township_villages(self, township_id: int) -> list[Village]:
        return await FakeGeography(self.s).villages_in(township_id)

    def _people(self, ids: Iterable[int]) -> list[Person]:
        found = [self.s.persons[i] for i in sorted(set(ids)) if i in self.s.persons]
        return [replace(p, village_ids=tuple(sorted(self.s.links.get(p.id, ())))) for p in found]

    async def cadres_of_township(self, township_id: int) -> list[Person]:
        in_township = {i for i, v in self.s.villages.items() if v.township_id == township_id}
        return self._people(
            p.id
            for p in self.s.persons.values()
            if p.role is Role.CADRE
            and (p.township_id == township_id or set(self.s.links.get(p.id, ())) & in_township)
        )

    async def cadres_of_villages(self, village_ids: tuple[int, ...]) -> list[Person]:
        return self._people(
            p.id
            for p in self.s.persons.values()
            if p.role is Role.CADRE and set(self.s.links.get(p.id, ())) & set(village_ids)
        )

    async def add_recipients(self, notice_id: int, person_ids: list[int]) -> None:
        for person_id in person_ids:
            if (notice_id, person_id) in self.s.recipients:
                raise ValueError("a recipient added twice (a unique key in storage)")
            self.s.recipients[(notice_id, person_id)] = None

    async def recipients(self, notice_id: int) -> list[Recipient]:
        found = []
        for (n, person_id), acknowledged_at in sorted(self.s.recipients.items(), key=lambda kv: kv[0][1]):
            person = self.s.persons.get(person_id)
            if n != notice_id or person is None:
                continue
            # Reachable: an address on a channel messages go by, and not blocked there.
            reachable = any(
                account.person_id == person_id
                and Channel(channel) in delivery.CHANNELS
                and account.unreachable_at is None
                for (channel, _), account in self.s.accounts.items()
            )
            shown = Person(id=person.id, role=person.role, name=person.name, township_id=person.township_id)
            found.append(Recipient(shown, acknowledged_at, reachable))
        return found

    async def acknowledge(self, notice_id: int, person_id: int, at: datetime) -> bool | None:
        key = (notice_id, person_id)
        if key not in self.s.recipients:
            return None
        if self.s.recipients[key] is not None:
            return False
        self.s.recipients[key] = at
        return True

    async def of_township(self, township_id: int, limit: int) -> list[Notice]:
        found = [n for n in self.s.notices.values() if n.township_id == township_id]
        return sorted(found, key=lambda n: n.id, reverse=True)[:limit]


class FakeDelivery(_Repo):
    async def mark_unreachable(self, person_id: int, channel: Channel, at: datetime) -> bool:
        account = next(
            (a for (c, _), a in self.s.accounts.items() if c == channel.value and a.person_id == person_id),
            None,
        )
        if account is None or account.unreachable_at is not None:
            return False
        account.unreachable_at = at
        return True

    async def townships_of(self, person_id: int) -> list[int]:
        person = self.s.persons.get(person_id)
        found = {person.township_id} if person is not None and person.township_id is not None else set()
        found |= {
            self.s.villages[v].township_id for v in self.s.links.get(person_id, ()) if v in self.s.villages
        }
        # A farmer belongs to the townships of the villages they declared in.
        found |= {
            self.s.villages[d.village_id].township_id
            for d in self.s.declarations.values()
            if d.declared_by == person_id and d.village_id in self.s.villages
        }
        return sorted(found)

    async def failed_in_township(self, township_id: int, limit: int) -> list[FailedDelivery]:
        in_villages = {i for i, v in self.s.villages.items() if v.township_id == township_id}
        shown = []
        for row in reversed(self.s.failed):
            person = self.s.persons.get(row.person_id)
            if person is None:
                continue
            declared_here = any(
                d.declared_by == person.id and d.village_id in in_villages
                for d in self.s.declarations.values()
            )
            if (
                person.township_id == township_id
                or set(self.s.links.get(person.id, ())) & in_villages
                or declared_here
            ):
                shown.append(FailedDelivery(person.name, person.role.value, row.template, row.error, row.at))
        return shown[:limit]

    async def queue_many(self, messages: list[Queued], at: datetime) -> int:
        return sum(1 for m in messages if self.s.queue(m.person_id, m.message, m.key))


# --- campaigns, the ledger, scans, uploads -----------------------------------------------------------


class FakeCampaigns(_Repo):
    async def add(
        self, township_id: int, name: str, reports: dict[str, Any], village_ids: list[int], at: datetime
    ) -> int:
        campaign_id = self.s.next_id("campaigns")
        self.s.campaigns[campaign_id] = _CampaignRow(township_id, name, _json(reports), at)
        self.s.campaign_villages[campaign_id] = list(village_ids)
        return campaign_id

    async def add_phase(self, campaign_id: int, seq: int, name: str, deadline: date) -> int:
        phase_id = self.s.next_id("phases")
        self.s.phases[phase_id] = _PhaseRow(campaign_id, seq, name, deadline)
        return phase_id

    async def phase(self, phase_id: int) -> Phase | None:
        row = self.s.phases.get(phase_id)
        if row is None:
            return None
        campaign = self.s.campaigns[row.campaign_id]
        return Phase(phase_id, row.campaign_id, campaign.name, row.seq, row.name, row.deadline)

    def _villages(self, ids: Iterable[int]) -> list[Village]:
        found = [v for v in (self.s.village(i) for i in set(ids)) if v is not None]
        return sorted(found, key=lambda v: v.code)

    async def villages_of(self, campaign_id: int) -> list[Village]:
        return self._villages(self.s.campaign_villages.get(campaign_id, []))

    async def villages_not_done(self, phase_id: int) -> list[Village]:
        row = self.s.phases.get(phase_id)
        if row is None:
            return []
        done = {v for (p, v) in self.s.phases_done if p == phase_id}
        return self._villages(v for v in self.s.campaign_villages.get(row.campaign_id, []) if v not in done)

    async def mark_done(self, phase_id: int, village_id: int, person_id: int, at: datetime) -> bool:
        if (phase_id, village_id) in self.s.phases_done:
            return False
        self.s.phases_done[(phase_id, village_id)] = (person_id, at)
        return True

    def _campaign(self, campaign_id: int | None) -> Campaign | None:
        row = self.s.campaigns.get(campaign_id) if campaign_id is not None else None
        if campaign_id is None or row is None:
            return None
        deadlines = [p.deadline for p in self.s.phases.values() if p.campaign_id == campaign_id]
        return Campaign(
            campaign_id,
            row.township_id,
            row.name,
            _json(row.reports),
            row.created_at,
            max(deadlines, default=date.max),
        )

    async def get(self, campaign_id: int) -> Campaign | None:
        return self._campaign(campaign_id)

    async def latest(self, township_id: int) -> Campaign | None:
        ids = [i for i, row in self.s.campaigns.items() if row.township_id == township_id]
        return self._campaign(max(ids, default=None))

    async def newest_township(self) -> int | None:
        return self.s.campaigns[max(self.s.campaigns)].township_id if self.s.campaigns else None

    async def reports(self, campaign_id: int, period: date | None = None) -> list[Report]:
        found = [
            (p, v, report)
            for (c, p, v), report in self.s.reports.items()
            if c == campaign_id and (period is None or p == period)
        ]
        return [report for _, _, report in sorted(found, key=lambda x: (x[0], x[1]))]

    async def save_report(self, draft: ReportDraft, data: dict[str, Any], at: datetime) -> None:
        self.s.reports[(draft.campaign_id, draft.period, draft.village_id)] = Report(
            draft.village_id, draft.period, int(data["visited"]), int(data["new_risks"]),
            int(data["problems_found"]), int(data["problems_closed"]), str(data.get("note", "")),
            draft.person_id, at,
        )  # fmt: skip

    async def of_township(self, township_id: int, limit: int) -> list[Campaign]:
        ids = sorted(
            (i for i, row in self.s.campaigns.items() if row.township_id == township_id), reverse=True
        )
        return [c for c in (self._campaign(i) for i in ids[:limit]) if c is not None]

    async def phases(self, campaign_id: int) -> list[Phase]:
        found = sorted((row.seq, i) for i, row in self.s.phases.items() if row.campaign_id == campaign_id)
        return [p for p in [await self.phase(i) for _, i in found] if p is not None]


class FakeLedger(_Repo):
    def _item(self, item_id: int) -> LedgerItem:
        row = self.s.ledger[item_id]
        return LedgerItem(
            item_id, row.village_id, self.s.villages[row.village_id].name, row.added_by, row.what,
            row.measure, row.deadline, row.responsible, row.status, row.created_at, row.closed_at,
        )  # fmt: skip

    async def add(
        self,
        village_id: int,
        added_by: int,
        what: str,
        measure: str,
        deadline: date,
        responsible: str,
        at: datetime,
    ) -> int:
        item_id = self.s.next_id("ledger")
        self.s.ledger[item_id] = _LedgerRow(
            village_id, added_by, what, measure, deadline, responsible, LedgerStatus.OPEN, at
        )
        return item_id

    async def get(self, item_id: int) -> LedgerItem | None:
        return self._item(item_id) if item_id in self.s.ledger else None

    async def close(self, item_id: int, person_id: int, at: datetime) -> bool:
        row = self.s.ledger.get(item_id)
        if row is None or row.status is not LedgerStatus.OPEN:
            return False
        row.status, row.closed_at, row.closed_by = LedgerStatus.CLOSED, at, person_id
        return True

    async def of_villages(self, village_ids: tuple[int, ...], *, open_only: bool) -> list[LedgerItem]:
        found = [
            (row.deadline, i)
            for i, row in self.s.ledger.items()
            if row.village_id in village_ids and (not open_only or row.status is LedgerStatus.OPEN)
        ]
        return [self._item(i) for _, i in sorted(found)]

    async def of_township(self, township_id: int) -> list[LedgerItem]:
        found = [
            # Open before closed (the status column sorted descending), then by deadline.
            (row.status is not LedgerStatus.OPEN, row.deadline, i)
            for i, row in self.s.ledger.items()
            if self.s.villages[row.village_id].township_id == township_id
        ]
        return [self._item(i) for _, _, i in sorted(found)]


class FakeScans(_Repo):
    async def count(self, village_code: str, batch: str, channel: str, day: date) -> None:
        key = (village_code, batch, channel, day)
        self.s.scans[key] = self.s.scans.get(key, 0) + 1

    async def totals(self) -> list[ScanTotal]:
        found: dict[tuple[str, str], dict[str, int]] = {}
        for (code, batch, channel, _), count in sorted(self.s.scans.items()):
            counts = found.setdefault((code, batch), {})
            counts[channel] = counts.get(channel, 0) + count
        return [
            ScanTotal(code, batch, c.get("web", 0), c.get("telegram", 0))
            for (code, batch), c in found.items()
        ]


class FakeUploads(_Repo):
    async def add(self, content_type: str, data: bytes, at: datetime) -> int:
        upload_id = self.s.next_id("uploads")
        self.s.uploads[upload_id] = (content_type, data, at)
        return upload_id

    async def get(self, upload_id: int) -> tuple[str, bytes] | None:
        found = self.s.uploads.get(upload_id)
        return (found[0], found[1]) if found else None


class FakeCaseViews(_Repo):
    """The console's list of cases, as storage/case_views.py queries it."""

    def _row(self, d: Declaration, t: Task) -> CaseRow:
        village = self.s.village(d.village_id)
        owner = self.s.person(t.acknowledged_by) if t.acknowledged_by else None
        filer = self.s.person(d.filed_by_cadre) if d.filed_by_cadre else None
        return CaseRow(
            declaration_id=d.id, task_id=t.id, receipt=d.receipt, village_id=d.village_id,
            village=village.name if village else "", head_name=d.head_name, status=d.status,
            risk_types=d.risk_types, created_at=d.created_at, due_at=t.due_at, task_status=t.status,
            owner=owner.name if owner else None, filer=filer.name if filer else None,
            daibao=d.filed_by_cadre is not None, by_chat=d.via == "chat",
            green_channel=d.green_channel,
        )  # fmt: skip

    @staticmethod
    def _matches(q: CaseQuery, r: CaseRow, filed_by: int | None) -> bool:
        open_task = r.task_status in (TaskStatus.OPEN, TaskStatus.ACKNOWLEDGED)
        return (
            r.village_id in q.village_ids
            and (q.status is None or r.status is q.status)
            and (q.risk is None or q.risk in r.risk_types)
            and (q.overdue_at is None or (r.due_at is not None and r.due_at < q.overdue_at and open_task))
            and (q.by_chat is None or r.by_chat is q.by_chat)
            and (q.daibao is None or r.daibao is q.daibao)
            and (q.filer is None or filed_by == q.filer)
            and (q.since is None or r.created_at >= q.since)
            and (q.until is None or r.created_at < q.until)
            and (not q.receipt or r.receipt.startswith(q.receipt))
            and (not q.name or q.name in r.head_name)
        )

    @staticmethod
    def _sorted(q: CaseQuery, rows: list[CaseRow]) -> list[CaseRow]:
        keys: dict[str, Callable[[CaseRow], Any]] = {
            "date": lambda r: (r.created_at, r.declaration_id),
            "state": lambda r: (r.status.value, r.declaration_id),
            "village": lambda r: (r.village, r.village_id, r.declaration_id),
            "due": lambda r: (r.due_at, r.declaration_id),
        }
        key = keys.get(q.sort, keys["date"])
        if q.sort == "due":  # nothing due (finished) last, either way
            due = [r for r in rows if r.due_at is not None]
            return sorted(due, key=key, reverse=q.descending) + sorted(
                (r for r in rows if r.due_at is None), key=lambda r: r.declaration_id, reverse=q.descending
            )
        return sorted(rows, key=key, reverse=q.descending)

    async def page(self, query: CaseQuery) -> CasePage:
        tasks = {t.declaration_id: t for t in sorted(self.s.tasks.values(), key=lambda t: t.id)}
        rows = [
            self._row(d, tasks[d.id])
            for d in self.s.declarations.values()
            if d.id in tasks and self._matches(query, self._row(d, tasks[d.id]), d.filed_by_cadre)
        ]
        ordered = self._sorted(query, rows)
        return CasePage(ordered[query.offset : query.offset + query.limit], len(rows))

    async def filers(self, village_ids: tuple[int, ...]) -> list[tuple[int, str]]:
        filed = {
            d.filed_by_cadre
            for d in self.s.declarations.values()
            if d.filed_by_cadre is not None and d.village_id in village_ids
        }
        people = [p for p in (self.s.person(i) for i in filed) if p is not None]
        return sorted(((p.id, p.name or "") for p in people), key=lambda found: (found[1], found[0]))


class FakeOverviewViews(_Repo):
    """The console overview's counts, as storage/overview_views.py's GROUP BYs count them."""

    def _declarations(self, village_ids: tuple[int, ...]) -> list[Declaration]:
        return [d for d in self.s.declarations.values() if d.village_id in village_ids]

    async def by_state(self, village_ids: tuple[int, ...]) -> dict[DeclarationStatus, int]:
        found: dict[DeclarationStatus, int] = {}
        for d in self._declarations(village_ids):
            found[d.status] = found.get(d.status, 0) + 1
        return found

    async def by_risk(self, village_ids: tuple[int, ...]) -> dict[str, int]:
        found: dict[str, int] = {}
        for d in self._declarations(village_ids):
            for code in d.risk_types:
                found[code] = found.get(code, 0) + 1
        return found

    async def declared(self, village_ids: tuple[int, ...], bounds: Sequence[datetime]) -> list[int]:
        made = [d.created_at for d in self._declarations(village_ids)]
        return [sum(1 for at in made if start <= at < end) for start, end in itertools.pairwise(bounds)]

    async def overdue(self, village_ids: tuple[int, ...], now: datetime) -> list[OverdueCount]:
        found: dict[tuple[str, int], set[int]] = {}
        for t in self.s.tasks.values():
            d = self.s.declarations.get(t.declaration_id)
            if (
                d is not None and t.village_id in village_ids and t.step is not None
                and t.status in (TaskStatus.OPEN, TaskStatus.ACKNOWLEDGED)
                and t.due_at is not None and t.due_at < now and d.status not in FINAL
            ):  # fmt: skip
                found.setdefault((t.step, t.village_id), set()).add(d.id)
        return [OverdueCount(step, village, len(cases)) for (step, village), cases in found.items()]

    async def acknowledge_times(
        self, village_ids: tuple[int, ...], since: datetime, until: datetime
    ) -> list[AcknowledgeTime]:
        first: dict[int, datetime] = {}
        for e in self.s.events:
            if e.kind == "acknowledge" and (e.declaration_id not in first or e.at < first[e.declaration_id]):
                first[e.declaration_id] = e.at
        return [
            AcknowledgeTime(d.created_at, first.get(d.id), d.status)
            for d in self._declarations(village_ids)
            if since <= d.created_at < until
        ]

    async def scans(self, village_codes: tuple[str, ...]) -> list[ScanTotal]:
        found: dict[tuple[str, str], dict[str, int]] = {}
        for (code, batch, channel, _), count in self.s.scans.items():
            if code in village_codes:
                counts = found.setdefault((code, batch), {})
                counts[channel] = counts.get(channel, 0) + count
        return [
            ScanTotal(code, batch, c.get("web", 0), c.get("telegram", 0))
            for (code, batch), c in sorted(found.items())
        ]


# --- the unit of work -------------------------------------------------------------------------------


class FakeUnitOfWork:
    """domain.ports.UnitOfWork in memory: what is not committed is undone when it ends."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.geography = FakeGeography(store)
        self.persons = FakePersons(store)
        self.invites = FakeInvites(store)
        self.logins = FakeLogins(store)
        self.conversations = FakeConversations(store)
        self.declarations = FakeDeclarations(store)
        self.tasks = FakeTasks(store)
        self.events = FakeEvents(store)
        self.attachments = FakeAttachments(store)
        self.outbox = FakeOutbox(store)
        self.limits = FakeRateLimits(store)
        self.schedule = FakeSchedule(store)
        self.notices = FakeNotices(store)
        self.delivery = FakeDelivery(store)
        self.campaigns = FakeCampaigns(store)
        self.ledger = FakeLedger(store)
        self.scans = FakeScans(store)
        self.uploads = FakeUploads(store)
        self.overview = FakeOverviewViews(store)
        self.case_views = FakeCaseViews(store)
        self.committed = False  # whether commit() was called (the last thing a use case's caller does)
        self._saved: dict[str, Any] | None = None

    async def __aenter__(self) -> Self:
        if self.store.busy:
            raise RuntimeError("a unit of work is already open on this store (they run one at a time)")
        self.store.busy = True
        self._saved = self.store.snapshot()
        self.committed = False
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.rollback()  # what was changed since the last commit is undone
        finally:
            self.store.busy = False
            self._saved = None

    async def commit(self) -> None:
        assert self._saved is not None, "use the unit of work in `async with`"
        self._saved = self.store.snapshot()
        self.committed = True

    async def rollback(self) -> None:
        assert self._saved is not None, "use the unit of work in `async with`"
        self.store.restore(self._saved)


class FakeUnitOfWorkFactory:
    """Makes units of work over one in-memory store; reads what was committed for assertions."""

    def __init__(self, store: Store | None = None) -> None:
        self.store = store or Store()
        self._read: dict[int, int] = {}

    def __call__(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self.store)

    @property
    def sent(self) -> list[Sent]:
        return list(self.store.outbox)

    def messages_to(self, person_id: int) -> list[Outgoing]:
        return [m.message for m in self.store.outbox if m.person_id == person_id]

    def texts_to(self, person_id: int) -> list[str]:
        """The catalog keys of every message queued for the person, in order."""
        return [m.template for m in self.messages_to(person_id)]

    def unread(self, person_id: int) -> list[Outgoing]:
        """The messages queued for the person since the last call (a dialog, step by step)."""
        messages = self.messages_to(person_id)
        start = min(self._read.get(person_id, 0), len(messages))
        self._read[person_id] = len(messages)
        return messages[start:]

    def fail_delivery(self, person_id: int, template: str, error: str, at: datetime) -> None:
        """Record a message the sender gave up on (there is no sender here)."""
        self.store.failed.append(_FailedRow(person_id, template, error, at))


# mypy proves here that the fakes are a domain.ports.UnitOfWork, repository by repository.
_PROVEN: UnitOfWorkFactory = FakeUnitOfWorkFactory()


# --- a small world ------------------------------------------------------------------------------------

TG = Channel.TELEGRAM
# The chats of the world's people (Telegram chat ids): who presses, by what they are.
CADRE = "101"  # 张伟, cadre of 李家村 (QS01)
CADRE_OTHER_VILLAGE = "102"  # 李娜, cadre of 王家村 (QS02), same township
STAFF = "103"  # 王芳, staff of 青山镇
CADRE_OTHER_TOWNSHIP = "104"  # 刘洋, cadre of 白水村 (BS01), 白水乡
COLLEAGUE = "105"  # 赵强, a second cadre of 李家村
STAFF_OTHER_TOWNSHIP = "106"  # 陈静, staff of 白水乡
FARMER = "9001"  # households: strangers until they first write
OTHER_FARMER = "9002"

UseCase = Callable[[UnitOfWork, FakeClock, Actor], Awaitable[T]]


@dataclass
class World:
    """Two townships, four villages and their bound people (李家村's two cadres, a cadre of each
    other village but QS03, whose cadre 孙丽 never bound a chat; each township's staff)."""

    uow: FakeUnitOfWorkFactory
    clock: FakeClock
    services: Services
    villages: dict[str, Village]  # by code
    people: dict[str, int]  # person id by chat address, and 孙丽's by "unbound"

    def id(self, address: str) -> int:
        """The person of a chat (a household's once it has written)."""
        account = self.uow.store.accounts.get((TG.value, address))
        assert account is not None, f"nobody has written from chat {address}"
        return account.person_id

    async def run(self, address: str, use_case: UseCase[T]) -> T:
        """Run a use case for the person of a chat as a handler does: resolve the actor, call it in
        one unit of work, commit."""
        async with self.uow() as uow:
            actor = await actor_for(uow, self.clock, TG, address)
            result = await use_case(uow, self.clock, actor)
            await uow.commit()
        return result

    async def press(self, address: str, button: Button) -> Outcome:
        """A press as the Telegram handler runs it: the button's packed data to its use case."""
        from handlers.buttons import use_case_for  # the handlers' table of buttons, as the chat

        use_case = use_case_for(button.pack(), self.services)
        assert use_case is not None
        return await self.run(address, use_case)

    async def say(self, address: str, text: str) -> None:
        """Typed text, as the chat's message handler passes it to the router."""
        from domain.conversations import router
        from domain.dialogue import Said

        services = self.services
        await self.run(
            address, lambda uow, clock, actor: router.answer(uow, services, actor, Said.typed(text))
        )

    def texts_to(self, address: str) -> list[str]:
        return self.uow.texts_to(self.id(address))

    def unread(self, address: str) -> list[Outgoing]:
        return self.uow.unread(self.id(address))

    def last_to(self, address: str) -> Outgoing:
        messages = self.uow.messages_to(self.id(address))
        assert messages, f"nothing was sent to {address}"
        return messages[-1]

    def conversation(self, address: str) -> Conversation | None:
        return self.uow.store.conversations.get(self.id(address))

    def declaration(self, declaration_id: int) -> Declaration:
        return self.uow.store.declarations[declaration_id]

    def task_of(self, declaration_id: int) -> Task:
        found = [t for t in self.uow.store.tasks.values() if t.declaration_id == declaration_id]
        assert found, f"declaration {declaration_id} has no task"
        return max(found, key=lambda t: t.id)

    async def declare(
        self,
        address: str = FARMER,
        *,
        village: str = "QS01",
        phone: str = "+8613912345678",
        risks: tuple[str, ...] = ("illness",),
    ) -> Declaration:
        """A declaration submitted by the person of `address` (as the chat's confirm submits it)."""
        village_id = self.villages[village].id

        async def submit(uow: UnitOfWork, clock: FakeClock, actor: Actor) -> Declaration:
            new = NewDeclaration(
                village_id=village_id, declared_by=actor.id, head_name="王大山", phone=phone,
                risk_types=risks, description="老伴住院", consent_version="2026-11", consent_at=clock.now(),
                household_size=4,
            )  # fmt: skip
            return await submit_declaration(
                uow, clock, self.services.rules, actor, new, [], id_masked=None, summary={"name": "王大山"}
            )

        return await self.run(address, submit)


def services(uow: FakeUnitOfWorkFactory, clock: FakeClock) -> Services:
    """What the handlers get from the wiring, over the fakes."""
    return Services(
        uow=uow,
        clock=clock,
        qr_secret=b"test",
        protector=FernetProtector(b"id:test"),
        # Its own rules each time: they remember the years the calendar did not know.
        rules=PolicyRules(load_policy("anhui")),
        default_locale="zh_Hans",
        wake_sender=lambda: None,
    )


async def build_world(clock: FakeClock | None = None) -> World:
    """The world, committed; households appear when they first write (`World.run`)."""
    clock = clock or FakeClock()
    factory = FakeUnitOfWorkFactory()
    villages: dict[str, Village] = {}
    people: dict[str, int] = {}
    async with factory() as uow:
        qingshan = await uow.geography.add_township("青山镇")
        baishui = await uow.geography.add_township("白水乡")
        for code, name, township in (
            ("QS01", "李家村", qingshan),
            ("QS02", "王家村", qingshan),
            ("QS03", "陈家村", qingshan),
            ("BS01", "白水村", baishui),
        ):
            villages[code] = await uow.geography.add_village(code, name, township.id)
        for address, name, role, village, township, phone in (
            (CADRE, "张伟", Role.CADRE, "QS01", qingshan, "+8613800000001"),
            (CADRE_OTHER_VILLAGE, "李娜", Role.CADRE, "QS02", qingshan, "+8613800000002"),
            (STAFF, "王芳", Role.TOWNSHIP, None, qingshan, "+8613800000003"),
            (CADRE_OTHER_TOWNSHIP, "刘洋", Role.CADRE, "BS01", baishui, "+8613800000004"),
            (COLLEAGUE, "赵强", Role.CADRE, "QS01", qingshan, "+8613800000005"),
            (STAFF_OTHER_TOWNSHIP, "陈静", Role.TOWNSHIP, None, baishui, "+8613800000006"),
            ("unbound", "孙丽", Role.CADRE, "QS03", qingshan, "+8613800000007"),
        ):
            person = await uow.persons.add(role, name=name, phone=phone, township_id=township.id)
            if village is not None:
                await uow.persons.set_villages(person.id, (villages[village].id,))
            if address != "unbound":
                await uow.persons.bind(person.id, TG, address, clock.now())
            people[address] = person.id
        await uow.commit()
    return World(factory, clock, services(factory, clock), villages, people)
