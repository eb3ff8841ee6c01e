"""Take the README's screenshots of the township's console: the overview, the case list and a case.

    .venv/bin/python -m tests.console.screenshot [folder]     (docs/ when not given)

It makes docs/console-overview.png, docs/console-cases.png and docs/console-case.png, 1280 px wide,
as 王芳 (township staff of 青山镇) sees them in Chinese. Nothing of the developer's is read: a
throwaway SQLite database in a temporary folder is migrated as the tests migrate one, the roster of
tests/console/conftest is imported the real way, and about fifty households declare over the last
thirty days on a fake clock (by chat, on the web form, a few filed by their cadre). Their cases are
then moved on by the same use cases the chat and the console call (签收, 入户核实, the verdict,
公示, 乡镇审核, 县级审定, 不纳入 and the household's objection, a withdrawal), in the order of
their times, so that some are late. The console is served on a free local port, 王芳 signs in
through the one-time link /web sends, and Chromium (Debian's, driven by Playwright) photographs it.

The one ID number is the tests' own (tests/console/test_cases.ID_NUMBER); the page shows it masked.
"""

from __future__ import annotations

import asyncio
import random
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from playwright.async_api import FloatRect, Page, async_playwright, expect

from bot import console
from bot.console import ConsoleDeps
from bot.crypto import FernetProtector
from bot.deadlines import PolicyRules
from bot.sandbox.runtime import free_port
from bot.web import make_app
from domain import cases, household, web_intake
from domain.actor import WEB, Actor, actor_for
from domain.cases.objection import give_objection, start_objection
from domain.cases.steps import reject
from domain.cases.visit import record_visit
from domain.intake import submit
from domain.messages import Outcome
from domain.model import Channel, Flow, Verdict
from domain.office import logins
from domain.policy import load_policy
from qr.console_links import sign_login
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.outbox_store import OutboxStore
from storage.uow import SqlUnitOfWork, SqlUnitOfWorkFactory
from tests.console.conftest import LI, SECRET, WANG, ZHANG, ZHAO, ZHOU, seed
from tests.console.test_cases import ID_NUMBER
from tests.sandbox.test_sandbox_browser import ARGS, CHROMIUM, SLOW
from tests.support import SHANGHAI, FakeClock

WIDTH, MAX_HEIGHT, TALL = 1280, 1600, 1800  # a page taller than TALL is cut at MAX_HEIGHT
# The moment of the pictures: a Thursday afternoon, with thirty days of declarations before it.
NOW = datetime(2026, 11, 26, 15, 0, tzinfo=SHANGHAI)
FIRST = NOW - timedelta(days=29, hours=1)

