"""Repositories: read and write rows, return domain dataclasses, never commit."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import and_, case, delete, event, func, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause

from domain.cases import receipt_number
from domain.delivery import CHANNELS
from domain.messages import Outgoing
from domain.model import (
    Attachment,
    AttachmentKind,
    CaseEvent,
    Channel,
    Conversation,
    Declaration,
    DeclarationStatus,
    Flow,
    Invite,
    NewDeclaration,
    OutboxStatus,
    Person,
    Role,
    RoutedTo,
    Task,
    TaskStatus,
    Township,
    Verdict,
    Village,
)
from domain.ports import Fingerprint
from storage import statements
from storage.models import (
    AttachmentRow,
    CadreVillageRow,
    CaseEventRow,
    ChannelAccountRow,
    ConversationRow,
    DeclarationRow,
    InviteRow,
    OutboxRow,
    PersonRow,
    RateLimitRow,
    TaskRow,
    TownshipRow,
    VillageRow,
)
from storage.outbox_store import Claimed, Mark

log = logging.getLogger(__name__)


class Address(NamedTuple):
    """A person's language and address on a channel (as statements.ADDRESS_OF reads them)."""

    locale: str | None
    address: str


class _Repo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session


# A transaction asks "who is this chat?" several times (each flow that looks whether the message
# is its own, the button handler and its use case): the answer is kept for the transaction until
# it writes to one of the tables the answer is made of (or runs a raw write, which may).
_PEOPLE = "persons_by_address"
_ADDRESSES = "addresses_of_persons"
_WRITES = "people_writes"
_PEOPLE_TABLES = frozenset({"persons", "channel_accounts", "cadre_villages"})
# Set when the transaction wrote to the outbox other than through `Outbox` (which knows whether
# what it wrote was handed to the sender already): the sender must look after the commit.
OUTBOX_TOUCHED = "outbox_touched"
_OUTBOX_OWN = "outbox_own_write"


def _people_changed(session: Session) -> None:
    session.info[_WRITES] = session.info.get(_WRITES, 0) + 1


def _count_write(state: Any) -> None:
    statement = state.statement
    if isinstance(statement, TextClause):
        _people_changed(state.session)
        state.session.info[OUTBOX_TOUCHED] = True
    elif state.is_insert or state.is_update or state.is_delete:
        name = getattr(getattr(statement, "table", None), "name", None)
        if name in _PEOPLE_TABLES:
            _people_changed(state.session)
        elif name == "outbox" and not state.session.info.get(_OUTBOX_OWN):
            state.session.info[OUTBOX_TOUCHED] = True


def _count_flush(session: Session, _context: Any) -> None:
    names = {getattr(row, "__tablename__", None) for row in (*session.new, *session.dirty, *session.deleted)}
    if names & _PEOPLE_TABLES:
        _people_changed(session)
    if "outbox" in names:
        session.info[OUTBOX_TOUCHED] = True


@contextlib.contextmanager
def _own_write(session: AsyncSession) -> Iterator[None]:
    """An outbox write by `Outbox` itself, which tracks what it leaves pending."""
    info = session.sync_session.info
    info[_OUTBOX_OWN] = True
    try:
        yield
    finally:
        info.pop(_OUTBOX_OWN, None)


def _people_pending(session: Any) -> bool:
    pending = (*session.new, *session.dirty, *session.deleted)
    return any(getattr(row, "__tablename__", None) in _PEOPLE_TABLES for row in pending)


def _forget(session: Session, _transaction: Any) -> None:
    session.info.pop(_PEOPLE, None)
    session.info.pop(_ADDRESSES, None)


event.listen(Session, "do_orm_execute", _count_write)
event.listen(Session, "after_flush", _count_flush)
event.listen(Session, "after_transaction_end", _forget)


class GeographyRepository(_Repo):
    async def township_by_name(self, name: str) -> Township | None:
        row = await self.session.scalar(select(TownshipRow).where(TownshipRow.name == name))
        return Township(row.id, row.name) if row else None

    async def add_township(self, name: str) -> Township:
        row = TownshipRow(name=name)
        self.session.add(row)
        await self.session.flush()
        return Township(row.id, row.name)

    async def townships(self) -> list[Township]:
        rows = await self.session.scalars(select(TownshipRow).order_by(TownshipRow.id))
        return [Township(row.id, row.name) for row in rows]

    async def villages_in(self, township_id: int) -> list[Village]:
        result = await self.session.execute(
            statements.VILLAGE_ROWS.where(statements.VILLAGES.c.township_id == township_id).order_by(
                statements.VILLAGES.c.code
            )
        )
        return [self._village(found) for found in result.all()]

    async def all_villages(self) -> list[Village]:
        result = await self.session.execute(statements.VILLAGE_ROWS.order_by(statements.VILLAGES.c.code))
        return [self._village(found) for found in result.all()]

    @staticmethod
    def _village(row: Any) -> Village:
        """From a row of statements.VILLAGE_ROWS."""
        return Village(row.id, row.code, row.name, row.township_id, row.township_name)

    @staticmethod
    def village_of(row: VillageRow, township_name: str) -> Village:
        """From a VillageRow and its township's name (an ORM query's)."""
        return Village(row.id, row.code, row.name, row.township_id, township_name)

    async def village_by_code(self, code: str) -> Village | None:
        found = (await self.session.execute(statements.VILLAGE_BY_CODE, {"code": code})).first()
        return self._village(found) if found else None

    async def village(self, village_id: int) -> Village | None:
        found = (await self.session.execute(statements.VILLAGE_BY_ID, {"village_id": village_id})).first()
        return self._village(found) if found else None

    async def villages(self, village_ids: tuple[int, ...]) -> list[Village]:
        if not village_ids:
            return []
        result = await self.session.execute(
            statements.VILLAGE_ROWS.where(statements.VILLAGES.c.id.in_(village_ids)).order_by(
                statements.VILLAGES.c.code
            )
        )
        return [self._village(found) for found in result.all()]

    async def add_village(self, code: str, name: str, township_id: int) -> Village:
        row = VillageRow(code=code, name=name, township_id=township_id)
        self.session.add(row)
        await self.session.flush()
        village = await self.village(row.id)
        assert village is not None
        return village

    async def update_village(self, village_id: int, name: str, township_id: int) -> None:
        await self.session.execute(
            update(VillageRow).where(VillageRow.id == village_id).values(name=name, township_id=township_id)
        )


