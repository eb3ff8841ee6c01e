"""The household's declaration: a short conversation whose progress lives in storage.

Every step is one message: the question, its buttons, Back and Cancel. A wrong answer is
explained in the same message that asks again, and nothing already answered is lost. From the
summary any answer can be changed; the steps an answer depends on follow, then the summary again.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from domain import buttons as b
from domain import risk_types, validation
from domain.actor import Actor
from domain.dialogue import Kind, Said, Start, Tools, begin
from domain.messages import Action, Outcome, Outgoing, day, money, risk_label, risk_labels, text
from domain.model import (
    HOTLINE,
    Attachment,
    AttachmentKind,
    Conversation,
    Declaration,
    Flow,
    IntakeStep,
    NewDeclaration,
    Person,
    Role,
    Village,
)
from domain.ports import Clock, DeadlineRules, Protector, UnitOfWork
from domain.validation import Invalid

log = logging.getLogger(__name__)
S = IntakeStep
CONSENT_VERSION = "2026-11"
MAX_PHOTOS = 5
REPEAT_WINDOW = timedelta(days=30)
# Limits in chat, as tight as the web form's or tighter: a phone or ID number typed is looked up
# for a repeat at most this often per person and per number; declarations per person and phone.
REPEAT_CHECKS = (10, timedelta(hours=1))  # per person
REPEAT_CHECKS_PER_NUMBER = (5, timedelta(hours=1))
SUBMISSIONS = {False: (3, timedelta(days=1)), True: (30, timedelta(hours=1))}  # farmer / cadre (代报)
SUBMISSIONS_PER_PHONE = (3, timedelta(days=1))
RELATIONS = ("spouse", "child", "parent", "sibling", "other")
HOUSEHOLD_BUTTONS = (1, 2, 3, 4, 5, 6)
ORDER = (
    S.CONSENT, S.TOWNSHIP, S.VILLAGE, S.NAME, S.DECLARANT, S.RELATION, S.PHONE, S.ID_NUMBER,
    S.HOUSEHOLD, S.RISKS, S.FOLLOWUP, S.DESCRIPTION, S.PHOTOS, S.CONFIRM,
)  # fmt: skip
# After changing an answer from the summary, the steps that depend on it come before the summary.
DEPENDENTS = {S.TOWNSHIP: {S.VILLAGE}, S.DECLARANT: {S.RELATION}, S.RISKS: {S.FOLLOWUP}}
# The summary's "change" buttons, in display order: field -> the step that asks it.
EDITABLE = {
    "village": S.TOWNSHIP, "name": S.NAME, "declarant": S.DECLARANT, "phone": S.PHONE,
    "id_number": S.ID_NUMBER, "household": S.HOUSEHOLD, "risks": S.RISKS,
    "description": S.DESCRIPTION, "photos": S.PHOTOS,
}  # fmt: skip
STALE = "intake.stale_button"


# --- which step comes next -------------------------------------------------------------------


def _pending_followups(data: dict[str, Any]) -> list[str]:
    """Follow-up questions ("illness.cost") the chosen risk types still need answered."""
    pending = []
    for code in data.get("risks", []):
        risk = risk_types.by_code(code)
        for question in risk.followups if risk else ():
            key = f"{code}.{question}"
            if key not in data.get("followups", {}):
                pending.append(key)
    return pending


def _needed(data: dict[str, Any], step: S) -> bool:
    if step is S.CONSENT:
        return "consent_at" not in data
    if step is S.TOWNSHIP:
        return "village_id" not in data and not data.get("one_township")
    if step is S.VILLAGE:
        return "village_id" not in data
    if step is S.DECLARANT:
        return not data.get("filed_by_cadre") and "declarant" not in data
    if step is S.RELATION:
        return data.get("declarant") == "family" and "relation" not in data
    if step is S.FOLLOWUP:
        return bool(_pending_followups(data))
    if step is S.CONFIRM:
        return True
    field = {
        S.NAME: "name", S.PHONE: "phone", S.ID_NUMBER: "id_answered", S.HOUSEHOLD: "household",
        S.RISKS: "risks_done", S.DESCRIPTION: "description_done", S.PHOTOS: "photos_done",
    }[step]  # fmt: skip
    return field not in data


def _relevant(data: dict[str, Any], step: S) -> bool:
    """Whether a step that depends on a changed answer must be asked again."""
    if step is S.RELATION:
        return data.get("declarant") == "family"
    if step is S.FOLLOWUP:
        return bool(_pending_followups(data))
    return True


def _after(data: dict[str, Any], step: S) -> S:
    """The step that follows `step` for these answers."""
    if step is S.FOLLOWUP and _pending_followups(data):
        return S.FOLLOWUP
    later = ORDER[ORDER.index(step) + 1 :]
    if data.get("editing"):
        # Changing one answer from the summary: its dependent step if it applies, then the summary.
        if later[0] in DEPENDENTS.get(step, ()) and _relevant(data, later[0]):
            return later[0]
        return S.CONFIRM
    return next(candidate for candidate in later if _needed(data, candidate))


# --- the questions ---------------------------------------------------------------------------


def _nav(conv: Conversation, *, back: bool = True) -> tuple[Action, ...]:
    row = [Action(b.Back(conv.id))] if back and conv.data.get("history") else []
    return (*row, Action(b.Cancel(conv.id)))


def _rows(actions: list[Action], width: int = 2) -> tuple[tuple[Action, ...], ...]:
    return tuple(tuple(actions[i : i + width]) for i in range(0, len(actions), width))


async def prompt(uow: UnitOfWork, conv: Conversation) -> Outgoing:
    """The message asking the question of the step the conversation is at."""
    data = conv.data
    step = S(conv.step)
    c = conv.id
    if step is S.CONSENT:
        key = "intake.consent_cadre" if data.get("filed_by_cadre") else "intake.consent"
        return Outgoing(
            key,
            {"version": CONSENT_VERSION, "hotline": HOTLINE},
            actions=(
                (
                    Action(b.Consent(c, "yes"), label="action.consent_yes"),
                    Action(b.Consent(c, "no"), label="action.consent_no"),
                ),
            ),
        )
    if step is S.TOWNSHIP:
        townships = await uow.geography.townships()
        buttons = [Action(b.ChooseTownship(c, t.id), label={"$plain": t.name}) for t in townships]
        return Outgoing("intake.ask_township", actions=(*_rows(buttons, 3), _nav(conv)))
    if step is S.VILLAGE:
        villages = await _village_choices(uow, data)
        buttons = [Action(b.ChooseVillage(c, v.id), label={"$plain": v.name}) for v in villages]
        return Outgoing("intake.ask_village", actions=(*_rows(buttons, 3), _nav(conv)))
    if step is S.NAME:
        return Outgoing("intake.ask_name", {"village": data["village_name"]}, actions=(_nav(conv),))
    if step is S.DECLARANT:
        return Outgoing(
            "intake.ask_declarant",
            {"name": data["name"]},
            actions=(
                (
                    Action(b.ChooseDeclarant(c, "self"), label="declarant.self_button"),
                    Action(b.ChooseDeclarant(c, "family"), label="declarant.family_button"),
                ),
                _nav(conv),
            ),
        )
    if step is S.RELATION:
        buttons = [Action(b.ChooseRelation(c, r), label=f"relation.{r}") for r in RELATIONS]
        return Outgoing("intake.ask_relation", actions=(*_rows(buttons, 3), _nav(conv)))
    if step is S.PHONE:
        # Typed, not shared with a reply keyboard's button: the number of the Telegram account is
        # often not the household's (a child's phone, a number from abroad), and a reply keyboard
        # can be neither put up nor taken away by an edit: two more messages for every farmer.
        # A contact card shared from the attachment menu is still taken (answer_contact).
        key = "intake.ask_phone_cadre" if data.get("filed_by_cadre") else "intake.ask_phone"
        return Outgoing(key, actions=(_nav(conv),))
    if step is S.ID_NUMBER:
        return Outgoing("intake.ask_id", actions=((Action(b.SkipId(c), label="action.skip_id"),), _nav(conv)))
    if step is S.HOUSEHOLD:
        buttons = [
            Action(b.HouseholdSize(c, n), label={"$plain": f"{n}+" if n == 6 else str(n)})
            for n in HOUSEHOLD_BUTTONS
        ]
        return Outgoing("intake.ask_household", actions=(*_rows(buttons, 6), _nav(conv)))
    if step is S.RISKS:
        return _risks_prompt(conv)
    if step is S.FOLLOWUP:
        key = _pending_followups(data)[0]
        code, question = key.split(".")
        return Outgoing(f"followup.{question}", {"risk": risk_label(code)}, actions=(_nav(conv),))
    if step is S.DESCRIPTION:
        return Outgoing(
            "intake.ask_description", {"limit": validation.MAX_DESCRIPTION}, actions=(_nav(conv),)
        )
    if step is S.PHOTOS:
        count = len(data.get("photos", []))
        label = "action.photos_done" if count else "action.skip_photos"
        return Outgoing(
            "intake.ask_photos",
            {"max": MAX_PHOTOS, "count": count},
            actions=((Action(b.PhotosDone(c), label=label),), _nav(conv)),
        )
    return _summary(conv)


def _risks_prompt(conv: Conversation) -> Outgoing:
    chosen = conv.data.get("risks", [])
    buttons = [
        Action(b.ToggleRisk(conv.id, r.code), label={"$risk": r.code, "$checked": r.code in chosen})
        for r in risk_types.risk_types()
    ]
    done = (Action(b.RisksDone(conv.id), label="action.risks_done"),) if chosen else ()
    return Outgoing(
        "intake.ask_risks",
        {"max": risk_types.MAX_CHOSEN, "chosen": risk_labels(chosen) if chosen else text("intake.none_yet")},
        actions=(*_rows(buttons, 2), done, _nav(conv)),
    )


def summary_params(data: dict[str, Any]) -> dict[str, Any]:
    """Every answer, ready to show (the ID number masked)."""
    if data.get("filed_by_cadre"):
        declarant: Any = {"$t": "declarant.cadre"}
    elif data.get("declarant") == "family":
        declarant = {"$t": "declarant.family", "$with": {"relation": _relation_value(data)}}
    else:
        declarant = text("declarant.self")
    followups = data.get("followups", {})
    kinds: dict[str, Callable[[Any], Any]] = {"amount": money, "date": day}
    lines = []
    for code in data.get("risks", []):
        risk = risk_types.by_code(code)
        for question in risk.followups if risk else ():
            answer = followups.get(f"{code}.{question}")
            if answer is None:
                continue
            shown = kinds.get(risk_types.FOLLOWUPS[question], lambda v: v)(answer)
            lines.append({"$t": f"summary.{question}", "$with": {"risk": risk_label(code), "value": shown}})
    voice = data.get("voice")
    return {
        "village": data.get("village_name", ""),
        "name": data.get("name", ""),
        "declarant": declarant,
        "phone": validation.display_phone(data["phone"]) if data.get("phone") else "",
        "id_number": data.get("id_masked") or text("summary.id_none"),
        "household": data.get("household", ""),
        "risks": risk_labels(data.get("risks", [])),
        "followups": {"$lines": lines} if lines else "",
        "description": data.get("description")
        or ({"$t": "summary.voice", "$with": {"seconds": voice.get("duration") or 0}} if voice else ""),
        "photos": len(data.get("photos", [])),
    }


def _relation_value(data: dict[str, Any]) -> Any:
    relation = data.get("relation", "")
    return text(f"relation.{relation}") if relation in RELATIONS else relation


def _summary(conv: Conversation) -> Outgoing:
    c = conv.id
    edits = [
        Action(b.EditAnswer(c, field), label=f"edit.{field}")
        for field in EDITABLE
        if not (field == "declarant" and conv.data.get("filed_by_cadre"))
    ]
    return Outgoing(
        "intake.summary",
        summary_params(conv.data),
        actions=((Action(b.Confirm(c)),), *_rows(edits, 3), (Action(b.Cancel(c)),)),
    )


async def _village_choices(uow: UnitOfWork, data: dict[str, Any]) -> list[Village]:
    if data.get("cadre_villages"):
        return await uow.geography.villages(tuple(data["cadre_villages"]))
    if data.get("township_id"):
        return await uow.geography.villages_in(int(data["township_id"]))
    return await uow.geography.all_villages()


# --- moving through the steps ------------------------------------------------------------------


async def _say(uow: UnitOfWork, clock: Clock, person: Person, *messages: Outgoing) -> None:
    for message in messages:
        await uow.outbox.add(person.id, message, at=clock.now())


async def _move(
    uow: UnitOfWork,
    clock: Clock,
    person: Person,
    conv: Conversation,
    changes: dict[str, Any],
    *,
    lead: str | None = None,
    before: tuple[Outgoing, ...] = (),
    record: bool = True,
    entry: str | None = None,
) -> Conversation:
    """Store the answer, go to the step that follows, and ask its question.

    The step left is pushed on the history that Back pops (`entry` names it more precisely).
    """
    data = {**conv.data, **changes}
    current = S(conv.step)
    nxt = _after(data, current)
    if record:
        data["history"] = [*data.get("history", []), entry or current.value]
    if nxt is S.CONFIRM:
        data.pop("editing", None)
    moved = await _store(uow, clock, conv, nxt, data)
    question = await prompt(uow, moved)
    await _say(uow, clock, person, *before, question.led_by(lead) if lead else question)
    return moved


async def _store(
    uow: UnitOfWork, clock: Clock, conv: Conversation, step: S, data: dict[str, Any]
) -> Conversation:
    await uow.conversations.update(conv.id, step, data, clock.now())
    return Conversation(conv.id, conv.person_id, conv.flow, step, data, clock.now())


async def _ask_again(
    uow: UnitOfWork, clock: Clock, person: Person, conv: Conversation, key: str, **params: Any
) -> None:
    """Explain what was wrong and ask the same question, in one message."""
    question = await prompt(uow, conv)
    await _say(uow, clock, person, question.led_by(key, **params))


async def start(
    uow: UnitOfWork,
    clock: Clock,
    actor: Actor,
    *,
    village_code: str | None,
    problem: str | None = None,
) -> Outcome:
    """Begin (or resume) a declaration, for the village of a scanned QR code when there is one.

    `problem` is the catalog key explaining why a payload was refused. Without a village (the
    payload was dropped, or /start was typed) the household picks township and village.
    """
    current = await uow.conversations.get(actor.id)
    resumable = current is not None and current.flow is Flow.INTAKE
    if problem is not None:
        await _say(uow, clock, actor, Outgoing(problem, {"hotline": HOTLINE}))
        return Outcome(done=False, locale=actor.locale)
    village = await uow.geography.village_by_code(village_code) if village_code else None
    if village_code and village is None:
        await _say(uow, clock, actor, Outgoing("start.unknown_village", {"hotline": HOTLINE}))
        return Outcome(done=False, locale=actor.locale)
    if (
        resumable
        and current is not None
        and (village is None or current.data.get("village_id") == village.id)
    ):
        await _say(uow, clock, actor, (await prompt(uow, current)).led_by("intake.resumed"))
        return Outcome(locale=actor.locale)
    if village is None and actor.role is not Role.FARMER:
        from domain.people import show_help

        await show_help(uow, clock, actor)
        return Outcome(locale=actor.locale)
    data: dict[str, Any] = {}
    if village is not None:
        data.update(village_id=village.id, village_name=village.name)
    elif len(await uow.geography.townships()) == 1:
        data["one_township"] = True
    start = Start(Flow.INTAKE, {"village_code": village.code} if village is not None else {})
    conv = await begin(uow, clock, actor, start, S.CONSENT, data)
    if conv is None:  # another conversation is open: the person was asked whether to drop it
        return Outcome(locale=actor.locale)
    welcome = "intake.welcome" if village is not None else "intake.welcome_no_village"
    # One message: the welcome leads the consent question (one Bot API call, not two).
    ask = (await prompt(uow, conv)).led_by(welcome, village=village.name if village else "", hotline=HOTLINE)
    await _say(uow, clock, actor, ask)
    return Outcome(locale=actor.locale)


async def start_for_household(uow: UnitOfWork, clock: Clock, actor: Actor) -> Outcome:
    """代报: a bound cadre files a declaration for a household of one of their villages."""
    if actor.role is not Role.CADRE or not actor.village_ids:
        await _say(uow, clock, actor, Outgoing("daibao.not_cadre", {"hotline": HOTLINE}))
        return Outcome(done=False, locale=actor.locale)
    data: dict[str, Any] = {
        "filed_by_cadre": actor.id,
        "cadre_villages": list(actor.village_ids),
        "one_township": True,
    }
    if len(actor.village_ids) == 1:
        village = await uow.geography.village(actor.village_ids[0])
        assert village is not None
        data.update(village_id=village.id, village_name=village.name)
    conv = await begin(uow, clock, actor, Start(Flow.INTAKE, {"for_household": True}), S.CONSENT, data)
    if conv is not None:
        await _say(uow, clock, actor, await prompt(uow, conv))
    return Outcome(locale=actor.locale)


async def resume(uow: UnitOfWork, tools: Tools, actor: Actor, args: dict[str, Any]) -> Outcome:
    """Start a declaration again as it was asked for (after the person dropped another conversation)."""
    if args.get("for_household"):
        return await start_for_household(uow, tools.clock, actor)
    code = args.get("village_code")
    return await start(uow, tools.clock, actor, village_code=str(code) if code else None)


async def ask(uow: UnitOfWork, clock: Clock, conv: Conversation) -> Outgoing:
    """The question the declaration waits on."""
    return await prompt(uow, conv)


async def answer(uow: UnitOfWork, tools: Tools, actor: Actor, conv: Conversation, said: Said) -> None:
    """A message in the declaration: typed text, a shared contact, a voice note, a photo; anything
    else gets what the step wants said again."""
    clock = tools.clock
    if said.kind is Kind.TEXT:
        await answer_text(uow, clock, tools.protector, actor, conv, said.text)
    elif said.kind is Kind.CONTACT:
        await answer_contact(uow, clock, actor, conv, said.text, own=said.own)
    elif said.kind is Kind.VOICE and said.ref:
        await answer_voice(uow, clock, actor, conv, said.ref, said.seconds)
    elif said.kind is Kind.PHOTO and said.ref:
        await answer_photo(uow, clock, actor, conv, said.ref)
    else:
        await answer_other(uow, clock, actor, conv)


async def back(uow: UnitOfWork, tools: Tools, actor: Actor, conv: Conversation) -> None:
    """A word for Back typed ("返回"): the question before, as the Back button does."""
    await _back(uow, tools.clock, actor, conv)


# --- typed answers -------------------------------------------------------------------------------


async def answer_text(
    uow: UnitOfWork, clock: Clock, protector: Protector, person: Person, conv: Conversation, raw: str
) -> None:
    """Typed text as the answer to the current step; a wrong one is explained and asked again."""
    step = S(conv.step)
    data = conv.data
    try:
        if step is S.TOWNSHIP:
            typed = "".join(raw.split())
            township = next(
                (t for t in await uow.geography.townships() if t.name in (typed, typed + "镇", typed + "乡")),
                None,
            )
            if township is not None:
                await _choose_township(uow, clock, person, conv, township.id)
                return
        if step in (S.TOWNSHIP, S.VILLAGE):
            choices = (
                await uow.geography.all_villages()
                if step is S.TOWNSHIP
                else await _village_choices(uow, data)
            )
            village = _match_village(choices, raw)
            if village is None:
                await _ask_again(uow, clock, person, conv, "intake.village_not_found", text=raw[:30])
                return
            await _choose_village(uow, clock, person, conv, village)
        elif step is S.NAME:
            await _move(uow, clock, person, conv, {"name": validation.person_name(raw)})
        elif step is S.RELATION:
            await _move(uow, clock, person, conv, {"relation": validation.short_text(raw)})
        elif step is S.PHONE:
            await _take_phone(uow, clock, person, conv, validation.phone(raw))
        elif step is S.ID_NUMBER:
            await _take_id(uow, clock, protector, person, conv, validation.id_number(raw))
        elif step is S.HOUSEHOLD:
            await _move(uow, clock, person, conv, {"household": validation.household_size(raw)})
        elif step is S.RISKS:
            risk = risk_types.match_label(raw)
            if risk is None:
                await _ask_again(uow, clock, person, conv, "intake.use_buttons")
                return
            await _toggle_risk(uow, clock, person, conv, risk.code, reply=True)
        elif step is S.FOLLOWUP:
            await _take_followup(uow, clock, person, conv, raw)
        elif step is S.DESCRIPTION:
            value = validation.description(raw)
            await _move(
                uow, clock, person, conv, {"description": value, "voice": None, "description_done": True}
            )
        else:  # consent, declarant, photos, confirm: buttons (or photos) only
            key = "intake.photos_only" if step is S.PHOTOS else "intake.use_buttons"
            await _ask_again(uow, clock, person, conv, key)
    except Invalid as exc:
        await _ask_again(uow, clock, person, conv, exc.key, **exc.params)


def _match_village(villages: list[Village], raw: str) -> Village | None:
    """The village a person typed, tolerating spaces, a missing 村 and small typing slips."""
    wanted = "".join(raw.split()).removesuffix("村")
    if not wanted:
        return None
    names = {v.name.removesuffix("村"): v for v in villages}
    if wanted in names:
        return names[wanted]
    codes = {v.code.lower(): v for v in villages}
    if wanted.lower() in codes:
        return codes[wanted.lower()]
    close = difflib.get_close_matches(wanted, list(names), n=2, cutoff=0.6)
    return names[close[0]] if len(close) == 1 else None


async def _choose_township(
    uow: UnitOfWork, clock: Clock, person: Person, conv: Conversation, township_id: int
) -> None:
    # A village chosen before (then Back) belongs to the old choice: ask the village again.
    data = {k: v for k, v in conv.data.items() if k not in ("village_id", "village_name")}
    await _move(uow, clock, person, replace(conv, data=data), {"township_id": township_id})


async def _choose_village(
    uow: UnitOfWork, clock: Clock, person: Person, conv: Conversation, village: Village
) -> None:
    # Chosen at the township step by typing its name, the village step is answered too.
    at_village = conv
    if S(conv.step) is S.TOWNSHIP:
        history = [*conv.data.get("history", []), S.TOWNSHIP.value]
        at_village = replace(conv, step=S.VILLAGE.value, data={**conv.data, "history": history})
    changes = {"village_id": village.id, "village_name": village.name, "township_id": village.township_id}
    await _move(uow, clock, person, at_village, changes)


async def _take_phone(uow: UnitOfWork, clock: Clock, person: Person, conv: Conversation, phone: str) -> None:
    if await _offer_existing(uow, clock, person, conv, phone=phone, fingerprint=None):
        return
    await _move(uow, clock, person, conv, {"phone": phone})


async def _take_id(
    uow: UnitOfWork, clock: Clock, protector: Protector, person: Person, conv: Conversation, value: str
) -> None:
    fingerprint = protector.fingerprint(value)
    if await _offer_existing(uow, clock, person, conv, phone=None, fingerprint=fingerprint):
        return
    await _move(
        uow,
        clock,
        person,
        conv,
        {
            "id_answered": True,
            "id_sealed": protector.seal(value),
            "id_fingerprint": fingerprint,
            "id_masked": validation.mask_id(value),
        },
    )


async def _offer_existing(
    uow: UnitOfWork,
    clock: Clock,
    person: Person,
    conv: Conversation,
    *,
    phone: str | None,
    fingerprint: str | None,
) -> bool:
    """A household with an open declaration of the last 30 days adds to it instead of a second one.

    The declaration offered is stored on the conversation: the 补充 button names it, but only the
    one offered here can be added to. Past the limits the number is taken without a look-up, so a
    stranger cannot test numbers one after another and an honest household loses nothing.
    """
    number = phone or str(fingerprint or "")
    now = clock.now()
    allowed = await uow.limits.hit(
        f"repeat:person:{person.id}", limit=REPEAT_CHECKS[0], window=REPEAT_CHECKS[1], now=now
    ) and await uow.limits.hit(
        f"repeat:number:{_digest(number)}",
        limit=REPEAT_CHECKS_PER_NUMBER[0],
        window=REPEAT_CHECKS_PER_NUMBER[1],
        now=now,
    )
    if not allowed:
        log.info("repeat check skipped for person %s: over the limit", person.id)
        return False
    existing = await open_declaration_of(uow, clock, phone=phone, fingerprint=fingerprint)
    if existing is None:
        return False
    await uow.conversations.update(conv.id, conv.step, {**conv.data, "offered": existing.id}, now)
    actions = ((Action(b.AddToExisting(conv.id, existing.id)),), (Action(b.Cancel(conv.id)),))
    # Only its own declarant is shown the receipt: a phone number alone must not reveal one.
    if existing.declared_by == person.id or person.id == existing.filed_by_cadre:
        message = Outgoing(
            "intake.repeat_own",
            {
                "receipt": existing.receipt,
                "date": day(existing.created_at.astimezone(clock.now().tzinfo).date().isoformat()),
            },
            actions=actions,
        )
    else:
        message = Outgoing("intake.repeat_other", {"hotline": HOTLINE}, actions=actions)
    await _say(uow, clock, person, message)
    return True


async def _take_followup(uow: UnitOfWork, clock: Clock, person: Person, conv: Conversation, raw: str) -> None:
    key = _pending_followups(conv.data)[0]
    kind = risk_types.FOLLOWUPS[key.split(".")[1]]
    value: Any
    if kind == "amount":
        value = validation.amount(raw)
    elif kind == "date":
        value = validation.past_date(raw, clock.now().date()).isoformat()
    else:
        value = validation.free_text(raw, limit=200, key="validate.followup_text")
    followups = {**conv.data.get("followups", {}), key: value}
    await _move(uow, clock, person, conv, {"followups": followups}, entry=f"followup:{key}")


# --- other kinds of message ------------------------------------------------------------------------


async def answer_contact(
    uow: UnitOfWork, clock: Clock, person: Person, conv: Conversation, raw_phone: str, *, own: bool = True
) -> None:
    """A shared contact as the phone answer; someone else's contact card is not taken for it."""
    if S(conv.step) is not S.PHONE:
        await _ask_again(uow, clock, person, conv, "intake.unexpected_contact")
        return
    if not own:
        await _ask_again(uow, clock, person, conv, "intake.foreign_contact")
        return
    try:
        await _take_phone(uow, clock, person, conv, validation.phone(raw_phone))
    except Invalid as exc:
        await _ask_again(uow, clock, person, conv, exc.key)


