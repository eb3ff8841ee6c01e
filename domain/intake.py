"""The farmer's declaration: a short conversation whose progress lives in storage."""

from __future__ import annotations

from typing import Any

from domain import risk_types, validation
from domain.cases import submit_declaration
from domain.messages import Action, Outcome, Outgoing, risk_label
from domain.model import HOTLINE, Channel, Conversation, Flow, IntakeStep, Person
from domain.people import person_for
from domain.ports import Clock, UnitOfWork
from domain.validation import Invalid


def _cancel_row(conv: Conversation) -> tuple[Action, ...]:
    return (Action("cancel", str(conv.id)),)


def prompt(conv: Conversation) -> Outgoing:
    """The question for the step the conversation is at."""
    data = conv.data
    step = IntakeStep(conv.step)
    if step is IntakeStep.RISK:
        buttons = [
            Action("risk", f"{conv.id}:{r.code}", label=risk_label(r.code)) for r in risk_types.risk_types()
        ]
        rows = tuple(tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2))
        return Outgoing(
            "intake.ask_risk",
            {"village": data["village_name"]},
            actions=(*rows, _cancel_row(conv)),
        )
    if step is IntakeStep.DESCRIPTION:
        return Outgoing(
            "intake.ask_description",
            {"risk": risk_label(data["risk"]), "limit": validation.MAX_DESCRIPTION},
            actions=(_cancel_row(conv),),
        )
    if step is IntakeStep.NAME:
        return Outgoing("intake.ask_name", actions=(_cancel_row(conv),))
    if step is IntakeStep.PHONE:
        return Outgoing("intake.ask_phone", keyboard="contact")
    return Outgoing(
        "intake.summary",
        {
            "village": data["village_name"],
            "risk": risk_label(data["risk"]),
            "description": data["description"],
            "name": data["name"],
            "phone": validation.display_phone(data["phone"]),
        },
        actions=(
            (Action("confirm", str(conv.id)),),
            (Action("restart", str(conv.id)), Action("cancel", str(conv.id))),
        ),
    )


async def _say(uow: UnitOfWork, clock: Clock, person: Person, *messages: Outgoing) -> None:
    for message in messages:
        await uow.outbox.add(person.id, message, at=clock.now())


async def start(
    uow: UnitOfWork,
    clock: Clock,
    channel: Channel,
    address: str,
    *,
    village_code: str | None,
    problem: str | None = None,
) -> Outcome:
    """Begin (or resume) a declaration for the village named by a scanned QR code.

    `problem` is the catalog key explaining why a payload was refused; with no village and no
    problem the person simply sent /start.
    """
    person = await person_for(uow, channel, address, clock)
    current = await uow.conversations.get(person.id)
    resumable = current is not None and current.flow is Flow.INTAKE
    village = await uow.geography.village_by_code(village_code) if village_code else None
    if village_code and village is None:
        problem = "start.unknown_village"
    if village is None:
        if problem is None and resumable and current is not None:
            await _say(uow, clock, person, Outgoing("intake.resumed"), prompt(current))
            return Outcome(locale=person.locale)
        await _say(uow, clock, person, Outgoing(problem or "start.no_payload", {"hotline": HOTLINE}))
        return Outcome(done=problem is None, locale=person.locale)
    if resumable and current is not None and current.data.get("village_id") == village.id:
        await _say(uow, clock, person, Outgoing("intake.resumed"), prompt(current))
        return Outcome(locale=person.locale)
    conv = await uow.conversations.start(
        person.id,
        Flow.INTAKE,
        IntakeStep.RISK,
        {"village_id": village.id, "village_name": village.name},
        clock.now(),
    )
    await _say(
        uow,
        clock,
        person,
        Outgoing("intake.welcome", {"village": village.name, "hotline": HOTLINE}),
        prompt(conv),
    )
    return Outcome(locale=person.locale)


async def _advance(
    uow: UnitOfWork,
    clock: Clock,
    person: Person,
    conv: Conversation,
    step: IntakeStep,
    changes: dict[str, Any],
    *before: Outgoing,
) -> None:
    data = {**conv.data, **changes}
    await uow.conversations.update(conv.id, step, data, clock.now())
    moved = Conversation(conv.id, conv.person_id, conv.flow, step, data, clock.now())
    await _say(uow, clock, person, *before, prompt(moved))


async def answer_text(uow: UnitOfWork, clock: Clock, person: Person, conv: Conversation, raw: str) -> None:
    """Take typed text as the answer to the current step; re-ask politely when it is wrong."""
    step = IntakeStep(conv.step)
    try:
        if step is IntakeStep.RISK:
            risk = risk_types.match_label(raw)
            if risk is None:
                await _say(uow, clock, person, Outgoing("intake.use_buttons"), prompt(conv))
                return
            await _advance(uow, clock, person, conv, IntakeStep.DESCRIPTION, {"risk": risk.code})
        elif step is IntakeStep.DESCRIPTION:
            value = validation.description(raw)
            await _advance(uow, clock, person, conv, IntakeStep.NAME, {"description": value})
        elif step is IntakeStep.NAME:
            value = validation.person_name(raw)
            await _advance(uow, clock, person, conv, IntakeStep.PHONE, {"name": value})
        elif step is IntakeStep.PHONE:
            await _take_phone(uow, clock, person, conv, raw)
        else:
            await _say(uow, clock, person, Outgoing("intake.use_buttons"), prompt(conv))
    except Invalid as exc:
        await _say(uow, clock, person, Outgoing(exc.key, dict(exc.params)), prompt(conv))


