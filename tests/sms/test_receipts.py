"""Delivery receipts, both ways and for both providers: pulled from the provider's query API when no
callback is configured, pushed to /sms/receipts/<token> when one is; recorded on the text."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.deadlines import PolicyRules
from bot.settings import Settings
from bot.sms.channel import SmsChannel
from domain import delivery
from domain.messages import Outgoing
from domain.model import Channel, Role
from domain.policy import load_policy
from smsapi import SmsEmulator
from smsapi.emulator import BEIJING
from storage.tables import OutboxRow, SmsSendRow
from storage.uow import SqlUnitOfWorkFactory
from tests.support import FakeClock

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).resolve().parents[2]
PHONE = "13900004444"
TOKEN = "receipts-token-0123456789"


@pytest.fixture(params=["aliyun", "tencent"])
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def emulator(clock: FakeClock) -> AsyncIterator[SmsEmulator]:
    async with SmsEmulator() as emu:
        emu.now = lambda: clock.now().astimezone(BEIJING)  # the provider's day is the service's
        yield emu


def channel_for(
    provider: str, emu: SmsEmulator, uow: SqlUnitOfWorkFactory, clock: FakeClock, *, callback: bool
) -> SmsChannel:
    settings = Settings(
        _env_file=None,
        sms_sign_name="青山镇人民政府",
        sms_templates=str(ROOT / f"sms-templates.{provider}.example.toml"),
        sms_callback_token=TOKEN if callback else None,
        **emu.settings(provider),  # type: ignore[arg-type]
    )
    config = settings.sms()
    assert config is not None
    return SmsChannel(config, uow.sessions, clock, PolicyRules(load_policy("anhui")), public_url=None)


@pytest.fixture
def texts_on() -> AsyncIterator[None]:
    before = delivery.switch_on(Channel.SMS)
    yield
    delivery.restore(before)


async def one_text_sent(uow: SqlUnitOfWorkFactory, clock: FakeClock, channel: SmsChannel) -> None:
    async with uow() as u:
        person = await u.persons.add(Role.FARMER, locale="zh_Hans")
        assert await delivery.reach_by_text(u, clock, person.id, "+86" + PHONE)
        message = Outgoing("farmer.acknowledged", {"receipt": "20261123000001", "name": "张伟"})
        assert await u.outbox.add(person.id, message, key="ack", at=clock.now())
        await u.commit()
    assert await channel.sender.drain_once() == 1


async def state(uow: SqlUnitOfWorkFactory) -> tuple[str, str | None, str | None]:
    async with uow.sessions() as session:
        row = (await session.scalars(select(OutboxRow))).one()
        send = (await session.scalars(select(SmsSendRow))).one()
    return row.status, row.last_error, send.delivery


async def test_receipts_are_pulled_when_no_callback_is_configured(
    provider: str, emulator: SmsEmulator, uow: SqlUnitOfWorkFactory, clock: FakeClock, texts_on: None
) -> None:
    channel = channel_for(provider, emulator, uow, clock, callback=False)
    try:
        await one_text_sent(uow, clock, channel)
        [text] = emulator.texts(PHONE)
        assert await channel.pull_once() == 0  # not asked before two minutes: no receipt is in yet
        await emulator.deliver(text, delivered=False)
        clock.advance(minutes=3)

        assert await channel.pull_once() == 1
        status, error, delivered = await state(uow)
        assert (
            status == "failed" and (error or "").startswith("sms undelivered") and delivered == "undelivered"
        )
        assert await channel.pull_once() == 0  # a text with its receipt is not asked about again
    finally:
        await channel.close()


async def test_receipts_pushed_to_the_callback_are_recorded_and_acknowledged_as_the_provider_expects(
    provider: str, emulator: SmsEmulator, uow: SqlUnitOfWorkFactory, clock: FakeClock, texts_on: None
) -> None:
    channel = channel_for(provider, emulator, uow, clock, callback=True)
    app = web.Application()
    channel.mount(app)
    server = TestServer(app)
    await server.start_server()
    try:
        await one_text_sent(uow, clock, channel)
        [text] = emulator.texts(PHONE)
        emulator.callback_urls[provider] = str(server.make_url(f"/sms/receipts/{TOKEN}"))

        await emulator.deliver(text, delivered=True)

        assert emulator.pushes[-1].acknowledged  # {"code":0} / {"result":0}, as each provider wants
        assert await state(uow) == ("sent", None, "delivered")
        async with aiohttp.ClientSession() as client:
            wrong = await client.post(server.make_url("/sms/receipts/not-the-token-000000"), data=b"[]")
            garbage = await client.post(server.make_url(f"/sms/receipts/{TOKEN}"), data=b"{not json")
        assert (wrong.status, garbage.status) == (404, 400)
    finally:
        await server.close()
        await channel.close()
