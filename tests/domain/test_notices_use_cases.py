"""Notices after they are sent, on the in-memory unit of work: the status staff keep (刷新 at any
time, 提醒 while someone has not confirmed), reminding, and the author told once when all have."""

from __future__ import annotations

from domain import buttons as b
from domain import notices
from domain.actor import Actor
from domain.messages import Outgoing
from domain.model import Audience
from domain.ports import UnitOfWork
from tests.fakes import CADRE, COLLEAGUE, STAFF, World, build_world
from tests.support import FakeClock

NOTICE = "请各村于12月1日前完成集中排查入户走访，并上报进度。"


async def sent(world: World) -> int:
    """A notice from 王芳 to 李家村's two cadres (张伟, 赵强), sent now; its status read."""
    village = world.villages["QS01"].id

    async def send(uow: UnitOfWork, clock: FakeClock, actor: Actor) -> int:
        assert actor.township_id is not None
        audience = {"kind": Audience.VILLAGES.value, "villages": [village]}
        notice = await uow.notices.add(
            actor.township_id,
            actor.id,
            body=NOTICE,
            audience=audience,
            media=None,
            send_at=None,
            at=clock.now(),
        )
        await notices.dispatch(uow, clock, notice.id)
        return notice.id

    notice_id = await world.run(STAFF, send)
    for address in (STAFF, CADRE, COLLEAGUE):
        world.unread(address)
    return notice_id


def buttons(message: Outgoing) -> list[object]:
    return [action.button for row in message.actions for action in row]


async def test_a_reminder_leaves_the_status_pressed_as_it_is_with_its_buttons() -> None:
    world = await build_world()
    notice_id = await sent(world)
    await world.press(CADRE, b.NoticeAck(notice_id))

    outcome = await world.press(STAFF, b.NoticeRemind(notice_id))

    # Not done: the status pressed keeps 刷新 and 提醒 (the chat takes no keyboard away).
    assert (outcome.toast, outcome.params, outcome.done) == ("notice.reminded", {"count": 1}, False)
    assert [m.template for m in world.unread(COLLEAGUE)] == ["notice.reminder"]
    assert world.unread(CADRE) == []
    await world.press(STAFF, b.NoticeStatus(notice_id))
    (status,) = world.unread(STAFF)
    assert (status.template, status.params["acked"], status.params["total"]) == ("notice.status", 1, 2)
    assert buttons(status) == [b.NoticeStatus(notice_id), b.NoticeRemind(notice_id)]


async def test_the_author_is_told_once_when_everyone_has_confirmed_and_may_still_refresh() -> None:
    world = await build_world()
    notice_id = await sent(world)

    await world.press(CADRE, b.NoticeAck(notice_id))
    assert world.unread(STAFF) == []
    await world.press(COLLEAGUE, b.NoticeAck(notice_id))

    (told,) = world.unread(STAFF)
    assert (told.template, told.params["total"]) == ("notice.all_confirmed", 2)
    assert buttons(told) == [b.NoticeStatus(notice_id)]
    assert f"notice:{notice_id}:all-confirmed" in {m.key for m in world.uow.sent}
    assert (await world.press(COLLEAGUE, b.NoticeAck(notice_id))).toast == "notice.already_acknowledged"
    assert world.unread(STAFF) == []

    await world.press(STAFF, b.NoticeStatus(notice_id))
    (status,) = world.unread(STAFF)
    assert (status.params["acked"], status.params["total"], status.params["missing"]) == (2, 2, "—")
    assert buttons(status) == [b.NoticeStatus(notice_id)]  # 刷新 still; nobody left to remind
