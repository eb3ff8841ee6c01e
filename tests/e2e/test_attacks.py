"""Tried again as an attacker or a careless user would, through the real application: a reminder
button pressed over and over, a household flooding a cadre with 补充材料, a cadre moved to
another village by the roster who still owns a case of the old one."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select

from bot.service import Service
from domain import roster
from domain.model import Role
from domain.validation import phone
from storage.tables import AttachmentRow, OutboxRow, PersonRow
from tests.e2e.conftest import Chat, bind, declare
from tests.e2e.test_notices import NOTICE, write_notice
from tests.emulator import BotAPIEmulator, EmuMessage


async def _outbox_count(service: Service, like: str) -> int:
    async with service.sessions() as session:
        query = select(func.count()).select_from(OutboxRow).where(OutboxRow.key.like(like))
        return int(await session.scalar(query) or 0)


def _data(message: EmuMessage, prefix: str) -> str:
    for row in message.inline_keyboard or []:
        for button in row:
            if str(button.get("callback_data", "")).startswith(prefix):
                return str(button["callback_data"])
    raise AssertionError(f"no {prefix} button")


async def test_the_remind_button_pressed_again_and_again_does_not_flood_the_cadres(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    staff = chat(3001, "王芳")
    await bind(service, staff, "13800000003")
    zhang = chat(2001, "张伟")
    await bind(service, zhang, "13800000001")
    await staff.press(await write_notice(staff), "全体村干部")
    await staff.press(await staff.expect("什么时候发送"), "立即发送")
    await staff.press(await staff.expect("请核对", NOTICE), "确认发送")
    await zhang.expect(NOTICE)
    status = await staff.expect("已收到：0 /")
    remind = _data(status, "nrem:")
    assert await staff.press(status, "提醒未确认的人") == "已提醒 3 人"
    await zhang.expect("【提醒】", NOTICE)
    queued = await _outbox_count(service, "notice-remind:%")
    assert queued >= 1
    # The same button, forged or from a refreshed status message, pressed again at once.
    for _ in range(5):
        answer = await staff.press_data(status, remind)
        assert "刚提醒过" in answer, answer
    await zhang.silent(0.8)
    assert await _outbox_count(service, "notice-remind:%") == queued  # still the one round


async def test_a_household_cannot_flood_the_cadre_with_added_information(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    cadre = chat(2001, "张伟")
    await bind(service, cadre, "13800000001")
    farmer = chat(1001)
    await farmer.press(await declare(farmer), "确认提交")
    await farmer.expect("回执编号")
    await cadre.expect("新申报")
    await farmer.send("我的申报")
    listing = await farmer.expect("您的申报")
    add = next(b for b in listing.button_texts if b.startswith("补充材料"))
    await farmer.press(listing, add)
    await farmer.expect("补充到回执编号")
    for n in range(1, 21):
        await farmer.send(f"补充第{n}条情况")
        await farmer.expect(f"已收到（共 {n} 条）")
    await farmer.send("第二十一条")
    await farmer.expect("今天补充的已经很多", "12317")
    # Leaving and opening 补充 again does not reset the count.
    await farmer.send("取消")
    await farmer.expect("已取消")
    await farmer.press(listing, add)
    await farmer.expect("补充到回执编号")
    await farmer.send("再来一条")
    await farmer.expect("今天补充的已经很多")
    async with service.sessions() as session:
        stored = int(await session.scalar(select(func.count()).select_from(AttachmentRow)) or 0)
    assert stored == 20
    for _ in range(20):
        await cadre.expect("补充")
    await cadre.silent(0.8)


async def test_a_cadre_moved_to_another_village_no_longer_hears_of_or_hands_over_the_old_case(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    zhang, li = chat(2001, "张伟"), chat(2002, "李娜")
    await bind(service, zhang, "13800000001")
    await bind(service, li, "13800000002")
    farmer = chat(1001)
    await farmer.press(await declare(farmer), "确认提交")
    await farmer.expect("回执编号")
    case = await zhang.expect("新申报")
    await li.expect("新申报")
    await zhang.press(case, "签收")
    await farmer.expect("签收")
    acknowledged = await zhang.expect("您已签收")
    await li.expect("已由 张伟 签收")
    task = _data(acknowledged, "hand:").split(":")[1]
    # The roster moves 张伟 from 李家村 (QS01) to 陈家村 (QS03).
    rows = [
        roster.RosterRow(1, "青山镇", (("QS03", "陈家村"),), "张伟", phone("13800000001"), Role.CADRE),
        roster.RosterRow(
            2, "青山镇", (("QS01", "李家村"), ("QS02", "王家村")), "李娜", phone("13800000002"), Role.CADRE
        ),
    ]
    async with service.uow() as uow:
        await roster.apply(uow, rows)
        await uow.commit()
    # What the household adds now goes to the village's cadre, not to 张伟 in another village.
    await farmer.send("我的申报")
    listing = await farmer.expect("您的申报")
    await farmer.press(listing, next(b for b in listing.button_texts if b.startswith("补充材料")))
    await farmer.expect("补充到回执编号")
    await farmer.send("昨天又去医院复查了")
    await farmer.expect("已收到（共 1 条）")
    await li.expect("补充说明", "又去医院复查")
    await zhang.silent(0.8)
    # His old buttons no longer hand the case on.
    answer = await zhang.press_data(acknowledged, f"hand:{task}")
    assert "无权" in answer, answer
    async with service.sessions() as session:
        li_id = await session.scalar(select(PersonRow.id).where(PersonRow.name == "李娜"))
    answer = await zhang.press_data(acknowledged, f"handto:{task}:{li_id}")
    assert "无权" in answer, answer
    await li.silent(0.8)


async def test_a_case_the_township_took_and_handed_to_a_cadre_can_be_worked_by_that_cadre(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    staff = chat(3001, "王芳")
    await bind(service, staff, "13800000003")
    farmer = chat(1001)
    await farmer.press(await declare(farmer), "确认提交")  # no cadre of 李家村 has a chat yet
    await farmer.expect("回执编号")
    case = await staff.expect("新申报")
    zhang = chat(2001, "张伟")
    await bind(service, zhang, "13800000001")
    await staff.press(case, "签收")
    await farmer.expect("签收")
    acknowledged = await staff.expect("您已签收")
    await staff.press(acknowledged, "转交同事")
    await staff.press(await staff.expect("转交给哪位同事"), "张伟")
    handed = await zhang.expect("转交给了您")
    await zhang.press(handed, "记录入户核实")
    await zhang.press(await zhang.expect("哪天去的"), "今天")
    await zhang.expect("核实情况怎么样")
    await zhang.send("入户看了，情况属实")
    await zhang.press(await zhang.expect("有照片"), "核实记录完成")
    await zhang.expect("入户核实已记录", "认定结果")
