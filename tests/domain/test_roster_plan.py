"""roster.plan (the changes apply would make, nothing written) and the console's roster desk (a
township's staff change their own township's roster only), on the fakes."""

from __future__ import annotations

from domain import roster
from domain.actor import actor_for
from domain.model import Role
from domain.office import files, roster_desk
from domain.roster import RosterRow
from tests.fakes import STAFF, STAFF_OTHER_TOWNSHIP, TG, World, build_world

HEADER = "township,village_code,village,name,phone,role"
AS_IT_IS = (
    "青山镇,QS01,李家村,张伟,13800000001,cadre",
    "青山镇,QS02,王家村,李娜,13800000002,cadre",
    "青山镇,,,王芳,13800000003,township",
    "青山镇,QS01,李家村,赵强,13800000005,cadre",
    "青山镇,QS03,陈家村,孙丽,13800000007,cadre",
)
CHANGED = (
    "青山镇,QS01,李家村,张伟,13800000001,cadre",
    "青山镇,QS02;QS04,王家村;新村,李娜,13800000002,cadre",  # a new village
    "青山镇,,,王芳,13800000003,township",
    "青山镇,,,赵强,13800000005,township",  # cadre -> staff
    "青山镇,QS03,陈家村,孙莉,13800000007,cadre",  # renamed
    "青山镇,QS03,陈家村,周八,13800000009,cadre",  # added
)


def sheet(*lines: str) -> list[tuple[int, list[str]]]:
    return [(number, line.split(",")) for number, line in enumerate((HEADER, *lines), start=1)]


def rows(*lines: str) -> list[RosterRow]:
    return roster.parse(sheet(*lines))


async def test_a_roster_as_it_is_plans_no_change() -> None:
    world = await build_world()
    async with world.uow() as uow:
        planned = await roster.plan(uow, rows(*AS_IT_IS))
    assert planned.report == roster.ImportReport(created=0, updated=0, unchanged=5, villages_created=0)
    assert planned.villages == () and planned.townships == () and planned.problems == ()


async def test_the_plan_names_each_change_writes_nothing_and_apply_does_the_same() -> None:
    world = await build_world()
    before = world.uow.store.snapshot()
    async with world.uow() as uow:
        planned = await roster.plan(uow, rows(*CHANGED))
        await uow.commit()  # a plan that wrote would show now
    assert world.uow.store.snapshot() == before

    by_line = {p.line: p for p in planned.people}
    assert by_line[3].changes == ("villages",) and by_line[3].villages == ("QS02", "QS04")
    assert by_line[3].was_villages == ("QS02",)
    assert by_line[5].changes == ("role", "villages") and by_line[5].role is Role.TOWNSHIP
    assert by_line[6].changes == ("name",) and by_line[6].was is not None and by_line[6].was.name == "孙丽"
    assert by_line[7].was is None and by_line[7].villages == ("QS03",)
    assert by_line[2].changes == () and by_line[4].changes == ()
    assert [(v.code, v.name, v.was) for v in planned.villages] == [("QS04", "新村", None)]

    async with world.uow() as uow:
        applied = await roster.apply(uow, rows(*CHANGED), world.clock.now())
        await uow.commit()
    assert applied == planned.report == roster.ImportReport(1, 3, 2, 1)
    async with world.uow() as uow:
        again = await roster.plan(uow, rows(*CHANGED))
    assert again.report == roster.ImportReport(0, 0, 6, 0)


async def test_a_village_moved_or_renamed_is_planned_with_what_it_was() -> None:
    world = await build_world()
    async with world.uow() as uow:
        planned = await roster.plan(uow, rows("白水乡,QS03,陈家新村,钱七,13800000010,cadre"))
    [moved] = planned.villages
    assert (moved.code, moved.name, moved.township, moved.was_township) == (
        "QS03",
        "陈家新村",
        "白水乡",
        "青山镇",
    )


async def test_a_village_named_by_code_only_that_does_not_exist_is_a_problem_as_in_apply() -> None:
    world = await build_world()
    async with world.uow() as uow:
        planned = await roster.plan(uow, rows("青山镇,QS09,,钱七,13800000010,cadre"))
    assert [(p.line, p.key) for p in planned.problems] == [(2, "roster.unknown_village")]


async def test_check_keeps_the_good_rows_beside_the_problems() -> None:
    good, problems = roster.check(
        sheet("青山镇,QS01,李家村,张伟,13800000001,cadre", "青山镇,QS01,李家村,李娜,123,cadre")
    )
    assert [r.line for r in good] == [2]
    assert [(p.line, p.key) for p in problems] == [(3, "validate.phone")]
    assert roster.check([]) == ([], [roster.Problem(1, "roster.empty")])


