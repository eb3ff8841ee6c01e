"""Edits of a pressed message go through the outbox, queued before what the press caused: folded
into the next question (one call), a keyboard taken away first, nothing for a press that took no
effect, "not modified" as sent, a message that can no longer be edited."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Bot

from bot.limits import utf16_len
from bot.sender import OutboxSender
from domain.messages import Action, Outgoing
from handlers.keyboards import markup_of
from storage.db import session_factory
from storage.outbox_store import Mark, OutboxStore
from storage.tables import OutboxRow
from storage.uow import SqlUnitOfWorkFactory
from tests.bot.test_sender import TOKEN, people
from tests.emulator import BotAPIEmulator
from tests.support import FakeClock

QUESTION = "问题一：您家有几口人？"


@pytest.fixture
async def emu() -> AsyncIterator[BotAPIEmulator]:
    async with BotAPIEmulator(token=TOKEN) as emulator:
        yield emulator


@pytest.fixture
async def bot(emu: BotAPIEmulator) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=emu.base_url, base_file_url=emu.base_file_url) as client:
        yield client


ASKED = Outgoing("sender.part", {"text": {"$plain": QUESTION}}, actions=((Action("yes:1"),),))


async def _pressed(setup: Any, emu: BotAPIEmulator, clock: FakeClock) -> int:
    """A question with a button, sent through the outbox as the person saw it; its message id."""
    sender, handler, a = setup
    async with handler() as work:
        await work.outbox.add(a, ASKED, at=clock.now())
        await work.commit()
    assert await sender.drain_once() == 1
    return emu.messages(5000)[-1].message_id


async def _rows(engine: AsyncEngine) -> list[OutboxRow]:
    async with session_factory(engine)() as session:
        return list((await session.scalars(select(OutboxRow).order_by(OutboxRow.id))).all())


def _calls(emu: BotAPIEmulator) -> dict[str, int]:
    methods = ("sendMessage", "editMessageText", "editMessageReplyMarkup")
    return {m: len(emu.calls_of(m)) for m in methods if emu.calls_of(m)}


@pytest.fixture
async def setup(
    engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> AsyncIterator[tuple[OutboxSender, SqlUnitOfWorkFactory, int]]:
    (a,) = await people(SqlUnitOfWorkFactory(session_factory(engine)), emu, 1, clock)
    sender = OutboxSender(OutboxStore(session_factory(engine)), bot, clock, "zh_Hans_CN", keyboard=markup_of)
    handler = SqlUnitOfWorkFactory(session_factory(engine), worker=sender.worker_id, on_commit=sender.accept)
    yield sender, handler, a
    await sender.stop()


NEXT = Outgoing("intake.noted", {"value": "下一题"}, actions=((Action("next:1"),),))


async def _press(
    handler: SqlUnitOfWorkFactory,
    clock: FakeClock,
    person: int,
    pressed: int,
    key: str,
    *queue: Outgoing,
    done: bool = True,
    text: bool = True,
    ack: str | None = "✓ 是",
) -> None:
    """One press as handlers/telegram.py button() runs it: the disarm held first, the use case
    queues `queue`, then the held edit is kept, folded into the next question, or dropped."""
    async with handler() as work:
        held = await work.outbox.hold_press(person, pressed, at=clock.now(), key=key)
        for message in queue:
            await work.outbox.add(person, message, at=clock.now())
        if held is not None:
            await work.outbox.settle_press(person, held, keep=done, ack=ack, text=text)
        await work.commit()


async def test_the_pressed_message_becomes_the_ack_and_the_next_question_in_one_call(
    setup: Any, engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    sender, handler, a = setup
    pressed = await _pressed(setup, emu, clock)
    await _press(handler, clock, a, pressed, "edit:1", NEXT)
    assert await sender.drain_once() == 1
    assert _calls(emu) == {"sendMessage": 1, "editMessageText": 1}  # the question sent by the test
    (message,) = emu.messages(5000)
    assert message.message_id == pressed
    assert (message.text or "").split("\n") == ["✓ 是", "已选择：下一题"]
    assert message.button_texts and message.inline_keyboard[0][0]["callback_data"] == "next:1"
    _, row = await _rows(engine)  # the held disarm folded into the question: one row
    assert (row.status, row.external_id) == ("sent", str(pressed))
    assert row.payload["edit"] == {"message_id": pressed, "fallback": True}


async def test_the_keyboard_goes_before_a_next_message_that_cannot_ride_on_an_edit(
    setup: Any, engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    sender, handler, a = setup
    pressed = await _pressed(setup, emu, clock)
    menu = Outgoing("intake.noted", {"value": "x"}, keyboard="menu")
    await _press(handler, clock, a, pressed, "edit:2", menu)
    await _press(handler, clock, a, pressed, "edit:2", menu)  # the same update again: no second disarm
    assert await sender.drain_once() == 3
    # A reply keyboard cannot ride on an edit: the keyboard goes first, then that message.
    assert [method for method, _ in emu.calls[-3:]] == [
        "editMessageReplyMarkup", "sendMessage", "sendMessage"
    ]  # fmt: skip
    first, second, third = emu.messages(5000)
    assert first.message_id == pressed and first.text == QUESTION and not first.inline_keyboard
    assert second.text == third.text == "已选择：x"
    assert [r.status for r in await _rows(engine)] == ["sent"] * 4


async def test_a_press_that_took_no_effect_keeps_its_keyboard(
    setup: Any, engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    sender, handler, a = setup
    pressed = await _pressed(setup, emu, clock)
    await _press(handler, clock, a, pressed, "edit:3", done=False)
    assert await sender.drain_once() == 0
    (message,) = emu.messages(5000)
    assert message.inline_keyboard and len(await _rows(engine)) == 1  # the question only


async def test_a_photo_caption_or_a_record_loses_only_its_keyboard(
    setup: Any, engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    sender, handler, a = setup
    pressed = await _pressed(setup, emu, clock)
    await _press(handler, clock, a, pressed, "edit:3", NEXT, text=False)
    assert await sender.drain_once() == 2
    assert _calls(emu) == {"sendMessage": 2, "editMessageReplyMarkup": 1}
    first, second = emu.messages(5000)
    assert first.message_id == pressed and first.text == QUESTION and not first.inline_keyboard
    assert second.text == "已选择：下一题" and second.inline_keyboard


async def test_a_disarm_already_done_counts_as_sent(
    setup: Any, engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    sender, handler, a = setup
    pressed = await _pressed(setup, emu, clock)
    for n in range(2):  # the second finds no keyboard to take: "message is not modified"
        await _press(handler, clock, a, pressed, f"edit:r{n}", text=False)
        assert await sender.drain_once() == 1
    assert _calls(emu) == {"sendMessage": 1, "editMessageReplyMarkup": 2}
    assert "not modified" in emu.errors[-1][3]
    assert [(r.status, r.attempts) for r in await _rows(engine)] == [("sent", 0)] * 3


async def test_a_message_that_cannot_be_edited_is_sent_anew_or_given_up_quietly(
    setup: Any,
    engine: AsyncEngine,
    emu: BotAPIEmulator,
    bot: Bot,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sender, handler, a = setup
    gone = await _pressed(setup, emu, clock)
    await bot.delete_message(5000, gone)  # deleted since (or too old to edit)
    await _press(handler, clock, a, gone, "edit:4", NEXT)
    assert await sender.drain_once() == 2  # the edit refused, then the same row as a new message
    (message,) = emu.messages(5000)
    assert message.text == "已选择：下一题" and message.inline_keyboard  # its own content, no ack
    await _press(handler, clock, a, gone, "edit:5", text=False)
    caplog.set_level(logging.INFO)
    assert await sender.drain_once() == 1
    assert len(emu.messages(5000)) == 1  # nothing of its own to send
    assert [r.status for r in await _rows(engine)] == ["sent", "sent", "failed"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.levelname for r in caplog.records if r.name == "bot.sender"] == ["WARNING"]


async def test_no_fold_when_something_came_after_the_pressed_message(
    setup: Any, engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    """The next question goes as a new message when the pressed one is no longer the newest
    (an answer to something typed meanwhile, a reminder): else it would appear above them."""
    sender, handler, a = setup
    pressed = await _pressed(setup, emu, clock)
    async with handler() as work:
        await work.outbox.add(a, Outgoing("intake.noted", {"value": "别的"}), at=clock.now())
        await work.commit()
    assert await sender.drain_once() == 1
    await _press(handler, clock, a, pressed, "edit:7", NEXT)
    assert await sender.drain_once() == 2
    first, _other, third = emu.messages(5000)
    assert first.message_id == pressed and first.text == QUESTION and not first.inline_keyboard
    assert third.text == "已选择：下一题" and third.inline_keyboard


async def test_an_edit_too_long_with_its_ack_is_cut_to_telegrams_limit(
    setup: Any, engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    sender, handler, a = setup
    pressed = await _pressed(setup, emu, clock)
    long = Outgoing("sender.part", {"text": {"$plain": "长" * 4095}})
    await _press(handler, clock, a, pressed, "edit:6", long, ack="✓ 是否")
    assert await sender.drain_once() == 1
    (message,) = emu.messages(5000)
    assert (message.text or "").startswith("✓ 是否\n长") and utf16_len(message.text or "") <= 4096
    assert (message.text or "").endswith("…")


async def test_a_reply_held_behind_a_press_is_written_in_the_language_the_press_chose(
    setup: Any, engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    sender, handler, a = setup
    pressed = await _pressed(setup, emu, clock)
    async with handler() as work:
        held = await work.outbox.hold_press(a, pressed, at=clock.now(), key="edit:lang")
        assert held is not None
        await work.persons.set_locale(a, "en")  # the press was 🌐 English
        await work.outbox.add(a, Outgoing("language.set"), at=clock.now())
        await work.outbox.settle_press(a, held, keep=True, ack="✓ English", text=True)
        await work.commit()
    assert await sender.drain_once() == 1
    (message,) = emu.messages(5000)
    assert message.message_id == pressed
    assert (message.text or "").split("\n") == ["✓ English", "Language set to English."]


async def test_a_keyed_message_behind_a_press_writes_the_held_rows_first_in_order(
    setup: Any, engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    _sender, handler, a = setup
    pressed = await _pressed(setup, emu, clock)
    async with handler() as work:
        held = await work.outbox.hold_press(a, pressed, at=clock.now(), key="edit:keyed")
        assert held is not None
        await work.outbox.add(a, Outgoing("intake.noted", {"value": "先"}), at=clock.now())
        # A keyed message must know at once whether it is new: what was held is written first.
        assert await work.outbox.add(a, Outgoing("intake.noted", {"value": "后"}), at=clock.now(), key="k:1")
        assert not await work.outbox.add(
            a, Outgoing("intake.noted", {"value": "后"}), at=clock.now(), key="k:1"
        )
        await work.outbox.settle_press(a, held, keep=True, ack=None, text=True)
        await work.commit()
    rows = await _rows(engine)
    assert [(r.key, (r.payload.get("edit") or {}).get("markup_only")) for r in rows[1:]] == [
        ("edit:keyed", True),
        (rows[2].key, None),
        ("k:1", None),
    ]
    assert rows[2].payload["params"]["value"] == "先"


async def test_an_edit_telegram_answered_for_is_not_on_its_way_while_its_mark_waits(
    engine: AsyncEngine, emu: BotAPIEmulator, clock: FakeClock
) -> None:
    from bot.sender import Recorder

    (a,) = await people(SqlUnitOfWorkFactory(session_factory(engine)), emu, 1, clock)
    answered: dict[int, Any] = {}
    handler = SqlUnitOfWorkFactory(
        session_factory(engine), worker="w-edit", on_commit=lambda _: None, answered=answered.get
    )
    async with handler() as work:
        await work.outbox.redraw(a, 42, NEXT, at=clock.now(), key="redraw:1")
        await work.commit()
    (row,) = [r for r in await _rows(engine) if r.key == "redraw:1"]
    assert row.status == "sending"  # claimed by w-edit: on its way as far as the database knows
    async with handler() as work:
        assert await work.outbox.editing(a, 42)
        assert not await work.outbox.editing(a, 43)
    answered[row.id] = Mark("sent", row.id, 0, at=clock.now(), external_id="42")  # mark not committed
    async with handler() as work:
        assert not await work.outbox.editing(a, 42)
        # And a press on what it drew folds the next question into it, as after a committed mark.
        held = await work.outbox.hold_press(a, 42, at=clock.now(), key="edit:42")
        assert held is not None
        await work.outbox.add(a, NEXT, at=clock.now())
        await work.outbox.settle_press(a, held, keep=True, ack="✓ 是", text=True)
        await work.commit()
    folded = (await _rows(engine))[-1]
    assert folded.payload["edit"] == {"message_id": 42, "fallback": True}
    del answered[row.id]
    async with handler() as work:  # not answered: on its way, so the next question is a new message
        held = await work.outbox.hold_press(a, 42, at=clock.now(), key="edit:42b")
        assert held is not None
        await work.outbox.add(a, NEXT, at=clock.now())
        await work.outbox.settle_press(a, held, keep=True, ack="✓ 是", text=True)
        await work.commit()
    disarm, question = (await _rows(engine))[-2:]
    assert (
        disarm.payload["edit"] == {"message_id": 42, "markup_only": True} and "edit" not in question.payload
    )

    recorder = Recorder(OutboxStore(session_factory(engine)), "w-edit", spacing=60)
    recorder.add(Mark("sent", row.id, 0, at=clock.now(), external_id="42"))
    recorder.add(Mark("retry", row.id + 1, 1, at=clock.now()))
    assert recorder.answered(row.id) == Mark("sent", row.id, 0, at=clock.now(), external_id="42")
    assert recorder.answered(row.id + 1) is None  # a retry: still on its way
    assert await recorder.flush(timeout=5)
    assert recorder.answered(row.id) is None  # written: the row itself says sent now


async def test_a_keyed_message_whose_offer_is_over_loses_its_buttons_sent_or_waiting(
    setup: Any, engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    """`disarm`: a sent message's keyboard is edited away once; one still waiting goes without."""
    sender, handler, a = setup
    async with handler() as work:
        await work.outbox.add(a, ASKED, key="offer:1", at=clock.now())
        await work.commit()
    assert await sender.drain_once() == 1
    async with SqlUnitOfWorkFactory(session_factory(engine))() as work:  # no worker: written pending
        await work.outbox.add(a, ASKED, key="offer:2", at=clock.now())
        await work.commit()
    for _ in range(2):  # the second time: queued before under its key, nothing more
        async with handler() as work:
            for key in ("offer:1", "offer:2", "offer:none"):
                await work.outbox.disarm(a, key, at=clock.now())
            await work.commit()
    async with handler() as work:  # written and disarmed in one transaction: goes without
        await work.outbox.add(a, ASKED, key="offer:3", at=clock.now())
        await work.outbox.disarm(a, "offer:3", at=clock.now())
        await work.commit()
    assert await sender.drain_once() == 3
    assert _calls(emu) == {"sendMessage": 3, "editMessageReplyMarkup": 1}
    first, second, third = emu.messages(5000)
    assert first.text == second.text == third.text == QUESTION
    assert not first.inline_keyboard and not second.inline_keyboard and not third.inline_keyboard
    rows = await _rows(engine)
    assert [r.key for r in rows] == ["offer:1", "offer:2", "disarm:offer:1", "offer:3"]
    assert rows[2].payload["edit"] == {"message_id": first.message_id, "markup_only": True}
    assert [r.status for r in rows] == ["sent"] * 4
