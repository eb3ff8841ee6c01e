"""A household without Telegram hears of its case by text message: the real service, the web
form over HTTP, the cadre in chat over the Bot API emulator, the texts through each provider's
API to the local SMS emulator (smsapi), and the provider's delivery receipts pushed back."""

from __future__ import annotations

import re
import tomllib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.service import Service
from bot.settings import Settings, load
from smsapi import SmsEmulator
from storage.tables import OutboxRow, SmsSendRow
from tests.e2e.conftest import SECRET, TOKEN, Chat, bind, service_clock, village_payload, visit
from tests.emulator import BotAPIEmulator
from tests.support import fill_web_form, seed_roster

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).resolve().parents[2]
PHONE = "13912345678"
CALLBACK = "receipts-token-0123456789"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(params=["aliyun", "tencent"])
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def sms(provider: str) -> AsyncIterator[SmsEmulator]:
    """The provider's side, which knows the approved signature and templates (the example file's)."""
    raw = tomllib.loads((ROOT / f"sms-templates.{provider}.example.toml").read_text(encoding="utf-8"))
    approved = {t["code"]: t["text"] for t in raw.values() if isinstance(t, dict)}
    async with SmsEmulator(sign_names={"青山镇人民政府"}, templates=approved) as emulator:
        yield emulator


@pytest.fixture
def sms_settings(emu: BotAPIEmulator, sms: SmsEmulator, provider: str, tmp_path: Path) -> Settings:
    return load(
        telegram_bot_token=TOKEN,
        telegram_api_base_url=emu.base_url,
        telegram_api_file_url=emu.base_file_url,
        database_url=f"sqlite:///{tmp_path / 'e2e.db'}",
        qr_secret=SECRET,
        id_encryption_key="e2e-id-key-0123456789abcdef",
        web_port=0,
        chat_burst=10,
        chat_rate_per_second=10.0,
        # Quiet hours (texts wait for the morning) are tested on the sender with a fake clock; here
        # the service may run at 23:30 (E2E_SERVICE_TIME in .ci/run).
        quiet_hours="-",
        sms_sign_name="青山镇人民政府",
        sms_templates=str(ROOT / f"sms-templates.{provider}.example.toml"),
        sms_callback_token=CALLBACK,
        _env_file=None,
        **sms.settings(provider),
    )


@pytest.fixture
async def service(sms_settings: Settings, sms: SmsEmulator, provider: str) -> AsyncIterator[Service]:
    async with Service(sms_settings, poll_timeout=1, clock=service_clock()) as running:
        await seed_roster(running.uow)
        sms.callback_urls[provider] = f"http://127.0.0.1:{running.web_port}/sms/receipts/{CALLBACK}"
        yield running


async def declare_on_the_web(service: Service, *, texts: bool) -> str:
    """A household fills the web form of 李家村's code; returns the page after it was sent."""
    fields = {
        "consent": "yes",
        "name": "王大山",
        "declarant": "self",
        "phone": PHONE,
        "id_number": "",
        "household": "4",
        "risks": "illness",
        "fu_illness_cost": "3万",
        "description": "老伴住院做手术，花了三万多元",
    }
    if texts:
        fields["sms_consent"] = "yes"
    url = f"http://127.0.0.1:{service.web_port}/q/{village_payload()}/form"
    _, answer = await fill_web_form(url, fields, shows='name="sms_consent"')  # texts on: the box is offered
    return answer


async def test_the_households_phone_gets_each_steps_text_in_order_once_and_receipts_come_back(
    service: Service, sms: SmsEmulator, chat: Callable[..., Chat]
) -> None:
    cadre = chat(3001, "张伟")
    await bind(service, cadre, "13800000001")
    sms.auto_deliver = True

    receipt_page = await declare_on_the_web(service, texts=True)
    received = await sms.wait_for_texts(PHONE, 1)
    found = re.search(r"\d{14}", sms.screen(PHONE)[0])
    assert found and len(received) == 1
    receipt = found[0]
    assert receipt in receipt_page

    case = await cadre.expect("新申报", receipt)
    sms.fail_next(1, "server_error")  # the provider's 500: tried again, sent once
    await cadre.press(case, "签收")
    await sms.wait_for_texts(PHONE, 2, timeout=10)
    verdicts = await visit(cadre, await cadre.expect("尽快入户核实"))
    await sms.wait_for_texts(PHONE, 3)
    await cadre.press(verdicts, "不纳入")
    await cadre.expect("理由")
    await cadre.send("经核实家庭收入稳定，医疗费用已报销")
    await cadre.expect("不纳入")
    texts = await sms.wait_for_texts(PHONE, 4)

    screen = sms.screen(PHONE)
    assert len(texts) == 4 and len({t.out_id for t in texts}) == 4  # nothing twice
    assert ["已受理" in screen[0], "签收" in screen[1], "入户核实" in screen[2], "不纳入" in screen[3]] == [
        True
    ] * 4
    assert all(s.startswith("【青山镇人民政府】") and receipt in s for s in screen)
    assert not any("医疗费用已报销" in s or "王大山" in s for s in screen)  # no reason, no name in a text
    assert sms.refused and sms.refused[-1][2] != ""  # the 500 was answered once

    await sms.settle()
    async with service.sessions() as session:
        sends = list(await session.scalars(select(SmsSendRow).order_by(SmsSendRow.id)))
        rows = list(await session.scalars(select(OutboxRow).where(OutboxRow.channel == "sms")))
    assert [s.delivery for s in sends] == ["delivered"] * 4
    assert [r.status for r in rows] == ["sent"] * 4


async def test_an_undelivered_text_is_listed_for_the_township(
    service: Service, sms: SmsEmulator, chat: Callable[..., Chat]
) -> None:
    staff = chat(4001, "王芳")
    await bind(service, staff, "13800000003")
    await declare_on_the_web(service, texts=True)
    [text] = await sms.wait_for_texts(PHONE, 1)

    await staff.expect("新申报")  # 李家村 has no cadre bound here: the case is the township's
    await sms.deliver(text, delivered=False)
    await staff.send("/failed")

    await staff.expect("短信未送达")


async def test_without_the_households_consent_nothing_is_texted(
    service: Service, sms: SmsEmulator, chat: Callable[..., Chat]
) -> None:
    cadre = chat(3001, "张伟")
    await bind(service, cadre, "13800000001")

    await declare_on_the_web(service, texts=False)
    case = await cadre.expect("新申报")
    await cadre.press(case, "签收")
    await cadre.expect("尽快入户核实")

    assert sms.texts(PHONE) == []