async def answer_voice(
    uow: UnitOfWork, clock: Clock, person: Person, conv: Conversation, file_ref: str, duration: int
) -> None:
    """A voice note: the description, for those who speak more easily than they type."""
    if S(conv.step) is not S.DESCRIPTION:
        await answer_other(uow, clock, person, conv, "voice")
        return
    await _move(
        uow,
        clock,
        person,
        conv,
        {"voice": {"ref": file_ref, "duration": duration}, "description": None, "description_done": True},
        lead="intake.voice_ok",
    )


async def answer_photo(
    uow: UnitOfWork, clock: Clock, person: Person, conv: Conversation, file_ref: str
) -> None:
    """A photo: kept at the photo step (up to five), explained elsewhere."""
    if S(conv.step) is not S.PHOTOS:
        await answer_other(uow, clock, person, conv, "photo")
        return
    photos = [*conv.data.get("photos", []), file_ref]
    if len(photos) >= MAX_PHOTOS:
        await _move(
            uow,
            clock,
            person,
            conv,
            {"photos": photos[:MAX_PHOTOS], "photos_done": True},
            lead="intake.photos_full",
        )
        return
    moved = await _store(uow, clock, conv, S.PHOTOS, {**conv.data, "photos": photos})
    await _say(uow, clock, person, (await prompt(uow, moved)).led_by("intake.photo_added", count=len(photos)))


