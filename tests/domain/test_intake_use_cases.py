"""The household's declaration in chat, on the in-memory unit of work: each step as the handlers run
it (intake.start, a button through handlers.buttons, typed text through the router), asserted on
the catalog keys queued and on what is stored."""

from __future__ import annotations

from collections.abc import Callable

from domain import buttons as b
from domain import intake
from domain.actor import Actor, actor_for
from domain.messages import Outcome, Outgoing
from domain.model import DeclarationStatus, Flow, IntakeStep, NewDeclaration, Role, RoutedTo
from domain.ports import UnitOfWork
from tests.fakes import (
    CADRE,
    CADRE_OTHER_VILLAGE,
    COLLEAGUE,
    FARMER,
    OTHER_FARMER,
    STAFF,
    TG,
    World,
    build_world,
)
from tests.support import FakeClock


async def start(world: World, address: str = FARMER, village: str | None = "QS01") -> Outcome:
    return await world.run(
        address, lambda uow, clock, actor: intake.start(uow, clock, actor, village_code=village)
    )


def conv(world: World, address: str = FARMER) -> int:
    """The id of the person's open conversation (what its buttons name)."""
    found = world.conversation(address)
    assert found is not None, f"{address} has no open conversation"
    return found.id


def keys(messages: list[Outgoing]) -> list[str]:
    return [m.template for m in messages]


def step(world: World, address: str = FARMER) -> str:
    found = world.conversation(address)
    assert found is not None
    return found.step


async def to_phone(world: World, address: str = FARMER) -> None:
    """Consent given, the name typed, declaring for oneself: the phone number is asked."""
    await start(world, address)
    await world.press(address, b.Consent(conv(world, address), "yes"))
    await world.say(address, "王大山")
    await world.press(address, b.ChooseDeclarant(conv(world, address), "self"))
    assert step(world, address) == IntakeStep.PHONE


async def to_summary(world: World, address: str = FARMER, phone: str = "13912345678") -> None:
    """Every answer given: the summary waits for 确认提交."""
    await to_phone(world, address)
    await from_the_phone(world, address, phone)


async def from_the_phone(world: World, address: str, phone: str = "13912345678") -> None:
    """From the phone question on (a household's or a cadre's 代报): every answer given, the
    summary waits for 确认提交."""
    await world.say(address, phone)
    await world.press(address, b.SkipId(conv(world, address)))
    await world.press(address, b.HouseholdSize(conv(world, address), 4))
    await world.press(address, b.ToggleRisk(conv(world, address), "disability"))
    await world.press(address, b.RisksDone(conv(world, address)))
    await world.say(address, "腿脚不便，干不了农活")
    await world.press(address, b.PhotosDone(conv(world, address)))
    assert step(world, address) == IntakeStep.CONFIRM


