"""The declaration in chat: a short conversation whose progress lives in storage.

Every step is one message: the question, its buttons, Back and Cancel. A wrong answer is
explained in the same message that asks again, and nothing already answered is lost. From the
summary any answer can be changed; the steps an answer depends on follow, then the summary again.
What each question asks and takes is in domain/intake/steps.py; this module moves through them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain import buttons as b
from domain.actor import Actor, acting
from domain.dialogue import Kind, Said, Start, Tools, begin
from domain.intake.draft import Draft, pending_followups
from domain.intake.steps import BUTTON_STEPS, STEP, Asking, after
from domain.messages import Outcome, Outgoing
from domain.model import HOTLINE, Conversation, Flow, IntakeStep, Role
from domain.people import show_help
from domain.ports import Clock, DeadlineRules, Protector, UnitOfWork
from domain.validation import Invalid

S = IntakeStep
STALE = "intake.stale_button"
# The buttons of the declaration: each answers its step's question (None: any step).
INTAKE_BUTTONS: dict[type[b.Button], S | None] = {**BUTTON_STEPS, b.AddToExisting: None, b.Back: None}


def draft_of(conv: Conversation) -> Draft:
    return Draft.from_json(conv.data)


async def prompt(uow: UnitOfWork, conv: Conversation) -> Outgoing:
    """The message asking the question of the step the conversation is at."""
    return await STEP[S(conv.step)].ask(Asking(uow, conv.id, draft_of(conv)))


async def ask(uow: UnitOfWork, clock: Clock, conv: Conversation) -> Outgoing:
    """The question the declaration waits on (the conversations table's `ask`)."""
    return await prompt(uow, conv)


@dataclass
class _Turn:
    """One step being answered (domain.intake.steps.Turn)."""

    uow: UnitOfWork
    clock: Clock
    protector: Protector
    rules: DeadlineRules
    actor: Actor
    conv: Conversation
    draft: Draft

    async def say(self, *messages: Outgoing) -> None:
        for message in messages:
            await self.uow.outbox.add(self.actor.id, message, at=self.clock.now())

    async def stay(self, draft: Draft, step: S | None = None) -> Conversation:
        at = (step or S(self.conv.step)).value
        now = self.clock.now()
        data = draft.to_json()
        await self.uow.conversations.update(self.conv.id, at, data, now)
        self.conv = Conversation(self.conv.id, self.conv.person_id, self.conv.flow, at, data, now)
        self.draft = draft
        return self.conv

    async def question(self) -> Outgoing:
        """The question of the step the conversation is at, from the draft in hand."""
        return await STEP[S(self.conv.step)].ask(Asking(self.uow, self.conv.id, self.draft))

    async def again(self, key: str, **params: Any) -> None:
        await self.say((await self.question()).led_by(key, **params))

    async def go(
        self,
        changes: Mapping[str, Any],
        *,
        lead: str | None = None,
        record: bool = True,
        entry: str | None = None,
        via: S | None = None,
    ) -> None:
        draft = self.draft.with_(**changes)
        current = S(self.conv.step)
        history = list(draft.history)
        if via is not None and via is not current:
            history.append(current.value)  # the question asked was answered on the way
            current = via
        if record:
            history.append(entry or current.value)
        nxt = after(draft, current)
        draft = draft.with_(history=tuple(history), editing=draft.editing and nxt is not S.CONFIRM)
        await self.stay(draft, nxt)
        question = await self.question()
        await self.say(question.led_by(lead) if lead else question)


def _turn(uow: UnitOfWork, tools: Tools, actor: Actor, conv: Conversation) -> _Turn:
    return _Turn(uow, tools.clock, tools.protector, tools.rules, actor, conv, draft_of(conv))


# --- starting ------------------------------------------------------------------------------------


async def start(
    uow: UnitOfWork, clock: Clock, actor: Actor, *, village_code: str | None, problem: str | None = None
) -> Outcome:
    """Begin (or resume) a declaration, for the village of a scanned QR code when there is one.

    `problem` is the catalog key explaining why a payload was refused. Without a village (the
    payload was dropped, or /start was typed) the household picks township and village.
    """
    current = await uow.conversations.get(actor.id)
    now = clock.now()
    if problem is not None:
        await uow.outbox.add(actor.id, Outgoing(problem, {"hotline": HOTLINE}), at=now)
        return Outcome(done=False, locale=actor.locale)
    village = await uow.geography.village_by_code(village_code) if village_code else None
    if village_code and village is None:
        await uow.outbox.add(actor.id, Outgoing("start.unknown_village", {"hotline": HOTLINE}), at=now)
        return Outcome(done=False, locale=actor.locale)
    if (
        current is not None
        and current.flow is Flow.INTAKE
        and (village is None or draft_of(current).village_id == village.id)
    ):
        await uow.outbox.add(actor.id, (await prompt(uow, current)).led_by("intake.resumed"), at=now)
        return Outcome(locale=actor.locale)
    if village is None and actor.role is not Role.FARMER:
        await show_help(uow, clock, actor)
        return Outcome(locale=actor.locale)
    draft = Draft()
    if village is not None:
        draft = draft.with_(village_id=village.id, village_name=village.name)
    elif len(await uow.geography.townships()) == 1:
        draft = draft.with_(one_township=True)
    start = Start(Flow.INTAKE, {"village_code": village.code} if village is not None else {})
    conv = await begin(uow, clock, actor, start, S.CONSENT, draft.to_json(), current=current)
    if conv is None:  # another conversation is open: the person was asked whether to drop it
        return Outcome(locale=actor.locale)
    welcome = "intake.welcome" if village is not None else "intake.welcome_no_village"
    # One message: the welcome leads the consent question (one Bot API call, not two).
    ask = (await prompt(uow, conv)).led_by(welcome, village=village.name if village else "", hotline=HOTLINE)
    await uow.outbox.add(actor.id, ask, at=now)
    return Outcome(locale=actor.locale)


async def start_for_household(uow: UnitOfWork, clock: Clock, actor: Actor) -> Outcome:
    """代报: a bound cadre files a declaration for a household of one of their villages."""
    if actor.role is not Role.CADRE or not actor.village_ids:
        await uow.outbox.add(actor.id, Outgoing("daibao.not_cadre", {"hotline": HOTLINE}), at=clock.now())
        return Outcome(done=False, locale=actor.locale)
    draft = Draft(filed_by_cadre=actor.id, cadre_villages=tuple(actor.village_ids), one_township=True)
    if len(actor.village_ids) == 1:
        village = await uow.geography.village(actor.village_ids[0])
        assert village is not None
        draft = draft.with_(village_id=village.id, village_name=village.name)
    conv = await begin(
        uow, clock, actor, Start(Flow.INTAKE, {"for_household": True}), S.CONSENT, draft.to_json()
    )
    if conv is not None:
        await uow.outbox.add(actor.id, await prompt(uow, conv), at=clock.now())
    return Outcome(locale=actor.locale)


async def resume(uow: UnitOfWork, tools: Tools, actor: Actor, args: dict[str, Any]) -> Outcome:
    """Start a declaration again as it was asked for (after the person dropped another conversation)."""
    if args.get("for_household"):
        return await start_for_household(uow, tools.clock, actor)
    code = args.get("village_code")
    return await start(uow, tools.clock, actor, village_code=str(code) if code else None)


# --- answers ---------------------------------------------------------------------------------------


async def answer(uow: UnitOfWork, tools: Tools, actor: Actor, conv: Conversation, said: Said) -> None:
    """A message in the declaration: what the current question takes, or it is asked again with
    what it wants; a wrong answer is explained and nothing already answered is lost."""
    step = STEP[S(conv.step)]
    turn = _turn(uow, tools, actor, conv)
    try:
        if said.kind is Kind.TEXT and step.read is not None:
            await step.read(turn, said.text)
        elif said.kind in step.takes and (said.ref or said.kind is Kind.CONTACT):
            await step.takes[said.kind](turn, said)
        elif said.kind is Kind.CONTACT:
            await turn.again("intake.unexpected_contact")
        else:
            await turn.again(step.refuse)
    except Invalid as exc:
        await turn.again(exc.key, **exc.params)


async def back(uow: UnitOfWork, tools: Tools, actor: Actor, conv: Conversation) -> None:
    """A word for Back typed ("返回"): the question before, as the Back button does."""
    await _back(_turn(uow, tools, actor, conv))


async def _back(turn: _Turn) -> Outcome:
    history = list(turn.draft.history)
    if not history:
        await turn.again("intake.first_step")
        return Outcome(locale=turn.actor.locale, done=False)
    previous = history.pop()
    # A follow-up of a risk type unticked since (from the summary) is no longer asked: skip it.
    asked = pending_followups(turn.draft.with_(followups={}))
    while previous.startswith("followup:") and previous.split(":", 1)[1] not in asked:
        if not history:
            await turn.again("intake.first_step")
            return Outcome(locale=turn.actor.locale, done=False)
        previous = history.pop()
    draft = turn.draft.with_(history=tuple(history))
    if previous.startswith("followup:"):
        key = previous.split(":", 1)[1]
        draft = draft.with_(followups={k: v for k, v in draft.followups.items() if k != key})
        step = S.FOLLOWUP
    else:
        step = S(previous)
        if step is S.CONFIRM:
            draft = draft.with_(editing=False)
    await turn.stay(draft, step)
    await turn.say(await turn.question())
    return Outcome(locale=turn.actor.locale)


# --- buttons -----------------------------------------------------------------------------------------


async def press(
    uow: UnitOfWork, clock: Clock, protector: Protector, rules: DeadlineRules, actor: Actor, button: b.Button
) -> Outcome:
    """An intake button; a button from an older message, another step or someone else's
    conversation is refused politely."""
    wanted = INTAKE_BUTTONS[type(button)]
    conv = await uow.conversations.get(actor.id)
    conversation_id = getattr(button, "conv", None)
    if (
        conv is None
        or conv.id != conversation_id
        or conv.flow is not Flow.INTAKE
        or (wanted is not None and S(conv.step) is not wanted)
    ):
        key = "intake.already_submitted" if isinstance(button, b.Confirm) else STALE
        return Outcome(toast=key, locale=actor.locale, done=False)
    turn = _Turn(uow, clock, protector, rules, actor, conv, draft_of(conv))
    try:
        if isinstance(button, b.Back):
            return await _back(turn)
        if isinstance(button, b.AddToExisting):
            return await _add_to_existing(turn, button.declaration)
        outcome = await STEP[S(conv.step)].buttons[type(button)](turn, button)
    except Invalid:
        return Outcome(toast="button.invalid", locale=actor.locale, done=False)
    return outcome or Outcome(locale=actor.locale)


async def _add_to_existing(turn: _Turn, declaration_id: int) -> Outcome:
    """补充到这份申报: add to the household's open declaration offered, instead of a second one."""
    from domain.household import begin_adding

    person = turn.actor
    if turn.draft.offered != declaration_id:  # a hand-made button naming another case
        return Outcome(toast=STALE, locale=person.locale, done=False)
    existing = await turn.uow.declarations.get(declaration_id)
    if existing is None or not existing.status.open:
        return Outcome(toast=STALE, locale=person.locale, done=False)
    await turn.uow.conversations.finish(turn.conv.id)
    await begin_adding(turn.uow, turn.clock, acting(person), existing, check_owner=False)
    return Outcome(locale=person.locale)
