"""转交: the owner of a case (or its township) hands it to a colleague of the same village."""

from __future__ import annotations

from dataclasses import replace

from domain import buttons as b
from domain.actor import Actor
from domain.cases.access import Opened, is_handler, is_township_of, open_task, refused
from domain.cases.actions import step_actions
from domain.cases.moves import FINAL
from domain.messages import Action, Outcome, Outgoing
from domain.model import CaseEvent, DeclarationStatus, Person, Role, Task
from domain.ports import Clock, UnitOfWork

S = DeclarationStatus


async def _may_hand_over(uow: UnitOfWork, person: Person, task: Task) -> str | None:
    """Why `person` may not hand the task on (a catalog key): its owner in place, or its township."""
    if await is_township_of(uow, person, task.village_id):
        return None
    if not await is_handler(uow, person, task):
        return "case.not_allowed"
    return None if task.acknowledged_by == person.id else "case.not_yours"


async def _open(uow: UnitOfWork, actor: Actor, task_id: int) -> Opened | Outcome:
    """The case, when the actor may hand it on; else the refusal."""
    opened = await open_task(uow, actor, task_id)
    if isinstance(opened, Outcome):
        return opened
    refusal = await _may_hand_over(uow, actor, opened.task)
    return refused(actor, refusal) if refusal else opened


async def _colleagues(uow: UnitOfWork, task: Task) -> list[Person]:
    """Whom the case can go to: the village's cadres who can be reached, but its owner."""
    colleagues = [
        p for p in await uow.persons.cadres_of_village(task.village_id) if p.id != task.acknowledged_by
    ]
    reachable = await uow.persons.reachable([p.id for p in colleagues])
    return [p for p in colleagues if p.id in reachable]


async def colleagues(uow: UnitOfWork, actor: Actor, task_id: int) -> list[Person]:
    """The colleagues `actor` may hand the case to (the console's list); none when they may not."""
    opened = await _open(uow, actor, task_id)
    if isinstance(opened, Outcome) or opened.declaration.status in (*FINAL, S.SUBMITTED):
        return []  # as hand_over refuses: nobody owns it yet, or it is over
    return await _colleagues(uow, opened.task)


async def offer_handover(uow: UnitOfWork, clock: Clock, actor: Actor, task_id: int) -> Outcome:
    """转交: the colleagues of the same village the owner may hand the case to."""
    opened = await _open(uow, actor, task_id)
    if isinstance(opened, Outcome):
        return opened
    task, declaration = opened.task, opened.declaration
    buttons = [
        Action(b.HandTo(task.id, p.id), label={"$plain": p.name or str(p.id)})
        for p in await _colleagues(uow, task)
    ]
    if not buttons:
        return refused(actor, "case.no_colleague")
    await uow.outbox.add(
        actor.id,
        Outgoing(
            "case.choose_colleague", {"receipt": declaration.receipt}, actions=tuple((b,) for b in buttons)
        ),
        at=clock.now(),
    )
    return Outcome(locale=actor.locale, done=False)


async def hand_over(uow: UnitOfWork, clock: Clock, actor: Actor, task_id: int, colleague_id: int) -> Outcome:
    """Give the case to a colleague of the same village (the owner, or township staff, may)."""
    opened = await _open(uow, actor, task_id)
    if isinstance(opened, Outcome):
        return opened
    task, declaration = opened.task, opened.declaration
    colleague = await uow.persons.get(colleague_id)
    if (
        colleague is None
        or colleague.role is not Role.CADRE
        or task.village_id not in colleague.village_ids
        or colleague.id == task.acknowledged_by
    ):
        return refused(actor, "case.not_a_colleague")
    if not await uow.persons.reachable([colleague.id]):
        return refused(actor, "case.colleague_unreachable")  # the case would sit where no one sees it
    if declaration.status in FINAL or declaration.status is S.SUBMITTED:
        return refused(actor, "case.step_done")
    if not await uow.tasks.hand_over(task.id, expected_owner=task.acknowledged_by, to=colleague.id):
        return refused(actor, "case.step_done")
    now = clock.now()
    await uow.events.add(
        CaseEvent(
            declaration.id, "handed_over", actor.id, now, {"from": task.acknowledged_by, "to": colleague.id}
        )
    )
    moved = replace(task, acknowledged_by=colleague.id)
    await uow.outbox.add(
        colleague.id,
        Outgoing(
            "case.handed_to_you",
            {"receipt": declaration.receipt, "name": actor.name},
            actions=step_actions(moved, declaration),
        ),
        key=None,
        at=now,
    )
    return Outcome(toast="case.handed_toast", params={"name": colleague.name or ""}, locale=actor.locale)
