"""The thinnest real path: QR link -> declaration -> village cadre -> verdict -> feedback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, select

from bot.service import Service
from bot.settings import Settings
from storage.tables import DeclarationRow, OutboxRow
from tests.e2e.conftest import Chat, bind, declare, service_today, village_payload, visit
from tests.emulator import BotAPIEmulator


async def test_farmer_to_receipt_and_cadre_from_invite_to_verdict(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    cadre = chat(2001, "张伟")
    greeting = await bind(service, cadre, "13800000001")
    assert "张伟" in (greeting.text or "") and "李家村" in (greeting.text or "")

    farmer = chat(1001, "王大山")
    summary = await declare(farmer)
    assert "确认提交" in summary.button_texts
    # The receipt carries the day in the service's own zone (Asia/Shanghai), not the machine's.
    before = service.clock.now().date()
    answer = await farmer.press(summary, "确认提交")
    assert "已提交" in answer
    receipt_message = await farmer.expect("回执编号")
    days = {before.strftime("%Y%m%d"), service.clock.now().date().strftime("%Y%m%d")}
    assert any(day + "0" in (receipt_message.text or "") for day in days)

    case = await cadre.expect("新申报", "李家村", "因病", "老伴住院", "王大山", "13912345678")
    assert await cadre.press(case, "签收") == "已签收"
    acknowledged = await cadre.expect("尽快入户核实")
    await farmer.expect("已由村干部 张伟 签收")
    verdicts = await visit(cadre, acknowledged)
    await farmer.expect("到您家核实")

    assert await cadre.press(verdicts, "边缘易致贫户") == "结果已记录"
    await cadre.expect("初步认定为：边缘易致贫户", "民主评议")
    await farmer.expect("初步认定为：边缘易致贫户")
    # The buttons were taken away once used, so nothing is pressed twice by mistake.
    assert emu.message(cadre.user.id, case.message_id).button_texts == []  # type: ignore[union-attr]


async def test_not_eligible_needs_a_reason_and_the_farmer_hears_it(
    service: Service, chat: Callable[..., Chat]
) -> None:
    cadre = chat(2001, "张伟")
    await bind(service, cadre, "13800000001")
    farmer = chat(1001)
    await farmer.press(await declare(farmer), "确认提交")
    await farmer.expect("回执编号")
    case = await cadre.expect("新申报")
    await cadre.press(case, "签收")
    await farmer.expect("签收")
    verdicts = await visit(cadre, await cadre.expect("尽快入户核实"))
    await farmer.expect("到您家核实")
    await cadre.press(verdicts, "不纳入")
    await cadre.expect("理由")
    await cadre.send("!")  # not a reason: asked again, nothing decided
    await cadre.expect("请写明不纳入的理由")
    await farmer.silent()
    await cadre.send("家庭年人均纯收入高于监测标准，医疗费用已由医保报销大部分")
    await cadre.expect("不纳入")
    await farmer.expect("暂不纳入监测", "医保报销", "12317")


async def test_bad_payloads_and_plain_start_are_answered_politely(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    farmer = chat(1001)
    good = village_payload("QS01")
    await emu.send_command(farmer.user, "start", good.replace("QS01", "QS02", 1))
    await farmer.expect("无法识别", "12317")
    await emu.send_command(farmer.user, "start", "hello-world")
    await farmer.expect("无法识别")
    await emu.send_command(farmer.user, "start", village_payload("QS01", service_today() - timedelta(days=1)))
    await farmer.expect("已过期")
    await emu.send_command(farmer.user, "start", village_payload("ZZ99"))
    await farmer.expect("暂未开通")
    await emu.send_command(farmer.user, "start")
    await farmer.expect("扫描", "12317", "知情同意")
    await farmer.send("你好")
    await farmer.expect("请点击下面的按钮", "知情同意")


async def test_buttons_are_for_their_owners(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    cadre = chat(2001, "张伟")
    await bind(service, cadre, "13800000001")
    other_village = chat(2004, "刘洋")
    await bind(service, other_village, "13800000004")
    farmer = chat(1001)
    await farmer.press(await declare(farmer), "确认提交")
    await farmer.expect("回执编号")
    case = await cadre.expect("新申报")
    ack = case.inline_keyboard[0][0]["callback_data"]

    stranger = chat(3001, "路人")
    assert "无权" in await stranger.press_data(case.message_id, ack)
    assert "无权" in await farmer.press_data(case.message_id, ack)
    assert "无权" in await other_village.press_data(case.message_id, ack)
    assert "无法识别" in await stranger.press_data(case.message_id, "ack:not-a-number")
    assert "无法识别" in await stranger.press_data(case.message_id, "drop table")
    assert "找不到" in await stranger.press_data(case.message_id, "ack:999999")
    # None of that changed the case: the real cadre can still acknowledge it.
    assert await cadre.press(case, "签收") == "已签收"
    verdicts = await visit(cadre, await cadre.expect("尽快入户核实"))
    verdict_data = verdicts.inline_keyboard[0][0]["callback_data"]
    assert "无权" in await stranger.press_data(verdicts.message_id, verdict_data)
    assert "无权" in await other_village.press_data(verdicts.message_id, verdict_data)


async def test_restart_mid_conversation_loses_nothing(
    settings: Settings, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    farmer = chat(1001)
    async with Service(settings, poll_timeout=1) as first:
        await seed_roster_once(first)
        await emu.send_command(farmer.user, "start", village_payload())
        await farmer.press(await farmer.expect("李家村", "知情同意"), "同意，开始填写")
        await farmer.expect("户主姓名")
        await farmer.send("李秀英")
        await farmer.press(await farmer.expect("本人"), "我是家属，帮忙申报")
        await farmer.press(await farmer.expect("什么人"), "子女")
        await farmer.expect("联系电话")
    # The service is down; the farmer answers anyway. The update waits at Telegram.
    await farmer.send("13912345678")
    async with Service(settings, poll_timeout=1):
        await farmer.press(await farmer.expect("身份证号"), "不填身份证号，跳过")
        await farmer.press(await farmer.expect("几口人"), "3")
        choose = await farmer.expect("哪些困难")
        await farmer.press(choose, "因学")
        await farmer.press(choose, "选好了，下一步")
        await farmer.expect("具体情况")
        await farmer.send("两个孩子上大学，学费交不起")
        await farmer.press(await farmer.expect("照片"), "没有照片，跳过")
        summary = await farmer.expect("因学", "两个孩子上大学", "李秀英", "家属代报（子女）", "13912345678")
        await farmer.press(summary, "确认提交")
        await farmer.expect("回执编号")


async def seed_roster_once(service: Service) -> None:
    from tests.support import seed_roster

    await seed_roster(service.uow)


async def test_confirm_pressed_twice_submits_once(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    cadre = chat(2001, "张伟")
    await bind(service, cadre, "13800000001")
    farmer = chat(1001)
    summary = await declare(farmer)
    first, second = await asyncio.gather(
        emu.press(farmer.user, summary, "确认提交"),
        emu.press_data(farmer.user, summary, summary.inline_keyboard[0][0]["callback_data"]),
    )
    answers = sorted([str((await emu.wait_for_answer(q)).get("text")) for q in (first, second)])
    assert sum("已提交，回执编号" in a for a in answers) == 1
    assert sum("不会重复提交" in a for a in answers) == 1
    await farmer.expect("回执编号")
    await cadre.expect("新申报")
    await cadre.silent()
    async with service.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(DeclarationRow)) == 1
    # An old summary's button pressed later still does nothing.
    assert "不会重复提交" in await farmer.press_data(
        summary, summary.inline_keyboard[0][0]["callback_data"] if summary.inline_keyboard else "confirm:1"
    )


async def test_two_cadres_acknowledge_at_once_one_wins(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    zhang, li = chat(2001, "张伟"), chat(2002, "李娜")
    await bind(service, zhang, "13800000001")
    await bind(service, li, "13800000002")
    farmer = chat(1001)
    await farmer.press(await declare(farmer), "确认提交")
    await farmer.expect("回执编号")
    case_z, case_l = await zhang.expect("新申报"), await li.expect("新申报")
    qz, ql = await asyncio.gather(emu.press(zhang.user, case_z, "签收"), emu.press(li.user, case_l, "签收"))
    answers = [str((await emu.wait_for_answer(q)).get("text")) for q in (qz, ql)]
    assert sorted(answers) == sorted(["已签收", "这个案件已经有人签收了。"])
    winner, loser = (zhang, li) if answers[0] == "已签收" else (li, zhang)
    await winner.expect("尽快入户核实")
    await loser.expect("已由", "签收")
    await farmer.expect("签收")
    await farmer.silent()


async def test_village_without_bound_cadre_goes_to_the_township(
    service: Service, chat: Callable[..., Chat]
) -> None:
    staff = chat(4001, "王芳")
    greeting = await bind(service, staff, "13800000003")
    assert "王芳" in (greeting.text or "")
    farmer = chat(1001)
    summary = await declare(
        farmer,
        village_payload("QS03"),
        village="陈家村",
        risks=("住房安全问题",),
        description="房子漏雨，墙有裂缝",
    )
    await farmer.press(summary, "确认提交")
    await farmer.expect("回执编号")
    case = await staff.expect("暂无绑定的村干部", "陈家村", "住房安全问题")
    assert await staff.press(case, "签收") == "已签收"
    await farmer.expect("签收")


async def test_invite_is_one_time(service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]) -> None:
    from bot.clock import SystemClock
    from domain import people

    async with service.uow() as uow:
        invite = await people.issue_invite(uow, SystemClock(service.settings.zone), "13800000001")
        await uow.commit()
    first = chat(2001, "张伟")
    await emu.send_command(first.user, "start", invite.payload)
    await first.expect("张伟", "李家村")
    thief = chat(2999, "某人")
    await emu.send_command(thief.user, "start", invite.payload)
    await thief.expect("已过期或已被使用")
    await emu.send_command(thief.user, "start", "i_" + "x" * 32)
    await thief.expect("邀请链接无效")


async def test_outbox_rides_out_telegram_errors(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    farmer = chat(1001)
    emu.fail_next("sendMessage", status=500, times=1)
    emu.fail_next("sendMessage", status=429, retry_after=1, times=1)
    await emu.send_command(farmer.user, "start")
    await farmer.expect("扫描", "知情同意", timeout=15)
    await farmer.silent()  # each delivered once, not once per attempt
    assert len(emu.messages(farmer.user.id)) == 1  # the welcome leads the consent question
    async with service.sessions() as session:
        rows = (await session.scalars(select(OutboxRow).order_by(OutboxRow.id))).all()
    # The 5xx was an attempt; the 429 was not (Telegram said when to come back).
    assert [(r.status, r.attempts) for r in rows] == [("sent", 1)]


async def test_blocked_recipient_is_kept_as_failed_and_nothing_crashes(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    cadre = chat(2001, "张伟")
    await bind(service, cadre, "13800000001")
    emu.block(cadre.user)
    farmer = chat(1001)
    await farmer.press(await declare(farmer), "确认提交")
    await farmer.expect("回执编号")

    async def failed() -> list[str]:
        async with service.sessions() as session:
            rows = (await session.scalars(select(OutboxRow).where(OutboxRow.status == "failed"))).all()
            return [r.last_error or "" for r in rows]

    for _ in range(50):
        if await failed():
            break
        await asyncio.sleep(0.1)
    assert any("blocked" in e for e in await failed())
    await farmer.send("还在吗")
    await farmer.expect("扫描明白纸上的二维码")


async def test_a_failing_handler_apologises_and_keeps_the_draft(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat], monkeypatch: object
) -> None:
    import pytest

    from domain.conversations import router

    farmer = chat(1001)
    await emu.send_command(farmer.user, "start", village_payload())
    await farmer.press(await farmer.expect("李家村", "知情同意"), "同意，开始填写")
    await farmer.expect("户主姓名")

    async def broken(*args: object) -> None:
        raise RuntimeError("database went away")

    patch = pytest.MonkeyPatch()
    patch.setattr(router, "answer", broken)
    try:
        await farmer.send("王大山")
        await farmer.expect("系统出了点问题", "不会丢失")
    finally:
        patch.undo()
    await farmer.send("王大山")
    await farmer.expect("王大山", "本人")


async def test_edited_messages_are_not_taken_as_answers(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    farmer = chat(1001)
    await emu.send_command(farmer.user, "start", village_payload())
    await farmer.press(await farmer.expect("李家村", "知情同意"), "同意，开始填写")
    await farmer.expect("户主姓名")
    sent = await emu.send_text(farmer.user, "王大山")
    await farmer.expect("本人")
    emu.queue_update({"edited_message": {**sent.to_api(), "text": "王大山", "edit_date": sent.date + 5}})
    await farmer.silent()