async def answer_other(
    uow: UnitOfWork, clock: Clock, person: Person, conv: Conversation, kind: str = "other"
) -> None:
    """A sticker, photo, voice note or file where something else was asked: say what is wanted."""
    step = S(conv.step)
    if step in (S.CONSENT, S.DECLARANT, S.CONFIRM):
        key = "intake.use_buttons"
    elif step is S.PHOTOS:
        key = "intake.photos_only"
    elif step is S.DESCRIPTION:
        key = "intake.text_or_voice"
    else:
        key = "intake.need_text"
    await _ask_again(uow, clock, person, conv, key)


# --- buttons -------------------------------------------------------------------------------------


async def _conversation_for_button(
    uow: UnitOfWork, clock: Clock, actor: Actor, conversation_id: int, step: S | None
) -> tuple[Person, Conversation | None]:
    conv = await uow.conversations.get(actor.id)
    if conv is None or conv.id != conversation_id or conv.flow is not Flow.INTAKE:
        return actor, None
    if step is not None and S(conv.step) is not step:
        return actor, None
    return actor, conv


INTAKE_BUTTONS: dict[type[b.Button], S | None] = {
    b.Consent: S.CONSENT, b.ChooseTownship: S.TOWNSHIP, b.ChooseVillage: S.VILLAGE,
    b.ChooseDeclarant: S.DECLARANT, b.ChooseRelation: S.RELATION, b.SkipId: S.ID_NUMBER,
    b.HouseholdSize: S.HOUSEHOLD, b.ToggleRisk: S.RISKS, b.RisksDone: S.RISKS, b.PhotosDone: S.PHOTOS,
    b.Confirm: S.CONFIRM, b.EditAnswer: S.CONFIRM, b.AddToExisting: None, b.Back: None,
}  # the step each button answers (None: any step)  # fmt: skip
IntakeButton = (
    b.Consent | b.ChooseTownship | b.ChooseVillage | b.ChooseDeclarant | b.ChooseRelation | b.SkipId
    | b.HouseholdSize | b.ToggleRisk | b.RisksDone | b.PhotosDone | b.Confirm | b.EditAnswer
    | b.AddToExisting | b.Back
)  # fmt: skip


