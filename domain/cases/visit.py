"""记录入户核实: the home visit's day, notes and photos, asked one by one, then the case moves on."""

from __future__ import annotations

from typing import Any

from domain import buttons as b
from domain import validation
from domain.actor import Actor
from domain.cases.access import refused
from domain.cases.actions import step_actions
from domain.cases.moves import apply_move, open_for, tell_household
from domain.dialogue import Kind, Said, Start, Tools, begin
from domain.messages import Action, Outcome, Outgoing, day
from domain.model import Attachment, AttachmentKind, Conversation, Declaration, Flow, Person, Task
from domain.ports import Clock, DeadlineRules, UnitOfWork
from domain.validation import Invalid

VISIT_STEPS = ("date", "notes", "photos")


async def start_visit(
    uow: UnitOfWork, clock: Clock, rules: DeadlineRules, actor: Actor, task_id: int
) -> Outcome:
    """记录入户核实: ask the day, the notes and photos of the home visit."""
    opened = await open_for(uow, actor, task_id, "visit")
    if isinstance(opened, Outcome):
        return opened
    task, declaration = opened.task, opened.declaration
    conv = await begin(
        uow, clock, actor, Start(Flow.VISIT, {"task_id": task.id}), "date", {"task_id": task.id, "photos": []}
    )
    if conv is not None:
        await uow.outbox.add(actor.id, _visit_prompt(conv.id, "date", declaration.receipt, 0), at=clock.now())
    return Outcome(locale=actor.locale, done=False)


async def ask(uow: UnitOfWork, clock: Clock, conv: Conversation) -> Outgoing:
    """The question the visit being recorded waits on."""
    task = await uow.tasks.get(int(conv.data["task_id"]))
    declaration = await uow.declarations.get(task.declaration_id) if task else None
    receipt = declaration.receipt if declaration else ""
    return _visit_prompt(conv.id, conv.step, receipt, len(conv.data.get("photos", [])))


async def answer(uow: UnitOfWork, tools: Tools, actor: Actor, conv: Conversation, said: Said) -> None:
    """A typed day or notes, or a photo, while recording a visit; anything else is explained."""
    if said.kind is Kind.TEXT:
        await visit_answer(
            uow, tools.clock, tools.rules, actor, conv.id, conv.data, conv.step, text_answer=said.text
        )
    elif said.kind is Kind.PHOTO and said.ref:
        await visit_answer(
            uow, tools.clock, tools.rules, actor, conv.id, conv.data, conv.step, photo=said.ref
        )
    else:
        await uow.outbox.add(actor.id, Outgoing("intake.need_text"), at=tools.clock.now())


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
        return refused(actor, "case.not_found")
    photos = [str(ref) for ref in conv.data.get("photos", [])]
    return await _visited(
        uow, clock, rules, actor, task, declaration, str(conv.data["date"]), str(conv.data["notes"]), photos
    )


async def record_visit(
    uow: UnitOfWork,
    clock: Clock,
    rules: DeadlineRules,
    actor: Actor,
    task_id: int,
    raw_date: str,
    raw_notes: str,
) -> Outcome:
    """记录入户核实 in one form (the console's): the day and the notes, checked as in chat; the
    case moves on and the household hears of it, as when the chat's visit is finished."""
    opened = await open_for(uow, actor, task_id, "visit")
    if isinstance(opened, Outcome):
        return opened
    task, declaration = opened.task, opened.declaration
    try:
        visited = validation.past_date(raw_date, clock.now().date())
        notes = validation.free_text(raw_notes, limit=validation.MAX_REASON, key="validate.visit_notes")
    except Invalid as exc:
        return Outcome(toast=exc.key, params=dict(exc.params), alert=True, locale=actor.locale, done=False)
    conv = await uow.conversations.get(actor.id)
    if conv is not None and conv.flow is Flow.VISIT and conv.data.get("task_id") == task.id:
        await uow.conversations.finish(conv.id)  # the visit begun in chat is recorded here instead
    return await _visited(uow, clock, rules, actor, task, declaration, visited.isoformat(), notes, [])


async def _visited(
    uow: UnitOfWork,
    clock: Clock,
    rules: DeadlineRules,
    actor: Actor,
    task: Task,
    declaration: Declaration,
    visited: str,
    notes: str,
    photos: list[str],
) -> Outcome:
    """The visit recorded: the move, its photos, and the messages to the owner and the household."""
    visit: dict[str, Any] = {"date": visited, "notes": notes, "photos": len(photos)}
    after, refusal = await apply_move(uow, clock, rules, actor, task, declaration, "visit", data=visit)
    if after is None:
        return refused(actor, refusal)
    for ref in photos:
        await uow.attachments.add(
            Attachment(declaration.id, AttachmentKind.PHOTO, ref, actor.id, clock.now())
        )
    await uow.outbox.add(
        actor.id,
        Outgoing("case.visited", {"receipt": declaration.receipt}, actions=step_actions(task, after)),
        key=None,
        at=clock.now(),
    )
    await tell_household(
        uow, clock, declaration, None,
        Outgoing("farmer.visited", {"receipt": declaration.receipt, "date": day(visited)}),
    )  # fmt: skip
    return Outcome(toast="case.visit_recorded", locale=actor.locale)
