"""The console's overview on the in-memory unit of work: every figure over the person's villages
only (staff their township, the county its townships, a cadre their villages), the service's days
and week, overdue by step and village, 签收 against the policy's limit, scans by channel."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from domain import cases, household
from domain.model import Declaration, DeclarationStatus, Role
from domain.office.overview import Overview, Part, overview
from tests.fakes import (
    CADRE,
    CADRE_OTHER_TOWNSHIP,
    CADRE_OTHER_VILLAGE,
    FARMER,
    STAFF,
    STAFF_OTHER_TOWNSHIP,
    TG,
    World,
    build_world,
)
from tests.support import SHANGHAI

S = DeclarationStatus
COUNTY = "107"  # 周明, the county person of 青山县 (青山镇's county)


async def county_world() -> World:
    """The small world, with 青山镇 in 青山县 and that county's person."""
    world = await build_world()
    async with world.uow() as uow:
        qingshan = await uow.geography.township_by_name("青山镇")
        assert qingshan is not None
        await uow.geography.set_township_county(qingshan.id, "青山县")
        person = await uow.persons.add(Role.COUNTY, name="周明", county="青山县")
        await uow.persons.bind(person.id, TG, COUNTY, world.clock.now())
        await uow.commit()
    return world


async def seen_by(world: World, address: str, parts: tuple[Part, ...] = tuple(Part)) -> Overview:
    rules = world.services.rules
    return await world.run(address, lambda uow, clock, actor: overview(uow, clock, rules, actor, parts))


async def declare(world: World, village: str, n: int, risks: tuple[str, ...] = ("illness",)) -> Declaration:
    return await world.declare(f"90{n:02d}", village=village, phone=f"+86139000000{n:02d}", risks=risks)


async def acknowledge(world: World, address: str, declaration: Declaration) -> None:
    rules, task = world.services.rules, world.task_of(declaration.id)
    outcome = await world.run(
        address, lambda uow, clock, actor: cases.acknowledge(uow, clock, rules, actor, task.id)
    )
    assert outcome.done


async def test_every_figure_counts_only_the_persons_villages() -> None:
    world = await county_world()
    await declare(world, "QS01", 1, ("illness", "disability"))
    await declare(world, "QS01", 2)
    await declare(world, "QS02", 3)
    await declare(world, "BS01", 4)

    staff = await seen_by(world, STAFF)
    assert staff.states == ((S.SUBMITTED, 3),)
    assert staff.risks == (("illness", 3), ("disability", 1))  # a declaration naming two counts under both
    assert staff.new_this_week == 3 and staff.daily[-1] == (date(2026, 11, 23), 3)
    assert sum(n for _, n in staff.daily) == 3
    assert staff.acknowledging is not None and staff.acknowledging.waiting == 3

    other = await seen_by(world, STAFF_OTHER_TOWNSHIP)
    assert other.states == ((S.SUBMITTED, 1),) and other.new_this_week == 1
    assert other.risks == (("illness", 1),)

    county = await seen_by(world, COUNTY)
    assert county.states == ((S.SUBMITTED, 3),)
    assert {v.code for v in county.villages} == {"QS01", "QS02", "QS03"}

    for address, seen in ((CADRE, 2), (CADRE_OTHER_VILLAGE, 1), (CADRE_OTHER_TOWNSHIP, 1)):
        cadre = await seen_by(world, address)
        assert cadre.states == ((S.SUBMITTED, seen),), address
        assert cadre.new_this_week == seen, address

    household = await seen_by(world, FARMER)  # no villages: nothing at all
    assert household.villages == () and household.states == () and household.new_this_week == 0


async def test_overdue_cases_are_counted_by_step_and_by_village() -> None:
    world = await build_world()
    first = await declare(world, "QS01", 1)
    await declare(world, "QS01", 2)
    await declare(world, "QS02", 3)
    await declare(world, "BS01", 4)  # 白水乡's: never counted for 青山镇
    world.clock.advance(hours=2)
    await acknowledge(world, CADRE, first)
    assert (await seen_by(world, STAFF)).overdue == 0  # nothing due yet (Tuesday night)

    world.clock.advance(days=3)  # Thursday

    found = await seen_by(world, STAFF, (Part.OVERDUE,))
    assert found.overdue_by_step == (("acknowledge", 2), ("visit", 1))
    assert [(row.village.code, row.by_step, row.total) for row in found.overdue_by_village] == [
        ("QS01", (("acknowledge", 1), ("visit", 1)), 2),
        ("QS02", (("acknowledge", 1),), 1),
    ]
    mine = await seen_by(world, CADRE_OTHER_VILLAGE, (Part.OVERDUE,))
    assert mine.overdue_by_step == (("acknowledge", 1),)
    assert [row.village.code for row in mine.overdue_by_village] == ["QS02"]


