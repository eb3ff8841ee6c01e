"""A case after submission, on the in-memory unit of work: 签收, the visit, the verdict, the
objection and the township's re-check, handing over; who may and who is refused."""

from __future__ import annotations

import pytest

from domain import buttons as b
from domain import cases, household, work
from domain.actor import actor_for
from domain.messages import Action, Outcome, Outgoing
from domain.model import Declaration, DeclarationStatus, Flow, Role, Task, TaskStatus, Verdict
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

S = DeclarationStatus


async def acknowledge(world: World, address: str, task_id: int) -> Outcome:
    rules = world.services.rules
    return await world.run(
        address, lambda uow, clock, actor: cases.acknowledge(uow, clock, rules, actor, task_id)
    )


async def step(world: World, address: str, task_id: int, action: str) -> Outcome:
    rules = world.services.rules
    return await world.run(
        address, lambda uow, clock, actor: cases.simple_step(uow, clock, rules, actor, task_id, action)
    )


async def start_visit(world: World, address: str, task_id: int) -> Outcome:
    rules = world.services.rules
    return await world.run(
        address, lambda uow, clock, actor: cases.start_visit(uow, clock, rules, actor, task_id)
    )


async def verdict(world: World, address: str, task_id: int, chosen: Verdict) -> Outcome:
    rules = world.services.rules
    return await world.run(
        address, lambda uow, clock, actor: cases.choose_verdict(uow, clock, rules, actor, task_id, chosen)
    )


async def offer(world: World, address: str, task_id: int) -> Outcome:
    return await world.run(
        address, lambda uow, clock, actor: cases.offer_handover(uow, clock, actor, task_id)
    )


async def hand(world: World, address: str, task_id: int, to: int) -> Outcome:
    return await world.run(address, lambda uow, clock, actor: cases.hand_over(uow, clock, actor, task_id, to))


def conv(world: World, address: str) -> int:
    found = world.conversation(address)
    assert found is not None
    return found.id


def keys(messages: list[Outgoing]) -> list[str]:
    return [m.template for m in messages]


def refused(outcome: Outcome, key: str) -> bool:
    return (outcome.toast, outcome.done, outcome.alert) == (key, False, True)


async def submitted(world: World, *, risks: tuple[str, ...] = ("illness",)) -> tuple[Declaration, Task]:
    declaration = await world.declare(FARMER, risks=risks)
    for address in (FARMER, CADRE, COLLEAGUE):
        world.unread(address)
    return declaration, world.task_of(declaration.id)


async def acknowledged(world: World, **kwargs: tuple[str, ...]) -> tuple[Declaration, Task]:
    declaration, task = await submitted(world, **kwargs)
    assert (await acknowledge(world, CADRE, task.id)).done
    for address in (FARMER, CADRE, COLLEAGUE):
        world.unread(address)
    return declaration, task


async def visited(world: World) -> tuple[Declaration, Task]:
    declaration, task = await acknowledged(world)
    await start_visit(world, CADRE, task.id)
    rules = world.services.rules
    c = conv(world, CADRE)
    await world.run(CADRE, lambda uow, clock, actor: cases.visit_day_button(uow, clock, rules, actor, c, 0))
    await world.say(CADRE, "家中两人住院，收入下降")
    assert (
        await world.run(CADRE, lambda uow, clock, actor: cases.finish_visit(uow, clock, rules, actor, c))
    ).done
    assert world.declaration(declaration.id).status is S.VISITED
    for address in (FARMER, CADRE):
        world.unread(address)
    return declaration, task


async def not_eligible(world: World) -> tuple[Declaration, Task]:
    declaration, task = await visited(world)
    await verdict(world, CADRE, task.id, Verdict.NOT_ELIGIBLE)
    await world.say(CADRE, "家庭人均收入高于监测线")
    assert world.declaration(declaration.id).status is S.NOT_ELIGIBLE
    for address in (FARMER, CADRE):
        world.unread(address)
    return declaration, task


async def objected(world: World) -> tuple[Declaration, Task]:
    declaration, task = await not_eligible(world)
    await world.run(
        FARMER, lambda uow, clock, actor: cases.start_objection(uow, clock, actor, declaration.id)
    )
    await world.say(FARMER, "我家确实困难，收入没有那么高")
    assert world.declaration(declaration.id).status is S.OBJECTED
    for address in (FARMER, CADRE, STAFF):
        world.unread(address)
    return declaration, task


