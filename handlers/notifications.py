"""Telegram commands of township work: notices, campaigns, progress reports, the problem ledger,
failed deliveries. What is typed in answer goes, like every answer, to the person's open
conversation (domain.conversations.router)."""

from __future__ import annotations

from typing import Any

from telegram import InputFile, Update
from telegram.ext import BaseHandler, CommandHandler, filters

from domain import campaign_chat, delivery, ledger, notices, reports
from handlers.context import AppContext, address_of, run
from handlers.sheets import reports_xlsx
from locales import catalog_for

PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE


async def notice(update: Update, context: AppContext) -> None:
    """/notice: township staff start writing a notice."""
    await run(update, context, notices.start)


async def campaign(update: Update, context: AppContext) -> None:
    """/campaign: township staff define a campaign in chat (the same fields as the file)."""
    await run(update, context, campaign_chat.start)


async def report(update: Update, context: AppContext) -> None:
    """/report: township staff get the compiled progress table, and the .xlsx of every period."""
    await run(update, context, reports.show)
    data = await run(update, context, reports.export_for)
    if data is not None and data.reports:
        catalog = catalog_for(None, context.services.default_locale)
        # A file asked for by the person who reads it, sent at once rather than through the outbox.
        await context.bot.send_document(
            int(address_of(update)), InputFile(reports_xlsx(data, catalog), filename="reports.xlsx")
        )


async def problem(update: Update, context: AppContext) -> None:
    """/problem: a cadre adds a problem to the ledger (问题台账)."""
    await run(update, context, ledger.start)


async def problems(update: Update, context: AppContext) -> None:
    """/problems: a cadre's open problems (each with 销号); township staff: the whole ledger."""
    await run(update, context, ledger.show)


async def failed(update: Update, context: AppContext) -> None:
    """/failed: township staff see the messages that could not be delivered."""
    await run(update, context, delivery.show_failed)


def commands() -> list[BaseHandler[Any, Any, Any]]:
    """The commands of township work (composed with the chat's in bot/)."""
    return [
        CommandHandler("notice", notice, filters=PRIVATE),
        CommandHandler("campaign", campaign, filters=PRIVATE),
        CommandHandler("report", report, filters=PRIVATE),
        CommandHandler("problem", problem, filters=PRIVATE),
        CommandHandler("problems", problems, filters=PRIVATE),
        CommandHandler("failed", failed, filters=PRIVATE),
    ]
