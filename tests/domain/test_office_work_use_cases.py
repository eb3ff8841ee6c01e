"""The console's township work on the in-memory unit of work: the non-conversational use cases
beside the chat's (notices.compose, campaign_chat.define, ledger.add_item) do what the chat's
last answer does, with the same checks and messages; domain.office.work reads only the person's
scope."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from domain import buttons as b
from domain import campaign_chat, ledger, notices
from domain.actor import Actor
from domain.messages import Outgoing
from domain.model import Audience, LedgerStatus
from domain.office import work
from domain.ports import UnitOfWork
from tests.fakes import (
    CADRE,
    CADRE_OTHER_TOWNSHIP,
    CADRE_OTHER_VILLAGE,
    COLLEAGUE,
    STAFF,
    STAFF_OTHER_TOWNSHIP,
    World,
    build_world,
)
from tests.support import FakeClock

NOTICE = "请各村于12月1日前完成集中排查入户走访，并上报进度。"
CADRES = (CADRE, CADRE_OTHER_VILLAGE, COLLEAGUE)  # 青山镇's bound cadres (孙丽 never bound a chat)


async def compose(world: World, address: str = STAFF, **answers: Any) -> notices.Composed:
    given: dict[str, Any] = {"body": NOTICE, "audience": Audience.CADRES.value} | answers

    async def run(uow: UnitOfWork, clock: FakeClock, actor: Actor) -> notices.Composed:
        return await notices.compose(uow, clock, actor, **given)

    return await world.run(address, run)


def problems(done: notices.Composed | ledger.Added) -> dict[str, str]:
    return {name: why.template for name, why in done.problems.items()}


def shape(message: Outgoing) -> tuple[str, dict[str, Any], list[str]]:
    """A message as a cadre gets it, but for which notice its button names."""
    labels = [str(a.label) for row in message.actions for a in row]
    return message.template, message.params, labels


# --- notices ----------------------------------------------------------------------------------------


async def test_a_notice_composed_at_once_reaches_the_cadres_as_one_written_in_chat() -> None:
    world = await build_world()
    await world.run(STAFF, notices.start)
    conv = world.conversation(STAFF)
    assert conv is not None
    await world.say(STAFF, NOTICE)
    await world.press(STAFF, b.NoticeAudience(conv.id, Audience.CADRES))
    await world.press(STAFF, b.NoticeWhen(conv.id, "now"))
    await world.press(STAFF, b.NoticeSend(conv.id))
    from_chat = {address: world.unread(address) for address in CADRES}

    done = await compose(world)

    assert done.notice is not None and not done.scheduled and not done.problems
    for address in CADRES:
        (chat,) = from_chat[address]
        (web,) = world.unread(address)
        assert shape(web) == shape(chat) and web.template == "notice.message"
        assert [a.button for row in web.actions for a in row] == [b.NoticeAck(done.notice.id)]
    assert world.unread(CADRE_OTHER_TOWNSHIP) == []
    # The author gets the chat's status (x of y) as after the chat's 确认发送.
    assert [m.template for m in world.unread(STAFF)][-1] == "notice.status"


async def test_a_notice_with_an_id_or_phone_number_too_long_or_for_nobody_is_refused_and_not_stored() -> None:
    world = await build_world()

    with_id = await compose(world, body="请王大山带身份证 110101199003071234 到乡政府")
    with_phone = await compose(world, body="有事打 13912345678")
    too_long = await compose(world, body="字" * (notices.MAX_BODY + 1))
    nobody = await compose(world, audience="")
    no_village = await compose(world, audience=Audience.VILLAGES.value)

    assert problems(with_id) == problems(with_phone) == {"body": "notice.personal_data"}
    assert too_long.problems["body"].params == {"max": notices.MAX_BODY, "length": notices.MAX_BODY + 1}
    assert problems(nobody) == {"audience": "notice.ask_audience"}
    assert problems(no_village) == {"villages": "notice.villages_none"}
    assert world.uow.store.notices == {} and all(world.unread(a) == [] for a in CADRES)


async def test_a_notice_for_later_is_bounded_as_the_chat_bounds_it_and_scheduled() -> None:
    world = await build_world()
    now = world.clock.now()

    past = await compose(world, send_at=(now - timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M"))
    too_far = await compose(world, send_at="9999-12-31 09:00")
    unreadable = await compose(world, send_at="明天上午")
    later = await compose(world, send_at=(now + timedelta(days=2)).strftime("%Y-%m-%d 09:00"))

    assert problems(past) == {"send_at": "notice.time_past"}
    assert problems(too_far) == {"send_at": "notice.time_too_far"}
    assert problems(unreadable) == {"send_at": "notice.bad_time"}
    assert later.notice is not None and later.scheduled
    assert [i.kind for i in world.uow.store.schedule.values()] == [notices.SEND_KIND]
    assert all(world.unread(a) == [] for a in CADRES)  # not before its time


async def test_a_notice_to_a_village_of_another_township_is_as_if_the_village_did_not_exist() -> None:
    world = await build_world()
    theirs = world.villages["BS01"].id

    done = await compose(world, audience=Audience.VILLAGES.value, villages=[theirs])
    chosen = await compose(world, audience=Audience.VILLAGES.value, villages=[world.villages["QS02"].id])
    not_staff = await compose(world, address=CADRE)

    assert done.foreign and not done.problems and done.notice is None
    assert chosen.notice is not None
    assert [m.template for m in world.unread(CADRE_OTHER_VILLAGE)] == ["notice.message"]
    assert world.unread(CADRE) == []
    assert problems(not_staff) == {"": "notice.not_allowed"}


async def test_the_console_reads_only_the_staff_members_own_townships_notices() -> None:
    world = await build_world()
    done = await compose(world)
    assert done.notice is not None
    notice_id = done.notice.id
    await world.press(CADRE, b.NoticeAck(notice_id))

    async def listed(uow: UnitOfWork, clock: FakeClock, actor: Actor) -> list[work.Receipts]:
        return await work.notices_of(uow, actor)

    async def one(uow: UnitOfWork, clock: FakeClock, actor: Actor) -> work.Receipts | None:
        return await work.notice_of(uow, actor, notice_id)

    (mine,) = await world.run(STAFF, listed)
    # 孙丽 never bound a chat: counted, as the chat's status counts her, and marked unreachable.
    assert (len(mine.acked), mine.total, mine.remindable) == (1, 4, True)
    missing = [(r.person.name, r.reachable) for r in mine.missing]
    assert missing == [("李娜", True), ("赵强", True), ("孙丽", False)]
    assert await world.run(STAFF_OTHER_TOWNSHIP, listed) == []
    assert await world.run(STAFF_OTHER_TOWNSHIP, one) is None
    assert await world.run(CADRE, one) is None
    assert await world.run(STAFF, one) is not None


# --- the problem ledger ------------------------------------------------------------------------------


async def add(world: World, address: str, village: str, **answers: str) -> ledger.Added:
    given = {
        "what": "危房改造未完成",
        "measure": "协调住建部门",
        "deadline": "2026-12-20",
        "responsible": "张伟",
    }
    given |= answers
    village_id = world.villages[village].id

    async def run(uow: UnitOfWork, clock: FakeClock, actor: Actor) -> ledger.Added:
        return await ledger.add_item(uow, clock, actor, village_id, **given)

    return await world.run(address, run)


async def test_a_problem_is_added_by_a_cadre_of_the_village_or_staff_with_the_chats_reminders() -> None:
    world = await build_world()

    by_cadre = await add(world, CADRE, "QS01")
    by_staff = await add(world, STAFF, "QS03", deadline="12-31")

    assert by_cadre.item_id is not None and by_staff.item_id is not None
    items = world.uow.store.ledger
    assert (items[by_staff.item_id].village_id, str(items[by_staff.item_id].deadline)) == (
        world.villages["QS03"].id,
        "2026-12-31",
    )
    keys = sorted(i.key for i in world.uow.store.schedule.values())
    assert keys == sorted(f"ledger-remind:{i}:{d}" for i in items for d in ledger.REMIND_DAYS)


async def test_a_problem_for_a_village_not_the_persons_is_as_if_it_did_not_exist() -> None:
    world = await build_world()

    assert (await add(world, CADRE_OTHER_VILLAGE, "QS01")).foreign
    assert (await add(world, CADRE_OTHER_TOWNSHIP, "QS01")).foreign
    assert (await add(world, STAFF_OTHER_TOWNSHIP, "QS01")).foreign
    assert world.uow.store.ledger == {}


async def test_a_problem_is_refused_with_the_chats_messages_field_by_field() -> None:
    world = await build_world()

    past = await add(world, CADRE, "QS01", deadline="2020-01-01", what=" ")
    far = await add(world, CADRE, "QS01", deadline="2099-01-01", responsible="人" * 61)
    bad = await add(world, CADRE, "QS01", deadline="下个月", measure="措" * 501)

    assert problems(past) == {"deadline": "ledger.bad_deadline", "what": "ledger.bad_text"}
    assert problems(far) == {"deadline": "ledger.deadline_too_far", "responsible": "ledger.bad_text"}
    assert far.problems["responsible"].params == {"max": ledger.MAX_RESPONSIBLE}
    assert problems(bad) == {"deadline": "ledger.bad_deadline", "measure": "ledger.bad_text"}
    assert world.uow.store.ledger == {}


async def test_the_ledger_shows_overdue_first_and_only_a_cadre_of_the_village_may_close() -> None:
    world = await build_world()
    later = await add(world, CADRE, "QS01", deadline="2026-12-20")
    sooner = await add(world, CADRE, "QS01", deadline="2026-11-25")
    other = await add(world, STAFF, "QS02", deadline="2026-11-30")
    assert later.item_id and sooner.item_id and other.item_id
    world.clock.advance(days=3)  # 11-26: the 11-25 item is overdue

    async def seen(uow: UnitOfWork, clock: FakeClock, actor: Actor) -> work.Ledger:
        return await work.ledger_of(uow, clock, actor)

    staff = await world.run(STAFF, seen)
    cadre = await world.run(CADRE, seen)

    assert [i.id for i in staff.items] == [sooner.item_id, other.item_id, later.item_id]
    assert (staff.open_count, staff.overdue_count, staff.closable) == (3, 1, frozenset())
    assert [i.id for i in cadre.items] == [sooner.item_id, later.item_id]
    assert cadre.closable == {sooner.item_id, later.item_id}
    assert [v.code for v in cadre.villages] == ["QS01"]
    assert [v.code for v in staff.villages] == ["QS01", "QS02", "QS03"]
    assert (await world.run(STAFF_OTHER_TOWNSHIP, seen)).items == []

    async def close(uow: UnitOfWork, clock: FakeClock, actor: Actor) -> str | None:
        return (await ledger.close(uow, clock, actor, sooner.item_id or 0)).toast

    assert await world.run(STAFF, close) == "ledger.not_yours"
    assert await world.run(CADRE, close) == "ledger.closed"
    assert world.uow.store.ledger[sooner.item_id].status is LedgerStatus.CLOSED


# --- campaigns ---------------------------------------------------------------------------------------


async def define(world: World, address: str = STAFF, **answers: Any) -> campaign_chat.Defined:
    given: dict[str, Any] = {
        "name": "2026年集中排查",
        "villages": ["QS01", "QS02"],
        "rhythm": "dates",
        "dates": "2026-12-10",
        "phases": [("动员部署", "2026-12-05"), ("入户排查", "2026-12-20")],
        "reminders": "",
    } | answers

    async def run(uow: UnitOfWork, clock: FakeClock, actor: Actor) -> campaign_chat.Defined:
        return await campaign_chat.define(uow, clock, actor, **given)

    return await world.run(address, run)


def keys(done: campaign_chat.Defined) -> dict[str, list[str]]:
    return {name: [p.key for p in found] for name, found in done.problems.items()}


async def test_a_campaign_defined_at_once_is_created_as_the_chat_creates_it() -> None:
    world = await build_world()

    done = await define(world)

    assert done.campaign_id is not None and not done.problems
    row = world.uow.store.campaigns[done.campaign_id]
    assert (row.name, row.reports) == ("2026年集中排查", {"kind": "dates", "dates": ["2026-12-10"]})
    assert sorted(world.uow.store.campaign_villages[done.campaign_id]) == sorted(
        world.villages[c].id for c in ("QS01", "QS02")
    )
    phases = sorted((p.seq, p.name, str(p.deadline)) for p in world.uow.store.phases.values())
    assert phases == [(1, "动员部署", "2026-12-05"), (2, "入户排查", "2026-12-20")]
    assert [m.template for m in world.unread(CADRE)] == ["campaign.created"]
    assert world.unread(CADRE_OTHER_TOWNSHIP) == []
    kinds = {i.kind for i in world.uow.store.schedule.values()}
    assert kinds == {"campaign-remind", "report-request", "report-remind"}


async def test_a_campaign_is_refused_with_every_problem_beside_its_field() -> None:
    world = await build_world()

    done = await define(
        world,
        name="",
        rhythm="dates",
        dates="十二月",
        phases=[("动员部署", "2026-13-40"), ("入户排查", "2026-11-01"), ("", "2026-12-30")],
        reminders="3;99",
    )

    assert done.campaign_id is None and not done.foreign
    assert keys(done) == {
        "name": ["campaign.chat_bad_name"],
        "dates": ["campaign.chat_bad_dates"],
        "phase0": ["campaign.bad_date"],
        "phase1": ["campaign.deadline_past"],
        "phase2": ["campaign.bad_date"],
        "reminders": ["campaign.bad_reminders"],
    }
    assert world.uow.store.campaigns == {} and world.unread(CADRE) == []


async def test_phases_out_of_order_too_many_or_too_far_are_refused() -> None:
    world = await build_world()

    disorder = await define(world, phases=[("动员部署", "2026-12-20"), ("入户排查", "2026-12-05")])
    many = await define(world, phases=[(f"阶段{n}", f"2026-12-{n + 1:02d}") for n in range(21)])
    far = await define(world, rhythm="half-monthly", phases=[("整改", "2099-01-01")])
    no_phase = await define(world, phases=[])

    assert keys(disorder) == {"phase1": ["campaign.phase_order"]}
    assert keys(many) == {"phases": ["campaign.chat_too_many"]}
    assert keys(far) == {"phase0": ["campaign.date_too_far"]}
    assert keys(no_phase) == {"phases": ["campaign.missing"]}
    assert world.uow.store.campaigns == {}


async def test_a_campaign_with_a_village_of_another_township_or_by_a_cadre_is_refused() -> None:
    world = await build_world()

    foreign = await define(world, villages=["QS01", "BS01"])
    cadre = await define(world, address=CADRE)

    assert foreign.foreign and not foreign.problems
    assert keys(cadre) == {"": ["campaign.chat_not_allowed"]}
    assert world.uow.store.campaigns == {}


async def test_the_progress_of_a_campaign_is_its_townships_staffs_only() -> None:
    world = await build_world()
    done = await define(world, dates="2026-11-25")  # asked at once: two days or less before it
    campaign_id = done.campaign_id
    assert campaign_id is not None
    await world.press(CADRE, b.FillReport(campaign_id, date(2026, 11, 25), world.villages["QS01"].id))
    for answer in ("12", "1", "2", "1", "无"):
        await world.say(CADRE, answer)

    async def progress(uow: UnitOfWork, clock: FakeClock, actor: Actor) -> work.Progress | None:
        return await work.progress_of(uow, clock, actor, campaign_id or 0)

    seen = await world.run(STAFF, progress)
    assert seen is not None and seen.latest is not None and str(seen.latest) == "2026-11-25"
    report = seen.reports[(world.villages["QS01"].id, seen.latest)]
    assert (report.visited, report.new_risks, report.problems_found, report.problems_closed) == (12, 1, 2, 1)
    assert [(m.village.code, [c.name for c in m.cadres]) for m in seen.missing] == [("QS02", ["李娜"])]
    assert [p.name for p in seen.phases] == ["动员部署", "入户排查"]
    assert await world.run(STAFF_OTHER_TOWNSHIP, progress) is None
    assert await world.run(CADRE, progress) is None

    async def listed(uow: UnitOfWork, clock: FakeClock, actor: Actor) -> list[int]:
        return [c.id for c in await work.campaigns_of(uow, actor)]

    assert await world.run(STAFF, listed) == [campaign_id]
    assert await world.run(STAFF_OTHER_TOWNSHIP, listed) == []
