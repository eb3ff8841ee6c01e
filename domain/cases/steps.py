"""The steps of a case taken with a button: 签收, the verdict (and the reason of 不纳入), the
one-button steps of the procedure, and the green channel."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from domain import buttons as b
from domain import validation
from domain.actor import Actor
from domain.cases.access import county_of, is_handler, open_task, recipients_of, refusal_of, refused
from domain.cases.actions import GREEN_CHANNEL_RISKS, step_actions
from domain.cases.moves import allowed, apply_move, open_for, tell_household, tell_township
from domain.cases.visit import start_visit
from domain.dialogue import Kind, Said, Start, Tools, begin
from domain.messages import Action, Outcome, Outgoing, day, text
from domain.model import (
    HOTLINE,
    CaseEvent,
    Conversation,
    Declaration,
    DeclarationStatus,
    Flow,
    Person,
    Role,
    Task,
    Verdict,
)
from domain.ports import Clock, DeadlineRules, UnitOfWork
from domain.procedure import Party
from domain.validation import Invalid

S = DeclarationStatus
DONE_TOASTS = {
    "publicize": "case.done_publicize",
    "close_notice": "case.done_close_notice",
    "approve": "case.done_approve",
    "enter": "case.done_enter",
    "uphold": "case.done_uphold",
    "reopen": "case.done_reopen",
}


async def acknowledge(
    uow: UnitOfWork, clock: Clock, rules: DeadlineRules, actor: Actor, task_id: int
) -> Outcome:
    """签收: the first person the case went to who presses it owns it; the household hears of it."""
    opened = await open_task(uow, actor, task_id)
    if isinstance(opened, Outcome):
        return opened
    task, declaration = opened.task, opened.declaration
    if not await is_handler(uow, actor, task):
        # Someone the case did not go to learns nothing of where it stands.
        return refused(actor, "case.not_allowed")
    if declaration.status is S.WITHDRAWN:
        return refused(actor, "case.step_done")
    if declaration.status is not S.SUBMITTED:
        if task.acknowledged_by == actor.id:
            # 签收 pressed again by its owner (an old 【新申报】, or the card): it is theirs already.
            return Outcome(toast="case.ack_yours", locale=actor.locale)
        return refused(actor, "case.already_acknowledged")
    after, refusal = await apply_move(uow, clock, rules, actor, task, declaration, "acknowledge")
    if after is None:
        return refused(actor, "case.already_acknowledged" if refusal == "case.step_done" else refusal)
    owned = replace(task, acknowledged_by=actor.id)
    now = clock.now()
    for recipient in await recipients_of(uow, task):
        # Nobody signs it again: every 【新申报】 of it loses its 签收 (the one pressed, too).
        await uow.outbox.disarm(recipient.id, f"case-new:{task.id}:{recipient.id}", at=now)
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
    await tell_household(
        uow,
        clock,
        declaration,
        "ack",
        Outgoing("farmer.acknowledged", {"receipt": declaration.receipt, "name": actor.name}),
    )
    return Outcome(toast="case.ack_done", locale=actor.locale)


async def choose_verdict(
    uow: UnitOfWork,
    clock: Clock,
    rules: DeadlineRules,
    actor: Actor,
    task_id: int,
    verdict: Verdict,
) -> Outcome:
    """A verdict button: an eligible category is proposed; 不纳入 first asks for the reason."""
    opened = await open_task(uow, actor, task_id)
    if isinstance(opened, Outcome):
        return opened
    task, declaration = opened.task, opened.declaration
    if verdict is Verdict.NOT_ELIGIBLE:
        step, refusal = await allowed(uow, actor, task, declaration, "reject")
        if step is None:
            return refused(actor, refusal)
        subject = {"task_id": task.id}
        conv = await begin(uow, clock, actor, Start(Flow.VERDICT_REASON, subject), "reason", subject)
        if conv is not None:
            await uow.outbox.add(actor.id, await ask_reason(uow, clock, conv), at=clock.now())
        return Outcome(locale=actor.locale)
    after, refusal = await apply_move(uow, clock, rules, actor, task, declaration, "propose", verdict=verdict)
    if after is None:
        return refused(actor, refusal)
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
    await tell_household(
        uow,
        clock,
        declaration,
        "proposed",
        Outgoing("farmer.proposed", {"receipt": declaration.receipt, "verdict": verdict_text}),
    )
    return Outcome(toast="case.decided_toast", locale=actor.locale)


async def ask_reason(uow: UnitOfWork, clock: Clock, conv: Conversation) -> Outgoing:
    """The question for the reason of 不纳入."""
    task = await uow.tasks.get(int(conv.data["task_id"]))
    declaration = await uow.declarations.get(task.declaration_id) if task else None
    return Outgoing(
        "case.ask_reason",
        {"receipt": declaration.receipt if declaration else "", "limit": validation.MAX_REASON},
        actions=((Action(b.Cancel(conv.id)),),),
    )


async def answer_reason(uow: UnitOfWork, tools: Tools, actor: Actor, conv: Conversation, said: Said) -> None:
    """The reason typed for 不纳入; anything but text is explained."""
    if said.kind is not Kind.TEXT:
        await uow.outbox.add(actor.id, Outgoing("intake.need_text"), at=tools.clock.now())
        return
    await give_reason(uow, tools.clock, tools.rules, actor, conv.id, int(conv.data["task_id"]), said.text)


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
    refusal = await _not_eligible(uow, clock, rules, actor, task, declaration, reason)
    if refusal is not None:
        await uow.outbox.add(actor.id, Outgoing(refusal), at=now)


async def reject(
    uow: UnitOfWork, clock: Clock, rules: DeadlineRules, actor: Actor, task_id: int, raw: str
) -> Outcome:
    """不纳入 with its reason at once (the console's form): the chat's checks and messages."""
    opened = await open_for(uow, actor, task_id, "reject")
    if isinstance(opened, Outcome):
        return opened
    task, declaration = opened.task, opened.declaration
    try:
        reason = validation.reason(raw)
    except Invalid as exc:
        return Outcome(toast=exc.key, params=dict(exc.params), alert=True, locale=actor.locale, done=False)
    conv = await uow.conversations.get(actor.id)
    if conv is not None and conv.flow is Flow.VERDICT_REASON and conv.data.get("task_id") == task.id:
        await uow.conversations.finish(conv.id)  # the reason asked in chat is given here instead
    refusal = await _not_eligible(uow, clock, rules, actor, task, declaration, reason)
    if refusal is not None:
        return refused(actor, refusal)
    return Outcome(toast="case.decided_toast", locale=actor.locale)


async def _not_eligible(
    uow: UnitOfWork,
    clock: Clock,
    rules: DeadlineRules,
    actor: Person,
    task: Task,
    declaration: Declaration,
    reason: str,
) -> str | None:
    """The verdict 不纳入 with its reason; the household is told and may object. Why not, or None."""
    now = clock.now()
    after, refusal = await apply_move(
        uow, clock, rules, actor, task, declaration, "reject", verdict=Verdict.NOT_ELIGIBLE, reason=reason
    )
    if after is None:
        return refusal or "case.step_done"
    await uow.outbox.add(
        actor.id,
        Outgoing("case.decided", {"receipt": declaration.receipt, "verdict": text("verdict.not_eligible")}),
        key=None,
        at=now,
    )
    await tell_household(
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
    return None


async def simple_step(
    uow: UnitOfWork,
    clock: Clock,
    rules: DeadlineRules,
    actor: Actor,
    task_id: int,
    action: str,
) -> Outcome:
    """A step taken with one button: publicize, close_notice, approve, enter, uphold, reopen, green."""
    opened = await open_task(uow, actor, task_id)
    if isinstance(opened, Outcome):
        return opened
    task, declaration = opened.task, opened.declaration
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
    after, refusal = await apply_move(uow, clock, rules, actor, task, declaration, action, data=data)
    if after is None:
        return refused(actor, refusal)
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
        await tell_township(uow, clock, task, "review", review)
    elif action == "approve":
        county = await county_of(uow, task.village_id)
        await uow.outbox.add(
            actor.id,
            Outgoing(
                "case.approved" if county is None else "case.approved_to_county",
                receipt,
                actions=step_actions(task, declaration, township=True, county=county is None),
            ),
            key=f"approved:{task.id}",
            at=now,
        )
        if county is not None:
            # 县级审定 is the county's: each of its people who can be reached is asked to record it.
            ask = Outgoing(
                "case.for_county",
                {**receipt, "verdict": verdict},
                actions=step_actions(task, declaration, county=True),
            )
            for person in await uow.persons.of_county(county):
                await uow.outbox.add(person.id, ask, key=f"county:{task.id}:{person.id}", at=now)
    elif action == "enter":
        await uow.outbox.add(actor.id, Outgoing("case.entered", receipt), key=f"entered:{task.id}", at=now)
        if actor.role is Role.COUNTY:
            await tell_township(uow, clock, task, "entered", Outgoing("case.entered", receipt))
        if task.acknowledged_by is not None and task.acknowledged_by != actor.id:
            await uow.outbox.add(
                task.acknowledged_by,
                Outgoing("case.entered", receipt),
                key=f"entered:{task.id}:owner",
                at=now,
            )
        await tell_household(
            uow, clock, declaration, "entered", Outgoing("farmer.entered", {**receipt, "verdict": verdict})
        )
    elif action == "uphold":
        await uow.outbox.add(actor.id, Outgoing("case.upheld", receipt), key=f"upheld:{task.id}", at=now)
        await tell_household(
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
        await tell_household(uow, clock, declaration, None, Outgoing("farmer.reopened", receipt))


async def _green_channel(
    uow: UnitOfWork, clock: Clock, actor: Person, task: Task, declaration: Declaration
) -> Outcome:
    """绿色通道: for a disaster or accident with clear facts, help starts before the paperwork."""
    refusal = await refusal_of(uow, actor, task, declaration, Party.OWNER)
    if refusal:
        return refused(actor, refusal)
    if not set(declaration.risk_types) & GREEN_CHANNEL_RISKS:
        return refused(actor, "case.green_not_applicable")
    if not await uow.declarations.set_green_channel(declaration.id):
        return refused(actor, "case.step_done")
    now = clock.now()
    await uow.events.add(CaseEvent(declaration.id, "green_channel", actor.id, now))
    await tell_township(
        uow,
        clock,
        task,
        "green",
        Outgoing("case.green_channel", {"receipt": declaration.receipt, "name": actor.name}),
    )
    return Outcome(toast="case.green_done", locale=actor.locale)
