"""A household's own declarations, on the in-memory unit of work: 我的申报, withdrawing (only before
签收), adding information (passed on to whoever handles the case), and its daily limit."""

from __future__ import annotations

from domain import buttons as b
from domain import cases, household
from domain.conversations import router
from domain.dialogue import Kind, Said
from domain.messages import Outcome, Outgoing
from domain.model import AttachmentKind, Declaration, DeclarationStatus, Flow, TaskStatus
from tests.fakes import CADRE, COLLEAGUE, FARMER, OTHER_FARMER, World, build_world

S = DeclarationStatus


async def send(world: World, address: str, said: Said) -> None:
    await world.run(address, lambda uow, clock, actor: router.answer(uow, world.services, actor, said))


async def acknowledge(world: World, declaration: Declaration) -> None:
    task = world.task_of(declaration.id)
    rules = world.services.rules
    outcome = await world.run(
        CADRE, lambda uow, clock, actor: cases.acknowledge(uow, clock, rules, actor, task.id)
    )
    assert outcome.done


async def mine(world: World, address: str = FARMER) -> Outgoing:
    await world.run(address, household.my_declarations)
    return world.last_to(address)


async def ask_withdraw(world: World, address: str, declaration_id: int) -> Outcome:
    return await world.run(
        address, lambda uow, clock, actor: household.ask_withdraw(uow, clock, actor, declaration_id)
    )


async def withdraw(world: World, address: str, declaration_id: int) -> Outcome:
    return await world.run(
        address, lambda uow, clock, actor: household.withdraw(uow, clock, actor, declaration_id)
    )


async def press_add(world: World, address: str, declaration_id: int) -> Outcome:
    return await world.run(
        address, lambda uow, clock, actor: household.press_add(uow, clock, actor, declaration_id)
    )


def keys(messages: list[Outgoing]) -> list[str]:
    return [m.template for m in messages]


def buttons(message: Outgoing) -> list[b.Button | str]:
    return [a.button for row in message.actions for a in row]


async def test_my_declarations_lists_each_with_what_may_be_done() -> None:
    world = await build_world()
    assert (await mine(world)).template == "status.none"

    declaration = await world.declare(FARMER)
    listed = await mine(world)
    assert listed.template == "status.list"
    (line,) = listed.params["lines"]["$lines"]
    assert line["$with"]["receipt"] == declaration.receipt
    assert line["$with"]["state"] == {"$t": "state.submitted"}
    assert buttons(listed) == [b.AddInfo(declaration.id), b.Withdraw(declaration.id)]

    await acknowledge(world, declaration)
    listed = await mine(world)
    assert buttons(listed) == [b.AddInfo(declaration.id)]  # no withdrawing once acknowledged
    assert listed.params["lines"]["$lines"][0]["$with"]["state"] == {"$t": "state.acknowledged"}
    assert (await mine(world, OTHER_FARMER)).template == "status.none"


async def test_a_declaration_is_withdrawn_before_it_is_acknowledged() -> None:
    world = await build_world()
    declaration = await world.declare(FARMER)
    world.unread(FARMER)

    outcome = await ask_withdraw(world, FARMER, declaration.id)

    assert not outcome.done  # nothing yet: it asks once more
    (sure,) = world.unread(FARMER)
    assert sure.template == "status.withdraw_sure" and buttons(sure) == [b.WithdrawYes(declaration.id)]
    assert world.declaration(declaration.id).status is S.SUBMITTED

    outcome = await withdraw(world, FARMER, declaration.id)

    assert outcome.toast == "status.withdrawn_toast" and outcome.done
    assert world.declaration(declaration.id).status is S.WITHDRAWN
    assert world.task_of(declaration.id).status is TaskStatus.CLOSED
    assert keys(world.unread(FARMER)) == ["status.withdrawn"]
    for cadre in (CADRE, COLLEAGUE):
        assert world.texts_to(cadre) == ["case.new", "case.withdrawn"]
    assert world.uow.store.events[-1].kind == "withdrawn"
    again = await withdraw(world, FARMER, declaration.id)
    assert (again.toast, again.done) == ("status.not_open", False)
    assert world.texts_to(CADRE).count("case.withdrawn") == 1


