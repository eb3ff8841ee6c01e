"""Households heard by text message (issue 14, who gets what), on the in-memory unit of work: the
consent on the web form and in the chat's 代报, the household bound to its phone for texts, and
the objection (异议) on the web status page as the chat makes it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from domain import buttons as b
from domain import cases, delivery, intake, web_intake
from domain.messages import Outgoing
from domain.model import Channel, Declaration, DeclarationStatus, IntakeStep, Role, Verdict
from domain.web_intake import same_phone
from tests.domain.test_cases_use_cases import acknowledge, start_visit, verdict
from tests.fakes import CADRE, COLLEAGUE, FARMER, STAFF, World, build_world

S = DeclarationStatus
TEXTS_TO = "13912345678"  # the text address: the 11 digits of the mobile


@pytest.fixture
def texts() -> Iterator[None]:
    """An SMS provider is configured: texts are on."""
    before = delivery.switch_on(Channel.SMS)
    try:
        yield
    finally:
        delivery.restore(before)


def keys(messages: list[Outgoing]) -> list[str]:
    return [m.template for m in messages]


def form(**changes: Any) -> dict[str, Any]:
    """The web form's fields, complete and valid."""
    fields: dict[str, Any] = {
        "consent": "yes",
        "name": "王大山",
        "declarant": "self",
        "phone": "13912345678",
        "household": "4",
        "risks": ["disability"],
        "description": "腿脚不便，干不了农活",
    }
    return {**fields, **changes}


async def web_declare(
    world: World, fields: dict[str, Any], *, cadre: str | None = None
) -> web_intake.Submitted:
    """The web form checked and submitted, as bot/webform does (a 代报 link for `cadre`)."""
    async with world.uow() as uow:
        filer = await uow.persons.get(world.people[cadre]) if cadre else None
        answers = web_intake.check(
            fields,
            clock=world.clock,
            protector=world.services.protector,
            filed_by_cadre=filer.id if filer else None,
        )
        assert not answers.errors, answers.errors
        done = await web_intake.declare(
            uow, world.clock, world.services.rules, world.villages["QS01"], answers.draft, [], cadre=filer
        )
        await uow.commit()
    return done


def declared(done: web_intake.Submitted) -> Declaration:
    assert done.declaration is not None
    return done.declaration


def channel(world: World, person_id: int) -> Channel | None:
    return world.uow.store.channel_of(person_id)


def text_address(world: World, person_id: int) -> str | None:
    return next((a for c, a in world.uow.store.bound(person_id) if c is Channel.SMS), None)


# --- the web form -------------------------------------------------------------------------------------


async def test_a_web_household_that_agrees_is_bound_for_texts_and_hears_its_receipt_by_text(
    texts: None,
) -> None:
    world = await build_world()
    declaration = declared(await web_declare(world, form(sms_consent="yes")))

    household = world.uow.store.person(declaration.declared_by)
    assert household is not None and household.role is Role.FARMER
    assert text_address(world, household.id) == TEXTS_TO and channel(world, household.id) is Channel.SMS
    assert world.declaration(declaration.id).sms_consent_at == world.clock.now()
    (receipt,) = world.uow.messages_to(household.id)
    assert receipt.template == "intake.submitted" and receipt.params["receipt"] == declaration.receipt

    # Each step of the case reaches it the usual way (tell_household), by text.
    task = world.task_of(declaration.id)
    assert (await acknowledge(world, CADRE, task.id)).done
    assert keys(world.uow.messages_to(household.id)) == ["intake.submitted", "farmer.acknowledged"]


async def test_without_the_box_or_with_texts_off_nothing_is_bound_and_nothing_queued(texts: None) -> None:
    world = await build_world()
    unticked = declared(await web_declare(world, form()))
    assert text_address(world, unticked.declared_by) is None
    assert world.uow.messages_to(unticked.declared_by) == []
    assert world.declaration(unticked.id).sms_consent_at is None

    delivery.restore((Channel.TELEGRAM,))  # no provider: the box (were it sent) means nothing
    off = declared(await web_declare(world, form(sms_consent="yes", phone="13912345679")))
    assert text_address(world, off.declared_by) is None and world.uow.messages_to(off.declared_by) == []
    assert world.declaration(off.id).sms_consent_at is None


async def test_a_second_declaration_with_the_same_phone_keeps_the_person_that_hears(texts: None) -> None:
    world = await build_world()
    first = declared(await web_declare(world, form(sms_consent="yes")))
    world.clock.advance(days=31)  # the first is no longer a repeat to add to

    second = declared(await web_declare(world, form(sms_consent="yes", name="王小山")))

    assert second.declared_by == first.declared_by
    assert text_address(world, first.declared_by) == TEXTS_TO
    assert keys(world.uow.messages_to(first.declared_by)) == ["intake.submitted", "intake.submitted"]


