"""The authorization matrix: every registered button and every command, tried by every role.

For each button class there is a row: how to make a valid-looking button naming somebody's
object, and which roles may press it. Every other role is refused and the database does not
change at all; an allowed role is not refused for want of a right. A button class or a command
without a row fails the test, so the matrix cannot go stale.

It runs the use cases exactly as the Telegram layer does (handlers.buttons.use_case_for, the same
use cases the command handlers call) on a real SQLite database, copied fresh for every press.
"""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import text

from bot.crypto import FernetProtector
from bot.deadlines import PolicyRules
from domain import buttons as b
from domain import (
    campaign_chat,
    campaigns,
    cases,
    delivery,
    household,
    intake,
    ledger,
    notices,
    people,
    reports,
    work,
)
from domain.actor import Actor
from domain.campaigns import CampaignSpec, PhaseSpec
from domain.conversations import router
from domain.messages import Outcome, Outgoing
from domain.model import Channel, Flow
from domain.office import logins
from domain.policy import load_policy
from handlers import console, notifications, telegram, web_links
from handlers.buttons import ROUTES, use_case_for
from handlers.context import Services
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.tables import Base
from storage.uow import SqlUnitOfWorkFactory
from tests.support import SHANGHAI, FakeClock, chat

TG = Channel.TELEGRAM
ROSTER = """township,village_code,village,name,phone,role
青山镇,QS01,李家村,张伟,13800000001,cadre
青山镇,QS02,王家村,李娜,13800000002,cadre
青山镇,,,王芳,13800000003,township
白水乡,BS01,白水村,刘洋,13800000004,cadre
白水乡,,,陈静,13800000006,township
"""
# Role -> the chat it presses from.
ROLES = {
    "stranger": "9001",  # wrote to the bot once, nothing else
    "farmer": "9002",  # another household, declaring in another township
    "household": "9003",  # the household whose case it is
    "cadre": "101",  # the case's village cadre (张伟, 李家村)
    "cadre_other_village": "102",  # 李娜, 王家村, same township
    "cadre_other_township": "104",  # 刘洋, 白水乡
    "staff": "103",  # 王芳, 青山镇
    "staff_other_township": "106",  # 陈静, 白水乡
}
CADRE_PHONES = {
    "101": "13800000001",
    "102": "13800000002",
    "103": "13800000003",
    "104": "13800000004",
    "106": "13800000006",
}
# Answers that say the presser has no right to the object (or that it is not theirs to see).
REFUSALS = {
    "button.invalid", "intake.stale_button", "intake.already_submitted", "case.not_allowed",
    "case.not_yours", "case.township_only", "case.not_found", "case.not_a_colleague",
    "case.colleague_unreachable", "status.not_open", "notice.gone", "campaign.not_yours",
    "report.not_yours", "ledger.gone", "ledger.not_yours", "case.step_done", "notice.villages_none",
    "campaign.chat_gone",
}  # fmt: skip


@dataclass
class World:
    """Ids of the objects in the seeded database."""

    ids: dict[str, int]


def _answers(village_id: int, phone: str) -> dict[str, Any]:
    return {
        "village_id": village_id,
        "name": "王大山",
        "declarant": "self",
        "phone": phone,
        "household": 4,
        "risks": ["illness", "disaster"],
        "followups": {},
        "description": "老伴住院",
        "consent_version": intake.CONSENT_VERSION,
        "consent_at": "2026-11-23T09:00:00+08:00",
    }


