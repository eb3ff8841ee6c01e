"""A declaration after submission: routing, the steps of the procedure, feedback to the household.

The moves and who may make them are data (domain.procedure); this module carries them out: one
conditional update of the declaration's status (so of two people pressing at once one wins and
the other is told), the task's owner and next due time, an event in the log, and the messages.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from domain import buttons as b
from domain import validation
from domain.actor import Actor
from domain.messages import Action, Outcome, Outgoing, day, text
from domain.model import (
    HOTLINE,
    Attachment,
    AttachmentKind,
    CaseEvent,
    Declaration,
    DeclarationStatus,
    Flow,
    NewDeclaration,
    Person,
    Role,
    RoutedTo,
    Task,
    TaskStatus,
    Verdict,
)
from domain.ports import Clock, DeadlineRules, UnitOfWork
from domain.procedure import DUE_STEP, Move, MoveRefused, Party, move
from domain.validation import Invalid

log = logging.getLogger(__name__)
S = DeclarationStatus
GREEN_CHANNEL_RISKS = {"disaster", "accident"}  # 绿色通道: help first, paperwork after
FINAL = {S.ENTERED, S.CLOSED, S.WITHDRAWN}
DONE_TOASTS = {
    "publicize": "case.done_publicize",
    "close_notice": "case.done_close_notice",
    "approve": "case.done_approve",
    "enter": "case.done_enter",
    "uphold": "case.done_uphold",
    "reopen": "case.done_reopen",
}


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


# --- submission ------------------------------------------------------------------------------


async def submit_declaration(
    uow: UnitOfWork,
    clock: Clock,
    rules: DeadlineRules,
    declarant: Person,
    new: NewDeclaration,
    attachments: list[Attachment],
    *,
    id_masked: str | None,
    summary: dict[str, Any],
) -> Declaration:
    """Store the declaration, open a task for the village and tell everyone concerned.

    `summary` is every answer as the household saw it in the summary (ID number masked); the
    cadres get the same, followed by the voice note and photos.
    """
    now = clock.now()
    declaration = await uow.declarations.add(new, now)
    for attachment in attachments:
        await uow.attachments.add(replace(attachment, declaration_id=declaration.id))
    await uow.events.add(
        CaseEvent(
            declaration.id,
            "submitted",
            declarant.id,
            now,
            {"consent_version": new.consent_version, "filed_by_cadre": new.filed_by_cadre},
        )
    )
    village = await uow.geography.village(declaration.village_id)
    assert village is not None
    cadres = await uow.persons.cadres_of_village(village.id)
    reachable = await uow.persons.reachable([p.id for p in cadres])
    routed_to = RoutedTo.VILLAGE
    recipients = [p for p in cadres if p.id in reachable]
    if not recipients:
        # No cadre of the village has bound a chat yet: the township must not miss the case.
        routed_to = RoutedTo.TOWNSHIP
        recipients = await uow.persons.staff_of_township(village.township_id)
    due = due_for(rules, S.SUBMITTED, declaration, now)
    task = await uow.tasks.add(
        declaration.id,
        village.id,
        routed_to,
        now,
        due_at=due,
        step=DUE_STEP[S.SUBMITTED],
        next_check_at=first_check(rules, due),
    )
    await uow.events.add(
        CaseEvent(
            declaration.id,
            "assigned",
            None,
            now,
            {"task": task.id, "routed_to": routed_to.value, "to": [p.id for p in recipients]},
        )
    )
    if not recipients:
        log.warning("declaration %s: village %s has nobody to route to", declaration.id, village.code)
    template = "case.new" if routed_to is RoutedTo.VILLAGE else "case.new_township"
    params = {
        **summary,
        "receipt": declaration.receipt,
        "village": village.name,
        "id_number": id_masked or text("summary.id_none"),
    }
    for recipient in recipients:
        await uow.outbox.add(
            recipient.id,
            Outgoing(template, params, actions=((Action(b.Acknowledge(task.id)),),)),
            key=f"case-new:{task.id}:{recipient.id}",
            at=now,
        )
        for n, attachment in enumerate(attachments):
            # A photo uploaded on the web page goes as a file (its ref names the stored upload).
            await uow.outbox.add(
                recipient.id,
                Outgoing(
                    "case.attachment",
                    {"receipt": declaration.receipt},
                    media={"kind": attachment.kind.value, "file_id": attachment.ref},
                ),
                key=f"case-new:{task.id}:{recipient.id}:{n}",
                at=now,
            )
    if not await uow.persons.reachable([declarant.id]):
        return declaration  # declared on the web page, which shows the receipt itself
    await uow.outbox.add(
        declarant.id,
        Outgoing(
            "intake.submitted",
            {"receipt": declaration.receipt, "village": village.name, "hotline": HOTLINE},
            keyboard="menu",
        ),
        key=f"receipt:{declaration.id}",
        at=now,
    )
    return declaration


# --- who may act --------------------------------------------------------------------------------


async def recipients_of(uow: UnitOfWork, task: Task) -> list[Person]:
    """Everyone the task was routed to: the village's cadres, or the township's staff."""
    if task.routed_to is RoutedTo.VILLAGE:
        return await uow.persons.cadres_of_village(task.village_id)
    village = await uow.geography.village(task.village_id)
    assert village is not None
    return await uow.persons.staff_of_township(village.township_id)


async def is_township_of(uow: UnitOfWork, person: Person, village_id: int) -> bool:
    village = await uow.geography.village(village_id)
    return village is not None and person.role is Role.TOWNSHIP and person.township_id == village.township_id


async def may_see(uow: UnitOfWork, person: Person, village_id: int) -> bool:
    """A cadre sees the cases of their villages; township staff those of their township."""
    if person.role is Role.CADRE:
        return village_id in person.village_ids
    return await is_township_of(uow, person, village_id)


async def _is_handler(uow: UnitOfWork, person: Person, task: Task) -> bool:
    in_village = person.role is Role.CADRE and task.village_id in person.village_ids
    if task.routed_to is RoutedTo.VILLAGE:
        return in_village
    # A case routed to the township that its staff handed to one of the village's cadres is theirs.
    return await is_township_of(uow, person, task.village_id) or (
        in_village and task.acknowledged_by == person.id
    )


async def owner_in_place(uow: UnitOfWork, task: Task) -> int | None:
    """Who acknowledged the task, while they still handle it; None when nobody has, or when the
    roster has since moved them away from its village (they no longer hear of it or act on it)."""
    if task.acknowledged_by is None:
        return None
    owner = await uow.persons.get(task.acknowledged_by)
    return owner.id if owner is not None and await _is_handler(uow, owner, task) else None


async def _may_hand_over(uow: UnitOfWork, person: Person, task: Task) -> str | None:
    """Why `person` may not hand the task on (a catalog key): its owner in place, or its township."""
    if await is_township_of(uow, person, task.village_id):
        return None
    if not await _is_handler(uow, person, task):
        return "case.not_allowed"
    return None if task.acknowledged_by == person.id else "case.not_yours"


async def _refusal(
    uow: UnitOfWork, person: Person, task: Task, declaration: Declaration, party: Party
) -> str | None:
    """Why `person` may not make a move that needs `party` (a catalog key), or None."""
    if party is Party.HOUSEHOLD:
        return None if declaration.declared_by == person.id else "case.not_allowed"
    if party is Party.TOWNSHIP:
        return None if await is_township_of(uow, person, task.village_id) else "case.township_only"
    if not await _is_handler(uow, person, task):
        return "case.not_allowed"
    if party is Party.OWNER and task.acknowledged_by != person.id:
        return "case.not_yours"
    return None


# --- carrying out a move ------------------------------------------------------------------------


async def _load(
    uow: UnitOfWork, clock: Clock, actor: Actor, task_id: int
) -> tuple[Actor, Task | None, Declaration | None]:
    task = await uow.tasks.get(task_id)
    declaration = await uow.declarations.get(task.declaration_id) if task else None
    return actor, task, declaration


async def _allowed(
    uow: UnitOfWork, person: Person, task: Task, declaration: Declaration, action: str
) -> tuple[Move | None, str | None]:
    """The move `action` would make now, if `person` may make it; else why not (a catalog key)."""
    try:
        step = move(declaration.status, action)
    except MoveRefused:
        return None, "case.step_done"
    refusal = await _refusal(uow, person, task, declaration, step.party)
    return (None, refusal) if refusal else (step, None)


async def _apply(
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
    step, refusal = await _allowed(uow, person, task, declaration, action)
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
    )
    payload = dict(data or {})
    if verdict is not None:
        payload["verdict"] = verdict.value
    if reason is not None:
        payload["reason"] = reason
    await uow.events.add(CaseEvent(declaration.id, action, person.id, now, payload))
    return after, None


def _refused(person: Person, key: str | None) -> Outcome:
    return Outcome(toast=key or "case.not_found", alert=True, locale=person.locale, done=False)


async def _tell_household(
    uow: UnitOfWork, clock: Clock, declaration: Declaration, key: str | None, message: Outgoing
) -> None:
    """A message to the household: with a `key` it can go only once; None for one that may recur."""
    if not await uow.persons.reachable([declaration.declared_by]):
        return  # declared without a chat (a web form): the status page shows where it stands
    full_key = f"farmer:{declaration.id}:{key}" if key else None
    await uow.outbox.add(declaration.declared_by, message, key=full_key, at=clock.now())


async def _tell_township(
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


def step_actions(
    task: Task, declaration: Declaration, *, township: bool = False
) -> tuple[tuple[Action, ...], ...]:
    """The buttons for what can be done next on a case (for its owner, or for the township)."""
    t = task.id
    status = declaration.status
    rows: list[tuple[Action, ...]] = []
    if status is S.SUBMITTED:
        rows.append((Action(b.Acknowledge(t)),))
    elif status is S.ACKNOWLEDGED:
        rows.append((Action(b.Step(t, "visit"), label="action.visit"),))
        if set(declaration.risk_types) & GREEN_CHANNEL_RISKS and not declaration.green_channel:
            rows.append((Action(b.Step(t, "green"), label="action.green_channel"),))
    elif status is S.VISITED:
        rows += [
            tuple(Action(b.ChooseVerdict(t, v), label=f"verdict.{v.value}") for v in pair)
            for pair in ((Verdict.UNSTABLE, Verdict.MARGINAL), (Verdict.SUDDEN, Verdict.NOT_ELIGIBLE))
        ]
    elif status is S.PROPOSED:
        rows.append((Action(b.Step(t, "publicize"), label="action.publicize"),))
    elif status is S.PUBLICIZING:
        rows.append((Action(b.Step(t, "close_notice"), label="action.close_notice"),))
    elif status is S.TOWNSHIP_REVIEW and township:
        rows.append((Action(b.Step(t, "approve"), label="action.approve"),))
    elif status is S.APPROVED and township:
        rows.append((Action(b.Step(t, "enter"), label="action.enter"),))
    elif status is S.OBJECTED and township:
        rows.append(
            (
                Action(b.Step(t, "uphold"), label="action.uphold"),
                Action(b.Step(t, "reopen"), label="action.reopen"),
            )
        )
    if status in (S.ACKNOWLEDGED, S.VISITED, S.PROPOSED, S.PUBLICIZING):
        # The owner hands over to a colleague; township staff may reassign.
        rows.append((Action(b.OfferHandOver(t), label="action.hand_over"),))
    return tuple(rows)


# --- the steps ------------------------------------------------------------------------------------


async def acknowledge(
    uow: UnitOfWork, clock: Clock, rules: DeadlineRules, actor: Actor, task_id: int
) -> Outcome:
    """签收: the first person the case went to who presses it owns it; the household hears of it."""
    actor, task, declaration = await _load(uow, clock, actor, task_id)
    if task is None or declaration is None:
        return _refused(actor, "case.not_found")
    if declaration.status is not S.SUBMITTED and await _is_handler(uow, actor, task):
        return _refused(actor, "case.already_acknowledged")
    after, refusal = await _apply(uow, clock, rules, actor, task, declaration, "acknowledge")
    if after is None:
        return _refused(actor, "case.already_acknowledged" if refusal == "case.step_done" else refusal)
    owned = replace(task, acknowledged_by=actor.id)
    now = clock.now()
    await uow.outbox.add(
        actor.id,
        Outgoing("case.acknowledged", {"receipt": declaration.receipt}, actions=step_actions(owned, after)),
        key=f"ack-next:{task.id}",
        at=now,
    )
    for other in await recipients_of(uow, task):
        if other.id != actor.id:
            await uow.outbox.add(
                other.id,
                Outgoing("case.acknowledged_by_other", {"receipt": declaration.receipt, "name": actor.name}),
                key=f"ack-other:{task.id}:{other.id}",
                at=now,
            )
    await _tell_household(
        uow,
        clock,
        declaration,
        "ack",
        Outgoing("farmer.acknowledged", {"receipt": declaration.receipt, "name": actor.name}),
    )
    return Outcome(toast="case.ack_done", locale=actor.locale)


VISIT_STEPS = ("date", "notes", "photos")


async def start_visit(
    uow: UnitOfWork, clock: Clock, rules: DeadlineRules, actor: Actor, task_id: int
) -> Outcome:
    """记录入户核实: ask the day, the notes and photos of the home visit."""
    actor, task, declaration = await _load(uow, clock, actor, task_id)
    if task is None or declaration is None:
        return _refused(actor, "case.not_found")
    step, refusal = await _allowed(uow, actor, task, declaration, "visit")
    if step is None:
        return _refused(actor, refusal)
    conv = await uow.conversations.start(
        actor.id, Flow.VISIT, "date", {"task_id": task.id, "photos": []}, clock.now()
    )
    await uow.outbox.add(actor.id, _visit_prompt(conv.id, "date", declaration.receipt, 0), at=clock.now())
    return Outcome(locale=actor.locale, done=False)


def _visit_prompt(conversation_id: int, step: str, receipt: str, photos: int) -> Outgoing:
    c = conversation_id
    cancel = Action(b.Cancel(c))
    if step == "date":
        days = (
            Action(b.VisitDay(c, 0), label="action.today"),
            Action(b.VisitDay(c, 1), label="action.yesterday"),
        )
        return Outgoing("visit.ask_date", {"receipt": receipt}, actions=(days, (cancel,)))
    if step == "notes":
        return Outgoing("visit.ask_notes", {"limit": validation.MAX_REASON}, actions=((cancel,),))
    return Outgoing(
        "visit.ask_photos",
        {"count": photos},
        actions=((Action(b.VisitDone(c), label="action.visit_done"),), (cancel,)),
    )


async def visit_answer(
    uow: UnitOfWork,
    clock: Clock,
    rules: DeadlineRules,
    person: Person,
    conversation_id: int,
    data: dict[str, Any],
    step: str,
    *,
    text_answer: str | None = None,
    photo: str | None = None,
) -> None:
    """An answer in the visit conversation (typed day or notes, or a photo)."""
    task = await uow.tasks.get(int(data["task_id"]))
    declaration = await uow.declarations.get(task.declaration_id) if task else None
    if task is None or declaration is None:
        await uow.conversations.finish(conversation_id)
        return
    now = clock.now()
    try:
        if step == "date" and text_answer is not None:
            visited = validation.past_date(text_answer, now.date())
            await uow.conversations.update(
                conversation_id, "notes", {**data, "date": visited.isoformat()}, now
            )
            await uow.outbox.add(
                person.id, _visit_prompt(conversation_id, "notes", declaration.receipt, 0), at=now
            )
            return
        if step == "notes" and text_answer is not None:
            notes = validation.free_text(text_answer, limit=validation.MAX_REASON, key="validate.visit_notes")
            await uow.conversations.update(conversation_id, "photos", {**data, "notes": notes}, now)
            await uow.outbox.add(
                person.id, _visit_prompt(conversation_id, "photos", declaration.receipt, 0), at=now
            )
            return
        if step == "photos" and photo is not None:
            photos = [*data.get("photos", []), photo][:5]
            await uow.conversations.update(conversation_id, "photos", {**data, "photos": photos}, now)
            await uow.outbox.add(
                person.id, _visit_prompt(conversation_id, "photos", declaration.receipt, len(photos)), at=now
            )
            return
    except Invalid as exc:
        prompt = _visit_prompt(conversation_id, step, declaration.receipt, len(data.get("photos", [])))
        await uow.outbox.add(person.id, prompt.led_by(exc.key, **exc.params), at=now)
        return
    prompt = _visit_prompt(conversation_id, step, declaration.receipt, len(data.get("photos", [])))
    await uow.outbox.add(person.id, prompt.led_by("visit.wrong_kind"), at=now)


async def visit_day_button(
    uow: UnitOfWork,
    clock: Clock,
    rules: DeadlineRules,
    actor: Actor,
    conversation_id: int,
    days_ago: int,
) -> Outcome:
    """今天 / 昨天 as the day of the visit."""
    conv = await uow.conversations.get(actor.id)
    if (
        conv is None
        or conv.id != conversation_id
        or conv.flow is not Flow.VISIT
        or conv.step != "date"
        or days_ago not in (0, 1)
    ):
        return Outcome(toast="intake.stale_button", locale=actor.locale, done=False)
    label = "今天" if days_ago == 0 else "昨天"
    await visit_answer(uow, clock, rules, actor, conv.id, conv.data, "date", text_answer=label)
    return Outcome(locale=actor.locale)


async def finish_visit(
    uow: UnitOfWork, clock: Clock, rules: DeadlineRules, actor: Actor, conversation_id: int
) -> Outcome:
    """The visit is recorded: the case moves on and the household hears of it."""
    conv = await uow.conversations.get(actor.id)
    if conv is None or conv.id != conversation_id or conv.flow is not Flow.VISIT or conv.step != "photos":
        return Outcome(toast="intake.stale_button", locale=actor.locale, done=False)
    await uow.conversations.finish(conv.id)
    task = await uow.tasks.get(int(conv.data["task_id"]))
    declaration = await uow.declarations.get(task.declaration_id) if task else None
    if task is None or declaration is None:
        return _refused(actor, "case.not_found")
    visit = {
        "date": conv.data["date"],
        "notes": conv.data["notes"],
        "photos": len(conv.data.get("photos", [])),
    }
    after, refusal = await _apply(uow, clock, rules, actor, task, declaration, "visit", data=visit)
    if after is None:
        return _refused(actor, refusal)
    for ref in conv.data.get("photos", []):
        await uow.attachments.add(
            Attachment(declaration.id, AttachmentKind.PHOTO, ref, actor.id, clock.now())
        )
    await uow.outbox.add(
        actor.id,
        Outgoing("case.visited", {"receipt": declaration.receipt}, actions=step_actions(task, after)),
        key=None,
        at=clock.now(),
    )
    await _tell_household(
        uow, clock, declaration, None,
        Outgoing("farmer.visited", {"receipt": declaration.receipt, "date": day(visit["date"])}),
    )  # fmt: skip
    return Outcome(toast="case.visit_recorded", locale=actor.locale)


async def choose_verdict(
    uow: UnitOfWork,
    clock: Clock,
    rules: DeadlineRules,
    actor: Actor,
    task_id: int,
    verdict: Verdict,
) -> Outcome:
    """A verdict button: an eligible category is proposed; 不纳入 first asks for the reason."""
    actor, task, declaration = await _load(uow, clock, actor, task_id)
    if task is None or declaration is None:
        return _refused(actor, "case.not_found")
    if verdict is Verdict.NOT_ELIGIBLE:
        step, refusal = await _allowed(uow, actor, task, declaration, "reject")
        if step is None:
            return _refused(actor, refusal)
        conv = await uow.conversations.start(
            actor.id, Flow.VERDICT_REASON, "reason", {"task_id": task.id}, clock.now()
        )
        await uow.outbox.add(
            actor.id,
            Outgoing(
                "case.ask_reason",
                {"receipt": declaration.receipt, "limit": validation.MAX_REASON},
                actions=((Action(b.Cancel(conv.id)),),),
            ),
            at=clock.now(),
        )
        return Outcome(locale=actor.locale)
    after, refusal = await _apply(uow, clock, rules, actor, task, declaration, "propose", verdict=verdict)
    if after is None:
        return _refused(actor, refusal)
    verdict_text = text(f"verdict.{verdict.value}")
    await uow.outbox.add(
        actor.id,
        Outgoing(
            "case.proposed",
            {"receipt": declaration.receipt, "verdict": verdict_text},
            actions=step_actions(task, after),
        ),
        key=f"proposed:{task.id}",
        at=clock.now(),
    )
    await _tell_household(
        uow,
        clock,
        declaration,
        "proposed",
        Outgoing("farmer.proposed", {"receipt": declaration.receipt, "verdict": verdict_text}),
    )
    return Outcome(toast="case.decided_toast", locale=actor.locale)


async def give_reason(
    uow: UnitOfWork,
    clock: Clock,
    rules: DeadlineRules,
    actor: Person,
    conversation_id: int,
    task_id: int,
    raw: str,
) -> None:
    """The reason typed for 不纳入 completes that verdict; the household may object."""
    now = clock.now()
    try:
        reason = validation.reason(raw)
    except Invalid as exc:
        await uow.outbox.add(actor.id, Outgoing(exc.key, dict(exc.params)), at=now)
        return
    await uow.conversations.finish(conversation_id)
    task = await uow.tasks.get(task_id)
    declaration = await uow.declarations.get(task.declaration_id) if task else None
    if task is None or declaration is None:
        return
    after, refusal = await _apply(
        uow, clock, rules, actor, task, declaration, "reject", verdict=Verdict.NOT_ELIGIBLE, reason=reason
    )
    if after is None:
        await uow.outbox.add(actor.id, Outgoing(refusal or "case.step_done"), at=now)
        return
    await uow.outbox.add(
        actor.id,
        Outgoing("case.decided", {"receipt": declaration.receipt, "verdict": text("verdict.not_eligible")}),
        key=None,
        at=now,
    )
    await _tell_household(
        uow,
        clock,
        declaration,
        None,
        Outgoing(
            "farmer.verdict_not_eligible",
            {"receipt": declaration.receipt, "reason": reason, "hotline": HOTLINE},
            actions=((Action(b.Object(declaration.id), label="action.object"),),),
        ),
    )


async def simple_step(
    uow: UnitOfWork,
    clock: Clock,
    rules: DeadlineRules,
    actor: Actor,
    task_id: int,
    action: str,
) -> Outcome:
    """A step taken with one button: publicize, close_notice, approve, enter, uphold, reopen, green."""
    actor, task, declaration = await _load(uow, clock, actor, task_id)
    if task is None or declaration is None:
        return _refused(actor, "case.not_found")
    if action == "visit":
        return await start_visit(uow, clock, rules, actor, task_id)
    if action == "green":
        return await _green_channel(uow, clock, actor, task, declaration)
    if action == "close_notice" and declaration.status is S.PUBLICIZING:
        until = rules.notice_ends(declaration.notice_started_at or clock.now())
        if clock.now() < until:
            return Outcome(
                toast="case.notice_not_over", alert=True, locale=actor.locale, done=False,
                params={"until": day(until.date().isoformat())},
            )  # fmt: skip
    data: dict[str, Any] = {}
    if action == "publicize":
        data["notice_started_at"] = clock.now().isoformat()
    after, refusal = await _apply(uow, clock, rules, actor, task, declaration, action, data=data)
    if after is None:
        return _refused(actor, refusal)
    if action == "publicize":
        await uow.declarations.set_notice_start(declaration.id, clock.now())
    await _after_step(uow, clock, rules, actor, task, after, action)
    return Outcome(toast=DONE_TOASTS.get(action, "case.ack_done"), locale=actor.locale)


async def _after_step(
    uow: UnitOfWork,
    clock: Clock,
    rules: DeadlineRules,
    actor: Person,
    task: Task,
    declaration: Declaration,
    action: str,
) -> None:
    """The messages a step sends: to the next person to act, and to the household."""
    now = clock.now()
    receipt = {"receipt": declaration.receipt}
    verdict = text(f"verdict.{declaration.verdict.value}") if declaration.verdict else ""
    if action == "publicize":
        until = rules.notice_ends(now)
        await uow.outbox.add(
            actor.id,
            Outgoing(
                "case.publicizing",
                {**receipt, "until": day(until.date().isoformat())},
                actions=step_actions(task, declaration),
            ),
            key=f"publicize:{task.id}",
            at=now,
        )
    elif action == "close_notice":
        await uow.outbox.add(
            actor.id, Outgoing("case.sent_to_township", receipt), key=f"to-township:{task.id}", at=now
        )
        review = Outgoing(
            "case.for_review",
            {**receipt, "verdict": verdict},
            actions=step_actions(task, declaration, township=True),
        )
        await _tell_township(uow, clock, task, "review", review)
    elif action == "approve":
        await uow.outbox.add(
            actor.id,
            Outgoing("case.approved", receipt, actions=step_actions(task, declaration, township=True)),
            key=f"approved:{task.id}",
            at=now,
        )
    elif action == "enter":
        await uow.outbox.add(actor.id, Outgoing("case.entered", receipt), key=f"entered:{task.id}", at=now)
        if task.acknowledged_by is not None and task.acknowledged_by != actor.id:
            await uow.outbox.add(
                task.acknowledged_by,
                Outgoing("case.entered", receipt),
                key=f"entered:{task.id}:owner",
                at=now,
            )
        await _tell_household(
            uow, clock, declaration, "entered", Outgoing("farmer.entered", {**receipt, "verdict": verdict})
        )
    elif action == "uphold":
        await uow.outbox.add(actor.id, Outgoing("case.upheld", receipt), key=f"upheld:{task.id}", at=now)
        await _tell_household(
            uow, clock, declaration, "upheld", Outgoing("farmer.upheld", {**receipt, "hotline": HOTLINE})
        )
    elif action == "reopen":
        await uow.outbox.add(
            actor.id,
            Outgoing("case.reopened_staff", receipt),
            key=None,
            at=now,
        )
        if task.acknowledged_by is not None:
            await uow.outbox.add(
                task.acknowledged_by,
                Outgoing("case.reopened", receipt, actions=step_actions(task, declaration)),
                key=None,
                at=now,
            )
        await _tell_household(uow, clock, declaration, None, Outgoing("farmer.reopened", receipt))


async def _green_channel(
    uow: UnitOfWork, clock: Clock, actor: Person, task: Task, declaration: Declaration
) -> Outcome:
    """绿色通道: for a disaster or accident with clear facts, help starts before the paperwork."""
    refusal = await _refusal(uow, actor, task, declaration, Party.OWNER)
    if refusal:
        return _refused(actor, refusal)
    if not set(declaration.risk_types) & GREEN_CHANNEL_RISKS:
        return _refused(actor, "case.green_not_applicable")
    if not await uow.declarations.set_green_channel(declaration.id):
        return _refused(actor, "case.step_done")
    now = clock.now()
    await uow.events.add(CaseEvent(declaration.id, "green_channel", actor.id, now))
    await _tell_township(
        uow,
        clock,
        task,
        "green",
        Outgoing("case.green_channel", {"receipt": declaration.receipt, "name": actor.name}),
    )
    return Outcome(toast="case.green_done", locale=actor.locale)


# --- objection by the household -----------------------------------------------------------------


async def start_objection(
    uow: UnitOfWork, clock: Clock, actor: Actor, declaration_id: int
) -> Outcome:
    """我有异议: ask the household what they disagree with."""
    declaration = await uow.declarations.get(declaration_id)
    if declaration is None or declaration.declared_by != actor.id:
        return _refused(actor, "case.not_allowed")
    if declaration.status is not S.NOT_ELIGIBLE:
        return _refused(actor, "case.step_done")
    conv = await uow.conversations.start(
        actor.id, Flow.OBJECTION, "text", {"declaration_id": declaration.id}, clock.now()
    )
    await uow.outbox.add(
        actor.id,
        Outgoing(
            "farmer.ask_objection",
            {"receipt": declaration.receipt},
            actions=((Action(b.Cancel(conv.id)),),),
        ),
        at=clock.now(),
    )
    return Outcome(locale=actor.locale)


async def give_objection(
    uow: UnitOfWork,
    clock: Clock,
    rules: DeadlineRules,
    person: Person,
    conversation_id: int,
    declaration_id: int,
    raw: str,
) -> None:
    """The household's objection goes to the township for a re-check."""
    now = clock.now()
    try:
        objection = validation.reason(raw)
    except Invalid as exc:
        await uow.outbox.add(person.id, Outgoing("validate.objection", dict(exc.params)), at=now)
        return
    await uow.conversations.finish(conversation_id)
    declaration = await uow.declarations.get(declaration_id)
    task = await uow.tasks.for_declaration(declaration_id) if declaration else None
    if declaration is None or task is None:
        return
    after, refusal = await _apply(
        uow, clock, rules, person, task, declaration, "object", reason=declaration.verdict_reason,
        verdict=declaration.verdict, data={"objection": objection},
    )  # fmt: skip
    if after is None:
        await uow.outbox.add(person.id, Outgoing(refusal or "case.step_done"), at=now)
        return
    await uow.outbox.add(
        person.id, Outgoing("farmer.objection_received", {"receipt": declaration.receipt}), at=now
    )
    await _tell_township(
        uow, clock, task, None,
        Outgoing(
            "case.objection",
            {
                "receipt": declaration.receipt,
                "reason": declaration.verdict_reason or "",
                "objection": objection,
            },
            actions=step_actions(task, after, township=True),
        ),
    )  # fmt: skip


