"""Declaring on a web page: the same answers, checks and submission as the chat, for households
without Telegram (and for cadres filing for one, 代报); scans of printed codes; the status page.

A web page sends all answers at once, so they are checked together and every problem is
reported beside its field; the declaration itself is submitted by `intake.submit`, the
same use case the chat's confirm button calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from domain import delivery, risk_types, validation
from domain.actor import WEB, Actor, acting
from domain.cases import objection
from domain.household import NEXT_STEP, due_day
from domain.intake import CONSENT_VERSION, RELATIONS, Draft, open_declaration_of, steps, submit
from domain.intake.submission import hears_by_text
from domain.messages import Outcome, Outgoing
from domain.model import HOTLINE, UPLOAD_REF, Declaration, DeclarationStatus, Person, Role, Village
from domain.ports import Clock, DeadlineRules, Protector, UnitOfWork, Unreadable
from domain.validation import Invalid

log = logging.getLogger(__name__)
MAX_FIELD = 1000  # characters; no single field of the form may be longer (the description's limit)


@dataclass(frozen=True)
class Photo:
    content_type: str
    data: bytes


@dataclass
class Answers:
    """The answers as checked: the draft (the same a chat builds), and errors field -> (key, params)."""

    draft: Draft = field(default_factory=Draft)
    errors: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Submitted:
    declaration: Declaration | None = None
    repeat: Declaration | None = None  # an open declaration of the same household (nothing stored)


# --- scans ---------------------------------------------------------------------------------


async def record_scan(
    uow: UnitOfWork, clock: Clock, village_code: str, batch: str | None, channel: str
) -> Village | None:
    """Count a scan of a village's code; the village, or None (and nothing counted) if unknown."""
    village = await uow.geography.village_by_code(village_code)
    if village is not None:
        await uow.scans.count(village_code, batch or "", channel, clock.now().date())
    return village


# --- checking the form ---------------------------------------------------------------------


def check(form: dict[str, Any], *, clock: Clock, protector: Protector, filed_by_cadre: int | None) -> Answers:
    """Check every answer of the web form with the chat's own parsing (domain.intake.steps); keep
    what was right.

    `form` maps field names to the strings sent (risks: a list of codes).
    """
    errors: dict[str, tuple[str, dict[str, Any]]] = {}
    changes: dict[str, Any] = {}
    today = clock.now().date()

    def take(name: str, parse: Callable[[str], dict[str, Any]], invalid: str | None = None) -> None:
        raw = str(form.get(name) or "")
        try:
            if len(raw) > MAX_FIELD:
                raise Invalid("web.too_long", limit=MAX_FIELD)
            changes.update(parse(raw))
        except Invalid as exc:
            errors[name] = (
                (invalid, {}) if invalid and exc.key != "web.too_long" else (exc.key, dict(exc.params))
            )

    if form.get("consent") != "yes":
        errors["consent"] = ("web.need_consent", {})
    else:
        changes.update(consent_version=CONSENT_VERSION, consent_at=clock.now().isoformat())
    take("name", steps.parse_name)
    if filed_by_cadre is None:
        declarant = form.get("declarant")
        if declarant == "self":
            changes["declarant"] = "self"
        elif declarant == "family":
            changes["declarant"] = "family"
            relation = str(form.get("relation") or "")
            if relation in RELATIONS and relation != "other":
                changes["relation"] = relation
            else:
                take("relation_text", steps.parse_relation)
        else:
            errors["declarant"] = ("web.need_declarant", {})
    else:
        changes["filed_by_cadre"] = filed_by_cadre
    take("phone", steps.parse_phone)
    # Text messages: a consent of its own, offered only while texts can be sent; to a mobile only.
    if delivery.texts_on() and form.get("sms_consent") == "yes":
        if "phone" in changes and not validation.is_mobile(changes["phone"]):
            errors["sms_consent"] = ("web.sms_needs_mobile", {})
        changes["sms_consent_at"] = clock.now().isoformat()
    changes["texts_answered"] = True
    if str(form.get("id_number") or "").strip():
        take("id_number", lambda raw: steps.sealed_id(protector, raw), invalid="web.id_number_invalid")
    changes["id_answered"] = True
    take("household", steps.parse_household)
    chosen = [code for code in form.get("risks", []) if risk_types.by_code(code)]
    chosen = list(dict.fromkeys(chosen))
    if not chosen:
        errors["risks"] = ("web.need_risk", {})
    elif len(chosen) > risk_types.MAX_CHOSEN:
        errors["risks"] = ("intake.too_many_risks", {"max": risk_types.MAX_CHOSEN})
    changes.update(risks=tuple(chosen), risks_done=True)
    followups: dict[str, Any] = {}
    for code in chosen:
        risk = risk_types.by_code(code)
        for question in risk.followups if risk else ():

            def answer(raw: str, question: str = question, key: str = f"{code}.{question}") -> dict[str, Any]:
                followups[key] = steps.followup_answer(question, raw, today)
                return {}

            take(f"fu_{code}_{question}", answer)
    changes["followups"] = followups
    take("description", steps.parse_description)
    changes["description_done"] = True
    return Answers(Draft().with_(**changes), errors)


