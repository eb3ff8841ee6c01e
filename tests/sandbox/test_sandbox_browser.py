"""The sandbox page in a real headless Chromium (Debian's package, driven by Playwright)."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from bot.sandbox.runtime import Sandbox
from tests.sandbox.test_sandbox_sms import declare_on_the_web

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HAVE_CHROMIUM = Path(CHROMIUM).exists()
SLOW = 15_000  # ms: the bot answers in well under a second; this only bounds a failure


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        message = f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


async def open_page(browser: Browser, sandbox: Sandbox, persona: str = "farmer") -> Page:
    page = await browser.new_page(viewport={"width": 400, "height": 760})  # a phone's screen
    page.set_default_timeout(SLOW)
    await page.goto(f"{sandbox.url}#{persona}")
    await expect(page.locator(f"#pane-{persona}")).to_be_visible()
    return page


def pane(page: Page, persona: str) -> Locator:
    return page.locator(f"#pane-{persona}")


async def say(page: Page, persona: str, text: str) -> None:
    box = pane(page, persona)
    await box.locator("input[name=text]").fill(text)
    await box.get_by_role("button", name="发送", exact=True).click()


async def last_bot_message(page: Page, persona: str, *phrases: str) -> None:
    """Wait until the bot's latest message in the pane says all of `phrases`."""
    last = pane(page, persona).locator(".msg.in .bubble").last
    for phrase in phrases:
        await expect(last).to_contain_text(phrase)


async def switch(page: Page, persona: str) -> None:
    await page.locator(f"nav button[data-persona={persona}]").click()
    await expect(pane(page, persona)).to_be_visible()


async def declare_as_farmer(page: Page, *, menu: bool = True) -> None:
    """The whole declaration as a farmer does it on the page: scan, click, type, confirm.

    The one place that knows the declaration's questions; change it when they change.
    """
    await switch(page, "farmer")
    farmer = pane(page, "farmer")
    await farmer.locator(".flyer").get_by_role("button", name="扫码", exact=True).click()
    await last_bot_message(page, "farmer", "知情同意")
    await farmer.get_by_role("button", name="同意，开始填写", exact=True).click()
    await last_bot_message(page, "farmer", "户主姓名")
    await say(page, "farmer", "王大山")
    await last_bot_message(page, "farmer", "本人")
    await farmer.get_by_role("button", name="我是户主本人", exact=True).click()
    await last_bot_message(page, "farmer", "联系电话")
    await say(page, "farmer", "13912345678")
    await last_bot_message(page, "farmer", "身份证号")
    await farmer.get_by_role("button", name="不填身份证号，跳过", exact=True).click()
    await last_bot_message(page, "farmer", "几口人")
    await farmer.get_by_role("button", name="4", exact=True).click()
    await last_bot_message(page, "farmer", "哪些困难")
    await farmer.get_by_role("button", name="因病", exact=True).click()
    await farmer.get_by_role("button", name="选好了，下一步", exact=True).click()
    await last_bot_message(page, "farmer", "多少钱")
    await say(page, "farmer", "3万")
    await last_bot_message(page, "farmer", "具体情况")
    await say(page, "farmer", "老伴住院做手术，花了三万多元")
    await last_bot_message(page, "farmer", "照片")
    await farmer.get_by_role("button", name="没有照片，跳过", exact=True).click()
    await last_bot_message(page, "farmer", "请核对", "王大山")
    await farmer.get_by_role("button", name="确认提交", exact=True).click()
    await last_bot_message(page, "farmer", "回执编号")
    if not menu:
        return
    # The receipt puts up the household's standing menu (a reply keyboard): it works on the page.
    await farmer.locator(".kbd").get_by_role("button", name="我的申报").click()
    await last_bot_message(page, "farmer", "您的申报")