class PersonRepository(_Repo):
    async def _to_person(self, row: Any) -> Person:
        role = Role(row.role)
        # Villages are a cadre's (or staff's) assignment; a household's person has none to read.
        village_ids = (
            ()
            if role is Role.FARMER
            else await self.session.scalars(statements.VILLAGES_OF, {"person_id": row.id})
        )
        return Person(
            id=row.id,
            role=role,
            name=row.name,
            phone=row.phone,
            township_id=row.township_id,
            locale=row.locale,
            village_ids=tuple(sorted(village_ids)),
        )

    async def _one(self, query: Any) -> Person | None:
        row = await self.session.scalar(query)
        return await self._to_person(row) if row else None

    async def get(self, person_id: int) -> Person | None:
        return await self._one(select(PersonRow).where(PersonRow.id == person_id))

    async def by_phone(self, phone: str) -> Person | None:
        return await self._one(select(PersonRow).where(PersonRow.phone == phone))

    async def by_address(self, channel: Channel, address: str) -> Person | None:
        info = self.session.sync_session.info
        writes = info.get(_WRITES, 0)
        known = info.setdefault(_PEOPLE, {})
        key = (channel.value, address)
        hit = known.get(key)
        if hit is not None and hit[0] == writes and not _people_pending(self.session):
            return hit[1]
        row = (
            await self.session.execute(
                statements.PERSON_BY_ADDRESS, {"channel": channel.value, "address": address}
            )
        ).first()
        person = await self._to_person(row) if row else None
        known[key] = (info.get(_WRITES, 0), person)
        if person is not None:  # the outbox needs no second look to address a reply to this chat
            info.setdefault(_ADDRESSES, {})[(person.id, channel.value)] = (
                info.get(_WRITES, 0),
                Address(person.locale, address),
            )
        return person

    async def add(
        self,
        role: Role,
        *,
        name: str | None = None,
        phone: str | None = None,
        township_id: int | None = None,
        locale: str | None = None,
    ) -> Person:
        row = PersonRow(
            role=role.value,
            name=name,
            phone=phone,
            township_id=township_id,
            locale=locale[:16] if locale else None,
            created_at=_utcnow(),
        )
        self.session.add(row)
        await self.session.flush()
        return await self._to_person(row)

    async def update(self, person_id: int, *, role: Role, name: str | None, township_id: int | None) -> None:
        await self.session.execute(
            update(PersonRow)
            .where(PersonRow.id == person_id)
            .values(role=role.value, name=name, township_id=township_id)
        )

    async def set_villages(self, person_id: int, village_ids: tuple[int, ...]) -> None:
        await self.session.execute(delete(CadreVillageRow).where(CadreVillageRow.person_id == person_id))
        for village_id in village_ids:
            self.session.add(CadreVillageRow(person_id=person_id, village_id=village_id))
        await self.session.flush()

    async def set_locale(self, person_id: int, locale: str | None) -> None:
        await self.session.execute(update(PersonRow).where(PersonRow.id == person_id).values(locale=locale))

    async def bind(self, person_id: int, channel: Channel, address: str, at: datetime) -> None:
        """Point the address at this person, taking it from whoever had it before."""
        await self.session.execute(
            delete(ChannelAccountRow).where(
                ChannelAccountRow.channel == channel.value,
                (ChannelAccountRow.address == address) | (ChannelAccountRow.person_id == person_id),
            )
        )
        self.session.add(
            ChannelAccountRow(person_id=person_id, channel=channel.value, address=address, bound_at=at)
        )
        await self.session.flush()

    async def address_of(self, person_id: int, channel: Channel) -> str | None:
        return await self.session.scalar(
            select(ChannelAccountRow.address).where(
                ChannelAccountRow.person_id == person_id, ChannelAccountRow.channel == channel.value
            )
        )

    async def _many(self, query: Any) -> list[Person]:
        rows = (await self.session.scalars(query.order_by(PersonRow.id))).all()
        return [await self._to_person(row) for row in rows]

    async def cadres_of_village(self, village_id: int) -> list[Person]:
        return await self._many(
            select(PersonRow)
            .join(CadreVillageRow, CadreVillageRow.person_id == PersonRow.id)
            .where(CadreVillageRow.village_id == village_id, PersonRow.role == Role.CADRE.value)
        )

    async def staff_of_township(self, township_id: int) -> list[Person]:
        return await self._many(
            select(PersonRow).where(
                PersonRow.township_id == township_id, PersonRow.role == Role.TOWNSHIP.value
            )
        )

    async def reachable(self, person_ids: list[int]) -> set[int]:
        if not person_ids:
            return set()
        found = await self.session.scalars(
            select(ChannelAccountRow.person_id).where(
                ChannelAccountRow.person_id.in_(person_ids),
                ChannelAccountRow.channel.in_([c.value for c in CHANNELS]),
            )
        )
        return set(found)