# --- submitting ------------------------------------------------------------------------------


async def declare(
    uow: UnitOfWork,
    clock: Clock,
    rules: DeadlineRules,
    village: Village,
    draft: Draft,
    photos: list[Photo],
    *,
    cadre: Person | None = None,
) -> Submitted:
    """Submit checked answers for `village`, unless the household has an open declaration.

    The declarant is a new person without a chat (the web page shows the receipt), or for 代报
    the cadre, as when they file in chat. A household that agreed to text messages is bound to
    its phone for them first (the person that already hears at that number, when one does), so
    the receipt goes to it by text the usual way; for 代报, `submit` does the same.
    """
    phone = draft.phone
    assert phone is not None
    # Two forms with one phone on two workers: looked at one after the other, so one is the repeat.
    await uow.declarations.lock_phone(phone)
    existing = await open_declaration_of(uow, clock, phone=phone, fingerprint=draft.id_fingerprint)
    if existing is not None:
        return Submitted(repeat=existing)
    now = clock.now()
    refs = [UPLOAD_REF + str(await uow.uploads.add(p.content_type, p.data, now)) for p in photos]
    draft = draft.with_(
        village_id=village.id, village_name=village.name, photos=tuple(refs), photos_done=True
    )
    declarant = cadre
    if declarant is None and draft.sms_consent_at:
        declarant = await hears_by_text(uow, clock, phone)
    if declarant is None:
        declarant = await uow.persons.add(Role.FARMER, locale="zh_Hans")
    declaration = await submit(uow, clock, rules, declarant, draft, via=WEB)
    return Submitted(declaration=declaration)


async def cadre_for_village(
    uow: UnitOfWork, person_id: int, village_code: str
) -> tuple[Person, Village] | None:
    """The cadre and the village of a 代报 link, if they are still assigned to it."""
    person = await uow.persons.get(person_id)
    village = await uow.geography.village_by_code(village_code)
    if person is None or village is None or person.role is not Role.CADRE:
        return None
    if village.id not in person.village_ids:
        return None
    return person, village


async def villages_for_links(uow: UnitOfWork, person: Person) -> list[Village] | None:
    """The villages a cadre may file for on the web; None for anybody who is not a cadre."""
    if person.role is not Role.CADRE or not person.village_ids:
        return None
    return await uow.geography.villages(person.village_ids)


async def offer_links(
    uow: UnitOfWork,
    clock: Clock,
    actor: Actor,
    *,
    public_url: str | None,
    link: Callable[[Person, Village], str],
    minutes: int,
) -> Outcome:
    """/daibao_web: a cadre gets a short-lived link to the web form for each of their villages."""
    villages = await villages_for_links(uow, actor)
    if villages is None:
        message = Outgoing("daibao.not_cadre", {"hotline": HOTLINE})
    elif public_url is None:
        message = Outgoing("web.no_public_url", {"hotline": HOTLINE})
    else:
        lines = [
            {"$t": "web.daibao_link", "$with": {"village": v.name, "url": link(actor, v)}} for v in villages
        ]
        message = Outgoing("web.daibao_links", {"links": {"$lines": lines}, "minutes": minutes})
    await uow.outbox.add(actor.id, message, at=clock.now())
    return Outcome(locale=actor.locale, done=villages is not None)


# --- the receipt and the status page ------------------------------------------------------------


async def village_of(uow: UnitOfWork, village_code: str) -> Village | None:
    """The village of a printed code, without counting a scan (the form's own requests)."""
    return await uow.geography.village_by_code(village_code)


@dataclass(frozen=True)
class Receipt:
    """What the receipt page shows: the number and the village, nothing else."""

    receipt: str
    village: str


async def receipt_of(uow: UnitOfWork, receipt: str) -> Receipt | None:
    declaration = await uow.declarations.by_receipt(receipt)
    village = await uow.geography.village(declaration.village_id) if declaration else None
    if declaration is None or village is None:
        return None
    return Receipt(declaration.receipt, village.name)


@dataclass(frozen=True)
class Status:
    """Where a declaration stands, as the status page shows it (the chat's 我的申报 line, and the
    risk types and the masked ID number)."""

    receipt: str
    village: str
    submitted_on: date  # in the service's zone
    state: DeclarationStatus
    next_step: str  # catalog key
    due: date | None
    risks: tuple[str, ...]
    id_masked: str | None  # None: no ID number given
    id_unreadable: bool = False  # sealed under a key the service no longer has
    reason: str | None = None  # the reason of 不纳入 (the household's own case: it proved the phone)
    # The objection (异议): "open" (the form is offered, as the chat's button), "cadre" (filed by a
    # cadre for a household without a person of its own: it objects through the cadre), or None.
    objection: str | None = None


Proves = Callable[[str], bool]  # given a declaration's phone number: whether the request proved it
# The states in which the status page shows the reason of 不纳入.
REASON_SHOWN = frozenset(
    {DeclarationStatus.NOT_ELIGIBLE, DeclarationStatus.OBJECTED, DeclarationStatus.CLOSED}
)


