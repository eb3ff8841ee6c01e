"""The questions of a declaration, as data: one `Step` a question, in the order they are asked.

A step says what it asks, when it is needed, how a typed answer is parsed (`parse`, the same for
the chat and the web form) and taken (`read`), which other kinds of message it takes, which
buttons answer it, what to say for anything else, and which steps depend on its answer. Adding a
question is adding a step here; domain/intake/conversation.py moves through them.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol

from domain import buttons as b
from domain import delivery, risk_types, validation
from domain.actor import Actor
from domain.dialogue import Kind, Said
from domain.intake import submission
from domain.intake.draft import (
    CONSENT_VERSION,
    MAX_PHOTOS,
    RELATIONS,
    Draft,
    Voice,
    pending_followups,
    summary_params,
)
from domain.messages import Action, Outcome, Outgoing, day, risk_label, risk_labels, text
from domain.model import HOTLINE, Conversation, IntakeStep, Village
from domain.ports import Clock, DeadlineRules, Protector, UnitOfWork
from domain.validation import Invalid

log = logging.getLogger(__name__)
S = IntakeStep
HOUSEHOLD_BUTTONS = (1, 2, 3, 4, 5, 6)
# Limits in chat, as tight as the web form's or tighter: a phone or ID number typed is looked up
# for a repeat at most this often per person and per number.
REPEAT_CHECKS = (10, timedelta(hours=1))  # per person
REPEAT_CHECKS_PER_NUMBER = (5, timedelta(hours=1))
Changes = dict[str, Any]


class Turn(Protocol):
    """A step being answered: what a step may read and do (domain/intake/conversation.py)."""

    uow: UnitOfWork
    clock: Clock
    protector: Protector
    rules: DeadlineRules
    actor: Actor
    conv: Conversation
    draft: Draft

    async def go(
        self,
        changes: Mapping[str, Any],
        *,
        lead: str | None = None,
        record: bool = True,
        entry: str | None = None,
        via: S | None = None,
    ) -> None:
        """Keep the answer, go to the step that follows and ask it (`lead` said first). The step
        left goes on the Back history (as `entry`), unless `record` is False; `via` names the
        step answered when it is not the one asked (a village typed at the township question)."""
        ...

    async def again(self, key: str, **params: Any) -> None:
        """Say what was wrong and ask the same question, in one message."""
        ...

    async def stay(self, draft: Draft, step: S | None = None) -> Conversation:
        """Store `draft` at `step` (the current one by default); nothing is said."""
        ...

    async def say(self, *messages: Outgoing) -> None: ...


@dataclass(frozen=True)
class Asking:
    """What a question is built from: the draft, and the conversation its buttons name."""

    uow: UnitOfWork
    conv: int
    draft: Draft

    def nav(self) -> tuple[Action, ...]:
        return nav(self.conv, self.draft)


def nav(conv: int, draft: Draft) -> tuple[Action, ...]:
    """Back (once there is somewhere to go back to) and Cancel."""
    row = [Action(b.Back(conv))] if draft.history else []
    return (*row, Action(b.Cancel(conv)))


Ask = Callable[[Asking], Awaitable[Outgoing]]
Read = Callable[[Turn, str], Awaitable[None]]
Take = Callable[[Turn, Said], Awaitable[None]]
Press = Callable[[Turn, Any], Awaitable[Outcome | None]]


@dataclass(frozen=True)
class Step:
    """One question of the declaration."""

    name: S
    ask: Ask  # the question, with its buttons
    needed: Callable[[Draft], bool]  # still to be asked for these answers
    read: Read | None = None  # a typed answer; None: this question is answered with buttons
    takes: Mapping[Kind, Take] = field(default_factory=dict)  # other kinds of message it takes
    buttons: Mapping[type[b.Button], Press] = field(default_factory=dict)  # the buttons that answer it
    refuse: str = "intake.need_text"  # said, with the question again, for what it does not take
    dependents: frozenset[S] = frozenset()  # asked next when this answer is changed from the summary
    field: str | None = None  # the summary's "change" button that asks it again


def _rows(actions: list[Action], width: int = 2) -> tuple[tuple[Action, ...], ...]:
    return tuple(tuple(actions[i : i + width]) for i in range(0, len(actions), width))


def _digest(number: str) -> str:
    """A counter's key for a phone or ID number, never the number itself."""
    return hashlib.sha256(number.encode()).hexdigest()[:24]


