"""Where a message that is not a command or a button goes: the person's open conversation."""

from __future__ import annotations

from domain import buttons as b
from domain import cases, household, intake
from domain.actor import Actor
from domain.messages import Outgoing
from domain.model import AttachmentKind, Conversation, Flow, Person
from domain.people import show_help
from domain.ports import Clock, DeadlineRules, Protector, UnitOfWork

# Words typed (or reply-keyboard buttons tapped) that mean the same as a button, in any language.
BACK_WORDS = {"返回", "返回上一步", "上一步", "back", "← back", "← 返回"}
CANCEL_WORDS = {"取消", "cancel", "不报了"}
MENU_WORDS = {"我的申报", "my declarations"}


def _word(raw: str) -> str:
    return raw.strip().casefold()


async def on_text(
    uow: UnitOfWork,
    clock: Clock,
    protector: Protector,
    rules: DeadlineRules,
    actor: Actor,
    raw: str,
    *,
    language: str | None = None,
) -> None:
    """Typed text: an answer to the open conversation, a word for a button, or a pointer."""
    conv = await uow.conversations.get(actor.id)
    word = _word(raw)
    if word in CANCEL_WORDS:
        await intake.cancel(uow, clock, actor, None)
    elif word in MENU_WORDS and (conv is None or conv.flow is not Flow.INTAKE):
        await household.my_declarations(uow, clock, actor)
    elif conv is None:
        await show_help(uow, clock, actor)
    elif conv.flow is Flow.INTAKE:
        if word in BACK_WORDS:
            await intake.press(uow, clock, protector, rules, actor, b.Back(conv.id))
        else:
            await intake.answer_text(uow, clock, protector, actor, conv, raw)
    elif conv.flow is Flow.ADD_INFO:
        await household.add_item(
            uow, clock, actor, conv.id, conv.data, AttachmentKind.TEXT, raw.strip()[:1000]
        )
    elif conv.flow is Flow.VISIT:
        await cases.visit_answer(uow, clock, rules, actor, conv.id, conv.data, conv.step, text_answer=raw)
    elif conv.flow is Flow.OBJECTION:
        await cases.give_objection(uow, clock, rules, actor, conv.id, int(conv.data["declaration_id"]), raw)
    else:
        await cases.give_reason(uow, clock, rules, actor, conv.id, int(conv.data["task_id"]), raw)


async def _open(
    uow: UnitOfWork, clock: Clock, actor: Actor
) -> tuple[Person, Conversation | None]:
    return actor, await uow.conversations.get(actor.id)


async def on_contact(
    uow: UnitOfWork, clock: Clock, actor: Actor, phone: str, *, own: bool = True
) -> None:
    """A shared contact: the phone answer of a declaration, if one is being filled in.

    `own` is False for a contact card that is not the sender's own (someone else's, forwarded).
    """
    person, conv = await _open(uow, clock, actor)
    if conv is not None and conv.flow is Flow.INTAKE:
        await intake.answer_contact(uow, clock, person, conv, phone, own=own)
    else:
        await on_other(uow, clock, actor)


async def on_voice(
    uow: UnitOfWork, clock: Clock, actor: Actor, file_ref: str, duration: int
) -> None:
    """A voice note: the description of a declaration, or information added to one."""
    person, conv = await _open(uow, clock, actor)
    if conv is not None and conv.flow is Flow.INTAKE:
        await intake.answer_voice(uow, clock, person, conv, file_ref, duration)
    elif conv is not None and conv.flow is Flow.ADD_INFO:
        await household.add_item(
            uow, clock, person, conv.id, conv.data, AttachmentKind.VOICE, file_ref, duration
        )
    else:
        await on_other(uow, clock, actor)


async def on_photo(
    uow: UnitOfWork, clock: Clock, rules: DeadlineRules, actor: Actor, file_ref: str
) -> None:
    """A photo: for a declaration's photo step, information added to one, or a home visit."""
    person, conv = await _open(uow, clock, actor)
    if conv is not None and conv.flow is Flow.INTAKE:
        await intake.answer_photo(uow, clock, person, conv, file_ref)
    elif conv is not None and conv.flow is Flow.ADD_INFO:
        await household.add_item(uow, clock, person, conv.id, conv.data, AttachmentKind.PHOTO, file_ref)
    elif conv is not None and conv.flow is Flow.VISIT:
        await cases.visit_answer(uow, clock, rules, person, conv.id, conv.data, conv.step, photo=file_ref)
    else:
        await on_other(uow, clock, actor)


async def on_other(uow: UnitOfWork, clock: Clock, actor: Actor) -> None:
    """A sticker, file or anything else we cannot take at this point: say what is wanted."""
    person, conv = await _open(uow, clock, actor)
    if conv is not None and conv.flow is Flow.INTAKE:
        await intake.answer_other(uow, clock, person, conv)
    elif conv is not None and conv.flow is Flow.ADD_INFO:
        await uow.outbox.add(person.id, Outgoing("status.add_kinds"), at=clock.now())
    elif conv is not None:
        await uow.outbox.add(person.id, Outgoing("intake.need_text"), at=clock.now())
    else:
        await show_help(uow, clock, actor)