# --- 签收 ---------------------------------------------------------------------------------------------


async def test_only_a_cadre_of_the_village_acknowledges_and_the_household_is_told() -> None:
    world = await build_world()
    declaration, task = await submitted(world)

    for stranger in (CADRE_OTHER_VILLAGE, CADRE_OTHER_TOWNSHIP, STAFF, FARMER):
        assert refused(await acknowledge(world, stranger, task.id), "case.not_allowed"), stranger
    assert world.declaration(declaration.id).status is S.SUBMITTED
    assert world.task_of(declaration.id) == task
    assert world.unread(FARMER) == world.unread(CADRE) == []

    outcome = await acknowledge(world, CADRE, task.id)

    assert outcome.toast == "case.ack_done" and outcome.done
    assert world.declaration(declaration.id).status is S.ACKNOWLEDGED
    now = world.task_of(declaration.id)
    assert (now.status, now.acknowledged_by, now.step) == (TaskStatus.ACKNOWLEDGED, world.id(CADRE), "visit")
    (next_step,) = world.unread(CADRE)
    assert next_step.template == "case.acknowledged"
    assert next_step.actions[0][0].button == b.Step(task.id, "visit")
    assert keys(world.unread(COLLEAGUE)) == ["case.acknowledged_by_other"]
    (told,) = world.unread(FARMER)
    assert (told.template, told.params["name"]) == ("farmer.acknowledged", "张伟")
    assert [e.kind for e in world.uow.store.events][-1] == "acknowledge"


async def test_a_case_is_acknowledged_once() -> None:
    world = await build_world()
    declaration, task = await acknowledged(world)

    assert refused(await acknowledge(world, COLLEAGUE, task.id), "case.already_acknowledged")
    # Its owner pressing 签收 again is told it is theirs (not that "someone" has it).
    again = await acknowledge(world, CADRE, task.id)
    assert (again.toast, again.done) == ("case.ack_yours", True)

    assert world.task_of(declaration.id).acknowledged_by == world.id(CADRE)
    assert world.unread(FARMER) == world.unread(COLLEAGUE) == world.unread(CADRE) == []
    assert world.texts_to(FARMER).count("farmer.acknowledged") == 1


async def test_signed_from_the_card_every_new_case_message_loses_its_button() -> None:
    world = await build_world()
    _, task = await submitted(world)

    def new_case(address: str) -> Outgoing:
        key = f"case-new:{task.id}:{world.id(address)}"
        (message,) = [m.message for m in world.uow.sent if m.key == key]
        return message

    assert new_case(CADRE).actions == new_case(COLLEAGUE).actions == ((Action(b.Acknowledge(task.id)),),)
    assert not (await world.press(CADRE, b.OpenTask(task.id))).done
    (card,) = world.unread(CADRE)
    assert card.template == "work.card" and card.actions[0][0].button == b.Acknowledge(task.id)

    assert (await world.press(CADRE, b.Acknowledge(task.id))).toast == "case.ack_done"

    assert new_case(CADRE).actions == new_case(COLLEAGUE).actions == ()
    assert (await world.press(CADRE, b.Acknowledge(task.id))).toast == "case.ack_yours"
    assert refused(await world.press(COLLEAGUE, b.Acknowledge(task.id)), "case.already_acknowledged")


async def test_acknowledging_tells_a_stranger_nothing_and_a_withdrawn_case_is_not_called_acknowledged() -> (
    None
):
    world = await build_world()
    _, task = await acknowledged(world)
    # A cadre of another village learns nothing of where the case stands.
    assert refused(await acknowledge(world, CADRE_OTHER_VILLAGE, task.id), "case.not_allowed")

    other = await world.declare(FARMER, phone="+8613912345099")
    other_task = world.task_of(other.id)
    withdrawn = await world.run(
        FARMER, lambda uow, clock, actor: household.withdraw(uow, clock, actor, other.id)
    )
    assert withdrawn.done and world.declaration(other.id).status is S.WITHDRAWN
    assert refused(await acknowledge(world, CADRE, other_task.id), "case.step_done")


async def test_a_case_that_does_not_exist_is_not_found() -> None:
    world = await build_world()
    assert refused(await acknowledge(world, CADRE, 999), "case.not_found")


# --- visit, verdict, objection, re-check --------------------------------------------------------------


