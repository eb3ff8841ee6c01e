"""The console's cases on the in-memory unit of work: the filters read from a query string, each
person's scope, the filters, sorting and pages, one case and what may be done to it, the steps
taken on the web (told to the household as in chat), the ID number and the files."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import date, timedelta
from typing import TypeVar

from domain import buttons as b
from domain.actor import CHAT, WEB, Actor
from domain.cases import submit_declaration
from domain.messages import Outcome
from domain.model import (
    UPLOAD_REF,
    Attachment,
    AttachmentKind,
    DeclarationStatus,
    NewDeclaration,
    Role,
    TaskStatus,
    Verdict,
)
from domain.office import cases as office
from domain.ports import UnitOfWork
from tests.fakes import (
    CADRE,
    CADRE_OTHER_TOWNSHIP,
    CADRE_OTHER_VILLAGE,
    COLLEAGUE,
    FARMER,
    OTHER_FARMER,
    STAFF,
    STAFF_OTHER_TOWNSHIP,
    TG,
    World,
    build_world,
)
from tests.support import FakeClock

S = DeclarationStatus
T = TypeVar("T")
COUNTY = "107"  # 周明, the county of 青山镇 (set up by `with_county`)
ID_NUMBER = "110101199003074514"


async def on_web(
    world: World, address: str, use_case: Callable[[UnitOfWork, FakeClock, Actor], Awaitable[T]]
) -> T:
    """A use case run for the person of a chat signed in to the console (the actor acts on the web)."""

    async def run(uow: UnitOfWork, clock: FakeClock, actor: Actor) -> T:
        return await use_case(uow, clock, replace(actor, via=WEB))

    return await world.run(address, run)


async def listing(world: World, address: str, **query: str) -> office.CaseList:
    filters = office.read_filters(query)
    return await on_web(
        world, address, lambda uow, clock, actor: office.list_cases(uow, clock, actor, filters)
    )


async def receipts(world: World, address: str, **query: str) -> list[str]:
    return [line.receipt for line in (await listing(world, address, **query)).lines]


async def act(world: World, address: str, receipt: str, **form: str) -> Outcome | None:
    rules = world.services.rules
    return await on_web(
        world, address, lambda uow, clock, actor: office.act(uow, clock, rules, actor, receipt, form)
    )


async def view(world: World, address: str, receipt: str) -> office.CaseView | None:
    protector = world.services.protector
    return await on_web(
        world, address, lambda uow, clock, actor: office.open_case(uow, clock, protector, actor, receipt)
    )


async def with_county(world: World) -> None:
    """青山镇 belongs to 青山县, whose person 周明 is bound to chat COUNTY."""
    async with world.uow() as uow:
        township = await uow.geography.township_by_name("青山镇")
        assert township is not None
        await uow.geography.set_township_county(township.id, "青山县")
        person = await uow.persons.add(Role.COUNTY, name="周明", county="青山县")
        await uow.persons.bind(person.id, TG, COUNTY, world.clock.now())
        await uow.commit()


async def declare_as(
    world: World,
    declarant_id: int,
    *,
    phone: str,
    filed_by_cadre: int | None = None,
    id_sealed: str | None = None,
    risks: tuple[str, ...] = ("illness",),
    attachments: list[Attachment] | None = None,
    via: str = WEB,
) -> str:
    """A declaration by a person who may have no chat (the web form's) or for 代报 a cadre, made on
    the web form unless `via` says the chat; its receipt."""
    async with world.uow() as uow:
        declarant = await uow.persons.get(declarant_id)
        assert declarant is not None
        new = NewDeclaration(
            village_id=world.villages["QS01"].id, declared_by=declarant_id, head_name="李小河", phone=phone,
            risk_types=risks, description="房子漏雨", consent_version="2026-11", consent_at=world.clock.now(),
            filed_by_cadre=filed_by_cadre, id_sealed=id_sealed, via=via,
        )  # fmt: skip
        declaration = await submit_declaration(
            uow,
            world.clock,
            world.services.rules,
            declarant,
            new,
            attachments or [],
            id_masked=None,
            summary={},
        )
        await uow.commit()
    return declaration.receipt


# --- the query string ---------------------------------------------------------------------------------


def test_the_filters_are_bounded_and_what_is_not_understood_is_ignored() -> None:
    assert office.read_filters({}) == office.Filters()
    odd = office.read_filters(
        {
            "page": "99999999999", "sort": "drop table declarations", "way": "sideways", "state": "deleted",
            "risk": "';--", "village": "<script>", "came_by": "fax", "filed": "-1", "since": "2026-13-45",
            "until": "1999-01-01", "overdue": "maybe", "q": "  王 大山\x00\u200b\n ",
        }
    )  # fmt: skip
    assert odd == office.Filters(q="王 大山", page=office.MAX_PAGE)
    assert office.read_filters({"page": "-3"}).page == office.read_filters({"page": "abc"}).page == 1
    assert office.read_filters({"q": "很" * 500}).q == "很" * office.MAX_SEARCH
    assert office.read_filters({"sort": "due"}).way == "asc"  # each sort's usual way
    good = office.read_filters(
        {
            "village": "QS01", "state": "visited", "risk": "disaster", "came_by": "web", "filed": "daibao",
            "since": "2026-06-01", "until": "2026-06-30", "overdue": "1", "q": "20261123",
            "sort": "village", "way": "desc", "page": "3",
        }
    )  # fmt: skip
    assert good == office.Filters(
        village="QS01", state="visited", risk="disaster", overdue=True, came_by="web", filed="daibao",
        since=date(2026, 6, 1), until=date(2026, 6, 30), q="20261123", sort="village", way="desc", page=3,
    )  # fmt: skip
    assert office.read_filters(good.params()) == good  # the links of the page ask for the same again
    assert good.params(page=1).get("page") is None


# --- the list -------------------------------------------------------------------------------------------


async def test_each_person_lists_the_cases_of_their_scope_and_nothing_else() -> None:
    world = await build_world()
    await with_county(world)
    qs01 = (await world.declare(FARMER, village="QS01")).receipt
    qs02 = (await world.declare(OTHER_FARMER, village="QS02", phone="+8613912345679")).receipt
    bs01 = (await world.declare("9003", village="BS01", phone="+8613912345670")).receipt

    assert await receipts(world, CADRE) == [qs01]
    assert await receipts(world, CADRE_OTHER_VILLAGE) == [qs02]
    assert set(await receipts(world, STAFF)) == {qs01, qs02}
    assert set(await receipts(world, COUNTY)) == {qs01, qs02}
    assert (
        await receipts(world, CADRE_OTHER_TOWNSHIP) == await receipts(world, STAFF_OTHER_TOWNSHIP) == [bs01]
    )
    assert await receipts(world, FARMER) == []  # a household has no scope
    # A village outside the scope is no filter: it is dropped, and shows nothing of its own.
    asked = await listing(world, STAFF, village="BS01")
    assert asked.filters.village == "" and {line.receipt for line in asked.lines} == {qs01, qs02}
    assert [v.code for v in asked.villages] == ["QS01", "QS02", "QS03"]
    # One case: none outside the scope, by its receipt or its files.
    for address in (CADRE_OTHER_VILLAGE, STAFF_OTHER_TOWNSHIP, CADRE_OTHER_TOWNSHIP):
        assert await view(world, address, qs01) is None
        assert await act(world, address, qs01, do="ack") is None
    assert await view(world, COUNTY, bs01) is None
    assert await view(world, CADRE, "2099010199999") is None and await view(world, CADRE, "12ab") is None
    assert world.declaration(1).status is S.SUBMITTED


async def test_the_filters_and_the_search() -> None:
    world = await build_world()
    chat = await world.declare(FARMER)
    cadre = world.people[CADRE]
    async with world.uow() as uow:
        unbound = await uow.persons.add(Role.FARMER)  # the web form's household: no chat
        await uow.commit()
    world.clock.advance(days=2)
    web = await declare_as(world, unbound.id, phone="+8613900000001", risks=("disaster", "housing"))
    world.clock.advance(days=2)
    daibao = await declare_as(world, cadre, phone="+8613900000002", filed_by_cadre=cadre, via=CHAT)

    assert await receipts(world, STAFF) == [daibao, web, chat.receipt]
    assert await receipts(world, STAFF, came_by="web") == [web]
    assert await receipts(world, STAFF, came_by="chat") == [daibao, chat.receipt]  # a cadre's 代报 by chat
    assert await receipts(world, STAFF, filed="daibao") == [daibao]
    assert await receipts(world, STAFF, filed="self") == [web, chat.receipt]
    listed = await listing(world, STAFF, filed=str(cadre))
    assert [line.receipt for line in listed.lines] == [daibao] and listed.filers == [(cadre, "张伟")]
    assert listed.lines[0].daibao and listed.lines[0].filer == "张伟"
    assert (await listing(world, STAFF, filed="999999")).filters.filed == ""  # nobody who filed here
    assert await receipts(world, STAFF, risk="housing") == [web]  # any of its risk types
    assert await receipts(world, STAFF, q=web) == [web]
    assert await receipts(world, STAFF, q=web[:10]) == [web]  # its day's first digits: declared apart
    assert await receipts(world, STAFF, q="李小") == [daibao, web]
    assert await receipts(world, STAFF, q="王大山") == [chat.receipt]
    today = world.clock.now().date()
    assert await receipts(world, STAFF, since=(today - timedelta(days=1)).isoformat()) == [daibao]
    assert await receipts(world, STAFF, until=(today - timedelta(days=3)).isoformat()) == [chat.receipt]
    assert await receipts(world, STAFF, since="2099-01-01") == []

    await act(world, CADRE, chat.receipt, do="ack")
    assert await receipts(world, STAFF, state="acknowledged") == [chat.receipt]
    assert await receipts(world, STAFF, overdue="1") == [web]  # its 签收 was due two days after it came
    world.clock.advance(days=30)
    late = await listing(world, STAFF, overdue="1")
    assert {line.receipt for line in late.lines} == {daibao, web, chat.receipt}
    assert all(line.overdue and line.due is not None for line in late.lines)


async def test_the_channel_is_where_it_was_declared_not_whether_the_declarant_has_a_chat() -> None:
    """A cadre's 代报 on the web form, and a household with a chat that used the form: web."""
    world = await build_world()
    cadre = world.people[CADRE]
    chat = (await world.declare(FARMER)).receipt
    world.clock.advance(days=1)
    by_chat = await declare_as(world, cadre, phone="+8613900000002", filed_by_cadre=cadre, via=CHAT)
    world.clock.advance(days=1)
    web_daibao = await declare_as(world, cadre, phone="+8613900000003", filed_by_cadre=cadre)
    world.clock.advance(days=1)
    chat_on_web = await declare_as(world, world.id(FARMER), phone="+8613900000004")

    assert await receipts(world, STAFF, came_by="web") == [chat_on_web, web_daibao]
    assert await receipts(world, STAFF, came_by="chat") == [by_chat, chat]
    shown = {line.receipt: line.by_chat for line in (await listing(world, STAFF)).lines}
    assert shown == {chat: True, by_chat: True, web_daibao: False, chat_on_web: False}
    for receipt, expected in shown.items():
        found = await view(world, STAFF, receipt)
        assert found is not None and found.by_chat is expected
    found = await view(world, STAFF, web_daibao)
    assert found is not None and found.filer == "张伟"


async def test_sorting_and_pages_of_fifty() -> None:
    world = await build_world()
    made = []
    for n in range(60):
        made.append((await world.declare(f"8{n:03d}", phone=f"+86139000{n:05d}")).receipt)
        world.clock.advance(minutes=10)
    first = await listing(world, STAFF)
    assert (first.total, first.pages, len(first.lines)) == (60, 2, 50)
    assert [line.receipt for line in first.lines] == made[::-1][:50]
    second = await listing(world, STAFF, page="2")
    assert [line.receipt for line in second.lines] == made[::-1][50:]
    past = await listing(world, STAFF, page="99999999999")
    assert past.filters.page == 2 and past.lines == second.lines  # past the last page: the last
    assert await receipts(world, STAFF, sort="date", way="asc") == made[:50]

    # A finished case has nothing due: last, whichever way the due times are sorted.
    async with world.uow() as uow:
        task = await uow.tasks.for_declaration(1)
        assert task is not None
        await uow.declarations.transition(1, expected=S.SUBMITTED, to=S.ENTERED, at=world.clock.now())
        await uow.tasks.advance(
            task.id,
            status=TaskStatus.DONE,
            owner=None,
            step=None,
            due_at=None,
            next_check_at=None,
            at=world.clock.now(),
        )
        await uow.commit()
    by_due = await receipts(world, STAFF, sort="due", way="asc", page="2")
    assert by_due[-1] == made[0]
    assert (await receipts(world, STAFF, sort="due", way="desc", page="2"))[-1] == made[0]
    assert (await receipts(world, STAFF, sort="due", way="asc"))[0] == made[1]  # the soonest due
    assert (await receipts(world, STAFF, sort="state", way="asc"))[0] == made[0]  # "entered" first


# --- one case, and what is done to it on the web ---------------------------------------------------------


async def test_what_each_person_may_do_next_follows_the_chat() -> None:
    world = await build_world()
    await with_county(world)
    receipt = (await world.declare(FARMER)).receipt

    def forms(found: office.CaseView | None) -> list[str]:
        assert found is not None
        return [f"{s.form}:{s.value}" if s.value else s.form for s in found.steps]

    assert forms(await view(world, CADRE, receipt)) == ["ack"]
    assert forms(await view(world, COLLEAGUE, receipt)) == ["ack"]  # both of the village's cadres
    assert forms(await view(world, STAFF, receipt)) == []  # it went to the village's cadres
    assert forms(await view(world, COUNTY, receipt)) == []
    outcome = await act(world, CADRE, receipt, do="ack")
    assert outcome is not None and outcome.toast == "case.ack_done"
    assert forms(await view(world, CADRE, receipt)) == ["visit", "hand"]
    assert forms(await view(world, COLLEAGUE, receipt)) == []  # not theirs
    assert forms(await view(world, STAFF, receipt)) == ["hand"]  # the township may reassign
    found = await view(world, CADRE, receipt)
    assert found is not None and found.colleagues == [(world.people[COLLEAGUE], "赵强")]

    refused = await act(world, CADRE, receipt, do="visit", date="明年", notes="看过了")
    assert refused is not None and refused.toast == "validate.date" and not refused.done
    today = world.clock.now().date().isoformat()
    done = await act(world, CADRE, receipt, do="visit", date=today, notes="住院属实")
    assert done is not None and done.toast == "case.visit_recorded"
    assert world.declaration(1).status is S.VISITED
    assert forms(await view(world, CADRE, receipt)) == [
        "verdict:unstable", "verdict:marginal", "verdict:sudden", "reject", "hand",
    ]  # fmt: skip
    unknown = await act(world, CADRE, receipt, do="verdict", value="not_eligible")  # only with a reason
    assert unknown is not None and unknown.toast == "console.case_unknown_step"
    assert (await act(world, CADRE, receipt, do="verdict", value="sudden")) is not None
    assert forms(await view(world, CADRE, receipt)) == ["step:publicize", "hand"]
    shown = await view(world, STAFF, receipt)
    assert shown is not None
    assert [e.kind for e in shown.history] == ["submitted", "assigned", "acknowledge", "visit", "propose"]
    assert [e.on_web for e in shown.history] == [False, False, True, True, True]
    assert shown.history[3].note == "住院属实" and shown.history[2].who == "张伟"


async def test_not_eligible_on_the_web_tells_the_household_what_the_chat_tells_it() -> None:
    world = await build_world()
    in_chat = await world.declare(FARMER)
    on_page = (await world.declare(OTHER_FARMER, phone="+8613912345679")).receipt
    today = world.clock.now().date().isoformat()
    for receipt in (in_chat.receipt, on_page):
        await act(world, CADRE, receipt, do="ack")
        await act(world, CADRE, receipt, do="visit", date=today, notes="收入稳定")
    # In chat: the 不纳入 button, then the reason typed.
    await world.press(CADRE, b.ChooseVerdict(world.task_of(in_chat.id).id, Verdict.NOT_ELIGIBLE))
    await world.say(CADRE, "家庭年收入高于监测线")
    # On the web: the reason with the button; too short first.
    short = await act(world, CADRE, on_page, do="reject", reason="否")
    assert short is not None and short.toast == "validate.reason" and not short.done
    done = await act(world, CADRE, on_page, do="reject", reason="家庭年收入高于监测线")
    assert done is not None and done.toast == "case.decided_toast"

    chat_told, web_told = world.last_to(FARMER), world.last_to(OTHER_FARMER)
    assert chat_told.template == web_told.template == "farmer.verdict_not_eligible"
    assert web_told.params == {**chat_told.params, "receipt": on_page}
    assert [len(row) for row in web_told.actions] == [len(row) for row in chat_told.actions]  # 我有异议
    assert world.texts_to(CADRE).count("case.decided") == 2
    events = [e for e in world.uow.store.events if e.kind == "reject"]
    assert [e.data.get("via") for e in events] == [None, "web"]
    assert events[1].data["reason"] == "家庭年收入高于监测线"


async def test_the_full_id_number_for_township_staff_only_recorded_each_time() -> None:
    world = await build_world()
    await with_county(world)
    sealed = world.services.protector.seal(ID_NUMBER)
    async with world.uow() as uow:
        household = await uow.persons.add(Role.FARMER)
        await uow.commit()
    receipt = await declare_as(world, household.id, phone="+8613900000001", id_sealed=sealed)
    protector = world.services.protector

    async def reveal(address: str) -> office.Revealed | None:
        return await on_web(
            world, address, lambda uow, clock, actor: office.reveal_id(uow, clock, protector, actor, receipt)
        )

    for address in (CADRE, COUNTY):
        found = await view(world, address, receipt)
        assert (
            found is not None and found.answers["id_number"] == "1101**********4514" and not found.may_reveal
        )
        assert await reveal(address) == office.Revealed(None, "console.case_reveal_refused")
    assert await reveal(STAFF_OTHER_TOWNSHIP) is None  # not in their scope at all
    assert [e for e in world.uow.store.events if e.kind == "id_revealed"] == []

    shown = await view(world, STAFF, receipt)
    assert shown is not None and shown.may_reveal
    assert await reveal(STAFF) == office.Revealed(ID_NUMBER)
    world.clock.advance(minutes=5)
    assert await reveal(STAFF) == office.Revealed(ID_NUMBER)
    revealed = [e for e in world.uow.store.events if e.kind == "id_revealed"]
    assert [(e.actor_id, e.data) for e in revealed] == [(world.people[STAFF], {"via": "web"})] * 2
    assert revealed[1].at - revealed[0].at == timedelta(minutes=5)
    no_id = (await world.declare(FARMER)).receipt
    assert await reveal_other(world, no_id) == office.Revealed(None, "console.case_no_id")


async def reveal_other(world: World, receipt: str) -> office.Revealed | None:
    protector = world.services.protector
    return await on_web(
        world, STAFF, lambda uow, clock, actor: office.reveal_id(uow, clock, protector, actor, receipt)
    )


async def test_photos_and_voice_notes_of_a_case() -> None:
    world = await build_world()
    async with world.uow() as uow:
        upload = await uow.uploads.add("image/png", b"png", world.clock.now())
        household = await uow.persons.add(Role.FARMER)
        await uow.commit()
    at = world.clock.now()
    attachments = [
        Attachment(0, AttachmentKind.VOICE, "voice-file-id", household.id, at, 12),
        Attachment(0, AttachmentKind.TEXT, "后来补充：又住院了", household.id, at),
        Attachment(0, AttachmentKind.PHOTO, f"{UPLOAD_REF}{upload}", household.id, at),
    ]
    receipt = await declare_as(world, household.id, phone="+8613900000001", attachments=attachments)
    found = await view(world, CADRE, receipt)
    assert found is not None
    assert [(f.n, f.kind, f.stored) for f in found.files] == [
        (1, AttachmentKind.VOICE, False), (2, AttachmentKind.PHOTO, True),
    ]  # fmt: skip
    assert [text for _, text in found.texts] == ["后来补充：又住院了"]
    assert found.answers["description"] == "房子漏雨" and not found.by_chat

    async def file(address: str, n: int) -> office.FileFound | None:
        return await on_web(
            world, address, lambda uow, clock, actor: office.case_file(uow, actor, receipt, n)
        )

    assert await file(CADRE, 1) == office.FileFound(AttachmentKind.VOICE, None, "voice-file-id")
    assert await file(CADRE, 2) == office.FileFound(AttachmentKind.PHOTO, ("image/png", b"png"), None)
    assert await file(CADRE, 3) is None and await file(CADRE, 0) is None
    assert await file(CADRE_OTHER_VILLAGE, 2) is None
