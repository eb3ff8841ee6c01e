"""The fuzz tests' world: a seeded database, its people, and how each message reaches the use cases.

The world is the example roster (青山镇: 李家村 QS01, 王家村 QS02, 陈家村 QS03; 白水乡: 白水村 BS01)
with every roster person bound to a chat, one household with cases in several states, a farmer
half-way through a declaration, a sent notice, a campaign with a report period, a ledger item.

Every example runs in one transaction that is rolled back: `Harness.example` opens it, a
`Turn` first brings a person to some step of some conversation with valid answers (the same
messages a person would send), then delivers the fuzzed message exactly as the Telegram handlers
route it (handlers/notifications.py first, then handlers/telegram.py), and finally checks that
everything queued can be rendered in both languages and that nothing logged an error.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import limits
from bot.crypto import FernetProtector
from bot.deadlines import PolicyRules
from domain import buttons as b
from domain import (
    campaign_chat,
    campaigns,
    cases,
    deadlines,
    delivery,
    household,
    intake,
    ledger,
    notices,
    people,
    reports,
    risk_types,
    schedule,
    web_intake,
    work,
)
from domain import export as export_cases
from domain.campaigns import CampaignSpec, PhaseSpec
from domain.conversations import router
from domain.dialogue import Kind, Said
from domain.intake.draft import pending_followups
from domain.messages import Outcome, Outgoing
from domain.model import Channel, Flow, IntakeStep, NoticeStep, ReportStep
from domain.office import logins
from domain.policy import load_policy
from domain.ports import UnitOfWork
from handlers.buttons import use_case_for
from handlers.context import Services
from handlers.keyboards import render
from handlers.sheets import reports_xlsx
from handlers.xlsx import cases_workbook
from locales import catalog_for, gettext
from locales.render import value
from qr.cadre_links import sign_cadre_link
from qr.payload import PayloadError, is_village_payload, sign_village, verify_village
from storage.db import session_factory
from storage.tables import OutboxRow, PersonRow
from storage.uow import SqlUnitOfWork, SqlUnitOfWorkFactory
from tests.support import FakeClock, chat, seed_roster

TG = Channel.TELEGRAM


@dataclass(frozen=True)
class _Who:
    """The chat whose person acts, resolved in the step's own transaction."""

    address: str


START = FakeClock().now()  # 2026-11-23 10:00 in Shanghai: the world is built then
QR_SECRET = b"fuzz qr secret"
LOCALES = ("zh_Hans", "en")
# Who -> the chat they write from.
PEOPLE: dict[str, str] = {
    "stranger": "9001",  # has written once, nothing else
    "farmer": "9002",  # half-way through a declaration (at the risk types), for 王家村
    "household": "9003",  # the household whose cases these are (李家村)
    "cadre": "101",  # 张伟, 李家村 (QS01); he acknowledged the household's cases
    "cadre_two": "102",  # 李娜, 李家村 and 王家村 (QS01, QS02)
    "cadre_qs03": "105",  # 赵强, 陈家村 (QS03)
    "cadre_bs": "104",  # 刘洋, 白水村 (BS01), another township
    "staff": "103",  # 王芳, township staff of 青山镇
}
NEWCOMER = "9999"  # a chat the bot has never seen
ROSTER_PHONES = {
    "101": "13800000001",
    "102": "13800000002",
    "103": "13800000003",
    "104": "13800000004",
    "105": "13800000005",
}
# The household's cases in 李家村, and how far each has gone (its steps, in order; "wait" is 8 days,
# after which the village notice may close). A declaration typed with one's phone offers to add to it.
CASES: dict[str, tuple[str, ...]] = {
    "submitted": (),
    "acked": ("ack",),
    "visited": ("ack", "visit"),
    "refused": ("ack", "visit", "reject"),
    "proposed": ("ack", "visit", "propose"),
    "objected": ("ack", "visit", "reject", "object"),
    "publicizing": ("ack", "visit", "propose", "publicize"),
    "review": ("ack", "visit", "propose", "publicize", "wait", "close_notice"),
    "approved": ("ack", "visit", "propose", "publicize", "wait", "close_notice", "approve"),
    "entered": ("ack", "visit", "propose", "publicize", "wait", "close_notice", "approve", "enter"),
    "upheld": ("ack", "visit", "reject", "object", "uphold"),
}
CASE_PHONES = {name: f"139123450{n:02d}" for n, name in enumerate(CASES, start=1)}
BUILT = START - timedelta(days=20)  # when the cases were declared
VALID_ID = "11010519491231002X"
# The named objects of the world (World.ids), for strategies that name them.
ID_NAMES = (
    *PEOPLE,
    "township_qs",
    "township_bs",
    "QS01",
    "QS02",
    "QS03",
    "BS01",
    *(f"{name}_{kind}" for name in (*CASES, "bs", "qs03") for kind in ("declaration", "task")),
    "notice",
    "campaign",
    "phase",
    "ledger_item",
)
# Every command the handlers register (tests/fuzz/test_fuzz.py checks this stays true).
COMMANDS = (
    "start",
    "cancel",
    "language",
    "help",
    "status",
    "daibao",
    "daibao_web",
    "tasks",
    "overdue",
    "stats",
    "case",
    "export",
    "notice",
    "campaign",
    "report",
    "problem",
    "problems",
    "failed",
    "web",
)


# --- what a person sends --------------------------------------------------------------------------


@dataclass(frozen=True)
class Press:
    """An inline button pressed: its callback data, as Telegram hands it over."""

    data: str


@dataclass(frozen=True)
class Text:
    raw: str
    language: str | None = "zh-hans"  # the sender's Telegram client language (a newcomer gets it)


@dataclass(frozen=True)
class Photo:
    file_id: str
    caption: str | None = None


