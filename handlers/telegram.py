"""The Telegram handlers. Each parses an update, runs one use case in a unit of work, and
lets the outbox sender deliver what the use case queued."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, timedelta
from typing import Any, TypeVar

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    CallbackQuery,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from domain import export as export_cases
from domain import household, intake, people, web_intake, work
from domain.actor import Actor
from domain.conversations import router
from domain.dialogue import Kind, Said
from domain.messages import Outcome, Outgoing
from domain.model import Channel, Role
from domain.people import INVITE_PREFIX, ROLE_COMMANDS
from domain.ports import Clock, UnitOfWork
from handlers.buttons import folds, use_case_for
from handlers.context import AppContext, Services, address_of, resolve, run
from handlers.keyboards import render
from handlers.xlsx import cases_workbook
from locales import catalog_for, gettext
from locales.render import value
from qr.payload import PayloadError, is_village_payload, verify_village

log = logging.getLogger(__name__)
T = TypeVar("T")
# Private chats only, and new messages only: an edited old answer must not answer the current step.
PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
TG = Channel.TELEGRAM
PAYLOAD_PROBLEMS = {
    "malformed": "start.bad_payload",
    "forged": "start.bad_payload",
    "expired": "start.expired_payload",
}


async def start_with_payload(update: Update, context: AppContext) -> None:
    """Open a declaration from a scanned village QR code, or redeem a cadre's invite."""
    payload = context.args[0] if context.args else ""
    address = address_of(update)
    if payload.startswith(INVITE_PREFIX):
        token = payload[len(INVITE_PREFIX) :]
        services = context.services
        # An invite binds this chat to a roster person: no stranger is made for it first.
        async with services.uow() as uow:
            outcome = await people.redeem_invite(uow, services.clock, TG, address, token)
            await uow.commit()
        if outcome.done and "role" in outcome.params:
            catalog = catalog_for(outcome.locale, context.services.default_locale)
            await publish_role_menu(context.bot, int(address), outcome.params["role"], catalog)
        return
    code: str | None = None
    batch: str | None = None
    problem: str | None = None
    try:
        if not is_village_payload(payload):
            raise PayloadError("malformed")
        today = context.services.clock.now().date()
        scanned = verify_village(context.services.qr_secret, payload, today)
        code, batch = scanned.village_code, scanned.batch
    except PayloadError as exc:
        # Never log the payload itself: a forged one may carry anything.
        log.info("refused a start payload: %s", exc.reason)
        problem = PAYLOAD_PROBLEMS[exc.reason]

    async def scan_and_start(uow: UnitOfWork, clock: Clock, actor: Actor) -> object:
        # One transaction: its commit marks the update done, so a crash after a first commit of
        # its own would have left the scan counted and the welcome never queued.
        if code is not None:
            await web_intake.record_scan(uow, clock, code, batch, "telegram")
        return await intake.start(uow, clock, actor, village_code=code, problem=problem)

    await run(update, context, scan_and_start)


async def start(update: Update, context: AppContext) -> None:
    """/start without a payload: resume a declaration, or start one by choosing the village."""
    await run(update, context, lambda uow, clock, actor: intake.start(uow, clock, actor, village_code=None))


async def cancel(update: Update, context: AppContext) -> None:
    """/cancel: drop whatever the person was in the middle of."""
    await run(update, context, lambda uow, clock, actor: router.cancel(uow, clock, actor, None))


def _for_sender(
    use_case: Callable[[UnitOfWork, Clock, Actor], Awaitable[object]],
) -> Callable[[Update, AppContext], Coroutine[Any, Any, None]]:
    """A command whose use case needs nothing but who sent it."""

    async def callback(update: Update, context: AppContext) -> None:
        await run(update, context, use_case)

    callback.__doc__ = use_case.__doc__
    return callback


language = _for_sender(people.offer_languages)  # /language