class InviteRepository(_Repo):
    @staticmethod
    def _invite(row: InviteRow) -> Invite:
        return Invite(row.id, row.person_id, row.expires_at, row.used_at)

    async def add(self, person_id: int, token_hash: str, expires_at: datetime) -> Invite:
        row = InviteRow(
            person_id=person_id, token_hash=token_hash, created_at=_utcnow(), expires_at=expires_at
        )
        self.session.add(row)
        await self.session.flush()
        return self._invite(row)

    async def by_hash(self, token_hash: str) -> Invite | None:
        row = await self.session.scalar(select(InviteRow).where(InviteRow.token_hash == token_hash))
        return self._invite(row) if row else None

    async def use(self, invite_id: int, at: datetime) -> bool:
        result = await self.session.execute(
            update(InviteRow).where(InviteRow.id == invite_id, InviteRow.used_at.is_(None)).values(used_at=at)
        )
        return _rowcount(result) == 1

    async def revoke(self, person_id: int, at: datetime) -> int:
        result = await self.session.execute(
            update(InviteRow)
            .where(InviteRow.person_id == person_id, InviteRow.used_at.is_(None))
            .values(used_at=at)
        )
        return _rowcount(result)


class ConversationRepository(_Repo):
    @staticmethod
    def _conversation(row: Any) -> Conversation:
        return Conversation(
            row.id, row.person_id, Flow(row.flow), row.step, dict(row.data), row.updated_at, row.reminded_at
        )

    async def get(self, person_id: int) -> Conversation | None:
        row = (await self.session.execute(statements.CONVERSATION_OF, {"person_id": person_id})).first()
        return self._conversation(row) if row else None

    async def start(
        self, person_id: int, flow: Flow, step: str, data: dict[str, Any], at: datetime
    ) -> Conversation:
        await self.session.execute(delete(ConversationRow).where(ConversationRow.person_id == person_id))
        row = ConversationRow(
            person_id=person_id, flow=flow.value, step=str(step), data=data, created_at=at, updated_at=at
        )
        self.session.add(row)
        await self.session.flush()
        return self._conversation(row)

    async def update(self, conversation_id: int, step: str, data: dict[str, Any], at: datetime) -> bool:
        result = await self.session.execute(
            statements.CONVERSATION_UPDATE,
            {"conversation_id": conversation_id, "new_step": str(step), "new_data": data, "at": at},
        )
        return _rowcount(result) == 1

    async def finish(self, conversation_id: int) -> bool:
        result = await self.session.execute(
            delete(ConversationRow).where(ConversationRow.id == conversation_id)
        )
        return _rowcount(result) == 1

    async def idle(self, flow: Flow, before: datetime, limit: int = 500) -> list[Conversation]:
        rows = await self.session.scalars(
            select(ConversationRow)
            .where(ConversationRow.flow == flow.value, ConversationRow.updated_at < before)
            .order_by(ConversationRow.updated_at)
            .limit(limit)
        )
        return [self._conversation(row) for row in rows]

    async def mark_reminded(self, conversation_id: int, at: datetime) -> bool:
        result = await self.session.execute(
            update(ConversationRow)
            .where(ConversationRow.id == conversation_id, ConversationRow.reminded_at.is_(None))
            .values(reminded_at=at)
        )
        return _rowcount(result) == 1