@dataclass(frozen=True)
class Voice:
    file_id: str
    seconds: int


@dataclass(frozen=True)
class Contact:
    phone: str
    own: bool  # the sender's own card ("share my phone number"), or someone else's


@dataclass(frozen=True)
class Other:
    """A sticker, location, or a document (which a notice may carry)."""

    kind: str = "sticker"
    file_id: str = "file"
    caption: str | None = None


@dataclass(frozen=True)
class Ref:
    """A value known only once the example runs: the presser's open conversation (`conv`), their
    draft notice (`notice`), an object of the world (a key of World.ids), plus `offset`; or the
    campaign's report period (`period`, shifted by `offset` days), a receipt number (`receipt`,
    the offset-th case), a fresh invite of a roster person (`invite`, the offset-th)."""

    kind: str
    offset: int = 0


@dataclass(frozen=True)
class Command:
    """A command and the words after it (Telegram's context.args: split on whitespace)."""

    name: str
    args: tuple[str | Ref, ...] = ()
    language: str | None = "zh-hans"


@dataclass(frozen=True)
class Mutation:
    """One change to packed callback data. `at` is taken modulo the length; `text` is inserted,
    put in place of a character or a field, or appended."""

    kind: str  # truncate | insert | replace | field | drop_field | extra | prefix | repeat
    at: int = 0
    text: str = ""


@dataclass(frozen=True)
class PressPlan:
    """A button of `cls` whose field values may be Refs, packed when delivered, then mutated."""

    cls: type[b.Button]
    values: tuple[Any, ...]
    mutations: tuple[Mutation, ...] = ()


@dataclass(frozen=True)
class Tap:
    """Press one of the buttons the sender was shown in this example (the index-th, modulo how
    many; the newest first), as a person tapping through the chat does; nothing when none was."""

    index: int


@dataclass(frozen=True)
class Wait:
    """Time passes (`minutes`) and the service's periodic jobs run, as bot/service.py runs them:
    the schedule tick, the deadline tick and the sweep of idle declarations."""

    minutes: int


@dataclass(frozen=True)
class As:
    """`message` sent by `who` instead (a walk in which someone else acts between two messages)."""

    who: str
    message: Message


@dataclass(frozen=True)
class Repeat:
    """`message` sent `times` times in a row (Back, Back, Back...)."""

    message: Message
    times: int


Message = Press | PressPlan | Tap | Text | Photo | Voice | Contact | Other | Command | Wait | As | Repeat


def mutate(data: str, mutations: tuple[Mutation, ...]) -> str:
    """`data` with each mutation applied in turn."""
    for m in mutations:
        n = len(data)
        at = m.at % (n + 1)
        parts = data.split(b.SEPARATOR)
        field_at = m.at % len(parts)
        if m.kind == "truncate":
            data = data[:at]
        elif m.kind == "insert":
            data = data[:at] + m.text + data[at:]
        elif m.kind == "replace":
            data = data[:at] + m.text + data[at + 1 :]
        elif m.kind == "field":
            parts[field_at] = m.text
            data = b.SEPARATOR.join(parts)
        elif m.kind == "drop_field" and len(parts) > 1:
            del parts[field_at]
            data = b.SEPARATOR.join(parts)
        elif m.kind == "extra":
            data = data + b.SEPARATOR + m.text
        elif m.kind == "prefix":
            data = b.SEPARATOR.join([m.text, *parts[1:]])
        elif m.kind == "repeat":
            data = data + data
    return data


# --- the world ------------------------------------------------------------------------------------


@dataclass
class World:
    """Ids of the seeded objects, by name."""

    ids: dict[str, int]
    receipts: dict[str, str]
    period: date  # the campaign's first report period

    def id_names(self) -> list[str]:
        return sorted(self.ids)


def services_for(engine: AsyncEngine) -> Services:
    """The services as bot/service.py wires them (the outbox splits long messages as in production)."""
    return Services(
        uow=SqlUnitOfWorkFactory(session_factory(engine), split=limits.splitter("zh_Hans")),
        clock=FakeClock(),
        qr_secret=QR_SECRET,
        protector=FernetProtector(b"fuzz id key"),
        rules=PolicyRules(load_policy("anhui")),
        default_locale="zh_Hans",
        wake_sender=lambda: None,
        public_url="https://fanghui.example",
    )


def _answers(village_id: int, phone: str, risks: list[str]) -> dict[str, Any]:
    return {
        "village_id": village_id,
        "name": "王大山",
        "declarant": "self",
        "phone": "+86" + phone,
        "household": 4,
        "risks": risks,
        "followups": {},
        "description": "老伴住院，花了很多钱",
        "consent_version": intake.CONSENT_VERSION,
        "consent_at": START.isoformat(),
    }


