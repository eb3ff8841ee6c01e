"""Township notices end to end: drafted in chat, held back with personal data, sent now or at a
set time, acknowledged with 收到, x of y, one-button re-remind; a stop mid-broadcast."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import func, select

from bot.service import Service
from bot.settings import Settings
from domain.model import Channel, Role
from storage.tables import OutboxRow
from tests.e2e.conftest import Chat, bind
from tests.emulator import BotAPIEmulator, EmuMessage
from tests.support import FakeClock, seed_roster

NOTICE = "请各村于12月1日前完成集中排查入户走访，并上报进度。"


async def write_notice(staff: Chat, body: str = NOTICE) -> EmuMessage:
    """Start /notice and give its text; returns the audience question."""
    await staff.emu.send_command(staff.user, "notice")
    await staff.expect("发布通知")
    await staff.send(body)
    return await staff.expect("发给谁")


async def test_staff_send_a_notice_cadres_acknowledge_staff_see_who_has_not_and_remind(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    staff = chat(3001, "王芳")
    await bind(service, staff, "13800000003")
    zhang, li = chat(2001, "张伟"), chat(2002, "李娜")
    await bind(service, zhang, "13800000001")
    await bind(service, li, "13800000002")
    far_away = chat(2004, "刘洋")  # a cadre of another township
    await bind(service, far_away, "13800000004")

    await emu.send_command(staff.user, "notice")
    await staff.expect("发布通知")
    await staff.send("请王大山带身份证 110101199003071234 到乡政府，电话 13912345678")
    await staff.expect("暂不发送", "个人信息")
    await zhang.silent(0.3)
    await staff.send(NOTICE)
    audience = await staff.expect("发给谁")
    await staff.press(audience, "全体村干部")
    await staff.press(await staff.expect("什么时候发送"), "立即发送")
    summary = await staff.expect("请核对", NOTICE, "全体村干部（3 人）")
    assert await staff.press(summary, "确认发送") == "通知已发出"

    notice = await zhang.expect("通知】", NOTICE, "收到")
    await li.expect(NOTICE)
    status = await staff.expect("已收到：0 / 3", "张伟", "李娜", "赵强")
    await far_away.silent(0.3)

    assert await zhang.press(notice, "收到") == "已确认收到"
    await staff.press(status, "刷新")
    status = await staff.expect("已收到：1 / 3")
    assert "张伟" not in (status.text or "").split("未确认")[1]
    assert await staff.press(status, "提醒未确认的人") == "已提醒 2 人"
    reminder = await li.expect("【提醒】", NOTICE)
    await zhang.silent(0.5)
    assert await li.press(reminder, "收到") == "已确认收到"
    # A 收到 pressed again on the first copy changes nothing.
    first_copy = emu.messages(li.user.id)[-2]
    ack = first_copy.inline_keyboard[0][0]["callback_data"]
    assert "button" not in str(await li.press_data(first_copy, ack))
    assert await li.press_data(first_copy, ack) == "您已经确认过了"

    # 赵强 never opened the bot: the status marks him (⚠), and no copy for him is queued to pile
    # up as failed.
    assert "赵强⚠" in (status.text or "")
    await emu.send_command(staff.user, "failed")
    await staff.expect("没有未送达的消息")
    await emu.send_command(zhang.user, "failed")
    await zhang.expect("只有乡镇工作人员")


async def test_the_status_keeps_its_buttons_after_a_reminder_and_the_author_hears_when_all_confirmed(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    staff, zhang, li = chat(3001, "王芳"), chat(2001, "张伟"), chat(2002, "李娜")
    await bind(service, staff, "13800000003")
    await bind(service, zhang, "13800000001")
    await bind(service, li, "13800000002")
    await staff.press(await write_notice(staff), "按村选择")
    await staff.press(await staff.expect("请选择要通知的村"), "李家村")
    await staff.press(await staff.expect("请选择要通知的村"), "选好了")
    await staff.press(await staff.expect("什么时候发送"), "立即发送")
    await staff.press(await staff.expect("请核对", "李家村（2 人）"), "确认发送")
    status = await staff.expect("已收到：0 / 2")
    assert await zhang.press(await zhang.expect(NOTICE), "收到") == "已确认收到"
    first = await li.expect(NOTICE)

    assert await staff.press(status, "提醒未确认的人") == "已提醒 1 人"
    reminder = await li.expect("【提醒】", NOTICE)
    await asyncio.sleep(0.3)  # a keyboard taken away would be gone by now
    assert status.button_texts == ["刷新", "提醒未确认的人"]
    await staff.press(status, "刷新")
    assert (await staff.expect("已收到：1 / 2", "李娜")).button_texts == ["刷新", "提醒未确认的人"]

    assert await li.press(reminder, "收到") == "已确认收到"
    done = await staff.expect("已全部确认收到", "2 / 2")
    assert done.button_texts == ["刷新"]
    await staff.press(done, "刷新")
    assert (await staff.expect("已收到：2 / 2")).button_texts == ["刷新"]
    assert await li.press_data(first, first.inline_keyboard[0][0]["callback_data"]) == "您已经确认过了"
    await staff.silent(0.5)  # told once


async def test_only_township_staff_may_send_notices(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    cadre = chat(2001, "张伟")
    await bind(service, cadre, "13800000001")
    await emu.send_command(cadre.user, "notice")
    await cadre.expect("只有乡镇工作人员")
    farmer = chat(1001)
    await emu.send_command(farmer.user, "notice")
    await farmer.expect("只有乡镇工作人员")
    await cadre.send("你好")  # no draft was opened: the skeleton answers as before
    await cadre.expect("签收")


async def test_a_sticker_while_drafting_is_refused_and_cancel_drops_the_draft(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    staff = chat(3001, "王芳")
    await bind(service, staff, "13800000003")
    await emu.send_command(staff.user, "notice")
    await staff.expect("发布通知")
    await emu.send_sticker(staff.user)
    await staff.expect("一张图片或一个文件")
    await emu.send_command(staff.user, "cancel")
    await staff.expect("通知已取消")
    await staff.send(NOTICE)  # no longer a draft: not taken as a notice
    await staff.expect("签收")


async def test_a_notice_with_a_photo_goes_out_as_the_photo_with_the_text_as_caption(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    staff, zhang = chat(3001, "王芳"), chat(2001, "张伟")
    await bind(service, staff, "13800000003")
    await bind(service, zhang, "13800000001")
    await emu.send_command(staff.user, "notice")
    await staff.expect("发布通知")
    await emu.send_photo(staff.user, b"\xff\xd8\xff\xe0 the flyer")
    await staff.expect("附件已收到")
    await staff.send(NOTICE)
    await staff.press(await staff.expect("发给谁"), "按村选择")
    villages = await staff.expect("请选择要通知的村")
    await staff.press(villages, "李家村")
    await staff.press(await staff.expect("请选择要通知的村"), "选好了")
    await staff.press(await staff.expect("什么时候发送"), "立即发送")
    await staff.press(await staff.expect("请核对"), "确认发送")
    notice = await zhang.emu.next_message(zhang.user.id)
    assert notice.kind == "photo" and NOTICE in (notice.caption or "")
    assert notice.file_data is not None and b"the flyer" in notice.file_data
    assert notice.button_texts == ["收到"]
    assert await zhang.press(notice, "收到") == "已确认收到"


@pytest.fixture
async def clocked(settings: Settings) -> AsyncIterator[tuple[Service, FakeClock]]:
    clock = FakeClock()
    quick = settings.model_copy(update={"tick_seconds": 3600.0})  # the test ticks by hand
    async with Service(quick, clock=clock, poll_timeout=1) as running:
        await seed_roster(running.uow)
        yield running, clock


async def test_a_notice_to_chosen_villages_goes_out_at_its_time(
    clocked: tuple[Service, FakeClock], emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    service, clock = clocked
    staff, zhang, zhao = chat(3001, "王芳"), chat(2001, "张伟"), chat(2005, "赵强")
    await bind(service, staff, "13800000003")
    await bind(service, zhang, "13800000001")
    await bind(service, zhao, "13800000005")
    audience = await write_notice(staff)
    await staff.press(audience, "按村选择")
    villages = await staff.expect("请选择要通知的村")
    assert villages.button_texts == ["李家村", "王家村", "陈家村", "选好了"]
    assert "请至少选择一个村" in await staff.press(villages, "选好了")
    await staff.press(villages, "李家村")
    villages = await staff.expect("请选择要通知的村")
    assert villages.button_texts[0] == "✅ 李家村"
    await staff.press(villages, "选好了")
    await staff.press(await staff.expect("什么时候发送"), "定时发送")
    await staff.expect("发送时间")
    await staff.send("明天上午")
    await staff.expect("时间格式不对")
    await staff.send("2026-11-22 09:00")
    await staff.expect("已经过去")
    await staff.send("10:30")
    summary = await staff.expect("李家村（2 人）", "2026-11-23 10:30")
    assert await staff.press(summary, "确认发送") == "已安排定时发送"
    await staff.expect("10:30 发送")

    assert (await service.tick()).done == 0
    await zhang.silent(0.3)
    clock.advance(minutes=31)
    assert (await service.tick()).done == 1
    await zhang.expect(NOTICE)
    await staff.expect("已收到：0 / 2")
    assert (await service.tick()).done == 0  # sent once
    await zhao.silent(0.5)  # 陈家村 was not chosen


async def test_a_service_stopped_mid_broadcast_and_started_again_delivers_each_notice_once(
    settings: Settings, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    slow = settings.model_copy(
        update={
            "send_rate_per_second": 6,
            "chat_burst": 1,
            "chat_rate_per_second": 1.0,
            "tick_seconds": 3600.0,
        }
    )
    emu.enforce_limits = True
    cadres = [chat(7000 + n, f"C{n}") for n in range(30)]
    async with Service(slow, poll_timeout=1) as first:
        await seed_roster(first.uow)
        async with first.uow() as work:
            village = await work.geography.village_by_code("QS03")
            assert village is not None
            for n, cadre in enumerate(cadres):
                person = await work.persons.add(Role.CADRE, name=f"干部{n}", phone=f"+86137000000{n:02d}")
                await work.persons.set_villages(person.id, (village.id,))
                await work.persons.bind(person.id, Channel.TELEGRAM, str(cadre.user.id), first.clock.now())
            await work.commit()
        staff = chat(3001, "王芳")
        await bind(first, staff, "13800000003")
        audience = await write_notice(staff)
        await staff.press(audience, "全体村干部")
        await staff.press(await staff.expect("什么时候发送"), "立即发送")
        await staff.press(await staff.expect("请核对", "（33 人）"), "确认发送")
        await emu.wait_until(lambda: sum(len(emu.messages(c.user.id)) for c in cadres) >= 8, timeout=20)
    # Stopped (as on SIGTERM) with most of the broadcast still queued.
    delivered = sum(len(emu.messages(c.user.id)) for c in cadres)
    assert delivered < 30

    async with Service(slow, poll_timeout=1) as second:

        def everyone() -> bool:
            return all(emu.messages(c.user.id) for c in cadres)

        await emu.wait_until(everyone, timeout=30)
        # The staff member's pressed message is disarmed through the outbox too: let it settle.
        for _ in range(50):
            await asyncio.sleep(0.1)
            async with second.sessions() as session:
                open_rows = await session.scalar(
                    select(func.count()).select_from(OutboxRow).where(OutboxRow.status != "sent")
                )
            if open_rows == 0:
                break
    assert [len(emu.messages(c.user.id)) for c in cadres] == [1] * 30
    assert emu.flood_errors == 0
    assert open_rows == 0  # nothing was queued for the three roster cadres who never opened the bot
