"""A household's declarations after submitting: status, adding information, withdrawing; drafts."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from domain import buttons as b
from domain.actor import Actor, acting
from domain.cases import owner_in_place, recipients_of
from domain.dialogue import Kind, Said, Start, Tools, begin
from domain.messages import Action, Outcome, Outgoing, day, text
from domain.model import (
    HOTLINE,
    Attachment,
    AttachmentKind,
    CaseEvent,
    Conversation,
    Declaration,
    DeclarationStatus,
    Flow,
    Person,
    Task,
    TaskStatus,
)
from domain.ports import Clock, UnitOfWork
from domain.procedure import move

# What one person may add in a day (each item is a message to the cadre): enough for any household,
# not a way to flood a cadre's chat, also not by opening 补充 again.
ADDED_PER_DAY = (20, timedelta(days=1))

NEXT_STEP = {
    DeclarationStatus.SUBMITTED: "status.next_acknowledge",
    DeclarationStatus.ACKNOWLEDGED: "status.next_visit",
    DeclarationStatus.VISITED: "status.next_verdict",
    DeclarationStatus.PROPOSED: "status.next_notice",
    DeclarationStatus.PUBLICIZING: "status.next_notice_end",
    DeclarationStatus.TOWNSHIP_REVIEW: "status.next_township",
    DeclarationStatus.APPROVED: "status.next_county",
    DeclarationStatus.OBJECTED: "status.next_recheck",
}


def due_day(task: Task | None, now: datetime) -> date | None:
    """When the step a case waits for is due, as a day in the service's zone; None when nothing is."""
    due = task.due_at if task and task.status in (TaskStatus.OPEN, TaskStatus.ACKNOWLEDGED) else None
    return due.astimezone(now.tzinfo).date() if due else None  # stored in UTC


def _line(declaration: Declaration, task: Task | None, now: datetime) -> dict[str, Any]:
    due = due_day(task, now)
    return {
        "$t": "status.line_due" if due else "status.line",
        "$with": {
            "receipt": declaration.receipt,
            "date": day(declaration.created_at.astimezone(now.tzinfo).date().isoformat()),
            "state": text(f"state.{declaration.status.value}"),
            "next": text(NEXT_STEP.get(declaration.status, "status.next_none")),
            "due": day(due.isoformat()) if due else "",
        },
    }


async def my_declarations(uow: UnitOfWork, clock: Clock, actor: Actor) -> Outcome:
    """我的申报: each declaration with its state, next step and when that is due."""
    declarations = await uow.declarations.by_declarant(actor.id)
    if not declarations:
        await uow.outbox.add(actor.id, Outgoing("status.none", {"hotline": HOTLINE}), at=clock.now())
        return Outcome(locale=actor.locale)
    lines = []
    actions: list[tuple[Action, ...]] = []
    for declaration in declarations:
        task = await uow.tasks.for_declaration(declaration.id)
        lines.append(_line(declaration, task, clock.now()))
        if declaration.status.open:
            row = [
                Action(
                    b.AddInfo(declaration.id),
                    label={"$t": "action.add_info", "$with": {"receipt": declaration.receipt}},
                )
            ]
            if task is not None and task.status is TaskStatus.OPEN:
                row.append(Action(b.Withdraw(declaration.id), label="action.withdraw"))
            actions.append(tuple(row))
    message = Outgoing(
        "status.list", {"lines": {"$lines": lines}, "hotline": HOTLINE}, actions=tuple(actions)
    )
    await uow.outbox.add(actor.id, message, at=clock.now())
    return Outcome(locale=actor.locale)


async def _own_open(uow: UnitOfWork, person: Person, declaration_id: int) -> Declaration | None:
    declaration = await uow.declarations.get(declaration_id)
    if declaration is None or declaration.declared_by != person.id or not declaration.status.open:
        return None
    return declaration