# Each household's fate, oldest declaration first: the state its case is taken to, unless its next
# step would come after NOW (then it stays where it is, and may be late).
FATES = (
    "entered", "entered", "not_eligible", "entered", "closed", "entered", "approved", "not_eligible",
    "entered", "objected", "entered", "township_review", "visited", "approved", "not_eligible",
    "entered", "township_review", "withdrawn", "township_review", "not_eligible", "approved",
    "township_review", "township_review", "entered", "not_eligible", "township_review", "township_review",
    "not_eligible", "township_review", "township_review", "not_eligible", "publicizing", "proposed",
    "publicizing", "proposed", "publicizing", "visited", "not_eligible", "acknowledged", "visited",
    "withdrawn", "submitted", "visited", "visited", "acknowledged", "acknowledged", "submitted", "submitted",
)  # fmt: skip
SHOWCASE = 21  # the case photographed: 王大山's, waiting for 王芳's 乡镇审核
STEPS = {
    "submitted": (),
    "withdrawn": ("withdraw",),
    "acknowledged": ("ack",),
    "visited": ("ack", "visit"),
    "proposed": ("ack", "visit", "propose"),
    "publicizing": ("ack", "visit", "propose", "publicize"),
    "township_review": ("ack", "visit", "propose", "publicize", "close_notice"),
    "approved": ("ack", "visit", "propose", "publicize", "close_notice", "approve"),
    "entered": ("ack", "visit", "propose", "publicize", "close_notice", "approve", "enter"),
    "not_eligible": ("ack", "visit", "reject"),
    "objected": ("ack", "visit", "reject", "object"),
    "closed": ("ack", "visit", "reject", "object", "uphold"),
}
# Hours from one step to the next (a notice's close counts from the day its five days end).
GAPS: dict[str, tuple[float, ...]] = {
    "withdraw": (2, 5, 9),
    "ack": (0.5, 1, 2, 3, 4, 6, 9, 20, 26, 45),
    "visit": (18, 22, 26, 30, 44, 60),
    "propose": (20, 26, 45, 50, 70),
    "reject": (20, 26, 45, 50),
    "publicize": (2, 4, 20, 24),
    "close_notice": (1, 3, 20),
    "approve": (20, 26, 45),
    "enter": (20, 26, 50, 70),
    "object": (20, 30, 48),
    "uphold": (48, 70, 96),
}
# The villages of 青山镇 (tests/console/conftest's roster) and the cadres who act for each.
VILLAGES = ("QS01", "QS02", "QS01", "QS03", "QS02", "QS01", "QS03")
CADRES = {"QS01": (ZHANG, LI), "QS02": (LI,), "QS03": (ZHAO,)}
WEB_FORM = {3, 11, 20, 27, 38, 44}  # households without Telegram, on the web form
DAIBAO = {8, 30, 41}  # filed by their village's cadre (代报) on the web form
NAMES = (
    "张秀英", "刘建国", "陈桂兰", "杨志强", "赵玉梅", "黄德明", "周凤英", "吴长海", "徐春花", "孙永福",
    "胡秀兰", "朱国庆", "高玉珍", "林德胜", "何桂芳", "郭建华", "马秀珍", "罗永红", "梁春生", "宋玉兰",
    "郑大勇", "王大山", "谢淑芬", "韩金山", "唐秀云", "冯志刚", "于桂英", "董长青", "程红梅", "曹德福",
    "袁春兰", "邓国平", "许玉华", "傅长林", "沈桂香", "曾宪明", "彭秀梅", "吕永生", "苏金凤", "卢建军",
    "蒋玉莲", "蔡德旺", "贾秀芝", "丁长春", "魏桂珍", "薛志明", "叶玉英", "阎宝山",
)  # fmt: skip
# What a household says, by risk type: the description and the answers to its follow-up questions.
SAID: dict[str, tuple[str, dict[str, str]]] = {
    "illness": ("老伴住院做手术，花了三万多元，家里的积蓄都用完了", {"cost": "32000"}),
    "disability": ("儿子前年受伤后下肢残疾，干不了重活", {}),
    "schooling": ("两个孩子在读大学，学费和生活费交不上", {}),
    "disaster": (
        "七月暴雨，房子后墙被冲塌，玉米地也淹了", {"when": "7月18日", "damage": "后墙倒塌，三亩玉米绝收"}
    ),
    "accident": ("丈夫在工地摔伤，住院两个月，没有收入", {"cost": "18000"}),
    "business_failure": ("养的两百只鸡得了病，全死了，贷款还不上", {}),
    "unstable_job": ("在外打工的厂子倒闭了，半年没找到活", {}),
    "labour_shortage": ("家里只剩两个老人，地种不了", {}),
    "housing": ("房子漏雨，墙也裂了，冬天住着不安全", {}),
    "water": ("井里的水不能喝了，吃水要到两里外去挑", {}),
    "income_drop": ("猪价跌了，今年养猪亏了不少", {"drop": "12000"}),
    "expense_surge": ("母亲突发中风，每月药费一千多", {}),
}  # fmt: skip
RISKS = tuple(SAID)
VISIT_NOTES = (
    "入户看过，情况属实，家中确无积蓄。",
    "已入户核实，与邻居和村民小组长了解，情况基本属实。",
    "入户查看了住院票据和房屋情况，情况属实。",
)
REASONS = ("家庭人均纯收入高于监测标准，且有稳定务工收入", "已由保险理赔解决大部分费用，不属于风险户")
OBJECTION = "我家确实困难，理赔款还没到账，不同意这个结果"


