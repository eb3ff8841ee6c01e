"""Telegram handlers of notices, campaign reminders, progress reports and the problem ledger.

They run in group -1, before the skeleton's handlers: a handler that took the update stops it
(ApplicationHandlerStop); one that finds nothing of its own (no draft notice open) returns and
lets the skeleton's handlers answer as before.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from telegram import InputFile, Update
from telegram.ext import (
    ApplicationHandlerStop,
    BaseHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from domain import campaign_chat, delivery, ledger, notices, reports
from domain.actor import Actor
from domain.model import Role
from domain.ports import Clock, UnitOfWork
from handlers.context import AppContext, run
from handlers.sheets import reports_xlsx
from locales import catalog_for

log = logging.getLogger(__name__)
T = TypeVar("T")
GROUP = -1
PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE


async def notice(update: Update, context: AppContext) -> None:
    """/notice: township staff start writing a notice."""
    await run(update, context, notices.start)
    raise ApplicationHandlerStop


async def cancel(update: Update, context: AppContext) -> None:
    """/cancel while drafting a notice drops the draft; otherwise the skeleton's /cancel runs."""

    async def either(uow: UnitOfWork, clock: Clock, actor: Actor) -> bool:
        return (
            await notices.cancel(uow, clock, actor)
            or await campaign_chat.cancel(uow, clock, actor)
            or await reports.cancel(uow, clock, actor)
            or await ledger.cancel(uow, clock, actor)
        )

    if await run(update, context, either):
        raise ApplicationHandlerStop


async def answer_draft(uow: UnitOfWork, clock: Clock, actor: Actor, raw: str) -> bool:
    """Typed text that answers an open notice, campaign, report or ledger draft: True when one
    took it. Called by the chat's text handler in its own transaction, before the conversation
    flows, so a typed answer is one transaction. Farmers (members of the public) draft none of
    these: for them nothing more is read."""
    if actor.role is Role.FARMER:
        return False
    return (
        await notices.on_text(uow, clock, actor, raw)
        or await campaign_chat.on_text(uow, clock, actor, raw)
        or await reports.on_text(uow, clock, actor, raw)
        or await ledger.on_text(uow, clock, actor, raw)
    )


async def other(update: Update, context: AppContext) -> None:
    """A photo, file or sticker sent in the middle of a notice, a report or a ledger entry."""
    message = update.effective_message
    media: dict[str, str] | None = None
    if message is not None and message.photo:
        media = {"kind": "photo", "file_id": message.photo[-1].file_id}
    elif message is not None and message.document is not None:
        media = {"kind": "document", "file_id": message.document.file_id}
    caption = message.caption if message is not None else None

    async def either(uow: UnitOfWork, clock: Clock, actor: Actor) -> bool:
        return (
            await notices.on_other(uow, clock, actor, media, caption)
            or await campaign_chat.on_other(uow, clock, actor)
            or await reports.on_other(uow, clock, actor)
            or await ledger.on_other(uow, clock, actor)
        )

    if await run(update, context, either):
        raise ApplicationHandlerStop


async def campaign(update: Update, context: AppContext) -> None:
    """/campaign: township staff define a campaign in chat (the same fields as the file)."""
    await run(update, context, campaign_chat.start)
    raise ApplicationHandlerStop


async def report(update: Update, context: AppContext) -> None:
    """/report: township staff get the compiled progress table, and the .xlsx of every period."""
    await run(update, context, reports.show)
    data = await run(update, context, reports.export_for)
    if data is not None and data.reports:
        catalog = catalog_for(None, context.services.default_locale)
        # A file asked for by the person who reads it, sent at once rather than through the outbox.
        assert update.effective_chat is not None
        await context.bot.send_document(
            update.effective_chat.id,
            InputFile(reports_xlsx(data, catalog), filename="reports.xlsx"),
        )
    raise ApplicationHandlerStop


async def problem(update: Update, context: AppContext) -> None:
    """/problem: a cadre adds a problem to the ledger (问题台账)."""
    await run(update, context, ledger.start)
    raise ApplicationHandlerStop


async def problems(update: Update, context: AppContext) -> None:
    """/problems: a cadre's open problems (each with 销号); township staff: the whole ledger."""
    await run(update, context, ledger.show)
    raise ApplicationHandlerStop


async def failed(update: Update, context: AppContext) -> None:
    """/failed: township staff see the messages that could not be delivered."""
    await run(update, context, delivery.show_failed)
    raise ApplicationHandlerStop


def handlers() -> list[BaseHandler[Any, Any, Any]]:
    """The notification handlers, to be added in group GROUP."""
    return [
        CommandHandler("notice", notice, filters=PRIVATE),
        CommandHandler("campaign", campaign, filters=PRIVATE),
        CommandHandler("report", report, filters=PRIVATE),
        CommandHandler("problem", problem, filters=PRIVATE),
        CommandHandler("problems", problems, filters=PRIVATE),
        CommandHandler("failed", failed, filters=PRIVATE),
        CommandHandler("cancel", cancel, filters=PRIVATE),
        MessageHandler(PRIVATE & ~filters.TEXT & ~filters.StatusUpdate.ALL, other),
    ]