async def test_visit_then_not_eligible_with_a_reason_then_objection_and_township_recheck() -> None:
    world = await build_world()
    declaration, task = await acknowledged(world)
    rules = world.services.rules

    # Only the owner records the visit.
    assert refused(await start_visit(world, COLLEAGUE, task.id), "case.not_yours")
    await start_visit(world, CADRE, task.id)
    visit = world.conversation(CADRE)
    assert visit is not None and visit.flow is Flow.VISIT
    await world.run(
        CADRE, lambda uow, clock, actor: cases.visit_day_button(uow, clock, rules, actor, visit.id, 0)
    )
    await world.say(CADRE, "家中两人住院，收入下降")
    assert keys(world.unread(CADRE)) == ["visit.ask_date", "visit.ask_notes", "visit.ask_photos"]
    outcome = await world.run(
        CADRE, lambda uow, clock, actor: cases.finish_visit(uow, clock, rules, actor, visit.id)
    )
    assert outcome.toast == "case.visit_recorded"
    assert world.declaration(declaration.id).status is S.VISITED
    (told,) = world.unread(FARMER)
    assert told.template == "farmer.visited" and told.params["date"] == {"$date": "2026-11-23"}
    (verdicts,) = world.unread(CADRE)
    assert verdicts.template == "case.visited"
    assert b.ChooseVerdict(task.id, Verdict.NOT_ELIGIBLE) in [
        a.button for row in verdicts.actions for a in row
    ]

    # 不纳入 asks for the reason first; a reason too short is explained and the question stays.
    await verdict(world, CADRE, task.id, Verdict.NOT_ELIGIBLE)
    asking = world.conversation(CADRE)
    assert asking is not None and asking.flow is Flow.VERDICT_REASON
    assert world.declaration(declaration.id).status is S.VISITED
    await world.say(CADRE, "高")
    assert keys(world.unread(CADRE)) == ["case.ask_reason", "validate.reason"]
    assert world.conversation(CADRE) == asking
    await world.say(CADRE, "家庭人均收入高于监测线")
    assert keys(world.unread(CADRE)) == ["case.decided"]
    decided = world.declaration(declaration.id)
    assert (decided.status, decided.verdict, decided.verdict_reason) == (
        S.NOT_ELIGIBLE,
        Verdict.NOT_ELIGIBLE,
        "家庭人均收入高于监测线",
    )
    assert world.task_of(declaration.id).status is TaskStatus.DONE
    (feedback,) = world.unread(FARMER)
    assert feedback.template == "farmer.verdict_not_eligible"
    assert feedback.actions[0][0].button == b.Object(declaration.id)

    # Only the household objects; the township is asked to re-check.
    other = await world.run(
        OTHER_FARMER, lambda uow, clock, actor: cases.start_objection(uow, clock, actor, declaration.id)
    )
    assert refused(other, "case.not_allowed") and world.conversation(OTHER_FARMER) is None
    await world.run(
        FARMER, lambda uow, clock, actor: cases.start_objection(uow, clock, actor, declaration.id)
    )
    await world.say(FARMER, "我家确实困难，收入没有那么高")
    assert keys(world.unread(FARMER)) == ["farmer.ask_objection", "farmer.objection_received"]
    assert world.declaration(declaration.id).status is S.OBJECTED
    (recheck,) = world.unread(STAFF)
    assert (
        recheck.template == "case.objection" and recheck.params["objection"] == "我家确实困难，收入没有那么高"
    )
    assert [a.button for a in recheck.actions[0]] == [b.Step(task.id, "uphold"), b.Step(task.id, "reopen")]
    assert world.texts_to(STAFF_OTHER_TOWNSHIP) == []

    for not_township in (CADRE, STAFF_OTHER_TOWNSHIP, FARMER):
        assert refused(await step(world, not_township, task.id, "uphold"), "case.township_only")
    outcome = await step(world, STAFF, task.id, "uphold")
    assert outcome.toast == "case.done_uphold"
    assert world.declaration(declaration.id).status is S.CLOSED
    assert keys(world.unread(FARMER)) == ["farmer.upheld"]
    assert keys(world.unread(STAFF)) == ["case.upheld"]
    assert refused(await step(world, STAFF, task.id, "uphold"), "case.step_done")


