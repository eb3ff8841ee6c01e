"""Webhook mode, and several workers on one PostgreSQL behind a load balancer.

The emulator pushes updates to WEBHOOK_URL with the secret header, as Telegram does; with two
workers, a round-robin balancer in front of them spreads the updates, so one farmer's answers are
handled by both workers in turn.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.service import Service
from bot.settings import Settings
from storage.coordination import AnotherPoller, AnotherWorker
from tests.e2e.conftest import Chat, bind, declare, service_clock
from tests.emulator import BotAPIEmulator
from tests.support import postgres_url, seed_roster

HOOK_SECRET = "hook-secret_0123456789"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _with(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update=changes)


async def _receipt(farmer: Chat, phone: str = "13912345678") -> str:
    summary = await declare(farmer, phone=phone)
    await farmer.press(summary, "确认提交")
    return (await farmer.expect("回执编号")).text or ""


async def test_a_declaration_over_the_webhook(
    emu: BotAPIEmulator, settings: Settings, chat: Callable[..., Chat]
) -> None:
    emu.allow_http_webhooks = True
    port = _free_port()
    hooked = _with(
        settings,
        web_port=port,
        webhook_url=f"http://127.0.0.1:{port}/telegram/hook",
        webhook_secret=_secret(HOOK_SECRET),
    )
    async with Service(hooked, poll_timeout=1, clock=service_clock()) as service:
        await seed_roster(service.uow)
        assert emu.webhook_url == f"http://127.0.0.1:{port}/telegram/hook"
        cadre = chat(2001, "张伟")
        await bind(service, cadre, "13800000001")
        farmer = chat(1001, "王大山")
        await _receipt(farmer)
        await cadre.expect("新申报")
        # A request without the secret is refused; nothing comes in through getUpdates.
        async with aiohttp.ClientSession() as client:
            stranger = await client.post(f"http://127.0.0.1:{port}/telegram/hook", json={"update_id": 1})
            assert stranger.status == 403
        assert emu.calls_of("getUpdates") == []
        assert emu.webhook_deliveries and all(status == 200 for _, status in emu.webhook_deliveries)


def _secret(value: str) -> object:
    from pydantic import SecretStr

    return SecretStr(value)


async def test_a_second_worker_on_sqlite_is_refused_with_one_line(settings: Settings) -> None:
    async with Service(settings, poll_timeout=1):
        second = Service(settings, poll_timeout=1)
        with pytest.raises(AnotherWorker) as refused:
            await second.start()
        await second.stop()
    assert "\n" not in str(refused.value) and "PostgreSQL" in str(refused.value)


async def test_a_stopped_worker_deletes_its_row_and_beats_no_more(settings: Settings) -> None:
    service = Service(settings, poll_timeout=1)
    async with service:
        async with service.sessions() as session:
            assert (await session.scalar(text("SELECT count(*) FROM workers"))) == 1
    # The engine is disposed at stop; a fresh look at the same file.
    engine = create_async_engine(settings.database_url)
    try:
        for _ in range(2):  # a beat would come within a second and write the row again
            async with engine.connect() as connection:
                assert (await connection.scalar(text("SELECT count(*) FROM workers"))) == 0
            await asyncio.sleep(service.workers.beat_every + 0.2)
    finally:
        await engine.dispose()


@asynccontextmanager
async def _fresh_postgres() -> AsyncIterator[str]:
    url = postgres_url()
    assert url is not None
    name = f"w_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.rsplit("/", 1)[0] + "/" + name
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        await admin.dispose()


@asynccontextmanager
async def _balancer(port: int, backends: list[int]) -> AsyncIterator[Counter[int]]:
    """Round robin over the workers' web ports, as nginx's upstream would."""
    served: Counter[int] = Counter()
    turn = 0
    client = aiohttp.ClientSession()

    async def forward(request: web.Request) -> web.Response:
        nonlocal turn
        backend = backends[turn % len(backends)]
        turn += 1
        served[backend] += 1
        async with client.post(
            f"http://127.0.0.1:{backend}{request.path}", data=await request.read(), headers=request.headers
        ) as answer:
            return web.Response(status=answer.status, body=await answer.read())

    app = web.Application()
    app.router.add_post("/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield served
    finally:
        await runner.cleanup()
        await client.close()


async def test_two_workers_on_postgresql_share_the_webhook_postgresql(
    emu: BotAPIEmulator, settings: Settings, chat: Callable[..., Chat], tmp_path: Path
) -> None:
    emu.allow_http_webhooks = True
    front, first, second = _free_port(), _free_port(), _free_port()
    async with _fresh_postgres() as database_url, _balancer(front, [first, second]) as served:
        common = {
            "database_url": database_url,
            "webhook_url": f"http://127.0.0.1:{front}/telegram/hook",
            "webhook_secret": _secret(HOOK_SECRET),
        }
        one = Service(_with(settings, web_port=first, **common), poll_timeout=1, clock=service_clock())
        two = Service(_with(settings, web_port=second, **common), poll_timeout=1, clock=service_clock())
        async with one, two:
            await seed_roster(one.uow)
            cadre = chat(2001, "张伟")
            await bind(one, cadre, "13800000001")
            farmers = [chat(1001 + n, f"农户{n}") for n in range(4)]
            # Each its own phone: 3 declarations a day per phone, counted across the workers.
            receipts = await asyncio.gather(
                *(_receipt(farmer, f"1391234567{n}") for n, farmer in enumerate(farmers))
            )
            assert len(set(receipts)) == 4
            for _ in farmers:
                await cadre.expect("新申报")
            # Both workers took updates, and exactly one of them sent everything, once.
            assert served[first] > 0 and served[second] > 0
            senders = [s for s in (one, two) if s.leading]
            assert len(senders) == 1
            sent = Counter((call["chat_id"], call.get("text")) for call in emu.calls_of("sendMessage"))
            assert max(sent.values()) == 1
        # Polling instead: a second poller is refused with one line (Telegram serves one per token).
        polling = _with(settings, database_url=database_url, web_port=0)
        async with Service(polling, poll_timeout=1) as poller:
            third = Service(polling, poll_timeout=1)
            with pytest.raises(AnotherPoller) as refused:
                await third.start()
            await third.stop()
            assert poller.poller is not None
        assert "\n" not in str(refused.value)
