"""A declaration is submitted: stored, routed to its village's cadres (or the township), told."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from domain import buttons as b
from domain.cases.moves import due_for, first_check
from domain.messages import Action, Outgoing, text
from domain.model import (
    HOTLINE,
    Attachment,
    CaseEvent,
    Declaration,
    DeclarationStatus,
    NewDeclaration,
    Person,
    RoutedTo,
)
from domain.ports import Clock, DeadlineRules, UnitOfWork
from domain.procedure import DUE_STEP

log = logging.getLogger(__name__)
S = DeclarationStatus


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
    filer: Person | None = None,
) -> Declaration:
    """Store the declaration, open a task for the village and tell everyone concerned.

    `summary` is every answer as the household saw it in the summary (ID number masked); the
    cadres get the same, followed by the voice note and photos. `filer` is who submitted it when
    that is not the declarant (a cadre's 代报 for a household with a person of its own): the
    submission is theirs, and they get the receipt too.
    """
    now = clock.now()
    filer = filer or declarant
    declaration = await uow.declarations.add(new, now)
    for attachment in attachments:
        await uow.attachments.add(replace(attachment, declaration_id=declaration.id))
    await uow.events.add(
        CaseEvent(
            declaration.id,
            "submitted",
            filer.id,
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
    receipt = Outgoing(
        "intake.submitted",
        {"receipt": declaration.receipt, "village": village.name, "hotline": HOTLINE},
        keyboard="menu",
    )
    told = [declarant.id] if filer.id == declarant.id else [declarant.id, filer.id]
    for person_id in await _reachable(uow, told):
        # Nobody reachable: declared on the web page, which shows the receipt itself.
        key = f"receipt:{declaration.id}" if person_id == declarant.id else f"receipt:{declaration.id}:filer"
        await uow.outbox.add(person_id, receipt, key=key, at=now)
    return declaration


async def _reachable(uow: UnitOfWork, person_ids: list[int]) -> list[int]:
    reachable = await uow.persons.reachable(person_ids)
    return [p for p in person_ids if p in reachable]
