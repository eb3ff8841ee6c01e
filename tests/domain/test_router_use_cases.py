"""The one router, on the in-memory unit of work: one open conversation a person (starting another
asks whether to drop it), one set of cancel words for every flow, and help when nothing is open."""

from __future__ import annotations

import pytest

from domain import buttons as b
from domain import cases, household, intake
from domain.conversations import router
from domain.dialogue import PENDING
from domain.messages import Outcome, Outgoing
from domain.model import Flow, IntakeStep
from tests.fakes import CADRE, FARMER, STAFF, World, build_world


async def start(world: World, address: str = FARMER, village: str = "QS01") -> Outcome:
    return await world.run(
        address, lambda uow, clock, actor: intake.start(uow, clock, actor, village_code=village)
    )


def keys(messages: list[Outgoing]) -> list[str]:
    return [m.template for m in messages]


def open_conversation(world: World, address: str = FARMER) -> tuple[int, Flow, str]:
    found = world.conversation(address)
    assert found is not None, f"{address} has nothing open"
    return found.id, found.flow, found.step


async def intake_at_name(world: World) -> int:
    """A declaration begun: consent given, the name asked. Returns its conversation's id."""
    await start(world)
    conv, _, _ = open_conversation(world)
    await world.press(FARMER, b.Consent(conv, "yes"))
    world.unread(FARMER)
    return conv


async def asked_to_switch(world: World) -> tuple[int, int]:
    """With a declaration begun, the household presses 补充 on an earlier one: it is asked whether
    to drop the declaration. Returns (the declaration's conversation, the earlier declaration)."""
    earlier = await world.declare(FARMER)
    conv = await intake_at_name(world)
    await world.run(FARMER, lambda uow, clock, actor: household.press_add(uow, clock, actor, earlier.id))
    return conv, earlier.id


async def test_starting_another_conversation_asks_whether_to_drop_the_open_one() -> None:
    world = await build_world()
    conv, _ = await asked_to_switch(world)

    (ask,) = world.unread(FARMER)
    assert ask.template == "conversation.switch"
    assert ask.params == {"open": {"$t": "flow.intake"}, "new": {"$t": "flow.add_info"}}
    assert [a.button for a in ask.actions[0]] == [b.Switch(conv, "drop"), b.Switch(conv, "keep")]
    found = world.conversation(FARMER)
    assert found is not None and (found.id, found.flow, found.step) == (conv, Flow.INTAKE, IntakeStep.NAME)
    assert found.data[PENDING]["flow"] == "add_info"


async def test_keep_asks_the_open_conversations_question_again() -> None:
    world = await build_world()
    conv, _ = await asked_to_switch(world)
    world.unread(FARMER)

    outcome = await world.press(FARMER, b.Switch(conv, "keep"))

    assert outcome.done
    (again,) = world.unread(FARMER)
    assert (again.template, again.lead) == ("intake.ask_name", "conversation.kept")
    found = world.conversation(FARMER)
    assert found is not None and found.id == conv and PENDING not in found.data
    # Answered once: the question's buttons are stale now.
    for answer in ("drop", "keep"):
        stale = await world.press(FARMER, b.Switch(conv, answer))
        assert (stale.toast, stale.done) == ("intake.stale_button", False)
    assert open_conversation(world) == (conv, Flow.INTAKE, IntakeStep.NAME)


async def test_drop_ends_the_open_conversation_and_starts_the_other() -> None:
    world = await build_world()
    conv, earlier = await asked_to_switch(world)
    world.unread(FARMER)

    await world.press(FARMER, b.Switch(conv, "drop"))

    new, flow, _ = open_conversation(world)
    assert flow is Flow.ADD_INFO and new != conv
    (prompt,) = world.unread(FARMER)
    assert (
        prompt.template == "status.add_prompt"
        and prompt.params["receipt"] == world.declaration(earlier).receipt
    )
    # A button of the dropped declaration no longer works.
    stale = await world.press(FARMER, b.ChooseDeclarant(conv, "self"))
    assert (stale.toast, stale.done) == ("intake.stale_button", False)


async def test_a_switch_button_naming_another_conversation_is_refused() -> None:
    world = await build_world()
    conv, _ = await asked_to_switch(world)

    outcome = await world.press(FARMER, b.Switch(conv + 1, "drop"))

    assert (outcome.toast, outcome.done) == ("intake.stale_button", False)
    found = world.conversation(FARMER)
    assert found is not None and found.id == conv and found.flow is Flow.INTAKE
    nothing = await world.press(CADRE, b.Switch(conv, "drop"))  # someone else's
    assert (nothing.toast, nothing.done) == ("intake.stale_button", False)


