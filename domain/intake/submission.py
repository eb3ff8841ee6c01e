"""Submitting a declaration: the limits on how often, then the case, routed to the village cadre.

The chat's 确认提交 and the web form both end in `submit`, so a declaration takes the same route
to the village cadre whichever way it came.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from domain.actor import Actor
from domain.cases import submit_declaration
from domain.intake.draft import Draft, summary_params
from domain.messages import Outcome, Outgoing
from domain.model import HOTLINE, Attachment, AttachmentKind, Declaration, NewDeclaration, Person
from domain.ports import Clock, DeadlineRules, UnitOfWork

REPEAT_WINDOW = timedelta(days=30)
# Declarations per person and per phone, in chat (the web form has limits of its own, as tight).
SUBMISSIONS = {False: (3, timedelta(days=1)), True: (30, timedelta(hours=1))}  # farmer / cadre (代报)
SUBMISSIONS_PER_PHONE = (3, timedelta(days=1))


async def confirm(
    uow: UnitOfWork, clock: Clock, rules: DeadlineRules, actor: Actor, conversation_id: int, draft: Draft
) -> Outcome:
    """Submit the declaration shown in the summary; a second press does nothing.

    Past the limits on declarations in chat the draft is kept and the household told to try
    later or call 12317.
    """
    if await over_limits(uow, clock, actor, draft):
        await uow.outbox.add(
            actor.id, Outgoing("intake.too_many_declarations", {"hotline": HOTLINE}), at=clock.now()
        )
        toast = "intake.too_many_declarations_toast"
        return Outcome(toast=toast, alert=True, locale=actor.locale, done=False)
    if not await uow.conversations.finish(conversation_id):
        return Outcome(toast="intake.already_submitted", locale=actor.locale, done=False)
    declaration = await submit(uow, clock, rules, actor, draft)
    return Outcome(
        toast="intake.submitted_toast", locale=actor.locale, params={"receipt": declaration.receipt}
    )


async def over_limits(uow: UnitOfWork, clock: Clock, person: Person, draft: Draft) -> bool:
    """Whether this person, or this phone, has already declared as often as a day allows."""
    now = clock.now()
    limit, window = SUBMISSIONS[bool(draft.filed_by_cadre)]
    if await uow.declarations.count_since(now - window, declarant_id=person.id) >= limit:
        return True
    per_phone, phone_window = SUBMISSIONS_PER_PHONE
    phone = draft.phone
    if phone:
        # Two households' confirms with one phone on two workers: counted one after the other.
        await uow.declarations.lock_phone(phone)
    return bool(phone) and await uow.declarations.count_since(now - phone_window, phone=phone) >= per_phone


async def submit(
    uow: UnitOfWork, clock: Clock, rules: DeadlineRules, person: Person, draft: Draft
) -> Declaration:
    """Submit a declaration from its answers, for `person` (the declarant: the household, or the
    cadre filing for one)."""
    assert draft.village_id is not None and draft.name and draft.phone and draft.consent_version
    assert draft.consent_at is not None
    new = NewDeclaration(
        village_id=int(draft.village_id),
        declared_by=person.id,
        head_name=draft.name,
        phone=draft.phone,
        risk_types=tuple(draft.risks),
        description=draft.description or "",
        consent_version=draft.consent_version,
        consent_at=datetime.fromisoformat(draft.consent_at),
        relation=draft.relation if draft.declarant == "family" else None,
        filed_by_cadre=draft.filed_by_cadre,
        household_size=draft.household,
        id_sealed=draft.id_sealed,
        id_fingerprint=draft.id_fingerprint,
        followups=dict(draft.followups),
    )
    attachments: list[Attachment] = []
    now = clock.now()
    if draft.voice is not None:
        attachments.append(
            Attachment(0, AttachmentKind.VOICE, draft.voice.ref, person.id, now, draft.voice.duration)
        )
    attachments += [Attachment(0, AttachmentKind.PHOTO, ref, person.id, now) for ref in draft.photos]
    return await submit_declaration(
        uow, clock, rules, person, new, attachments, id_masked=draft.id_masked, summary=summary_params(draft)
    )


async def open_declaration_of(
    uow: UnitOfWork, clock: Clock, *, phone: str | None, fingerprint: str | None
) -> Declaration | None:
    """The household's open declaration of the last 30 days (same phone or ID number), if any."""
    return await uow.declarations.open_for_household(
        phone=phone, id_fingerprint=fingerprint, since=clock.now() - REPEAT_WINDOW
    )