class DeclarationRepository(_Repo):
    @staticmethod
    def _declaration(row: DeclarationRow) -> Declaration:
        return Declaration(
            id=row.id,
            receipt=row.receipt or "",
            village_id=row.village_id,
            declared_by=row.declared_by,
            head_name=row.head_name,
            phone=row.phone,
            risk_types=tuple(row.risk_types or [row.risk_type]),
            description=row.description,
            status=DeclarationStatus(row.status),
            created_at=row.created_at,
            verdict=Verdict(row.verdict) if row.verdict else None,
            verdict_reason=row.verdict_reason,
            relation=row.relation,
            filed_by_cadre=row.filed_by_cadre,
            household_size=row.household_size,
            id_sealed=row.id_sealed,
            followups=dict(row.followups or {}),
            consent_version=row.consent_version,
            green_channel=bool(row.green_channel),
            notice_started_at=row.notice_started_at,
        )

    async def add(self, new: NewDeclaration, at: datetime) -> Declaration:
        row = DeclarationRow(
            village_id=new.village_id,
            declared_by=new.declared_by,
            head_name=new.head_name,
            phone=new.phone,
            risk_type=new.risk_types[0],
            risk_types=list(new.risk_types),
            description=new.description,
            relation=new.relation,
            filed_by_cadre=new.filed_by_cadre,
            household_size=new.household_size,
            id_sealed=new.id_sealed,
            id_fingerprint=str(new.id_fingerprint) if new.id_fingerprint else None,
            followups=new.followups,
            consent_version=new.consent_version,
            consent_at=new.consent_at,
            status=DeclarationStatus.SUBMITTED.value,
            created_at=at,
            updated_at=at,
        )
        self.session.add(row)
        await self.session.flush()
        # The receipt shows the day in the service's time zone, which `at` carries.
        row.receipt = receipt_number(at.date(), row.id)
        await self.session.flush()
        return self._declaration(row)

    async def open_for_household(
        self, *, phone: str | None, id_fingerprint: str | None, since: datetime
    ) -> Declaration | None:
        """The newest open declaration since `since` with this phone or this ID number."""
        matches = []
        if phone:
            matches.append(DeclarationRow.phone == phone)
        if id_fingerprint:
            # A Fingerprint also names the value under older keys: rows not yet re-keyed still match.
            if isinstance(id_fingerprint, Fingerprint):
                matches.append(DeclarationRow.id_fingerprint.in_(id_fingerprint.variants()))
            else:
                matches.append(DeclarationRow.id_fingerprint == id_fingerprint)
        if not matches:
            return None
        row = await self.session.scalar(
            select(DeclarationRow)
            .where(
                or_(*matches),
                DeclarationRow.created_at >= since,
                DeclarationRow.status.in_([s.value for s in DeclarationStatus if s.open]),
            )
            .order_by(DeclarationRow.id.desc())
            .limit(1)
        )
        return self._declaration(row) if row else None

    async def count_since(
        self, since: datetime, *, declarant_id: int | None = None, phone: str | None = None
    ) -> int:
        """Declarations made since `since` by this declarant, or with this phone."""
        query = select(func.count()).select_from(DeclarationRow).where(DeclarationRow.created_at >= since)
        if declarant_id is not None:
            query = query.where(DeclarationRow.declared_by == declarant_id)
        if phone is not None:
            query = query.where(DeclarationRow.phone == phone)
        return int(await self.session.scalar(query) or 0)

    async def lock_phone(self, phone: str) -> None:
        if self.session.bind is not None and self.session.bind.dialect.name == "postgresql":
            await self.session.execute(
                text(
                    "SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':phone'), hashtext(:phone))"
                ),
                {"phone": phone},
            )
        else:
            # The transaction begins here if it had not: SQLite's write lock (BEGIN IMMEDIATE).
            await self.session.execute(text("SELECT 1"))

    async def in_villages(
        self, village_ids: tuple[int, ...], *, since: datetime | None = None, until: datetime | None = None
    ) -> list[Declaration]:
        if not village_ids:
            return []
        query = select(DeclarationRow).where(DeclarationRow.village_id.in_(village_ids))
        if since is not None:
            query = query.where(DeclarationRow.created_at >= since)
        if until is not None:
            query = query.where(DeclarationRow.created_at < until)
        rows = await self.session.scalars(query.order_by(DeclarationRow.id))
        return [self._declaration(row) for row in rows]

    async def set_notice_start(self, declaration_id: int, at: datetime) -> None:
        await self.session.execute(
            update(DeclarationRow).where(DeclarationRow.id == declaration_id).values(notice_started_at=at)
        )

    async def set_green_channel(self, declaration_id: int) -> bool:
        result = await self.session.execute(
            update(DeclarationRow)
            .where(DeclarationRow.id == declaration_id, DeclarationRow.green_channel.is_(False))
            .values(green_channel=True)
        )
        return _rowcount(result) == 1

    async def by_declarant(self, person_id: int, limit: int = 10) -> list[Declaration]:
        rows = await self.session.scalars(
            select(DeclarationRow)
            .where(DeclarationRow.declared_by == person_id)
            .order_by(DeclarationRow.id.desc())
            .limit(limit)
        )
        return [self._declaration(row) for row in rows]

    async def get(self, declaration_id: int) -> Declaration | None:
        row = await self.session.get(DeclarationRow, declaration_id, populate_existing=True)
        return self._declaration(row) if row else None

    async def by_receipt(self, receipt: str) -> Declaration | None:
        row = await self.session.scalar(select(DeclarationRow).where(DeclarationRow.receipt == receipt))
        return self._declaration(row) if row else None

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
        values: dict[str, Any] = {"status": to.value, "updated_at": at}
        if verdict is not None:
            values.update(verdict=verdict.value, verdict_reason=reason)
        result = await self.session.execute(
            update(DeclarationRow)
            .where(DeclarationRow.id == declaration_id, DeclarationRow.status == expected.value)
            .values(**values)
        )
        return _rowcount(result) == 1