async def press(
    uow: UnitOfWork,
    clock: Clock,
    protector: Protector,
    rules: DeadlineRules,
    actor: Actor,
    button: IntakeButton,
) -> Outcome:
    """An intake button; a button from an older message, another step or someone else's
    conversation is refused politely."""
    step = INTAKE_BUTTONS[type(button)]
    person, conv = await _conversation_for_button(uow, clock, actor, button.conv, step)
    if conv is None:
        key = "intake.already_submitted" if isinstance(button, b.Confirm) else STALE
        return Outcome(toast=key, locale=person.locale, done=False)
    invalid = Outcome(toast="button.invalid", locale=person.locale, done=False)
    try:
        match button:
            case b.Consent(answer=answer):
                return await _consent(uow, clock, person, conv, answer == "yes")
            case b.ChooseTownship(township=township_id):
                if township_id not in {t.id for t in await uow.geography.townships()}:
                    return invalid
                await _choose_township(uow, clock, person, conv, township_id)
            case b.ChooseVillage(village=village_id):
                choices = await _village_choices(uow, conv.data)
                village = next((v for v in choices if v.id == village_id), None)
                if village is None:
                    return invalid
                await _choose_village(uow, clock, person, conv, village)
            case b.ChooseDeclarant(who=who):
                without_relation = {k: v for k, v in conv.data.items() if k != "relation"}
                await _move(uow, clock, person, replace(conv, data=without_relation), {"declarant": who})
            case b.ChooseRelation(relation=relation) if relation in RELATIONS:
                await _move(uow, clock, person, conv, {"relation": relation})
            case b.SkipId():
                await _move(
                    uow,
                    clock,
                    person,
                    conv,
                    {"id_answered": True, "id_sealed": None, "id_fingerprint": None, "id_masked": None},
                )
            case b.HouseholdSize(size=size):
                await _move(uow, clock, person, conv, {"household": size})
            case b.ToggleRisk(code=code) if risk_types.by_code(code):
                return await _toggle_risk(uow, clock, person, conv, code, reply=False)
            case b.RisksDone() if conv.data.get("risks"):
                await _move(uow, clock, person, conv, {"risks_done": True})
            case b.PhotosDone():
                await _move(uow, clock, person, conv, {"photos_done": True})
            case b.EditAnswer(field=field) if field in EDITABLE:
                return await _edit(uow, clock, person, conv, field)
            case b.Back():
                return await _back(uow, clock, person, conv)
            case b.AddToExisting(declaration=declaration_id):
                return await _add_to_existing(uow, clock, person, conv, declaration_id)
            case b.Confirm():
                return await confirm(uow, clock, rules, person, conv)
            case _:
                return invalid
    except Invalid:
        return invalid
    return Outcome(locale=person.locale)


