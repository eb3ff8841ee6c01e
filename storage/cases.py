"""Repositories of the cases: declarations, their tasks, attachments and the event log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, text, update

from domain.cases import receipt_number
from domain.model import (
    Attachment,
    AttachmentKind,
    CaseEvent,
    Channel,
    Declaration,
    DeclarationStatus,
    NewDeclaration,
    RoutedTo,
    Task,
    TaskStatus,
    Verdict,
)
from domain.ports import Fingerprint
from storage.base import Repo, rowcount
from storage.tables import AttachmentRow, CaseEventRow, DeclarationRow, TaskRow


class DeclarationRepository(Repo):
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
            sms_consent_at=row.sms_consent_at,
            via=row.via,
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
            sms_consent_at=new.sms_consent_at,
            via=new.via,
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
        self,
        since: datetime,
        *,
        declarant_id: int | None = None,
        filer_id: int | None = None,
        phone: str | None = None,
    ) -> int:
        query = select(func.count()).select_from(DeclarationRow).where(DeclarationRow.created_at >= since)
        if declarant_id is not None:
            query = query.where(DeclarationRow.declared_by == declarant_id)
        if filer_id is not None:
            query = query.where(
                or_(DeclarationRow.declared_by == filer_id, DeclarationRow.filed_by_cadre == filer_id)
            )
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
        return rowcount(result) == 1

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
        return rowcount(result) == 1


class TaskRepository(Repo):
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
        at: datetime,
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
            values.update(acknowledged_by=owner, acknowledged_at=at)
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
        return rowcount(result) == 1

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
        return rowcount(result) == 1


class AttachmentRepository(Repo):
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


class EventLog(Repo):
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