async def test_the_township_may_reopen_an_objected_case_for_its_owner() -> None:
    world = await build_world()
    declaration, task = await objected(world)

    assert (await step(world, STAFF, task.id, "reopen")).done

    assert world.declaration(declaration.id).status is S.ACKNOWLEDGED
    assert keys(world.unread(CADRE)) == ["case.reopened"]
    assert keys(world.unread(FARMER)) == ["farmer.reopened"]


async def test_an_objection_too_short_is_explained_and_the_question_stays() -> None:
    world = await build_world()
    declaration, _ = await not_eligible(world)
    await world.run(
        FARMER, lambda uow, clock, actor: cases.start_objection(uow, clock, actor, declaration.id)
    )

    await world.say(FARMER, "不")

    assert keys(world.unread(FARMER)) == ["farmer.ask_objection", "validate.objection"]
    found = world.conversation(FARMER)
    assert found is not None and found.flow is Flow.OBJECTION
    assert world.declaration(declaration.id).status is S.NOT_ELIGIBLE


async def test_the_whole_procedure_to_entry() -> None:
    world = await build_world()
    declaration, task = await visited(world)

    assert (await verdict(world, CADRE, task.id, Verdict.MARGINAL)).toast == "case.decided_toast"
    assert keys(world.unread(FARMER)) == ["farmer.proposed"]
    assert (await step(world, CADRE, task.id, "publicize")).done
    started = world.declaration(declaration.id).notice_started_at
    assert started == world.clock.now()
    # 村内公示 lasts five days at least.
    early = await step(world, CADRE, task.id, "close_notice")
    assert (early.toast, early.done) == ("case.notice_not_over", False)
    world.clock.advance(days=5)
    assert (await step(world, CADRE, task.id, "close_notice")).done
    assert world.declaration(declaration.id).status is S.TOWNSHIP_REVIEW
    assert keys(world.unread(STAFF)) == ["case.for_review"]
    assert refused(await step(world, CADRE, task.id, "approve"), "case.township_only")
    assert (await step(world, STAFF, task.id, "approve")).done
    assert (await step(world, STAFF, task.id, "enter")).done

    entered = world.declaration(declaration.id)
    assert (entered.status, entered.verdict) == (S.ENTERED, Verdict.MARGINAL)
    assert world.task_of(declaration.id).status is TaskStatus.DONE
    assert keys(world.unread(FARMER)) == ["farmer.entered"]
    assert "case.entered" in keys(world.unread(CADRE))  # the owner hears of it too
    assert refused(await step(world, STAFF, task.id, "enter"), "case.step_done")
    kinds = [e.kind for e in world.uow.store.events]
    assert kinds[-6:] == ["visit", "propose", "publicize", "close_notice", "approve", "enter"]


async def test_the_green_channel_opens_once_and_only_for_a_disaster_or_accident() -> None:
    world = await build_world()
    _, illness = await acknowledged(world)
    assert refused(await step(world, CADRE, illness.id, "green"), "case.green_not_applicable")

    declaration, task = await acknowledged(world, risks=("disaster",))
    assert refused(await step(world, COLLEAGUE, task.id, "green"), "case.not_yours")
    assert (await step(world, CADRE, task.id, "green")).toast == "case.green_done"
    assert world.declaration(declaration.id).green_channel
    assert keys(world.unread(STAFF)) == ["case.green_channel"]
    assert refused(await step(world, CADRE, task.id, "green"), "case.step_done")


# --- 转交 ---------------------------------------------------------------------------------------------


async def test_the_owner_hands_a_case_to_a_colleague() -> None:
    world = await build_world()
    declaration, task = await acknowledged(world)

    outcome = await offer(world, CADRE, task.id)

    assert not outcome.done  # the case card keeps its buttons
    (choose,) = world.unread(CADRE)
    assert choose.template == "case.choose_colleague"
    assert [a.button for row in choose.actions for a in row] == [b.HandTo(task.id, world.id(COLLEAGUE))]

    outcome = await hand(world, CADRE, task.id, world.id(COLLEAGUE))

    assert (outcome.toast, outcome.params) == ("case.handed_toast", {"name": "赵强"})
    assert world.task_of(declaration.id).acknowledged_by == world.id(COLLEAGUE)
    assert keys(world.unread(COLLEAGUE)) == ["case.handed_to_you"]
    assert world.uow.store.events[-1].kind == "handed_over"
    # The case is the colleague's now.
    assert refused(await start_visit(world, CADRE, task.id), "case.not_yours")
    assert refused(await hand(world, CADRE, task.id, world.id(CADRE)), "case.not_yours")
    await start_visit(world, COLLEAGUE, task.id)
    assert keys(world.unread(COLLEAGUE)) == ["visit.ask_date"]