async def _preview(world: World, address: str, *lines: str) -> roster_desk.Preview:
    good, problems = roster.check(sheet(*lines))
    async with world.uow() as uow:
        actor = await actor_for(uow, world.clock, TG, address)
        return await roster_desk.preview(uow, actor, good, problems)


async def test_staff_may_change_their_own_township_only() -> None:
    world = await build_world()
    found = await _preview(
        world,
        STAFF,
        *CHANGED,
        "白水乡,,,钱七,13800000010,township",  # another township's line
        "青山镇,,,刘洋,13800000004,township",  # 白水乡's cadre taken over
        "青山镇,BS01,,钱八,13800000011,cadre",  # 白水乡's village
        "青山镇,QS01,李家村,错,12345,cadre",  # a bad phone
    )
    assert not found.ready
    assert [(p.line, p.key) for p in found.problems] == [
        (8, roster_desk.OTHER_TOWNSHIP),
        (9, roster_desk.PERSON_ELSEWHERE),
        (10, roster_desk.VILLAGE_ELSEWHERE),
        (11, "validate.phone"),
    ]
    assert found.plan.report == roster.ImportReport(1, 3, 2, 1)  # the good lines' changes, shown anyway


async def test_confirm_applies_only_what_was_shown() -> None:
    world = await build_world()
    shown = await _preview(world, STAFF, *CHANGED)
    assert shown.ready
    good, problems = roster.check(sheet(*CHANGED))
    async with world.uow() as uow:
        actor = await actor_for(uow, world.clock, TG, STAFF)
        stale = await roster_desk.confirm(uow, world.clock, actor, good, problems, "not-what-was-shown")
        done = await roster_desk.confirm(uow, world.clock, actor, good, problems, shown.fingerprint)
        await uow.commit()
    assert isinstance(stale, roster_desk.Changed)
    assert isinstance(done, roster_desk.Applied) and done.report == roster.ImportReport(1, 3, 2, 1)
    async with world.uow() as uow:
        zhao = await uow.persons.by_phone("+8613800000005")
    assert zhao is not None and zhao.role is Role.TOWNSHIP


async def test_an_invite_is_for_the_township_s_people_and_its_qr_for_its_staff_only() -> None:
    world = await build_world()
    async with world.uow() as uow:
        staff = await actor_for(uow, world.clock, TG, STAFF)
        listed = await roster_desk.invitable(uow, staff)
        liu = await uow.persons.by_phone("+8613800000004")  # 白水乡's cadre
        assert liu is not None
        issued = await roster_desk.invite(uow, world.clock, staff, [listed[0].id, liu.id])
        await uow.commit()
    assert [p.name for p in listed] == ["王芳", "孙丽", "张伟", "李娜", "赵强"]
    assert [one.person.name for one in issued] == ["王芳"]  # 刘洋 is not theirs: ignored
    async with world.uow() as uow:
        staff = await actor_for(uow, world.clock, TG, STAFF)
        other = await actor_for(uow, world.clock, TG, STAFF_OTHER_TOWNSHIP)
        assert await roster_desk.live_invite(uow, world.clock, staff, issued[0].token) is not None
        assert await roster_desk.live_invite(uow, world.clock, other, issued[0].token) is None
        assert await roster_desk.live_invite(uow, world.clock, staff, "不是令牌") is None
    async with world.uow() as uow:
        staff = await actor_for(uow, world.clock, TG, STAFF)
        unbound = await roster_desk.invite(uow, world.clock, staff, None)  # everyone not bound yet
    assert [one.person.name for one in unbound] == ["孙丽"]
    world.clock.advance(days=8)
    async with world.uow() as uow:
        staff = await actor_for(uow, world.clock, TG, STAFF)
        assert await roster_desk.live_invite(uow, world.clock, staff, issued[0].token) is None


async def test_a_cadre_keeps_no_roster() -> None:
    world = await build_world()
    async with world.uow() as uow:
        cadre = await actor_for(uow, world.clock, TG, "101")
        try:
            await roster_desk.preview(uow, cadre, [], [])
        except roster_desk.NotStaff:
            pass
        else:
            raise AssertionError("a cadre previewed a roster")
        assert await files.townships_of(uow, cadre) == []


async def test_failed_messages_of_the_staff_s_township() -> None:
    world = await build_world()
    world.uow.fail_delivery(world.people["101"], "case.new", "forbidden: bot was blocked", world.clock.now())
    world.uow.fail_delivery(world.people["104"], "case.new", "no address", world.clock.now())
    async with world.uow() as uow:
        staff = await actor_for(uow, world.clock, TG, STAFF)
        found = await files.failed(uow, staff)
    assert [(f.name, f.role, f.reason) for f in found] == [("张伟", Role.CADRE, "sender.reason_blocked")]
