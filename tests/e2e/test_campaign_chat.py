"""Township staff define a campaign in chat (/campaign): the same rules as the campaign file,
every wrong answer answered politely, nothing lost, and the reminders it schedules go out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.service import Service
from domain.model import Channel
from tests.e2e.conftest import Chat, bind
from tests.e2e.test_notices import clocked  # noqa: F401 (the fixture)
from tests.support import SHANGHAI, FakeClock


async def test_staff_define_a_campaign_in_chat_and_its_reminders_go_out(
    clocked: tuple[Service, FakeClock],  # noqa: F811
    chat: Callable[..., Chat],
) -> None:
    service, clock = clocked  # 2026-11-23 10:00
    staff, zhang, zhao = chat(3001, "王芳"), chat(2001, "张伟"), chat(2005, "赵强")
    await bind(service, staff, "13800000003")
    await bind(service, zhang, "13800000001")  # 李家村 QS01
    await bind(service, zhao, "13800000005")
    await staff.emu.send_command(staff.user, "campaign")
    await staff.expect("新建活动（青山镇）", "活动名称")
    await staff.send("x" * 101)
    await staff.expect("最多 100 字")
    await staff.send("2026年集中排查")
    villages = await staff.expect("活动覆盖哪些村", "已选：全部村")
    assert villages.button_texts == ["李家村", "王家村", "陈家村", "全部村", "下一步 →"]
    await staff.send("李家村")  # typed where a button is wanted
    await staff.expect("请点上面消息里的按钮")
    await staff.press(villages, "李家村")
    villages = await staff.expect("已选：李家村")
    assert villages.button_texts[0] == "✅ 李家村"
    await staff.press(villages, "下一步 →")
    rhythm = await staff.expect("多久报一次")
    await staff.press(rhythm, "指定日期")
    await staff.expect("报进度的日期")
    await staff.send("下周")
    await staff.expect("日期没看懂")
    await staff.send("12月10日；2026-12-25")
    await staff.expect("各阶段和截止日期")
    # The file's rules, with the line of the message at fault: a past deadline, a phase out of order.
    await staff.send("动员部署 2026-11-20\n入户排查 2026-12-20\n整改提升 2026-12-01")
    problems = await staff.expect("有几处需要改一下", "第 1 行", "已经过去", "第 3 行", "应晚于上一阶段")
    assert "第 2 行" not in (problems.text or "")
    await staff.send("动员部署 11月30日\n入户排查，2026-12-20")
    reminders = await staff.expect("截止前几天提醒")
    await staff.send("明天")
    await staff.expect("提醒“明天”不对")
    await staff.press(reminders, "默认：提前3天、1天和当天早上")
    summary = await staff.expect(
        "请核对活动",
        "2026年集中排查（青山镇）",
        "范围：李家村",
        "指定日期：2026-12-10、2026-12-25",
        "· 动员部署：2026-11-30 截止",
        "· 入户排查：2026-12-20 截止",
        "提前 3、1、0 天",
    )
    create = summary.inline_keyboard[0][0]["callback_data"]
    assert await staff.press(summary, "确认创建") == "活动已创建"
    await staff.expect("已创建活动“2026年集中排查”", "共 2 个阶段")
    # Pressed again (a double tap, or the button of an old summary): nothing more is created.
    assert await staff.press_data(summary, create) == ("这个按钮已失效，请发送 /campaign 重新开始。")
    await staff.silent(0.3)
    # 李家村's cadre hears of it at once: its phases and its first deadline; 陈家村's does not.
    await zhang.expect("【2026年集中排查】乡镇部署了这项工作，李家村参加", "入户排查", "2026年11月30日")
    # The reminder three days before the first deadline reaches 李家村's cadre, and only him.
    clock.current = datetime(2026, 11, 27, 8, 0, tzinfo=SHANGHAI)
    await service.tick()
    await zhang.expect("2026年集中排查", "动员部署", "11-30")
    await zhao.silent(0.3)


async def test_only_township_staff_may_define_a_campaign_and_cancel_keeps_nothing(
    clocked: tuple[Service, FakeClock],  # noqa: F811
    chat: Callable[..., Chat],
) -> None:
    service, _ = clocked
    farmer, zhang, staff = chat(1001, "农户"), chat(2001, "张伟"), chat(3001, "王芳")
    await bind(service, zhang, "13800000001")
    await bind(service, staff, "13800000003")
    for stranger in (farmer, zhang):
        await stranger.emu.send_command(stranger.user, "campaign")
        await stranger.expect("只有乡镇工作人员可以新建活动")
    await staff.emu.send_command(staff.user, "campaign")
    await staff.expect("活动名称")
    await staff.send("冬季排查")
    villages = await staff.expect("活动覆盖哪些村")
    await staff.emu.send_sticker(staff.user)
    await staff.expect("只需要文字")
    await staff.emu.send_command(staff.user, "cancel")
    await staff.expect("已放弃新建活动")
    # A button of the dropped draft, or a forged one, changes nothing.
    gone = "这个按钮已失效，请发送 /campaign 重新开始。"
    assert await staff.press(villages, "下一步 →") == gone
    assert await staff.press_data(villages, "cvil:999999:*next") == gone
    async with service.uow() as uow:
        person = await uow.persons.by_address(Channel.TELEGRAM, "3001")
        assert person is not None
        assert await uow.conversations.get(person.id) is None
