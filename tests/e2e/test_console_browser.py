"""The web console in a real browser (Debian's Chromium, driven by Playwright), against the real
service over the Bot API emulator: the sign-in link comes by chat (/web), the pages call the same
use cases as the chat, and the household hears back in its chat.

With SCREENSHOTS=<folder> set, the overview, the case list and a case are photographed into it
(the README's pictures: `SCREENSHOTS=docs make test-console-browser`)."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from bot.sandbox.runtime import free_port
from bot.service import Service
from bot.settings import Settings
from domain import roster
from storage.tables import CaseEventRow, DeclarationRow
from tests.e2e.conftest import Chat, bind, declare, visit
from tests.sandbox.test_sandbox_browser import SLOW, browser  # noqa: F401  (the fixture)
from tests.support import SHANGHAI, FakeClock

# A Monday morning with no holiday near, so the notice's five days end on a known day.
MONDAY = datetime(2026, 11, 16, 9, 0, tzinfo=SHANGHAI)
ROSTER = [
    ["county", "township", "village_code", "village", "name", "phone", "role"],
    ["青山县", "青山镇", "QS01", "李家村", "张伟", "13800000001", "cadre"],
    ["青山县", "青山镇", "QS02", "王家村", "李娜", "13800000002", "cadre"],
    ["青山县", "青山镇", "", "", "王芳", "13800000003", "township"],
    ["青山县", "", "", "", "周明", "13800000007", "county"],
]
LINK = re.compile(r"https?://\S+/console/login/\S+")
SHOTS = os.environ.get("SCREENSHOTS")


@pytest.fixture
async def office(settings: Settings) -> AsyncIterator[tuple[Service, FakeClock]]:
    """The service on a known port (its PUBLIC_URL, which /web's links name), on a clock the test
    moves, with a roster of one county, one township, two villages."""
    port = free_port("127.0.0.1")
    clock = FakeClock(MONDAY)
    own = settings.model_copy(update={"web_port": port, "public_url": f"http://127.0.0.1:{port}"})
    async with Service(own, poll_timeout=1, clock=clock) as running:
        rows = roster.parse(list(enumerate(ROSTER, start=1)))
        async with running.uow() as uow:
            await roster.apply(uow, rows, clock.now())
            await uow.commit()
        yield running, clock


async def web_link(person: Chat) -> str:
    """Send /web in the person's chat; the one-time link the bot answers with."""
    await person.send("/web")
    said = await person.expect("网页工作台", "10 分钟")
    found = LINK.search(said.text or "")
    assert found, said.text
    return found[0]


async def sign_in(browser: Browser, person: Chat) -> Page:  # noqa: F811
    """A new browser (its own cookies) signed in with the person's link from chat."""
    context = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(SLOW)
    await page.goto(await web_link(person))
    await expect(page.locator("main")).to_contain_text(person.user.first_name)
    await page.get_by_role("button", name="登录").click()
    await expect(page).to_have_url(re.compile(r"/console/$"))
    return page


async def heard(person: Chat, *phrases: str) -> None:
    """Wait for a message from the bot that says all of `phrases`, past the ones before it."""
    for _ in range(30):
        said = (await person.emu.next_message(person.user.id, timeout=10)).text or ""
        if all(p in said for p in phrases):
            return
    raise AssertionError(f"{person.user.first_name} never heard {phrases}")


async def receipt_of(service: Service) -> str:
    async with service.sessions() as session:
        row = (await session.scalars(select(DeclarationRow))).one()
        assert row.receipt
        return row.receipt


async def events(service: Service) -> list[tuple[str, dict[str, object]]]:
    async with service.sessions() as session:
        rows = (await session.scalars(select(CaseEventRow).order_by(CaseEventRow.id))).all()
        return [(row.kind, dict(row.data or {})) for row in rows]


async def test_staff_find_a_case_and_acknowledge_it_and_the_household_hears(
    office: tuple[Service, FakeClock],
    browser: Browser,  # noqa: F811
    chat: Callable[..., Chat],
) -> None:
    service, _ = office
    staff = chat(3001, "王芳")
    await bind(service, staff, "13800000003")
    farmer = chat(1001, "王大山")
    await farmer.press(await declare(farmer), "确认提交")
    await farmer.expect("回执编号")
    await staff.expect("新申报")  # no cadre bound for 李家村: the township is told
    receipt = await receipt_of(service)

    page = await sign_in(browser, staff)
    if SHOTS:
        await page.screenshot(path=str(Path(SHOTS) / "console-overview.png"), full_page=True)
    await page.get_by_role("navigation").get_by_role("link", name="案件").click()
    await page.locator("select[name=village]").select_option("QS01")
    await page.locator("select[name=state]").select_option(label="已提交，等待村干部签收")
    await page.get_by_role("button", name="筛选").click()
    await expect(page).to_have_url(re.compile(r"village=QS01"))
    row = page.locator("tbody tr", has_text="王大山")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("李家村")
    if SHOTS:
        await page.screenshot(path=str(Path(SHOTS) / "console-cases.png"), full_page=True)
    await row.get_by_role("link", name=receipt).click()
    await expect(page.locator("main")).to_contain_text("王大山")
    await expect(page.locator("main")).to_contain_text("老伴住院")
    if SHOTS:
        await page.screenshot(path=str(Path(SHOTS) / "console-case.png"), full_page=True)
    await page.get_by_role("button", name="签收", exact=True).click()
    await expect(page.locator("main")).to_contain_text("已签收")

    # The household hears it as from a cadre acting in chat, and the history says it was the web.
    await farmer.expect("签收", "王芳")
    kinds = await events(service)
    assert ("acknowledge", {"via": "web"}) in [(k, {"via": d.get("via")}) for k, d in kinds]
    # The staff member's chat keeps step: told it is theirs now, with the next step's buttons, and
    # the 【新申报】 there no longer offers 签收.
    next_step = await staff.expect("您已签收", receipt)
    assert "记录入户核实" in next_step.button_texts
    news = next(m for m in staff.emu.history(staff.user.id) if "新申报" in (m.text or ""))
    assert news.inline_keyboard == []


async def test_a_cadre_of_another_village_neither_sees_nor_opens_the_case(
    office: tuple[Service, FakeClock],
    browser: Browser,  # noqa: F811
    chat: Callable[..., Chat],
) -> None:
    service, _ = office
    other = chat(2002, "李娜")  # cadre of 王家村 only
    await bind(service, other, "13800000002")
    farmer = chat(1001, "王大山")
    await farmer.press(await declare(farmer), "确认提交")
    await farmer.expect("回执编号")
    receipt = await receipt_of(service)

    page = await sign_in(browser, other)
    await page.goto(page.url + "cases")
    await expect(page.locator("main")).not_to_contain_text("王大山")
    await expect(page.locator("main")).not_to_contain_text(receipt)
    search = await page.goto(page.url.split("/console/")[0] + f"/console/cases?q={receipt}")
    assert search is not None and search.status == 200
    await expect(page.locator("tbody tr")).to_have_count(0)
    opened = await page.goto(page.url.split("/console/")[0] + f"/console/cases/{receipt}")
    assert opened is not None and opened.status == 404
    # The same answer as a receipt that does not exist.
    missing = await page.goto(page.url.split("/console/")[0] + "/console/cases/20990101999999")
    assert missing is not None and missing.status == 404
    assert await page.locator("main").inner_text() == await page.locator("main").inner_text()


async def test_an_expired_or_used_link_is_refused(
    office: tuple[Service, FakeClock],
    browser: Browser,  # noqa: F811
    chat: Callable[..., Chat],
) -> None:
    service, clock = office
    staff = chat(3001, "王芳")
    await bind(service, staff, "13800000003")
    page = await (await browser.new_context(locale="zh-CN")).new_page()
    page.set_default_timeout(SLOW)

    used = await web_link(staff)
    await page.goto(used)
    await page.get_by_role("button", name="登录").click()
    await expect(page).to_have_url(re.compile(r"/console/$"))
    again = await (await browser.new_context(locale="zh-CN")).new_page()
    opened = await again.goto(used)
    assert opened is not None and opened.status == 410
    await expect(again.locator("main")).to_contain_text("已经用过")

    late = await web_link(staff)
    clock.advance(minutes=11)
    stale = await again.goto(late)
    assert stale is not None and stale.status == 410
    await expect(again.locator("main")).to_contain_text("已过期")
    # Nobody is signed in on that browser: the console asks for a link.
    home = await again.goto(late.split("/console/")[0] + "/console/")
    assert home is not None and home.status == 401


async def test_the_county_records_its_review_on_the_web(
    office: tuple[Service, FakeClock],
    browser: Browser,  # noqa: F811
    chat: Callable[..., Chat],
) -> None:
    service, clock = office
    cadre = chat(2001, "张伟")
    await bind(service, cadre, "13800000001")
    staff = chat(3001, "王芳")
    await bind(service, staff, "13800000003")
    county = chat(4001, "周明")
    await bind(service, county, "13800000007")
    farmer = chat(1001, "王大山")
    await farmer.press(await declare(farmer), "确认提交")
    await farmer.expect("回执编号")
    case = await cadre.expect("新申报")
    await cadre.press(case, "签收")
    verdicts = await visit(cadre, await cadre.expect("尽快入户核实"))
    await cadre.press(verdicts, "脱贫不稳定户")
    proposed = await cadre.expect("初步认定为：脱贫不稳定户")
    await cadre.press(proposed, "民主评议已完成，开始公示")
    notice = await cadre.expect("已开始村内公示")
    clock.advance(days=5, minutes=1)
    assert await cadre.press(notice, "公示结束，报乡镇审核") == "已报乡镇审核"
    review = await staff.expect("待乡镇审核")
    await staff.press(review, "乡镇审核通过")
    approved = await staff.expect("乡镇审核已通过", "县级")
    # Township staff no longer record the county's step for it.
    assert all("县级已确认" not in text for text in approved.button_texts)
    await county.expect("待县级审定")
    receipt = await receipt_of(service)

    page = await sign_in(browser, county)
    await page.goto(page.url + f"cases/{receipt}")
    await expect(page.locator("main")).to_contain_text("王大山")
    await page.get_by_role("button", name="县级已确认，已录入系统").click()
    await expect(page.locator("main")).to_contain_text("已纳入监测")
    await heard(farmer, "正式纳入防返贫监测", "脱贫不稳定户")
    kinds = await events(service)
    assert kinds[-1][0] == "enter" and kinds[-1][1].get("via") == "web"
