"""Telegram handlers of notices, campaign reminders, progress reports and the problem ledger.

They run in group -1, before the skeleton's handlers: a handler that took the update stops it
(ApplicationHandlerStop); one that finds nothing of its own (no draft notice open) returns and
lets the skeleton's handlers answer as before.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar, cast

from telegram import InputFile, Update
from telegram.error import TelegramError
from telegram.ext import (
    ApplicationHandlerStop,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from domain import campaign_chat, campaigns, delivery, ledger, notices, reports
from domain.messages import Outcome
from domain.model import Channel
from domain.notification_ports import NotificationsUnitOfWork
from domain.ports import Clock
from handlers.context import AppContext
from handlers.render import value
from handlers.sheets import reports_xlsx
from locales import catalog_for, gettext

log = logging.getLogger(__name__)
T = TypeVar("T")
GROUP = -1
PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
BUTTONS = r"^(n(ack|stat|rem|aud|vil|when|send|cancel)|cdone|cvil|crhy|crem|ccfm|rfill|lvil|lclose):"
TG = Channel.TELEGRAM


def _address(update: Update) -> str:
    assert update.effective_chat is not None
    return str(update.effective_chat.id)


async def _run(context: AppContext, use_case: Callable[[NotificationsUnitOfWork, Clock], Awaitable[T]]) -> T:
    """Run a use case in its own transaction, then wake the sender for what it queued."""
    services = context.services
    async with services.uow() as uow:
        result = await use_case(cast(NotificationsUnitOfWork, uow), services.clock)
        await uow.commit()
    services.wake_sender()
    return result


async def notice(update: Update, context: AppContext) -> None:
    """/notice: township staff start writing a notice."""
    address = _address(update)
    await _run(context, lambda uow, clock: notices.start(uow, clock, TG, address))
    raise ApplicationHandlerStop


async def cancel(update: Update, context: AppContext) -> None:
    """/cancel while drafting a notice drops the draft; otherwise the skeleton's /cancel runs."""
    address = _address(update)

    async def either(uow: NotificationsUnitOfWork, clock: Clock) -> bool:
        return (
            await notices.cancel(uow, clock, TG, address)
            or await campaign_chat.cancel(uow, clock, TG, address)
            or await reports.cancel(uow, clock, TG, address)
            or await ledger.cancel(uow, clock, TG, address)
        )

    if await _run(context, either):
        raise ApplicationHandlerStop


async def text(update: Update, context: AppContext) -> None:
    """Typed text that answers an open notice draft."""
    assert update.effective_message is not None
    raw = update.effective_message.text or ""
    address = _address(update)

    async def either(uow: NotificationsUnitOfWork, clock: Clock) -> bool:
        return (
            await notices.on_text(uow, clock, TG, address, raw)
            or await campaign_chat.on_text(uow, clock, TG, address, raw)
            or await reports.on_text(uow, clock, TG, address, raw)
            or await ledger.on_text(uow, clock, TG, address, raw)
        )

    if await _run(context, either):
        raise ApplicationHandlerStop


async def other(update: Update, context: AppContext) -> None:
    """A photo, file or sticker sent in the middle of a notice, a report or a ledger entry."""
    address = _address(update)
    message = update.effective_message
    media: dict[str, str] | None = None
    if message is not None and message.photo:
        media = {"kind": "photo", "file_id": message.photo[-1].file_id}
    elif message is not None and message.document is not None:
        media = {"kind": "document", "file_id": message.document.file_id}
    caption = message.caption if message is not None else None

    async def either(uow: NotificationsUnitOfWork, clock: Clock) -> bool:
        return (
            await notices.on_other(uow, clock, TG, address, media, caption)
            or await campaign_chat.on_other(uow, clock, TG, address)
            or await reports.on_other(uow, clock, TG, address)
            or await ledger.on_other(uow, clock, TG, address)
        )

    if await _run(context, either):
        raise ApplicationHandlerStop


async def campaign(update: Update, context: AppContext) -> None:
    """/campaign: township staff define a campaign in chat (the same fields as the file)."""
    address = _address(update)
    await _run(context, lambda uow, clock: campaign_chat.start(uow, clock, TG, address))
    raise ApplicationHandlerStop


async def report(update: Update, context: AppContext) -> None:
    """/report: township staff get the compiled progress table, and the .xlsx of every period."""
    address = _address(update)
    await _run(context, lambda uow, clock: reports.show(uow, clock, TG, address))
    data = await _run(context, lambda uow, clock: reports.export_for(uow, clock, TG, address))
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
    address = _address(update)
    await _run(context, lambda uow, clock: ledger.start(uow, clock, TG, address))
    raise ApplicationHandlerStop