async def test_a_landline_cannot_take_texts(texts: None) -> None:
    world = await build_world()
    answers = web_intake.check(
        form(sms_consent="yes", phone="010-62345678"),
        clock=world.clock,
        protector=world.services.protector,
        filed_by_cadre=None,
    )
    assert answers.errors == {"sms_consent": ("web.sms_needs_mobile", {})}
    assert (
        web_intake.check(
            form(phone="010-62345678"),
            clock=world.clock,
            protector=world.services.protector,
            filed_by_cadre=None,
        ).errors
        == {}
    )


async def test_a_cadres_web_daibao_with_consent_gives_the_household_a_person_that_hears(texts: None) -> None:
    world = await build_world()
    fields = {k: v for k, v in form(sms_consent="yes").items() if k != "declarant"}
    declaration = declared(await web_declare(world, fields, cadre=CADRE))

    zhang = world.people[CADRE]
    assert declaration.filed_by_cadre == zhang and declaration.declared_by != zhang
    assert text_address(world, declaration.declared_by) == TEXTS_TO
    assert keys(world.uow.messages_to(declaration.declared_by)) == ["intake.submitted"]
    # The cadre filed it: the submission is theirs, and they get the receipt as before.
    assert world.uow.store.events[0].kind == "submitted" and world.uow.store.events[0].actor_id == zhang
    assert "intake.submitted" in keys(world.uow.messages_to(zhang))


# --- 代报 in chat -----------------------------------------------------------------------------------


def conv(world: World, address: str = CADRE) -> int:
    found = world.conversation(address)
    assert found is not None
    return found.id


def step(world: World, address: str = CADRE) -> str:
    found = world.conversation(address)
    assert found is not None
    return found.step


async def daibao_to_phone(world: World) -> None:
    await world.run(CADRE, intake.start_for_household)
    await world.press(CADRE, b.Consent(conv(world), "yes"))
    await world.say(CADRE, "王大山")
    world.unread(CADRE)


async def finish_daibao(world: World) -> Declaration:
    await world.press(CADRE, b.SkipId(conv(world)))
    await world.press(CADRE, b.HouseholdSize(conv(world), 3))
    await world.press(CADRE, b.ToggleRisk(conv(world), "disability"))
    await world.press(CADRE, b.RisksDone(conv(world)))
    await world.say(CADRE, "残疾，无劳动力")
    await world.press(CADRE, b.PhotosDone(conv(world)))
    await world.press(CADRE, b.Confirm(conv(world)))
    (declaration,) = world.uow.store.declarations.values()
    return declaration


async def test_daibao_in_chat_asks_whether_the_household_agreed_to_texts(texts: None) -> None:
    world = await build_world()
    await daibao_to_phone(world)

    await world.say(CADRE, "13912345678")
    (question,) = world.unread(CADRE)
    assert question.template == "intake.ask_texts_cadre" and question.params == {"phone": "13912345678"}
    assert [a.button for a in question.actions[0]] == [
        b.TextsConsent(conv(world), "yes"),
        b.TextsConsent(conv(world), "no"),
    ]
    # Typed text is answered politely and the question asked again.
    await world.say(CADRE, "同意")
    (again,) = world.unread(CADRE)
    assert again.template == "intake.ask_texts_cadre" and again.lead == "intake.use_buttons"
    assert step(world) == IntakeStep.SMS_CONSENT

    await world.press(CADRE, b.TextsConsent(conv(world), "yes"))
    assert keys(world.unread(CADRE)) == ["intake.ask_id"]
    declaration = await finish_daibao(world)

    zhang = world.people[CADRE]
    assert declaration.filed_by_cadre == zhang and declaration.declared_by != zhang
    assert declaration.sms_consent_at is not None
    household = world.uow.store.person(declaration.declared_by)
    assert household is not None and household.role is Role.FARMER
    assert channel(world, household.id) is Channel.SMS and text_address(world, household.id) == TEXTS_TO
    assert keys(world.uow.messages_to(household.id)) == ["intake.submitted"]
    assert "intake.submitted" in keys(world.unread(CADRE))  # the cadre's receipt, as before
    assert "case.new" in world.texts_to(COLLEAGUE)


async def test_daibao_in_chat_without_the_households_consent_stays_the_cadres(texts: None) -> None:
    world = await build_world()
    await daibao_to_phone(world)
    await world.say(CADRE, "13912345678")
    await world.press(CADRE, b.TextsConsent(conv(world), "no"))
    declaration = await finish_daibao(world)

    assert declaration.declared_by == declaration.filed_by_cadre == world.people[CADRE]
    assert declaration.sms_consent_at is None
    assert all(kind == Channel.TELEGRAM.value for kind, _ in world.uow.store.accounts)  # no text bound