async def show_help(update: Update, context: AppContext) -> None:
    """/help, and any unknown command: what this person can do; staff and cadres also get their
    menu again (their role may have changed with a roster import)."""
    person = await run(update, context, people.show_help)
    if person.role is not Role.FARMER:
        catalog = catalog_for(person.locale, context.services.default_locale)
        await publish_role_menu(context.bot, int(address_of(update)), person.role.value, catalog)


status = _for_sender(household.my_declarations)  # /status, and the 我的申报 button
daibao = _for_sender(intake.start_for_household)  # /daibao: a cadre files for a household (代报)
tasks = _for_sender(work.my_tasks)  # /tasks
overdue = _for_sender(work.overdue)  # /overdue (township)
stats = _for_sender(work.stats)  # /stats (township)


async def case(update: Update, context: AppContext) -> None:
    """/case <receipt>: a case's whole history."""
    receipt = context.args[0] if context.args else ""
    await run(update, context, lambda uow, clock, actor: work.history(uow, clock, actor, receipt))


async def export(update: Update, context: AppContext) -> None:
    """/export [from] [to]: the township's declarations as a spreadsheet, sent in chat.

    Sent straight away rather than through the outbox: the file may hold ID numbers, and a copy
    kept for a later retry would keep them longer than the request needs; if sending fails the
    staff member is told and asks again.
    """
    assert update.effective_chat is not None
    services = context.services
    now = services.clock.now()
    zone = now.tzinfo
    async with services.uow() as uow:
        person = await resolve(uow, services.clock, update)
        catalog = catalog_for(person.locale, services.default_locale)
        try:
            export_cases.may_export(person)
            days = export_cases.period(context.args or [], now.date())
            since, until = days.bounds(zone)
            rows = await export_cases.rows(
                uow, services.protector, township_name=None, since=since, until=until, requester=person
            )
        except export_cases.ExportRefused as exc:
            await update.effective_chat.send_message(gettext(catalog, exc.key).format(**exc.params))
            return
    first, last = days.first, days.last
    document = cases_workbook(rows, export_cases.COLUMNS, catalog, zone or UTC)
    name = f"cases-{first.isoformat()}-{last.isoformat()}.xlsx"
    # The warning to keep the file safe only when it holds full ID numbers (most declarations skip it).
    key = "work.exported_ids" if export_cases.holds_id_numbers(rows) else "work.exported"
    caption = gettext(catalog, key).format(count=len(rows), first=first.isoformat(), last=last.isoformat())
    try:
        await update.effective_chat.send_document(InputFile(document, filename=name), caption=caption)
    except TelegramError:
        log.warning("could not send an export")
        await update.effective_chat.send_message(gettext(catalog, "error.generic"))


async def _say(update: Update, context: AppContext, said: Said) -> None:
    """What the person sent, to their open conversation (the router decides where it goes)."""
    services = context.services
    await run(update, context, lambda uow, clock, actor: router.answer(uow, services, actor, said))


async def text(update: Update, context: AppContext) -> None:
    """Typed text: an answer to the open conversation, or a word for a button."""
    assert update.effective_message is not None
    await _say(update, context, Said.typed(update.effective_message.text or ""))


async def contact(update: Update, context: AppContext) -> None:
    """A shared contact: the phone number of the declaration."""
    assert update.effective_message is not None and update.effective_message.contact is not None
    card = update.effective_message.contact
    # "发送我的手机号" shares the sender's own card; one with another user_id (or none) was forwarded.
    own = update.effective_user is not None and card.user_id == update.effective_user.id
    await _say(update, context, Said(Kind.CONTACT, card.phone_number, own=own))


async def voice(update: Update, context: AppContext) -> None:
    """A voice note (or audio file): a spoken description, or information added later."""
    message = update.effective_message
    assert message is not None
    media = message.voice or message.audio
    assert media is not None
    with warnings.catch_warnings():  # PTB warns that durations become timedelta
        warnings.simplefilter("ignore")
        duration = media.duration
    seconds = int(duration.total_seconds()) if isinstance(duration, timedelta) else int(duration or 0)
    await _say(update, context, Said(Kind.VOICE, ref=media.file_id, seconds=seconds))


