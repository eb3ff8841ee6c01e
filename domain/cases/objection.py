"""我有异议: the household objects to 不纳入, and the township re-checks."""

from __future__ import annotations

from domain import buttons as b
from domain import validation
from domain.actor import Actor
from domain.cases.access import refused
from domain.cases.actions import step_actions
from domain.cases.moves import apply_move, tell_township
from domain.dialogue import Kind, Said, Start, Tools, begin
from domain.messages import Action, Outcome, Outgoing
from domain.model import Conversation, Declaration, DeclarationStatus, Flow, Person
from domain.ports import Clock, DeadlineRules, UnitOfWork
from domain.validation import Invalid

S = DeclarationStatus


def refusal(declaration: Declaration | None, person: Person) -> str | None:
    """Why `person` may not object to this declaration now (a catalog key), or None: only its
    household (the declarant), only to 不纳入, once (the objection moves it on)."""
    if declaration is None or declaration.declared_by != person.id:
        return "case.not_allowed"
    if declaration.status is not S.NOT_ELIGIBLE:
        return "case.step_done"
    return None


async def start_objection(uow: UnitOfWork, clock: Clock, actor: Actor, declaration_id: int) -> Outcome:
    """我有异议: ask the household what they disagree with."""
    declaration = await uow.declarations.get(declaration_id)
    why = refusal(declaration, actor)
    if declaration is None or why is not None:
        return refused(actor, why)
    subject = {"declaration_id": declaration.id}
    conv = await begin(uow, clock, actor, Start(Flow.OBJECTION, subject), "text", subject)
    if conv is not None:
        await uow.outbox.add(actor.id, await ask(uow, clock, conv), at=clock.now())
    return Outcome(locale=actor.locale)


async def ask(uow: UnitOfWork, clock: Clock, conv: Conversation) -> Outgoing:
    """The question for what the household disagrees with."""
    declaration = await uow.declarations.get(int(conv.data["declaration_id"]))
    return Outgoing(
        "farmer.ask_objection",
        {"receipt": declaration.receipt if declaration else ""},
        actions=((Action(b.Cancel(conv.id)),),),
    )


async def answer(uow: UnitOfWork, tools: Tools, actor: Actor, conv: Conversation, said: Said) -> None:
    """The objection typed; anything but text is explained."""
    if said.kind is not Kind.TEXT:
        await uow.outbox.add(actor.id, Outgoing("intake.need_text"), at=tools.clock.now())
        return
    await give_objection(
        uow, tools.clock, tools.rules, actor, conv.id, int(conv.data["declaration_id"]), said.text
    )


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
    why = await _record(uow, clock, rules, person, declaration_id, objection)
    if why is not None:
        await uow.outbox.add(person.id, Outgoing(why), at=now)


async def object_now(
    uow: UnitOfWork, clock: Clock, rules: DeadlineRules, actor: Actor, declaration_id: int, raw: str
) -> str | None:
    """The objection given at once, with its reason (the status page's form): checked as in chat
    (`Invalid` for a reason too short or too long), recorded and told as in chat. None when it
    was recorded; else why not (a catalog key: not the household's, or not open to objection)."""
    objection = validation.reason(raw)
    why = refusal(await uow.declarations.get(declaration_id), actor)
    if why is not None:
        return why
    conv = await uow.conversations.get(actor.id)
    if conv is not None and conv.flow is Flow.OBJECTION and conv.data.get("declaration_id") == declaration_id:
        await uow.conversations.finish(conv.id)  # the same objection half-written in chat
    return await _record(uow, clock, rules, actor, declaration_id, objection)


async def _record(
    uow: UnitOfWork, clock: Clock, rules: DeadlineRules, person: Person, declaration_id: int, objection: str
) -> str | None:
    """The move 不纳入 → 复核 with the objection; the household and the township told. Why not, or None."""
    now = clock.now()
    declaration = await uow.declarations.get(declaration_id)
    task = await uow.tasks.for_declaration(declaration_id) if declaration else None
    if declaration is None or task is None:
        return "case.not_found"
    after, why = await apply_move(
        uow, clock, rules, person, task, declaration, "object", reason=declaration.verdict_reason,
        verdict=declaration.verdict, data={"objection": objection},
    )  # fmt: skip
    if after is None:
        return why or "case.step_done"
    await uow.outbox.add(
        person.id, Outgoing("farmer.objection_received", {"receipt": declaration.receipt}), at=now
    )
    await tell_township(
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
    return None