async def test_a_whole_declaration_is_routed_to_the_village_cadres() -> None:
    world = await build_world()
    await start(world)
    (welcome,) = world.unread(FARMER)
    assert (welcome.template, welcome.lead) == ("intake.consent", "intake.welcome")
    assert welcome.lead_params["village"] == "李家村"

    outcome = await world.press(FARMER, b.Consent(conv(world), "yes"))
    assert outcome.toast == "intake.consent_thanks"
    assert keys(world.unread(FARMER)) == ["intake.ask_name"]
    # (text typed, or the button pressed in the open conversation; what is asked next)
    dialog: list[tuple[str | Callable[[int], b.Button], list[str]]] = [
        ("王大山", ["intake.ask_declarant"]),
        (lambda c: b.ChooseDeclarant(c, "self"), ["intake.ask_phone"]),
        ("139 1234 5678", ["intake.ask_id"]),
        (b.SkipId, ["intake.ask_household"]),
        (lambda c: b.HouseholdSize(c, 4), ["intake.ask_risks"]),
        (lambda c: b.ToggleRisk(c, "illness"), []),  # redrawn in place: nothing new is sent
        (b.RisksDone, ["followup.cost"]),
        ("3.5万", ["intake.ask_description"]),
        ("老伴住院，花了很多钱", ["intake.ask_photos"]),
        (b.PhotosDone, ["intake.summary"]),
    ]
    for sent, expected in dialog:
        if isinstance(sent, str):
            await world.say(FARMER, sent)
        else:
            button = sent(conv(world))
            pressed = await world.press(FARMER, button)
            if isinstance(button, b.ToggleRisk):
                assert pressed.edit is not None and pressed.toast == "intake.noted"
        assert keys(world.unread(FARMER)) == expected, sent

    outcome = await world.press(FARMER, b.Confirm(conv(world)))

    assert outcome.toast == "intake.submitted_toast" and outcome.done
    assert world.conversation(FARMER) is None
    (declaration,) = world.uow.store.declarations.values()
    assert declaration.status is DeclarationStatus.SUBMITTED
    assert declaration.village_id == world.villages["QS01"].id
    assert declaration.declared_by == world.id(FARMER)
    assert (declaration.head_name, declaration.phone) == ("王大山", "+8613912345678")
    assert declaration.risk_types == ("illness",) and declaration.followups == {"illness.cost": 35000}
    assert declaration.receipt == outcome.params["receipt"] == f"20261123{declaration.id:06d}"
    task = world.task_of(declaration.id)
    assert task.routed_to is RoutedTo.VILLAGE and task.due_at is not None
    for cadre in (CADRE, COLLEAGUE):
        (new,) = world.unread(cadre)
        assert new.template == "case.new" and new.params["receipt"] == declaration.receipt
        assert new.actions[0][0].button == b.Acknowledge(task.id)
    assert world.texts_to(CADRE_OTHER_VILLAGE) == world.texts_to(STAFF) == []
    (receipt,) = world.unread(FARMER)
    assert receipt.template == "intake.submitted" and receipt.params["receipt"] == declaration.receipt
    kinds = [e.kind for e in world.uow.store.events if e.declaration_id == declaration.id]
    assert kinds == ["submitted", "assigned"]


async def test_a_wrong_phone_number_is_asked_again_with_nothing_lost() -> None:
    world = await build_world()
    await to_phone(world)
    before = world.conversation(FARMER)
    world.unread(FARMER)

    await world.say(FARMER, "12345")

    (again,) = world.unread(FARMER)
    assert (again.template, again.lead) == ("intake.ask_phone", "validate.phone")
    after = world.conversation(FARMER)
    assert after is not None and before is not None
    assert (after.id, after.step, after.data) == (before.id, IntakeStep.PHONE, before.data)
    assert after.data["name"] == "王大山" and "phone" not in after.data

    await world.say(FARMER, "13912345678")
    assert keys(world.unread(FARMER)) == ["intake.ask_id"]


async def test_back_asks_the_question_before_and_not_past_the_first() -> None:
    world = await build_world()
    await to_phone(world)
    world.unread(FARMER)

    outcome = await world.press(FARMER, b.Back(conv(world)))
    assert outcome.done and keys(world.unread(FARMER)) == ["intake.ask_declarant"]
    assert step(world) == IntakeStep.DECLARANT

    await world.say(FARMER, "返回")  # the word does what the button does
    assert keys(world.unread(FARMER)) == ["intake.ask_name"]
    found = world.conversation(FARMER)
    assert found is not None and found.data["name"] == "王大山"  # asked again, not forgotten

    # Consent is given or the declaration ends: Back never returns to it.
    outcome = await world.press(FARMER, b.Back(conv(world)))
    (first,) = world.unread(FARMER)
    assert not outcome.done and (first.template, first.lead) == ("intake.ask_name", "intake.first_step")


async def test_a_button_of_another_persons_conversation_is_refused() -> None:
    world = await build_world()
    await start(world, FARMER)
    await start(world, OTHER_FARMER)
    theirs = conv(world, FARMER)
    world.unread(OTHER_FARMER)

    outcome = await world.press(OTHER_FARMER, b.Consent(theirs, "yes"))

    assert (outcome.toast, outcome.done) == ("intake.stale_button", False)
    assert step(world, FARMER) == step(world, OTHER_FARMER) == IntakeStep.CONSENT
    assert world.unread(OTHER_FARMER) == []