class TaskRepository(_Repo):
    @staticmethod
    def _task(row: TaskRow) -> Task:
        return Task(
            id=row.id,
            declaration_id=row.declaration_id,
            village_id=row.village_id,
            routed_to=RoutedTo(row.routed_to),
            status=TaskStatus(row.status),
            created_at=row.created_at,
            acknowledged_by=row.acknowledged_by,
            decided_by=row.decided_by,
            due_at=row.due_at,
            step=row.step,
            reminded_at=row.reminded_at,
            warned_at=row.warned_at,
            escalated_at=row.escalated_at,
        )

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
        row = TaskRow(
            declaration_id=declaration_id,
            village_id=village_id,
            routed_to=routed_to.value,
            status=TaskStatus.OPEN.value,
            created_at=at,
            due_at=due_at,
            step=step,
            next_check_at=next_check_at,
        )
        self.session.add(row)
        await self.session.flush()
        return self._task(row)

    async def get(self, task_id: int) -> Task | None:
        row = await self.session.get(TaskRow, task_id, populate_existing=True)
        return self._task(row) if row else None

    async def for_declaration(self, declaration_id: int) -> Task | None:
        row = await self.session.scalar(
            select(TaskRow)
            .where(TaskRow.declaration_id == declaration_id)
            .order_by(TaskRow.id.desc())
            .limit(1)
        )
        return self._task(row) if row else None

    async def advance(
        self,
        task_id: int,
        *,
        status: TaskStatus,
        owner: int | None,
        step: str | None,
        due_at: datetime | None,
        next_check_at: datetime | None,
    ) -> None:
        values: dict[str, Any] = {
            "status": status.value,
            "step": step,
            "due_at": due_at,
            "next_check_at": next_check_at,
            "reminded_at": None,
            "warned_at": None,
            "escalated_at": None,
        }
        if owner is not None:
            values.update(acknowledged_by=owner, acknowledged_at=_utcnow())
        await self.session.execute(update(TaskRow).where(TaskRow.id == task_id).values(**values))

    async def hand_over(self, task_id: int, *, expected_owner: int | None, to: int) -> bool:
        owner_was = (
            TaskRow.acknowledged_by.is_(None)
            if expected_owner is None
            else TaskRow.acknowledged_by == expected_owner
        )
        result = await self.session.execute(
            update(TaskRow).where(TaskRow.id == task_id, owner_was).values(acknowledged_by=to)
        )
        return _rowcount(result) == 1

    async def due_for_check(self, now: datetime, limit: int) -> list[Task]:
        rows = await self.session.scalars(
            select(TaskRow).where(TaskRow.next_check_at <= now).order_by(TaskRow.next_check_at).limit(limit)
        )
        return [self._task(row) for row in rows]

    async def mark(self, task_id: int, *, field: str, at: datetime, next_check_at: datetime | None) -> None:
        if field not in ("reminded_at", "warned_at", "escalated_at"):
            raise ValueError(field)
        await self.session.execute(
            update(TaskRow).where(TaskRow.id == task_id).values({field: at, "next_check_at": next_check_at})
        )

    async def reschedule(self, task_id: int, next_check_at: datetime | None) -> None:
        await self.session.execute(
            update(TaskRow).where(TaskRow.id == task_id).values(next_check_at=next_check_at)
        )

    async def open_in(self, village_ids: tuple[int, ...]) -> list[Task]:
        if not village_ids:
            return []
        rows = await self.session.scalars(
            select(TaskRow)
            .where(
                TaskRow.village_id.in_(village_ids),
                TaskRow.status.in_([TaskStatus.OPEN.value, TaskStatus.ACKNOWLEDGED.value]),
            )
            .order_by(TaskRow.due_at.is_(None), TaskRow.due_at, TaskRow.id)
        )
        return [self._task(row) for row in rows]

    async def close(self, task_id: int) -> bool:
        """Close an open (not yet acknowledged) task; False when someone acknowledged it first."""
        result = await self.session.execute(
            update(TaskRow)
            .where(TaskRow.id == task_id, TaskRow.status == TaskStatus.OPEN.value)
            .values(status=TaskStatus.CLOSED.value)
        )
        return _rowcount(result) == 1


class AttachmentRepository(_Repo):
    async def add(self, attachment: Attachment, channel: Channel = Channel.TELEGRAM) -> None:
        self.session.add(
            AttachmentRow(
                declaration_id=attachment.declaration_id,
                kind=attachment.kind.value,
                channel=channel.value,
                ref=attachment.ref,
                duration=attachment.duration,
                added_by=attachment.added_by,
                at=attachment.at,
            )
        )
        await self.session.flush()

    async def for_declaration(self, declaration_id: int) -> list[Attachment]:
        rows = await self.session.scalars(
            select(AttachmentRow)
            .where(AttachmentRow.declaration_id == declaration_id)
            .order_by(AttachmentRow.id)
        )
        return [
            Attachment(r.declaration_id, AttachmentKind(r.kind), r.ref, r.added_by, r.at, r.duration)
            for r in rows
        ]


class EventLog(_Repo):
    async def add(self, event: CaseEvent) -> None:
        await self.session.execute(
            insert(CaseEventRow).values(
                declaration_id=event.declaration_id,
                actor_id=event.actor_id,
                kind=event.kind,
                data=event.data,
                at=event.at,
            )
        )

    async def for_declaration(self, declaration_id: int) -> list[CaseEvent]:
        rows = await self.session.scalars(
            select(CaseEventRow)
            .where(CaseEventRow.declaration_id == declaration_id)
            .order_by(CaseEventRow.id)
        )
        return [CaseEvent(r.declaration_id, r.kind, r.actor_id, r.at, dict(r.data)) for r in rows]


