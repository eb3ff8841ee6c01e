"""Repositories of the schedule, notices, campaigns, the ledger and delivery state: return
dataclasses, never commit."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain import delivery
from domain.messages import Queued
from domain.model import (
    Campaign,
    Channel,
    FailedDelivery,
    LedgerItem,
    LedgerStatus,
    Notice,
    NoticeStatus,
    OutboxStatus,
    Person,
    Phase,
    Recipient,
    Report,
    ReportDraft,
    Role,
    ScheduledItem,
    Village,
)
from storage import outbox
from storage.base import Repo, dialect_insert, insert_or_ignore, rowcount
from storage.people import GeographyRepository
from storage.tables import (
    CadreVillageRow,
    CampaignPhaseRow,
    CampaignRow,
    CampaignVillageRow,
    ChannelAccountRow,
    DeclarationRow,
    LedgerItemRow,
    NoticeRecipientRow,
    NoticeRow,
    OutboxRow,
    PersonRow,
    PhaseDoneRow,
    ReportRow,
    ScheduledRow,
    TownshipRow,
    VillageRow,
)

PENDING = "pending"
DONE = "done"
FAILED = "failed"


class ScheduleRepository(Repo):
    async def add(self, key: str, kind: str, due_at: datetime, payload: dict[str, Any], at: datetime) -> bool:
        statement = insert_or_ignore(self.session, ScheduledRow, ["key"]).values(
            key=key, kind=kind, payload=payload, status=PENDING, due_at=due_at, created_at=at
        )
        return rowcount(await self.session.execute(statement)) == 1

    async def due(self, now: datetime, limit: int) -> list[ScheduledItem]:
        rows = await self.session.scalars(
            select(ScheduledRow)
            .where(ScheduledRow.status == PENDING, ScheduledRow.due_at <= now)
            .order_by(ScheduledRow.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [ScheduledItem(r.id, r.key, r.kind, dict(r.payload), r.due_at) for r in rows]

    async def _set(self, item_id: int, **values: Any) -> None:
        await self.session.execute(update(ScheduledRow).where(ScheduledRow.id == item_id).values(**values))

    async def done(self, item_ids: list[int], at: datetime) -> None:
        if item_ids:
            await self.session.execute(
                update(ScheduledRow).where(ScheduledRow.id.in_(item_ids)).values(status=DONE, done_at=at)
            )

    async def defer(self, item_ids: list[int], due_at: datetime) -> None:
        if item_ids:
            await self.session.execute(
                update(ScheduledRow).where(ScheduledRow.id.in_(item_ids)).values(due_at=due_at)
            )

    async def failed(self, item_id: int, at: datetime, error: str) -> None:
        await self._set(item_id, status=FAILED, done_at=at, last_error=error[:500])

    def isolated(self) -> AbstractAsyncContextManager[object]:
        return self.session.begin_nested()


class NoticeRepository(Repo):
    @staticmethod
    def _notice(row: NoticeRow) -> Notice:
        return Notice(
            id=row.id,
            township_id=row.township_id,
            author_id=row.author_id,
            status=NoticeStatus(row.status),
            body=row.body,
            audience=dict(row.audience or {}),
            send_at=row.send_at,
            created_at=row.created_at,
            sent_at=row.sent_at,
            remind_rounds=row.remind_rounds,
            media=dict(row.media) if row.media else None,
        )

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
        row = NoticeRow(
            township_id=township_id,
            author_id=author_id,
            status=NoticeStatus.SCHEDULED.value,
            body=body,
            audience=audience,
            media=media,
            send_at=send_at,
            created_at=at,
            remind_rounds=0,
        )
        self.session.add(row)
        await self.session.flush()
        return self._notice(row)

    async def get(self, notice_id: int) -> Notice | None:
        row = await self.session.get(NoticeRow, notice_id, populate_existing=True)
        return self._notice(row) if row else None

    async def transition(
        self, notice_id: int, *, expected: tuple[NoticeStatus, ...], to: NoticeStatus, at: datetime
    ) -> bool:
        values: dict[str, Any] = {"status": to.value}
        if to is NoticeStatus.SENT:
            values["sent_at"] = at
        result = await self.session.execute(
            update(NoticeRow)
            .where(NoticeRow.id == notice_id, NoticeRow.status.in_([s.value for s in expected]))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return rowcount(result) == 1

    async def next_remind_round(self, notice_id: int) -> int:
        await self.session.execute(
            update(NoticeRow)
            .where(NoticeRow.id == notice_id)
            .values(remind_rounds=NoticeRow.remind_rounds + 1)
            .execution_options(synchronize_session=False)
        )
        return int(
            await self.session.scalar(select(NoticeRow.remind_rounds).where(NoticeRow.id == notice_id)) or 0
        )

    async def township_villages(self, township_id: int) -> list[Village]:
        result = await self.session.execute(
            select(VillageRow, TownshipRow.name)
            .join(TownshipRow, VillageRow.township_id == TownshipRow.id)
            .where(VillageRow.township_id == township_id)
            .order_by(VillageRow.code)
        )
        return [GeographyRepository.village_of(row, name) for row, name in result.all()]

    async def _people(self, query: Any) -> list[Person]:
        rows = (await self.session.scalars(query)).all()
        village_ids: dict[int, list[int]] = {}
        ids = [row.id for row in rows]
        for chunk in range(0, len(ids), 500):
            links = await self.session.execute(
                select(CadreVillageRow.person_id, CadreVillageRow.village_id).where(
                    CadreVillageRow.person_id.in_(ids[chunk : chunk + 500])
                )
            )
            for person_id, village_id in links.all():
                village_ids.setdefault(person_id, []).append(village_id)
        return [
            Person(
                id=row.id,
                role=Role(row.role),
                name=row.name,
                phone=row.phone,
                township_id=row.township_id,
                locale=row.locale,
                village_ids=tuple(sorted(village_ids.get(row.id, []))),
            )
            for row in rows
        ]

    async def cadres_of_township(self, township_id: int) -> list[Person]:
        in_township = (
            select(CadreVillageRow.person_id)
            .join(VillageRow, VillageRow.id == CadreVillageRow.village_id)
            .where(VillageRow.township_id == township_id)
        )
        return await self._people(
            select(PersonRow)
            .where(
                PersonRow.role == Role.CADRE.value,
                or_(PersonRow.township_id == township_id, PersonRow.id.in_(in_township)),
            )
            .order_by(PersonRow.id)
        )

    async def cadres_of_villages(self, village_ids: tuple[int, ...]) -> list[Person]:
        if not village_ids:
            return []
        chosen = select(CadreVillageRow.person_id).where(CadreVillageRow.village_id.in_(village_ids))
        return await self._people(
            select(PersonRow)
            .where(PersonRow.role == Role.CADRE.value, PersonRow.id.in_(chosen))
            .order_by(PersonRow.id)
        )

    async def add_recipients(self, notice_id: int, person_ids: list[int]) -> None:
        for chunk in range(0, len(person_ids), 500):
            part = person_ids[chunk : chunk + 500]
            if part:
                await self.session.execute(
                    insert(NoticeRecipientRow), [{"notice_id": notice_id, "person_id": p} for p in part]
                )

    async def recipients(self, notice_id: int) -> list[Recipient]:
        # Reachable: an address on a channel messages go by, and not blocked there.
        reachable = (
            select(ChannelAccountRow.id)
            .where(
                ChannelAccountRow.person_id == PersonRow.id,
                ChannelAccountRow.channel.in_([c.value for c in delivery.CHANNELS]),
                ChannelAccountRow.unreachable_at.is_(None),
            )
            .exists()
        )
        result = await self.session.execute(
            select(PersonRow, NoticeRecipientRow.acknowledged_at, reachable)
            .join(NoticeRecipientRow, NoticeRecipientRow.person_id == PersonRow.id)
            .where(NoticeRecipientRow.notice_id == notice_id)
            .order_by(PersonRow.id)
        )
        return [
            Recipient(
                Person(id=row.id, role=Role(row.role), name=row.name, township_id=row.township_id),
                acknowledged_at,
                bool(can_reach),
            )
            for row, acknowledged_at, can_reach in result.all()
        ]

    async def acknowledge(self, notice_id: int, person_id: int, at: datetime) -> bool | None:
        result = await self.session.execute(
            update(NoticeRecipientRow)
            .where(
                NoticeRecipientRow.notice_id == notice_id,
                NoticeRecipientRow.person_id == person_id,
                NoticeRecipientRow.acknowledged_at.is_(None),
            )
            .values(acknowledged_at=at)
        )
        if rowcount(result) == 1:
            return True
        exists = await self.session.scalar(
            select(func.count())
            .select_from(NoticeRecipientRow)
            .where(NoticeRecipientRow.notice_id == notice_id, NoticeRecipientRow.person_id == person_id)
        )
        return False if exists else None

    async def of_township(self, township_id: int, limit: int) -> list[Notice]:
        rows = await self.session.scalars(
            select(NoticeRow)
            .where(NoticeRow.township_id == township_id)
            .order_by(NoticeRow.id.desc())
            .limit(limit)
        )
        return [self._notice(row) for row in rows]


class DeliveryRepository(Repo):
    def __init__(self, session: AsyncSession, split: outbox.Splitter | None = None) -> None:
        super().__init__(session)
        self.split = split

    async def mark_unreachable(self, person_id: int, channel: Channel, at: datetime) -> bool:
        result = await self.session.execute(
            update(ChannelAccountRow)
            .where(
                ChannelAccountRow.person_id == person_id,
                ChannelAccountRow.channel == channel.value,
                ChannelAccountRow.unreachable_at.is_(None),
            )
            .values(unreachable_at=at)
        )
        return rowcount(result) == 1

    async def townships_of(self, person_id: int) -> list[int]:
        own = await self.session.scalar(select(PersonRow.township_id).where(PersonRow.id == person_id))
        via_villages = await self.session.scalars(
            select(VillageRow.township_id)
            .join(CadreVillageRow, CadreVillageRow.village_id == VillageRow.id)
            .where(CadreVillageRow.person_id == person_id)
            .distinct()
        )
        # A farmer belongs to the townships of the villages they declared in.
        via_declarations = await self.session.scalars(
            select(VillageRow.township_id)
            .join(DeclarationRow, DeclarationRow.village_id == VillageRow.id)
            .where(DeclarationRow.declared_by == person_id)
            .distinct()
        )
        found = {own} if own is not None else set()
        found |= set(via_villages) | set(via_declarations)
        return sorted(found)

    async def failed_in_township(self, township_id: int, limit: int) -> list[FailedDelivery]:
        in_villages = (
            select(CadreVillageRow.person_id)
            .join(VillageRow, VillageRow.id == CadreVillageRow.village_id)
            .where(VillageRow.township_id == township_id)
        )
        # Households (texts that did not arrive, a blocked chat): those who declared in its villages.
        households = (
            select(DeclarationRow.declared_by)
            .join(VillageRow, VillageRow.id == DeclarationRow.village_id)
            .where(VillageRow.township_id == township_id)
        )
        result = await self.session.execute(
            select(OutboxRow, PersonRow.name, PersonRow.role)
            .join(PersonRow, PersonRow.id == OutboxRow.person_id)
            .where(
                OutboxRow.status == OutboxStatus.FAILED.value,
                or_(
                    PersonRow.township_id == township_id,
                    PersonRow.id.in_(in_villages),
                    PersonRow.id.in_(households),
                ),
            )
            .order_by(OutboxRow.id.desc())
            .limit(limit)
        )
        return [
            FailedDelivery(
                name, role, str(row.payload.get("template", "")), row.last_error or "", row.created_at
            )
            for row, name, role in result.all()
        ]

    async def queue_many(self, messages: list[Queued], at: datetime) -> int:
        """Queue keyed messages, each on its person's channel (written by the outbox's writer)."""
        return await outbox.queue_many(self.session, messages, at, self.split)


class CampaignRepository(Repo):
    async def add(
        self, township_id: int, name: str, reports: dict[str, Any], village_ids: list[int], at: datetime
    ) -> int:
        row = CampaignRow(township_id=township_id, name=name, reports=reports, created_at=at)
        self.session.add(row)
        await self.session.flush()
        for village_id in village_ids:
            self.session.add(CampaignVillageRow(campaign_id=row.id, village_id=village_id))
        await self.session.flush()
        return row.id

    async def add_phase(self, campaign_id: int, seq: int, name: str, deadline: date) -> int:
        row = CampaignPhaseRow(campaign_id=campaign_id, seq=seq, name=name, deadline=deadline)
        self.session.add(row)
        await self.session.flush()
        return row.id

    async def phase(self, phase_id: int) -> Phase | None:
        found = (
            await self.session.execute(
                select(CampaignPhaseRow, CampaignRow.name)
                .join(CampaignRow, CampaignRow.id == CampaignPhaseRow.campaign_id)
                .where(CampaignPhaseRow.id == phase_id)
            )
        ).first()
        if found is None:
            return None
        row, campaign_name = found
        return Phase(row.id, row.campaign_id, campaign_name, row.seq, row.name, row.deadline)

    def _villages(self) -> Any:
        return select(VillageRow, TownshipRow.name).join(
            TownshipRow, VillageRow.township_id == TownshipRow.id
        )

    async def villages_of(self, campaign_id: int) -> list[Village]:
        result = await self.session.execute(
            self._villages()
            .join(CampaignVillageRow, CampaignVillageRow.village_id == VillageRow.id)
            .where(CampaignVillageRow.campaign_id == campaign_id)
            .order_by(VillageRow.code)
        )
        return [GeographyRepository.village_of(row, name) for row, name in result.all()]

    async def villages_not_done(self, phase_id: int) -> list[Village]:
        done = select(PhaseDoneRow.village_id).where(PhaseDoneRow.phase_id == phase_id)
        campaign = (
            select(CampaignPhaseRow.campaign_id).where(CampaignPhaseRow.id == phase_id).scalar_subquery()
        )
        result = await self.session.execute(
            self._villages()
            .join(CampaignVillageRow, CampaignVillageRow.village_id == VillageRow.id)
            .where(CampaignVillageRow.campaign_id == campaign, VillageRow.id.not_in(done))
            .order_by(VillageRow.code)
        )
        return [GeographyRepository.village_of(row, name) for row, name in result.all()]

    async def mark_done(self, phase_id: int, village_id: int, person_id: int, at: datetime) -> bool:
        statement = insert_or_ignore(self.session, PhaseDoneRow, ["phase_id", "village_id"]).values(
            phase_id=phase_id, village_id=village_id, person_id=person_id, at=at
        )
        return rowcount(await self.session.execute(statement)) == 1

    async def _campaign(self, row: CampaignRow | None) -> Campaign | None:
        if row is None:
            return None
        end = await self.session.scalar(
            select(func.max(CampaignPhaseRow.deadline)).where(CampaignPhaseRow.campaign_id == row.id)
        )
        return Campaign(row.id, row.township_id, row.name, dict(row.reports), row.created_at, end or date.max)

    async def get(self, campaign_id: int) -> Campaign | None:
        return await self._campaign(await self.session.get(CampaignRow, campaign_id))

    async def latest(self, township_id: int) -> Campaign | None:
        row = await self.session.scalar(
            select(CampaignRow)
            .where(CampaignRow.township_id == township_id)
            .order_by(CampaignRow.id.desc())
            .limit(1)
        )
        return await self._campaign(row)

    async def newest_township(self) -> int | None:
        return await self.session.scalar(
            select(CampaignRow.township_id).order_by(CampaignRow.id.desc()).limit(1)
        )

    async def reports(self, campaign_id: int, period: date | None = None) -> list[Report]:
        query = select(ReportRow).where(ReportRow.campaign_id == campaign_id)
        if period is not None:
            query = query.where(ReportRow.period == period)
        rows = await self.session.scalars(query.order_by(ReportRow.period, ReportRow.village_id))
        return [
            Report(
                r.village_id, r.period, r.visited, r.new_risks, r.problems_found, r.problems_closed, r.note,
                r.person_id, r.at,
            )
            for r in rows
        ]  # fmt: skip

    async def save_report(self, draft: ReportDraft, data: dict[str, Any], at: datetime) -> None:
        values = {
            "campaign_id": draft.campaign_id,
            "period": draft.period,
            "village_id": draft.village_id,
            "person_id": draft.person_id,
            "visited": int(data["visited"]),
            "new_risks": int(data["new_risks"]),
            "problems_found": int(data["problems_found"]),
            "problems_closed": int(data["problems_closed"]),
            "note": str(data.get("note", "")),
            "at": at,
        }
        replace = {k: v for k, v in values.items() if k not in ("campaign_id", "period", "village_id")}
        statement = (
            dialect_insert(self.session, ReportRow)
            .values(**values)
            .on_conflict_do_update(index_elements=["campaign_id", "period", "village_id"], set_=replace)
        )
        await self.session.execute(statement)

    async def of_township(self, township_id: int, limit: int) -> list[Campaign]:
        rows = await self.session.scalars(
            select(CampaignRow)
            .where(CampaignRow.township_id == township_id)
            .order_by(CampaignRow.id.desc())
            .limit(limit)
        )
        return [found for row in rows.all() if (found := await self._campaign(row)) is not None]

    async def phases(self, campaign_id: int) -> list[Phase]:
        result = await self.session.execute(
            select(CampaignPhaseRow, CampaignRow.name)
            .join(CampaignRow, CampaignRow.id == CampaignPhaseRow.campaign_id)
            .where(CampaignPhaseRow.campaign_id == campaign_id)
            .order_by(CampaignPhaseRow.seq)
        )
        return [
            Phase(row.id, row.campaign_id, name, row.seq, row.name, row.deadline)
            for row, name in result.all()
        ]


class LedgerRepository(Repo):
    def _query(self) -> Any:
        return select(LedgerItemRow, VillageRow.name).join(
            VillageRow, VillageRow.id == LedgerItemRow.village_id
        )

    @staticmethod
    def _item(row: LedgerItemRow, village_name: str) -> LedgerItem:
        return LedgerItem(
            row.id, row.village_id, village_name, row.added_by, row.what, row.measure, row.deadline,
            row.responsible, LedgerStatus(row.status), row.created_at, row.closed_at,
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
        row = LedgerItemRow(
            village_id=village_id, added_by=added_by, what=what, measure=measure, deadline=deadline,
            responsible=responsible, status=LedgerStatus.OPEN.value, created_at=at,
        )  # fmt: skip
        self.session.add(row)
        await self.session.flush()
        return row.id

    async def get(self, item_id: int) -> LedgerItem | None:
        found = (await self.session.execute(self._query().where(LedgerItemRow.id == item_id))).first()
        return self._item(*found) if found else None

    async def close(self, item_id: int, person_id: int, at: datetime) -> bool:
        result = await self.session.execute(
            update(LedgerItemRow)
            .where(LedgerItemRow.id == item_id, LedgerItemRow.status == LedgerStatus.OPEN.value)
            .values(status=LedgerStatus.CLOSED.value, closed_at=at, closed_by=person_id)
        )
        return rowcount(result) == 1

    async def of_villages(self, village_ids: tuple[int, ...], *, open_only: bool) -> list[LedgerItem]:
        query = self._query().where(LedgerItemRow.village_id.in_(village_ids))
        if open_only:
            query = query.where(LedgerItemRow.status == LedgerStatus.OPEN.value)
        result = await self.session.execute(query.order_by(LedgerItemRow.deadline, LedgerItemRow.id))
        return [self._item(*found) for found in result.all()]

    async def of_township(self, township_id: int) -> list[LedgerItem]:
        result = await self.session.execute(
            self._query()
            .where(VillageRow.township_id == township_id)
            .order_by(LedgerItemRow.status.desc(), LedgerItemRow.deadline, LedgerItemRow.id)
        )
        return [self._item(*found) for found in result.all()]