# --- parsing: the same for the chat and the web form ------------------------------------------


def sealed_id(protector: Protector, raw: str) -> Changes:
    """An ID number checked, sealed, fingerprinted and masked (never kept readable)."""
    value = validation.id_number(raw)
    return {
        "id_answered": True,
        "id_sealed": protector.seal(value),
        "id_fingerprint": protector.fingerprint(value),
        "id_masked": validation.mask_id(value),
    }


def followup_answer(question: str, raw: str, today: date) -> Any:
    """The answer to a follow-up question ("cost", "when"...), as its kind reads it."""
    kind = risk_types.FOLLOWUPS[question]
    if kind == "amount":
        return validation.amount(raw)
    if kind == "date":
        return validation.past_date(raw, today).isoformat()
    return validation.free_text(raw, limit=200, key="validate.followup_text")


def parse_name(raw: str) -> Changes:
    return {"name": validation.person_name(raw)}


def parse_relation(raw: str) -> Changes:
    """A relation typed in words (the buttons give the usual ones)."""
    return {"relation": validation.short_text(raw)}


def parse_phone(raw: str) -> Changes:
    return {"phone": validation.phone(raw)}


def parse_household(raw: str) -> Changes:
    return {"household": validation.household_size(raw)}


def parse_description(raw: str) -> Changes:
    return {"description": validation.description(raw), "voice": None, "description_done": True}


def _parsed(parse: Callable[[str], Changes]) -> Read:
    """A typed answer parsed, kept, and the next question asked."""

    async def read(turn: Turn, raw: str) -> None:
        await turn.go(parse(raw))

    return read


# --- where: township and village ----------------------------------------------------------------


async def village_choices(uow: UnitOfWork, draft: Draft) -> list[Village]:
    """The villages the village question offers: a cadre's, the chosen township's, or all."""
    if draft.cadre_villages:
        return await uow.geography.villages(draft.cadre_villages)
    if draft.township_id:
        return await uow.geography.villages_in(int(draft.township_id))
    return await uow.geography.all_villages()


def match_village(villages: list[Village], raw: str) -> Village | None:
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


async def _choose_township(turn: Turn, township_id: int) -> None:
    # A village chosen before (then Back) belongs to the old choice: ask the village again.
    await turn.go({"township_id": township_id, "village_id": None, "village_name": None})


async def _choose_village(turn: Turn, village: Village) -> None:
    changes = {"village_id": village.id, "village_name": village.name, "township_id": village.township_id}
    # Typed at the township question, the village question is answered too.
    await turn.go(changes, via=S.VILLAGE if S(turn.conv.step) is S.TOWNSHIP else None)


async def _ask_township(a: Asking) -> Outgoing:
    townships = await a.uow.geography.townships()
    buttons = [Action(b.ChooseTownship(a.conv, t.id), label={"$plain": t.name}) for t in townships]
    return Outgoing("intake.ask_township", actions=(*_rows(buttons, 3), a.nav()))


async def _read_township(turn: Turn, raw: str) -> None:
    """A township typed; or a village (of any township), which answers both questions."""
    typed = "".join(raw.split())
    townships = await turn.uow.geography.townships()
    township = next((t for t in townships if t.name in (typed, typed + "镇", typed + "乡")), None)
    if township is not None:
        await _choose_township(turn, township.id)
        return
    village = match_village(await turn.uow.geography.all_villages(), raw)
    if village is None:
        await turn.again("intake.village_not_found", text=raw[:30])
        return
    await _choose_village(turn, village)