async def _build(path: Path, clock: FakeClock, services: Services) -> World:
    """Townships, bound people, cases in several states, a notice, a campaign, a ledger item."""
    from bot.roster_file import read_rows
    from domain import roster

    roster_file = path.parent / "roster.csv"
    roster_file.write_text(ROSTER, encoding="utf-8")
    ids: dict[str, int] = {}
    uow_factory = services.uow
    async with uow_factory() as uow:
        await roster.apply(uow, roster.parse(read_rows(roster_file)))
        await uow.commit()
    async with uow_factory() as uow:
        for address, phone in CADRE_PHONES.items():
            invite = await people.issue_invite(uow, clock, phone)
            await people.redeem_invite(uow, clock, TG, address, invite.payload[len(people.INVITE_PREFIX) :])
        for role in ("stranger", "farmer", "household"):
            ids[role] = (await chat(uow, clock, ROLES[role])).id
        for role, address in ROLES.items():
            person = await uow.persons.by_address(TG, address)
            assert person is not None, role
            ids[role] = person.id
        qs01 = await uow.geography.village_by_code("QS01")
        qs02 = await uow.geography.village_by_code("QS02")
        assert qs01 is not None and qs02 is not None
        ids["QS01"], ids["QS02"], ids["township"] = qs01.id, qs02.id, qs01.township_id
        household_person = await uow.persons.get(ids["household"])
        assert household_person is not None
        # One case waiting to be acknowledged, one acknowledged by 张伟, one refused (not eligible).
        for name, phone in (
            ("submitted", "13912345001"),
            ("acked", "13912345002"),
            ("refused", "13912345003"),
        ):
            declaration = await intake.submit(
                uow, clock, services.rules, household_person, intake.Draft.from_json(_answers(qs01.id, phone))
            )
            task = await uow.tasks.for_declaration(declaration.id)
            assert task is not None
            ids[f"{name}_declaration"], ids[f"{name}_task"] = declaration.id, task.id
        await uow.commit()
    for name in ("acked", "refused"):
        async with uow_factory() as uow:
            outcome = await cases.acknowledge(
                uow, clock, services.rules, await chat(uow, clock, ROLES["cadre"]), ids[f"{name}_task"]
            )
            assert outcome.done, outcome
            await uow.commit()
    async with uow_factory() as uow:
        # The refused case: visited and judged not eligible, straight through the use cases.
        conv = await uow.conversations.start(
            ids["cadre"], Flow.VISIT, "photos",
            {"task_id": ids["refused_task"], "date": "2026-11-23", "notes": "看过", "photos": []},
            clock.now(),
        )  # fmt: skip
        await uow.commit()
    async with uow_factory() as uow:
        assert (
            await cases.finish_visit(
                uow, clock, services.rules, await chat(uow, clock, ROLES["cadre"]), conv.id
            )
        ).done
        await uow.commit()
    async with uow_factory() as uow:
        task = await uow.tasks.get(ids["refused_task"])
        cadre = await uow.persons.get(ids["cadre"])
        assert task is not None and cadre is not None
        await cases.choose_verdict(
            uow,
            clock,
            services.rules,
            await chat(uow, clock, ROLES["cadre"]),
            task.id,
            b.Verdict.NOT_ELIGIBLE,
        )
        conv2 = await uow.conversations.get(cadre.id)
        assert conv2 is not None
        await cases.give_reason(uow, clock, services.rules, cadre, conv2.id, task.id, "收入超过标准")
        await uow.commit()
    nuow = cast(Any, uow_factory)
    async with nuow() as uow:
        staff = await uow.persons.get(ids["staff"])
        data = {"township_id": staff.township_id, "body": "冬季防火", "audience": {"kind": "cadres"}}
        writing = await uow.conversations.start(staff.id, Flow.NOTICE, "confirm", data, clock.now())
        await uow.commit()
    async with nuow() as uow:
        assert (await notices.confirm(uow, clock, await chat(uow, clock, ROLES["staff"]), writing.id)).done
        ids["notice"] = int((await uow._session.execute(text("SELECT max(id) FROM notices"))).scalar_one())
        await uow.commit()
    async with nuow() as uow:
        spec = CampaignSpec(
            name="集中排查",
            township="青山镇",
            villages=("QS01", "QS02"),
            phases=[PhaseSpec(1, "集中排查", date(2026, 12, 20))],
        )
        ids["campaign"] = await campaigns.create(uow, clock, spec)
        ids["phase"] = int(
            (
                await uow._session.execute(
                    text("SELECT id FROM campaign_phases WHERE campaign_id = :c"), {"c": ids["campaign"]}
                )
            ).scalar_one()
        )
        ids["ledger_item"] = await uow.ledger.add(
            qs01.id, ids["cadre"], "危房", "加固", date(2026, 12, 30), "张伟", clock.now()
        )
        await uow.commit()
    return World(ids)


# --- the rows: how to make each button, and who may press it -------------------------------------

Make = Callable[[World, Any, FakeClock], Awaitable[b.Button]]
ALL = set(ROLES)
CADRES = {"cadre", "cadre_other_village", "cadre_other_township"}
STAFF = {"staff", "staff_other_township"}