async def _take_phone(uow: UnitOfWork, clock: Clock, person: Person, conv: Conversation, raw: str) -> None:
    value = validation.phone(raw)
    await _advance(
        uow,
        clock,
        person,
        conv,
        IntakeStep.CONFIRM,
        {"phone": value},
        Outgoing("intake.phone_ok", keyboard="remove"),
    )


async def answer_contact(
    uow: UnitOfWork, clock: Clock, person: Person, conv: Conversation, raw_phone: str
) -> None:
    """Take a shared contact as the phone answer."""
    if IntakeStep(conv.step) is not IntakeStep.PHONE:
        await _say(uow, clock, person, Outgoing("intake.unexpected_contact"), prompt(conv))
        return
    try:
        await _take_phone(uow, clock, person, conv, raw_phone)
    except Invalid as exc:
        await _say(uow, clock, person, Outgoing(exc.key), prompt(conv))


async def answer_other(uow: UnitOfWork, clock: Clock, person: Person, conv: Conversation) -> None:
    """A sticker, photo or voice note where text or a button was wanted."""
    step = IntakeStep(conv.step)
    key = "intake.use_buttons" if step in (IntakeStep.RISK, IntakeStep.CONFIRM) else "intake.need_text"
    await _say(uow, clock, person, Outgoing(key), prompt(conv))


async def _conversation_for_button(
    uow: UnitOfWork, clock: Clock, channel: Channel, address: str, conversation_id: int
) -> tuple[Person, Conversation | None]:
    person = await person_for(uow, channel, address, clock)
    conv = await uow.conversations.get(person.id)
    if conv is None or conv.id != conversation_id or conv.flow is not Flow.INTAKE:
        return person, None
    return person, conv


STALE = "intake.stale_button"


async def choose_risk(
    uow: UnitOfWork, clock: Clock, channel: Channel, address: str, conversation_id: int, code: str
) -> Outcome:
    """The risk type button."""
    person, conv = await _conversation_for_button(uow, clock, channel, address, conversation_id)
    if conv is None or IntakeStep(conv.step) is not IntakeStep.RISK:
        return Outcome(toast=STALE, locale=person.locale, done=False)
    if risk_types.by_code(code) is None:
        return Outcome(toast="button.invalid", locale=person.locale, done=False)
    await _advance(uow, clock, person, conv, IntakeStep.DESCRIPTION, {"risk": code})
    return Outcome(toast="intake.noted", locale=person.locale, params={"value": risk_label(code)})


async def restart(
    uow: UnitOfWork, clock: Clock, channel: Channel, address: str, conversation_id: int
) -> Outcome:
    """Start the same village's declaration over."""
    person, conv = await _conversation_for_button(uow, clock, channel, address, conversation_id)
    if conv is None:
        return Outcome(toast=STALE, locale=person.locale, done=False)
    fresh = await uow.conversations.start(
        person.id,
        Flow.INTAKE,
        IntakeStep.RISK,
        {"village_id": conv.data["village_id"], "village_name": conv.data["village_name"]},
        clock.now(),
    )
    await _say(uow, clock, person, prompt(fresh))
    return Outcome(locale=person.locale)


async def cancel(
    uow: UnitOfWork, clock: Clock, channel: Channel, address: str, conversation_id: int | None
) -> Outcome:
    """Drop the unfinished declaration (or whatever the person was in the middle of)."""
    person = await person_for(uow, channel, address, clock)
    conv = await uow.conversations.get(person.id)
    if conv is None or (conversation_id is not None and conv.id != conversation_id):
        if conversation_id is None:
            await _say(uow, clock, person, Outgoing("cancel.nothing"))
            return Outcome(locale=person.locale)
        return Outcome(toast=STALE, locale=person.locale, done=False)
    await uow.conversations.finish(conv.id)
    await _say(uow, clock, person, Outgoing("cancel.done", {"hotline": HOTLINE}, keyboard="remove"))
    return Outcome(locale=person.locale)


async def confirm(
    uow: UnitOfWork, clock: Clock, channel: Channel, address: str, conversation_id: int
) -> Outcome:
    """Submit the declaration shown in the summary; a second press does nothing."""
    person, conv = await _conversation_for_button(uow, clock, channel, address, conversation_id)
    if conv is None or IntakeStep(conv.step) is not IntakeStep.CONFIRM:
        return Outcome(toast="intake.already_submitted", locale=person.locale, done=False)
    if not await uow.conversations.finish(conv.id):
        return Outcome(toast="intake.already_submitted", locale=person.locale, done=False)
    declaration = await submit_declaration(uow, clock, person, conv.data)
    return Outcome(
        toast="intake.submitted_toast",
        locale=person.locale,
        params={"receipt": declaration.receipt},
    )
