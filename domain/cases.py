"""A declaration after submission: routing, acknowledgement, verdict and feedback."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from domain import validation
from domain.messages import Action, Outcome, Outgoing, text
from domain.model import (
    HOTLINE,
    Attachment,
    CaseEvent,
    Channel,
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
from domain.people import person_for
from domain.ports import Clock, UnitOfWork
from domain.validation import Invalid

log = logging.getLogger(__name__)


# The procedure: which action moves a declaration from which status to which.
# Any pair not listed is refused.
TRANSITIONS: dict[tuple[DeclarationStatus, str], DeclarationStatus] = {
    (DeclarationStatus.SUBMITTED, "acknowledge"): DeclarationStatus.ACKNOWLEDGED,
    (DeclarationStatus.ACKNOWLEDGED, "decide"): DeclarationStatus.DECIDED,
    (DeclarationStatus.SUBMITTED, "withdraw"): DeclarationStatus.WITHDRAWN,
}
# Until the procedure's limits come from a policy file, a case is due for acknowledgement
# within two days (the Anhui rule: the village checks within 2 working days).
ACKNOWLEDGE_WITHIN = timedelta(days=2)


class TransitionRefused(Exception):
    """The action is not allowed from the declaration's current status."""


def next_status(current: DeclarationStatus, action: str) -> DeclarationStatus:
    """The status `action` leads to from `current`, or raise `TransitionRefused`."""
    try:
        return TRANSITIONS[(current, action)]
    except KeyError:
        raise TransitionRefused(f"{action} from {current}") from None


def receipt_number(day: date, declaration_id: int) -> str:
    """回执编号: the local date and a serial, digits only, easy to read out on the phone."""
    return f"{day:%Y%m%d}{declaration_id:06d}"


async def submit_declaration(
    uow: UnitOfWork,
    clock: Clock,
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
    reachable = await uow.persons.reachable([p.id for p in cadres], Channel.TELEGRAM)
    routed_to = RoutedTo.VILLAGE
    recipients = [p for p in cadres if p.id in reachable]
    if not recipients:
        # No cadre of the village has bound a chat yet: the township must not miss the case.
        routed_to = RoutedTo.TOWNSHIP
        recipients = await uow.persons.staff_of_township(village.township_id)
    task = await uow.tasks.add(declaration.id, village.id, routed_to, now, due_at=now + ACKNOWLEDGE_WITHIN)
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
            Outgoing(template, params, actions=((Action("ack", str(task.id)),),)),
            key=f"case-new:{task.id}:{recipient.id}",
            at=now,
        )
        for n, attachment in enumerate(attachments):
            await uow.outbox.add(
                recipient.id,
                Outgoing(
                    "case.attachment",
                    {"receipt": declaration.receipt},
                    media=(attachment.kind.value, attachment.ref),
                ),
                key=f"case-new:{task.id}:{recipient.id}:{n}",
                at=now,
            )
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


async def _may_act(uow: UnitOfWork, person: Person, task: Task) -> bool:
    """Only those the task was routed to may act on it: a village's cadres, or its township."""
    if task.routed_to is RoutedTo.VILLAGE:
        return person.role is Role.CADRE and task.village_id in person.village_ids
    village = await uow.geography.village(task.village_id)
    return village is not None and person.role is Role.TOWNSHIP and person.township_id == village.township_id


async def recipients_of(uow: UnitOfWork, task: Task) -> list[Person]:
    if task.routed_to is RoutedTo.VILLAGE:
        return await uow.persons.cadres_of_village(task.village_id)
    village = await uow.geography.village(task.village_id)
    assert village is not None
    return await uow.persons.staff_of_township(village.township_id)


VERDICT_ROW_1 = (Verdict.UNSTABLE, Verdict.MARGINAL)
VERDICT_ROW_2 = (Verdict.SUDDEN, Verdict.NOT_ELIGIBLE)


def _verdict_actions(task_id: int) -> tuple[tuple[Action, ...], ...]:
    return tuple(
        tuple(Action("verdict", f"{task_id}:{v.value}", label=f"verdict.{v.value}") for v in row)
        for row in (VERDICT_ROW_1, VERDICT_ROW_2)
    )


async def _load(
    uow: UnitOfWork, clock: Clock, channel: Channel, address: str, task_id: int
) -> tuple[Person, Task | None, Declaration | None, str | None]:
    """The actor, the task and its declaration, and why the actor may not act (or None)."""
    actor = await person_for(uow, channel, address, clock)
    task = await uow.tasks.get(task_id)
    if task is None:
        return actor, None, None, "case.not_found"
    if not await _may_act(uow, actor, task):
        return actor, task, None, "case.not_allowed"
    declaration = await uow.declarations.get(task.declaration_id)
    assert declaration is not None
    return actor, task, declaration, None