async def _intake_conv(world: World, uow: Any, clock: FakeClock) -> int:
    """The household's open declaration (a new one, at the consent question)."""
    await intake.start(uow, clock, await chat(uow, clock, ROLES["household"]), village_code="QS01")
    conv = await uow.conversations.get(world.ids["household"])
    return int(conv.id)


def _at(step: str, **extra: Any) -> Callable[[World, Any, FakeClock], Awaitable[int]]:
    """The household's open declaration, answered up to `step` (the answers a summary holds)."""

    async def build(world: World, uow: Any, clock: FakeClock) -> int:
        conv_id = await _intake_conv(world, uow, clock)
        conv = await uow.conversations.get(world.ids["household"])
        resolved = {
            k: world.ids[v[1:]] if isinstance(v, str) and v.startswith("@") else v for k, v in extra.items()
        }
        data = {**conv.data, **_answers(world.ids["QS01"], "13912345099"), "history": ["consent"], **resolved}
        await uow.conversations.update(conv_id, step, data, clock.now())
        return conv_id

    return build


def _step_button(step: str, cls: type[b.Button], *args: Any, **extra: Any) -> Make:
    """A button of the household's declaration at `step`; an arg may be a world key ("@QS01")."""

    async def make(world: World, uow: Any, clock: FakeClock) -> b.Button:
        conv_id = await _at(step, **extra)(world, uow, clock)
        values = [world.ids[a[1:]] if isinstance(a, str) and a.startswith("@") else a for a in args]
        return cls(conv_id, *values)

    return make


def _conv_button(cls: type[b.Button], *args: Any) -> Make:
    async def make(world: World, uow: Any, clock: FakeClock) -> b.Button:
        return cls(await _intake_conv(world, uow, clock), *args)

    return make


async def _visit_conv(world: World, uow: Any, clock: FakeClock, step: str = "date") -> int:
    conv = await uow.conversations.start(
        world.ids["cadre"],
        Flow.VISIT,
        step,
        {"task_id": world.ids["acked_task"], "photos": [], "date": "2026-11-24", "notes": "看过"},
        clock.now(),
    )
    return int(conv.id)


async def _add_conv(world: World, uow: Any, clock: FakeClock) -> int:
    person = await uow.persons.get(world.ids["household"])
    declaration = await uow.declarations.get(world.ids["acked_declaration"])
    await household.begin_adding(uow, clock, person, declaration)
    return int((await uow.conversations.get(person.id)).id)


def _campaign_at(step: str) -> Callable[[World, Any, FakeClock], Awaitable[int]]:
    """Staff's campaign being defined in chat, at `step` (its name and villages given)."""

    async def build(world: World, uow: Any, clock: FakeClock) -> int:
        await campaign_chat.start(uow, clock, await chat(uow, clock, ROLES["staff"]))
        conv = await uow.conversations.get(world.ids["staff"])
        data = {**conv.data, "name": "冬春排查", "villages": ["QS01"], "phases": [["集中排查", "2026-12-20"]]}
        await uow.conversations.update(conv.id, step, data, clock.now())
        return int(conv.id)

    return build


async def _notice_draft(world: World, uow: Any, clock: FakeClock, step: str, chosen: bool = False) -> int:
    """Staff writing a notice (their conversation), at `step`."""
    staff = await uow.persons.get(world.ids["staff"])
    villages = [world.ids["QS01"]] if chosen else []
    data = {
        "township_id": staff.township_id,
        "body": "通知",
        "audience": {"kind": "villages", "villages": villages},
    }
    conv = await uow.conversations.start(staff.id, Flow.NOTICE, step, data, clock.now())
    return int(conv.id)


async def _switching(world: World, uow: Any, clock: FakeClock) -> int:
    """The household's declaration, with adding to a case waiting for it to be dropped."""
    conv_id = await _intake_conv(world, uow, clock)
    person = await uow.persons.get(world.ids["household"])
    declaration = await uow.declarations.get(world.ids["acked_declaration"])
    await household.begin_adding(uow, clock, person, declaration)  # asks: drop the declaration?
    return conv_id


async def _ledger_draft(world: World, uow: Any, clock: FakeClock) -> int:
    await ledger.start(uow, clock, await chat(uow, clock, ROLES["cadre"]))
    return int((await uow.conversations.get(world.ids["cadre"])).id)


