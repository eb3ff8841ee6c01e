"""Edits of a pressed message go through the outbox: merged with the next question (one call),
a keyboard taken away, a redraw, "not modified" as sent, a message that can no longer be edited."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup

from bot.sender import OutboxSender
from domain.messages import Action, Outgoing
from handlers.limits import utf16_len
from storage.db import session_factory
from storage.models import OutboxRow
from storage.outbox_store import OutboxStore
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


async def _pressed(bot: Bot) -> int:
    """A question with buttons, as the person saw it; returns its message id."""
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("是", callback_data="yes")]])
    return (await bot.send_message(5000, QUESTION, reply_markup=keyboard)).message_id


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
    sender = OutboxSender(OutboxStore(session_factory(engine)), bot, clock, "zh_Hans_CN")
    handler = SqlUnitOfWorkFactory(session_factory(engine), worker=sender.worker_id, on_commit=sender.accept)
    yield sender, handler, a
    await sender.stop()


NEXT = Outgoing("intake.noted", {"value": "下一题"}, actions=((Action("next:1"),),))


async def test_the_pressed_message_becomes_the_ack_and_the_next_question_in_one_call(
    setup: Any, engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    sender, handler, a = setup
    pressed = await _pressed(bot)
    async with handler() as work:
        await work.outbox.add(a, NEXT, at=clock.now())  # the use case asks the next question
        await work.outbox.edit_pressed(
            a, pressed, at=clock.now(), key="edit:1", ack="✓ 是", original_text=QUESTION
        )
        await work.commit()
    assert await sender.drain_once() == 1
    assert _calls(emu) == {"sendMessage": 1, "editMessageText": 1}  # the question sent by the test
    (message,) = emu.messages(5000)
    assert message.message_id == pressed
    assert (message.text or "").split("\n") == ["✓ 是", "已选择：下一题"]
    assert message.button_texts and message.inline_keyboard[0][0]["callback_data"] == "next:1"
    (row,) = await _rows(engine)
    assert (row.status, row.external_id) == ("sent", str(pressed))
    assert row.payload["edit"] == {"message_id": pressed, "fallback": True}


async def test_without_a_next_question_the_keyboard_goes_and_the_answer_is_added(
    setup: Any, engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    sender, handler, a = setup
    pressed = await _pressed(bot)
    async with handler() as work:
        await work.outbox.add(a, Outgoing("intake.noted", {"value": "x"}, keyboard="menu"), at=clock.now())
        await work.outbox.edit_pressed(
            a, pressed, at=clock.now(), key="edit:2", ack="✓ 是", original_text=QUESTION
        )
        # The same press again (a retried update): queued once.
        await work.outbox.edit_pressed(
            a, pressed, at=clock.now(), key="edit:2", ack="✓ 是", original_text=QUESTION
        )
        await work.commit()
    assert await sender.drain_once() == 2
    # A reply keyboard cannot ride on an edit: that message goes on its own, then the edit.
    assert _calls(emu) == {"sendMessage": 2, "editMessageText": 1}
    first, second = emu.messages(5000)
    assert first.message_id == pressed and first.text == f"{QUESTION}\n✓ 是" and not first.inline_keyboard
    assert second.text == "已选择：x"
    assert [r.status for r in await _rows(engine)] == ["sent", "sent"]


async def test_a_photo_caption_loses_only_its_keyboard(
    setup: Any, engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    sender, handler, a = setup
    pressed = await _pressed(bot)
    async with handler() as work:
        await work.outbox.add(a, NEXT, at=clock.now())
        await work.outbox.edit_pressed(
            a, pressed, at=clock.now(), key="edit:3", ack="✓ 是", original_text=None
        )
        await work.commit()
    assert await sender.drain_once() == 2
    assert _calls(emu) == {"sendMessage": 2, "editMessageReplyMarkup": 1}
    first, second = emu.messages(5000)
    assert first.message_id == pressed and first.text == QUESTION and not first.inline_keyboard
    assert second.text == "已选择：下一题" and second.inline_keyboard


async def test_a_redraw_is_an_edit_and_not_modified_counts_as_sent(
    setup: Any, engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    sender, handler, a = setup
    pressed = await _pressed(bot)
    toggled = Outgoing("intake.noted", {"value": "✅ 低保"}, actions=((Action("toggle:1"),),))
    for n in range(2):  # the second press draws the same again: "message is not modified"
        async with handler() as work:
            await work.outbox.edit_pressed(a, pressed, at=clock.now(), key=f"edit:r{n}", redraw=toggled)
            await work.commit()
        assert await sender.drain_once() == 1
    assert _calls(emu) == {"sendMessage": 1, "editMessageText": 2}
    assert "not modified" in emu.errors[-1][3]
    (message,) = emu.messages(5000)
    assert message.text == "已选择：✅ 低保" and message.inline_keyboard[0][0]["callback_data"] == "toggle:1"
    assert [(r.status, r.attempts) for r in await _rows(engine)] == [("sent", 0), ("sent", 0)]


async def test_a_message_that_cannot_be_edited_is_sent_anew_or_given_up_quietly(
    setup: Any,
    engine: AsyncEngine,
    emu: BotAPIEmulator,
    bot: Bot,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sender, handler, a = setup
    gone = 987654  # deleted, or too old to edit
    async with handler() as work:
        await work.outbox.add(a, NEXT, at=clock.now())
        await work.outbox.edit_pressed(
            a, gone, at=clock.now(), key="edit:4", ack="✓ 是", original_text=QUESTION
        )
        await work.commit()
    assert await sender.drain_once() == 2  # the edit refused, then the same row as a new message
    (message,) = emu.messages(5000)
    assert message.text == "已选择：下一题" and message.inline_keyboard  # its own content, no ack
    async with handler() as work:
        await work.outbox.edit_pressed(a, gone, at=clock.now(), key="edit:5", original_text=None)
        await work.commit()
    caplog.set_level(logging.INFO)
    assert await sender.drain_once() == 1
    assert len(emu.messages(5000)) == 1  # nothing of its own to send
    assert [r.status for r in await _rows(engine)] == ["sent", "failed"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.levelname for r in caplog.records if r.name == "bot.sender"] == ["WARNING"]


async def test_an_edit_too_long_with_its_ack_is_cut_to_telegrams_limit(
    setup: Any, engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    sender, handler, a = setup
    pressed = await _pressed(bot)
    long = Outgoing("sender.part", {"text": {"$plain": "长" * 4095}})
    async with handler() as work:
        await work.outbox.add(a, long, at=clock.now())
        await work.outbox.edit_pressed(
            a, pressed, at=clock.now(), key="edit:6", ack="✓ 是否", original_text=QUESTION
        )
        await work.commit()
    assert await sender.drain_once() == 1
    (message,) = emu.messages(5000)
    assert (message.text or "").startswith("✓ 是否\n长") and utf16_len(message.text or "") <= 4096
    assert (message.text or "").endswith("…")