async def test_handing_over_is_refused_to_others_and_to_anyone_not_a_reachable_colleague() -> None:
    world = await build_world()
    declaration, task = await submitted(world)
    colleague = world.id(COLLEAGUE)

    # Nobody owns it yet: the cadre may not, and the township may not hand over an unacknowledged case.
    assert refused(await offer(world, CADRE, task.id), "case.not_yours")
    assert refused(await hand(world, STAFF, task.id, colleague), "case.step_done")
    await acknowledge(world, CADRE, task.id)
    async with world.uow() as uow:  # a third cadre of 李家村 who never bound a chat
        silent = await uow.persons.add(
            Role.CADRE, name="钱多", township_id=world.villages["QS01"].township_id
        )
        await uow.persons.set_villages(silent.id, (world.villages["QS01"].id,))
        await uow.commit()
    before = world.task_of(declaration.id)
    sent = len(world.uow.sent)

    assert refused(await offer(world, COLLEAGUE, task.id), "case.not_yours")
    assert refused(await offer(world, CADRE_OTHER_VILLAGE, task.id), "case.not_allowed")
    assert refused(await offer(world, STAFF_OTHER_TOWNSHIP, task.id), "case.not_allowed")
    assert refused(await hand(world, COLLEAGUE, task.id, colleague), "case.not_yours")
    assert refused(await hand(world, CADRE, task.id, world.id(CADRE_OTHER_VILLAGE)), "case.not_a_colleague")
    assert refused(await hand(world, CADRE, task.id, world.id(CADRE)), "case.not_a_colleague")
    assert refused(await hand(world, CADRE, task.id, world.id(FARMER)), "case.not_a_colleague")
    assert refused(await hand(world, CADRE, task.id, silent.id), "case.colleague_unreachable")
    assert refused(await hand(world, CADRE, 999, colleague), "case.not_found")

    assert world.task_of(declaration.id) == before and len(world.uow.sent) == sent
    # The township may reassign.
    assert (await hand(world, STAFF, task.id, colleague)).done
    assert world.task_of(declaration.id).acknowledged_by == colleague


async def test_with_no_colleague_to_take_it_the_offer_is_refused() -> None:
    world = await build_world()
    declaration = await world.declare(FARMER, village="BS01")  # 白水村 has one cadre
    task = world.task_of(declaration.id)
    await acknowledge(world, CADRE_OTHER_TOWNSHIP, task.id)

    assert refused(await offer(world, CADRE_OTHER_TOWNSHIP, task.id), "case.no_colleague")


async def test_a_cadre_moved_away_no_longer_acts_and_the_township_reassigns_the_case() -> None:
    world = await build_world()
    declaration, task = await acknowledged(world)
    async with world.uow() as uow:  # the roster moves 张伟 to 王家村
        await uow.persons.set_villages(world.id(CADRE), (world.villages["QS02"].id,))
        await uow.commit()

    assert refused(await start_visit(world, CADRE, task.id), "case.not_allowed")
    assert refused(await offer(world, CADRE, task.id), "case.not_allowed")
    assert (await hand(world, STAFF, task.id, world.id(COLLEAGUE))).done
    assert world.task_of(declaration.id).acknowledged_by == world.id(COLLEAGUE)
    await start_visit(world, COLLEAGUE, task.id)
    assert keys(world.unread(COLLEAGUE))[-1] == "visit.ask_date"


# --- two presses at once: the first wins ---------------------------------------------------------------


async def test_of_two_cadres_acknowledging_at_once_the_first_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    world = await build_world()
    declaration, task = await submitted(world)
    seen = world.declaration(declaration.id)  # what 赵强's press read, before 张伟's committed
    await acknowledge(world, CADRE, task.id)
    sent = len(world.uow.sent)

    async def as_read(declaration_id: int) -> Declaration:
        return seen

    rules = world.services.rules
    async with world.uow() as uow:
        monkeypatch.setattr(uow.declarations, "get", as_read)
        actor = await actor_for(uow, world.clock, TG, COLLEAGUE)
        outcome = await cases.acknowledge(uow, world.clock, rules, actor, task.id)
        await uow.commit()

    assert refused(outcome, "case.already_acknowledged")
    assert world.task_of(declaration.id).acknowledged_by == world.id(CADRE)
    assert len(world.uow.sent) == sent  # the household is not told twice
    assert [e.kind for e in world.uow.store.events].count("acknowledge") == 1