async def photo(update: Update, context: AppContext) -> None:
    """A photo (the largest size Telegram offers is kept); its caption, if any, comes with it."""
    message = update.effective_message
    assert message is not None and message.photo
    await _say(update, context, Said(Kind.PHOTO, message.caption or "", ref=message.photo[-1].file_id))


async def other(update: Update, context: AppContext) -> None:
    """A file (a notice's attachment), or a sticker or location: not taken; say what is wanted."""
    message = update.effective_message
    if message is not None and message.document is not None:
        said = Said(Kind.DOCUMENT, message.caption or "", ref=message.document.file_id)
    else:
        said = Said(Kind.OTHER)
    await _say(update, context, said)


def _pressed_label(query: CallbackQuery) -> str | None:
    """The label of the button that was pressed, as the person saw it (for the "✓" line)."""
    message = query.message
    markup = getattr(message, "reply_markup", None)
    if markup is None:
        return None
    for row in markup.inline_keyboard:
        for key in row:
            if key.callback_data == query.data:
                return key.text
    return None


async def button(update: Update, context: AppContext) -> None:
    """An inline button: run what it asks; a forged or stale one gets a polite refusal.

    The pressed message is disarmed (the press took effect) through the outbox, in the same
    transaction as the use case, before anything the use case queued: a failed edit is retried like
    a message and never leaves a screen showing what is not stored. When the use case asked the
    next question, the pressed message becomes that question, led by "✓ <the answer>" (one Bot API
    call a step). A toggle redraws its own keyboard at once, after the commit.
    """
    query = update.callback_query
    assert query is not None
    data = query.data or ""
    services = context.services
    use_case = use_case_for(data, services)
    message = query.message if isinstance(query.message, Message) else None
    queued_redraw = False
    person = None
    if use_case is None:
        outcome = Outcome(toast="button.invalid", done=False)
    else:
        async with services.uow() as uow:
            held = None
            person = await resolve(uow, services.clock, update)
            if message is not None:
                # Queued first, so the keyboard is gone before the next question arrives.
                held = await uow.outbox.hold_press(
                    person.id, message.message_id, at=services.clock.now(), key=f"edit:{update.update_id}"
                )
            outcome = await use_case(uow, services.clock, person)
            if person is not None and held is not None:
                label = _pressed_label(query)
                await uow.outbox.settle_press(
                    person.id,
                    held,
                    keep=outcome.done and outcome.edit is None,
                    ack=f"✓ {label}" if label else None,
                    # A text message becomes the next question ("✓ <answer>" first): one call a
                    # step. A photo's caption keeps its text; only its keyboard goes.
                    text=message is not None and message.text is not None and folds(data),
                )
            if outcome.edit is not None and person is not None and message is not None:
                if await uow.outbox.editing(person.id, message.message_id):
                    # An earlier redraw of it is being retried: this one goes behind it, in order.
                    await _queue_redraw(uow, services, person.id, message.message_id, outcome.edit, update)
                    queued_redraw = True
            await uow.commit()
    catalog = catalog_for(outcome.locale, services.default_locale)
    if outcome.edit is not None and message is not None and not queued_redraw:
        # A toggle redraws its own keyboard at once, before the press is answered, so the next
        # press already sees it (what it shows was committed above; nothing shows what is not).
        body, markup = render(outcome.edit, catalog)
        inline = markup if isinstance(markup, InlineKeyboardMarkup) else None
        try:
            await query.edit_message_text(body, reply_markup=inline)
        except TelegramError as exc:
            # Never a screen showing what is not stored: the redraw goes through the outbox and is
            # retried there (this chat's next update waits for this one, so the order holds).
            log.info("could not redraw the pressed message (%s); queued", type(exc).__name__)
            if person is not None:
                async with services.uow() as uow:
                    await _queue_redraw(uow, services, person.id, message.message_id, outcome.edit, update)
                    await uow.commit()
    toast = None
    if outcome.toast:
        params = {k: value(v, catalog) for k, v in outcome.params.items()}
        toast = gettext(catalog, outcome.toast).format(**params)
    # Not rate-limited and not awaited: the chat's next update need not wait for it.
    context.application.create_task(_answer(query, toast, outcome.alert), update=update)