# Cuts a message too long for the channel into parts that each fit, rendered in the recipient's
# locale (the second argument). Given by bot/'s wiring: storage renders nothing itself.
Splitter = Callable[[Outgoing, str | None], list[Outgoing]]


def outbox_rows(
    key: str,
    person_id: int,
    channel: Channel,
    message: Outgoing,
    locale: str | None,
    at: datetime,
    split: Splitter | None,
    *,
    claimed_by: str | None = None,
) -> list[dict[str, Any]]:
    """The outbox rows of one message: one, or one a part (keys `key`, `key#2`, ...), in order.
    With `claimed_by` they are written already claimed by that worker (status sending)."""
    parts = [message]
    if split is not None:
        try:
            parts = split(message, locale)
        except Exception:
            # A message that cannot be rendered must not undo the change it reports; the sender
            # will record why it could not go.
            log.exception("outbox: could not measure a %s message; queued whole", message.template)
    status = OutboxStatus.SENDING.value if claimed_by is not None else OutboxStatus.PENDING.value
    return [
        {
            "key": key if n == 1 else f"{key}#{n}",
            "person_id": person_id,
            "channel": channel.value,
            "payload": part.to_json(),
            "status": status,
            "attempts": 0,
            "created_at": at,
            "next_attempt_at": at,
            "claimed_by": claimed_by,
        }
        for n, part in enumerate(parts, 1)
    ]  # fmt: skip


def bound_to(person_ids: Any) -> Any:
    """(person id, locale, channel) of those of `person_ids` with an address on a channel of
    `CHANNELS` (a row per channel)."""
    return (
        select(PersonRow.id, PersonRow.locale, ChannelAccountRow.channel)
        .join(
            ChannelAccountRow,
            and_(
                ChannelAccountRow.person_id == PersonRow.id,
                ChannelAccountRow.channel.in_([c.value for c in CHANNELS]),
            ),
        )
        .where(PersonRow.id.in_(person_ids))
    )


# An already rendered text (bot/limits.py's PART_TEMPLATE; storage does not import bot).
PART_TEMPLATE = "sender.part"


@dataclass
class _Hold:
    """A press's disarm (rows[0]) and the replies to its person queued after it, not yet written."""

    token: int
    channel: Channel
    address: str
    locale: str | None
    message_id: int
    rows: list[dict[str, Any]]
    of_rows: list[_RowOf]  # each row's part number, address and language


class _RowOf(NamedTuple):
    part: int  # 1 for a whole message or its first part
    address: str
    locale: str | None


_NO_BOUND = 2**62  # `_newest` with nothing of this transaction written: every row is older


@dataclass
class _Queued:
    """A row this unit of work wrote (for `settle_press`)."""

    id: int
    part: int  # 1 for a whole message or its first part
    payload: dict[str, Any]
    claimed: bool


