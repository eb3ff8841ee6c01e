"""Progress reports end to end: asked on the rhythm, answered in chat (a photo is not a number),
reminded when missing, compiled for the township in chat and as .xlsx."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime

from openpyxl import load_workbook

from bot.service import Service
from domain import campaigns
from tests.domain.test_campaigns import rows
from tests.e2e.conftest import Chat, bind
from tests.e2e.test_notices import clocked  # noqa: F401 (the fixture)
from tests.emulator import BotAPIEmulator
from tests.support import SHANGHAI, FakeClock

CAMPAIGN = "活动,集中排查\n乡镇,青山镇\n村,QS01;QS03\n报告,日期,2026-12-10\n阶段,入户排查,2026-12-20\n"


async def test_a_village_reports_in_chat_and_the_township_gets_the_table(
    clocked: tuple[Service, FakeClock],  # noqa: F811
    emu: BotAPIEmulator,
    chat: Callable[..., Chat],
) -> None:
    service, clock = clocked
    zhang, zhao, staff = chat(2001, "张伟"), chat(2005, "赵强"), chat(3001, "王芳")
    await bind(service, zhang, "13800000001")
    await bind(service, zhao, "13800000005")
    await bind(service, staff, "13800000003")
    async with service.uow() as work:
        await campaigns.create(
            work,
            service.clock,
            campaigns.parse(rows(CAMPAIGN), clock.now().date()),
        )
        await work.commit()
    await zhang.expect("【集中排查】乡镇部署了这项工作", "李家村参加")
    await zhao.expect("陈家村参加")
    # Right after it is created no village has been asked yet: none is missing.
    await emu.send_command(staff.user, "report")
    await staff.expect("还没有请各村报送进度", "12-08 08:00", "12-10")

    clock.current = datetime(2026, 12, 8, 8, 0, tzinfo=SHANGHAI)  # two days before the due date
    await service.tick()
    request = await zhang.expect("请报送李家村截至 12-10")
    await zhao.expect("陈家村")
    await zhang.press(request, "填报本村进度")
    await zhang.expect("共 5 个问题")
    await zhang.expect("1/5")
    await emu.send_photo(zhang.user, b"\xff\xd8\xff\xe0 a photo of the visit book")
    await zhang.expect("需要填一个数字")
    await zhang.expect("1/5")
    await zhang.send("十二户")
    await zhang.expect("需要填一个数字")
    await zhang.expect("1/5")
    for answer, next_question in (("12", "2/5"), ("2", "3/5"), ("3", "4/5")):
        await zhang.send(answer)
        await zhang.expect(next_question)
    await zhang.send("5")
    await zhang.expect("不能多于")
    await zhang.expect("4/5")
    await zhang.send("1")
    await zhang.expect("5/5")
    await zhang.send("无")
    await zhang.expect("已收到李家村的进度", "走访 12 户", "已整改 1 个")

    clock.current = datetime(2026, 12, 10, 8, 0, tzinfo=SHANGHAI)  # the due date: only 陈家村 is missing
    await service.tick()
    await zhao.expect("今天要报送")
    await zhang.silent(0.5)

    await emu.send_command(staff.user, "report")

    def both() -> bool:
        kinds = [m.kind for m in emu.messages(staff.user.id)]
        return "document" in kinds and any("已报" in (m.text or "") for m in emu.messages(staff.user.id))

    # The table comes through the outbox, the sheet straight away: in either order.
    await emu.wait_until(both, timeout=10)
    table = next(m for m in emu.messages(staff.user.id) if "已报" in (m.text or ""))
    for phrase in ("已报 1/2", "李家村：12 / 2 / 3 / 1", "陈家村：—"):
        assert phrase in (table.text or "")
    sheet_message = next(m for m in emu.messages(staff.user.id) if m.kind == "document")
    assert sheet_message.file_data is not None
    book = load_workbook(io.BytesIO(sheet_message.file_data))
    values = [tuple(row) for row in book.active.iter_rows(values_only=True)]  # type: ignore[union-attr]
    assert values[0][:4] == ("报送期", "村代码", "村", "走访户数")
    assert values[1][:7] == ("2026-12-10", "QS01", "李家村", 12, 2, 3, 1)
    assert values[2][:3] == ("2026-12-10", "QS03", "陈家村") and values[2][7] == "未报送"

    await emu.send_command(zhang.user, "report")
    await zhang.expect("只有乡镇工作人员")
