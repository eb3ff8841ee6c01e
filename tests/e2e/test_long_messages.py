"""Views longer than Telegram's limits arrive whole, in several messages, none failed; and nothing
is queued for a roster cadre who never opened the invite. End to end over the Bot API emulator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, select

from bot.limits import TEXT_LIMIT, utf16_len
from bot.service import Service
from domain.model import CaseEvent, Channel, OutboxStatus
from storage.tables import OutboxRow
from tests.e2e.conftest import Chat, bind
from tests.e2e.test_procedure import clocked, declaration_receipt, submitted  # noqa: F401 (the fixture)
from tests.emulator import EmuMessage
from tests.support import FakeClock


async def arrivals(chat: Chat, *wanted: str, timeout: float = 15.0) -> list[EmuMessage]:
    """The bot's next messages, until each of `wanted` has arrived in one of them."""
    received: list[EmuMessage] = []
    while not all(any(w in (m.text or "") for m in received) for w in wanted):
        received.append(await chat.emu.next_message(chat.user.id, timeout=timeout))
    return received


async def outbox(service: Service) -> list[OutboxRow]:
    async with service.sessions() as session:
        return list((await session.scalars(select(OutboxRow).order_by(OutboxRow.id))).all())


async def settled(service: Service) -> None:
    """Wait until the sender has dealt with every queued message."""
    still_open = OutboxRow.status.in_((OutboxStatus.PENDING.value, OutboxStatus.SENDING.value))
    for _ in range(300):
        async with service.sessions() as session:
            if not await session.scalar(select(func.count()).select_from(OutboxRow).where(still_open)):
                return
        await asyncio.sleep(0.05)
    left = [(row.key, row.status, row.last_error) for row in await outbox(service) if row.status != "sent"]
    raise AssertionError(f"the outbox did not settle: {left}")


def in_order(texts: list[str], pieces: list[str]) -> bool:
    """Each piece whole in exactly one of `texts`, and in this order across them."""
    joined = "\n".join(texts)
    if any(sum(piece in text for text in texts) != 1 for piece in pieces):
        return False
    places = [joined.index(piece) for piece in pieces]
    return places == sorted(places)


async def none_failed(service: Service) -> bool:
    await settled(service)
    return all(row.status != OutboxStatus.FAILED.value for row in await outbox(service))


async def test_the_township_ledger_with_long_items_arrives_whole_in_several_messages(
    clocked: tuple[Service, FakeClock],  # noqa: F811
    chat: Callable[..., Chat],
) -> None:
    service, clock = clocked
    staff, li = chat(3001, "王芳"), chat(2002, "李娜")
    await bind(service, staff, "13800000003")
    await bind(service, li, "13800000002")
    items = [f"第{n}项：" + "村道排水沟堵塞，雨季积水进屋，需清淤并加固沟渠😀" * 18 for n in range(20)]
    async with service.uow() as uow:
        cadre = await uow.persons.by_address(Channel.TELEGRAM, str(li.user.id))
        village = await uow.geography.village_by_code("QS02")
        assert cadre is not None and village is not None
        due = (clock.now() + timedelta(days=10)).date()
        for what in items:
            await uow.ledger.add(village.id, cadre.id, what, "清淤加固", due, "李娜", clock.now())
        await uow.commit()

    await staff.emu.send_command(staff.user, "problems")
    received = await arrivals(staff, "未销号 20 个", *items)
    texts = [m.text or "" for m in received]
    assert len(texts) >= 3 and all(utf16_len(text) <= TEXT_LIMIT for text in texts)
    assert "未销号 20 个" in texts[0] and in_order(texts, items)
    assert await none_failed(service)
    await staff.silent()


async def test_a_case_history_with_many_notes_arrives_whole_with_its_button_on_the_last_part(
    clocked: tuple[Service, FakeClock],  # noqa: F811
    chat: Callable[..., Chat],
) -> None:
    service, clock = clocked
    staff = chat(3001, "王芳")
    await bind(service, staff, "13800000003")
    cadre, _, case = await submitted(service, chat)
    await cadre.press(case, "签收")
    await settled(service)  # before the clock moves: a jump would let the sender's leases run out
    notes = [f"第{n}次走访：" + "家中两位老人长期服药，儿子外出务工收入不稳，" * 12 for n in range(15)]
    receipt = await declaration_receipt(service)
    async with service.uow() as uow:
        declaration = await uow.declarations.by_receipt(receipt)
        actor = await uow.persons.by_address(Channel.TELEGRAM, str(cadre.user.id))
        assert declaration is not None and actor is not None
        for note in notes:
            clock.advance(hours=1)
            await uow.events.add(CaseEvent(declaration.id, "visit", actor.id, clock.now(), {"notes": note}))
        await uow.commit()

    await staff.emu.send_command(staff.user, "case", receipt)
    received = await arrivals(staff, "办理记录", *notes)
    texts = [m.text or "" for m in received]
    assert len(texts) >= 2 and all(utf16_len(text) <= TEXT_LIMIT for text in texts)
    assert "办理记录" in texts[0] and in_order(texts, notes)
    assert [bool(m.inline_keyboard) for m in received] == [False] * (len(received) - 1) + [True]
    assert await none_failed(service)


async def test_nothing_is_queued_for_a_cadre_who_never_opened_the_invite(
    clocked: tuple[Service, FakeClock],  # noqa: F811
    chat: Callable[..., Chat],
) -> None:
    service, _ = clocked
    staff = chat(3001, "王芳")
    await bind(service, staff, "13800000003")
    # 李家村 has two cadres: 张伟 binds, 李娜 never opens her invite.
    cadre, farmer, case = await submitted(service, chat)
    await cadre.press(case, "签收")  # 李娜 would hear that a colleague took it
    await farmer.expect("签收")
    async with service.uow() as uow:
        li = await uow.persons.by_phone("+8613800000002")
        assert li is not None and await uow.persons.address_of(li.id, Channel.TELEGRAM) is None
    await settled(service)
    assert [row for row in await outbox(service) if row.person_id == li.id] == []
    await staff.emu.send_command(staff.user, "failed")
    await staff.expect("没有未送达的消息")