async def test_time_to_acknowledge_is_judged_against_the_policys_limit() -> None:
    world = await build_world()  # Monday 10:00: 签收 is due by the end of Tuesday (1 working day)
    quick = await declare(world, "QS01", 1)
    slow = await declare(world, "QS01", 2)
    await declare(world, "QS01", 3)  # never acknowledged
    gone = await declare(world, "QS01", 4)
    withdrawn = await world.run(
        "9004", lambda uow, clock, actor: household.withdraw(uow, clock, actor, gone.id)
    )
    assert withdrawn.done and world.declaration(gone.id).status is S.WITHDRAWN  # waits for nobody
    world.clock.advance(hours=2)
    await acknowledge(world, CADRE, quick)
    world.clock.current = datetime(2026, 11, 25, 9, 0, tzinfo=SHANGHAI)  # Wednesday morning: late
    await acknowledge(world, CADRE, slow)

    found = (await seen_by(world, STAFF, (Part.ACKNOWLEDGE,))).acknowledging

    assert found is not None
    assert (found.in_time, found.late, found.waiting, found.waiting_late) == (1, 1, 0, 1)
    spans = {(s.low, s.high): (s.in_time, s.late) for s in found.spans}
    assert spans[(0, 4)] == (1, 0) and spans[(24, 48)] == (0, 1)
    assert found.median_hours == 24.5  # of 2 and 47 hours
    assert found.due_if_declared_now == world.services.rules.due("acknowledge", world.clock.now())
    overdue = await seen_by(world, STAFF, (Part.OVERDUE,))
    # The one never acknowledged, and the quick one's visit (due Tuesday night); not the withdrawn.
    assert overdue.overdue_by_step == (("acknowledge", 1), ("visit", 1))


async def test_days_and_the_week_are_the_services_not_utc() -> None:
    world = await build_world()
    world.clock.current = datetime(2026, 10, 1, 12, 0, tzinfo=SHANGHAI)  # before the 30 days
    await declare(world, "QS01", 1)
    world.clock.current = datetime(2026, 11, 22, 23, 30, tzinfo=SHANGHAI)  # Sunday night (UTC: Sunday)
    await declare(world, "QS01", 2)
    world.clock.current = datetime(2026, 11, 23, 0, 30, tzinfo=SHANGHAI)  # Monday (UTC: still Sunday)
    await declare(world, "QS01", 3)
    world.clock.current = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)

    found = await seen_by(world, STAFF)

    assert found.week_start == date(2026, 11, 23) and found.new_this_week == 1
    assert len(found.daily) == 30 and found.daily[0][0] == date(2026, 10, 25) == found.period_start
    assert found.daily[-2:] == ((date(2026, 11, 22), 1), (date(2026, 11, 23), 1))
    assert found.states == ((S.SUBMITTED, 3),)  # the states count every declaration, however old


async def test_scans_are_counted_by_village_batch_and_channel_in_scope_only() -> None:
    world = await build_world()
    async with world.uow() as uow:
        day = world.clock.now().date()
        for code, batch, channel in (
            ("QS01", "2026-11", "web"), ("QS01", "2026-11", "web"), ("QS01", "2026-11", "telegram"),
            ("QS02", "", "telegram"), ("BS01", "2026-11", "web"),
        ):  # fmt: skip
            await uow.scans.count(code, batch, channel, day)
        await uow.scans.count("QS01", "2026-11", "web", day - timedelta(days=40))
        await uow.commit()

    found = await seen_by(world, STAFF, (Part.SCANS,))

    assert [(s.village.code, s.batch, s.web, s.telegram) for s in found.scans] == [
        ("QS01", "2026-11", 3, 1),
        ("QS02", "", 0, 1),
    ]
    cadre = await seen_by(world, CADRE, (Part.SCANS,))
    assert [(s.village.code, s.web, s.telegram) for s in cadre.scans] == [("QS01", 3, 1)]


async def test_only_the_parts_asked_for_are_counted() -> None:
    world = await build_world()
    await declare(world, "QS01", 1)

    found = await seen_by(world, STAFF, (Part.STATES,))

    assert found.states == ((S.SUBMITTED, 1),)
    assert found.daily == () and found.risks == () and found.acknowledging is None
    assert found.new_this_week == 0 and found.scans == () and found.overdue_by_step == ()
