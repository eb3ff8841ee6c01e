"""The sandbox's texts: SMS on against its own emulator, and the phone pane of the household that
declares on the web form (the form posted over HTTP as tests/e2e/test_sms.py does)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.sandbox.runtime import Sandbox, sandbox_settings
from bot.settings import load
from botapi import BotAPIEmulator
from domain import delivery
from smsapi import SmsEmulator
from smsapi.emulator import ALIYUN_KEY_ID, ALIYUN_KEY_SECRET
from tests.support import fill_web_form

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def base(sandbox: Sandbox) -> str:
    return sandbox.url.removesuffix("/sandbox")


async def state(sandbox: Sandbox) -> dict[str, Any]:
    async with aiohttp.ClientSession() as client, client.get(base(sandbox) + "/sandbox/api/state") as got:
        assert got.status == 200
        data: dict[str, Any] = await got.json()
        return data


async def declare_on_the_web(sandbox: Sandbox, phone: str) -> str:
    """The household fills the web form the phone pane opens, texts agreed; returns the page."""
    form_path = (await state(sandbox))["phone"]["form"]
    fields = {
        "consent": "yes",
        "name": sandbox.demo.texted.name,
        "declarant": "self",
        "phone": phone,
        "id_number": "",
        "household": "3",
        "risks": "illness",
        "fu_illness_cost": "2万",
        "description": "丈夫住院，家里没有收入",
        "sms_consent": "yes",
    }
    form, answer = await fill_web_form(base(sandbox) + form_path, fields, shows='name="sms_consent"')
    assert "李家村" in form
    return answer


async def phone_texts(sandbox: Sandbox, count: int) -> list[dict[str, Any]]:
    """The phone pane's texts once there are `count` of them."""
    await sandbox.sms.wait_for_texts(sandbox.demo.texted.phone, count, timeout=10)
    texts: list[dict[str, Any]] = (await state(sandbox))["phone"]["texts"]
    assert len(texts) == count
    return texts


async def test_the_sandbox_texts_and_its_phone_pane_shows_each_step(sandbox: Sandbox) -> None:
    service = sandbox.service
    assert service is not None and service.sms is not None and delivery.texts_on()
    assert service.settings.sms_endpoint == sandbox.sms.aliyun_url
    phone = (await state(sandbox))["phone"]
    assert (phone["name"], phone["number"], phone["texts"]) == ("李秀兰", "13900001111", [])
    assert phone["words"]["title"] == "手机短信" and "13900001111" in phone["words"]["hint"]
    assert "22:00" in phone["words"]["note"]  # no quiet hours in the sandbox; production's are named

    receipt_page = await declare_on_the_web(sandbox, phone["number"])
    [received] = await phone_texts(sandbox, 1)
    receipt = sandbox.sms.texts(phone["number"])[0].params["receipt"]
    assert receipt in receipt_page
    # As the phone shows it: the signature first, the template filled in, the sandbox's status page.
    assert received["text"].startswith("【青山镇人民政府】") and "已受理" in received["text"]
    assert receipt in received["text"] and base(sandbox) + "/status" in received["text"]
    assert "丈夫住院" not in received["text"] and "李秀兰" not in received["text"]

    # The cadre acknowledges the case in the cadre pane, as the page presses a button: a second text.
    cadre = sandbox.demo.pane("cadre")
    assert cadre is not None

    def the_case() -> list[Any]:
        return [m for m in sandbox.emulator.history(cadre.chat_id) if receipt in (m.text or "")]

    await sandbox.emulator.wait_until(lambda: bool(the_case()), timeout=10, what="the cadre's new case")
    [case] = the_case()
    buttons = enumerate(case.inline_keyboard)
    [(row, column)] = [(r, c) for r, line in buttons for c, b in enumerate(line) if b["text"] == "签收"]
    await sandbox.press("cadre", sandbox.epoch, case.message_id, row, column, "签收")
    texts = await phone_texts(sandbox, 2)
    assert "签收" in texts[1]["text"] and receipt in texts[1]["text"]
    assert texts[0]["date"] <= texts[1]["date"]  # newest last
    await sandbox.sms.settle()
    assert [p.acknowledged for p in sandbox.sms.pushes] == [True, True]  # receipts reached the service
    assert (await state(sandbox))["progress"]["texted"]

    # A reset empties the phone, as it empties the chats.
    await sandbox.reset()
    assert (await state(sandbox))["phone"]["texts"] == []


def test_production_sms_settings_never_reach_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMS_PROVIDER", "tencent")
    monkeypatch.setenv("SMS_KEY_ID", "AKIDproduction")
    monkeypatch.setenv("SMS_KEY_SECRET", "production-sms-secret")
    monkeypatch.setenv("SMS_SIGN_NAME", "某某镇人民政府")
    production = load(_env_file=None)
    var = tmp_path / "var"
    off = sandbox_settings(production, BotAPIEmulator(), var, web_port=0)
    assert off.sms() is None and off.sms_key_secret is None
    on = sandbox_settings(production, BotAPIEmulator(), var, web_port=8080, sms=SmsEmulator())
    config = on.sms()
    assert config is not None and config.provider == "aliyun" and config.key_id == ALIYUN_KEY_ID
    assert config.sign_name == "青山镇人民政府" and config.key_secret.get_secret_value() == ALIYUN_KEY_SECRET
    assert "AKIDproduction" not in repr(on) and "某某镇" not in repr(on)
    assert on.quiet_hours == "-"
    # The template file is the Aliyun example's, with the sandbox's own status page in its texts.
    templates = Path(config.templates).read_text("utf-8")
    assert "http://127.0.0.1:8080/status" in templates and "example.gov.cn" not in templates
