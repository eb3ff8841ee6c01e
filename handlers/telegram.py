"""The Telegram handlers. Each parses an update, runs one use case in a unit of work, and
lets the outbox sender deliver what the use case queued."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from telegram import BotCommand, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from domain import cases, dialog, intake, people
from domain.messages import Outcome
from domain.model import Channel, Verdict
from domain.people import INVITE_PREFIX
from domain.ports import Clock, UnitOfWork
from handlers import notifications
from handlers.context import AppContext
from handlers.render import COMMANDS, value
from locales import catalog_for, gettext
from qr.payload import PayloadError, is_village_payload, verify_village

log = logging.getLogger(__name__)
T = TypeVar("T")
# Private chats only, and new messages only: an edited old answer must not answer the current step.
PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
PAYLOAD_PROBLEMS = {
    "malformed": "start.bad_payload",
    "forged": "start.bad_payload",
    "expired": "start.expired_payload",
}


def _address(update: Update) -> str:
    assert update.effective_chat is not None
    return str(update.effective_chat.id)


async def _run(context: AppContext, use_case: Callable[[UnitOfWork, Clock], Awaitable[T]]) -> T:
    """Run a use case in its own transaction, then wake the sender for what it queued."""
    services = context.services
    async with services.uow() as uow:
        result = await use_case(uow, services.clock)
        await uow.commit()
    services.wake_sender()
    return result


async def start_with_payload(update: Update, context: AppContext) -> None:
    """Open a declaration from a scanned village QR code, or redeem a cadre's invite."""
    payload = context.args[0] if context.args else ""
    address = _address(update)
    if payload.startswith(INVITE_PREFIX):
        token = payload[len(INVITE_PREFIX) :]
        await _run(
            context, lambda uow, clock: people.redeem_invite(uow, clock, Channel.TELEGRAM, address, token)
        )
        return
    code: str | None = None
    problem: str | None = None
    try:
        if not is_village_payload(payload):
            raise PayloadError("malformed")
        today = context.services.clock.now().date()
        code = verify_village(context.services.qr_secret, payload, today).village_code
    except PayloadError as exc:
        # Never log the payload itself: a forged one may carry anything.
        log.info("refused a start payload: %s", exc.reason)
        problem = PAYLOAD_PROBLEMS[exc.reason]
    await _run(
        context,
        lambda uow, clock: intake.start(
            uow, clock, Channel.TELEGRAM, address, village_code=code, problem=problem
        ),
    )


async def start(update: Update, context: AppContext) -> None:
    """/start without a payload: resume a declaration, or explain how to get the QR code."""
    address = _address(update)
    await _run(
        context, lambda uow, clock: intake.start(uow, clock, Channel.TELEGRAM, address, village_code=None)
    )


async def cancel(update: Update, context: AppContext) -> None:
    """/cancel: drop whatever the person was filling in."""
    address = _address(update)
    await _run(context, lambda uow, clock: intake.cancel(uow, clock, Channel.TELEGRAM, address, None))


async def language(update: Update, context: AppContext) -> None:
    """/language: offer the languages."""
    address = _address(update)
    await _run(context, lambda uow, clock: people.offer_languages(uow, clock, Channel.TELEGRAM, address))


async def show_help(update: Update, context: AppContext) -> None:
    """/help: what this person can do here."""
    address = _address(update)
    await _run(context, lambda uow, clock: people.show_help(uow, clock, Channel.TELEGRAM, address))


async def text(update: Update, context: AppContext) -> None:
    """Typed text: an answer to the open conversation."""
    assert update.effective_message is not None
    raw = update.effective_message.text or ""
    address = _address(update)
    await _run(context, lambda uow, clock: dialog.on_text(uow, clock, Channel.TELEGRAM, address, raw))


async def contact(update: Update, context: AppContext) -> None:
    """A shared contact: the phone number of the declaration."""
    assert update.effective_message is not None and update.effective_message.contact is not None
    number = update.effective_message.contact.phone_number
    address = _address(update)
    await _run(context, lambda uow, clock: dialog.on_contact(uow, clock, Channel.TELEGRAM, address, number))


async def other(update: Update, context: AppContext) -> None:
    """Stickers, photos, voice notes, files: not taken at this step; say what is wanted."""
    address = _address(update)
    await _run(context, lambda uow, clock: dialog.on_other(uow, clock, Channel.TELEGRAM, address))