async def test_declare_acknowledge_decide_and_hear_back(browser: Browser, sandbox: Sandbox) -> None:
    page = await open_page(browser, sandbox)
    await expect(page.locator(".flyer img")).to_have_js_property("complete", True)
    await declare_as_farmer(page)

    cadre_tab = page.locator("nav button[data-persona=cadre]")
    await expect(cadre_tab).to_have_class(re.compile("unread"))  # the new case waits there
    await switch(page, "cadre")
    cadre = pane(page, "cadre")
    await last_bot_message(page, "cadre", "新申报", "李家村", "因病", "王大山")
    await cadre.get_by_role("button", name="签收", exact=True).click()
    await expect(page.locator("#toast")).to_contain_text("已签收")
    await last_bot_message(page, "cadre", "尽快入户核实")
    await cadre.get_by_role("button", name="记录入户核实", exact=True).click()
    await last_bot_message(page, "cadre", "哪天去的")
    await cadre.get_by_role("button", name="今天", exact=True).click()
    await last_bot_message(page, "cadre", "核实情况怎么样")
    await say(page, "cadre", "入户看了，情况属实")
    await last_bot_message(page, "cadre", "有照片")
    await cadre.get_by_role("button", name="核实记录完成", exact=True).click()
    await last_bot_message(page, "cadre", "认定结果")
    await cadre.get_by_role("button", name="边缘易致贫户", exact=True).click()
    await last_bot_message(page, "cadre", "初步认定为：边缘易致贫户")

    await switch(page, "farmer")
    farmer = pane(page, "farmer")
    await expect(farmer).to_contain_text("已由村干部 张伟 签收")
    await last_bot_message(page, "farmer", "初步认定为：边缘易致贫户")


async def test_two_tabs_on_one_persona_stay_in_step(browser: Browser, sandbox: Sandbox) -> None:
    first = await open_page(browser, sandbox, "staff")
    second = await open_page(browser, sandbox, "staff")
    await say(first, "staff", "/help")
    for page in (first, second):
        await expect(pane(page, "staff").locator(".msg.out")).to_contain_text("/help")
        await last_bot_message(page, "staff", "请签收处理")
    # The same chat open twice is one chat: what one tab sends, the other shows, in order.
    await say(second, "staff", "/language")
    for page in (first, second):
        await last_bot_message(page, "staff", "请选择语言")
        await expect(pane(page, "staff").get_by_role("button", name="English")).to_be_visible()
    await pane(first, "staff").get_by_role("button", name="简体中文").click()
    # A persona that does not exist in the address shows the farmer instead.
    stray = await browser.new_page()
    await stray.goto(f"{sandbox.url}#mayor")
    await expect(pane(stray, "farmer")).to_be_visible()
    await last_bot_message(second, "staff", "已切换为简体中文")
    await expect(pane(second, "staff").get_by_role("button", name="简体中文")).to_have_count(0)


async def test_reset_starts_over_and_the_tour_follows_the_steps(browser: Browser, sandbox: Sandbox) -> None:
    page = await open_page(browser, sandbox)
    other = await open_page(browser, sandbox)
    await pane(page, "farmer").locator(".flyer button").click()
    await last_bot_message(page, "farmer", "知情同意")
    tour = page.locator("#tour")
    await expect(tour).to_be_hidden()  # on a phone's screen, only when asked for
    await page.locator("#tour-toggle").click()
    await expect(tour).to_contain_text("1/9")
    await tour.get_by_role("button", name="下一步").click()
    await expect(pane(page, "cadre")).to_be_visible()
    await expect(tour).to_contain_text("村干部")
    for _ in range(4):
        await tour.get_by_role("button", name="下一步").click()
    await expect(tour).to_contain_text("/notice")
    await expect(pane(page, "staff")).to_be_visible()

    page.on("dialog", lambda dialog: dialog.accept())
    await page.locator("#reset").click()
    await expect(page.locator("#toast")).to_contain_text("已重置")
    await expect(pane(page, "farmer")).to_contain_text("点「扫码」开始申报")
    # The other tab follows; an old button pressed anyway is refused politely, not acted on.
    await expect(pane(other, "farmer").locator(".msg")).to_have_count(0)
    answer = await other.evaluate(
        """async () => (await fetch('/sandbox/api/press', {method: 'POST', body: JSON.stringify(
             {persona: 'farmer', epoch: 'before-the-reset', message_id: 2, row: 0, column: 0})})).json()"""
    )
    assert answer["stale"] and "重置" in answer["error"]