async def test_daibao_in_chat_asks_nothing_of_texts_when_they_are_off() -> None:
    world = await build_world()
    await daibao_to_phone(world)
    await world.say(CADRE, "13912345678")
    assert keys(world.unread(CADRE)) == ["intake.ask_id"]


async def test_daibao_for_a_landline_asks_nothing_of_texts(texts: None) -> None:
    world = await build_world()
    await daibao_to_phone(world)
    await world.say(CADRE, "010-62345678")
    assert keys(world.unread(CADRE)) == ["intake.ask_id"]


async def test_a_household_declaring_in_chat_is_not_asked_about_texts(texts: None) -> None:
    world = await build_world()
    await world.run(FARMER, lambda uow, clock, actor: intake.start(uow, clock, actor, village_code="QS01"))
    await world.press(FARMER, b.Consent(conv(world, FARMER), "yes"))
    await world.say(FARMER, "王大山")
    await world.press(FARMER, b.ChooseDeclarant(conv(world, FARMER), "self"))
    world.unread(FARMER)
    await world.say(FARMER, "13912345678")
    assert keys(world.unread(FARMER)) == ["intake.ask_id"]


async def test_a_changed_phone_asks_about_texts_again(texts: None) -> None:
    world = await build_world()
    await daibao_to_phone(world)
    await world.say(CADRE, "13912345678")
    await world.press(CADRE, b.TextsConsent(conv(world), "yes"))
    await world.press(CADRE, b.SkipId(conv(world)))
    await world.press(CADRE, b.HouseholdSize(conv(world), 3))
    await world.press(CADRE, b.ToggleRisk(conv(world), "disability"))
    await world.press(CADRE, b.RisksDone(conv(world)))
    await world.say(CADRE, "残疾，无劳动力")
    await world.press(CADRE, b.PhotosDone(conv(world)))
    summary = world.unread(CADRE)[-1]
    assert summary.params["phone"] == {"$t": "summary.phone_texts", "$with": {"phone": "13912345678"}}
    edits = [a.button for row in summary.actions for a in row if isinstance(a.button, b.EditAnswer)]
    assert b.EditAnswer(conv(world), "texts") in edits

    await world.press(CADRE, b.EditAnswer(conv(world), "phone"))
    await world.say(CADRE, "13912345670")
    assert keys(world.unread(CADRE))[-1] == "intake.ask_texts_cadre"
    await world.press(CADRE, b.TextsConsent(conv(world), "no"))
    assert step(world) == IntakeStep.CONFIRM
    assert world.unread(CADRE)[-1].params["phone"] == "13912345670"


# --- the objection on the status page ------------------------------------------------------------------


async def not_eligible(world: World, declaration: Declaration) -> None:
    """The cadre signs, visits and decides 不纳入 with a reason, in chat."""
    rules = world.services.rules
    task = world.task_of(declaration.id)
    assert (await acknowledge(world, CADRE, task.id)).done
    await start_visit(world, CADRE, task.id)
    c = conv(world)
    await world.run(CADRE, lambda uow, clock, actor: cases.visit_day_button(uow, clock, rules, actor, c, 0))
    await world.say(CADRE, "家中两人住院，收入下降")
    await world.run(CADRE, lambda uow, clock, actor: cases.finish_visit(uow, clock, rules, actor, c))
    await verdict(world, CADRE, task.id, Verdict.NOT_ELIGIBLE)
    await world.say(CADRE, "家庭人均收入高于监测线")
    assert world.declaration(declaration.id).status is S.NOT_ELIGIBLE
    for address in (CADRE, STAFF):
        world.unread(address)


async def look(world: World, receipt: str, phone: str) -> web_intake.Status | None:
    async with world.uow() as uow:
        return await web_intake.look_up(uow, world.clock, world.services.protector, receipt, phone)


async def object_to(world: World, receipt: str, phone: str, raw: str) -> web_intake.Objected:
    async with world.uow() as uow:
        done = await web_intake.object_to(
            uow, world.clock, world.services.rules, world.services.protector, receipt, same_phone(phone), raw
        )
        await uow.commit()
    return done


