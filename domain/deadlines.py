"""The deadline tick: remind before a step is due, warn (预警) when it is overdue, then escalate.

Each task carries `next_check_at` (indexed); a tick reads only the tasks whose time has come, so
its cost follows what is due, not what is stored. Reminders wait out quiet hours unless the case
is urgent (绿色通道).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from domain.cases import FINAL, owner_in_place, recipients_of, township_staff
from domain.messages import Outgoing, day, text
from domain.model import Role, Task, TaskStatus
from domain.ports import Clock, DeadlineRules, UnitOfWork
from domain.workdays import shift


async def _owners(uow: UnitOfWork, task: Task) -> list[int]:
    """Who answers for the step: its owner, or (before anyone acknowledged it) all it went to."""
    owner = await owner_in_place(uow, task) if task.status is TaskStatus.ACKNOWLEDGED else None
    if owner is not None:  # not one the roster has since moved to another village
        return [owner]
    people = [p.id for p in await recipients_of(uow, task)]
    reachable = await uow.persons.reachable(people)
    return [p for p in people if p in reachable]


def _level_time(task: Task, rules: DeadlineRules, index: int) -> datetime | None:
    if task.due_at is None or index >= len(rules.escalation):
        return None
    return shift(task.due_at, rules.escalation[index][0])


async def tick(uow: UnitOfWork, clock: Clock, rules: DeadlineRules, limit: int = 200) -> int:
    """Do what is due now; returns how many messages were queued."""
    now = clock.now()
    sent = await _calendar_notice(uow, clock, rules)
    for task in await uow.tasks.due_for_check(now, limit):
        declaration = await uow.declarations.get(task.declaration_id)
        if declaration is None or task.due_at is None or declaration.status in FINAL:
            await uow.tasks.reschedule(task.id, None)
            continue
        if rules.quiet(now) and not declaration.green_channel:
            await uow.tasks.reschedule(task.id, rules.next_outside_quiet(now))
            continue
        local_due = task.due_at.astimezone(now.tzinfo)  # stored in UTC, shown in the service's zone
        params = {
            "receipt": declaration.receipt,
            "village": await _village_name(uow, task),
            "step": text(f"step.{task.step}"),
            "due": day(local_due.date().isoformat()),
            "time": local_due.strftime("%H:%M"),
        }
        if now < task.due_at:
            if task.reminded_at is None:
                message = Outgoing("deadline.reminder", params)
                if declaration.green_channel:
                    message = message.led_by("deadline.urgent")
                for person in await _owners(uow, task):
                    key = f"remind:{task.id}:{task.step}:{task.due_at.isoformat()}:{person}"
                    sent += await uow.outbox.add(person, message, key=key, at=now)
            await uow.tasks.mark(task.id, field="reminded_at", at=now, next_check_at=task.due_at)
            continue
        for index, (_, whom) in enumerate(rules.escalation):
            at = _level_time(task, rules, index)
            field = "warned_at" if whom == "owner" else "escalated_at"
            if at is None or now < at or getattr(task, field) is not None:
                continue
            people = await _owners(uow, task) if whom == "owner" else await township_staff(uow, task)
            template = "deadline.warning" if whom == "owner" else "deadline.escalated"
            for person in people:
                key = f"{field}:{task.id}:{task.step}:{task.due_at.isoformat()}:{person}"
                sent += await uow.outbox.add(person, Outgoing(template, params), key=key, at=now)
            task = replace(task, warned_at=now) if field == "warned_at" else replace(task, escalated_at=now)
            await uow.tasks.mark(task.id, field=field, at=now, next_check_at=None)
        later = [t for i in range(len(rules.escalation)) if (t := _level_time(task, rules, i)) and t > now]
        await uow.tasks.reschedule(task.id, min(later) if later else None)
    return sent


async def _village_name(uow: UnitOfWork, task: Task) -> str:
    village = await uow.geography.village(task.village_id)
    return village.name if village else ""


async def _calendar_notice(uow: UnitOfWork, clock: Clock, rules: DeadlineRules) -> int:
    """Tell every township's staff, once per year, that deadlines fell back to weekdays."""
    sent = 0
    for year in sorted(rules.take_unknown_years()):
        for township in await uow.geography.townships():
            for staff in await uow.persons.staff_of_township(township.id):
                if staff.role is Role.TOWNSHIP and await uow.outbox.add(
                    staff.id, Outgoing("deadline.calendar_unknown", {"year": year}),
                    key=f"calendar-unknown:{year}:{staff.id}", at=clock.now(),
                ):  # fmt: skip
                    sent += 1
    return sent