class Outbox(_Repo):
    """Queues messages in the transaction of the change that caused them.

    With `worker` (a worker id), a message whose person has no older open row, other than rows
    this worker already holds, is written already claimed by that worker and listed in
    `claimed`, to be handed to the sender in memory once the transaction commits: it costs no
    claim transaction and no read. Otherwise (or without `worker`) it is written pending, and a
    sender claims it from the database, after that person's older messages.
    """

    def __init__(
        self,
        session: AsyncSession,
        split: Splitter | None = None,
        *,
        worker: str | None = None,
        answered: Callable[[int], Mark | None] | None = None,
    ) -> None:
        super().__init__(session)
        self.split = split
        self.worker = worker
        # The sender's: the mark of a row Telegram answered for, while that mark is not written.
        self._answered = answered or (lambda _: None)
        self.claimed: list[Claimed] = []
        self.wrote_pending = False
        self._may_claim: dict[int, bool] = {}
        self._queued: dict[int, list[_Queued]] = {}
        self._holds: dict[int, _Hold] = {}
        self._held = 0

    def reset(self) -> None:
        """Forget what this transaction wrote (after its commit or rollback)."""
        self.claimed = []
        self.wrote_pending = False
        self._may_claim.clear()
        self._queued.clear()
        self._holds.clear()

    async def _address(self, person_id: int, channel: Channel) -> Any:
        """The person's address and language (kept for the transaction: a press queues two or
        three rows for one person), read again after a write to the people tables."""
        writes = self.session.sync_session.info.get(_WRITES, 0)
        key = (person_id, channel.value)
        addresses = self.session.sync_session.info.setdefault(_ADDRESSES, {})
        known = addresses.get(key)
        if known is not None and known[0] == writes and not _people_pending(self.session):
            return known[1]
        found = (
            await self.session.execute(
                statements.ADDRESS_OF, {"person_id": person_id, "channel": channel.value}
            )
        ).first()
        addresses[key] = (writes, found)
        return found

    async def _claimable(self, person_id: int) -> bool:
        """May this worker write the person's new rows already claimed (no older open row held
        by anyone else, none pending)? Asked once per person and transaction."""
        if self.worker is None:
            return False
        known = self._may_claim.get(person_id)
        if known is None:
            other_open = await self.session.scalar(
                statements.OTHER_OPEN, {"person_id": person_id, "worker": self.worker}
            )
            known = self._may_claim[person_id] = other_open is None
        return known

    async def _insert(
        self,
        person_id: int,
        channel: Channel,
        rows: list[dict[str, Any]],
        address: str,
        locale: str | None,
        of_rows: list[_RowOf] | None = None,
    ) -> bool:
        """Write `rows` (of one message, or as held: `of_rows` gives each row's part number,
        address and language); False when none was new."""
        if of_rows is None:
            of_rows = [_RowOf(n, address, locale) for n in range(1, len(rows) + 1)]
        hold = self._holds.get(person_id)
        if hold is not None:
            if channel is hold.channel and all(row["key"].startswith("reply:") for row in rows):
                # Held back with the press's disarm until `settle_press` knows what to write.
                hold.rows.extend(rows)
                hold.of_rows.extend(of_rows)
                return True
            await self._release(person_id)  # a keyed message must know whether it was new
        if not rows:
            return False
        dialect = self.session.bind.dialect.name if self.session.bind else "sqlite"
        with _own_write(self.session):
            result = await self.session.execute(statements.outbox_insert(dialect), rows)
        inserted = {key: int(row_id) for row_id, key in result.all()}
        queued = self._queued.setdefault(person_id, [])
        for (n, address, locale), row in zip(of_rows, rows, strict=True):
            row_id = inserted.get(row["key"])
            if row_id is None:
                continue  # queued before under this key
            claimed = row["claimed_by"] is not None
            queued.append(_Queued(row_id, n, row["payload"], claimed))
            if claimed:
                self.claimed.append(
                    Claimed(
                        row_id, person_id, channel.value, row["payload"], 0, address, locale,
                        next_attempt_at=row["next_attempt_at"],
                    )
                )  # fmt: skip
            else:
                self.wrote_pending = True
        return bool(inserted)

    async def add(
        self,
        person_id: int,
        message: Outgoing,
        *,
        at: datetime,
        key: str | None = None,
    ) -> bool:
        """Queue a message on the first channel of `CHANNELS` the person has an address on; False
        (nothing queued) when `key` was queued before, or when the person has no address at all (a
        roster cadre who never opened the invite)."""
        for channel in CHANNELS:
            found = await self._address(person_id, channel)
            if found is not None:
                break
        else:
            log.info("outbox: a %s message not queued: no address for it", message.template)
            return False
        claim = await self._claimable(person_id)
        rows = outbox_rows(
            key or f"reply:{uuid.uuid4().hex}", person_id, channel, message, found.locale, at, self.split,
            claimed_by=self.worker if claim else None,
        )  # fmt: skip
        return await self._insert(person_id, channel, rows, found.address, found.locale)

    async def hold_press(self, person_id: int, message_id: int, *, at: datetime, key: str) -> int | None:
        """Queue "take the pressed message's keyboard away" before the use case queues anything
        (so it goes first); `settle_press` keeps, folds or drops it once the outcome is known.
        A pressed message is a Telegram message: its edit goes by Telegram."""
        channel = Channel.TELEGRAM
        found = await self._address(person_id, channel)
        if found is None:
            return None
        claim = await self._claimable(person_id)
        disarm = Outgoing(PART_TEMPLATE, {"text": {"$plain": ""}})
        rows = outbox_rows(
            key, person_id, channel, disarm, found.locale, at, None, claimed_by=self.worker if claim else None
        )
        rows[0]["payload"]["edit"] = {"message_id": message_id, "markup_only": True}
        await self._release(person_id)
        self._held += 1
        self._holds[person_id] = _Hold(
            -self._held,
            channel,
            found.address,
            found.locale,
            message_id,
            rows[:1],
            [_RowOf(1, found.address, found.locale)],
        )
        return -self._held

    async def _release(self, person_id: int) -> None:
        """Write a held press as it is: its disarm first, then what was queued behind it."""
        hold = self._holds.pop(person_id, None)
        if hold is not None:
            await self._insert(person_id, hold.channel, hold.rows, hold.address, hold.locale, hold.of_rows)

    async def release_holds(self) -> None:
        """Write every press still held (before a commit, or before reading the outbox)."""
        for person_id in list(self._holds):
            await self._release(person_id)

    async def redraw(
        self,
        person_id: int,
        message_id: int,
        message: Outgoing,
        *,
        at: datetime,
        key: str,
    ) -> None:
        """Queue an edit of `message_id` into `message` (a toggled list redrawn), in order behind
        what the person still has coming and retried like a message (by Telegram, as the press)."""
        channel = Channel.TELEGRAM
        found = await self._address(person_id, channel)
        if found is None:
            return
        claim = await self._claimable(person_id)
        rows = outbox_rows(
            key,
            person_id,
            channel,
            message,
            found.locale,
            at,
            None,
            claimed_by=self.worker if claim else None,
        )
        rows[0]["payload"]["edit"] = {"message_id": message_id}
        await self._insert(person_id, channel, rows[:1], found.address, found.locale)

    async def editing(self, person_id: int, message_id: int) -> bool:
        """Whether an edit of `message_id` is still queued or on its way (a redraw that failed and
        is being retried): a newer redraw must then queue behind it, not overtake it."""
        await self._release(person_id)
        rows = await self.session.execute(
            select(OutboxRow.id, OutboxRow.payload)
            .where(
                OutboxRow.person_id == person_id,
                OutboxRow.status.in_((OutboxStatus.PENDING.value, OutboxStatus.SENDING.value)),
            )
            .limit(50)
        )
        # A row this worker's sender already has Telegram's answer for is not on its way: the
        # person may have pressed a button of what it drew before its mark was committed.
        return any(
            (payload.get("edit") or {}).get("message_id") == message_id and self._answered(row_id) is None
            for row_id, payload in rows.all()
        )

    async def _newest(self, person_id: int, before: int, message_id: int) -> bool:
        """Whether `message_id` is the newest message sent to the person, with nothing of theirs
        still on its way (rows older than `before`, this transaction's first)."""
        latest = (
            await self.session.execute(statements.NEWEST_BEFORE, {"person_id": person_id, "before": before})
        ).first()
        if latest is None:
            return False
        status, external_id = latest.status, latest.external_id
        if status != OutboxStatus.SENT.value:
            # Sent already, if this worker's sender has Telegram's answer and only the mark waits.
            mark = self._answered(latest.id)
            if mark is None or mark.kind != "sent":
                return False
            external_id = mark.external_id
        return bool(external_id == str(message_id))

    async def settle_press(
        self, person_id: int, held: int, *, keep: bool, ack: str | None, text: bool
    ) -> None:
        hold = self._holds.get(person_id)
        if hold is not None and hold.token == held:
            await self._settle_hold(person_id, hold, keep=keep, ack=ack, text=text)
            return
        queued = self._queued.get(person_id, [])
        place = next((n for n, q in enumerate(queued) if q.id == held), None)
        if place is None:
            return
        after = queued[place + 1] if place + 1 < len(queued) else None
        fold = (
            keep
            and text
            and after is not None
            and after.part == 1
            and "edit" not in after.payload
            and after.payload.get("media") is None
            and after.payload.get("keyboard") is None
        )
        message_id = int(queued[place].payload["edit"]["message_id"])
        if fold and not await self._newest(person_id, held, message_id):
            fold = False  # the next question would appear above what came after: a new message
        if keep and not fold:
            return  # only the keyboard goes
        with _own_write(self.session):
            await self.session.execute(statements.OUTBOX_DELETE, {"row_id": held})
        del queued[place]
        self.claimed = [c for c in self.claimed if c.id != held]
        if fold and after is not None:
            payload = dict(after.payload)
            payload["edit"] = {"message_id": message_id, "fallback": True}
            if ack:
                payload["ack"] = ack
            with _own_write(self.session):
                await self.session.execute(
                    statements.OUTBOX_PAYLOAD, {"row_id": after.id, "new_payload": payload}
                )
            after.payload = payload
            self.claimed = [replace(c, payload=payload) if c.id == after.id else c for c in self.claimed]

    async def _settle_hold(
        self, person_id: int, hold: _Hold, *, keep: bool, ack: str | None, text: bool
    ) -> None:
        """`settle_press` before anything of the press was written: the disarm kept, folded into
        the next question or dropped in memory, and the rows written in one INSERT."""
        del self._holds[person_id]
        after = hold.rows[1]["payload"] if len(hold.rows) > 1 else None
        fold = (
            keep
            and text
            and after is not None
            and hold.of_rows[1].part == 1
            and "edit" not in after
            and after.get("media") is None
            and after.get("keyboard") is None
        )
        if fold and not await self._newest(person_id, _NO_BOUND, hold.message_id):
            fold = False  # the next question would appear above what came after: a new message
        rows, of_rows = hold.rows, hold.of_rows
        if not keep or fold:
            rows, of_rows = rows[1:], of_rows[1:]  # the disarm goes: nothing to take away, or folded
        if fold:
            payload = dict(rows[0]["payload"])
            payload["edit"] = {"message_id": hold.message_id, "fallback": True}
            if ack:
                payload["ack"] = ack
            rows = [{**rows[0], "payload": payload}, *rows[1:]]
        await self._insert(person_id, hold.channel, rows, hold.address, hold.locale, of_rows)

    async def count_pending(self) -> int:
        return int(
            await self.session.scalar(
                select(func.count())
                .select_from(OutboxRow)
                .where(OutboxRow.status == OutboxStatus.PENDING.value)
            )
            or 0
        )


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RateLimits(_Repo):
    async def hit(self, key: str, *, limit: int, window: timedelta, now: datetime) -> bool:
        """Count one request under `key`; False (counted all the same) once `limit` is passed.

        A fixed window that starts at the first request: one upsert, so two workers counting the
        same key at once never lose a hit.
        """
        expired = RateLimitRow.window_start <= now - window
        dialect = self.session.bind.dialect.name if self.session.bind else "sqlite"
        insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement: Any = insert_(RateLimitRow).values(key=key[:100], window_start=now, hits=1)
        statement = statement.on_conflict_do_update(
            index_elements=["key"],
            set_={
                "hits": case((expired, 1), else_=RateLimitRow.hits + 1),
                "window_start": case((expired, now), else_=RateLimitRow.window_start),
            },
        ).returning(RateLimitRow.hits)
        hits = int((await self.session.execute(statement)).scalar_one())
        return hits <= limit

    async def forget(self, before: datetime) -> int:
        """Drop counters whose window started before `before` (they hold hashed phones)."""
        result = await self.session.execute(delete(RateLimitRow).where(RateLimitRow.window_start < before))
        return _rowcount(result)