async def test_the_status_page_offers_the_objection_only_while_the_household_may_object(texts: None) -> None:
    world = await build_world()
    declaration = declared(await web_declare(world, form(sms_consent="yes")))
    submitted = await look(world, declaration.receipt, "13912345678")
    assert submitted is not None and submitted.objection is None and submitted.reason is None

    await not_eligible(world, declaration)
    assert keys(world.uow.messages_to(declaration.declared_by))[-1] == "farmer.verdict_not_eligible"
    refused = await look(world, declaration.receipt, "13912345678")
    assert refused is not None and refused.objection == "open" and refused.reason == "家庭人均收入高于监测线"


async def test_an_objection_on_the_status_page_is_the_chats_objection_made_via_the_web(texts: None) -> None:
    world = await build_world()
    declaration = declared(await web_declare(world, form(sms_consent="yes")))
    await not_eligible(world, declaration)

    # The phone is checked again: a wrong one gets nothing, and nothing changes.
    assert await object_to(world, declaration.receipt, "13900000000", "我家确实困难") == web_intake.Objected()
    # The reason is checked as in chat.
    short = await object_to(world, declaration.receipt, "13912345678", "不")
    assert short.problem is not None and short.problem[0] == "validate.objection" and not short.done
    assert world.declaration(declaration.id).status is S.NOT_ELIGIBLE

    done = await object_to(world, declaration.receipt, "139 1234 5678", "我家确实困难，收入没有那么高")

    assert done.done and world.declaration(declaration.id).status is S.OBJECTED
    (event,) = [e for e in world.uow.store.events if e.kind == "object"]
    assert event.actor_id == declaration.declared_by
    assert event.data["via"] == "web" and event.data["objection"] == "我家确实困难，收入没有那么高"
    (recheck,) = world.unread(STAFF)
    assert recheck.template == "case.objection" and recheck.params["reason"] == "家庭人均收入高于监测线"
    assert [a.button for a in recheck.actions[0]] == [
        b.Step(world.task_of(declaration.id).id, "uphold"),
        b.Step(world.task_of(declaration.id).id, "reopen"),
    ]
    after = await look(world, declaration.receipt, "13912345678")
    assert after is not None and after.objection is None and after.reason == "家庭人均收入高于监测线"

    # A second objection is refused, politely, and changes nothing.
    again = await object_to(world, declaration.receipt, "13912345678", "我还是不同意这个结果")
    assert not again.done and again.refusal == "web.objection_refused"
    assert [e.kind for e in world.uow.store.events].count("object") == 1
    assert world.unread(STAFF) == []


async def test_a_daibao_without_a_household_person_objects_through_its_cadre(texts: None) -> None:
    world = await build_world()
    fields = {k: v for k, v in form().items() if k != "declarant"}
    declaration = declared(await web_declare(world, fields, cadre=CADRE))
    await not_eligible(world, declaration)

    status = await look(world, declaration.receipt, "13912345678")
    assert status is not None and status.objection == "cadre"
    refused = await object_to(world, declaration.receipt, "13912345678", "我家确实困难，收入没有那么高")
    assert refused.refusal == "web.objection_by_cadre"
    assert world.declaration(declaration.id).status is S.NOT_ELIGIBLE


async def test_object_now_refuses_anyone_but_the_household() -> None:
    world = await build_world()
    declaration = await world.declare(FARMER)
    await not_eligible(world, declaration)
    rules = world.services.rules

    refusal = await world.run(
        CADRE,
        lambda uow, clock, actor: cases.object_now(
            uow, clock, rules, actor, declaration.id, "我不同意这个结果"
        ),
    )
    assert refusal == "case.not_allowed" and world.declaration(declaration.id).status is S.NOT_ELIGIBLE
    recorded = await world.run(
        FARMER,
        lambda uow, clock, actor: cases.object_now(
            uow, clock, rules, actor, declaration.id, "我不同意这个结果"
        ),
    )
    assert recorded is None and world.declaration(declaration.id).status is S.OBJECTED
    assert "via" not in next(e for e in world.uow.store.events if e.kind == "object").data  # in chat


async def test_the_console_tells_the_cadres_filing_from_the_households_own_steps(texts: None) -> None:
    from tests.domain.test_office_cases_use_cases import view

    world = await build_world()
    fields = {k: v for k, v in form(sms_consent="yes").items() if k != "declarant"}
    declaration = declared(await web_declare(world, fields, cadre=CADRE))
    await not_eligible(world, declaration)
    assert (await object_to(world, declaration.receipt, "13912345678", "我家确实困难，收入没有那么高")).done

    case = await view(world, STAFF, declaration.receipt)

    assert case is not None
    history = {entry.kind: entry for entry in case.history}
    assert (history["submitted"].who, history["submitted"].household) == ("张伟", False)
    assert history["object"].household and history["object"].on_web
    assert case.answers["phone"] == {"$t": "summary.phone_texts", "$with": {"phone": "13912345678"}}
