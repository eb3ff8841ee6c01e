"""Odd input through the real application: a polite refusal in the person's language, never the
generic apology of an unhandled exception (error.generic: 抱歉，系统出了点问题)."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date

from openpyxl import load_workbook

from bot.service import Service
from domain import campaigns
from domain.model import Channel, ReportDraft, ReportStep
from tests.domain.test_campaigns import rows
from tests.e2e.conftest import Chat, bind
from tests.e2e.test_notices import clocked, write_notice  # noqa: F401 (the fixture)
from tests.emulator import BotAPIEmulator
from tests.support import FakeClock

APOLOGY = "系统出了点问题"  # error.generic


async def refused(person: Chat, *phrases: str) -> None:
    message = await person.expect(*phrases)
    assert APOLOGY not in (message.text or "")


async def test_an_invite_payload_in_chinese_is_an_invalid_invite(
    clocked: tuple[Service, FakeClock],  # noqa: F811
    emu: BotAPIEmulator,
    chat: Callable[..., Chat],
) -> None:
    someone = chat(1001, "王大山")
    for payload in ("i_中文", "i_١٢٣", "i_"):
        await emu.send_command(someone.user, "start", payload)
        await refused(someone, "邀请链接无效")


async def test_export_dates_out_of_bounds_are_refused_with_the_bounds(
    clocked: tuple[Service, FakeClock],  # noqa: F811
    emu: BotAPIEmulator,
    chat: Callable[..., Chat],
) -> None:
    service, _ = clocked  # 2026-11-23 in Asia/Shanghai
    staff, cadre = chat(3001, "王芳"), chat(2001, "张伟")
    await bind(service, staff, "13800000003")
    await bind(service, cadre, "13800000001")
    typed = ("0001-01-01 0001-01-02", "9999-12-30 9999-12-31", "9999-12-31", "2026-11-30 2026-11-01", "下月")
    for args in typed:
        await emu.send_command(staff.user, "export", args)
        await refused(staff, "导出日期不对", "2000-01-01", "2027-11-24", "3 年")
    await emu.send_command(cadre.user, "export", "9999-12-31")
    await refused(cadre, "只给乡镇工作人员用")
    await emu.send_command(staff.user, "export", "2026-11-01 2026-11-30")
    sent = await emu.next_message(staff.user.id)
    assert sent.method == "sendDocument" and "2026-11-01 至 2026-11-30" in (sent.caption or "")


async def test_a_ledger_deadline_in_year_9999_is_refused(
    clocked: tuple[Service, FakeClock],  # noqa: F811
    emu: BotAPIEmulator,
    chat: Callable[..., Chat],
) -> None:
    service, _ = clocked
    zhang = chat(2001, "张伟")  # the cadre of 李家村 only
    await bind(service, zhang, "13800000001")
    await emu.send_command(zhang.user, "problem")
    await zhang.expect("发现的问题")
    await zhang.send("3 户危房改造未完工")
    await zhang.expect("整改措施")
    await zhang.send("协调施工队加快进度")
    await zhang.expect("整改时限")
    await zhang.send("9999-12-31")
    await refused(zhang, "太远了", "2028-11-23")
    await zhang.send("2-29")  # 2027 has none
    await refused(zhang, "日期不对")
    await zhang.send("2026-11-30")
    await zhang.expect("责任人")
    await zhang.send("张伟")
    await zhang.expect("已记入问题台账", "2026-11-30")


async def test_campaign_dates_in_year_9999_are_refused_in_chat(
    clocked: tuple[Service, FakeClock],  # noqa: F811
    chat: Callable[..., Chat],
) -> None:
    service, _ = clocked
    staff = chat(3001, "王芳")
    await bind(service, staff, "13800000003")
    await staff.emu.send_command(staff.user, "campaign")
    await staff.expect("活动名称")
    await staff.send("2026年集中排查")
    await staff.press(await staff.expect("活动覆盖哪些村"), "下一步 →")
    await staff.press(await staff.expect("多久报一次"), "指定日期")
    await staff.expect("报进度的日期")
    await staff.send("12月10日；9999-12-31")
    await refused(staff, "有几处需要改一下", "9999-12-31 太远了", "2028-11-23")
    await staff.send("12月10日")
    await staff.expect("各阶段和截止日期")
    await staff.send("动员部署 2026-11-30\n入户排查 9999-12-31")
    await refused(staff, "第 2 行", "9999-12-31 太远了")
    await staff.send("动员部署 2026-11-30\n入户排查 2026-12-20")
    await staff.expect("截止前几天提醒")


async def test_a_notice_for_year_9999_is_refused(
    clocked: tuple[Service, FakeClock],  # noqa: F811
    chat: Callable[..., Chat],
) -> None:
    service, _ = clocked
    staff = chat(3001, "王芳")
    await bind(service, staff, "13800000003")
    await staff.press(await write_notice(staff), "全体村干部")
    await staff.press(await staff.expect("什么时候发送"), "定时发送")
    await staff.expect("发送时间")
    await staff.send("9999-12-31 09:00")
    await refused(staff, "太远了", "2027-11-24")
    await staff.send("2026-11-24 09:00")
    await staff.expect("请核对", "2026-11-24 09:00")


async def test_report_of_a_campaign_named_with_characters_excel_refuses_in_a_title(
    clocked: tuple[Service, FakeClock],  # noqa: F811
    emu: BotAPIEmulator,
    chat: Callable[..., Chat],
) -> None:
    service, clock = clocked
    staff, zhang = chat(3001, "王芳"), chat(2001, "张伟")
    await bind(service, staff, "13800000003")
    await bind(service, zhang, "13800000001")
    name = "'2026/12:排查?*[一]\\第二轮'"
    text = f"活动,{name}\n乡镇,青山镇\n村,QS01\n报告,日期,2026-12-10\n阶段,入户排查,2026-12-20\n"
    async with service.uow() as uow:
        work = uow
        spec = campaigns.parse(rows(text), clock.now().date())
        campaign_id = await campaigns.create(work, service.clock, spec)
        person = await work.persons.by_address(Channel.TELEGRAM, str(zhang.user.id))
        village = await work.geography.village_by_code("QS01")
        assert person is not None and village is not None
        period = date(2026, 12, 10)
        draft = ReportDraft(person.id, campaign_id, period, village.id, ReportStep.NOTE, {})
        report = {"visited": 12, "new_risks": 2, "problems_found": 3, "problems_closed": 1, "note": "=1+1"}
        await work.campaigns.save_report(draft, report, clock.now())
        await uow.commit()
    await emu.send_command(staff.user, "report")
    await emu.wait_until(lambda: any(m.kind == "document" for m in emu.messages(staff.user.id)), timeout=10)
    document = next(m for m in emu.messages(staff.user.id) if m.kind == "document")
    assert all(APOLOGY not in (m.text or "") for m in emu.messages(staff.user.id))
    book = load_workbook(io.BytesIO(document.file_data or b""))
    assert book.sheetnames == ["2026／12：排查？＊［一］＼第二轮"]
    values = list(book.active.iter_rows(values_only=True))  # type: ignore[union-attr]
    assert values[1][:8] == ("2026-12-10", "QS01", "李家村", 12, 2, 3, 1, "=1+1")
