"""Campaigns stored and reminded: unknown villages refused, reminders stop once a village is done."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from domain import campaigns, schedule
from domain.actor import actor_for
from domain.model import Channel
from storage.db import session_factory
from storage.tables import OutboxRow, ScheduledRow
from storage.uow import SqlUnitOfWorkFactory
from tests.domain.test_campaigns import rows
from tests.support import SHANGHAI, FakeClock, seed_roster

FILE = (
    "活动,集中排查\n乡镇,青山镇\n村,QS01;QS03\n报告,日期,2027-01-31\n"
    "阶段,动员部署,2026-11-28\n阶段,集中排查,2026-12-20\n"
)


async def _tick(uow: SqlUnitOfWorkFactory, clock: FakeClock) -> schedule.TickResult:
    async with uow() as work:
        result = await schedule.tick(work, clock, schedule.default_handlers(), schedule.QuietHours())
        await work.commit()
    return result


async def _reminded(engine: AsyncEngine) -> list[tuple[int, str]]:
    async with session_factory(engine)() as session:
        found = (
            await session.execute(select(OutboxRow.person_id, OutboxRow.payload).order_by(OutboxRow.id))
        ).all()
    return [(person, payload["params"]["village"]) for person, payload in found]


async def test_reminders_go_to_villages_not_done_and_stop_once_done(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    uow = SqlUnitOfWorkFactory(session_factory(engine))
    await seed_roster(uow)
    spec = campaigns.parse(rows(FILE), clock.now().date())
    async with uow() as work:
        await campaigns.create(work, clock, spec)
        zhang = await work.persons.by_phone("+8613800000001")
        zhao = await work.persons.by_phone("+8613800000005")
        li = await work.persons.by_phone("+8613800000002")
        assert zhang and zhao and li
        for n, person in enumerate((zhang, zhao, li)):
            await work.persons.bind(person.id, Channel.TELEGRAM, str(2001 + n), clock.now())
        await work.commit()
    async with session_factory(engine)() as session:
        reminders = select(ScheduledRow).where(ScheduledRow.kind == campaigns.REMIND_KIND)
        due = sorted(r.due_at for r in (await session.scalars(reminders)).all())
    # 3 days, 1 day and the morning of each deadline, at 08:00 Beijing time.
    assert [d.astimezone(SHANGHAI).strftime("%m-%d %H:%M") for d in due] == [
        "11-25 08:00", "11-27 08:00", "11-28 08:00", "12-17 08:00", "12-19 08:00", "12-20 08:00",
    ]  # fmt: skip
    clock.current = datetime(2026, 11, 25, 8, 0, tzinfo=SHANGHAI)
    assert (await _tick(uow, clock)).done == 1
    first = await _reminded(engine)
    # 李家村 (QS01): 张伟 and 李娜; 陈家村 (QS03): 赵强; 王家村 (QS02) is not in the campaign.
    assert sorted(first) == sorted([(zhang.id, "李家村"), (li.id, "李家村"), (zhao.id, "陈家村")])

    async with uow() as work:
        phase_id = int((await work.schedule.due(clock.now() + timedelta(days=2), 1))[0].payload["phase"])  # type: ignore[attr-defined]
        village = await work.geography.village_by_code("QS01")
        assert village is not None
        outcome = await campaigns.mark_done(
            work, clock, await actor_for(work, clock, Channel.TELEGRAM, "2001"), phase_id, village.id
        )
        assert outcome.toast == "campaign.marked_done"
        again = await campaigns.mark_done(
            work, clock, await actor_for(work, clock, Channel.TELEGRAM, "2003"), phase_id, village.id
        )
        assert again.toast == "campaign.already_done"
        stranger = await campaigns.mark_done(
            work, clock, await actor_for(work, clock, Channel.TELEGRAM, "2002"), phase_id, 999
        )
        assert not stranger.done
        await work.commit()
    clock.current = datetime(2026, 11, 27, 8, 0, tzinfo=SHANGHAI)
    assert (await _tick(uow, clock)).done == 1
    assert (await _reminded(engine))[len(first) :] == [(zhao.id, "陈家村")]


async def test_unknown_villages_are_refused_with_their_line(
    uow: SqlUnitOfWorkFactory, clock: FakeClock
) -> None:
    await seed_roster(uow)
    spec = campaigns.parse(
        rows("活动,排查\n乡镇,青山镇\n村,QS01;BS01;XX9\n阶段,排查,2026-12-05\n"), clock.now().date()
    )
    async with uow() as work:
        with pytest.raises(campaigns.CampaignRejected) as refused:
            await campaigns.create(work, clock, spec)
    assert [(p.line, p.params["code"]) for p in refused.value.problems] == [(3, "BS01"), (3, "XX9")]