async def _consent(
    uow: UnitOfWork, clock: Clock, person: Person, conv: Conversation, agreed: bool
) -> Outcome:
    if not agreed:
        await uow.conversations.finish(conv.id)
        await _say(uow, clock, person, Outgoing("intake.consent_declined", {"hotline": HOTLINE}))
        return Outcome(locale=person.locale)
    await _move(
        uow,
        clock,
        person,
        conv,
        {"consent_version": CONSENT_VERSION, "consent_at": clock.now().isoformat()},
        record=False,  # Back never returns to the consent: it is given, or the declaration ends
    )
    return Outcome(toast="intake.consent_thanks", locale=person.locale)


async def _toggle_risk(
    uow: UnitOfWork, clock: Clock, person: Person, conv: Conversation, code: str, *, reply: bool
) -> Outcome:
    chosen = list(conv.data.get("risks", []))
    if code in chosen:
        chosen.remove(code)
    elif len(chosen) >= risk_types.MAX_CHOSEN:
        if reply:
            await _ask_again(uow, clock, person, conv, "intake.too_many_risks", max=risk_types.MAX_CHOSEN)
        return Outcome(
            toast="intake.too_many_risks",
            params={"max": risk_types.MAX_CHOSEN},
            alert=True,
            locale=person.locale,
            done=False,
        )
    else:
        chosen.append(code)
    # Answers to follow-ups of types no longer chosen are dropped with them.
    followups = {k: v for k, v in conv.data.get("followups", {}).items() if k.split(".")[0] in chosen}
    moved = await _store(uow, clock, conv, S.RISKS, {**conv.data, "risks": chosen, "followups": followups})
    if reply:
        await _say(uow, clock, person, _risks_prompt(moved))
        return Outcome(locale=person.locale)
    # A press redraws the same message with the tick moved, rather than sending a new one.
    return Outcome(
        edit=_risks_prompt(moved),
        locale=person.locale,
        done=False,
        toast="intake.noted",
        params={"value": risk_label(code)},
    )


