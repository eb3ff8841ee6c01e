"""Tried as an attacker would, through the real application: forged buttons, other people's
phones and contact cards, hand-overs to someone the bot cannot reach, limits in chat."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select

from bot.service import Service
from domain.validation import phone
from storage.tables import AttachmentRow, DeclarationRow
from tests.e2e.conftest import Chat, bind, declare, village_payload
from tests.e2e.test_intake import consent
from tests.emulator import BotAPIEmulator


async def _to_phone_step(person: Chat, payload: str | None = None) -> None:
    await consent(person, payload)
    await person.expect("户主姓名")
    await person.send("孙老汉")
    await person.press(await person.expect("本人"), "我是户主本人")
    await person.expect("联系电话")


def _cancel_data(person: Chat) -> str:
    """The conversation id of the person's open declaration, from its 取消 button."""
    for message in reversed(person.emu.messages(person.user.id)):
        for row in message.inline_keyboard or []:
            for button in row:
                if str(button.get("callback_data", "")).startswith("cancel:"):
                    return str(button["callback_data"])
    raise AssertionError("no 取消 button")


async def _count(service: Service, model: type) -> int:
    async with service.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_hand_made_add_button_never_reaches_another_households_case(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    cadre = chat(2001, "张伟")
    await bind(service, cadre, "13800000001")
    farmer = chat(1001)
    await farmer.press(await declare(farmer), "确认提交")
    receipt = ((await farmer.expect("回执编号")).text or "").split("回执编号：")[1].split()[0]
    await cadre.expect("新申报", receipt)
    declaration_id = int(receipt[8:])
    # A stranger opens a declaration in another township and forges 补充到这份申报 for that case.
    stranger = chat(1666)
    await _to_phone_step(stranger, village_payload("BS01"))
    conversation = _cancel_data(stranger).split(":")[1]
    answer = await stranger.press_data(
        emu.messages(stranger.user.id)[-1], f"dupadd:{conversation}:{declaration_id}"
    )
    assert "已失效" in answer
    await stranger.send("这户是骗补助的")
    await cadre.silent(0.8)
    assert receipt not in "".join(m.text or "" for m in emu.messages(stranger.user.id))
    assert await _count(service, AttachmentRow) == 0


async def test_a_neighbour_with_the_same_phone_sees_no_receipt_and_is_marked_to_the_cadre(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    cadre = chat(2001, "张伟")
    await bind(service, cadre, "13800000001")
    farmer = chat(1001)
    await farmer.press(await declare(farmer), "确认提交")
    receipt = ((await farmer.expect("回执编号")).text or "").split("回执编号：")[1].split()[0]
    await cadre.expect("新申报", receipt)
    neighbour = chat(1002)
    await _to_phone_step(neighbour)
    await neighbour.send("13912345678")
    offer = await neighbour.expect("已经有一份在办的申报")
    await neighbour.press(offer, "补充到这份申报")
    prompt = await neighbour.expect("非原申报人")
    assert receipt not in (prompt.text or "")
    await neighbour.send("他家房子漏雨")
    added = await cadre.expect(receipt, "非原申报人", "他家房子漏雨")
    assert "农户补充" not in (added.text or "")
    assert receipt not in "".join(m.text or "" for m in emu.messages(neighbour.user.id))


async def test_declarations_in_chat_are_limited_and_the_draft_is_kept(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    farmer = chat(1001)
    for n in range(3):
        await farmer.press(await declare(farmer, phone=f"1391234500{n}"), "确认提交")
        await farmer.expect("回执编号")
    summary = await declare(farmer, phone="13912345009")
    answer = await farmer.press(summary, "确认提交")
    assert "上限" in answer
    await farmer.expect("达到上限", "保存着", "12317")
    assert await _count(service, DeclarationRow) == 3
    # Nothing entered is lost: the summary's 确认提交 still works once the limit allows it.
    await emu.send_command(farmer.user, "start")
    await farmer.expect("请核对", "王大山")


async def test_someone_elses_contact_card_is_not_taken_as_the_phone(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    farmer = chat(1001)
    await _to_phone_step(farmer)
    await emu.send_contact(farmer.user, "+86 139 1234 5670", user_id=4242)
    await farmer.expect("别人的联系人名片", "联系电话")
    await emu.send_contact(farmer.user, "+86 139 1234 5671")


async def test_a_forged_hand_over_to_a_colleague_without_a_chat_is_refused(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    zhang = chat(2001, "张伟")
    await bind(service, zhang, "13800000001")  # 李娜 (also of 李家村) never opened her invite
    farmer = chat(1001)
    await farmer.press(await declare(farmer), "确认提交")
    await farmer.expect("回执编号")
    case = await zhang.expect("新申报")
    task = int(str(case.inline_keyboard[0][0]["callback_data"]).split(":")[1])
    await zhang.press(case, "签收")
    acknowledged = await zhang.expect("已签收")
    async with service.uow() as uow:
        li_na = await uow.persons.by_phone(phone("13800000002"))
    assert li_na is not None
    answer = await zhang.press_data(acknowledged, f"handto:{task}:{li_na.id}")
    assert "还没有绑定" in answer
    async with service.uow() as uow:
        still = await uow.tasks.get(task)
        zhang_person = await uow.persons.by_phone(phone("13800000001"))
    assert still is not None and zhang_person is not None and still.acknowledged_by == zhang_person.id
