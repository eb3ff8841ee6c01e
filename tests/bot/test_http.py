"""PTB over aiohttp (bot/http.py) against the Bot API emulator: the same answers as PTB's own
networking, files as multipart, Telegram's errors as PTB's, a stalled call as TimedOut, an
unreachable server as NetworkError."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut

from bot.http import AiohttpRequest
from botapi.emulator import BotAPIEmulator

TOKEN = "123456:http-test"


@pytest.fixture
async def emu() -> AsyncIterator[BotAPIEmulator]:
    async with BotAPIEmulator(token=TOKEN) as emulator:
        yield emulator


def _bot(base_url: str, base_file_url: str, **timeouts: float) -> Bot:
    return Bot(
        TOKEN,
        base_url=base_url,
        base_file_url=base_file_url,
        request=AiohttpRequest(8, **timeouts),
        get_updates_request=AiohttpRequest(1),
    )


async def test_messages_edits_and_files_go_through_and_come_back_as_ptb_objects(emu: BotAPIEmulator) -> None:
    user = emu.user(7001, "王")
    async with _bot(emu.base_url, emu.base_file_url) as bot:
        assert bot.username == emu.bot_user["username"]
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("是", callback_data="yes:1")]])
        sent = await bot.send_message(user.id, "您家有几口人？", reply_markup=markup)
        assert sent.text == "您家有几口人？" and sent.chat.id == user.id
        edited = await bot.edit_message_text("✓ 是", chat_id=user.id, message_id=sent.message_id)
        assert not isinstance(edited, bool) and edited.text == "✓ 是"
        document = await bot.send_document(user.id, b"\x00\x01 receipt", filename="回执.bin", caption="附件")
        assert document.document is not None and document.caption == "附件"
    stored = emu.messages(user.id)
    assert [m.text or m.caption for m in stored] == ["✓ 是", "附件"]
    assert stored[0].history and stored[0].history[0]["text"] == "您家有几口人？"
    assert stored[0].inline_keyboard == []  # the edit sent no keyboard: it is gone


async def test_telegrams_errors_are_ptbs_and_a_stall_is_timed_out(emu: BotAPIEmulator) -> None:
    user = emu.user(7002, "李")
    async with _bot(emu.base_url, emu.base_file_url, read_timeout=0.5) as bot:
        emu.fail_next("sendMessage", 429, retry_after=3)
        with pytest.raises(RetryAfter) as flood:
            await bot.send_message(user.id, "x")
        assert flood.value.retry_after in (3, timedelta(seconds=3))
        with pytest.raises(BadRequest):
            await bot.edit_message_text("y", chat_id=user.id, message_id=999_999)
        emu.fail_next("sendMessage", timeout=True, hang=2.0)
        with pytest.raises(TimedOut):
            await bot.send_message(user.id, "stalled")
        assert (await bot.send_message(user.id, "after")).text == "after"


async def test_an_unreachable_server_is_a_network_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again at once: nothing listens there
    request = AiohttpRequest(2)
    await request.initialize()
    try:
        with pytest.raises(NetworkError) as failed:
            await request.post(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe")
        assert not isinstance(failed.value, TimedOut)
    finally:
        await request.shutdown()
    with pytest.raises(RuntimeError):
        await request.do_request("http://127.0.0.1:1/", "POST")