async def _edit(uow: UnitOfWork, clock: Clock, person: Person, conv: Conversation, field: str) -> Outcome:
    """Ask one answer again from the summary; what was there stays until it is replaced."""
    step = EDITABLE[field]
    if step is S.TOWNSHIP and (conv.data.get("one_township") or conv.data.get("cadre_villages")):
        step = S.VILLAGE
    data = {**conv.data, "editing": True, "history": [*conv.data.get("history", []), S.CONFIRM.value]}
    moved = await _store(uow, clock, conv, step, data)
    await _say(uow, clock, person, await prompt(uow, moved))
    return Outcome(locale=person.locale)


async def _back(uow: UnitOfWork, clock: Clock, person: Person, conv: Conversation) -> Outcome:
    history = list(conv.data.get("history", []))
    if not history:
        await _ask_again(uow, clock, person, conv, "intake.first_step")
        return Outcome(locale=person.locale, done=False)
    previous = history.pop()
    # A follow-up of a risk type unticked since (from the summary) is no longer asked: skip it.
    while previous.startswith("followup:") and previous.split(":", 1)[1] not in _pending_followups(
        {**conv.data, "followups": {}}
    ):
        if not history:
            await _ask_again(uow, clock, person, conv, "intake.first_step")
            return Outcome(locale=person.locale, done=False)
        previous = history.pop()
    data = {**conv.data, "history": history}
    if previous.startswith("followup:"):
        key = previous.split(":", 1)[1]
        data["followups"] = {k: v for k, v in data.get("followups", {}).items() if k != key}
        step = S.FOLLOWUP
    else:
        step = S(previous)
        if step is S.CONFIRM:
            data.pop("editing", None)
    moved = await _store(uow, clock, conv, step, data)
    await _say(uow, clock, person, await prompt(uow, moved))
    return Outcome(locale=person.locale)


