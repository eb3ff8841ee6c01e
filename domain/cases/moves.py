"""Carrying out a move of the procedure (domain.procedure's table): one conditional update of
the declaration's status (of two people pressing at once one wins and the other is told), the
task's owner and next due time, an event in the log; and telling the household and township."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any

from domain.actor import CHAT, Actor
from domain.cases.access import Opened, open_task, refusal_of, refused
from domain.messages import Outcome, Outgoing
from domain.model import CaseEvent, Declaration, DeclarationStatus, Person, Task, TaskStatus, Verdict
from domain.ports import Clock, DeadlineRules, UnitOfWork
from domain.procedure import DUE_STEP, Move, MoveRefused, move

S = DeclarationStatus
FINAL = {S.ENTERED, S.CLOSED, S.WITHDRAWN}


def receipt_number(day: date, declaration_id: int) -> str:
    """回执编号: the local date and a serial, digits only, easy to read out on the phone."""
    return f"{day:%Y%m%d}{declaration_id:06d}"


def first_check(rules: DeadlineRules, due: datetime | None) -> datetime | None:
    """When the deadline tick first looks at a step due at `due`: time to remind its owner."""
    return due - rules.remind_before if due is not None else None


def due_for(rules: DeadlineRules, status: S, declaration: Declaration, now: datetime) -> datetime | None:
    """When the step a declaration now waits for is due; None when nothing is."""
    step = DUE_STEP.get(status)
    if step is None:
        return None
    # The whole procedure runs from submission; every other step from when it began.
    start = declaration.created_at if step == "whole" else now
    return rules.due(step, start)


async def allowed(
    uow: UnitOfWork, person: Person, task: Task, declaration: Declaration, action: str
) -> tuple[Move | None, str | None]:
    """The move `action` would make now, if `person` may make it; else why not (a catalog key)."""
    try:
        step = move(declaration.status, action)
    except MoveRefused:
        return None, "case.step_done"
    refusal = await refusal_of(uow, person, task, declaration, step.party)
    return (None, refusal) if refusal else (step, None)


async def open_for(uow: UnitOfWork, actor: Actor, task_id: int, action: str) -> Opened | Outcome:
    """The case a button or a form names, when `actor` may make the move `action` on it now;
    else the refusal to answer with (nothing is changed)."""
    opened = await open_task(uow, actor, task_id)
    if isinstance(opened, Outcome):
        return opened
    step, refusal = await allowed(uow, actor, opened.task, opened.declaration, action)
    return opened if step is not None else refused(actor, refusal)


async def apply_move(
    uow: UnitOfWork,
    clock: Clock,
    rules: DeadlineRules,
    person: Person,
    task: Task,
    declaration: Declaration,
    action: str,
    *,
    verdict: Verdict | None = None,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> tuple[Declaration | None, str | None]:
    """Make the move; returns the declaration as it now is, or why it was refused."""
    step, refusal = await allowed(uow, person, task, declaration, action)
    if step is None:
        return None, refusal
    now = clock.now()
    moved = await uow.declarations.transition(
        declaration.id, expected=declaration.status, to=step.target, at=now, verdict=verdict, reason=reason
    )
    if not moved:  # someone else moved it first
        return None, "case.step_done"
    after = replace(
        declaration, status=step.target, verdict=verdict or declaration.verdict, verdict_reason=reason
    )
    owner = person.id if action == "acknowledge" else None
    status = (
        TaskStatus.DONE if step.target in FINAL or step.target is S.NOT_ELIGIBLE else TaskStatus.ACKNOWLEDGED
    )
    due = due_for(rules, step.target, after, now)
    await uow.tasks.advance(
        task.id,
        status=status,
        owner=owner,
        step=DUE_STEP.get(step.target),
        due_at=due,
        next_check_at=first_check(rules, due),
        at=now,
    )
    payload = dict(data or {})
    if verdict is not None:
        payload["verdict"] = verdict.value
    if reason is not None:
        payload["reason"] = reason
    if isinstance(person, Actor) and person.via != CHAT:
        payload["via"] = person.via  # done on the web page (or the CLI), not in chat
    await uow.events.add(CaseEvent(declaration.id, action, person.id, now, payload))
    return after, None


async def tell_household(
    uow: UnitOfWork, clock: Clock, declaration: Declaration, key: str | None, message: Outgoing
) -> None:
    """A message to the household: with a `key` it can go only once; None for one that may recur."""
    if not await uow.persons.reachable([declaration.declared_by]):
        return  # declared without a chat (a web form): the status page shows where it stands
    full_key = f"farmer:{declaration.id}:{key}" if key else None
    if declaration.green_channel:
        message = replace(message, urgent=True)  # a text goes even in quiet hours
    await uow.outbox.add(declaration.declared_by, message, key=full_key, at=clock.now())


async def tell_township(
    uow: UnitOfWork, clock: Clock, task: Task, key: str | None, message: Outgoing
) -> None:
    """A message to every staff member of the case's township (who can be reached)."""
    for staff in await township_staff(uow, task):
        full_key = f"township:{task.id}:{key}:{staff}" if key else None
        await uow.outbox.add(staff, message, key=full_key, at=clock.now())


async def township_staff(uow: UnitOfWork, task: Task) -> list[int]:
    village = await uow.geography.village(task.village_id)
    assert village is not None
    staff = [p.id for p in await uow.persons.staff_of_township(village.township_id)]
    reachable = await uow.persons.reachable(staff)
    return [p for p in staff if p in reachable]