def _fixed(make: Callable[[World], b.Button]) -> Make:
    async def build(world: World, uow: Any, clock: FakeClock) -> b.Button:
        return make(world)

    return build


def _with(
    prepare: Callable[[World, Any, FakeClock], Awaitable[Any]], make: Callable[[World, Any], b.Button]
) -> Make:
    async def build(world: World, uow: Any, clock: FakeClock) -> b.Button:
        return make(world, await prepare(world, uow, clock))

    return build


async def _period(world: World, uow: Any, clock: FakeClock) -> date:
    campaign = await uow.campaigns.get(world.ids["campaign"])
    return reports.periods(campaign.reports, campaign.created_at.date(), campaign.end)[0]


def PRESS_CLOCK() -> FakeClock:
    """Presses come two days after the world was made: its three declarations are not today's."""
    return FakeClock(datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI))


I = "household"  # noqa: E741 - the intake rows' owner
ROWS: dict[type[b.Button], tuple[Make, set[str]]] = {
    b.Consent: (_conv_button(b.Consent, "yes"), {I}),
    b.TextsConsent: (_step_button("sms_consent", b.TextsConsent, "yes"), {I}),
    b.ChooseTownship: (_step_button("township", b.ChooseTownship, "@township"), {I}),
    b.ChooseVillage: (_step_button("village", b.ChooseVillage, "@QS01", township_id="@township"), {I}),
    b.ChooseDeclarant: (_step_button("declarant", b.ChooseDeclarant, "self"), {I}),
    b.ChooseRelation: (_step_button("relation", b.ChooseRelation, "spouse", declarant="family"), {I}),
    b.SkipId: (_step_button("id_number", b.SkipId), {I}),
    b.HouseholdSize: (_step_button("household", b.HouseholdSize, 3), {I}),
    b.ToggleRisk: (_step_button("risks", b.ToggleRisk, "illness"), {I}),
    b.RisksDone: (_step_button("risks", b.RisksDone), {I}),
    b.PhotosDone: (_step_button("photos", b.PhotosDone), {I}),
    b.Confirm: (_step_button("confirm", b.Confirm, id_answered=True, description_done=True), {I}),
    b.EditAnswer: (_step_button("confirm", b.EditAnswer, "name"), {I}),
    b.Back: (_conv_button(b.Back), {I}),
    # Offered in this conversation? It never was: no one may add to the case through it.
    b.AddToExisting: (
        _with(
            lambda w, u, c: _intake_conv(w, u, c), lambda w, c: b.AddToExisting(c, w.ids["acked_declaration"])
        ),
        set(),
    ),
    b.Cancel: (_conv_button(b.Cancel), {I}),
    b.Acknowledge: (_fixed(lambda w: b.Acknowledge(w.ids["submitted_task"])), {"cadre"}),
    b.Step: (_fixed(lambda w: b.Step(w.ids["acked_task"], "visit")), {"cadre"}),
    b.ChooseVerdict: (_fixed(lambda w: b.ChooseVerdict(w.ids["acked_task"], b.Verdict.UNSTABLE)), set()),
    b.VisitDay: (_with(_visit_conv, lambda w, c: b.VisitDay(c, 0)), {"cadre"}),
    b.VisitDone: (
        _with(lambda w, u, c: _visit_conv(w, u, c, "photos"), lambda w, c: b.VisitDone(c)),
        {"cadre"},
    ),
    b.OfferHandOver: (_fixed(lambda w: b.OfferHandOver(w.ids["acked_task"])), {"cadre", "staff"}),
    b.HandTo: (_fixed(lambda w: b.HandTo(w.ids["acked_task"], w.ids["cadre_other_village"])), set()),
    b.Object: (_fixed(lambda w: b.Object(w.ids["refused_declaration"])), {I}),
    b.OpenTask: (_fixed(lambda w: b.OpenTask(w.ids["acked_task"])), {"cadre", "staff"}),
    b.AddInfo: (_fixed(lambda w: b.AddInfo(w.ids["acked_declaration"])), {I}),
    b.AddDone: (_with(_add_conv, lambda w, c: b.AddDone(c)), {I}),
    b.Withdraw: (_fixed(lambda w: b.Withdraw(w.ids["submitted_declaration"])), {I}),
    b.WithdrawYes: (_fixed(lambda w: b.WithdrawYes(w.ids["submitted_declaration"])), {I}),
    b.ChooseLanguage: (_fixed(lambda w: b.ChooseLanguage("en")), ALL),  # one's own setting
    b.NoticeAck: (_fixed(lambda w: b.NoticeAck(w.ids["notice"])), {"cadre", "cadre_other_village"}),
    b.NoticeStatus: (_fixed(lambda w: b.NoticeStatus(w.ids["notice"])), {"staff"}),
    b.NoticeRemind: (_fixed(lambda w: b.NoticeRemind(w.ids["notice"])), {"staff"}),
    b.NoticeSend: (
        _with(lambda w, u, c: _notice_draft(w, u, c, "confirm", chosen=True), lambda w, n: b.NoticeSend(n)),
        {"staff"},
    ),
    b.Switch: (_with(_switching, lambda w, c: b.Switch(c, "keep")), {I}),
    b.NoticeAudience: (
        _with(
            lambda w, u, c: _notice_draft(w, u, c, "audience"),
            lambda w, n: b.NoticeAudience(n, b.Audience.CADRES),
        ),
        {"staff"},
    ),
    b.NoticeVillage: (
        _with(
            lambda w, u, c: _notice_draft(w, u, c, "villages"), lambda w, n: b.NoticeVillage(n, w.ids["QS01"])
        ),
        {"staff"},
    ),
    b.NoticeVillagesDone: (
        _with(
            lambda w, u, c: _notice_draft(w, u, c, "villages", chosen=True),
            lambda w, n: b.NoticeVillagesDone(n),
        ),
        {"staff"},
    ),
    b.NoticeWhen: (
        _with(lambda w, u, c: _notice_draft(w, u, c, "when"), lambda w, n: b.NoticeWhen(n, "now")),
        {"staff"},
    ),
    b.CampaignVillage: (
        _with(_campaign_at(campaign_chat.VILLAGES), lambda w, c: b.CampaignVillage(c, "QS02")),
        {"staff"},
    ),
    b.CampaignRhythm: (
        _with(_campaign_at(campaign_chat.RHYTHM), lambda w, c: b.CampaignRhythm(c, "weekly")),
        {"staff"},
    ),
    b.CampaignDefaultReminders: (
        _with(_campaign_at(campaign_chat.REMINDERS), lambda w, c: b.CampaignDefaultReminders(c)),
        {"staff"},
    ),
    b.CampaignConfirm: (
        _with(_campaign_at(campaign_chat.CONFIRM), lambda w, c: b.CampaignConfirm(c, "no")),
        {"staff"},
    ),
    b.PhaseDone: (_fixed(lambda w: b.PhaseDone(w.ids["phase"], w.ids["QS01"])), {"cadre"}),
    b.FillReport: (_with(_period, lambda w, p: b.FillReport(w.ids["campaign"], p, w.ids["QS01"])), {"cadre"}),
    # 张伟 has one village, so his draft skips the village question: nobody may answer it.
    b.LedgerVillage: (_with(_ledger_draft, lambda w, c: b.LedgerVillage(c, w.ids["QS01"])), set()),
    b.LedgerClose: (_fixed(lambda w: b.LedgerClose(w.ids["ledger_item"])), {"cadre"}),
}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, World]:
    """The seeded database, built once; every press runs on a fresh copy of it."""
    import asyncio

    path = tmp_path_factory.mktemp("matrix") / "base.db"

    async def build() -> World:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        await upgrade(engine)
        try:
            return await _build(path, FakeClock(), _services(engine))
        finally:
            await engine.dispose()

    return path, asyncio.run(build())


