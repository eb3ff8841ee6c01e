"""Submitting a declaration: the limits on how often, then the case, routed to the village cadre.

The chat's 确认提交 and the web form both end in `submit`, so a declaration takes the same route
to the village cadre whichever way it came.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from domain import delivery, validation
from domain.actor import CHAT, Actor
from domain.cases import submit_declaration
from domain.intake.draft import Draft, summary_params
from domain.messages import Outcome, Outgoing
from domain.model import HOTLINE, Attachment, AttachmentKind, Declaration, NewDeclaration, Person, Role
from domain.ports import Clock, DeadlineRules, UnitOfWork

log = logging.getLogger(__name__)
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
    declaration = await submit(uow, clock, rules, actor, draft, via=actor.via)
    return Outcome(
        toast="intake.submitted_toast", locale=actor.locale, params={"receipt": declaration.receipt}
    )


async def over_limits(uow: UnitOfWork, clock: Clock, person: Person, draft: Draft) -> bool:
    """Whether this person, or this phone, has already declared as often as a day allows."""
    now = clock.now()
    limit, window = SUBMISSIONS[bool(draft.filed_by_cadre)]
    if draft.filed_by_cadre:
        # A cadre's 代报 count whoever became the declarant (the household itself, when it agreed
        # to hear by text message).
        made = await uow.declarations.count_since(now - window, filer_id=person.id)
    else:
        made = await uow.declarations.count_since(now - window, declarant_id=person.id)
    if made >= limit:
        return True
    per_phone, phone_window = SUBMISSIONS_PER_PHONE
    phone = draft.phone
    if phone:
        # Two households' confirms with one phone on two workers: counted one after the other.
        await uow.declarations.lock_phone(phone)
    return bool(phone) and await uow.declarations.count_since(now - phone_window, phone=phone) >= per_phone


async def submit(
    uow: UnitOfWork, clock: Clock, rules: DeadlineRules, person: Person, draft: Draft, *, via: str = CHAT
) -> Declaration:
    """Submit a declaration from its answers, by `person` (the household, or the cadre filing for
    one), made through the front end `via` (the chat, or the web form).

    代报 for a household that agreed to text messages: the household gets a person of its own, bound
    to its phone for texts, and that person is the declarant (the household's party of the case:
    it is told each step and may object on the status page); the cadre stays `filed_by_cadre`,
    records the submission and gets the receipt, as before.
    """
    assert draft.village_id is not None and draft.name and draft.phone and draft.consent_version
    assert draft.consent_at is not None
    household = person
    if draft.filed_by_cadre and draft.sms_consent_at:
        household = await hears_by_text(uow, clock, draft.phone) or person
    new = NewDeclaration(
        village_id=int(draft.village_id),
        declared_by=household.id,
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
        sms_consent_at=datetime.fromisoformat(draft.sms_consent_at) if draft.sms_consent_at else None,
        via=via,
    )
    attachments: list[Attachment] = []
    now = clock.now()
    if draft.voice is not None:
        attachments.append(
            Attachment(0, AttachmentKind.VOICE, draft.voice.ref, person.id, now, draft.voice.duration)
        )
    attachments += [Attachment(0, AttachmentKind.PHOTO, ref, person.id, now) for ref in draft.photos]
    return await submit_declaration(
        uow, clock, rules, household, new, attachments,
        id_masked=draft.id_masked, summary=summary_params(draft), filer=person,
    )  # fmt: skip


async def hears_by_text(uow: UnitOfWork, clock: Clock, phone: str) -> Person | None:
    """The household's person that hears of its declaration by text message at `phone` (it agreed):
    the household person already holding that address (a second declaration keeps hearing), else a
    new one; bound to the phone. None when texts are off, for a landline, or when the number is a
    cadre's or staff's text address (it is left to them)."""
    if not delivery.texts_on() or not validation.is_mobile(phone):
        return None
    holder = await delivery.text_holder(uow, phone)
    if holder is not None and holder.role is not Role.FARMER:
        log.info("a declaration's phone is the text address of a %s: no texts for it", holder.role.value)
        return None
    person = holder or await uow.persons.add(Role.FARMER, locale="zh_Hans")
    await delivery.reach_by_text(uow, clock, person.id, phone)
    return person


async def open_declaration_of(
    uow: UnitOfWork, clock: Clock, *, phone: str | None, fingerprint: str | None
) -> Declaration | None:
    """The household's open declaration of the last 30 days (same phone or ID number), if any."""
    return await uow.declarations.open_for_household(
        phone=phone, id_fingerprint=fingerprint, since=clock.now() - REPEAT_WINDOW
    )