async def test_a_hand_over_raced_by_the_townships_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    world = await build_world()
    declaration, task = await acknowledged(world)
    seen = world.task_of(declaration.id)  # owned by 张伟 when his press read it
    await hand(world, STAFF, task.id, world.id(COLLEAGUE))

    async def as_read(task_id: int) -> Task:
        return seen

    async with world.uow() as uow:
        monkeypatch.setattr(uow.tasks, "get", as_read)
        actor = await actor_for(uow, world.clock, TG, CADRE)
        outcome = await cases.hand_over(uow, world.clock, actor, task.id, world.id(COLLEAGUE))
        await uow.commit()

    assert refused(outcome, "case.step_done")
    assert world.task_of(declaration.id).acknowledged_by == world.id(COLLEAGUE)
    assert world.texts_to(COLLEAGUE).count("case.handed_to_you") == 1


async def test_recording_the_visit_again_starts_over_and_its_old_buttons_are_stale() -> None:
    world = await build_world()
    _, task = await acknowledged(world)
    rules = world.services.rules
    await start_visit(world, CADRE, task.id)
    first = conv(world, CADRE)

    await start_visit(world, CADRE, task.id)

    second = world.conversation(CADRE)
    assert second is not None and second.id != first and second.step == "date"
    stale = await world.run(
        CADRE, lambda uow, clock, actor: cases.visit_day_button(uow, clock, rules, actor, first, 0)
    )
    assert (stale.toast, stale.done) == ("intake.stale_button", False)
    assert world.conversation(CADRE) == second


async def _with_county(world: World) -> None:
    """青山镇 belongs to 青山县, whose county person 周明 has bound a chat (address 4001)."""
    async with world.uow() as uow:
        township = await uow.geography.township_by_name("青山镇")
        assert township is not None
        await uow.geography.set_township_county(township.id, "青山县")
        zhou = await uow.persons.add(Role.COUNTY, name="周明", phone="+8613800000007", county="青山县")
        await uow.persons.bind(zhou.id, TG, "4001", world.clock.now())
        await uow.commit()


async def _approved(world: World) -> tuple[Declaration, Task]:
    declaration, task = await visited(world)
    assert (await verdict(world, CADRE, task.id, Verdict.SUDDEN)).done
    assert (await step(world, CADRE, task.id, "publicize")).done
    world.clock.advance(days=5)
    assert (await step(world, CADRE, task.id, "close_notice")).done
    assert (await step(world, STAFF, task.id, "approve")).done
    return declaration, task


async def test_the_county_records_its_confirmation_and_the_township_no_longer_does() -> None:
    world = await build_world()
    await _with_county(world)
    declaration, task = await _approved(world)
    assert keys(world.unread(STAFF))[-1] == "case.approved_to_county"
    (asked,) = world.unread("4001")
    assert asked.template == "case.for_county"
    assert asked.actions[0][0].button == b.Step(task.id, "enter")

    assert refused(await step(world, STAFF, task.id, "enter"), "case.county_only")
    assert refused(await step(world, CADRE, task.id, "enter"), "case.county_only")
    assert (await step(world, "4001", task.id, "enter")).done

    assert world.declaration(declaration.id).status is S.ENTERED
    assert keys(world.unread(FARMER))[-1] == "farmer.entered"
    assert "case.entered" in keys(world.unread(STAFF))  # the township hears the county's step


async def test_a_county_person_of_another_county_may_not_and_sees_nothing() -> None:
    world = await build_world()
    await _with_county(world)
    _, task = await _approved(world)
    async with world.uow() as uow:
        other = await uow.persons.add(Role.COUNTY, name="吴", phone="+8613800000008", county="白水县")
        await uow.persons.bind(other.id, TG, "4002", world.clock.now())
        await uow.commit()
    assert refused(await step(world, "4002", task.id, "enter"), "case.county_only")
    card = await world.run("4002", lambda uow, clock, actor: work.open_task(uow, clock, actor, task.id))
    assert refused(card, "case.not_allowed")