# --- handing over -------------------------------------------------------------------------------


async def offer_handover(
    uow: UnitOfWork, clock: Clock, actor: Actor, task_id: int
) -> Outcome:
    """转交: the colleagues of the same village the owner may hand the case to."""
    actor, task, declaration = await _load(uow, clock, actor, task_id)
    if task is None or declaration is None:
        return _refused(actor, "case.not_found")
    refusal = await _may_hand_over(uow, actor, task)
    if refusal:
        return _refused(actor, refusal)
    colleagues = [
        p for p in await uow.persons.cadres_of_village(task.village_id) if p.id != task.acknowledged_by
    ]
    reachable = await uow.persons.reachable([p.id for p in colleagues])
    buttons = [
        Action(b.HandTo(task.id, p.id), label={"$plain": p.name or str(p.id)})
        for p in colleagues
        if p.id in reachable
    ]
    if not buttons:
        return _refused(actor, "case.no_colleague")
    await uow.outbox.add(
        actor.id,
        Outgoing(
            "case.choose_colleague", {"receipt": declaration.receipt}, actions=tuple((b,) for b in buttons)
        ),
        at=clock.now(),
    )
    return Outcome(locale=actor.locale, done=False)


async def hand_over(
    uow: UnitOfWork, clock: Clock, actor: Actor, task_id: int, colleague_id: int
) -> Outcome:
    """Give the case to a colleague of the same village (the owner, or township staff, may)."""
    actor, task, declaration = await _load(uow, clock, actor, task_id)
    if task is None or declaration is None:
        return _refused(actor, "case.not_found")
    refusal = await _may_hand_over(uow, actor, task)
    if refusal:
        return _refused(actor, refusal)
    colleague = await uow.persons.get(colleague_id)
    if (
        colleague is None
        or colleague.role is not Role.CADRE
        or task.village_id not in colleague.village_ids
        or colleague.id == task.acknowledged_by
    ):
        return _refused(actor, "case.not_a_colleague")
    if not await uow.persons.reachable([colleague.id]):
        return _refused(actor, "case.colleague_unreachable")  # the case would sit where no one sees it
    if declaration.status in FINAL or declaration.status is S.SUBMITTED:
        return _refused(actor, "case.step_done")
    if not await uow.tasks.hand_over(task.id, expected_owner=task.acknowledged_by, to=colleague.id):
        return _refused(actor, "case.step_done")
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