def _button_use_case(data: str, address: str) -> Callable[[UnitOfWork, Clock], Awaitable[Outcome]] | None:
    """The use case a button's callback data asks for, or None when the data is not ours."""
    name, _, rest = data.partition(":")
    parts = rest.split(":")
    tg = Channel.TELEGRAM
    try:
        if name == "risk" and len(parts) == 2:
            conv, code = int(parts[0]), parts[1]
            return lambda uow, clock: intake.choose_risk(uow, clock, tg, address, conv, code)
        if name in ("confirm", "restart", "cancel") and len(parts) == 1:
            conv = int(parts[0])
            use_case = {"confirm": intake.confirm, "restart": intake.restart, "cancel": intake.cancel}[name]
            return lambda uow, clock: use_case(uow, clock, tg, address, conv)
        if name == "ack" and len(parts) == 1:
            task = int(parts[0])
            return lambda uow, clock: cases.acknowledge(uow, clock, tg, address, task)
        if name == "verdict" and len(parts) == 2:
            task, verdict = int(parts[0]), Verdict(parts[1])
            return lambda uow, clock: cases.choose_verdict(uow, clock, tg, address, task, verdict)
        if name == "lang" and len(parts) == 1:
            locale = parts[0]
            return lambda uow, clock: people.set_language(uow, clock, tg, address, locale)
    except ValueError:
        return None
    return None


async def button(update: Update, context: AppContext) -> None:
    """An inline button: run what it asks; a forged or stale one gets a polite refusal."""
    query = update.callback_query
    assert query is not None
    use_case = _button_use_case(query.data or "", _address(update))
    if use_case is None:
        outcome = Outcome(toast="button.invalid", done=False)
    else:
        outcome = await _run(context, use_case)
    catalog = catalog_for(outcome.locale, context.services.default_locale)
    toast = None
    if outcome.toast:
        params = {k: value(v, catalog) for k, v in outcome.params.items()}
        toast = gettext(catalog, outcome.toast).format(**params)
    await query.answer(toast, show_alert=outcome.alert)
    if outcome.done and query.message is not None:
        # The press took effect: take the buttons away so it cannot be pressed again by mistake.
        try:
            await query.edit_message_reply_markup(None)
        except TelegramError as exc:
            log.debug("could not remove buttons: %s", exc)


async def on_error(update: object, context: AppContext) -> None:
    """Log the failure (without message content) and apologise to the person."""
    log.error("handler failed: %s", type(context.error).__name__, exc_info=context.error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    catalog = catalog_for(None, context.services.default_locale)
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(gettext(catalog, "error.generic"), show_alert=True)
        else:
            await context.bot.send_message(update.effective_chat.id, gettext(catalog, "error.generic"))
    except TelegramError:
        log.warning("could not apologise for the failure")


def handlers() -> list[BaseHandler[Any, Any, Any]]:
    """All handlers, in the order they must be tried."""
    return [
        # A deep-linked /start carries a payload; it must be tried before the plain /start.
        CommandHandler("start", start_with_payload, filters=PRIVATE & filters.Regex(r"^/start\s+\S")),
        CommandHandler("start", start, filters=PRIVATE),
        CommandHandler("cancel", cancel, filters=PRIVATE),
        CommandHandler("language", language, filters=PRIVATE),
        CommandHandler("help", show_help, filters=PRIVATE),
        CallbackQueryHandler(button),
        MessageHandler(PRIVATE & filters.CONTACT, contact),
        MessageHandler(PRIVATE & filters.TEXT & ~filters.COMMAND, text),
        MessageHandler(PRIVATE & filters.COMMAND, show_help),
        MessageHandler(PRIVATE & ~filters.StatusUpdate.ALL, other),
    ]


def register(application: Application) -> None:
    """Add every handler and the error handler to the application."""
    application.add_handlers(handlers())
    application.add_handlers(notifications.handlers(), group=notifications.GROUP)
    application.add_error_handler(on_error)


async def publish_commands(application: Application, default_locale: str) -> None:
    """Set the command menu: Chinese by default, English for English Telegram clients."""
    for catalog, language_code in (("zh_Hans", None), ("en", "en")):
        if language_code is None:
            catalog = catalog_for(None, default_locale)
        commands = [BotCommand(name, gettext(catalog, f"command.{name}")) for name in COMMANDS]
        try:
            await application.bot.set_my_commands(commands, language_code=language_code)
        except TelegramError as exc:
            # The menu is a convenience; a Bot API server without it must not stop the service.
            log.warning("could not set the command menu: %s", exc)