async def test_a_button_of_an_earlier_question_is_refused() -> None:
    world = await build_world()
    await start(world)
    consent = b.Consent(conv(world), "yes")
    await world.press(FARMER, consent)
    world.unread(FARMER)

    outcome = await world.press(FARMER, consent)

    assert (outcome.toast, outcome.done) == ("intake.stale_button", False)
    assert step(world) == IntakeStep.NAME and world.unread(FARMER) == []


async def test_declining_consent_keeps_nothing() -> None:
    world = await build_world()
    await start(world)

    await world.press(FARMER, b.Consent(conv(world), "no"))

    assert world.conversation(FARMER) is None
    assert world.texts_to(FARMER)[-1] == "intake.consent_declined"


async def test_an_unknown_village_opens_no_declaration() -> None:
    world = await build_world()

    outcome = await start(world, village="XX99")

    assert not outcome.done and world.texts_to(FARMER) == ["start.unknown_village"]
    assert world.conversation(FARMER) is None


async def test_confirming_twice_submits_once() -> None:
    world = await build_world()
    await to_summary(world)
    confirm = b.Confirm(conv(world))

    first = await world.press(FARMER, confirm)
    second = await world.press(FARMER, confirm)

    assert first.done and (second.toast, second.done) == ("intake.already_submitted", False)
    assert len(world.uow.store.declarations) == 1
    assert world.texts_to(FARMER).count("intake.submitted") == 1


async def test_with_no_cadre_bound_the_case_goes_to_the_township() -> None:
    world = await build_world()
    await start(world, village="QS03")  # 陈家村: its cadre never opened the invite
    await world.press(FARMER, b.Consent(conv(world), "yes"))
    await world.say(FARMER, "王大山")
    await world.press(FARMER, b.ChooseDeclarant(conv(world), "self"))
    await world.say(FARMER, "13912345678")
    await world.press(FARMER, b.SkipId(conv(world)))
    await world.press(FARMER, b.HouseholdSize(conv(world), 2))
    await world.press(FARMER, b.ToggleRisk(conv(world), "housing"))
    await world.press(FARMER, b.RisksDone(conv(world)))
    await world.say(FARMER, "房子漏雨")
    await world.press(FARMER, b.PhotosDone(conv(world)))

    await world.press(FARMER, b.Confirm(conv(world)))

    (declaration,) = world.uow.store.declarations.values()
    assert world.task_of(declaration.id).routed_to is RoutedTo.TOWNSHIP
    assert world.texts_to(STAFF) == ["case.new_township"]
    assert world.texts_to(CADRE) == []


async def test_a_repeat_declaration_is_offered_to_add_to_the_open_one() -> None:
    world = await build_world()
    first = await world.declare(FARMER, phone="+8613912345678")
    await to_phone(world, FARMER)
    world.unread(FARMER)

    await world.say(FARMER, "13912345678")

    (offer,) = world.unread(FARMER)
    assert offer.template == "intake.repeat_own" and offer.params["receipt"] == first.receipt
    add = offer.actions[0][0].button
    assert add == b.AddToExisting(conv(world), first.id)
    assert isinstance(add, b.AddToExisting)
    await world.press(FARMER, add)
    found = world.conversation(FARMER)
    assert found is not None and found.flow is Flow.ADD_INFO
    assert keys(world.unread(FARMER)) == ["status.add_prompt"]

    # Someone else typing the same number is offered to add too, but not shown the receipt.
    await to_phone(world, OTHER_FARMER)
    world.unread(OTHER_FARMER)
    await world.say(OTHER_FARMER, "13912345678")
    (other,) = world.unread(OTHER_FARMER)
    assert other.template == "intake.repeat_other" and "receipt" not in other.params
    assert len(world.uow.store.declarations) == 1


