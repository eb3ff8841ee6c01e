"""What the console shows of the township's work: notices with their receipts, campaigns with
their progress, the problem ledger. Each read is of the actor's scope only; anything else is None
(or left out of a list), the same as what does not exist.

What the pages do goes through the chat's own use cases: notices.compose and notices.remind,
campaign_chat.define, ledger.add_item and ledger.close.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from domain import ledger, reports
from domain.actor import Actor
from domain.model import (
    Audience,
    Campaign,
    LedgerItem,
    LedgerStatus,
    Notice,
    NoticeStatus,
    Person,
    Phase,
    Recipient,
    Report,
    Role,
    Village,
)
from domain.office.scope import villages_of
from domain.ports import Clock, UnitOfWork

MAX_NOTICES = 30
MAX_CAMPAIGNS = 50
MAX_CLOSED = 50  # closed ledger items shown after every open one


def _staff(actor: Actor) -> int | None:
    """The township of a staff member (None for anyone else)."""
    return actor.township_id if actor.role is Role.TOWNSHIP else None


# --- notices -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Receipts:
    """A notice and who has confirmed it (x of y, as the chat's status counts), who has not."""

    notice: Notice
    acked: list[Recipient]
    missing: list[Recipient]
    villages: list[Village]  # of an audience of chosen villages

    @property
    def total(self) -> int:
        return len(self.acked) + len(self.missing)

    @property
    def remindable(self) -> bool:
        """notices.remind would remind someone (its once-an-hour limit aside)."""
        return self.notice.status is NoticeStatus.SENT and bool(self.missing)


async def _receipts(uow: UnitOfWork, notice: Notice) -> Receipts:
    recipients = await uow.notices.recipients(notice.id)
    chosen: list[Village] = []
    if notice.audience.get("kind") == Audience.VILLAGES.value:
        chosen = await uow.geography.villages(tuple(int(v) for v in notice.audience.get("villages", [])))
    return Receipts(
        notice,
        [r for r in recipients if r.acknowledged_at is not None],
        [r for r in recipients if r.acknowledged_at is None],
        chosen,
    )


async def notices_of(uow: UnitOfWork, actor: Actor) -> list[Receipts]:
    """The staff member's township's latest notices with their receipts; nothing for anyone else."""
    township_id = _staff(actor)
    if township_id is None:
        return []
    return [await _receipts(uow, n) for n in await uow.notices.of_township(township_id, MAX_NOTICES)]


async def notice_of(uow: UnitOfWork, actor: Actor, notice_id: int) -> Receipts | None:
    """One notice of the staff member's township, with its receipts; None for any other."""
    notice = await uow.notices.get(notice_id)
    if notice is None or _staff(actor) is None or notice.township_id != actor.township_id:
        return None
    return await _receipts(uow, notice)


# --- campaigns and their reports ----------------------------------------------------------------


async def campaigns_of(uow: UnitOfWork, actor: Actor) -> list[Campaign]:
    """The staff member's township's campaigns, newest first; nothing for anyone else."""
    township_id = _staff(actor)
    return [] if township_id is None else await uow.campaigns.of_township(township_id, MAX_CAMPAIGNS)


@dataclass(frozen=True)
class Missing:
    """A village that has not reported for the latest period asked, and its cadres."""

    village: Village
    cadres: list[Person]


@dataclass(frozen=True)
class Progress:
    """A campaign's phases and its reports, village by village and period by period (the periods
    asked so far, as the chat's /report compiles them), and who has not reported for the latest."""

    campaign: Campaign
    phases: list[Phase]
    villages: list[Village]
    periods: tuple[date, ...]  # asked so far, oldest first; the latest is the compiled one
    reports: dict[tuple[int, date], Report]  # (village id, period)
    missing: list[Missing]
    first: tuple[date, datetime] | None  # before the first request: its period, and when asked

    @property
    def latest(self) -> date | None:
        return self.periods[-1] if self.periods else None


async def progress_of(uow: UnitOfWork, clock: Clock, actor: Actor, campaign_id: int) -> Progress | None:
    """A campaign of the staff member's township and its progress; None for any other."""
    campaign = await uow.campaigns.get(campaign_id)
    if campaign is None or _staff(actor) is None or campaign.township_id != actor.township_id:
        return None
    compiled = await reports.compile_campaign(uow, campaign, clock.now())
    villages = await uow.campaigns.villages_of(campaign.id)
    asked = set(compiled.asked)
    found = {
        (r.village_id, r.period): r for r in await uow.campaigns.reports(campaign.id) if r.period in asked
    }
    missing = []
    if compiled.period is not None:
        for village in villages:
            if (village.id, compiled.period) not in found:
                missing.append(Missing(village, await uow.persons.cadres_of_village(village.id)))
    return Progress(
        campaign,
        await uow.campaigns.phases(campaign.id),
        villages,
        compiled.asked,
        found,
        missing,
        compiled.first,
    )


# --- the problem ledger --------------------------------------------------------------------------


@dataclass(frozen=True)
class Ledger:
    """The ledger a person sees: overdue first, then open by deadline, then the latest closed;
    the villages they may add to, and the items they may close (ledger.close's rights)."""

    items: list[LedgerItem]
    villages: list[Village]
    closable: frozenset[int]
    today: date

    def overdue(self, item: LedgerItem) -> bool:
        return item.status is LedgerStatus.OPEN and item.deadline < self.today

    @property
    def open_count(self) -> int:
        return sum(1 for i in self.items if i.status is LedgerStatus.OPEN)

    @property
    def overdue_count(self) -> int:
        return sum(1 for i in self.items if self.overdue(i))


async def ledger_of(uow: UnitOfWork, clock: Clock, actor: Actor) -> Ledger:
    """Staff: their township's ledger; a cadre: their villages'; anyone else: nothing."""
    today = clock.now().date()
    if actor.role is Role.TOWNSHIP and actor.township_id is not None:
        items = await uow.ledger.of_township(actor.township_id)
    elif actor.role is Role.CADRE:
        items = await uow.ledger.of_villages(actor.village_ids, open_only=False)
    else:
        return Ledger([], [], frozenset(), today)
    open_items = sorted(
        (i for i in items if i.status is LedgerStatus.OPEN),
        key=lambda i: (i.deadline >= today, i.deadline, i.id),
    )
    closed = sorted(
        (i for i in items if i.status is not LedgerStatus.OPEN),
        key=lambda i: (i.closed_at or i.created_at, i.id),
        reverse=True,
    )[:MAX_CLOSED]
    villages = [v for v in await villages_of(uow, actor) if await ledger.may_add(uow, actor, v.id)]
    closable = frozenset(i.id for i in open_items if ledger.may_close(actor, i))
    return Ledger(open_items + closed, villages, closable, today)