@dataclass
class Household:
    n: int
    village: str
    name: str
    phone: str
    address: str  # the household's chat (households declare from chat 9001 on, as the tests do)
    risks: tuple[str, ...]
    fate: str
    cadre: str  # the chat of the cadre who acts on the case (签收, visit, verdict, notice)
    came: str  # "chat", "web" or "daibao"
    declaration_id: int = 0
    task_id: int = 0
    receipt: str = ""


@dataclass(frozen=True, order=True)
class Event:
    at: datetime
    n: int
    step: str  # "declare" or one of STEPS' actions


def daytime(moment: datetime) -> datetime:
    """The moment, or the next morning's 8 o'clock when it falls outside 8:00–19:00."""
    local = moment.astimezone(SHANGHAI)
    if local.time() < time(8):
        return datetime.combine(local.date(), time(8, local.minute), tzinfo=SHANGHAI)
    if local.time() >= time(19):
        return datetime.combine(local.date() + timedelta(days=1), time(8, local.minute), tzinfo=SHANGHAI)
    return local


def households(pick: random.Random) -> list[Household]:
    found = []
    for n, fate in enumerate(FATES):
        village = "QS01" if n == SHOWCASE else VILLAGES[n % len(VILLAGES)]
        first = RISKS[n % len(RISKS)]
        risks = (first,) if n % 3 else (first, RISKS[(n * 5 + 3) % len(RISKS)])
        if n == SHOWCASE:
            risks = ("illness", "labour_shortage")
        came = "web" if n in WEB_FORM else "daibao" if n in DAIBAO else "chat"
        found.append(
            Household(
                n=n, village=village, name=NAMES[n], phone=f"+86139000000{n + 1:02d}", address=f"{9001 + n}",
                risks=tuple(dict.fromkeys(risks)), fate=fate, cadre=pick.choice(CADRES[village]), came=came,
            )
        )  # fmt: skip
    return found


def plan(homes: list[Household], rules: PolicyRules, pick: random.Random) -> list[Event]:
    """Every declaration and step at its time, in order; none after NOW."""
    events = []
    period = int((NOW - FIRST).total_seconds())
    declared = sorted(FIRST + timedelta(seconds=pick.randrange(period)) for _ in homes)
    for home in homes:
        at = daytime(declared[home.n])
        events.append(Event(at, home.n, "declare"))
        for step in STEPS[home.fate]:
            start = rules.notice_ends(at) if step == "close_notice" else at
            at = daytime(start + timedelta(hours=pick.choice(GAPS[step]), minutes=pick.randrange(0, 50)))
            if at > NOW:
                break
            events.append(Event(at, home.n, step))
    return sorted(events)


def form_of(home: Household) -> dict[str, Any]:
    """The household's answers as the web form sends them (and as the chat's steps parse them)."""
    form: dict[str, Any] = {
        "consent": "yes", "name": home.name, "declarant": "self", "phone": home.phone,
        "household": str(3 + home.n % 4), "risks": list(home.risks),
        "description": "；".join(SAID[code][0] for code in home.risks),
    }  # fmt: skip
    for code in home.risks:
        for question, answer in SAID[code][1].items():
            form[f"fu_{code}_{question}"] = answer
    if home.n == SHOWCASE:
        form["id_number"] = ID_NUMBER  # the tests' number: the page shows it masked
        form["description"] = (
            "老伴住院做了心脏手术，花了三万多元，医保报了一半；儿子在外打工，家里只剩我们两个老人，地种不了"
        )
    return form


