"""The case after submission, over the emulator: the whole procedure, objection, escalation on a
controlled clock, handing over, and what each person may see."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.service import Service
from bot.settings import Settings
from storage.tables import CaseEventRow, DeclarationRow, TaskRow
from tests.e2e.conftest import Chat, bind, declare, visit
from tests.emulator import BotAPIEmulator, EmuMessage
from tests.support import SHANGHAI, FakeClock, seed_roster

ROOT = Path(__file__).resolve().parents[2]
# A Monday morning with no holiday near: 2026-11-16 09:00 in Shanghai.
MONDAY = datetime(2026, 11, 16, 9, 0, tzinfo=SHANGHAI)


@pytest.fixture
async def clocked(settings: Settings) -> AsyncIterator[tuple[Service, FakeClock]]:
    clock = FakeClock(MONDAY)
    async with Service(settings, poll_timeout=1, clock=clock) as running:
        await seed_roster(running.uow)
        yield running, clock


async def submitted(
    service: Service, chat: Callable[..., Chat], **kwargs: object
) -> tuple[Chat, Chat, EmuMessage]:
    """张伟 bound as cadre of 李家村, a farmer's declaration submitted; returns (cadre, farmer, case)."""
    cadre = chat(2001, "张伟")
    await bind(service, cadre, "13800000001")
    farmer = chat(1001)
    await farmer.press(await declare(farmer, **kwargs), "确认提交")  # type: ignore[arg-type]
    await farmer.expect("回执编号")
    return cadre, farmer, await cadre.expect("新申报")


async def statuses(service: Service) -> list[str]:
    async with service.sessions() as session:
        return [
            row.status
            for row in (await session.scalars(select(DeclarationRow).order_by(DeclarationRow.id))).all()
        ]