async def _add_to_existing(
    uow: UnitOfWork, clock: Clock, person: Person, conv: Conversation, declaration_id: int
) -> Outcome:
    from domain.household import begin_adding

    if conv.data.get("offered") != declaration_id:  # a hand-made button naming another case
        return Outcome(toast=STALE, locale=person.locale, done=False)
    existing = await uow.declarations.get(declaration_id)
    if existing is None or not existing.status.open:
        return Outcome(toast=STALE, locale=person.locale, done=False)
    await uow.conversations.finish(conv.id)
    await begin_adding(uow, clock, person, existing, check_owner=False)
    return Outcome(locale=person.locale)


async def confirm(
    uow: UnitOfWork, clock: Clock, rules: DeadlineRules, person: Person, conv: Conversation
) -> Outcome:
    """Submit the declaration shown in the summary; a second press does nothing.

    Past the limits on declarations in chat the draft is kept and the household told to try
    later or call 12317.
    """
    if await _over_submission_limits(uow, clock, person, conv.data):
        await _say(uow, clock, person, Outgoing("intake.too_many_declarations", {"hotline": HOTLINE}))
        toast = "intake.too_many_declarations_toast"
        return Outcome(toast=toast, alert=True, locale=person.locale, done=False)
    if not await uow.conversations.finish(conv.id):
        return Outcome(toast="intake.already_submitted", locale=person.locale, done=False)
    declaration = await submit_answers(uow, clock, rules, person, conv.data)
    return Outcome(
        toast="intake.submitted_toast", locale=person.locale, params={"receipt": declaration.receipt}
    )


