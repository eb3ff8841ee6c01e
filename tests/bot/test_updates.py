"""The update path: per-chat order with concurrency across chats, the inbox, polling that
acknowledges only what is recorded, and the webhook (secret, record, 200, process)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Bot, Update

from bot.updates import SECRET_HEADER, Dispatcher, Incoming, Poller, Webhook, add_webhook_route, take_over
from storage import inbox
from storage.db import session_factory
from storage.tables import InboxRow
from tests.emulator import BotAPIEmulator

TOKEN = "123456:TEST-TOKEN"
# A write that changes nothing: what marks an update done is its handler's first writing commit.
WRITE = text("DELETE FROM inbox WHERE update_id = -1")


def _message(update_id: int, chat: int, body: str = "hi") -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_700_000_000,
            "chat": {"id": chat, "type": "private", "first_name": "A"},
            "from": {"id": chat, "is_bot": False, "first_name": "A"},
            "text": body,
        },
    }


async def test_one_chat_in_order_other_chats_meanwhile() -> None:
    started: list[tuple[int, int]] = []
    release: dict[int, asyncio.Event] = {}

    async def process(update: Update) -> None:
        assert update.effective_chat is not None
        started.append((update.effective_chat.id, update.update_id))
        await release.setdefault(update.update_id, asyncio.Event()).wait()

    bot = Bot(TOKEN)
    dispatcher = Dispatcher(bot, process, worker="w")
    for update_id, chat in ((1, 10), (2, 10), (3, 20), (4, 10)):
        dispatcher.submit(Incoming(update_id, chat, _message(update_id, chat), 0.0))
    await asyncio.sleep(0.05)
    # Chat 20 is not held up by chat 10's first update; chat 10's second waits for its first.
    assert started == [(10, 1), (20, 3)]
    release.setdefault(1, asyncio.Event()).set()
    await asyncio.sleep(0.05)
    assert started[-1] == (10, 2)
    for update_id in (2, 3, 4):
        release.setdefault(update_id, asyncio.Event()).set()
    await dispatcher.idle(2)
    assert [u for chat, u in started if chat == 10] == [1, 2, 4]


async def test_an_update_in_flight_is_not_queued_twice() -> None:
    seen: list[int] = []
    gate = asyncio.Event()

    async def process(update: Update) -> None:
        seen.append(update.update_id)
        await gate.wait()

    dispatcher = Dispatcher(Bot(TOKEN), process, worker="w")
    assert dispatcher.submit(Incoming(7, 1, _message(7, 1), 0.0)) is not None
    assert dispatcher.submit(Incoming(7, 1, _message(7, 1), 0.0)) is None
    gate.set()
    await dispatcher.idle(2)
    assert seen == [7]


async def _inbox_rows(engine: AsyncEngine) -> dict[int, InboxRow]:
    async with session_factory(engine)() as session:
        return {row.update_id: row for row in (await session.scalars(select(InboxRow))).all()}


async def test_the_handler_transaction_that_writes_records_the_update_done(engine: AsyncEngine) -> None:
    inbox.install()
    sessions = session_factory(engine)
    seen: dict[str, set[int]] = {}

    async def process(update: Update) -> None:
        # A transaction that only reads (a handler group finding nothing of its own) ...
        async with sessions() as session:
            await session.execute(text("SELECT 1"))
            await session.commit()
        seen["after the read"] = set(await _inbox_rows(engine))
        # ... and the one that does the work (its write is what marks the update done).
        async with sessions() as session:
            await session.execute(WRITE)
            await session.commit()

    dispatcher = Dispatcher(Bot(TOKEN), process, worker="w")
    dispatcher.submit(Incoming(41, 5, _message(41, 5, "我的身份证号"), 0.0))
    await dispatcher.idle(5)
    assert 41 not in seen["after the read"]  # a crash here must leave the update to be handled again
    rows = await _inbox_rows(engine)
    assert rows[41].done_at is not None and rows[41].chat_id == 5
    assert rows[41].payload is None  # what the person typed is not kept


@pytest.fixture
async def emu() -> AsyncIterator[BotAPIEmulator]:
    async with BotAPIEmulator(token=TOKEN) as emulator:
        yield emulator


async def test_polling_acknowledges_only_recorded_updates_and_skips_them_after_a_restart(
    emu: BotAPIEmulator, engine: AsyncEngine
) -> None:
    inbox.install()
    sessions = session_factory(engine)
    handled: list[int] = []
    slow = asyncio.Event()

    async def process(update: Update) -> None:
        assert update.message is not None
        if update.message.text == "slow":
            await slow.wait()
        async with sessions() as session:
            await session.execute(WRITE)  # the handler's work
            await session.commit()
        handled.append(update.update_id)

    bot = Bot(TOKEN, base_url=emu.base_url)
    await bot.initialize()
    store = inbox.InboxStore(sessions, "w1")
    dispatcher = Dispatcher(bot, process, worker="w1", on_unrecorded=store.done_without_handler)
    poller = Poller(bot, dispatcher, store, timeout=0, ack_within=0.2)
    user = emu.user(1001, "甲")
    await emu.send_text(user, "fast")
    await emu.send_text(user, "slow")
    await poller.prepare()
    try:
        assert await poller.poll_once() == 2
        rows = await _inbox_rows(engine)
        fast, slow_id = sorted(rows)
        # The fast one is done in its handler's transaction; the slow one was recorded pending
        # (with its payload) before the batch was acknowledged.
        assert rows[fast].done_at is not None
        assert rows[slow_id].done_at is None and rows[slow_id].payload is not None
        # "Killed" here: a new worker takes the pending update over and processes it from its record.
        await dispatcher.stop(timeout=0.1)
        handled.clear()
        slow.set()
        restarted = Dispatcher(bot, process, worker="w2", on_unrecorded=store.done_without_handler)
        store2 = inbox.InboxStore(sessions, "w2")

        async def live() -> list[str]:
            return ["w2"]

        assert await take_over(restarted, store2, live) == 1
        await restarted.idle(5)
        assert handled == [slow_id]
        assert (await _inbox_rows(engine))[slow_id].done_at is not None
        # Telegram redelivers what a poller did not acknowledge: a recorded update is not run again.
        poller2 = Poller(bot, restarted, store2, timeout=0)
        await poller2.prepare()
        poller2._offset = None  # as if the acknowledgement had been lost
        emu._updates = [_message(fast, 1001, "fast"), _message(slow_id, 1001, "slow")]
        await poller2.poll_once()
        await restarted.idle(5)
        assert handled == [slow_id]
        await poller2.stop()
    finally:
        await poller.stop()
        await bot.shutdown()


@pytest.fixture
async def hook(engine: AsyncEngine) -> AsyncIterator[tuple[TestClient, list[int], inbox.InboxStore]]:
    inbox.install()
    sessions = session_factory(engine)
    handled: list[int] = []

    async def process(update: Update) -> None:
        handled.append(update.update_id)

    store = inbox.InboxStore(sessions, "w1")
    dispatcher = Dispatcher(Bot(TOKEN), process, worker="w1", on_unrecorded=store.done_without_handler)
    app = web.Application()
    add_webhook_route(app, "/tg/hook", Webhook("s3cret-token", dispatcher, store))
    async with TestClient(TestServer(app)) as client:
        yield client, handled, store
        await dispatcher.idle(5)


async def test_webhook_refuses_a_wrong_or_missing_secret(
    hook: tuple[TestClient, list[int], inbox.InboxStore], engine: AsyncEngine
) -> None:
    client, handled, _ = hook
    assert (await client.post("/tg/hook", json=_message(1, 1))).status == 403
    wrong = {SECRET_HEADER: "s3cret-tokeX"}
    assert (await client.post("/tg/hook", json=_message(1, 1), headers=wrong)).status == 403
    assert handled == [] and await _inbox_rows(engine) == {}


async def test_webhook_records_then_answers_then_processes_once(
    hook: tuple[TestClient, list[int], inbox.InboxStore], engine: AsyncEngine
) -> None:
    client, handled, _ = hook
    headers = {SECRET_HEADER: "s3cret-token"}
    for _ in range(2):  # Telegram's redelivery of the same update is a no-op
        answer = await client.post("/tg/hook", json=_message(77, 3), headers=headers)
        assert answer.status == 200
    for bad in (b"not json", b'{"update_id": "x"}', b"[1]", b'{"update_id": true}'):
        assert (await client.post("/tg/hook", data=bad, headers=headers)).status == 400
    await asyncio.sleep(0.1)
    assert handled == [77]
    row = (await _inbox_rows(engine))[77]
    # No handler committed anything for it here: it is marked done all the same.
    assert row.done_at is not None and row.payload is None