async def test_withdrawing_is_refused_once_a_cadre_acknowledged() -> None:
    world = await build_world()
    declaration = await world.declare(FARMER)
    await acknowledge(world, declaration)
    task = world.task_of(declaration.id)
    sent = len(world.uow.sent)

    outcome = await withdraw(world, FARMER, declaration.id)

    assert (outcome.toast, outcome.alert, outcome.done) == ("status.cannot_withdraw", True, False)
    assert world.declaration(declaration.id).status is S.ACKNOWLEDGED
    assert world.task_of(declaration.id) == task and len(world.uow.sent) == sent


async def test_another_person_can_neither_withdraw_nor_add_to_a_declaration() -> None:
    world = await build_world()
    declaration = await world.declare(FARMER)

    for use_case in (ask_withdraw, withdraw, press_add):
        outcome = await use_case(world, OTHER_FARMER, declaration.id)
        assert (outcome.toast, outcome.done) == ("status.not_open", False), use_case

    assert world.declaration(declaration.id).status is S.SUBMITTED
    assert world.conversation(OTHER_FARMER) is None and world.texts_to(OTHER_FARMER) == []


async def test_information_added_goes_to_the_cadres_then_to_the_owner_alone() -> None:
    world = await build_world()
    declaration = await world.declare(FARMER)
    for address in (FARMER, CADRE, COLLEAGUE):
        world.unread(address)

    await press_add(world, FARMER, declaration.id)
    adding = world.conversation(FARMER)
    assert adding is not None and adding.flow is Flow.ADD_INFO
    assert keys(world.unread(FARMER)) == ["status.add_prompt"]
    await send(world, FARMER, Said.typed("住院发票已经拿到了"))
    await send(world, FARMER, Said(Kind.PHOTO, ref="photo-1"))

    received = world.unread(FARMER)
    assert keys(received) == ["status.add_received", "status.add_received"]
    assert received[-1].params == {"count": 2}
    for cadre in (CADRE, COLLEAGUE):  # nobody owns the case yet: everyone it went to hears
        text, photo = world.unread(cadre)
        assert (text.template, text.params["text"]) == ("case.info_added_text", "住院发票已经拿到了")
        assert text.params["source"] == {"$t": "case.from_household"}
        assert photo.template == "case.info_added_media" and photo.media == {
            "kind": "photo",
            "file_id": "photo-1",
        }
    stored = [(a.kind, a.ref) for a in world.uow.store.attachments if a.declaration_id == declaration.id]
    assert stored == [(AttachmentKind.TEXT, "住院发票已经拿到了"), (AttachmentKind.PHOTO, "photo-1")]

    await acknowledge(world, declaration)
    world.unread(CADRE)
    world.unread(COLLEAGUE)
    await send(world, FARMER, Said.typed("又补充一张诊断书"))
    assert keys(world.unread(CADRE)) == ["case.info_added_text"]  # the owner alone now
    assert world.unread(COLLEAGUE) == []

    done = b.AddDone(adding.id)
    assert (
        await world.run(
            FARMER, lambda uow, clock, actor: household.finish_adding(uow, clock, actor, done.conv)
        )
    ).done
    assert world.conversation(FARMER) is None
    assert world.last_to(FARMER).template == "status.add_done"
    stale = await world.run(
        FARMER, lambda uow, clock, actor: household.finish_adding(uow, clock, actor, done.conv)
    )
    assert (stale.toast, stale.done) == ("intake.stale_button", False)


async def test_adding_is_limited_per_day() -> None:
    world = await build_world()
    declaration = await world.declare(FARMER)
    await press_add(world, FARMER, declaration.id)
    for n in range(household.ADDED_PER_DAY[0]):
        await send(world, FARMER, Said.typed(f"第{n + 1}条补充"))
    world.unread(FARMER)
    before = len(world.uow.store.attachments)

    await send(world, FARMER, Said.typed("再来一条"))

    assert keys(world.unread(FARMER)) == ["status.add_too_many"]
    assert len(world.uow.store.attachments) == before == household.ADDED_PER_DAY[0]
    world.clock.advance(days=1)
    await send(world, FARMER, Said.typed("第二天的补充"))
    assert keys(world.unread(FARMER)) == ["status.add_received"]


async def test_adding_to_a_declaration_no_longer_open_ends_the_conversation() -> None:
    world = await build_world()
    declaration = await world.declare(FARMER)
    await press_add(world, FARMER, declaration.id)
    await withdraw(world, FARMER, declaration.id)
    world.unread(FARMER)

    await send(world, FARMER, Said.typed("还有一张照片"))

    assert keys(world.unread(FARMER)) == ["status.not_open"]
    assert world.conversation(FARMER) is None
    assert world.uow.store.attachments == []