async def acknowledge(uow: UnitOfWork, clock: Clock, channel: Channel, address: str, task_id: int) -> Outcome:
    """签收: the first assigned person to press it owns the case; the household hears of it."""
    actor, task, declaration, refusal = await _load(uow, clock, channel, address, task_id)
    if refusal or task is None or declaration is None:
        return Outcome(toast=refusal, alert=True, locale=actor.locale, done=False)
    now = clock.now()
    if task.status is not TaskStatus.OPEN or not await uow.tasks.acknowledge(task.id, actor.id, now):
        return Outcome(toast="case.already_acknowledged", alert=True, locale=actor.locale, done=False)
    status = next_status(declaration.status, "acknowledge")
    moved = await uow.declarations.transition(declaration.id, expected=declaration.status, to=status, at=now)
    if not moved:
        raise TransitionRefused(f"declaration {declaration.id} changed concurrently")
    await uow.events.add(CaseEvent(declaration.id, "acknowledged", actor.id, now, {"task": task.id}))
    await uow.outbox.add(
        actor.id,
        Outgoing("case.acknowledged", {"receipt": declaration.receipt}, actions=_verdict_actions(task.id)),
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
    await uow.outbox.add(
        declaration.declared_by,
        Outgoing("farmer.acknowledged", {"receipt": declaration.receipt, "name": actor.name}),
        key=f"farmer-ack:{declaration.id}",
        at=now,
    )
    return Outcome(toast="case.ack_done", locale=actor.locale)


async def choose_verdict(
    uow: UnitOfWork, clock: Clock, channel: Channel, address: str, task_id: int, verdict: Verdict
) -> Outcome:
    """A verdict button: record it, or for 不纳入 first ask for the reason."""
    actor, task, declaration, refusal = await _load(uow, clock, channel, address, task_id)
    if refusal or task is None or declaration is None:
        return Outcome(toast=refusal, alert=True, locale=actor.locale, done=False)
    if task.status is TaskStatus.DONE:
        return Outcome(toast="case.already_decided", alert=True, locale=actor.locale, done=False)
    if task.status is not TaskStatus.ACKNOWLEDGED or task.acknowledged_by != actor.id:
        return Outcome(toast="case.not_yours", alert=True, locale=actor.locale, done=False)
    if verdict is Verdict.NOT_ELIGIBLE:
        conv = await uow.conversations.start(
            actor.id, Flow.VERDICT_REASON, "reason", {"task_id": task.id}, clock.now()
        )
        await uow.outbox.add(
            actor.id,
            Outgoing(
                "case.ask_reason",
                {"receipt": declaration.receipt, "limit": validation.MAX_REASON},
                actions=((Action("cancel", str(conv.id)),),),
            ),
            at=clock.now(),
        )
        return Outcome(locale=actor.locale)
    await _decide(uow, clock, actor, task, declaration, verdict, None)
    return Outcome(toast="case.decided_toast", locale=actor.locale)


async def give_reason(
    uow: UnitOfWork, clock: Clock, actor: Person, conversation_id: int, task_id: int, raw: str
) -> None:
    """The reason typed for 不纳入 completes that verdict."""
    now = clock.now()
    try:
        reason = validation.reason(raw)
    except Invalid as exc:
        await uow.outbox.add(actor.id, Outgoing(exc.key, dict(exc.params)), at=now)
        return
    task = await uow.tasks.get(task_id)
    declaration = await uow.declarations.get(task.declaration_id) if task else None
    await uow.conversations.finish(conversation_id)
    if (
        task is None
        or declaration is None
        or task.status is not TaskStatus.ACKNOWLEDGED
        or task.acknowledged_by != actor.id
    ):
        await uow.outbox.add(actor.id, Outgoing("case.already_decided"), at=now)
        return
    await _decide(uow, clock, actor, task, declaration, Verdict.NOT_ELIGIBLE, reason)


async def _decide(
    uow: UnitOfWork,
    clock: Clock,
    actor: Person,
    task: Task,
    declaration: Declaration,
    verdict: Verdict,
    reason: str | None,
) -> None:
    now = clock.now()
    if not await uow.tasks.decide(task.id, actor.id, now):
        await uow.outbox.add(actor.id, Outgoing("case.already_decided"), at=now)
        return
    status = next_status(declaration.status, "decide")
    if not await uow.declarations.transition(
        declaration.id, expected=declaration.status, to=status, at=now, verdict=verdict, reason=reason
    ):
        raise TransitionRefused(f"declaration {declaration.id} changed concurrently")
    await uow.events.add(
        CaseEvent(declaration.id, "decided", actor.id, now, {"verdict": verdict.value, "reason": reason})
    )
    await uow.outbox.add(
        actor.id,
        Outgoing(
            "case.decided", {"receipt": declaration.receipt, "verdict": text(f"verdict.{verdict.value}")}
        ),
        key=f"decided:{task.id}",
        at=now,
    )
    if verdict.eligible:
        farmer = Outgoing(
            "farmer.verdict_eligible",
            {"receipt": declaration.receipt, "verdict": text(f"verdict.{verdict.value}")},
        )
    else:
        farmer = Outgoing(
            "farmer.verdict_not_eligible",
            {"receipt": declaration.receipt, "reason": reason or "", "hotline": HOTLINE},
        )
    await uow.outbox.add(declaration.declared_by, farmer, key=f"farmer-verdict:{declaration.id}", at=now)
