"""Work in chat: a cadre's tasks, one case opened, its history; the township's overdue list and counts.

A cadre sees only the villages assigned to them; township staff see the villages of their township.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from domain import buttons as b
from domain import validation
from domain.actor import Actor
from domain.cases import may_see, step_actions
from domain.cases.access import records_county_step
from domain.messages import Action, Outcome, Outgoing, day, risk_labels, text
from domain.model import DeclarationStatus, Person, Role, Task, Village
from domain.ports import Clock, UnitOfWork

LIST_LIMIT = 10


async def _villages_of(uow: UnitOfWork, person: Person) -> list[Village]:
    if person.role is Role.CADRE:
        return await uow.geography.villages(person.village_ids)
    if person.role is Role.TOWNSHIP and person.township_id is not None:
        return await uow.geography.villages_in(person.township_id)
    return []


async def _staff_only(uow: UnitOfWork, clock: Clock, person: Person, *, township: bool = False) -> bool:
    allowed = person.role is Role.TOWNSHIP or (not township and person.role is Role.CADRE)
    if not allowed:
        key = "work.township_only" if township else "work.staff_only"
        await uow.outbox.add(person.id, Outgoing(key), at=clock.now())
    return allowed


def _due_text(task: Task, now: datetime) -> Any:
    if task.due_at is None:
        return text("work.no_due")
    key = "work.overdue_since" if task.due_at < now else "work.due_by"
    local = task.due_at.astimezone(now.tzinfo)  # stored in UTC, shown in the service's zone
    return {"$t": key, "$with": {"date": day(local.date().isoformat()), "time": local.strftime("%H:%M")}}


async def _lines(
    uow: UnitOfWork, tasks: list[Task], now: datetime
) -> tuple[list[Any], list[tuple[Action, ...]]]:
    names = {v.id: v.name for v in await uow.geography.villages(tuple({t.village_id for t in tasks}))}
    lines: list[Any] = []
    buttons: list[tuple[Action, ...]] = []
    for task in tasks[:LIST_LIMIT]:
        declaration = await uow.declarations.get(task.declaration_id)
        if declaration is None:
            continue
        lines.append(
            {
                "$t": "work.line",
                "$with": {
                    "receipt": declaration.receipt,
                    "village": names.get(task.village_id, ""),
                    "state": text(f"state.{declaration.status.value}"),
                    "due": _due_text(task, now),
                    "urgent": text("work.green") if declaration.green_channel else "",
                },
            }
        )
        buttons.append(
            (
                Action(
                    b.OpenTask(task.id),
                    label={"$t": "action.open", "$with": {"receipt": declaration.receipt}},
                ),
            )
        )
    return lines, buttons


async def my_tasks(uow: UnitOfWork, clock: Clock, actor: Actor) -> Outcome:
    """/tasks: the open cases of the person's villages, the most urgent first."""
    if not await _staff_only(uow, clock, actor):
        return Outcome(locale=actor.locale)
    villages = await _villages_of(uow, actor)
    tasks = await uow.tasks.open_in(tuple(v.id for v in villages))
    now = clock.now()
    if not tasks:
        await uow.outbox.add(actor.id, Outgoing("work.no_tasks"), at=now)
        return Outcome(locale=actor.locale)
    lines, buttons = await _lines(uow, tasks, now)
    await uow.outbox.add(
        actor.id,
        Outgoing(
            "work.tasks",
            {"count": len(tasks), "shown": len(lines), "lines": {"$lines": lines}},
            actions=tuple(buttons),
        ),
        at=now,
    )
    return Outcome(locale=actor.locale)


async def overdue(uow: UnitOfWork, clock: Clock, actor: Actor) -> Outcome:
    """/overdue: the township's cases past their due time."""
    if not await _staff_only(uow, clock, actor, township=True):
        return Outcome(locale=actor.locale)
    now = clock.now()
    villages = await _villages_of(uow, actor)
    tasks = [t for t in await uow.tasks.open_in(tuple(v.id for v in villages)) if t.due_at and t.due_at < now]
    if not tasks:
        await uow.outbox.add(actor.id, Outgoing("work.no_overdue"), at=now)
        return Outcome(locale=actor.locale)
    lines, buttons = await _lines(uow, tasks, now)
    await uow.outbox.add(
        actor.id,
        Outgoing("work.overdue", {"count": len(tasks), "lines": {"$lines": lines}}, actions=tuple(buttons)),
        at=now,
    )
    return Outcome(locale=actor.locale)