def _services(engine: Any, clock: FakeClock | None = None) -> Services:
    return Services(
        uow=SqlUnitOfWorkFactory(session_factory(engine)),
        clock=clock or FakeClock(),
        qr_secret=b"matrix",
        protector=FernetProtector(b"id:matrix"),
        rules=PolicyRules(load_policy("anhui")),
        default_locale="zh_Hans",
        wake_sender=lambda: None,
    )


async def _snapshot(engine: Any) -> dict[str, list[tuple[Any, ...]]]:
    async with engine.connect() as connection:
        return {
            table: [
                tuple(row) for row in await connection.execute(text(f'SELECT * FROM "{table}" ORDER BY 1'))
            ]
            for table in Base.metadata.tables
        }


def test_every_button_has_a_row() -> None:
    assert set(ROWS) == set(b.REGISTRY.values()) == set(ROUTES)


@pytest.mark.parametrize("cls", list(ROWS), ids=lambda cls: cls.prefix)
async def test_a_press_is_allowed_only_to_who_may(
    cls: type[b.Button], base: tuple[Path, World], tmp_path: Path
) -> None:
    path, world = base
    make, allowed = ROWS[cls]
    wrong: list[str] = []
    for role, address in ROLES.items():
        copy = tmp_path / f"{role}.db"
        shutil.copyfile(path, copy)
        engine = create_engine(f"sqlite+aiosqlite:///{copy}")
        try:
            services = _services(engine, PRESS_CLOCK())
            async with services.uow() as uow:
                button = await make(world, uow, cast(FakeClock, services.clock))
                await uow.commit()
            assert b.parse(button.pack()) == button
            before = await _snapshot(engine)
            use_case = use_case_for(button.pack(), services)
            assert use_case is not None
            async with services.uow() as uow:
                actor = await chat(uow, services.clock, address)
                outcome: Outcome = await use_case(uow, services.clock, actor)
                await uow.commit()
            refused = outcome.toast in REFUSALS and not outcome.done
            if role in allowed:
                if refused:
                    wrong.append(f"{role} was refused ({outcome.toast})")
            elif not refused:
                wrong.append(f"{role} was not refused ({outcome.toast}, done={outcome.done})")
            elif await _snapshot(engine) != before:
                wrong.append(f"{role} was refused but the database changed")
        finally:
            await engine.dispose()
    assert not wrong, f"{cls.__name__}: " + "; ".join(wrong)


