"""A campaign once created, on the in-memory unit of work: its cadres are told, and /report lists
only the periods the villages have been asked for."""

from __future__ import annotations

from datetime import datetime

from domain import campaigns, reports
from domain.messages import Outgoing, day
from tests.domain.test_campaigns import rows
from tests.fakes import (
    CADRE,
    CADRE_OTHER_TOWNSHIP,
    CADRE_OTHER_VILLAGE,
    COLLEAGUE,
    STAFF,
    World,
    build_world,
)
from tests.support import SHANGHAI, FakeClock

CAMPAIGN = (
    "活动,集中排查\n乡镇,青山镇\n村,{villages}\n报告,{reports}\n"
    "阶段,动员部署,2026-12-05\n阶段,入户排查,2026-12-20\n"
)


async def create(world: World, villages: str = "QS01;QS02;QS03", rhythm: str = "日期,2026-12-10") -> int:
    spec = campaigns.parse(rows(CAMPAIGN.format(villages=villages, reports=rhythm)), world.clock.now().date())
    return await world.run(STAFF, lambda uow, clock, actor: campaigns.create(uow, clock, spec))


async def report(world: World) -> Outgoing:
    await world.run(STAFF, reports.show)
    return world.last_to(STAFF)


async def test_each_cadre_of_the_campaigns_villages_is_told_once_with_its_phases() -> None:
    world = await build_world()
    qs01, qs02 = world.villages["QS01"].id, world.villages["QS02"].id
    async with world.uow() as uow:  # 赵强 has both villages of the campaign: told once all the same
        await uow.persons.set_villages(world.id(COLLEAGUE), (qs01, qs02))
        await uow.commit()

    campaign_id = await create(world)

    for address in (CADRE, COLLEAGUE, CADRE_OTHER_VILLAGE):
        (told,) = world.unread(address)
        assert told.template == "campaign.created", address
        assert told.params["campaign"] == "集中排查"
        assert told.params["deadline"] == day("2026-12-05")
        phases = [line["$with"]["phase"] for line in told.params["phases"]["$lines"]]
        assert phases == ["动员部署", "入户排查"]
    assert world.last_to(COLLEAGUE).params["villages"] == {"$join": ["李家村", "王家村"]}
    assert world.unread(CADRE_OTHER_TOWNSHIP) == []  # another township's
    keys = [m.key for m in world.uow.sent if m.message.template == "campaign.created"]
    assert sorted(keys) == sorted(
        f"campaign-new:{campaign_id}:{world.id(a)}" for a in (CADRE, COLLEAGUE, CADRE_OTHER_VILLAGE)
    )


async def test_report_before_any_village_was_asked_lists_nobody_as_missing() -> None:
    world = await build_world()  # 2026-11-23; the report of 12-10 is asked on 12-08 at 08:00
    await create(world)

    none = await report(world)
    assert none.template == "report.none_asked"
    assert (none.params["period"], none.params["asked"]) == ("12-10", "12-08 08:00")

    world.clock.current = datetime(2026, 12, 8, 7, 59, tzinfo=SHANGHAI)
    assert (await report(world)).template == "report.none_asked"
    world.clock.current = datetime(2026, 12, 8, 8, 0, tzinfo=SHANGHAI)
    table = await report(world)
    assert (table.template, table.params["period"], table.params["done"], table.params["total"]) == (
        "report.table", "12-10", 0, 3,
    )  # fmt: skip


async def test_a_period_asked_at_once_on_creation_is_listed() -> None:
    # Created on 11-29: the half-monthly report of 11-30 is asked at once (its morning is past).
    world = await build_world(FakeClock(datetime(2026, 11, 29, 10, 0, tzinfo=SHANGHAI)))
    await create(world, rhythm="半月")
    table = await report(world)
    assert (table.template, table.params["period"]) == ("report.table", "11-30")