async def test_the_tour_moves_on_when_a_step_is_done_and_staff_open_the_console(
    browser: Browser, sandbox: Sandbox
) -> None:
    page = await browser.new_page(viewport={"width": 1100, "height": 800})  # a projector: hints shown
    page.set_default_timeout(SLOW)
    await page.goto(sandbox.url)
    tour = page.locator("#tour")
    await expect(tour).to_contain_text("1/9")
    await declare_as_farmer(page, menu=False)
    # Submitting was the first step: the tour says so and moves on to the cadre's pane.
    await expect(page.locator("#toast")).to_contain_text("完成了")
    await expect(tour).to_contain_text("2/9")
    await expect(pane(page, "cadre")).to_be_visible()
    # Each village's cadre has a pane; only 李家村's cadre was told of 李家村's case.
    await last_bot_message(page, "cadre", "新申报", "李家村")
    await expect(pane(page, "cadre2").locator(".msg.in").first).to_contain_text("李娜")  # bound, welcomed
    await expect(pane(page, "cadre2")).not_to_contain_text("新申报")
    await pane(page, "cadre").get_by_role("button", name="签收", exact=True).click()
    await expect(tour).to_contain_text("3/9")
    for _ in range(5):
        await tour.get_by_role("button", name="下一步").click()
    await expect(tour).to_contain_text("8/9")
    await expect(pane(page, "staff")).to_be_visible()

    # The staff member opens the console from the chat, as in the township's office.
    await pane(page, "staff").get_by_role("button", name="网页工作台").click()
    await last_bot_message(page, "staff", "网页工作台", "10 分钟")
    link = pane(page, "staff").locator(".msg.in .bubble a").last
    async with page.expect_popup() as opened:
        await link.click()
    console = await opened.value
    await expect(console.locator("body")).to_contain_text("王芳")
    await console.get_by_role("button", name="登录").click()
    await expect(console).to_have_url(re.compile(r"/console/$"))
    # Signing in was the console's step: it is done, and the last step is the phone's.
    await expect(tour).to_contain_text("9/9")
    await expect(pane(page, "phone")).to_be_visible()


async def test_the_phone_pane_shows_the_texts_of_the_household_on_the_web_form(
    browser: Browser, sandbox: Sandbox
) -> None:
    page = await browser.new_page(viewport={"width": 1100, "height": 800})  # a projector: hints shown
    page.set_default_timeout(SLOW)
    await page.goto(sandbox.url)
    tour = page.locator("#tour")
    for _ in range(8):
        await tour.get_by_role("button", name="下一步").click()
    await expect(tour).to_contain_text("9/9")
    phone = pane(page, "phone")
    await expect(phone).to_be_visible()
    await expect(phone).to_contain_text("13900001111")  # the tour and the pane name the number
    await expect(phone).to_contain_text("还没有收到短信")
    async with page.expect_popup() as opened:
        await phone.get_by_role("button", name="打开李家村网页申报表").click()
    form = await opened.value
    await expect(form.locator("input[name=sms_consent]")).to_have_count(1)  # texts are on
    await form.close()

    await declare_on_the_web(sandbox, "13900001111")
    await expect(phone.locator(".msg.sms")).to_have_count(1)
    first = phone.locator(".msg.sms .bubble").first
    await expect(first).to_contain_text("【青山镇人民政府】您的防返贫监测申报已受理")  # signature first
    await switch(page, "cadre")
    await last_bot_message(page, "cadre", "新申报", "李秀兰")
    await pane(page, "cadre").get_by_role("button", name="签收", exact=True).click()
    # The second text was the tour's last step: it says so and closes.
    await expect(page.locator("#toast")).to_contain_text("完成了")
    await expect(tour).to_be_hidden()
    await switch(page, "phone")
    await expect(phone.locator(".msg.sms")).to_have_count(2)
    await expect(phone.locator(".msg.sms .bubble").last).to_contain_text("签收")