# --- commands ---------------------------------------------------------------------------------------

Command = Callable[[Any, FakeClock, Actor, Services], Awaitable[Any]]


async def _export(uow: Any, clock: FakeClock, person: Actor, s: Services) -> None:
    from domain import export

    now = clock.now()
    try:
        await export.rows(uow, s.protector, township_name=None, since=now, until=now, requester=person)
    except export.ExportRefused as exc:
        await uow.outbox.add(person.id, Outgoing(exc.key), at=now)  # what the handler says
        return
    await uow.outbox.add(person.id, Outgoing("work.exported"), at=now)


async def _daibao_web(uow: Any, clock: FakeClock, actor: Actor, s: Services) -> None:
    from domain import web_intake

    await web_intake.offer_links(
        uow,
        clock,
        actor,
        public_url="https://example.invalid",
        link=lambda p, v: "x",
        minutes=10,
    )


# Each command as its handler runs it, and who may use it (everyone else gets a refusal).
EVERYONE = ALL
CADRES = CADRES
STAFF = STAFF
COMMANDS: dict[str, tuple[Command, set[str]]] = {
    "start": (lambda u, c, a, s: intake.start(u, c, a, village_code=None), EVERYONE),
    "cancel": (lambda u, c, a, s: router.cancel(u, c, a, None), EVERYONE),
    "language": (lambda u, c, a, s: people.offer_languages(u, c, a), EVERYONE),
    "help": (lambda u, c, a, s: people.show_help(u, c, a), EVERYONE),
    "status": (lambda u, c, a, s: household.my_declarations(u, c, a), EVERYONE),
    "daibao": (lambda u, c, a, s: intake.start_for_household(u, c, a), CADRES),
    "daibao_web": (_daibao_web, CADRES),
    "tasks": (lambda u, c, a, s: work.my_tasks(u, c, a), CADRES | STAFF),
    "overdue": (lambda u, c, a, s: work.overdue(u, c, a), STAFF),
    "stats": (lambda u, c, a, s: work.stats(u, c, a), STAFF),
    "case": (lambda u, c, a, s: work.history(u, c, a, "QS01-RECEIPT"), {"staff", "cadre"}),
    "export": (_export, STAFF),
    "notice": (lambda u, c, a, s: notices.start(u, c, a), STAFF),
    "campaign": (lambda u, c, a, s: campaign_chat.start(u, c, a), STAFF),
    "report": (lambda u, c, a, s: reports.show(u, c, a), STAFF),
    "problem": (lambda u, c, a, s: ledger.start(u, c, a), CADRES),
    "problems": (lambda u, c, a, s: ledger.show(u, c, a), CADRES | STAFF),
    "failed": (lambda u, c, a, s: delivery.show_failed(u, c, a), STAFF),
    "web": (
        lambda u, c, a, s: logins.offer(u, c, a, public_url="https://example.invalid", link=lambda t: t),
        CADRES | STAFF,
    ),
}  # fmt: skip
# What a command says to someone who may not use it.
REFUSED_TEMPLATES = {
    "work.township_only", "work.staff_only", "work.case_not_found", "daibao.not_cadre",
    "notice.not_allowed", "campaign.chat_not_allowed", "sender.staff_only", "report.staff_only",
    "ledger.cadres_only", "console.not_for_you",
}  # fmt: skip