async def problems(update: Update, context: AppContext) -> None:
    """/problems: a cadre's open problems (each with 销号); township staff: the whole ledger."""
    address = _address(update)
    await _run(context, lambda uow, clock: ledger.show(uow, clock, TG, address))
    raise ApplicationHandlerStop


async def failed(update: Update, context: AppContext) -> None:
    """/failed: township staff see the messages that could not be delivered."""
    address = _address(update)
    await _run(context, lambda uow, clock: delivery.show_failed(uow, clock, TG, address))
    raise ApplicationHandlerStop


UseCase = Callable[[NotificationsUnitOfWork, Clock], Awaitable[Outcome]]


def button_use_case(data: str, address: str) -> UseCase | None:
    """The use case a notice button asks for, or None when its data is malformed."""
    name, _, rest = data.partition(":")
    parts = rest.split(":")
    try:
        notice_id = int(parts[0])  # or the phase (cdone), or the campaign (rfill)
        if name == "lvil" and len(parts) == 1:
            return lambda uow, clock: ledger.choose_village(uow, clock, TG, address, notice_id)
        if name == "lclose" and len(parts) == 1:
            return lambda uow, clock: ledger.close(uow, clock, TG, address, notice_id)
        if name == "rfill" and len(parts) == 3:
            period = datetime.strptime(parts[1], "%Y%m%d").date()
            village = int(parts[2])
            return lambda uow, clock: reports.start(uow, clock, TG, address, notice_id, period, village)
        if name == "cvil" and len(parts) == 2:
            code = parts[1]
            return lambda uow, clock: campaign_chat.choose_village(uow, clock, TG, address, notice_id, code)
        if name == "crhy" and len(parts) == 2:
            kind = parts[1]
            return lambda uow, clock: campaign_chat.choose_rhythm(uow, clock, TG, address, notice_id, kind)
        if name == "crem" and len(parts) == 2 and parts[1] == "default":
            return lambda uow, clock: campaign_chat.default_reminders(uow, clock, TG, address, notice_id)
        if name == "ccfm" and len(parts) == 2:
            answer = parts[1]
            return lambda uow, clock: campaign_chat.confirm(uow, clock, TG, address, notice_id, answer)
        if name == "cdone" and len(parts) == 2:
            village_id = int(parts[1])
            return lambda uow, clock: campaigns.mark_done(uow, clock, TG, address, notice_id, village_id)
        if name == "naud" and len(parts) == 2:
            return lambda uow, clock: notices.choose_audience(uow, clock, TG, address, notice_id, parts[1])
        if name == "nvil" and len(parts) == 2:
            return lambda uow, clock: notices.toggle_village(uow, clock, TG, address, notice_id, parts[1])
        if name == "nwhen" and len(parts) == 2:
            return lambda uow, clock: notices.choose_when(uow, clock, TG, address, notice_id, parts[1])
        simple = {
            "nack": notices.acknowledge,
            "nstat": notices.show_status,
            "nrem": notices.remind,
            "nsend": notices.confirm,
            "ncancel": notices.cancel_button,
        }
        if name in simple and len(parts) == 1:
            use_case = simple[name]
            return lambda uow, clock: use_case(uow, clock, TG, address, notice_id)
    except ValueError:
        return None
    return None


async def button(update: Update, context: AppContext) -> None:
    """A notice button: run what it asks, answer with a short toast, take used buttons away."""
    query = update.callback_query
    assert query is not None
    use_case = button_use_case(query.data or "", _address(update))
    outcome = (
        Outcome(toast="button.invalid", done=False) if use_case is None else await _run(context, use_case)
    )
    catalog = catalog_for(outcome.locale, context.services.default_locale)
    toast = None
    if outcome.toast:
        params = {k: value(v, catalog) for k, v in outcome.params.items()}
        toast = gettext(catalog, outcome.toast).format(**params)
    await query.answer(toast, show_alert=outcome.alert)
    # A used button is taken away so that it is not pressed twice by mistake.
    if outcome.done and query.message is not None:
        try:
            await query.edit_message_reply_markup(None)
        except TelegramError as exc:
            log.debug("could not remove buttons: %s", exc)
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
        CallbackQueryHandler(button, pattern=BUTTONS),
        MessageHandler(PRIVATE & filters.TEXT & ~filters.COMMAND, text),
        MessageHandler(PRIVATE & ~filters.TEXT & ~filters.StatusUpdate.ALL, other),
    ]
