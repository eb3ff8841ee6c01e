"""The household's declaration, complete: every field, every kind of farmer, every wrong answer.

Each test is a dialog through the real application over the Bot API emulator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime

import pytest
from sqlalchemy import select

from bot.service import Service
from bot.settings import Settings
from domain import intake
from storage.tables import AttachmentRow, ConversationRow, DeclarationRow, InboxRow, QrScanRow
from tests.e2e.conftest import Chat, bind, declare, village_payload
from tests.emulator import BotAPIEmulator, EmuMessage
from tests.support import SHANGHAI, FakeClock, seed_roster

ID_NUMBER = "11010519491231002X"


async def consent(farmer: Chat, payload: str | None = None) -> None:
    await farmer.emu.send_command(farmer.user, "start", payload or village_payload())
    await farmer.press(await farmer.expect("12317", "知情同意"), "同意，开始填写")


async def declaration_rows(service: Service) -> list[DeclarationRow]:
    async with service.sessions() as session:
        return list((await session.scalars(select(DeclarationRow).order_by(DeclarationRow.id))).all())


async def test_declining_consent_ends_politely_and_keeps_nothing(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    farmer = chat(1001)
    await emu.send_command(farmer.user, "start", village_payload())
    await farmer.press(await farmer.expect("李家村", "知情同意"), "不同意")
    await farmer.expect("不会收集您的任何信息", "12317")
    async with service.sessions() as session:
        assert (await session.scalars(select(ConversationRow))).all() == []


async def test_without_the_payload_the_household_picks_its_village(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    farmer = chat(1001)
    await emu.send_command(farmer.user, "start")
    await farmer.press(await farmer.expect("扫描", "12317", "知情同意"), "同意，开始填写")
    townships = await farmer.expect("乡镇")
    assert townships.button_texts[:2] == ["青山镇", "白水乡"]
    await farmer.press(townships, "青山镇")
    villages = await farmer.expect("选择您所在的村")
    assert "白水村" not in villages.button_texts
    await farmer.press(villages, "王家村")
    await farmer.expect("户主姓名", "王家村")
    # Back twice returns to the township; typing a village name (without 村) also works.
    await farmer.send("返回")
    await farmer.expect("选择您所在的村")
    await farmer.send("返回")
    await farmer.expect("乡镇")
    await farmer.send("陈家")  # a village's name, typed where the township is asked
    await farmer.expect("户主姓名", "陈家村")
    await farmer.send("返回")
    await farmer.expect("选择您所在的村")
    await farmer.send("返回")
    await farmer.expect("乡镇")
    await farmer.send("白水乡")
    villages = await farmer.expect("选择您所在的村")
    assert villages.button_texts[:1] == ["白水村"]
    await farmer.send("不存在的地方")
    await farmer.expect("没有找到", "选择您所在的村")
    await farmer.send("白水 村")
    await farmer.expect("户主姓名", "白水村")


async def test_every_answer_back_edit_and_what_the_cadre_receives(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    cadre = chat(2001, "张伟")
    await bind(service, cadre, "13800000001")
    farmer = chat(1001)
    await consent(farmer)
    await farmer.expect("户主姓名")
    await farmer.send("赵大妈")
    await farmer.press(await farmer.expect("本人"), "我是家属，帮忙申报")
    relation = await farmer.expect("什么人")
    await farmer.press(relation, "配偶")
    await farmer.expect("联系电话")
    await farmer.send("13912345678")
    await farmer.expect("身份证号")
    await farmer.send("110105194912310021")  # a wrong check digit
    await farmer.expect("身份证号不对", "其他内容都还在", "跳过")
    await farmer.send(ID_NUMBER.lower())
    await farmer.expect("几口人")
    await farmer.send("返回")  # Back to the ID question; the answer is asked again
    await farmer.expect("身份证号")
    await farmer.send(ID_NUMBER)
    await farmer.expect("几口人")
    await farmer.send("四口人")
    choose = await farmer.expect("哪些困难", "还没有选")
    for risk in ("因病", "因自然灾害", "收入大幅下降"):
        assert "已选择" in await farmer.press(choose, risk)
    current = emu.message(farmer.user.id, choose.message_id)
    assert (
        current is not None
        and "✅ 因病" in current.button_texts
        and "因病、因自然灾害、收入大幅下降" in (current.text or "")
    )
    await farmer.press(choose, "选好了，下一步")
    await farmer.expect("因病", "多少钱")
    await farmer.send("很多很多")
    await farmer.expect("没看懂这个金额", "多少钱")
    await farmer.send("3.5万")
    await farmer.expect("哪天发生")
    await farmer.send("明天")
    await farmer.expect("没看懂这个日期")
    await farmer.send("7月10日")
    await farmer.expect("哪些东西受了损失")
    await farmer.send("房屋倒塌，玉米全淹了")
    await farmer.expect("收入大概少了多少")
    await farmer.send("两万")
    await farmer.expect("具体情况", "语音")
    await emu.send_voice(farmer.user, b"OggS-voice", duration=7)
    photos = await farmer.expect("语音已收到", "照片")
    await emu.send_photo(farmer.user, b"\x89PNG-one")
    await farmer.expect("收到第 1 张照片")
    await emu.send_photo(farmer.user, b"\x89PNG-two")
    more = await farmer.expect("收到第 2 张照片")
    assert "没有照片，跳过" in photos.button_texts
    await farmer.press(more, "照片发完了")
    summary = await farmer.expect(
        "赵大妈", "家属代报（配偶）", "1101**********002X", "家庭人口：4",
        "因病、因自然灾害、收入大幅下降", "因病花费：¥35,000", "发生日期：", "年7月10日", "房屋倒塌",
        "收入减少：¥20,000", "语音 7 秒", "照片：2 张",
    )  # fmt: skip
    assert ID_NUMBER not in (summary.text or "")

    # Change one answer from the summary: only that question, then the summary again.
    await farmer.press(summary, "改电话")
    await farmer.expect("联系电话")
    await farmer.send("010-62345678")
    summary = await farmer.expect("请核对", "01062345678", "赵大妈", "1101**********002X")
    # Change the hardships: dropping illness drops its cost; a new follow-up is asked.
    await farmer.press(summary, "改困难类型")
    choose = await farmer.expect("哪些困难")
    await farmer.press(choose, "✅ 因病")
    await farmer.press(choose, "因意外事故")
    await farmer.press(choose, "选好了，下一步")
    await farmer.expect("因意外事故", "多少钱")
    await farmer.send("5000")
    summary = await farmer.expect("请核对", "因意外事故花费：¥5,000")
    assert "¥35,000" not in (summary.text or "")

    await farmer.press(summary, "确认提交")
    await farmer.expect("回执编号")
    case = await cadre.expect(
        "新申报", "赵大妈", "家属代报（配偶）", "1101**********002X", "01062345678", "¥5,000"
    )
    assert ID_NUMBER not in (case.text or "")
    media = [await cadre.emu.next_message(cadre.user.id) for _ in range(3)]
    assert [m.method for m in media] == ["sendVoice", "sendPhoto", "sendPhoto"]

    (row,) = await declaration_rows(service)
    assert row.id_sealed and ID_NUMBER not in row.id_sealed and row.id_fingerprint
    assert row.relation == "spouse" and row.household_size == 4 and row.consent_version == "2026-11"
    assert row.risk_types == ["disaster", "income_drop", "accident"]
    async with service.sessions() as session:
        kinds = [
            a.kind for a in (await session.scalars(select(AttachmentRow).order_by(AttachmentRow.id))).all()
        ]
    assert kinds == ["voice", "photo", "photo"]


async def test_wrong_kinds_of_answer_lose_nothing(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    farmer = chat(1001)
    await emu.send_command(farmer.user, "start", village_payload())
    consent_message = await farmer.expect("李家村", "知情同意")
    await farmer.send("好的")  # text where a button is wanted
    await farmer.expect("请点击下面的按钮", "知情同意")
    await farmer.press(consent_message, "同意，开始填写")
    await farmer.expect("户主姓名")
    assert "已失效" in await farmer.press_data(consent_message, consent_message_data(consent_message))
    await emu.send_sticker(farmer.user)
    await farmer.expect("需要文字回答", "户主姓名")
    await emu.send_voice(farmer.user, b"voice", duration=2)
    await farmer.expect("需要文字回答", "户主姓名")
    await farmer.send("🙏🙏🙏")
    await farmer.expect("姓名格式不对", "户主姓名")
    await farmer.send("王大山")
    await farmer.press(await farmer.expect("本人"), "我是户主本人")
    await farmer.expect("联系电话")
    await farmer.send("1380013")
    await farmer.expect("电话号码格式不对", "其他内容都还在", "联系电话")
    await emu.send_contact(farmer.user, "+8613912345678")
    await farmer.press(await farmer.expect("身份证号"), "不填身份证号，跳过")
    await farmer.expect("几口人")
    await farmer.send("0")
    await farmer.expect("家庭人口数", "几口人")
    await farmer.send("3")
    choose = await farmer.expect("哪些困难")
    for risk in ("因残", "因学", "缺劳动力", "住房安全问题", "饮水安全问题"):
        await farmer.press(choose, risk)
    assert "最多只能选 5 项" in await farmer.press(choose, "其他")
    await farmer.press(choose, "选好了，下一步")
    await farmer.expect("具体情况")
    await emu.send_photo(farmer.user, b"photo")
    await farmer.expect("打字，或者发一条语音")
    await farmer.send("病" * 1001)
    await farmer.expect("最多 1000 字", "1001")
    await farmer.send("住房漏雨，孩子上学，没人干活")
    photos = await farmer.expect("照片")
    await farmer.send("没有")
    await farmer.expect("请发照片，或者点下面的按钮")
    await farmer.press(photos, "没有照片，跳过")
    await farmer.expect(
        "请核对", "王大山", "13912345678", "因残、因学、缺劳动力、住房安全问题、饮水安全问题", "住房漏雨"
    )


def consent_message_data(message: EmuMessage) -> str:
    """The callback data of the first button as it was when the message was sent (before edits)."""
    versions = [*message.history, {"reply_markup": message.reply_markup}]
    markup = next(v["reply_markup"] for v in versions if v.get("reply_markup"))
    return str(markup["inline_keyboard"][0][0]["callback_data"])


async def test_status_add_information_and_withdraw(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    cadre = chat(2001, "张伟")
    await bind(service, cadre, "13800000001")
    farmer = chat(1001)
    await farmer.press(await declare(farmer), "确认提交")
    receipt_message = await farmer.expect("回执编号")
    assert receipt_message.keyboard == [["我的申报"]]
    await cadre.expect("新申报")
    await farmer.send("我的申报")
    listing = await farmer.expect("您的申报", "等待村干部签收", "应在", "前完成")
    await farmer.press(listing, next(b for b in listing.button_texts if b.startswith("补充材料")))
    adding = await farmer.expect("补充到回执编号")
    await farmer.send("昨天又去医院复查了")
    await farmer.expect("已收到（共 1 条）")
    await emu.send_photo(farmer.user, b"receipt-photo")
    await farmer.expect("已收到（共 2 条）")
    await cadre.expect("补充说明", "又去医院复查")
    media = await cadre.emu.next_message(cadre.user.id)
    assert media.method == "sendPhoto"
    await farmer.press(adding, "完成")
    await farmer.expect("补充完成，共 2 条")

    await emu.send_command(farmer.user, "status")
    listing = await farmer.expect("您的申报")
    await farmer.press(listing, "撤回申报")
    sure = await farmer.expect("确定要撤回")
    await farmer.press(sure, "确定撤回")
    await farmer.expect("已撤回")
    await cadre.expect("已被农户撤回")
    await emu.send_command(farmer.user, "status")
    listing = await farmer.expect("您的申报", "已撤回")
    assert listing.button_texts == []
    assert "已经办结或撤回" in await farmer.press_data(sure, consent_message_data(sure))


async def test_no_withdrawing_once_acknowledged(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    cadre = chat(2001, "张伟")
    await bind(service, cadre, "13800000001")
    farmer = chat(1001)
    await farmer.press(await declare(farmer), "确认提交")
    await farmer.expect("回执编号")
    await emu.send_command(farmer.user, "status")
    listing = await farmer.expect("您的申报")
    await cadre.press(await cadre.expect("新申报"), "签收")
    await farmer.expect("签收")
    await farmer.press(listing, "撤回申报")
    sure = await farmer.expect("确定要撤回")
    assert "不能撤回" in await farmer.press(sure, "确定撤回")
    await emu.send_command(farmer.user, "status")
    await farmer.expect("已签收，待入户核实")


async def test_a_repeat_is_offered_to_add_to_the_open_declaration(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    farmer = chat(1001)
    await farmer.press(await declare(farmer), "确认提交")
    receipt = (await farmer.expect("回执编号")).text or ""
    number = receipt.split("回执编号：")[1].split()[0]
    await consent(farmer)
    await farmer.expect("户主姓名")
    await farmer.send("王大山")
    await farmer.press(await farmer.expect("本人"), "我是户主本人")
    await farmer.expect("联系电话")
    await farmer.send("13912345678")
    repeat = await farmer.expect("已经有一份在办的申报", number)
    await farmer.press(repeat, "补充到这份申报")
    await farmer.expect("补充到回执编号", number)
    # Someone else typing the same phone is not shown the receipt.
    neighbour = chat(1002)
    await consent(neighbour)
    await neighbour.expect("户主姓名")
    await neighbour.send("王大山")
    await neighbour.press(await neighbour.expect("本人"), "我是户主本人")
    await neighbour.expect("联系电话")
    await neighbour.send("13912345678")
    other = await neighbour.expect("已经有一份在办的申报")
    assert number not in (other.text or "")
    assert len(await declaration_rows(service)) == 1


async def test_a_cadre_files_for_a_household(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    cadre = chat(2001, "张伟")
    await bind(service, cadre, "13800000001")
    await emu.send_command(cadre.user, "daibao")
    await cadre.press(await cadre.expect("代报确认"), "同意，开始填写")
    await cadre.expect("户主姓名", "李家村")  # his only village is taken
    await cadre.send("孙老汉")
    ask_phone = await cadre.expect("农户的联系电话")
    assert not ask_phone.requests_contact  # the cadre's own number is not the household's
    await cadre.send("13712345678")
    await cadre.press(await cadre.expect("身份证号"), "不填身份证号，跳过")
    await cadre.press(await cadre.expect("几口人"), "1")
    choose = await cadre.expect("哪些困难")
    await cadre.press(choose, "缺劳动力")
    await cadre.press(choose, "选好了，下一步")
    await cadre.expect("具体情况")
    await cadre.send("独居老人，腿脚不便，不会用手机")
    await cadre.press(await cadre.expect("照片"), "没有照片，跳过")
    summary = await cadre.expect("请核对", "孙老汉", "村干部代报")
    assert "改申报人" not in summary.button_texts
    await cadre.press(summary, "确认提交")
    await cadre.expect("新申报", "孙老汉", "村干部代报")  # he is the village's cadre: the case is his
    await cadre.expect("申报已提交", "回执编号")
    (row,) = await declaration_rows(service)
    assert row.filed_by_cadre is not None and row.filed_by_cadre == row.declared_by

    farmer = chat(1001)
    await emu.send_command(farmer.user, "daibao")
    await farmer.expect("只能由已绑定的村干部使用")


@pytest.fixture
async def clocked(settings: Settings) -> AsyncIterator[tuple[Service, FakeClock]]:
    clock = FakeClock(datetime.now(SHANGHAI).replace(hour=10, minute=0))
    async with Service(settings, poll_timeout=1, clock=clock) as running:
        await seed_roster(running.uow)
        yield running, clock


async def test_a_draft_is_reminded_once_then_discarded(
    clocked: tuple[Service, FakeClock], emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    service, clock = clocked
    farmer = chat(1001)
    await consent(farmer)
    await farmer.expect("户主姓名")
    await farmer.send("王大山")
    await farmer.expect("本人")
    clock.advance(hours=23)
    assert await service.sweep_drafts() == (0, 0)
    clock.advance(hours=2)
    assert await service.sweep_drafts() == (1, 0)
    await farmer.expect("还没填完", "本人")
    assert await service.sweep_drafts() == (0, 0)
    await farmer.silent()
    clock.advance(days=7)
    assert await service.sweep_drafts() == (0, 1)
    await farmer.expect("已删除", "12317")
    await farmer.send("王大山")
    await farmer.expect("扫描明白纸上的二维码")


async def test_no_reminder_at_night(
    clocked: tuple[Service, FakeClock], emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    service, clock = clocked
    farmer = chat(1001)
    await consent(farmer)
    await farmer.expect("户主姓名")
    clock.advance(hours=37)  # 10:00 + 37 h: 23:00 the next day
    assert clock.now().hour == 23
    assert await service.sweep_drafts() == (0, 0)
    clock.advance(hours=9)  # 08:00
    assert await service.sweep_drafts() == (1, 0)
    await farmer.expect("还没填完")


async def test_english_follows_the_client_and_language_can_be_switched(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    farmer = chat(1001, language_code="en")
    await emu.send_command(farmer.user, "start", village_payload())
    await farmer.press(await farmer.expect("Welcome", "李家村", "12317", "Consent"), "I agree, start")
    await farmer.expect("name of the head of household")
    await farmer.send("Wang Dashan")
    await farmer.press(await farmer.expect("yourself"), "I am the head of household")
    ask_phone = await farmer.expect("phone number")
    assert not ask_phone.requests_contact and "Cancel" in ask_phone.button_texts
    await farmer.send("139 1234 5678")
    await farmer.press(await farmer.expect("ID number"), "Skip the ID number")
    await farmer.expect("How many people")
    await farmer.send("5")
    choose = await farmer.expect("What hardships")
    await farmer.press(choose, "Illness")
    await farmer.press(choose, "Done, next")
    await farmer.expect("Illness", "how much")
    await farmer.send("30000")
    await farmer.expect("describe")
    await farmer.send("Hospital bills after an operation")
    await farmer.press(await farmer.expect("photos"), "No photos, skip")
    summary = await farmer.expect(
        "Please check", "Wang Dashan", "the head of household", "CN¥30,000", "not given"
    )
    await farmer.press(summary, "Submit")
    await farmer.expect("Receipt number")

    other = chat(1002, language_code="ru")  # no Russian catalog: Chinese
    await emu.send_command(other.user, "start", village_payload())
    await other.expect("欢迎使用", "知情同意")
    await emu.send_command(other.user, "language")
    await other.press(await other.expect("请选择语言"), "English")
    await other.expect("Language set to English")
    await emu.send_command(other.user, "start")
    await other.expect("continue where you left off", "Consent")


async def test_two_quick_confirms_and_an_old_summary(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    farmer = chat(1001)
    summary = await declare(farmer)
    assert summary.reply_markup is not None
    data = next(
        str(key["callback_data"])
        for row in summary.reply_markup["inline_keyboard"]
        for key in row
        if key["text"] == "确认提交"
    )
    first = await emu.press_data(farmer.user, summary, data)
    second = await emu.press_data(farmer.user, summary, data)
    answers = sorted([str((await emu.wait_for_answer(q)).get("text")) for q in (first, second)])
    assert sum("已提交" in a for a in answers) == 1 and sum("不会重复提交" in a for a in answers) == 1
    await farmer.expect("回执编号")
    assert len(await declaration_rows(service)) == 1
    # A later declaration's summary pressed on the old message: still nothing.
    assert "不会重复提交" in await farmer.press_data(summary, data)


async def test_wrong_answers_in_english(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    farmer = chat(1001, language_code="en-GB")
    await emu.send_command(farmer.user, "start", "vQS01_forged_0000000000000000")
    await farmer.expect("cannot be read", "12317")
    await emu.send_command(farmer.user, "start", village_payload())
    consent_message = await farmer.expect("Welcome", "Consent")
    await farmer.send("yes please")
    await farmer.expect("Please tap one of the buttons", "Consent")
    await farmer.press(consent_message, "I agree, start")
    await farmer.expect("name of the head of household")
    await emu.send_sticker(farmer.user)
    await farmer.expect("needs a typed answer", "name of the head")
    await farmer.send("🙂🙂")
    await farmer.expect("That name does not look right")
    await farmer.send("Wang Dashan")
    await farmer.press(await farmer.expect("yourself"), "I am a relative")
    await farmer.press(await farmer.expect("How are you related"), "son or daughter")
    await farmer.expect("phone number")
    await farmer.send("12345")
    await farmer.expect("does not look right", "Everything else you entered is kept")
    await farmer.send("13912345678")
    await farmer.expect("ID number")
    await farmer.send("110105194912310021")
    await farmer.expect("That ID number is not valid")
    await farmer.send("Back")
    await farmer.expect("phone number")
    await farmer.send("13912345678")
    await farmer.expect("ID number")
    await farmer.send(ID_NUMBER)
    await farmer.expect("How many people")
    await farmer.send("a lot")
    await farmer.expect("Please type the number of people")
    await farmer.send("Cancel")
    await farmer.expect("Cancelled")


async def _at_the_risks(farmer: Chat) -> EmuMessage:
    await consent(farmer)
    await farmer.expect("户主姓名")
    await farmer.send("王大山")
    await farmer.press(await farmer.expect("本人"), "我是户主本人")
    await farmer.expect("联系电话")
    await farmer.send("13912345678")
    await farmer.press(await farmer.expect("身份证号"), "不填身份证号，跳过")
    await farmer.press(await farmer.expect("几口人"), "4")
    return await farmer.expect("哪些困难")


async def _until(emu: BotAPIEmulator, farmer: Chat, message: EmuMessage, ticked: set[str]) -> bool:
    def shows() -> bool:
        current = emu.message(farmer.user.id, message.message_id)
        return current is not None and {b for b in current.button_texts if b.startswith("✅")} == ticked

    for _ in range(100):
        if shows():
            return True
        await emu.wait_changed(emu.changes, 0.1)
    return shows()


@pytest.mark.parametrize("second", [False, True])
async def test_a_failed_redraw_of_the_risk_list_is_retried_and_never_overtaken(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat], second: bool
) -> None:
    farmer = chat(1001)
    choose = await _at_the_risks(farmer)
    emu.fail_next("editMessageText", status=500, times=1)
    assert "因病" in await farmer.press(choose, "因病")  # stored; its redraw failed
    ticked = {"✅ 因病"}
    if second:
        # A second choice while the first redraw is being retried: queued behind it, not before.
        assert "因残" in await farmer.press(choose, "因残")
        ticked.add("✅ 因残")
    assert await _until(emu, farmer, choose, ticked), emu.transcript(farmer.user.id)
    await farmer.silent(2.0)  # nothing older arrives after it
    assert await _until(emu, farmer, choose, ticked), emu.transcript(farmer.user.id)


async def test_a_scanned_start_counts_the_scan_and_queues_the_welcome_in_one_transaction(
    service: Service, chat: Callable[..., Chat], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit of an update's transaction marks the update done (the inbox): were the scan
    counted in a transaction of its own, a crash before the welcome was queued would leave the
    update done, never handled again, and the farmer without an answer. Here queuing the welcome
    fails once: nothing of the update may be kept, and the farmer's next /start works."""
    farmer = chat(7101)
    real_start = intake.start
    failed: list[bool] = []

    async def fails_once(*args: object, **kwargs: object) -> object:
        if not failed:
            failed.append(True)
            raise RuntimeError("the process died between the scan and the welcome")
        return await real_start(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(intake, "start", fails_once)
    await farmer.send(f"/start {village_payload()}")
    await farmer.expect("抱歉，系统出了点问题")
    async with service.sessions() as session:
        assert (await session.scalars(select(QrScanRow))).all() == []
        assert (await session.scalars(select(InboxRow).where(InboxRow.chat_id == 7101))).all() == []
    await farmer.send(f"/start {village_payload()}")
    await farmer.expect("所在村：李家村", "知情同意")
    async with service.sessions() as session:
        assert [row.count for row in await session.scalars(select(QrScanRow))] == [1]