async def _press_township(turn: Turn, button: b.ChooseTownship) -> Outcome | None:
    if button.township not in {t.id for t in await turn.uow.geography.townships()}:
        return _invalid(turn)
    await _choose_township(turn, button.township)
    return None


async def _ask_village(a: Asking) -> Outgoing:
    villages = await village_choices(a.uow, a.draft)
    buttons = [Action(b.ChooseVillage(a.conv, v.id), label={"$plain": v.name}) for v in villages]
    return Outgoing("intake.ask_village", actions=(*_rows(buttons, 3), a.nav()))


async def _read_village(turn: Turn, raw: str) -> None:
    village = match_village(await village_choices(turn.uow, turn.draft), raw)
    if village is None:
        await turn.again("intake.village_not_found", text=raw[:30])
        return
    await _choose_village(turn, village)


async def _press_village(turn: Turn, button: b.ChooseVillage) -> Outcome | None:
    choices = await village_choices(turn.uow, turn.draft)
    village = next((v for v in choices if v.id == button.village), None)
    if village is None:
        return _invalid(turn)
    await _choose_village(turn, village)
    return None


def _invalid(turn: Turn) -> Outcome:
    return Outcome(toast="button.invalid", locale=turn.actor.locale, done=False)


# --- consent, who declares --------------------------------------------------------------------------


async def _ask_consent(a: Asking) -> Outgoing:
    key = "intake.consent_cadre" if a.draft.filed_by_cadre else "intake.consent"
    return Outgoing(
        key,
        {"version": CONSENT_VERSION, "hotline": HOTLINE},
        actions=(
            (
                Action(b.Consent(a.conv, "yes"), label="action.consent_yes"),
                Action(b.Consent(a.conv, "no"), label="action.consent_no"),
            ),
        ),
    )


async def _press_consent(turn: Turn, button: b.Consent) -> Outcome | None:
    if button.answer != "yes":
        await turn.uow.conversations.finish(turn.conv.id)
        await turn.say(Outgoing("intake.consent_declined", {"hotline": HOTLINE}))
        return None
    consent = {"consent_version": CONSENT_VERSION, "consent_at": turn.clock.now().isoformat()}
    # Back never returns to the consent: it is given, or the declaration ends.
    await turn.go(consent, record=False)
    return Outcome(toast="intake.consent_thanks", locale=turn.actor.locale)


async def _ask_name(a: Asking) -> Outgoing:
    return Outgoing("intake.ask_name", {"village": a.draft.village_name or ""}, actions=(a.nav(),))


async def _ask_declarant(a: Asking) -> Outgoing:
    return Outgoing(
        "intake.ask_declarant",
        {"name": a.draft.name or ""},
        actions=(
            (
                Action(b.ChooseDeclarant(a.conv, "self"), label="declarant.self_button"),
                Action(b.ChooseDeclarant(a.conv, "family"), label="declarant.family_button"),
            ),
            a.nav(),
        ),
    )


async def _press_declarant(turn: Turn, button: b.ChooseDeclarant) -> Outcome | None:
    await turn.go({"declarant": button.who, "relation": None})  # a relation given before goes with it
    return None


async def _ask_relation(a: Asking) -> Outgoing:
    buttons = [Action(b.ChooseRelation(a.conv, r), label=f"relation.{r}") for r in RELATIONS]
    return Outgoing("intake.ask_relation", actions=(*_rows(buttons, 3), a.nav()))


async def _press_relation(turn: Turn, button: b.ChooseRelation) -> Outcome | None:
    if button.relation not in RELATIONS:
        return _invalid(turn)
    await turn.go({"relation": button.relation})
    return None


# --- phone and ID number: a household that declared already adds to that declaration -------------