async def begin_adding(
    uow: UnitOfWork, clock: Clock, person: Person, declaration: Declaration, *, check_owner: bool = True
) -> bool:
    """Open the conversation in which text, voice notes and photos are added to a declaration.

    Someone who is neither its declarant nor the cadre who filed it (a relative who typed the same
    phone, say) may add too, but is not shown the receipt, and the cadre sees 非原申报人 on it.
    """
    own = person.id in (declaration.declared_by, declaration.filed_by_cadre)
    if check_owner and not own:
        return False
    data = {"declaration_id": declaration.id, "count": 0, "not_declarant": not own}
    start = Start(Flow.ADD_INFO, {"declaration_id": declaration.id})
    conv = await begin(uow, clock, acting(person), start, "adding", data)
    if conv is not None:
        await uow.outbox.add(person.id, await ask(uow, clock, conv), at=clock.now())
    return True


async def ask(uow: UnitOfWork, clock: Clock, conv: Conversation) -> Outgoing:
    """What adding information to a declaration asks for."""
    own = not conv.data.get("not_declarant")
    declaration = await uow.declarations.get(int(conv.data["declaration_id"]))
    return Outgoing(
        "status.add_prompt" if own else "status.add_prompt_other",
        {"receipt": declaration.receipt if declaration else ""} if own else {},
        actions=((Action(b.AddDone(conv.id)), Action(b.Cancel(conv.id))),),
    )


async def answer(uow: UnitOfWork, tools: Tools, actor: Actor, conv: Conversation, said: Said) -> None:
    """Text, a voice note or a photo added to a declaration; anything else is explained."""
    clock = tools.clock
    if said.kind is Kind.TEXT:
        await add_item(uow, clock, actor, conv.id, conv.data, AttachmentKind.TEXT, said.text.strip()[:1000])
    elif said.kind is Kind.VOICE and said.ref:
        await add_item(uow, clock, actor, conv.id, conv.data, AttachmentKind.VOICE, said.ref, said.seconds)
    elif said.kind is Kind.PHOTO and said.ref:
        await add_item(uow, clock, actor, conv.id, conv.data, AttachmentKind.PHOTO, said.ref)
    else:
        await uow.outbox.add(actor.id, Outgoing("status.add_kinds"), at=clock.now())


async def press_add(uow: UnitOfWork, clock: Clock, actor: Actor, declaration_id: int) -> Outcome:
    """The 补充材料 button of the status list."""
    declaration = await _own_open(uow, actor, declaration_id)
    if declaration is None:
        return Outcome(toast="status.not_open", locale=actor.locale, done=False)
    await begin_adding(uow, clock, actor, declaration)
    return Outcome(locale=actor.locale, done=False)


async def add_item(
    uow: UnitOfWork,
    clock: Clock,
    person: Person,
    conversation_id: int,
    data: dict[str, Any],
    kind: AttachmentKind,
    ref: str,
    duration: int | None = None,
) -> None:
    """Keep one added text, voice note or photo and pass it on to whoever handles the case."""
    now = clock.now()
    declaration = await uow.declarations.get(int(data["declaration_id"]))
    if declaration is None or not declaration.status.open:
        await uow.conversations.finish(conversation_id)
        await uow.outbox.add(person.id, Outgoing("status.not_open"), at=now)
        return
    limit, window = ADDED_PER_DAY
    if not await uow.limits.hit(f"addinfo:person:{person.id}", limit=limit, window=window, now=now):
        await uow.outbox.add(person.id, Outgoing("status.add_too_many", {"hotline": HOTLINE}), at=now)
        return
    await uow.attachments.add(Attachment(declaration.id, kind, ref, person.id, now, duration))
    count = int(data.get("count", 0)) + 1
    await uow.conversations.update(conversation_id, "adding", {**data, "count": count}, now)
    event = {"kind": kind.value, "not_declarant": bool(data.get("not_declarant"))}
    await uow.events.add(CaseEvent(declaration.id, "info_added", person.id, now, event))
    task = await uow.tasks.for_declaration(declaration.id)
    # What someone other than the declarant adds is passed on marked as such (非原申报人).
    source = text("case.from_someone_else" if data.get("not_declarant") else "case.from_household")
    for recipient in await _handlers_of(uow, task):
        params = {"receipt": declaration.receipt, "source": source}
        if kind is AttachmentKind.TEXT:
            message = Outgoing("case.info_added_text", {**params, "text": ref})
        else:
            message = Outgoing("case.info_added_media", params, media={"kind": kind.value, "file_id": ref})
        await uow.outbox.add(recipient, message, at=now)
    await uow.outbox.add(
        person.id,
        Outgoing("status.add_received", {"count": count}, actions=((Action(b.AddDone(conversation_id)),),)),
        at=now,
    )