class Township:
    """The throwaway database, the clock, and the use cases run one transaction each."""

    def __init__(self, uow: SqlUnitOfWorkFactory, clock: FakeClock, rules: PolicyRules) -> None:
        self.uow, self.clock, self.rules = uow, clock, rules
        self.protector = FernetProtector(b"id:console")

    async def run(self, work: Callable[[SqlUnitOfWork], Awaitable[Outcome | None]], what: str) -> None:
        async with self.uow() as uow:
            outcome = await work(uow)
            await uow.commit()
        if outcome is not None and not outcome.done:
            raise RuntimeError(f"{what}: refused ({outcome.toast})")

    async def chat(self, uow: SqlUnitOfWork, address: str, via: str | None = None) -> Actor:
        actor = await actor_for(uow, self.clock, Channel.TELEGRAM, address)
        return replace(actor, via=via) if via else actor

    async def declare(self, home: Household) -> None:
        clock, rules = self.clock, self.rules

        async def work(uow: SqlUnitOfWork) -> None:
            village = await uow.geography.village_by_code(home.village)
            assert village is not None
            channel = "telegram" if home.came == "chat" else "web"
            await web_intake.record_scan(uow, clock, home.village, "2026-11" if home.n % 4 else "", channel)
            cadre = await self.chat(uow, home.cadre) if home.came == "daibao" else None
            answers = web_intake.check(
                form_of(home),
                clock=clock,
                protector=self.protector,
                filed_by_cadre=cadre.id if cadre else None,
            )
            if answers.errors:
                raise RuntimeError(f"{home.name}: {answers.errors}")
            if home.came == "chat":
                actor = await self.chat(uow, home.address)
                draft = answers.draft.with_(
                    village_id=village.id, village_name=village.name, photos_done=True
                )
                declaration = await submit(uow, clock, rules, actor, draft)
            else:
                done = await web_intake.declare(uow, clock, rules, village, answers.draft, [], cadre=cadre)
                assert done.declaration is not None, f"{home.name}: {done}"
                declaration = done.declaration
            task = await uow.tasks.for_declaration(declaration.id)
            assert task is not None
            home.declaration_id, home.task_id, home.receipt = declaration.id, task.id, declaration.receipt

        await self.run(work, f"{home.name} declares")

    async def step(self, home: Household, step: str) -> None:
        clock, rules, task = self.clock, self.rules, home.task_id
        # The showcase's visit was recorded on the console's form; everything else in chat.
        via = WEB if home.n == SHOWCASE and step == "visit" else None

        async def work(uow: SqlUnitOfWork) -> Outcome | None:
            if step == "withdraw":
                return await household.withdraw(
                    uow, clock, await self.chat(uow, home.address), home.declaration_id
                )
            if step == "object":
                person = await self.chat(uow, home.address)
                await start_objection(uow, clock, person, home.declaration_id)
                asked = await uow.conversations.get(person.id)
                assert asked is not None and asked.flow is Flow.OBJECTION
                await give_objection(uow, clock, rules, person, asked.id, home.declaration_id, OBJECTION)
                return None
            who = WANG if step in ("approve", "uphold") else ZHOU if step == "enter" else home.cadre
            actor = await self.chat(uow, who, via)
            if step == "ack":
                return await cases.acknowledge(uow, clock, rules, actor, task)
            if step == "visit":
                notes = VISIT_NOTES[home.n % len(VISIT_NOTES)]
                return await record_visit(uow, clock, rules, actor, task, "今天", notes)
            if step == "propose":
                verdict = (Verdict.UNSTABLE, Verdict.MARGINAL, Verdict.SUDDEN)[home.n % 3]
                return await cases.choose_verdict(uow, clock, rules, actor, task, verdict)
            if step == "reject":
                return await reject(uow, clock, rules, actor, task, REASONS[home.n % len(REASONS)])
            return await cases.simple_step(uow, clock, rules, actor, task, step)

        await self.run(work, f"{home.name}: {step}")

    async def more_scans(self, pick: random.Random) -> None:
        """Flyers scanned by people who did not declare (or not yet): the scans chart's bulk."""
        async with self.uow() as uow:
            for _ in range(70):
                code = pick.choice(VILLAGES)
                self.clock.current = NOW - timedelta(days=pick.randrange(0, 30))
                batch = pick.choice(("2026-11", "2026-11", "2026-10", ""))
                await web_intake.record_scan(uow, self.clock, code, batch, pick.choice(("web", "telegram")))
            await uow.commit()


async def populate(uow: SqlUnitOfWorkFactory, clock: FakeClock, rules: PolicyRules) -> Household:
    """Declare and move the cases on, in time order; the showcase household."""
    pick = random.Random(23)
    homes = households(pick)
    township = Township(uow, clock, rules)
    for event in plan(homes, rules, pick):
        clock.current = event.at
        home = homes[event.n]
        if event.step == "declare":
            await township.declare(home)
        else:
            await township.step(home, event.step)
    await township.more_scans(pick)
    clock.current = NOW
    states: Counter[str] = Counter()
    async with uow() as work:
        for home in homes:
            declaration = await work.declarations.get(home.declaration_id)
            assert declaration is not None
            states[declaration.status.value] += 1
    print("cases:", ", ".join(f"{state} {count}" for state, count in states.most_common()))
    return homes[SHOWCASE]