async def _offer_existing(turn: Turn, *, phone: str | None, fingerprint: str | None) -> bool:
    """A household with an open declaration of the last 30 days adds to it instead of a second one.

    The declaration offered is stored on the conversation: the 补充 button names it, but only the
    one offered here can be added to. Past the limits the number is taken without a look-up, so a
    stranger cannot test numbers one after another and an honest household loses nothing.
    """
    uow, person, now = turn.uow, turn.actor, turn.clock.now()
    number = phone or str(fingerprint or "")
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
    existing = await submission.open_declaration_of(uow, turn.clock, phone=phone, fingerprint=fingerprint)
    if existing is None:
        return False
    await turn.stay(turn.draft.with_(offered=existing.id))
    conv = turn.conv.id
    actions = ((Action(b.AddToExisting(conv, existing.id)),), (Action(b.Cancel(conv)),))
    # Only its own declarant is shown the receipt: a phone number alone must not reveal one.
    if existing.declared_by == person.id or person.id == existing.filed_by_cadre:
        local = existing.created_at.astimezone(now.tzinfo).date()
        message = Outgoing(
            "intake.repeat_own",
            {"receipt": existing.receipt, "date": day(local.isoformat())},
            actions=actions,
        )
    else:
        message = Outgoing("intake.repeat_other", {"hotline": HOTLINE}, actions=actions)
    await turn.say(message)
    return True


async def _ask_phone(a: Asking) -> Outgoing:
    # Typed, not shared with a reply keyboard's button: the number of the Telegram account is
    # often not the household's (a child's phone, a number from abroad), and a reply keyboard
    # can be neither put up nor taken away by an edit: two more messages for every farmer.
    # A contact card shared from the attachment menu is still taken (_take_contact).
    key = "intake.ask_phone_cadre" if a.draft.filed_by_cadre else "intake.ask_phone"
    return Outgoing(key, actions=(a.nav(),))


async def _take_phone(turn: Turn, changes: Changes) -> None:
    if changes["phone"] != turn.draft.phone:  # texts were agreed for the number given before
        changes = {**changes, "sms_consent_at": None, "texts_answered": False}
    if not await _offer_existing(turn, phone=changes["phone"], fingerprint=None):
        await turn.go(changes)


async def _read_phone(turn: Turn, raw: str) -> None:
    await _take_phone(turn, parse_phone(raw))


async def _take_contact(turn: Turn, said: Said) -> None:
    """A shared contact card as the phone answer; someone else's card is not taken for it."""
    if not said.own:
        await turn.again("intake.foreign_contact")
        return
    try:
        changes = parse_phone(said.text)
    except Invalid as exc:
        await turn.again(exc.key)
        return
    await _take_phone(turn, changes)


# --- 代报: whether the household agreed to text messages --------------------------------------------


def asks_texts(draft: Draft) -> bool:
    """The text-message question is the cadre's (a household in chat has its chat), only while
    texts can be sent, and only for a mobile number (a landline receives none)."""
    texts = bool(draft.filed_by_cadre) and delivery.texts_on()
    return texts and draft.phone is not None and validation.is_mobile(draft.phone)


async def _ask_texts(a: Asking) -> Outgoing:
    phone = validation.display_phone(a.draft.phone) if a.draft.phone else ""
    return Outgoing(
        "intake.ask_texts_cadre",
        {"phone": phone},
        actions=(
            (
                Action(b.TextsConsent(a.conv, "yes"), label="action.texts_yes"),
                Action(b.TextsConsent(a.conv, "no"), label="action.texts_no"),
            ),
            a.nav(),
        ),
    )


async def _press_texts(turn: Turn, button: b.TextsConsent) -> Outcome | None:
    agreed = turn.clock.now().isoformat() if button.answer == "yes" else None
    await turn.go({"sms_consent_at": agreed, "texts_answered": True})
    return None