async def test_the_whole_procedure_to_entry(
    clocked: tuple[Service, FakeClock], emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    service, clock = clocked
    staff = chat(4001, "王芳")
    await bind(service, staff, "13800000003")
    cadre, farmer, case = await submitted(service, chat)
    await cadre.press(case, "签收")
    await farmer.expect("签收")
    verdicts = await visit(cadre, await cadre.expect("尽快入户核实"))
    await farmer.expect("到您家核实")
    await cadre.press(verdicts, "脱贫不稳定户")
    proposed = await cadre.expect("初步认定为：脱贫不稳定户")
    await farmer.expect("民主评议和公示")
    await cadre.press(proposed, "民主评议已完成，开始公示")
    notice = await cadre.expect("已开始村内公示")
    # The notice must run its five days before it can end.
    assert "还没满规定天数" in await cadre.press(notice, "公示结束，报乡镇审核")
    clock.advance(days=5, minutes=1)
    assert await cadre.press(notice, "公示结束，报乡镇审核") == "已报乡镇审核"
    await cadre.expect("已报乡镇审核")
    review = await staff.expect("待乡镇审核", "脱贫不稳定户")
    # A cadre cannot take the township's step, even with a forged button.
    data = review.inline_keyboard[0][0]["callback_data"]
    assert "乡镇工作人员办理" in await cadre.press_data(notice, data)
    await staff.press(review, "乡镇审核通过")
    approved = await staff.expect("乡镇审核已通过")
    await staff.press(approved, "县级已确认，已录入系统")
    await staff.expect("已确认纳入监测")
    await cadre.expect("已确认纳入监测")
    await farmer.expect("正式纳入防返贫监测", "脱贫不稳定户")
    assert await statuses(service) == ["entered"]
    async with service.sessions() as session:
        kinds = [
            e.kind for e in (await session.scalars(select(CaseEventRow).order_by(CaseEventRow.id))).all()
        ]
    assert kinds == [
        "submitted", "assigned", "acknowledge", "visit", "propose", "publicize", "close_notice",
        "approve", "enter",
    ]  # fmt: skip
    # The full history, for the township.
    await emu.send_command(staff.user, "case", (await declaration_receipt(service)))
    history = await staff.expect("办理记录", "签收", "入户核实", "县级确认并录入", "王芳", "张伟")
    assert "入户看了，情况属实" in (history.text or "")


async def declaration_receipt(service: Service) -> str:
    async with service.sessions() as session:
        row = (await session.scalars(select(DeclarationRow))).first()
        assert row is not None and row.receipt
        return row.receipt


async def test_not_eligible_objection_and_recheck(
    clocked: tuple[Service, FakeClock], emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    service, _ = clocked
    staff = chat(4001, "王芳")
    await bind(service, staff, "13800000003")
    cadre, farmer, case = await submitted(service, chat)
    await cadre.press(case, "签收")
    await farmer.expect("签收")
    verdicts = await visit(cadre, await cadre.expect("尽快入户核实"))
    await farmer.expect("到您家核实")
    await cadre.press(verdicts, "不纳入")
    await cadre.expect("理由")
    await cadre.send("经核实家庭收入稳定，医疗费用已报销")
    await cadre.expect("不纳入")
    result = await farmer.expect("暂不纳入监测", "医疗费用已报销")
    # Only the household may object.
    data = result.inline_keyboard[0][0]["callback_data"]
    assert "无权" in await cadre.press_data(result.message_id, data)
    await farmer.press(result, "我有异议")
    await farmer.expect("有什么异议")
    await farmer.send("报销只报了一小部分，还欠着两万多")
    await farmer.expect("异议已收到")
    objection = await staff.expect("农户异议", "医疗费用已报销", "还欠着两万多")
    await staff.press(objection, "重新核实")
    await staff.expect("退回村里重新核实")
    reopened = await cadre.expect("重新入户核实")
    await farmer.expect("重新核实")
    assert await statuses(service) == ["acknowledged"]
    verdicts = await visit(cadre, reopened, notes="再次入户，欠款属实")
    await farmer.expect("到您家核实")
    await cadre.press(verdicts, "突发严重困难户")
    await farmer.expect("初步认定为：突发严重困难户")
    # A second objection round ending in "uphold" is covered at the state-machine level.
    assert await statuses(service) == ["proposed"]


async def test_uphold_after_objection(
    clocked: tuple[Service, FakeClock], emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    service, _ = clocked
    staff = chat(4001, "王芳")
    await bind(service, staff, "13800000003")
    cadre, farmer, case = await submitted(service, chat)
    await cadre.press(case, "签收")
    await farmer.expect("签收")
    verdicts = await visit(cadre, await cadre.expect("尽快入户核实"))
    await farmer.expect("到您家核实")
    await cadre.press(verdicts, "不纳入")
    await cadre.expect("理由")
    await cadre.send("家庭收入高于监测标准")
    result = await farmer.expect("暂不纳入监测")
    await farmer.press(result, "我有异议")
    await farmer.expect("有什么异议")
    await farmer.send("!")  # too short: asked again, nothing lost
    await farmer.expect("请写明您的异议")
    await farmer.send("收入没有那么高")
    await farmer.expect("异议已收到")
    objection = await staff.expect("农户异议")
    await staff.press(objection, "维持不纳入")
    await farmer.expect("维持暂不纳入", "12317")
    assert await statuses(service) == ["closed"]
    assert "已经有人做过了" in await staff.press_data(objection, objection_data(objection))


def objection_data(message: EmuMessage) -> str:
    versions = [*message.history, {"reply_markup": message.reply_markup}]
    markup = next(v["reply_markup"] for v in versions if v.get("reply_markup"))
    return str(markup["inline_keyboard"][0][1]["callback_data"])


async def test_reminder_warning_and_escalation_on_the_clock(
    clocked: tuple[Service, FakeClock], emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    service, clock = clocked
    staff = chat(4001, "王芳")
    await bind(service, staff, "13800000003")
    cadre, _farmer, case = await submitted(service, chat)
    async with service.sessions() as session:
        task = (await session.scalars(select(TaskRow))).one()
    # Anhui: acknowledge within 1 working day: Monday's case is due Tuesday 23:59:59.
    assert task.due_at is not None
    assert task.due_at.astimezone(SHANGHAI) == datetime(2026, 11, 17, 23, 59, 59, tzinfo=SHANGHAI)
    assert await service.deadline_tick() == 0
    clock.current = datetime(2026, 11, 17, 0, 30, tzinfo=SHANGHAI)  # 24 h before, but quiet hours
    assert await service.deadline_tick() == 0
    await cadre.silent(0.3)
    clock.current = datetime(2026, 11, 17, 7, 0, tzinfo=SHANGHAI)
    assert await service.deadline_tick() == 1
    await cadre.expect("【提醒】", "签收", "23:59")
    assert await service.deadline_tick() == 0  # once
    clock.current = datetime(2026, 11, 18, 8, 0, tzinfo=SHANGHAI)  # overdue: 预警 to the owner
    assert await service.deadline_tick() == 1
    await cadre.expect("【预警】", "已超过时限")
    await staff.silent(0.3)
    clock.current = datetime(2026, 11, 19, 8, 0, tzinfo=SHANGHAI)  # a day later: up to the township
    assert await service.deadline_tick() == 1
    await staff.expect("【逾期上报】", "李家村")
    assert await service.deadline_tick() == 0
    await emu.send_command(staff.user, "overdue")
    await staff.expect("逾期案件 1 件", "已逾期")
    # Acting on it starts the next step's clock; nothing more about the old one.
    await cadre.press(case, "签收")
    await cadre.expect("尽快入户核实")
    async with service.sessions() as session:
        task = (await session.scalars(select(TaskRow))).one()
    assert task.step == "visit" and task.warned_at is None and task.next_check_at is not None


async def test_handing_over_and_a_button_from_a_task_handed_away(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    li = chat(2002, "李娜")
    await bind(service, li, "13800000002")
    zhang, _farmer, case = await submitted(service, chat)
    await li.expect("新申报")
    await zhang.press(case, "签收")
    acknowledged = await zhang.expect("尽快入户核实")
    await li.expect("已由", "签收")
    await zhang.press(acknowledged, "转交同事")
    choose = await zhang.expect("转交给哪位同事")
    assert choose.button_texts == ["李娜"]
    assert "已转交给 李娜" in await zhang.press(choose, "李娜")
    handed = await li.expect("转交给了您")
    # The old owner's button no longer works; the new owner's does.
    assert "由签收人负责" in await zhang.press(acknowledged, "记录入户核实")
    verdicts = await visit(li, handed)
    assert "由签收人负责" in await zhang.press_data(
        verdicts.message_id, verdicts.inline_keyboard[0][0]["callback_data"]
    )
    # The township reassigns it back, from the case's history.
    staff = chat(4001, "王芳")
    await bind(service, staff, "13800000003")
    await emu.send_command(staff.user, "case", await declaration_receipt(service))
    history = await staff.expect("办理记录", "转交")
    await staff.press(history, next(b for b in history.button_texts if b.startswith("打开")))
    card = await staff.expect("负责人：李娜")
    await staff.press(card, "转交同事")
    assert "已转交给 张伟" in await staff.press(await staff.expect("转交给哪位同事"), "张伟")
    await zhang.expect("王芳 把回执编号")


async def test_signed_from_the_task_card_every_new_case_message_loses_its_sign_button(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    li = chat(2002, "李娜")
    await bind(service, li, "13800000002")
    zhang, _farmer, case = await submitted(service, chat)
    theirs = await li.expect("新申报")
    assert case.button_texts == theirs.button_texts == ["签收"]
    sign = case.inline_keyboard[0][0]["callback_data"]
    receipt = await declaration_receipt(service)
    await emu.send_command(zhang.user, "tasks")
    await zhang.press(await zhang.expect("待办案件 1 件"), f"打开 {receipt}")
    card = await zhang.expect("回执编号", "未签收")
    assert await zhang.press(card, "签收") == "已签收"
    await zhang.expect("尽快入户核实")
    await li.expect("已由", "签收")
    # Both 【新申报】 messages lose 签收: nobody is offered to sign a case already signed.
    await emu.wait_until(lambda: not case.inline_keyboard and not theirs.inline_keyboard, timeout=5)
    # An old 签收 pressed again: its owner is told it is already theirs; anyone else, someone's.
    assert "您已经签收了" in await zhang.press_data(case, sign)
    assert "已经有人签收了" in await li.press_data(theirs, sign)


async def test_green_channel_for_a_disaster(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    staff = chat(4001, "王芳")
    await bind(service, staff, "13800000003")
    cadre = chat(2001, "张伟")
    await bind(service, cadre, "13800000001")
    farmer = chat(1001)
    await emu.send_command(farmer.user, "start", village_payload_for("QS01"))
    await farmer.press(await farmer.expect("李家村", "知情同意"), "同意，开始填写")
    await farmer.expect("户主姓名")
    await farmer.send("王大山")
    await farmer.press(await farmer.expect("本人"), "我是户主本人")
    await farmer.expect("联系电话")
    await farmer.send("13912345678")
    await farmer.press(await farmer.expect("身份证号"), "不填身份证号，跳过")
    await farmer.press(await farmer.expect("几口人"), "3")
    choose = await farmer.expect("哪些困难")
    await farmer.press(choose, "因自然灾害")
    await farmer.press(choose, "选好了，下一步")
    await farmer.expect("哪天发生")
    await farmer.send("昨天")
    await farmer.expect("受了损失")
    await farmer.send("房子被洪水冲垮")
    await farmer.expect("具体情况")
    await farmer.send("洪水冲垮了房子，一家人住在亲戚家")
    await farmer.press(await farmer.expect("照片"), "没有照片，跳过")
    await farmer.press(await farmer.expect("请核对"), "确认提交")
    await farmer.expect("回执编号")
    await cadre.press(await cadre.expect("新申报"), "签收")
    acknowledged = await cadre.expect("尽快入户核实")
    assert "开通绿色通道（先帮扶后补手续）" in acknowledged.button_texts
    assert await cadre.press(acknowledged, "开通绿色通道（先帮扶后补手续）") == "已开通绿色通道"
    await staff.expect("【绿色通道】", "先行落实帮扶", "张伟")


def village_payload_for(code: str) -> str:
    from tests.e2e.conftest import village_payload

    return village_payload(code)


async def test_each_sees_only_their_own_villages(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    staff = chat(4001, "王芳")
    await bind(service, staff, "13800000003")
    zhang, farmer, _case = await submitted(service, chat)
    liu = chat(2004, "刘洋")  # cadre of 白水村, another township
    await bind(service, liu, "13800000004")
    receipt = await declaration_receipt(service)
    await emu.send_command(zhang.user, "tasks")
    tasks = await zhang.expect("待办案件 1 件", receipt, "李家村")
    await zhang.press(tasks, f"打开 {receipt}")
    await zhang.expect("回执编号", "未签收", "王大山")
    await emu.send_command(liu.user, "tasks")
    await liu.expect("目前没有待办的案件")
    await emu.send_command(liu.user, "case", receipt)
    await liu.expect("没有找到")
    assert "无权" in await liu.press_data(tasks.message_id, tasks.inline_keyboard[0][0]["callback_data"])
    await emu.send_command(farmer.user, "tasks")
    await farmer.expect("只给村干部和乡镇工作人员用")
    await emu.send_command(zhang.user, "stats")
    await zhang.expect("只给乡镇工作人员用")
    await emu.send_command(staff.user, "stats")
    stats = await staff.expect("本乡镇共 1 件申报", "李家村：1 件（", "· 王家村：0 件\n")
    assert "（）" not in (stats.text or "")  # a village with no case: 0, and no empty brackets


def test_a_policy_file_with_a_typo_is_refused_at_start(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    text = (ROOT / "domain" / "data" / "policies" / "anhui.toml").read_text("utf-8")
    policy.write_text(text.replace("acknowledge =", "acknowlege =", 1), "utf-8")
    line = next(n for n, row in enumerate(policy.read_text("utf-8").splitlines(), 1) if "acknowlege" in row)
    environment = {
        "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "TELEGRAM_BOT_TOKEN": "1:x",
        "QR_SECRET": "0123456789abcdef0123", "POLICY": str(policy),
    }  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"POLICY: {policy}:{line}:") and "acknowlege" in result.stderr
    assert "Traceback" not in result.stderr
    negative = tmp_path / "negative.toml"
    negative.write_text(text.replace("visit = { days = 1", "visit = { days = -1", 1), "utf-8")
    environment["POLICY"] = str(negative)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "negative" in result.stderr and "Traceback" not in result.stderr


def test_deadlines_over_national_day_on_the_real_calendar() -> None:
    from bot.deadlines import PolicyRules
    from domain.policy import load_policy

    rules = PolicyRules(load_policy("anhui"))
    # Submitted on Wednesday 30 September 2026: 1 working day -> Thursday 8 October (1-7 off).
    submitted_at = datetime(2026, 9, 30, 15, 0, tzinfo=SHANGHAI)
    assert rules.due("acknowledge", submitted_at).date().isoformat() == "2026-10-08"
    # Friday 9 October + 1 working day -> Saturday 10 October, a make-up working day (调休).
    assert (
        rules.due("acknowledge", datetime(2026, 10, 9, 10, 0, tzinfo=SHANGHAI)).date().isoformat()
        == "2026-10-10"
    )
    # Across the year end: 2027 is unknown to the library: weekdays, and the township is told once.
    assert (
        rules.due("visit", datetime(2026, 12, 31, 10, 0, tzinfo=SHANGHAI)).date().isoformat() == "2027-01-01"
    )
    assert rules.take_unknown_years() == {2027}
    assert rules.take_unknown_years() == set()
    assert timedelta(hours=24) == rules.remind_before


async def test_export_in_chat_for_the_township_only(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    from io import BytesIO

    from openpyxl import load_workbook

    staff = chat(4001, "王芳")
    await bind(service, staff, "13800000003")
    cadre, _farmer, _case = await submitted(service, chat)
    await emu.send_command(cadre.user, "export")
    await cadre.expect("只给乡镇工作人员用")
    await emu.send_command(staff.user, "export")
    sent = await staff.emu.next_message(staff.user.id)
    assert sent.method == "sendDocument" and "共 1 件" in (sent.caption or "")
    assert "身份证号" not in (sent.caption or "")  # no full ID number in it: no warning
    book = load_workbook(BytesIO(sent.file_data or b""))
    sheet = book.active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:5] == ("回执编号", "乡镇", "村", "户主姓名", "身份证号")
    assert rows[1][1:4] == ("青山镇", "李家村", "王大山") and rows[1][5] == "13912345678"
    assert len(rows) == 2
    # A declaration that gave its ID number: the file holds it in full, and the caption says so.
    from bot.crypto import protector_for
    from domain.model import NewDeclaration, Role

    async with service.uow() as work:
        village = await work.geography.village_by_code("QS01")
        farmer = await work.persons.add(Role.FARMER)
        assert village is not None
        now = service.clock.now()
        await work.declarations.add(
            NewDeclaration(
                village_id=village.id, declared_by=farmer.id, head_name="李小河", phone="+8613912345679",
                risk_types=("illness",), description="住院", consent_version="2026-11", consent_at=now,
                id_sealed=protector_for(service.settings).seal("11010519491231002X"),
            ),
            now,
        )  # fmt: skip
        await work.commit()
    await emu.send_command(staff.user, "export")
    sent = await staff.emu.next_message(staff.user.id)
    assert "共 2 件" in (sent.caption or "") and "含完整身份证号" in (sent.caption or "")


def test_export_on_the_command_line_has_full_id_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from openpyxl import load_workbook

    from bot.cli import main
    from bot.crypto import FernetProtector
    from domain.model import NewDeclaration, Role
    from storage.db import create_engine, session_factory
    from storage.migrate import upgrade
    from storage.uow import SqlUnitOfWorkFactory

    secret = "cli-export-secret-0123456789"
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"

    async def seed() -> None:
        engine = create_engine(url)
        await upgrade(engine)
        uow = SqlUnitOfWorkFactory(session_factory(engine))
        await seed_roster(uow)
        protector = FernetProtector(b"id:" + secret.encode())
        async with uow() as work:
            village = await work.geography.village_by_code("QS01")
            farmer = await work.persons.add(Role.FARMER)
            assert village is not None
            await work.declarations.add(
                NewDeclaration(
                    village_id=village.id, declared_by=farmer.id, head_name="王大山", phone="+8613912345678",
                    risk_types=("illness",), description="住院", consent_version="2026-11", consent_at=MONDAY,
                    id_sealed=protector.seal("11010519491231002X"),
                ),
                MONDAY,
            )  # fmt: skip
            await work.commit()
        await engine.dispose()

    asyncio.run(seed())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("QR_SECRET", secret)
    monkeypatch.setenv("ID_ENCRYPTION_KEY", "id:" + secret)  # the key the rows above were sealed with
    out = tmp_path / "cases.xlsx"
    command = ["export", "cases", "--from", "2026-11-01", "--to", "2026-11-30", "-o", str(out)]
    assert main([*command, "--township", "青山镇"]) == 0
    rows = list(load_workbook(out).active.iter_rows(values_only=True))  # type: ignore[union-attr]
    assert rows[1][4] == "11010519491231002X"
    assert main([*command, "--township", "没有这个乡"]) == 1


async def test_past_the_known_calendar_the_township_is_told_once(
    settings: Settings, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    clock = FakeClock(datetime(2026, 12, 31, 10, 0, tzinfo=SHANGHAI))
    async with Service(settings, poll_timeout=1, clock=clock) as service:
        await seed_roster(service.uow)
        staff = chat(4001, "王芳")
        await bind(service, staff, "13800000003")
        await submitted(service, chat)  # due in 2027, a year the official calendar does not know
        await service.deadline_tick()
        await staff.expect("2027 年", "周一至周五")
        await service.deadline_tick()
        await staff.silent(0.5)