async def test_a_cadre_in_a_visit_is_asked_before_filing_for_a_household() -> None:
    world = await build_world()
    declaration = await world.declare(FARMER)
    task = world.task_of(declaration.id)
    rules = world.services.rules
    await world.run(CADRE, lambda uow, clock, actor: cases.acknowledge(uow, clock, rules, actor, task.id))
    await world.run(CADRE, lambda uow, clock, actor: cases.start_visit(uow, clock, rules, actor, task.id))
    visit, _, _ = open_conversation(world, CADRE)
    world.unread(CADRE)

    await world.run(CADRE, intake.start_for_household)

    (ask,) = world.unread(CADRE)
    assert ask.template == "conversation.switch" and ask.params["open"] == {"$t": "flow.visit"}
    await world.press(CADRE, b.Switch(visit, "drop"))
    _, flow, step = open_conversation(world, CADRE)
    assert (flow, step) == (Flow.INTAKE, IntakeStep.CONSENT)
    assert keys(world.unread(CADRE)) == ["intake.consent_cadre"]


async def test_starting_the_same_declaration_again_resumes_it() -> None:
    world = await build_world()
    conv = await intake_at_name(world)

    await start(world)

    (resumed,) = world.unread(FARMER)
    assert (resumed.template, resumed.lead) == ("intake.ask_name", "intake.resumed")
    assert open_conversation(world) == (conv, Flow.INTAKE, IntakeStep.NAME)


@pytest.mark.parametrize("word", ["取消", "cancel", "不报了", " Cancel ", "/cancel"])
async def test_a_cancel_word_cancels_a_declaration(word: str) -> None:
    world = await build_world()
    await intake_at_name(world)

    await world.say(FARMER, word)

    (done,) = world.unread(FARMER)
    assert (done.template, done.keyboard) == ("cancel.done", "remove")
    assert world.conversation(FARMER) is None


async def test_a_cancel_word_cancels_any_flow() -> None:
    world = await build_world()
    declaration = await world.declare(FARMER)
    task = world.task_of(declaration.id)
    rules = world.services.rules
    await world.run(CADRE, lambda uow, clock, actor: cases.acknowledge(uow, clock, rules, actor, task.id))
    await world.run(CADRE, lambda uow, clock, actor: cases.start_visit(uow, clock, rules, actor, task.id))
    await world.run(FARMER, lambda uow, clock, actor: household.press_add(uow, clock, actor, declaration.id))
    assert open_conversation(world, CADRE)[1] is Flow.VISIT
    assert open_conversation(world, FARMER)[1] is Flow.ADD_INFO

    await world.say(CADRE, "取消")
    await world.say(FARMER, "不报了")

    assert world.conversation(CADRE) is None and world.conversation(FARMER) is None
    assert world.texts_to(CADRE)[-1] == world.texts_to(FARMER)[-1] == "cancel.done"
    assert world.uow.store.attachments == []  # the words were not taken as information added


async def test_cancel_with_nothing_open_says_so_and_a_stale_cancel_button_is_refused() -> None:
    world = await build_world()
    await world.say(FARMER, "取消")
    assert world.texts_to(FARMER) == ["cancel.nothing"]

    conv = await intake_at_name(world)
    stale = await world.run(FARMER, lambda uow, clock, actor: router.cancel(uow, clock, actor, conv + 1))
    assert (stale.toast, stale.done) == ("intake.stale_button", False)
    assert world.conversation(FARMER) is not None

    await world.press(FARMER, b.Cancel(conv))
    assert world.conversation(FARMER) is None and world.texts_to(FARMER)[-1] == "cancel.done"


@pytest.mark.parametrize(
    ("address", "key"), [(FARMER, "help.farmer"), (CADRE, "help.cadre"), (STAFF, "help.staff")]
)
async def test_with_nothing_open_text_gets_the_help(address: str, key: str) -> None:
    world = await build_world()

    await world.say(address, "你好")

    assert world.texts_to(address) == [key]
    assert world.conversation(address) is None


async def test_the_menu_word_lists_the_households_declarations() -> None:
    world = await build_world()
    await world.declare(FARMER)
    world.unread(FARMER)

    await world.say(FARMER, "我的申报")

    assert keys(world.unread(FARMER)) == ["status.list"]


async def test_the_menu_word_during_a_declaration_shows_the_list_and_asks_again_taking_nothing() -> None:
    world = await build_world()
    await world.declare(FARMER)
    conv = await intake_at_name(world)

    await world.say(FARMER, "我的申报")  # the standing menu button, tapped mid-way

    assert keys(world.unread(FARMER)) == ["status.list", "intake.ask_name"]
    found = world.conversation(FARMER)
    assert found is not None and found.id == conv and found.step == IntakeStep.NAME
    assert "name" not in found.data  # the button's words were not taken as the name
