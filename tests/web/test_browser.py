"""End to end: the running service with the Bot API emulator; the web form in a real headless
Chromium on a phone-sized screen, and the cadre's chat that then receives the case."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, expect

from bot.service import Service
from bot.settings import Settings, load
from tests.e2e.conftest import (  # noqa: F401 (fixtures)
    SECRET,
    TOKEN,
    Chat,
    bind,
    chat,
    emu,
    service,
    village_payload,
)
from tests.emulator import BotAPIEmulator
from tests.sandbox.test_sandbox_browser import browser  # noqa: F401 (fixture)

PUBLIC_URL = "https://fanghui.example"
RECEIPT = re.compile(r"^\d{14}$")
PHONE_SCREEN = {"width": 375, "height": 667}
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 5000


@pytest.fixture
def settings(emu: BotAPIEmulator, tmp_path: Path) -> Settings:  # noqa: F811 (the e2e one, plus PUBLIC_URL)
    return load(
        telegram_bot_token=TOKEN,
        telegram_api_base_url=emu.base_url,
        telegram_api_file_url=emu.base_file_url,
        database_url=f"sqlite:///{tmp_path / 'web-e2e.db'}",
        qr_secret=SECRET,
        id_encryption_key="web-e2e-id-key-0123456789",
        bot_username=None,
        web_port=0,
        public_url=PUBLIC_URL,
        chat_burst=10,
        _env_file=None,
    )


def local(running: Service) -> str:
    return f"http://127.0.0.1:{running.web_port}"


async def test_a_household_declares_in_a_phone_browser_and_the_cadre_gets_the_case(
    browser: Browser,  # noqa: F811
    service: Service,  # noqa: F811
    chat: Callable[..., Chat],  # noqa: F811
    tmp_path: Path,
) -> None:
    cadre = chat(5001, "张伟")
    await bind(service, cadre, "13800000001")  # 张伟, cadre of 李家村 (QS01)
    payload = village_payload("QS01")
    photo = tmp_path / "house.jpg"
    photo.write_bytes(JPEG)
    page = await browser.new_page(viewport=PHONE_SCREEN, locale="zh-CN")  # a phone in China
    page.set_default_timeout(15_000)
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    landing = await page.goto(f"{local(service)}/q/{payload}")
    assert landing is not None and landing.status == 200
    await expect(page.get_by_role("heading")).to_contain_text("李家村")
    telegram = page.get_by_role("link", name="在 Telegram 中打开")
    assert await telegram.get_attribute("href") == f"https://t.me/fanghui_test_bot?start={payload}"
    # The style sheet under /static/ is applied (the CSP allows it; nothing inline is needed).
    await expect(telegram).to_have_css("background-color", "rgb(26, 115, 232)")
    await page.get_by_role("link", name="没有 Telegram？在网页上填写").click()
    await expect(page.get_by_role("heading")).to_contain_text("困难申报")
    await page.get_by_label("我已阅读并同意").check()
    await page.locator("#name").fill("王大山")
    await page.get_by_label("我是户主本人").check()
    await page.locator("#phone").fill("13912345678")
    await page.locator("#household").fill("4")
    await page.locator("input[name=risks][value=illness]").check()
    await page.locator("#fu_illness_cost").fill("3万")
    await page.locator("#description").fill("老伴住院做手术，花了三万多元")
    await page.locator("#photos").set_input_files(str(photo))
    started = time.monotonic()
    await page.get_by_role("button", name="提交申报").click()
    receipt = page.locator("#receipt")
    await expect(receipt).to_have_text(RECEIPT)
    submitted_in = time.monotonic() - started
    number = (await receipt.text_content() or "").strip()
    assert submitted_in < 5, submitted_in
    print(f"submit to receipt: {submitted_in * 1000:.0f} ms")  # shown with pytest -s
    assert blocked == []  # the style sheet is the site's own (style-src 'self'); nothing else is needed
    # The case reaches the village cadre's chat as a chat declaration does.
    message = await cadre.expect("新申报", number, "王大山", "李家村")
    assert message.reply_markup is not None  # with its 签收 button
    # The photo uploaded on the page follows, as a photo in the chat, with the receipt number.
    picture = await cadre.expect()
    assert picture.kind == "photo"
    assert number in picture.to_api()["caption"]
    assert cadre.emu.file_bytes(picture.to_api()["photo"][-1]["file_id"]) == JPEG
    await page.close()


async def test_a_browser_in_english_gets_the_pages_in_english_and_can_switch(
    browser: Browser,  # noqa: F811
    service: Service,  # noqa: F811
) -> None:
    page = await browser.new_page(viewport=PHONE_SCREEN, locale="en-US")
    page.set_default_timeout(15_000)
    await page.goto(f"{local(service)}/q/{village_payload('QS01')}")
    await expect(page.get_by_role("link", name="Open in Telegram")).to_be_visible()
    await page.get_by_role("link", name="No Telegram? Fill in the form on the web").click()
    await expect(page.get_by_role("button", name="Submit the declaration")).to_be_visible()
    await page.get_by_role("link", name="简体中文").click()
    await expect(page.get_by_role("button", name="提交申报")).to_be_visible()
    await page.goto(f"{local(service)}/status")  # the choice is remembered
    await expect(page.get_by_role("button", name="查询")).to_be_visible()
    await page.close()


async def test_daibao_web_gives_a_cadre_links_for_their_villages_only(
    service: Service,  # noqa: F811
    chat: Callable[..., Chat],  # noqa: F811
) -> None:
    li = chat(5002, "李娜")
    await bind(service, li, "13800000002")  # 李娜: 李家村 and 王家村
    await li.emu.send_command(li.user, "daibao_web")
    links = await li.expect("李家村", "王家村", f"{PUBLIC_URL}/d/")
    urls = [word for word in (links.text or "").split() if "/d/" in word]
    assert len(urls) == 2
    path = urls[0][urls[0].index("/d/") :].rstrip("：:")
    async with aiohttp.ClientSession() as http, http.get(local(service) + path) as response:
        assert response.status == 200
        assert "代报" in await response.text()
    farmer = chat(5003, "农户")
    await farmer.emu.send_command(farmer.user, "daibao_web")
    await farmer.expect("代报只能由已绑定的村干部使用")


async def test_a_telegram_scan_is_counted(service: Service, chat: Callable[..., Chat]) -> None:  # noqa: F811
    farmer = chat(5004, "农户")
    await farmer.emu.send_command(farmer.user, "start", village_payload("QS02"))
    await farmer.expect("王家村")
    async with service.uow() as uow:
        totals = await uow.scans.totals()
    assert [(t.village_code, t.batch, t.web, t.telegram) for t in totals] == [("QS02", "", 0, 1)]