async def _ask_id(a: Asking) -> Outgoing:
    return Outgoing("intake.ask_id", actions=((Action(b.SkipId(a.conv), label="action.skip_id"),), a.nav()))


async def _read_id(turn: Turn, raw: str) -> None:
    changes = sealed_id(turn.protector, raw)
    if not await _offer_existing(turn, phone=None, fingerprint=changes["id_fingerprint"]):
        await turn.go(changes)


async def _press_skip_id(turn: Turn, button: b.SkipId) -> Outcome | None:
    await turn.go({"id_answered": True, "id_sealed": None, "id_fingerprint": None, "id_masked": None})
    return None


# --- the household, its risks ------------------------------------------------------------------------


async def _ask_household(a: Asking) -> Outgoing:
    buttons = [
        Action(b.HouseholdSize(a.conv, n), label={"$plain": f"{n}+" if n == 6 else str(n)})
        for n in HOUSEHOLD_BUTTONS
    ]
    return Outgoing("intake.ask_household", actions=(*_rows(buttons, 6), a.nav()))


async def _press_household(turn: Turn, button: b.HouseholdSize) -> Outcome | None:
    await turn.go({"household": button.size})
    return None


def risks_question(conv: int, draft: Draft) -> Outgoing:
    """The list of risk types, the chosen ones ticked."""
    chosen = draft.risks
    buttons = [
        Action(b.ToggleRisk(conv, r.code), label={"$risk": r.code, "$checked": r.code in chosen})
        for r in risk_types.risk_types()
    ]
    done = (Action(b.RisksDone(conv), label="action.risks_done"),) if chosen else ()
    shown = risk_labels(list(chosen)) if chosen else text("intake.none_yet")
    return Outgoing(
        "intake.ask_risks",
        {"max": risk_types.MAX_CHOSEN, "chosen": shown},
        actions=(*_rows(buttons, 2), done, nav(conv, draft)),
    )


async def _ask_risks(a: Asking) -> Outgoing:
    return risks_question(a.conv, a.draft)


async def _toggle_risk(turn: Turn, code: str, *, reply: bool) -> Outcome:
    """Tick or untick a risk type; a press redraws the list where it was pressed."""
    person = turn.actor
    chosen = list(turn.draft.risks)
    if code in chosen:
        chosen.remove(code)
    elif len(chosen) >= risk_types.MAX_CHOSEN:
        if reply:
            await turn.again("intake.too_many_risks", max=risk_types.MAX_CHOSEN)
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
    followups = {k: v for k, v in turn.draft.followups.items() if k.split(".")[0] in chosen}
    draft = turn.draft.with_(risks=tuple(chosen), followups=followups)
    await turn.stay(draft, S.RISKS)
    if reply:
        await turn.say(risks_question(turn.conv.id, draft))
        return Outcome(locale=person.locale)
    # A press redraws the same message with the tick moved, rather than sending a new one.
    return Outcome(
        edit=risks_question(turn.conv.id, draft),
        locale=person.locale,
        done=False,
        toast="intake.noted",
        params={"value": risk_label(code)},
    )


async def _read_risk(turn: Turn, raw: str) -> None:
    risk = risk_types.match_label(raw)
    if risk is None:
        await turn.again("intake.use_buttons")
        return
    await _toggle_risk(turn, risk.code, reply=True)


async def _press_toggle(turn: Turn, button: b.ToggleRisk) -> Outcome | None:
    if not risk_types.by_code(button.code):
        return _invalid(turn)
    return await _toggle_risk(turn, button.code, reply=False)


async def _press_risks_done(turn: Turn, button: b.RisksDone) -> Outcome | None:
    if not turn.draft.risks:
        return _invalid(turn)
    await turn.go({"risks_done": True})
    return None


async def _ask_followup(a: Asking) -> Outgoing:
    code, question = pending_followups(a.draft)[0].split(".")
    return Outgoing(f"followup.{question}", {"risk": risk_label(code)}, actions=(a.nav(),))