async def _queue_redraw(
    uow: UnitOfWork, services: Services, person_id: int, message_id: int, edit: Outgoing, update: Update
) -> None:
    at = services.clock.now()
    await uow.outbox.redraw(person_id, message_id, edit, at=at, key=f"redraw:{update.update_id}")


async def _answer(query: CallbackQuery, toast: str | None, alert: bool) -> None:
    try:
        await query.answer(toast, show_alert=alert)
    except TelegramError as exc:
        log.info("could not answer a button press: %s", type(exc).__name__)


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


def commands() -> list[BaseHandler[Any, Any, Any]]:
    """The chat's commands. A deep-linked /start carries a payload: it is tried before the plain one."""
    return [
        CommandHandler("start", start_with_payload, filters=PRIVATE & filters.Regex(r"^/start\s+\S")),
        CommandHandler("start", start, filters=PRIVATE),
        CommandHandler("cancel", cancel, filters=PRIVATE),
        CommandHandler("language", language, filters=PRIVATE),
        CommandHandler("help", show_help, filters=PRIVATE),
        CommandHandler("status", status, filters=PRIVATE),
        CommandHandler("daibao", daibao, filters=PRIVATE),
        CommandHandler("tasks", tasks, filters=PRIVATE),
        CommandHandler("overdue", overdue, filters=PRIVATE),
        CommandHandler("stats", stats, filters=PRIVATE),
        CommandHandler("case", case, filters=PRIVATE),
        CommandHandler("export", export, filters=PRIVATE),
    ]


def messages() -> list[BaseHandler[Any, Any, Any]]:
    """Buttons, and every message that is not a command; after all the commands (any command left
    over gets the help)."""
    return [
        CallbackQueryHandler(button),
        MessageHandler(PRIVATE & filters.CONTACT, contact),
        MessageHandler(PRIVATE & (filters.VOICE | filters.AUDIO), voice),
        MessageHandler(PRIVATE & filters.PHOTO, photo),
        MessageHandler(PRIVATE & filters.TEXT & ~filters.COMMAND, text),
        MessageHandler(PRIVATE & filters.COMMAND, show_help),
        MessageHandler(PRIVATE & ~filters.StatusUpdate.ALL, other),
    ]


async def publish_commands(application: Application, default_locale: str) -> None:
    """Set the default command menu (a farmer's): Chinese, and English for English clients."""
    for catalog, language_code in (("zh_Hans", None), ("en", "en")):
        if language_code is None:
            catalog = catalog_for(None, default_locale)
        commands = [BotCommand(name, gettext(catalog, f"command.{name}")) for name in ROLE_COMMANDS["farmer"]]
        try:
            await application.bot.set_my_commands(commands, language_code=language_code)
        except TelegramError as exc:
            # The menu is a convenience; a Bot API server without it must not stop the service.
            log.warning("could not set the command menu: %s", exc)


async def publish_role_menu(bot: Bot, chat_id: int, role: str, catalog: str) -> None:
    """Give a cadre's or township staff member's chat the commands of their role."""
    names = ROLE_COMMANDS.get(role, ROLE_COMMANDS["farmer"])
    commands = [BotCommand(name, gettext(catalog, f"command.{name}")) for name in names]
    try:
        await bot.set_my_commands(commands, scope=BotCommandScopeChat(chat_id))
    except TelegramError as exc:
        log.warning("could not set the command menu of a chat: %s", exc)