async def stats(uow: UnitOfWork, clock: Clock, actor: Actor) -> Outcome:
    """/stats: declarations of the township by village and state."""
    if not await _staff_only(uow, clock, actor, township=True):
        return Outcome(locale=actor.locale)
    lines: list[Any] = []
    total = 0
    for village in await _villages_of(uow, actor):
        counts = Counter(d.status.value for d in await uow.declarations.in_villages((village.id,)))
        total += sum(counts.values())
        parts = [
            {"$t": "work.count", "$with": {"state": text(f"state.{s}"), "n": n}}
            for s, n in sorted(counts.items())
        ]
        if not parts:  # no case: the village with 0, and no empty brackets
            lines.append({"$t": "work.stats_line_none", "$with": {"village": village.name}})
            continue
        lines.append(
            {
                "$t": "work.stats_line",
                "$with": {"village": village.name, "n": sum(counts.values()), "parts": {"$join": parts}},
            }
        )
    await uow.outbox.add(
        actor.id, Outgoing("work.stats", {"total": total, "lines": {"$lines": lines}}), at=clock.now()
    )
    return Outcome(locale=actor.locale)


async def open_task(uow: UnitOfWork, clock: Clock, actor: Actor, task_id: int) -> Outcome:
    """Open one case: what it is, where it stands, and the buttons for its next step."""
    task = await uow.tasks.get(task_id)
    if task is None or not await may_see(uow, actor, task.village_id):
        return Outcome(toast="case.not_allowed", alert=True, locale=actor.locale, done=False)
    declaration = await uow.declarations.get(task.declaration_id)
    assert declaration is not None
    village = await uow.geography.village(task.village_id)
    owner = await uow.persons.get(task.acknowledged_by) if task.acknowledged_by else None
    township = actor.role is Role.TOWNSHIP
    county = await records_county_step(uow, actor, task.village_id)
    mine = township or county or task.acknowledged_by in (None, actor.id)
    params = {
        "receipt": declaration.receipt,
        "village": village.name if village else "",
        "name": declaration.head_name,
        "phone": validation.display_phone(declaration.phone),
        "risks": risk_labels(declaration.risk_types),
        "state": text(f"state.{declaration.status.value}"),
        "due": _due_text(task, clock.now()),
        "owner": owner.name if owner and owner.name else text("work.nobody"),
    }
    actions = step_actions(task, declaration, township=township, county=county) if mine else ()
    if actor.role is Role.COUNTY and declaration.status is not DeclarationStatus.APPROVED:
        actions = ()  # the county records 县级审定 only
    await uow.outbox.add(actor.id, Outgoing("work.card", params, actions=actions), at=clock.now())
    return Outcome(locale=actor.locale, done=False)


async def history(uow: UnitOfWork, clock: Clock, actor: Actor, receipt: str) -> Outcome:
    """/case <receipt>: everything that happened to a case, who did it and when."""
    if not await _staff_only(uow, clock, actor):
        return Outcome(locale=actor.locale)
    declaration = await uow.declarations.by_receipt(receipt.strip())
    if declaration is None or not await may_see(uow, actor, declaration.village_id):
        # The same answer for "no such case" and "not yours": a receipt reveals nothing.
        await uow.outbox.add(
            actor.id, Outgoing("work.case_not_found", {"receipt": receipt.strip()[:20]}), at=clock.now()
        )
        return Outcome(locale=actor.locale)
    lines: list[Any] = []
    for event in await uow.events.for_declaration(declaration.id):
        doer = await uow.persons.get(event.actor_id) if event.actor_id else None
        local = event.at.astimezone(clock.now().tzinfo)
        lines.append(
            {
                "$t": "work.event",
                "$with": {
                    "when": local.strftime("%Y-%m-%d %H:%M"),
                    "who": (
                        doer.name if doer and doer.name else text("work.household" if doer else "work.system")
                    ),
                    "what": text(f"event.{event.kind}"),
                    "note": event.data.get("reason")
                    or event.data.get("objection")
                    or event.data.get("notes")
                    or "",
                },
            }
        )
    task = await uow.tasks.for_declaration(declaration.id)
    actions = (
        (
            (
                Action(
                    b.OpenTask(task.id),
                    label={"$t": "action.open", "$with": {"receipt": declaration.receipt}},
                ),
            ),
        )
        if task
        else ()
    )
    await uow.outbox.add(
        actor.id,
        Outgoing(
            "work.history",
            {
                "receipt": declaration.receipt,
                "state": text(f"state.{declaration.status.value}"),
                "lines": {"$lines": lines},
            },
            actions=actions,
        ),
        at=clock.now(),
    )
    return Outcome(locale=actor.locale)