async def build_world(engine: AsyncEngine) -> World:
    """Seed a migrated database with the world, through the use cases; committed."""
    services = services_for(engine)
    factory = cast(SqlUnitOfWorkFactory, services.uow)
    clock = FakeClock(START)
    rules = services.rules
    await seed_roster(factory)
    ids: dict[str, int] = {}
    receipts: dict[str, str] = {}
    async with factory() as uow:
        for address, phone in ROSTER_PHONES.items():
            invite = await people.issue_invite(uow, clock, phone)
            token = invite.payload[len(people.INVITE_PREFIX) :]
            assert (await people.redeem_invite(uow, clock, TG, address, token)).done
        for who, address in PEOPLE.items():
            ids[who] = (await chat(uow, clock, address)).id
        for township in await uow.geography.townships():
            ids["township_" + {"青山镇": "qs", "白水乡": "bs"}[township.name]] = township.id
        for code in ("QS01", "QS02", "QS03", "BS01"):
            village = await uow.geography.village_by_code(code)
            assert village is not None
            ids[code] = village.id
        await uow.commit()

    async def step(use_case: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """One use case (given the unit of work and `args`, the first a clock) in its own
        transaction, committed; a `_Who` argument is the actor of that chat."""
        async with factory() as uow:
            resolved = [await chat(uow, args[0], a.address) if isinstance(a, _Who) else a for a in args]
            result = await use_case(uow, *resolved)
            await uow.commit()
            return result

    async def declare(u: SqlUnitOfWork, at: FakeClock, code: str, phone: str, risks: list[str]) -> str:
        householder = await u.persons.get(ids["household"])
        assert householder is not None
        declaration = await intake.submit(
            u, at, rules, householder, intake.Draft.from_json(_answers(ids[code], phone, risks))
        )
        task = await u.tasks.for_declaration(declaration.id)
        assert task is not None
        return f"{declaration.id} {task.id} {declaration.receipt}"

    cadre, staff, home = PEOPLE["cadre"], PEOPLE["staff"], PEOPLE["household"]

    async def typed(u: SqlUnitOfWork, at: FakeClock, actor: Any, raw: str) -> None:
        """Text typed in chat, as the router takes it (with the step's clock)."""
        await router.answer(u, dataclasses.replace(services, clock=at), actor, Said.typed(raw))

    for name, steps in CASES.items():
        at = FakeClock(BUILT)
        risks = ["accident"] if "propose" in steps else ["illness", "disaster"]
        found = await step(declare, at, "QS01", CASE_PHONES[name], risks)
        declaration_id, task_id, receipts[name] = found.split()
        ids[f"{name}_declaration"], ids[f"{name}_task"] = int(declaration_id), int(task_id)
        task = int(task_id)
        for action in steps:
            if action == "ack":
                assert (await step(cases.acknowledge, at, rules, _Who(cadre), task)).done
            elif action == "visit":
                await step(cases.start_visit, at, rules, _Who(cadre), task)
                for answer in ("今天", "入户看过，情况属实"):
                    await step(typed, at, _Who(cadre), answer)
                assert (
                    await step(
                        cases.finish_visit,
                        at,
                        rules,
                        _Who(cadre),
                        await _conv_of(factory, cadre),
                    )
                ).done
            elif action == "reject":
                await step(
                    cases.choose_verdict,
                    at,
                    rules,
                    _Who(cadre),
                    task,
                    b.Verdict.NOT_ELIGIBLE,
                )
                await step(typed, at, _Who(cadre), "收入超过监测标准")
            elif action == "propose":
                assert (
                    await step(
                        cases.choose_verdict,
                        at,
                        rules,
                        _Who(cadre),
                        task,
                        b.Verdict.SUDDEN,
                    )
                ).done
            elif action == "object":
                await step(
                    cases.start_objection,
                    at,
                    _Who(home),
                    int(declaration_id),
                )
                await step(typed, at, _Who(home), "我家确实困难，不同意")
            elif action == "wait":
                at.advance(days=8)
            else:
                who = cadre if action in ("publicize", "close_notice") else staff
                outcome = await step(cases.simple_step, at, rules, _Who(who), task, action)
                assert outcome.done, (name, action, outcome)
    # One case in 白水村, one in 陈家村: other cadres, another township.
    for n, (name, code) in enumerate((("bs", "BS01"), ("qs03", "QS03"))):
        found = await step(declare, clock, code, f"1391234510{n}", ["water"])
        declaration_id, task_id, receipts[name] = found.split()
        ids[f"{name}_declaration"], ids[f"{name}_task"] = int(declaration_id), int(task_id)

    async def notice(u: SqlUnitOfWork) -> int:
        staff = await u.persons.get(ids["staff"])
        assert staff is not None and staff.township_id is not None
        data = {"township_id": staff.township_id, "body": "冬季防火", "audience": {"kind": "cadres"}}
        writing = await u.conversations.start(staff.id, Flow.NOTICE, "confirm", data, clock.now())
        assert (await notices.confirm(u, clock, await chat(u, clock, PEOPLE["staff"]), writing.id)).done
        return int((await u.session.execute(text("SELECT max(id) FROM notices"))).scalar_one())

    ids["notice"] = await step(notice)

    async def campaign(u: SqlUnitOfWork) -> tuple[int, int, date]:
        n = u
        spec = CampaignSpec(
            name="集中排查",
            township="青山镇",
            villages=("QS01", "QS02"),
            phases=[
                PhaseSpec(1, "动员部署", date(2026, 12, 5)),
                PhaseSpec(2, "入户排查", date(2026, 12, 20)),
            ],
        )
        campaign_id = await campaigns.create(n, clock, spec)
        found = await u.session.execute(
            text("SELECT id FROM campaign_phases WHERE campaign_id = :c ORDER BY seq"), {"c": campaign_id}
        )
        phase = found.scalars().first()
        assert phase is not None
        stored = await n.campaigns.get(campaign_id)
        assert stored is not None
        period = reports.periods(stored.reports, stored.created_at.date(), stored.end)[0]
        return campaign_id, int(phase), period

    ids["campaign"], ids["phase"], period = await step(campaign)

    async def problem(u: SqlUnitOfWork) -> int:
        n = u
        return await n.ledger.add(
            ids["QS01"], ids["cadre"], "危房", "加固", date(2026, 12, 30), "张伟", clock.now()
        )

    ids["ledger_item"] = await step(problem)
    assert set(ids) == set(ID_NAMES), set(ids) ^ set(ID_NAMES)
    world = World(ids, receipts, period)
    # The farmer stays half-way through a declaration for 王家村 (from its QR code).
    async with factory() as uow:
        turn = Turn(uow, clock, services, world)
        await turn.drive(
            "farmer",
            "intake",
            {"entry": "qr", "village": "QS02", "risks": ("illness",)},
            99,
            until=IntakeStep.RISKS,
        )
        await uow.commit()
    return world


async def _conv_of(factory: SqlUnitOfWorkFactory, address: str) -> int:
    """The id of the open conversation of the person at `address`."""
    async with factory() as uow:
        person = await uow.persons.by_address(TG, address)
        conv = await uow.conversations.get(person.id) if person else None
        assert conv is not None
        return conv.id


# --- one example ----------------------------------------------------------------------------------


class Findings(logging.Handler):
    """Collects the errors logged while an example runs (a message that cannot be rendered is
    logged by the outbox, not raised)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def errors_logged() -> Iterator[Findings]:
    findings = Findings()
    root = logging.getLogger()
    root.addHandler(findings)
    try:
        yield findings
    finally:
        root.removeHandler(findings)


@dataclass
class Stats:
    """What the fuzz run did, for benchmarks/fuzz.py: examples by kind, failures by where."""

    examples: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)  # by where: type, file, line, function
    failures_by_kind: Counter[str] = field(default_factory=Counter)
    samples: dict[str, str] = field(default_factory=dict)
    templates: Counter[str] = field(default_factory=Counter)  # what was queued: how deep the fuzz got
    toasts: Counter[str] = field(default_factory=Counter)


STATS = Stats()


def _where(exc: BaseException) -> str:
    """The exception's type and the deepest frame in the project's code."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    root = str(Path(__file__).resolve().parents[2])
    ours = [
        f
        for f in frames
        if f.filename.startswith(root) and "/tests/" not in f.filename and "/.venv/" not in f.filename
    ]
    frame = (ours or frames)[-1] if (ours or frames) else None
    where = f"{Path(frame.filename).relative_to(root)}:{frame.lineno} in {frame.name}" if frame else "?"
    return f"{type(exc).__name__} at {where}"


class Harness:
    """A database holding the world, and a way to run examples on it."""

    def __init__(self, engine: AsyncEngine, world: World) -> None:
        self.engine = engine
        self.world = world
        self.services = services_for(engine)
        self.factory = cast(SqlUnitOfWorkFactory, self.services.uow)

    async def example(
        self,
        kind: str,
        who: str,
        situation: tuple[str, str, dict[str, Any], int],
        message: Message | tuple[Message, ...],
        *,
        shift: timedelta = timedelta(0),
    ) -> None:
        """Bring `situation`'s person to its step, deliver `message` (or each of several) from
        `who`, check, roll back.

        `situation` is (its person, flow, path options, number of valid moves); flow "none" leaves
        everyone where the world has them. Any exception, or an error logged, fails the example.
        """
        STATS.examples[kind] += 1
        clock = FakeClock(START + shift)
        try:
            with errors_logged() as findings:
                async with self.factory() as uow:
                    turn = Turn(uow, clock, self.services, self.world)
                    await turn.begin()
                    subject, flow, options, moves = situation
                    if flow != "none":
                        await turn.drive(subject, flow, options, moves)
                    for each in message if isinstance(message, tuple) else (message,):
                        await turn.deliver(who, each)
                    await turn.check()
                    # Leaving the block rolls the example back.
            if findings.records:
                logged = "; ".join(f"{r.name}: {r.getMessage()}" for r in findings.records)
                info = findings.records[0].exc_info
                raise AssertionError(f"errors logged: {logged}") from (info[1] if info else None)
        except Exception as exc:
            where = _where(exc.__cause__ or exc)
            STATS.failures[where] += 1
            STATS.failures_by_kind[kind] += 1
            STATS.samples.setdefault(where, f"{kind}: {who} {situation!r} {message!r}"[:2000])
            raise


class Turn:
    """One example's transaction: delivers messages as the handlers do, and checks what was queued."""

    def __init__(self, uow: SqlUnitOfWork, clock: FakeClock, services: Services, world: World) -> None:
        self.uow = uow
        self.clock = clock
        self.services = services
        self.world = world
        self.first_outbox = 0
        self.outcomes: list[Outcome] = []
        self.shown: dict[int, list[str]] = {}  # person -> the buttons queued for them, newest first
        self._seen = 0
        self._ids: dict[str, int] = {}
        self.touched: set[str] = set()  # who wrote in this example

    @property
    def n(self) -> UnitOfWork:
        return cast(UnitOfWork, self.uow)

    async def begin(self) -> None:
        self.first_outbox = self._seen = int(
            await self.uow.session.scalar(select(func.max(OutboxRow.id))) or 0
        )

    async def _note_shown(self, person_id: int | None, edits: list[Outgoing]) -> None:
        """Remember the buttons queued since the last look, and those of a redrawn message."""
        rows = await self.uow.session.execute(
            select(OutboxRow.id, OutboxRow.person_id, OutboxRow.payload).where(OutboxRow.id > self._seen)
        )
        for row_id, owner, payload in rows.all():
            self._seen = max(self._seen, row_id)
            for line in payload.get("actions") or ():
                self.shown.setdefault(owner, [])[:0] = [str(item[0]) for item in line]
        if person_id is not None:
            for edit in edits:
                self.shown.setdefault(person_id, [])[:0] = [a.data for line in edit.actions for a in line]

    async def person_id(self, who: str) -> int | None:
        """The id of the person writing from `who`'s chat (None while nobody has written from it)."""
        self.touched.add(who)
        if who not in self._ids:
            person = await self.uow.persons.by_address(TG, PEOPLE.get(who, who))
            if person is None:
                return None
            self._ids[who] = person.id
        return self._ids[who]

    async def resolve(self, who: str, ref: Ref) -> Any:
        """A Ref's value; an id is at least 1 (a button cannot carry 0 or less)."""
        if ref.kind == "period":
            return min(b.LAST_DAY, max(b.FIRST_DAY, self.world.period + timedelta(days=ref.offset)))
        if ref.kind == "receipt":
            receipts = sorted(self.world.receipts.values())
            return receipts[ref.offset % len(receipts)]
        if ref.kind == "invite":
            phones = sorted(ROSTER_PHONES.values())
            invite = await people.issue_invite(self.uow, self.clock, phones[ref.offset % len(phones)])
            return invite.payload
        found: int | None = None
        person_id = await self.person_id(who)
        if ref.kind == "conv" and person_id is not None:
            conv = await self.uow.conversations.get(person_id)
            found = conv.id if conv else None
        elif ref.kind == "notice":
            found = self.world.ids["notice"]  # the notice sent (one being written is the "conv")
        elif ref.kind in self.world.ids:
            found = self.world.ids[ref.kind]
        return max(1, min(b.MAX_ID, (found or 1) + ref.offset))

    async def packed(self, who: str, plan: PressPlan) -> str:
        values = [await self.resolve(who, v) if isinstance(v, Ref) else v for v in plan.values]
        return mutate(plan.cls(*values).pack(), plan.mutations)

    # --- delivering, as handlers/notifications.py (group -1) and handlers/telegram.py route it ---

    async def deliver(self, who: str, message: Message) -> None:
        before = len(self.outcomes)
        await self._deliver(who, PEOPLE.get(who, who), message)
        edits = [o.edit for o in self.outcomes[before:] if o.edit is not None]
        await self._note_shown(await self.person_id(who), edits)

    async def _deliver(self, who: str, address: str, message: Message) -> None:
        uow, n, clock, s = self.uow, self.n, self.clock, self.services
        if isinstance(message, As):
            await self.deliver(message.who, message.message)
            return
        if isinstance(message, Repeat):
            for _ in range(message.times):
                await self.deliver(who, message.message)
            return
        if isinstance(message, Wait):
            clock.advance(minutes=message.minutes)
            policy = cast(PolicyRules, s.rules).policy
            quiet = schedule.QuietHours(policy.quiet_start, policy.quiet_end)
            await schedule.tick(n, clock, schedule.default_handlers(), quiet)
            await deadlines.tick(uow, clock, s.rules)
            await router.sweep_drafts(uow, clock)
            return
        if isinstance(message, Tap):
            person_id = await self.person_id(who)
            offered = self.shown.get(person_id, []) if person_id is not None else []
            if not offered:
                return
            message = Press(offered[message.index % len(offered)])
        if isinstance(message, PressPlan):
            message = Press(await self.packed(who, message))
        if isinstance(message, Press):
            use_case = use_case_for(message.data, s)
            if use_case is None:
                self.outcomes.append(Outcome(toast="button.invalid", done=False))
                return
            outcome = await use_case(uow, clock, await chat(uow, clock, address))
            assert isinstance(outcome, Outcome), f"{message.data!r} gave {outcome!r}"
            self.outcomes.append(outcome)
        elif isinstance(message, Text):
            # As handlers.telegram.text: the router takes it to the open conversation.
            actor = await chat(uow, clock, address, language=message.language)
            await router.answer(uow, s, actor, Said.typed(message.raw))
        elif isinstance(message, Command):
            words = [str(await self.resolve(who, a)) if isinstance(a, Ref) else a for a in message.args]
            await self._command(address, message.name, tuple(" ".join(words).split()), message.language)
        else:
            actor = await chat(uow, clock, address)
            if isinstance(message, Photo):
                said = Said(Kind.PHOTO, message.caption or "", ref=message.file_id)
            elif isinstance(message, Other) and message.kind == "document":
                said = Said(Kind.DOCUMENT, message.caption or "", ref=message.file_id)
            elif isinstance(message, Voice):
                said = Said(Kind.VOICE, ref=message.file_id, seconds=message.seconds)
            elif isinstance(message, Contact):
                said = Said(Kind.CONTACT, message.phone, own=message.own)
            else:
                said = Said(Kind.OTHER)
            await router.answer(uow, s, actor, said)

    async def _command(self, address: str, name: str, args: tuple[str, ...], language: str | None) -> None:
        uow, n, clock, s = self.uow, self.n, self.clock, self.services
        if name == "start" and args:
            await self._start_with_payload(address, args[0], language)
            return
        actor = await chat(uow, clock, address, language=language)
        # Group -1 first: the notification engine's commands, and its /cancel when it has a draft.
        if name == "notice":
            await notices.start(n, clock, actor)
        elif name == "campaign":
            await campaign_chat.start(n, clock, actor)
        elif name == "report":
            await reports.show(n, clock, actor)
            data = await reports.export_for(n, clock, actor)
            if data is not None and data.reports:
                reports_xlsx(data, catalog_for(None, s.default_locale))
        elif name == "problem":
            await ledger.start(n, clock, actor)
        elif name == "problems":
            await ledger.show(n, clock, actor)
        elif name == "failed":
            await delivery.show_failed(n, clock, actor)
        elif name == "cancel":
            await router.cancel(uow, clock, actor, None)
        elif name == "start" and args:
            await self._start_with_payload(address, args[0], language)
        elif name == "start":
            await intake.start(uow, clock, actor, village_code=None)
        elif name == "language":
            await people.offer_languages(uow, clock, actor)
        elif name == "status":
            await household.my_declarations(uow, clock, actor)
        elif name == "daibao":
            await intake.start_for_household(uow, clock, actor)
        elif name == "daibao_web":

            def link(person: Any, village: Any) -> str:
                token = sign_cadre_link(s.qr_secret, person.id, village.code, clock.now())
                return f"{s.public_url}/d/{token}/form"

            await web_intake.offer_links(uow, clock, actor, public_url=s.public_url, link=link, minutes=30)
        elif name == "web":
            await logins.offer(
                uow, clock, actor, public_url=s.public_url, link=lambda token: f"/console/login/{token}"
            )
        elif name == "tasks":
            await work.my_tasks(uow, clock, actor)
        elif name == "overdue":
            await work.overdue(uow, clock, actor)
        elif name == "stats":
            await work.stats(uow, clock, actor)
        elif name == "case":
            await work.history(uow, clock, actor, args[0] if args else "")
        elif name == "export":
            await self._export(address, args)
        else:  # /help, and any command we do not know
            await people.show_help(uow, clock, actor)

    async def _start_with_payload(self, address: str, payload: str, language: str | None) -> None:
        """As handlers.telegram.start_with_payload, in this example's transaction."""
        uow, clock = self.uow, self.clock
        if payload.startswith(people.INVITE_PREFIX):
            token = payload[len(people.INVITE_PREFIX) :]
            self._ids.clear()  # an invite binds the chat to another person
            self.outcomes.append(await people.redeem_invite(uow, clock, TG, address, token))
            return
        code: str | None = None
        problem: str | None = None
        try:
            if not is_village_payload(payload):
                raise PayloadError("malformed")
            scanned = verify_village(self.services.qr_secret, payload, clock.now().date())
            code = scanned.village_code
            await web_intake.record_scan(cast(Any, uow), clock, code, scanned.batch, "telegram")
        except PayloadError as exc:
            problem = {
                "malformed": "start.bad_payload",
                "forged": "start.bad_payload",
                "expired": "start.expired_payload",
            }[exc.reason]
        await intake.start(
            uow, clock, await chat(uow, clock, address, language=language), village_code=code, problem=problem
        )

    async def _export(self, address: str, args: tuple[str, ...]) -> None:
        """As handlers.telegram.export, without sending the file."""
        s, now = self.services, self.clock.now()
        person = await chat(self.uow, self.clock, address)
        catalog = catalog_for(person.locale, s.default_locale)
        try:
            export_cases.may_export(person)
            days = export_cases.period(list(args), now.date())
            since, until = days.bounds(now.tzinfo)
            rows = await export_cases.rows(
                self.uow, s.protector, township_name=None, since=since, until=until, requester=person
            )
        except export_cases.ExportRefused as exc:
            gettext(catalog, exc.key).format(**exc.params)
            return
        cases_workbook(rows, export_cases.COLUMNS, catalog, now.tzinfo or UTC)

    # --- the checks -------------------------------------------------------------------------------

    async def check(self) -> None:
        """What the handlers and the sender would do next must work: render each outcome (toast
        and redrawn message) and each queued message in both languages; every queued button must
        parse; an open declaration can still ask its question."""
        for outcome in self.outcomes:
            STATS.toasts[outcome.toast or ""] += 1
            catalog = catalog_for(outcome.locale, self.services.default_locale)
            if outcome.edit is not None:
                self._render(outcome.edit, catalog)
            if outcome.toast:
                params = {k: value(v, catalog) for k, v in outcome.params.items()}
                gettext(catalog, outcome.toast).format(**params)
        rows = await self.uow.session.execute(
            select(OutboxRow.payload, PersonRow.locale)
            .join(PersonRow, PersonRow.id == OutboxRow.person_id)
            .where(OutboxRow.id > self.first_outbox)
        )
        for payload, locale in rows.all():
            message = Outgoing.from_json(payload)
            STATS.templates[message.template] += 1
            for action in (a for row in message.actions for a in row):
                assert isinstance(action.button, b.Button), f"queued button does not parse: {action.button!r}"
            self._render(message, catalog_for(locale, self.services.default_locale))
            for catalog in LOCALES:
                self._render(message, catalog)
        for who in sorted(self.touched):
            person_id = await self.person_id(who)
            conv = await self.uow.conversations.get(person_id) if person_id else None
            if conv is not None and conv.flow is Flow.INTAKE:
                await intake.prompt(self.uow, conv)

    @staticmethod
    def _render(message: Outgoing, catalog: str) -> None:
        body, _ = render(message, catalog)
        limit = limits.CAPTION_LIMIT if message.media is not None else limits.TEXT_LIMIT
        # Too long is cut by the sender (and logged); it must still be something to send.
        limits.clip(body, limit)

    # --- valid answers, to bring a person to a step ---------------------------------------------

    async def drive(
        self, who: str, flow: str, options: dict[str, Any], moves: int, *, until: str | None = None
    ) -> None:
        """Start `flow` for `who` and make up to `moves` valid answers (fewer when the flow ends,
        or on reaching step `until`)."""
        first = await self._opening(who, flow, options)
        if first is None:
            return
        await self.deliver(who, first)
        state: dict[str, Any] = {}
        for _ in range(moves):
            step, move = await self._next(who, flow, options, state)
            if move is None or (until is not None and step == until):
                return
            await self.deliver(who, move)

    async def _opening(self, who: str, flow: str, options: dict[str, Any]) -> Message | None:
        ids = self.world.ids
        if flow == "intake":
            entry = options.get("entry", "plain")
            if entry == "qr":
                payload = sign_village(QR_SECRET, options.get("village", "QS01"), date(2027, 12, 31))
                return Command("start", (payload,))
            return Command("daibao" if entry == "daibao" else "start")
        openings: dict[str, Message] = {
            "visit": Press(b.Step(ids["acked_task"], "visit").pack()),
            "reason": Press(b.ChooseVerdict(ids["visited_task"], b.Verdict.NOT_ELIGIBLE).pack()),
            "objection": Press(b.Object(ids["refused_declaration"]).pack()),
            "add_info": Press(b.AddInfo(ids[options.get("declaration", "acked_declaration")]).pack()),
            "notice": Command("notice"),
            "campaign": Command("campaign"),
            "report": Press(b.FillReport(ids["campaign"], self.world.period, ids["QS01"]).pack()),
            "ledger": Command("problem"),
        }
        return openings.get(flow)

    async def _next(
        self, who: str, flow: str, options: dict[str, Any], state: dict[str, Any]
    ) -> tuple[str | None, Message | None]:
        """The step `who` is at in `flow`, and a valid answer to it (None: the flow is over)."""
        person_id = await self.person_id(who)
        assert person_id is not None
        if flow in ("notice", "report", "ledger"):
            return await self._next_draft(person_id, flow, options, state)
        conv = await self.uow.conversations.get(person_id)
        wanted = {
            "intake": Flow.INTAKE,
            "visit": Flow.VISIT,
            "reason": Flow.VERDICT_REASON,
            "objection": Flow.OBJECTION,
            "add_info": Flow.ADD_INFO,
            "campaign": Flow.CAMPAIGN,
        }
        if conv is None or conv.flow is not wanted[flow]:
            return None, None
        c, data = conv.id, conv.data
        if flow == "intake":
            return conv.step, await self._next_intake(conv.id, IntakeStep(conv.step), data, options, state)
        if flow == "visit":
            if conv.step == "date":
                return conv.step, Press(b.VisitDay(c, 0).pack()) if options.get("press") else Text(
                    "2026-11-22"
                )
            if conv.step == "notes":
                return conv.step, Text("入户核实，家中确有困难")
            if len(data.get("photos", [])) < options.get("photos", 1):
                return conv.step, Photo(f"visit-photo-{len(data.get('photos', []))}")
            return conv.step, Press(b.VisitDone(c).pack())
        if flow == "reason":
            return conv.step, Text("家庭收入超过监测标准")
        if flow == "objection":
            return conv.step, Text("我家确实困难，不同意这个结论")
        if flow == "add_info":
            count = int(data.get("count", 0))
            if count < options.get("items", 2):
                kinds: list[Message] = [
                    Text("补充：医院发票"),
                    Photo(f"add-photo-{count}"),
                    Voice("add-voice", 9),
                ]
                return conv.step, kinds[count % 3]
            return conv.step, Press(b.AddDone(c).pack())
        # campaign
        step = conv.step
        if step == campaign_chat.NAME:
            return step, Text("冬季集中排查")
        if step == campaign_chat.VILLAGES:
            if not state.get("village_chosen") and options.get("villages", True):
                state["village_chosen"] = True
                return step, Press(b.CampaignVillage(c, "QS01").pack())
            return step, Press(b.CampaignVillage(c, "*next").pack())
        if step == campaign_chat.RHYTHM:
            return step, Press(b.CampaignRhythm(c, options.get("rhythm", "weekly")).pack())
        if step == campaign_chat.DATES:
            return step, Text("2026-12-10；12月25日")
        if step == campaign_chat.PHASES:
            return step, Text("动员部署 2026-12-05\n入户排查，12月20日")
        if step == campaign_chat.REMINDERS:
            if options.get("typed_reminders"):
                return step, Text("3;1;0")
            return step, Press(b.CampaignDefaultReminders(c).pack())
        return step, Press(b.CampaignConfirm(c, "yes").pack())

    async def _next_intake(
        self, c: int, step: IntakeStep, data: dict[str, Any], options: dict[str, Any], state: dict[str, Any]
    ) -> Message | None:
        """A valid answer to `step`; once an answer was changed from the summary (`edit`), the
        answers asked again are different ones (another village, name, phone, risk types...)."""
        S = IntakeStep
        typed = options.get("typed", False)
        again = bool(state.get("edited"))
        ids = self.world.ids
        code = options.get("village_after", "QS03") if again else options.get("village", "QS01")
        if step is S.CONSENT:
            return Press(b.Consent(c, "yes").pack())
        if step is S.TOWNSHIP:
            if typed:
                return Text("青山镇" if code.startswith("QS") else "白水乡")
            township = ids["township_qs" if code.startswith("QS") else "township_bs"]
            return Press(b.ChooseTownship(c, township).pack())
        if step is S.VILLAGE:
            if data.get("cadre_villages"):
                choices = await self.uow.geography.villages(tuple(data["cadre_villages"]))
            elif data.get("township_id"):
                choices = await self.uow.geography.villages_in(int(data["township_id"]))
            else:
                choices = await self.uow.geography.all_villages()
            village = next((v for v in choices if v.code == code), choices[-1] if again else choices[0])
            return Text(village.name) if typed else Press(b.ChooseVillage(c, village.id).pack())
        if step is S.NAME:
            return Text("李小红" if again else "王大山")
        if step is S.DECLARANT:
            who = options.get("declarant", "self")
            if again:
                who = "self" if who == "family" else "family"
            return Press(b.ChooseDeclarant(c, who).pack())
        if step is S.RELATION:
            return Text("儿媳") if typed else Press(b.ChooseRelation(c, "spouse").pack())
        if step is S.PHONE:
            if data.get("offered") and options.get("add_to_existing"):
                return Press(b.AddToExisting(c, int(data["offered"])).pack())
            phone = CASE_PHONES["acked"] if options.get("repeat") else "13987654321"
            phone = "13711112222" if again else phone
            if options.get("contact"):
                return Contact("+86" + phone, own=True)
            return Text(phone)
        if step is S.ID_NUMBER:
            give = bool(options.get("id")) != again
            return Text(VALID_ID) if give else Press(b.SkipId(c).pack())
        if step is S.HOUSEHOLD:
            size = 6 if again else 4
            return Text(f"{size}口人") if typed else Press(b.HouseholdSize(c, size).pack())
        if step is S.RISKS:
            chosen = options.get("risks_after") if again else None
            wanted = [r for r in chosen or options.get("risks", ("illness",)) if risk_types.by_code(r)]
            wanted = wanted or ["illness"]
            extra = [r for r in data.get("risks", []) if r not in wanted]
            missing = [r for r in wanted if r not in data.get("risks", [])]
            if extra or missing:
                code = (extra or missing)[0]
                risk = risk_types.by_code(code)
                assert risk is not None
                return Text(risk.label("zh_Hans")) if typed else Press(b.ToggleRisk(c, code).pack())
            return Press(b.RisksDone(c).pack())
        if step is S.FOLLOWUP:
            question = pending_followups(intake.Draft.from_json(data))[0].split(".")[1]
            kind = risk_types.FOLLOWUPS[question]
            return Text({"amount": "5000元", "date": "2026-11-20", "text": "房屋倒塌两间"}[kind])
        if step is S.DESCRIPTION:
            voice = bool(options.get("voice")) != again
            return Voice("voice-1", 12) if voice else Text("老伴住院，花了很多钱")
        if step is S.PHOTOS:
            photos = len(data.get("photos", []))
            if photos < options.get("photos", 0) + again:
                return Photo(f"photo-{photos}")
            return Press(b.PhotosDone(c).pack())
        # the summary: change one answer first, when asked to
        edit = options.get("edit")
        if edit and not state.get("edited"):
            state["edited"] = True
            return Press(b.EditAnswer(c, edit).pack())
        if options.get("submit", True):
            return Press(b.Confirm(c).pack())
        return None

    async def _next_draft(
        self, person_id: int, flow: str, options: dict[str, Any], state: dict[str, Any]
    ) -> tuple[str | None, Message | None]:
        conv = await self.uow.conversations.get(person_id)
        if conv is None or conv.flow.value != flow:
            return None, None
        c, data = conv.id, conv.data
        if flow == "notice":
            step = NoticeStep(conv.step)
            if step is NoticeStep.TEXT:
                if options.get("photo"):
                    return step.value, Photo("notice-photo", caption=options.get("caption"))
                return step.value, Text("冬季防火，请各村做好排查")
            if step is NoticeStep.AUDIENCE:
                return step.value, Press(
                    b.NoticeAudience(c, b.Audience(options.get("audience", "villages"))).pack()
                )
            if step is NoticeStep.VILLAGES:
                if not data.get("audience", {}).get("villages"):
                    return step.value, Press(b.NoticeVillage(c, self.world.ids["QS01"]).pack())
                return step.value, Press(b.NoticeVillagesDone(c).pack())
            if step is NoticeStep.WHEN:
                return step.value, Press(b.NoticeWhen(c, options.get("when", "later")).pack())
            if step is NoticeStep.TIME:
                return step.value, Text("2026-12-01 09:00")
            if step is NoticeStep.CONFIRM:
                return step.value, Press(b.NoticeSend(c).pack())
            return None, None
        if flow == "report":
            answers = {
                ReportStep.VISITED: "12",
                ReportStep.NEW_RISKS: "1户",
                ReportStep.FOUND: "２",
                ReportStep.CLOSED: "1",
                ReportStep.NOTE: "无",
            }
            return conv.step, Text(answers[ReportStep(conv.step)])
        if conv.step == "village":
            return conv.step, Press(b.LedgerVillage(c, self.world.ids["QS02"]).pack())
        answers_by_step = {
            "what": "村东头危房",
            "measure": "加固屋顶",
            "deadline": "12-20",
            "responsible": "李娜",
        }
        return conv.step, Text(answers_by_step[conv.step])


# Every flow, who is in it, the options its path may take, and its steps (for the record).
FLOWS: dict[str, tuple[tuple[str, ...], dict[str, tuple[Any, ...]]]] = {
    "intake": (
        ("stranger", "household", "farmer", "cadre", "cadre_two"),
        {
            "entry": ("qr", "plain", "daibao"),
            "village": ("QS01", "QS02", "QS03", "BS01"),
            "typed": (False, True),
            "declarant": ("self", "family"),
            "repeat": (False, True),
            "add_to_existing": (True, False),
            "contact": (False, True),
            "id": (False, True),
            "risks": (
                ("illness",),
                ("disaster", "schooling"),
                ("accident", "income_drop", "illness"),
                ("water",),
            ),
            "risks_after": (None, ("water",), ("disaster",), ("schooling", "illness")),
            "village_after": ("QS03", "QS02", "BS01"),
            "voice": (False, True),
            "photos": (0, 1, 5),
            "edit": (
                None,
                "village",
                "name",
                "declarant",
                "phone",
                "id_number",
                "household",
                "risks",
                "description",
                "photos",
            ),
            "submit": (True, False),
        },
    ),
    "visit": (("cadre", "cadre_two", "staff"), {"press": (True, False), "photos": (0, 1, 5)}),
    "reason": (("cadre", "cadre_two"), {}),
    "objection": (("household",), {}),
    "add_info": (
        ("household",),
        {"items": (0, 1, 3), "declaration": ("acked_declaration", "submitted_declaration")},
    ),
    "notice": (
        ("staff", "cadre"),
        {
            "photo": (False, True),
            "caption": (None, "冬季防火", "13800000001"),
            "audience": ("villages", "cadres", "staff"),
            "when": ("later", "now"),
        },
    ),
    "campaign": (
        ("staff",),
        {
            "villages": (True, False),
            "rhythm": ("weekly", "half-monthly", "monthly", "dates"),
            "typed_reminders": (False, True),
        },
    ),
    "report": (("cadre", "cadre_two"), {}),
    "ledger": (("cadre", "cadre_two"), {}),
}
MAX_MOVES = 32  # enough for the longest path: a declaration with five photos, one answer changed