async def test_past_the_days_limit_the_draft_waits_for_tomorrow() -> None:
    world = await build_world()
    for n in range(3):
        await world.declare(FARMER, phone=f"+861391234500{n}")
    await to_summary(world, phone="13912345999")
    world.unread(FARMER)

    refused = await world.press(FARMER, b.Confirm(conv(world)))

    assert (refused.toast, refused.done) == ("intake.too_many_declarations_toast", False)
    assert keys(world.unread(FARMER)) == ["intake.too_many_declarations"]
    assert step(world) == IntakeStep.CONFIRM and len(world.uow.store.declarations) == 3
    world.clock.advance(days=1, minutes=1)
    assert (await world.press(FARMER, b.Confirm(conv(world)))).done
    assert len(world.uow.store.declarations) == 4


async def test_a_cadre_files_a_declaration_for_a_household() -> None:
    world = await build_world()
    refused = await world.run(FARMER, intake.start_for_household)
    assert not refused.done and world.texts_to(FARMER) == ["daibao.not_cadre"]

    await world.run(CADRE, intake.start_for_household)
    assert keys(world.unread(CADRE)) == ["intake.consent_cadre"]
    await world.press(CADRE, b.Consent(conv(world, CADRE), "yes"))
    await world.say(CADRE, "王大山")
    # The cadre is not asked who declares; the phone question is the cadre's.
    assert keys(world.unread(CADRE)) == ["intake.ask_name", "intake.ask_phone_cadre"]
    await from_the_phone(world, CADRE)
    await world.press(CADRE, b.Confirm(conv(world, CADRE)))

    (declaration,) = world.uow.store.declarations.values()
    assert declaration.filed_by_cadre == world.id(CADRE) and declaration.via == "chat"
    assert declaration.village_id == world.villages["QS01"].id
    assert "case.new" in world.texts_to(COLLEAGUE)


async def test_a_cadres_hourly_limit_counts_filings_whose_household_became_the_declarant() -> None:
    """Thirty 代报 an hour, whoever is the declarant: a household that agreed to texts is its own."""
    world = await build_world()
    village_id = world.villages["QS01"].id

    async def filed(uow: UnitOfWork, clock: FakeClock, actor: Actor) -> None:
        for n in range(30):
            household = await uow.persons.add(Role.FARMER)
            new = NewDeclaration(
                village_id=village_id, declared_by=household.id, head_name="王大山",
                phone=f"+86139123400{n:02d}", risk_types=("illness",), description="老伴住院",
                consent_version="2026-11", consent_at=clock.now(), filed_by_cadre=actor.id,
            )  # fmt: skip
            await uow.declarations.add(new, clock.now())

    await world.run(CADRE, filed)
    await world.run(CADRE, intake.start_for_household)
    await world.press(CADRE, b.Consent(conv(world, CADRE), "yes"))
    await world.say(CADRE, "王大山")
    await from_the_phone(world, CADRE)
    world.unread(CADRE)

    refused = await world.press(CADRE, b.Confirm(conv(world, CADRE)))

    assert (refused.toast, refused.done) == ("intake.too_many_declarations_toast", False)
    assert step(world, CADRE) == IntakeStep.CONFIRM and len(world.uow.store.declarations) == 30
    world.clock.advance(hours=1, minutes=1)
    assert (await world.press(CADRE, b.Confirm(conv(world, CADRE)))).done
    assert len(world.uow.store.declarations) == 31


async def test_a_start_not_committed_leaves_nothing_and_ids_are_not_reused() -> None:
    world = await build_world()
    async with world.uow() as uow:
        actor = await actor_for(uow, world.clock, TG, FARMER)
        await intake.start(uow, world.clock, actor, village_code="QS01")
        dropped = await uow.conversations.get(actor.id)
        # never committed: the handler failed after the use case, say

    assert dropped is not None
    assert world.uow.store.conversations == {} and world.uow.sent == []
    assert world.uow.store.accounts.get((TG.value, FARMER)) is None  # the stranger was not kept either
    await start(world)
    assert conv(world) != dropped.id