def _registered_commands() -> set[str]:
    from telegram.ext import CommandHandler

    found: set[str] = set()
    for handler in (
        *telegram.commands(),
        *notifications.commands(),
        *web_links.commands(),
        *console.commands(),
    ):
        if isinstance(handler, CommandHandler):
            found |= set(handler.commands)
    return found


def test_every_command_has_a_row() -> None:
    assert set(COMMANDS) == _registered_commands()


@pytest.mark.parametrize("name", list(COMMANDS))
async def test_a_command_is_allowed_only_to_who_may(
    name: str, base: tuple[Path, World], tmp_path: Path
) -> None:
    path, world = base
    run, allowed = COMMANDS[name]
    wrong: list[str] = []
    for role, address in ROLES.items():
        copy = tmp_path / f"{role}.db"
        shutil.copyfile(path, copy)
        engine = create_engine(f"sqlite+aiosqlite:///{copy}")
        try:
            services = _services(engine)
            if name == "case":  # the receipt of a case in 李家村
                async with services.uow() as uow:
                    declaration = await uow.declarations.get(world.ids["acked_declaration"])
                    receipt = declaration.receipt
                run = lambda u, c, a, s, r=receipt: work.history(u, c, a, r)  # noqa: E731
            before = await _snapshot(engine)
            async with services.uow() as uow:
                clock = cast(FakeClock, services.clock)
                await run(uow, clock, await chat(uow, clock, address), services)
                await uow.commit()
            after = await _snapshot(engine)
            said = [row for row in after["outbox"] if row not in before["outbox"]]
            templates = {str(_payload(row).get("template")) for row in said}
            refused = bool(templates) and templates <= REFUSED_TEMPLATES
            changed = {t for t in after if t != "outbox" and after[t] != before[t]}
            if role in allowed:
                if refused:
                    wrong.append(f"{role} was refused ({templates})")
            elif not refused:
                wrong.append(f"{role} was not refused ({templates})")
            elif changed:
                wrong.append(f"{role} was refused but {sorted(changed)} changed")
        finally:
            await engine.dispose()
    assert not wrong, f"/{name}: " + "; ".join(wrong)


def _payload(row: tuple[Any, ...]) -> dict[str, Any]:
    import json

    for value in row:
        if isinstance(value, str) and value.startswith("{") and '"template"' in value:
            return dict(json.loads(value))
        if isinstance(value, dict) and "template" in value:
            return value
    return {}


async def test_a_report_for_a_period_the_campaign_does_not_have_is_refused(
    base: tuple[Path, World], tmp_path: Path
) -> None:
    path, world = base
    copy = tmp_path / "report.db"
    shutil.copyfile(path, copy)
    engine = create_engine(f"sqlite+aiosqlite:///{copy}")
    try:
        services = _services(engine)
        async with services.uow() as uow:
            real = await _period(world, uow, cast(FakeClock, services.clock))
        for period in (date(2026, 12, 3), date(2099, 12, 31)):
            assert period != real
            before = await _snapshot(engine)
            button = b.FillReport(world.ids["campaign"], period, world.ids["QS01"])
            use_case = use_case_for(button.pack(), services)
            assert use_case is not None
            async with services.uow() as uow:
                outcome = await use_case(uow, services.clock, await chat(uow, services.clock, ROLES["cadre"]))
                await uow.commit()
            assert outcome.toast == "report.not_yours" and not outcome.done
            assert await _snapshot(engine) == before
    finally:
        await engine.dispose()