def _receipt(raw: str) -> str | None:
    cleaned = "".join(ch for ch in raw if ch.isdigit())
    return cleaned if cleaned and len(cleaned) <= 20 else None


async def _proven(uow: UnitOfWork, receipt: str, proves: Proves) -> Declaration | None:
    """The declaration with this receipt number, only when the request proved its phone number."""
    cleaned = _receipt(receipt)
    declaration = await uow.declarations.by_receipt(cleaned) if cleaned else None
    if declaration is None or not proves(declaration.phone):
        return None
    return declaration


def same_phone(raw_phone: str) -> Proves:
    """The phone number typed, checked against the declaration's (None matches nothing)."""
    try:
        number: str | None = validation.phone(raw_phone)
    except Invalid:
        number = None
    return lambda phone: number is not None and phone == number


async def look_up(
    uow: UnitOfWork, clock: Clock, protector: Protector, receipt: str, raw_phone: str
) -> Status | None:
    """The declaration with this receipt number, only when the phone number is its own."""
    return await look_up_proven(uow, clock, protector, receipt, same_phone(raw_phone))


async def look_up_proven(
    uow: UnitOfWork, clock: Clock, protector: Protector, receipt: str, proves: Proves
) -> Status | None:
    """The declaration with this receipt number, when the request proved its phone number (typed
    on the status page, or signed into the objection form that page gave)."""
    declaration = await _proven(uow, receipt, proves)
    if declaration is None:
        return None
    return await _status(uow, clock, protector, declaration)


async def _status(
    uow: UnitOfWork, clock: Clock, protector: Protector, declaration: Declaration
) -> Status | None:
    village = await uow.geography.village(declaration.village_id)
    if village is None:
        return None
    task = await uow.tasks.for_declaration(declaration.id)
    now = clock.now()
    masked, unreadable = None, False
    if declaration.id_sealed:
        try:
            masked = validation.mask_id(protector.unseal(declaration.id_sealed))
        except Unreadable:  # sealed under a key the service no longer has: say so, not a failure
            log.warning("status page: declaration %s has an ID number no key opens", declaration.id)
            unreadable = True
    return Status(
        receipt=declaration.receipt,
        village=village.name,
        submitted_on=declaration.created_at.astimezone(now.tzinfo).date(),
        state=declaration.status,
        next_step=NEXT_STEP.get(declaration.status, "status.next_none"),
        due=due_day(task, now),
        risks=declaration.risk_types,
        id_masked=masked,
        id_unreadable=unreadable,
        reason=declaration.verdict_reason if declaration.status in REASON_SHOWN else None,
        objection=await _objection(uow, declaration),
    )


async def _household(uow: UnitOfWork, declaration: Declaration) -> Person | None:
    """The household's own person (its declarant), None for 代报 filed as the cadre's."""
    person = await uow.persons.get(declaration.declared_by)
    return person if person is not None and person.role is Role.FARMER else None


async def _objection(uow: UnitOfWork, declaration: Declaration) -> str | None:
    if declaration.status is not DeclarationStatus.NOT_ELIGIBLE:
        return None
    household = await _household(uow, declaration)
    if household is None:
        return "cadre"
    return "open" if objection.refusal(declaration, household) is None else None


# --- the objection on the status page ---------------------------------------------------------------


@dataclass(frozen=True)
class Objected:
    """What came of an objection sent from the status page."""

    done: bool = False
    status: Status | None = None  # the case as the page shows it (None: receipt and phone not proven)
    problem: tuple[str, dict[str, Any]] | None = None  # what is wrong with the reason, shown beside it
    refusal: str | None = None  # why it was not taken (a catalog key)


async def object_to(
    uow: UnitOfWork,
    clock: Clock,
    rules: DeadlineRules,
    protector: Protector,
    receipt: str,
    proves: Proves,
    raw: str,
) -> Objected:
    """The household objects to 不纳入 on the status page: the receipt number and the phone are
    checked again, then the chat's own objection (domain.cases.objection) is made by the household's
    person, acting via the web: the same checks of the reason, the same move and event (via web),
    the township told as in chat. A second objection, or one no longer open, is refused."""
    declaration = await _proven(uow, receipt, proves)
    status = await _status(uow, clock, protector, declaration) if declaration else None
    if declaration is None or status is None:
        return Objected()
    household = await _household(uow, declaration)
    if household is None:
        return Objected(status=status, refusal="web.objection_by_cadre")
    if len(raw) > MAX_FIELD:
        return Objected(status=status, problem=("validate.objection", {"limit": validation.MAX_REASON}))
    try:
        refused = await objection.object_now(uow, clock, rules, acting(household, WEB), declaration.id, raw)
    except Invalid as exc:
        return Objected(status=status, problem=("validate.objection", dict(exc.params)))
    if refused is not None:
        log.info("status page: an objection to %s refused (%s)", declaration.id, refused)
        return Objected(status=status, refusal="web.objection_refused")
    return Objected(done=True, status=status)