async def _handlers_of(uow: UnitOfWork, task: Task | None) -> list[int]:
    """Who should hear about a case now: whoever acknowledged it, else everyone it went to."""
    if task is None:
        return []
    owner = await owner_in_place(uow, task)  # not one the roster has moved to another village
    if owner is not None:
        return [owner]
    return [p.id for p in await recipients_of(uow, task)]


async def finish_adding(uow: UnitOfWork, clock: Clock, actor: Actor, conversation_id: int) -> Outcome:
    """The 完成 button after adding information."""
    conv = await uow.conversations.get(actor.id)
    if conv is None or conv.id != conversation_id or conv.flow is not Flow.ADD_INFO:
        return Outcome(toast="intake.stale_button", locale=actor.locale, done=False)
    await uow.conversations.finish(conv.id)
    await uow.outbox.add(
        actor.id, Outgoing("status.add_done", {"count": conv.data.get("count", 0)}), at=clock.now()
    )
    return Outcome(locale=actor.locale)


async def ask_withdraw(uow: UnitOfWork, clock: Clock, actor: Actor, declaration_id: int) -> Outcome:
    """Ask once more before withdrawing: elderly hands press the wrong button."""
    declaration = await _own_open(uow, actor, declaration_id)
    if declaration is None:
        return Outcome(toast="status.not_open", locale=actor.locale, done=False)
    await uow.outbox.add(
        actor.id,
        Outgoing(
            "status.withdraw_sure",
            {"receipt": declaration.receipt},
            actions=((Action(b.WithdrawYes(declaration.id), label="action.withdraw_yes"),),),
        ),
        at=clock.now(),
    )
    return Outcome(locale=actor.locale, done=False)


async def withdraw(uow: UnitOfWork, clock: Clock, actor: Actor, declaration_id: int) -> Outcome:
    """Withdraw a declaration no cadre has acknowledged yet."""
    declaration = await _own_open(uow, actor, declaration_id)
    task = await uow.tasks.for_declaration(declaration_id) if declaration else None
    if declaration is None or task is None:
        return Outcome(toast="status.not_open", locale=actor.locale, done=False)
    now = clock.now()
    if not await uow.tasks.close(task.id):
        return Outcome(toast="status.cannot_withdraw", alert=True, locale=actor.locale, done=False)
    to = move(declaration.status, "withdraw").target
    await uow.declarations.transition(declaration.id, expected=declaration.status, to=to, at=now)
    await uow.events.add(CaseEvent(declaration.id, "withdrawn", actor.id, now))
    for recipient in await recipients_of(uow, task):
        await uow.outbox.add(
            recipient.id,
            Outgoing("case.withdrawn", {"receipt": declaration.receipt}),
            key=f"withdrawn:{declaration.id}:{recipient.id}",
            at=now,
        )
    await uow.outbox.add(
        actor.id,
        Outgoing("status.withdrawn", {"receipt": declaration.receipt}),
        key=f"withdrawn:{declaration.id}",
        at=now,
    )
    return Outcome(toast="status.withdrawn_toast", locale=actor.locale)
