"""Where a message that is not a command or a button goes: the person's open conversation."""

from __future__ import annotations

from domain import cases, intake
from domain.messages import Outgoing
from domain.model import Channel, Flow
from domain.people import person_for, show_help
from domain.ports import Clock, UnitOfWork


async def on_text(uow: UnitOfWork, clock: Clock, channel: Channel, address: str, raw: str) -> None:
    """Typed text: an answer to the open conversation, or a polite pointer to what to do."""
    person = await person_for(uow, channel, address, clock)
    conv = await uow.conversations.get(person.id)
    if conv is None:
        await show_help(uow, clock, channel, address)
    elif conv.flow is Flow.INTAKE:
        await intake.answer_text(uow, clock, person, conv, raw)
    else:
        await cases.give_reason(uow, clock, person, conv.id, int(conv.data["task_id"]), raw)


async def on_contact(uow: UnitOfWork, clock: Clock, channel: Channel, address: str, phone: str) -> None:
    """A shared contact: the phone answer of a declaration, if one is being filled in."""
    person = await person_for(uow, channel, address, clock)
    conv = await uow.conversations.get(person.id)
    if conv is not None and conv.flow is Flow.INTAKE:
        await intake.answer_contact(uow, clock, person, conv, phone)
    else:
        await on_other(uow, clock, channel, address)


async def on_other(uow: UnitOfWork, clock: Clock, channel: Channel, address: str) -> None:
    """A sticker, photo, voice note or anything else we cannot take at this point."""
    person = await person_for(uow, channel, address, clock)
    conv = await uow.conversations.get(person.id)
    if conv is not None and conv.flow is Flow.INTAKE:
        await intake.answer_other(uow, clock, person, conv)
    elif conv is not None:
        await uow.outbox.add(person.id, Outgoing("intake.need_text"), at=clock.now())
    else:
        await show_help(uow, clock, channel, address)