async def _over_submission_limits(
    uow: UnitOfWork, clock: Clock, person: Person, data: dict[str, Any]
) -> bool:
    """Whether this person, or this phone, has already declared as often as a day allows."""
    now = clock.now()
    limit, window = SUBMISSIONS[bool(data.get("filed_by_cadre"))]
    if await uow.declarations.count_since(now - window, declarant_id=person.id) >= limit:
        return True
    per_phone, phone_window = SUBMISSIONS_PER_PHONE
    phone = data.get("phone")
    if phone:
        # Two households' confirms with one phone on two workers: counted one after the other.
        await uow.declarations.lock_phone(phone)
    return bool(phone) and await uow.declarations.count_since(now - phone_window, phone=phone) >= per_phone


def _digest(number: str) -> str:
    """A counter's key for a phone or ID number, never the number itself."""
    return hashlib.sha256(number.encode()).hexdigest()[:24]


async def submit_answers(
    uow: UnitOfWork, clock: Clock, rules: DeadlineRules, person: Person, data: dict[str, Any]
) -> Declaration:
    """Submit a declaration from its answers (as the chat's summary holds them), for `person`.

    The chat's confirm button and the web form both end here, so a declaration takes the same
    route to the village cadre whichever way it came.
    """
    from domain.cases import submit_declaration

    new = NewDeclaration(
        village_id=int(data["village_id"]),
        declared_by=person.id,
        head_name=data["name"],
        phone=data["phone"],
        risk_types=tuple(data["risks"]),
        description=data.get("description") or "",
        consent_version=data["consent_version"],
        consent_at=datetime.fromisoformat(data["consent_at"]),
        relation=data.get("relation") if data.get("declarant") == "family" else None,
        filed_by_cadre=data.get("filed_by_cadre"),
        household_size=data.get("household"),
        id_sealed=data.get("id_sealed"),
        id_fingerprint=data.get("id_fingerprint"),
        followups=dict(data.get("followups", {})),
    )
    attachments: list[Attachment] = []
    now = clock.now()
    if data.get("voice"):
        voice = data["voice"]
        attachments.append(
            Attachment(0, AttachmentKind.VOICE, voice["ref"], person.id, now, voice.get("duration"))
        )
    attachments += [
        Attachment(0, AttachmentKind.PHOTO, ref, person.id, now) for ref in data.get("photos", [])
    ]
    return await submit_declaration(
        uow,
        clock,
        rules,
        person,
        new,
        attachments,
        id_masked=data.get("id_masked"),
        summary=summary_params(data),
    )


async def open_declaration_of(
    uow: UnitOfWork, clock: Clock, *, phone: str | None, fingerprint: str | None
) -> Declaration | None:
    """The household's open declaration of the last 30 days (same phone or ID number), if any."""
    return await uow.declarations.open_for_household(
        phone=phone, id_fingerprint=fingerprint, since=clock.now() - REPEAT_WINDOW
    )