async def _read_followup(turn: Turn, raw: str) -> None:
    key = pending_followups(turn.draft)[0]
    value = followup_answer(key.split(".")[1], raw, turn.clock.now().date())
    await turn.go({"followups": {**turn.draft.followups, key: value}}, entry=f"followup:{key}")


# --- description and photos --------------------------------------------------------------------------


async def _ask_description(a: Asking) -> Outgoing:
    return Outgoing("intake.ask_description", {"limit": validation.MAX_DESCRIPTION}, actions=(a.nav(),))


async def _take_voice(turn: Turn, said: Said) -> None:
    """A voice note as the description, for those who speak more easily than they type."""
    voice = Voice(said.ref or "", said.seconds)
    await turn.go({"voice": voice, "description": None, "description_done": True}, lead="intake.voice_ok")


async def _ask_photos(a: Asking) -> Outgoing:
    count = len(a.draft.photos)
    label = "action.photos_done" if count else "action.skip_photos"
    return Outgoing(
        "intake.ask_photos",
        {"max": MAX_PHOTOS, "count": count},
        actions=((Action(b.PhotosDone(a.conv), label=label),), a.nav()),
    )


async def _take_photo(turn: Turn, said: Said) -> None:
    """A photo, kept (up to five; the fifth moves on)."""
    photos = (*turn.draft.photos, said.ref or "")
    if len(photos) >= MAX_PHOTOS:
        await turn.go({"photos": photos[:MAX_PHOTOS], "photos_done": True}, lead="intake.photos_full")
        return
    draft = turn.draft.with_(photos=photos)
    moved = await turn.stay(draft)
    question = await _ask_photos(Asking(turn.uow, moved.id, draft))
    await turn.say(question.led_by("intake.photo_added", count=len(photos)))


async def _press_photos_done(turn: Turn, button: b.PhotosDone) -> Outcome | None:
    await turn.go({"photos_done": True})
    return None


# --- the summary ----------------------------------------------------------------------------------


async def _ask_summary(a: Asking) -> Outgoing:
    edits = [
        Action(b.EditAnswer(a.conv, step.field), label=f"edit.{step.field}")
        for step in STEPS
        if step.field
        and not (step.field == "declarant" and a.draft.filed_by_cadre)
        and not (step.field == "texts" and not asks_texts(a.draft))
    ]
    return Outgoing(
        "intake.summary",
        summary_params(a.draft),
        actions=((Action(b.Confirm(a.conv)),), *_rows(edits, 3), (Action(b.Cancel(a.conv)),)),
    )


async def _press_confirm(turn: Turn, button: b.Confirm) -> Outcome | None:
    return await submission.confirm(turn.uow, turn.clock, turn.rules, turn.actor, turn.conv.id, turn.draft)


async def _press_edit(turn: Turn, button: b.EditAnswer) -> Outcome | None:
    """Ask one answer again from the summary; what was there stays until it is replaced."""
    step = EDITABLE.get(button.field)
    if step is None:
        return _invalid(turn)
    if step is S.TOWNSHIP and (turn.draft.one_township or turn.draft.cadre_villages):
        step = S.VILLAGE
    draft = turn.draft.with_(editing=True, history=(*turn.draft.history, S.CONFIRM.value))
    moved = await turn.stay(draft, step)
    await turn.say(await STEP[step].ask(Asking(turn.uow, moved.id, draft)))
    return None


# --- the table ---------------------------------------------------------------------------------------

