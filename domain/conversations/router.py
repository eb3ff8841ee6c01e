"""Where a message that is not a command or a button goes: the person's one open conversation.

The words that cancel, go back or open the household's own list mean the same in every flow; the
flow of the open conversation (flows.FLOWS) answers the rest.
"""

from __future__ import annotations

from datetime import timedelta

from domain.actor import Actor
from domain.conversations.flows import FLOWS, restart
from domain.dialogue import PENDING, Kind, Said, Tools, pending
from domain.household import my_declarations
from domain.messages import Outcome, Outgoing
from domain.model import HOTLINE, Flow
from domain.people import show_help
from domain.ports import Clock, UnitOfWork

# Typed words (or reply-keyboard buttons tapped) that mean the same as a button, in any language.
CANCEL_WORDS = frozenset({"取消", "cancel", "/cancel", "不报了"})
BACK_WORDS = frozenset({"返回", "返回上一步", "上一步", "back", "← back", "← 返回"})
MENU_WORDS = frozenset({"我的申报", "my declarations"})
STALE = "intake.stale_button"

DRAFT_REMINDER_AFTER = timedelta(hours=24)
DRAFT_DISCARDED_AFTER = timedelta(days=7)
DAYTIME = range(8, 21)  # reminders are sent between 08:00 and 21:00 local time


def _word(raw: str) -> str:
    return raw.strip().casefold()


async def answer(uow: UnitOfWork, tools: Tools, actor: Actor, said: Said) -> None:
    """A message that is not a command or a button: a word for a button, an answer to the open
    conversation, or (with none open) what this person can do here."""
    conv = await uow.conversations.get(actor.id)
    word = _word(said.text) if said.kind is Kind.TEXT else ""
    if word in CANCEL_WORDS:
        await cancel(uow, tools.clock, actor, None)
        return
    if word in MENU_WORDS:
        # The household's standing menu button: its list, and a declaration under way asked
        # again (the button's words are no answer to a question of it).
        await my_declarations(uow, tools.clock, actor)
        if conv is not None and conv.flow is Flow.INTAKE:
            question = await FLOWS[conv.flow].ask(uow, tools.clock, conv)
            await uow.outbox.add(actor.id, question.led_by("intake.resumed"), at=tools.clock.now())
        return
    if conv is None:
        await show_help(uow, tools.clock, actor)
        return
    spec = FLOWS[conv.flow]
    if word in BACK_WORDS and spec.back is not None:
        await spec.back(uow, tools, actor, conv)
        return
    await spec.answer(uow, tools, actor, conv, said)


async def cancel(uow: UnitOfWork, clock: Clock, actor: Actor, conversation_id: int | None) -> Outcome:
    """Drop whatever the person is in the middle of: /cancel, a cancel word (`conversation_id`
    None), or the Cancel button of a conversation (refused when it is not the open one)."""
    conv = await uow.conversations.get(actor.id)
    if conv is None or (conversation_id is not None and conv.id != conversation_id):
        if conversation_id is None:
            await uow.outbox.add(actor.id, Outgoing("cancel.nothing"), at=clock.now())
            return Outcome(locale=actor.locale)
        return Outcome(toast=STALE, locale=actor.locale, done=False)
    await uow.conversations.finish(conv.id)
    key = FLOWS[conv.flow].cancelled
    # The chat's own conversations end with the household's menu taken away; the township's keep theirs.
    keyboard = "remove" if key == "cancel.done" else None
    await uow.outbox.add(actor.id, Outgoing(key, {"hotline": HOTLINE}, keyboard=keyboard), at=clock.now())
    return Outcome(locale=actor.locale)


async def switch(uow: UnitOfWork, tools: Tools, actor: Actor, conversation_id: int, drop: bool) -> Outcome:
    """The answer to "drop the open conversation for the new one?": drop it and start the new one,
    or keep it and be asked its question again."""
    conv = await uow.conversations.get(actor.id)
    waiting = pending(conv) if conv is not None and conv.id == conversation_id else None
    if conv is None or waiting is None:
        return Outcome(toast=STALE, locale=actor.locale, done=False)
    now = tools.clock.now()
    if not drop:
        data = {k: v for k, v in conv.data.items() if k != PENDING}
        await uow.conversations.update(conv.id, conv.step, data, now)
        question = await FLOWS[conv.flow].ask(uow, tools.clock, conv)
        await uow.outbox.add(actor.id, question.led_by("conversation.kept"), at=now)
        return Outcome(locale=actor.locale)
    await uow.conversations.finish(conv.id)
    return await restart(uow, tools, actor, waiting.flow, waiting.args)


async def sweep_drafts(uow: UnitOfWork, clock: Clock) -> tuple[int, int]:
    """Unfinished declarations: remind once after a day idle (in the daytime); discard after a
    week. Returns (reminded, discarded)."""
    now = clock.now()
    reminded = discarded = 0
    for conv in await uow.conversations.idle(Flow.INTAKE, now - DRAFT_REMINDER_AFTER):
        if conv.updated_at <= now - DRAFT_DISCARDED_AFTER:
            if await uow.conversations.finish(conv.id):
                await uow.outbox.add(
                    conv.person_id,
                    Outgoing("draft.discarded", {"hotline": HOTLINE}, keyboard="remove"),
                    key=f"draft-discarded:{conv.id}",
                    at=now,
                )
                discarded += 1
        elif conv.reminded_at is None and now.hour in DAYTIME:
            if await uow.conversations.mark_reminded(conv.id, now):
                question = await FLOWS[Flow.INTAKE].ask(uow, clock, conv)
                await uow.outbox.add(
                    conv.person_id,
                    question.led_by("draft.reminder", days=DRAFT_DISCARDED_AFTER.days),
                    key=f"draft-reminder:{conv.id}:{conv.updated_at.isoformat()}",
                    at=now,
                )
                reminded += 1
    return reminded, discarded
