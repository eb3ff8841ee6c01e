"""The problem ledger end to end: a cadre adds a problem in chat, is reminded before and after
its deadline while it is open, closes it (整改销号); staff see the ledger; export."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.service import Service
from tests.e2e.conftest import Chat, bind
from tests.e2e.test_notices import clocked  # noqa: F401 (the fixture)
from tests.emulator import BotAPIEmulator
from tests.support import SHANGHAI, FakeClock


async def test_add_remind_close_and_the_township_view(
    clocked: tuple[Service, FakeClock],  # noqa: F811
    emu: BotAPIEmulator,
    chat: Callable[..., Chat],
) -> None:
    service, clock = clocked
    li, staff, farmer = chat(2002, "李娜"), chat(3001, "王芳"), chat(1001)
    await bind(service, li, "13800000002")  # cadre of 李家村 and 王家村
    await bind(service, staff, "13800000003")

    await emu.send_command(farmer.user, "problem")
    await farmer.expect("由村干部填报")

    await emu.send_command(li.user, "problem")
    villages = await li.expect("哪个村")
    await li.send("王家村")
    await li.expect("点上面的按钮")
    await li.press(villages, "王家村")
    await li.expect("发现的问题")
    await emu.send_sticker(li.user)
    await li.expect("需要文字回答")
    await li.send("3 户危房改造未完工")
    await li.expect("整改措施")
    await li.send("协调施工队加快进度")
    await li.expect("整改时限")
    await li.send("11-01")  # passed this year: next year is meant
    await li.expect("责任人")
    await emu.send_command(li.user, "cancel")
    await li.expect("已取消")

    await emu.send_command(li.user, "problem")
    await li.press(await li.expect("哪个村"), "王家村")
    await li.expect("发现的问题")
    for answer, question in (("3 户危房改造未完工", "整改措施"), ("协调施工队加快进度", "整改时限")):
        await li.send(answer)
        await li.expect(question)
    await li.send("2026-11-20")
    await li.expect("已经过去")
    await li.send("2026-11-30")
    await li.expect("责任人")
    await li.send("李娜")
    added = await li.expect("已记入问题台账", "2026-11-30")
    assert added.button_texts == ["整改销号"]

    clock.current = datetime(2026, 11, 29, 8, 0, tzinfo=SHANGHAI)
    assert (await service.tick()).done == 1
    await li.expect("明天（2026-11-30）到期")
    clock.current = datetime(2026, 12, 1, 8, 0, tzinfo=SHANGHAI)
    assert (await service.tick()).done == 2
    await li.expect("今天")
    overdue = await li.expect("已超过整改时限")

    await emu.send_command(staff.user, "problems")
    await staff.expect("未销号 1 个（其中逾期 1 个）", "王家村", "3 户危房改造未完工")
    assert await li.press(overdue, "整改销号") == "已销号"
    assert await li.press_data(
        added, "lclose:" + added.inline_keyboard[0][0]["callback_data"].split(":")[1]
    ) == ("这个问题已经销号了")
    await emu.send_command(li.user, "problems")
    await li.expect("没有未销号的问题")
    await emu.send_command(staff.user, "problems")
    await staff.expect("未销号 0 个", "已销号 1 个", "✅")