async def sign_in_link(uow: SqlUnitOfWorkFactory, clock: FakeClock, base: str, address: str) -> str:
    """The one-time link /web sends the person of a chat (logins.offer, as handlers/console.py)."""
    made: list[str] = []

    def link(token: str) -> str:
        made.append(f"{base}/console/login/{sign_login(SECRET, token)}")
        return made[-1]

    async with uow() as work:
        actor = await actor_for(work, clock, Channel.TELEGRAM, address)
        outcome = await logins.offer(work, clock, actor, public_url=base, link=link)
        await work.commit()
    assert outcome.done and made, "no link"
    return made[0]


async def photograph(page: Page, target: Path) -> None:
    """The whole page, its images loaded (the charts are lazy); its top MAX_HEIGHT px if over TALL."""
    loaded = await page.evaluate(
        """async () => {
            const images = [...document.images];
            for (const image of images) image.loading = "eager";
            await Promise.all(images.map(image => image.complete ? null
                : new Promise(done => { image.onload = image.onerror = done; })));
            return images.every(image => image.naturalWidth > 0);
        }"""
    )
    assert loaded, f"an image of {page.url} did not load"
    height = int(await page.evaluate("document.documentElement.scrollHeight"))
    clip = FloatRect(x=0, y=0, width=WIDTH, height=height if height <= TALL else MAX_HEIGHT)
    await page.screenshot(path=str(target), full_page=True, clip=clip)
    print(f"{target}: {WIDTH}×{clip['height']} (the page is {height} px tall)")


async def main(folder: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'console.db'}")
        try:
            await upgrade(engine)
            uow = SqlUnitOfWorkFactory(session_factory(engine))
            clock = FakeClock(FIRST - timedelta(days=1))
            await seed(uow, clock)
            rules = PolicyRules(load_policy("anhui"))
            showcase = await populate(uow, clock, rules)

            port = free_port("127.0.0.1")
            base = f"http://127.0.0.1:{port}"
            deps = ConsoleDeps(
                uow=uow, clock=clock, rules=rules, protector=FernetProtector(b"id:console"), secret=SECRET,
                public_url=base,
            )  # fmt: skip
            app = make_app(OutboxStore(session_factory(engine)))
            console.mount(app, deps)
            runner = web.AppRunner(app)
            await runner.setup()
            try:
                await web.TCPSite(runner, "127.0.0.1", port).start()
                await shoot(folder, await sign_in_link(uow, clock, base, WANG), showcase)
            finally:
                await runner.cleanup()
        finally:
            await engine.dispose()


async def shoot(folder: Path, link: str, showcase: Household) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            context = await browser.new_context(
                locale="zh-CN", viewport={"width": WIDTH, "height": 900}, device_scale_factor=1
            )
            page = await context.new_page()
            page.set_default_timeout(SLOW)
            await page.goto(link)
            await expect(page.locator("main")).to_contain_text("王芳")
            await page.get_by_role("button", name="登录").click()
            await expect(page).to_have_url(re.compile(r"/console/$"))
            await expect(page.locator("#new-this-week")).not_to_have_text("0")
            await photograph(page, folder / "console-overview.png")

            await page.get_by_role("navigation").get_by_role("link", name="案件").click()
            await expect(page.locator("tbody tr")).to_have_count(len(FATES))
            await photograph(page, folder / "console-cases.png")

            await (
                page.locator("tbody tr", has_text=showcase.name)
                .get_by_role("link", name=showcase.receipt)
                .click()
            )
            await expect(page.locator("main")).to_contain_text("1101**********4514")
            await expect(page.get_by_role("button", name="乡镇审核通过")).to_be_visible()
            await photograph(page, folder / "console-case.png")
        finally:
            await browser.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs")))