STEPS: tuple[Step, ...] = (
    Step(
        S.CONSENT, _ask_consent, lambda d: d.consent_at is None,
        buttons={b.Consent: _press_consent}, refuse="intake.use_buttons",
    ),
    Step(
        S.TOWNSHIP, _ask_township, lambda d: d.village_id is None and not d.one_township,
        read=_read_township, buttons={b.ChooseTownship: _press_township},
        dependents=frozenset({S.VILLAGE}), field="village",
    ),
    Step(
        S.VILLAGE, _ask_village, lambda d: d.village_id is None,
        read=_read_village, buttons={b.ChooseVillage: _press_village},
    ),
    Step(S.NAME, _ask_name, lambda d: d.name is None, read=_parsed(parse_name), field="name"),
    Step(
        S.DECLARANT, _ask_declarant, lambda d: not d.filed_by_cadre and d.declarant is None,
        buttons={b.ChooseDeclarant: _press_declarant}, refuse="intake.use_buttons",
        dependents=frozenset({S.RELATION}), field="declarant",
    ),
    Step(
        S.RELATION, _ask_relation, lambda d: d.declarant == "family" and d.relation is None,
        read=_parsed(parse_relation), buttons={b.ChooseRelation: _press_relation},
    ),
    Step(
        S.PHONE, _ask_phone, lambda d: d.phone is None,
        read=_read_phone, takes={Kind.CONTACT: _take_contact},
        dependents=frozenset({S.SMS_CONSENT}), field="phone",
    ),
    Step(
        S.SMS_CONSENT, _ask_texts, lambda d: asks_texts(d) and not d.texts_answered,
        buttons={b.TextsConsent: _press_texts}, refuse="intake.use_buttons", field="texts",
    ),
    Step(
        S.ID_NUMBER, _ask_id, lambda d: not d.id_answered,
        read=_read_id, buttons={b.SkipId: _press_skip_id}, field="id_number",
    ),
    Step(
        S.HOUSEHOLD, _ask_household, lambda d: d.household is None,
        read=_parsed(parse_household), buttons={b.HouseholdSize: _press_household}, field="household",
    ),
    Step(
        S.RISKS, _ask_risks, lambda d: not d.risks_done,
        read=_read_risk, buttons={b.ToggleRisk: _press_toggle, b.RisksDone: _press_risks_done},
        dependents=frozenset({S.FOLLOWUP}), field="risks",
    ),
    Step(S.FOLLOWUP, _ask_followup, lambda d: bool(pending_followups(d)), read=_read_followup),
    Step(
        S.DESCRIPTION, _ask_description, lambda d: not d.description_done,
        read=_parsed(parse_description), takes={Kind.VOICE: _take_voice},
        refuse="intake.text_or_voice", field="description",
    ),
    Step(
        S.PHOTOS, _ask_photos, lambda d: not d.photos_done,
        takes={Kind.PHOTO: _take_photo}, buttons={b.PhotosDone: _press_photos_done},
        refuse="intake.photos_only", field="photos",
    ),
    Step(
        S.CONFIRM, _ask_summary, lambda d: True,
        buttons={b.Confirm: _press_confirm, b.EditAnswer: _press_edit}, refuse="intake.use_buttons",
    ),
)  # fmt: skip
STEP: dict[S, Step] = {step.name: step for step in STEPS}
ORDER: tuple[S, ...] = tuple(step.name for step in STEPS)
# The summary's "change" buttons, in display order: field -> the step that asks it.
EDITABLE: dict[str, S] = {step.field: step.name for step in STEPS if step.field}
# The button classes each step answers with (the buttons of the whole conversation are added there).
BUTTON_STEPS: dict[type[b.Button], S] = {cls: step.name for step in STEPS for cls in step.buttons}


def after(draft: Draft, step: S) -> S:
    """The step that follows `step` for these answers."""
    if step is S.FOLLOWUP and pending_followups(draft):
        return S.FOLLOWUP
    later = ORDER[ORDER.index(step) + 1 :]
    if draft.editing:
        # Changing one answer from the summary: its dependent step if it applies, then the summary.
        if later[0] in STEP[step].dependents and STEP[later[0]].needed(draft):
            return later[0]
        return S.CONFIRM
    return next(candidate for candidate in later if STEP[candidate].needed(draft))
