"""Tests of the Bot API emulator, driven by a real python-telegram-bot Application."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.emulator import BotAPIEmulator, EmuUser

pytestmark = pytest.mark.asyncio

TOKEN = "123456:TEST-TOKEN"


@pytest_asyncio.fixture
async def emu() -> AsyncIterator[BotAPIEmulator]:
    """A started emulator, stopped after the test."""
    async with BotAPIEmulator(token=TOKEN, bot_username="fanghui_test_bot") as emulator:
        yield emulator


@pytest.fixture
def alice(emu: BotAPIEmulator) -> EmuUser:
    """A registered user with a private chat."""
    return emu.user(1001, "Alice", language_code="zh-hans")


@contextlib.asynccontextmanager
async def running_app(
    emu: BotAPIEmulator,
    *handlers: BaseHandler[Any, Any, Any],
    rate_limiter: AIORateLimiter | None = None,
    read_timeout: float | None = None,
) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    """Run a polling PTB Application against the emulator and check it stops promptly."""
    builder = ApplicationBuilder().token(TOKEN).base_url(emu.base_url)
    builder = builder.base_file_url(emu.base_file_url)
    if rate_limiter is not None:
        builder = builder.rate_limiter(rate_limiter)  # type: ignore[arg-type]
    if read_timeout is not None:
        builder = builder.read_timeout(read_timeout)
    app = builder.build()
    for handler in handlers:
        app.add_handler(handler)
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        yield app
    finally:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
        assert loop.time() - started < 3.0, "PTB application did not stop promptly"


async def test_echo_round_trip(emu: BotAPIEmulator, alice: EmuUser) -> None:
    """A text message reaches the handler and the reply is recorded with shared ids."""

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(f"echo: {update.effective_message.text}")

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None and update.effective_user is not None
        user = update.effective_user
        await update.effective_message.reply_text(
            f"<b>hi</b> {user.first_name} {user.language_code} {' '.join(context.args or [])}",
            parse_mode="HTML",
        )

    async with running_app(
        emu,
        CommandHandler("start", start),
        MessageHandler(filters.TEXT & ~filters.COMMAND, echo),
    ) as app:
        assert app.bot.username == "fanghui_test_bot"
        assert app.bot.id == 123456

        sent = await emu.send_text(alice, "hello")
        reply = await emu.next_message(alice, timeout=5)
        assert reply.text == "echo: hello"
        assert sent.message_id == 1 and reply.message_id == 2
        assert reply.chat == {"id": 1001, "type": "private", "first_name": "Alice"}
        assert reply.sender["is_bot"] is True

        await emu.send_command(alice, "start", "payload")
        greeting = await emu.next_message(alice, timeout=5)
        assert greeting.text == "hi Alice zh-hans payload"
        assert greeting.entities == [{"type": "bold", "offset": 0, "length": 2}]
        assert greeting.message_id == 4
        await emu.no_message(alice, within=0.3)

    assert [m for m, _ in emu.calls][:2] == ["getMe", "deleteWebhook"]
    assert emu.calls_of("sendMessage")[0]["chat_id"] == 1001
    assert emu.pending_updates == 0


async def test_callback_query_round_trip(emu: BotAPIEmulator, alice: EmuUser) -> None:
    """Pressing an inline button yields answerCallbackQuery and editMessageText."""

    async def menu(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        keyboard = InlineKeyboardMarkup(
            [
                [InlineKeyboardButton("Yes", callback_data="choice:yes")],
                [InlineKeyboardButton("No", callback_data="choice:no")],
            ]
        )
        await update.effective_message.reply_text("Continue?", reply_markup=keyboard)

    async def on_choice(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None
        await query.answer(f"got {query.data}")
        await query.edit_message_text(f"You chose {query.data.split(':')[1]}")

    async with running_app(
        emu, CommandHandler("menu", menu), CallbackQueryHandler(on_choice, pattern="^choice:")
    ):
        await emu.send_command(alice, "menu")
        msg = await emu.next_message(alice, timeout=5)
        assert msg.text == "Continue?"
        assert msg.button_texts == ["Yes", "No"]

        with pytest.raises(AssertionError, match="available: \\['Yes', 'No'\\]"):
            await emu.press(alice, msg, "Maybe")

        query_id = await emu.press(alice, msg, "Yes")
        answer = await emu.wait_for_answer(query_id, timeout=5)
        assert answer["text"] == "got choice:yes"
        assert answer["show_alert"] is False
        assert emu.callback_answers == [answer]

        edited = await emu.next_edit(alice, timeout=5)
        assert edited.text == "You chose yes"
        assert msg.text == "You chose yes" and msg.edited
        assert msg.reply_markup is None, "editMessageText without markup drops the keyboard"
        assert msg.history[0]["text"] == "Continue?"
        assert emu.messages(alice) == [msg]

        with pytest.raises(AssertionError, match="no inline button 'No'"):
            await emu.press(alice, msg, "No")
        await emu.no_message(alice, within=0.2)


async def test_contact_request_and_contact_message(emu: BotAPIEmulator, alice: EmuUser) -> None:
    """The bot asks for a contact with a reply keyboard and receives the user's contact."""

    async def ask(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        markup = ReplyKeyboardMarkup(
            [[KeyboardButton("Share phone", request_contact=True)]], one_time_keyboard=True
        )
        await update.effective_message.reply_text("Please share", reply_markup=markup)

    async def got_contact(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None and message.contact is not None
        own = message.contact.user_id == message.from_user.id  # type: ignore[union-attr]
        await message.reply_text(f"{message.contact.phone_number} own={own}")

    async with running_app(emu, CommandHandler("start", ask), MessageHandler(filters.CONTACT, got_contact)):
        await emu.send_command(alice, "start")
        prompt = await emu.next_message(alice, timeout=5)
        assert prompt.requests_contact
        assert prompt.keyboard == [["Share phone"]]
        assert "reply_markup" not in prompt.to_api(), "Telegram echoes only inline keyboards"
        assert emu.reply_keyboard(alice) is not None

        await emu.send_contact(alice, "+8613800138000")
        reply = await emu.next_message(alice, timeout=5)
        assert reply.text == "+8613800138000 own=True"

        alice.phone_number = "+8613900000000"
        await emu.tap_keyboard(alice, "Share phone")
        reply = await emu.next_message(alice, timeout=5)
        assert reply.text == "+8613900000000 own=True"


async def test_photo_download_and_document_upload(emu: BotAPIEmulator, alice: EmuUser) -> None:
    """A user photo is downloaded via getFile and the bot uploads a document back."""
    payload = bytes(range(256)) * 40

    async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None and message.photo
        file = await message.photo[-1].get_file()
        data = bytes(await file.download_as_bytearray())
        digest = hashlib.sha256(data).hexdigest()[:16]
        await message.reply_document(data, filename="back.bin", caption=f"{len(data)} {digest}")

    async with running_app(emu, MessageHandler(filters.PHOTO, on_photo)):
        sent = await emu.send_photo(alice, payload, caption="look")
        reply = await emu.next_message(alice, timeout=5)
        assert reply.caption == f"{len(payload)} {hashlib.sha256(payload).hexdigest()[:16]}"
        assert reply.kind == "document"
        assert reply.file_data == payload
        assert reply.content["document"]["file_name"] == "back.bin"
        assert sent.content["photo"][-1]["file_size"] == len(payload)

    assert [m for m, _ in emu.calls if m == "getFile"] == ["getFile"]
    file_id = sent.content["photo"][-1]["file_id"]
    assert emu.file_bytes(file_id) == payload


async def test_length_limits_count_utf16_code_units(emu: BotAPIEmulator, alice: EmuUser) -> None:
    """4,096 for a text, 1,024 for a caption, in UTF-16 units as Telegram counts: 汉 one, 😀 two."""
    async with running_app(emu) as app:
        bot = app.bot
        await bot.send_message(alice.id, "汉" * 4096)
        await bot.send_message(alice.id, "😀" * 2048)
        with pytest.raises(BadRequest, match=r"(?i)message is too long"):
            await bot.send_message(alice.id, "😀" * 2049)
        with pytest.raises(BadRequest, match=r"(?i)message is too long"):
            await bot.send_message(alice.id, "汉" * 4095 + "😀")
        photo = bytes(range(256))
        await bot.send_photo(alice.id, photo, caption="😀" * 512)
        with pytest.raises(BadRequest, match=r"(?i)message caption is too long"):
            await bot.send_photo(alice.id, photo, caption="😀" * 513)
        with pytest.raises(BadRequest, match=r"(?i)message caption is too long"):
            await bot.send_document(alice.id, photo, caption="汉" * 1025)
    assert [m.kind for m in emu.messages(alice.id)] == ["text", "text", "photo"]


async def test_wrong_token_and_unknown_method(emu: BotAPIEmulator) -> None:
    """A wrong token is 401 Unauthorized, an unknown method 404 Not Found."""
    bot = Bot("654321:WRONG", base_url=emu.base_url, base_file_url=emu.base_file_url)
    with pytest.raises(InvalidToken, match="rejected by the server"):
        await bot.initialize()
    await bot.shutdown()

    async with aiohttp.ClientSession() as session:
        async with session.post(f"{emu.base_url}654321:WRONG/getMe") as resp:
            assert resp.status == 401
            assert await resp.json() == {
                "ok": False,
                "error_code": 401,
                "description": "Unauthorized",
            }
        async with session.post(f"{emu.base_url}{TOKEN}/fooBar") as resp:
            assert resp.status == 404
            assert (await resp.json())["description"] == "Not Found"
        async with session.post(
            f"{emu.base_url}{TOKEN}/getMe", json={}
        ) as resp:  # JSON bodies are accepted too
            assert (await resp.json())["result"]["username"] == "fanghui_test_bot"
    assert [m for m, _ in emu.calls] == ["getMe"]


async def test_injected_faults(emu: BotAPIEmulator, alice: EmuUser) -> None:
    """fail_next produces RetryAfter, server errors and client timeouts."""
    async with running_app(emu, read_timeout=0.5) as app:
        emu.fail_next("sendMessage", status=429, retry_after=2)
        with pytest.raises(RetryAfter) as excinfo:
            await app.bot.send_message(alice.id, "first")
        assert excinfo.value._retry_after == dtm.timedelta(seconds=2)
        assert emu.errors[-1][2:] == (429, "Too Many Requests: retry after 2")
        assert emu.messages(alice) == []

        await app.bot.send_message(alice.id, "second")
        assert [m.text for m in emu.messages(alice)] == ["second"]

        emu.fail_next("sendMessage", status=500, times=2)
        for _ in range(2):
            with pytest.raises(NetworkError, match="Internal Server Error"):
                await app.bot.send_message(alice.id, "x")
        emu.fail_next("sendMessage", status=502)
        with pytest.raises(NetworkError, match="Bad Gateway"):
            await app.bot.send_message(alice.id, "x")

        emu.fail_next("sendMessage", timeout=True, hang=1.0)
        with pytest.raises(TimedOut):
            await app.bot.send_message(alice.id, "late")
        # the call was executed: the user got it, only the answer was lost
        assert [m.text for m in emu.messages(alice)] == ["second", "late"]


async def test_enforce_limits_without_rate_limiter(emu: BotAPIEmulator, alice: EmuUser) -> None:
    """Three back-to-back messages to one private chat: the 2nd and 3rd get 429."""
    emu.enforce_limits = True
    async with running_app(emu) as app:
        results: list[object] = []
        for i in range(3):
            try:
                results.append(await app.bot.send_message(alice.id, f"n{i}"))
            except RetryAfter as exc:
                results.append(exc)
    assert not isinstance(results[0], Exception)
    assert all(isinstance(r, RetryAfter) for r in results[1:])
    assert all(isinstance(r, RetryAfter) and r._retry_after == dtm.timedelta(seconds=1) for r in results[1:])
    assert emu.flood_errors == 2
    assert [m.text for m in emu.messages(alice)] == ["n0"]


async def test_enforce_limits_with_aio_rate_limiter(emu: BotAPIEmulator, alice: EmuUser) -> None:
    """AIORateLimiter retries after the emulator's retry_after and both messages arrive."""
    emu.enforce_limits = True
    async with running_app(emu, rate_limiter=AIORateLimiter(max_retries=2)) as app:
        await app.bot.send_message(alice.id, "one")
        await app.bot.send_message(alice.id, "two")
    assert [m.text for m in emu.messages(alice)] == ["one", "two"]
    assert emu.flood_errors == 1


async def test_blocked_user_and_bad_requests(emu: BotAPIEmulator, alice: EmuUser) -> None:
    """Forbidden for blocked users, and Telegram's 400s for common mistakes."""
    async with running_app(emu) as app:
        bot = app.bot
        emu.block(alice)
        with pytest.raises(Forbidden, match="bot was blocked by the user"):
            await bot.send_message(alice.id, "hi")
        emu.unblock(alice)
        msg = await bot.send_message(alice.id, "hi")

        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await bot.send_message(999999, "hi")
        with pytest.raises(BadRequest, match=r"(?i)message is too long"):
            await bot.send_message(alice.id, "x" * 4097)
        long_data = InlineKeyboardMarkup([[InlineKeyboardButton("b", callback_data="x" * 65)]])
        with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
            await bot.send_message(alice.id, "hi", reply_markup=long_data)
        with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
            await bot.edit_message_text("new", chat_id=alice.id, message_id=777)
        with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
            await bot.edit_message_text("hi", chat_id=alice.id, message_id=msg.message_id)
        with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
            await bot.send_message(alice.id, "1 < 2", parse_mode="HTML")
        with pytest.raises(BadRequest, match=r"(?i)reserved"):
            await bot.send_message(alice.id, "v1.2", parse_mode="MarkdownV2")

        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="ok")]])
        edited = await bot.edit_message_reply_markup(
            chat_id=alice.id, message_id=msg.message_id, reply_markup=keyboard
        )
        assert isinstance(edited, type(msg)) and edited.reply_markup == keyboard
        assert emu.messages(alice)[0].button_texts == ["ok"]
        assert await bot.delete_message(alice.id, msg.message_id)
        assert emu.messages(alice) == []
        assert emu.messages(alice, include_deleted=True)[0].deleted

        query_id = await emu.press_data(alice, 12345, "stale:data")
        await emu.wait_until(lambda: emu.pending_updates == 0, 5, "update fetched")
        with pytest.raises(BadRequest, match=r"(?i)query is too old"):
            await bot.answer_callback_query("no-such-query")
        assert await bot.answer_callback_query(query_id, text="expired", show_alert=True)
        assert emu.answer_for(query_id) == {
            "callback_query_id": query_id,
            "text": "expired",
            "show_alert": True,
        }

        assert await bot.set_my_commands([("start", "Start"), ("help", "Help")])
        assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]
        assert emu.my_commands()[1] == {"command": "help", "description": "Help"}
        assert await bot.send_chat_action(alice.id, "typing")
        assert emu.chat_actions == [(alice.id, "typing")]
    assert "bot was blocked by the user" in emu.transcript(alice)


async def test_long_poll_wakes_and_is_released_on_stop(alice: EmuUser, emu: BotAPIEmulator) -> None:
    """getUpdates returns as soon as an update is queued, and pending polls end on stop."""
    loop = asyncio.get_running_loop()
    url = f"{emu.base_url}{TOKEN}/getUpdates"
    async with aiohttp.ClientSession() as session:

        async def poll(**params: int) -> dict[str, Any]:
            async with session.post(url, data={k: str(v) for k, v in params.items()}) as resp:
                body: dict[str, Any] = await resp.json()
                return body

        task = asyncio.create_task(poll(timeout=20))
        await asyncio.sleep(0.2)
        started = loop.time()
        await emu.send_text(alice, "wake up")
        body = await asyncio.wait_for(task, 2)
        assert loop.time() - started < 0.5
        assert body["ok"] and body["result"][0]["message"]["text"] == "wake up"
        update_id = body["result"][0]["update_id"]

        body = await poll(offset=update_id + 1, timeout=0)
        assert body == {"ok": True, "result": []}
        assert emu.pending_updates == 0

        task = asyncio.create_task(poll(timeout=30))
        await asyncio.sleep(0.2)
        started = loop.time()
        await emu.stop()
        body = await asyncio.wait_for(task, 2)
        assert body == {"ok": True, "result": []}
        assert loop.time() - started < 1.5


async def test_two_emulators_are_independent() -> None:
    """Two emulators in one process have separate ports and state."""
    async with BotAPIEmulator(token=TOKEN) as first, BotAPIEmulator(token="1:B") as second:
        assert first.base_url != second.base_url
        one, two = first.user(1, "One"), second.user(2, "Two")
        await first.send_text(one, "hi")
        assert first.pending_updates == 1 and second.pending_updates == 0
        bot = Bot("1:B", base_url=second.base_url)
        async with bot:
            await bot.send_message(2, "only second")
        assert [m.text for m in second.messages(two)] == ["only second"]
        assert first.messages(1) == []
        with pytest.raises(AssertionError, match="no new bot message in chat 1"):
            await first.next_message(one, timeout=0.1)


# ---------------------------------------------------------------------------------------------
# Webhook push and random faults
# ---------------------------------------------------------------------------------------------


class Receiver:
    """A local webhook: answers each POST with the next of `statuses` (then 200), and can hold
    requests until `release` is set."""

    def __init__(self, statuses: list[int] | None = None, *, hold: bool = False) -> None:
        self.statuses = list(statuses or [])
        self.received: list[tuple[int, str | None]] = []  # (update_id, secret header)
        self.active = 0
        self.most_active = 0
        self.release = asyncio.Event()
        if not hold:
            self.release.set()
        self.arrived = asyncio.Event()
        self.url = ""
        self._runner: aiohttp.web.AppRunner | None = None

    async def handle(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        update = await request.json()
        self.received.append(
            (int(update["update_id"]), request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        )
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        self.arrived.set()
        try:
            await self.release.wait()
        finally:
            self.active -= 1
        status = self.statuses.pop(0) if self.statuses else 200
        return aiohttp.web.Response(status=status, text="ok")

    async def __aenter__(self) -> Receiver:
        app = aiohttp.web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = aiohttp.web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = aiohttp.web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        assert self._runner is not None
        await self._runner.cleanup()


async def api(emu: BotAPIEmulator, method: str, **params: Any) -> dict[str, Any]:
    """One raw Bot API call (JSON body) to the emulator."""
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{emu.base_url}{TOKEN}/{method}", json=params) as resp:
            body: dict[str, Any] = await resp.json()
            return body


@pytest_asyncio.fixture
async def hook_emu() -> AsyncIterator[BotAPIEmulator]:
    """An emulator that accepts http:// webhooks, with a short backoff."""
    async with BotAPIEmulator(token=TOKEN, allow_http_webhooks=True) as emulator:
        emulator.webhook_backoff = 0.05
        yield emulator


async def test_webhook_needs_https_unless_allowed(emu: BotAPIEmulator) -> None:
    refused = await api(emu, "setWebhook", url="http://127.0.0.1:9/hook")
    assert refused["ok"] is False and "HTTPS URL must be provided" in refused["description"]
    assert emu.webhook_url == ""
    assert (await api(emu, "setWebhook", url="https://example.invalid/hook", secret_token="bad token!"))[
        "ok"
    ] is False


async def test_webhook_redelivers_until_2xx_with_the_secret(hook_emu: BotAPIEmulator, alice: EmuUser) -> None:
    """A 500 and a 404 answer leave the update queued and it comes again; the 200 drops it."""
    emu = hook_emu
    async with Receiver([500, 404]) as receiver:
        await emu.send_text(alice, "one")
        assert (await api(emu, "setWebhook", url=receiver.url, secret_token="s3cr3t_-X"))["ok"]
        await emu.wait_until(lambda: emu.pending_updates == 0, 5, "update delivered")
        uid = receiver.received[0][0]
        assert receiver.received == [(uid, "s3cr3t_-X")] * 3
        assert emu.webhook_deliveries == [(uid, 500), (uid, 404), (uid, 200)]
        info = (await api(emu, "getWebhookInfo"))["result"]
        assert info["url"] == receiver.url and info["pending_update_count"] == 0
        assert info["max_connections"] == 40 and info["has_custom_certificate"] is False
        assert "404" in info["last_error_message"] and isinstance(info["last_error_date"], int)

        conflict = await api(emu, "getUpdates")
        assert conflict["error_code"] == 409

        # A second update goes out at once, and the first is never sent again.
        await emu.send_text(alice, "two")
        await emu.wait_until(lambda: len(receiver.received) == 4, 5, "second update")
        assert receiver.received[-1][0] == uid + 1
        await emu.wait_until(lambda: emu.pending_updates == 0, 5, "second update dropped")


async def test_webhook_without_answer_or_connection_is_retried(
    hook_emu: BotAPIEmulator, alice: EmuUser
) -> None:
    emu = hook_emu
    emu.webhook_timeout = 0.2
    async with Receiver(hold=True) as receiver:
        assert (await api(emu, "setWebhook", url=receiver.url))["ok"]
        await emu.send_text(alice, "slow")
        await asyncio.wait_for(receiver.arrived.wait(), 5)
        await emu.wait_until(lambda: len(emu.webhook_deliveries) >= 2, 5, "two timed-out attempts")
        assert emu.pending_updates == 1
        assert {status for _, status in emu.webhook_deliveries} == {0}
        assert (await api(emu, "getWebhookInfo"))["result"]["last_error_message"] == "Read timeout expired"
        receiver.release.set()
        await emu.wait_until(lambda: emu.pending_updates == 0, 5, "delivered once answered")
    # Nobody listens any more: connection errors, and the update stays queued.
    await emu.send_text(alice, "nobody")
    await emu.wait_until(lambda: 0 in {s for _, s in emu.webhook_deliveries[-1:]}, 5, "refused")
    assert emu.pending_updates == 1
    info = (await api(emu, "getWebhookInfo"))["result"]
    assert info["last_error_message"].startswith("Connection failed")


async def test_webhook_max_connections_and_order(hook_emu: BotAPIEmulator, alice: EmuUser) -> None:
    emu = hook_emu
    for n in range(10):
        await emu.send_text(alice, f"m{n}")
    async with Receiver(hold=True) as receiver:
        assert (await api(emu, "setWebhook", url=receiver.url, max_connections=3))["ok"]
        await emu.wait_until(lambda: receiver.active == 3, 5, "three requests at once")
        # No fourth request while three are open.
        await emu.no_message(alice, within=0.3)
        assert receiver.active == 3 and len(receiver.received) == 3
        receiver.release.set()
        await emu.wait_until(lambda: emu.pending_updates == 0, 5, "all delivered")
        ids = [uid for uid, _ in receiver.received]
        assert receiver.most_active == 3
        assert ids == sorted(ids) and len(ids) == 10
        assert (await api(emu, "getWebhookInfo"))["result"]["max_connections"] == 3


async def test_delete_webhook_stops_pushing_and_may_drop(hook_emu: BotAPIEmulator, alice: EmuUser) -> None:
    emu = hook_emu
    async with Receiver([503] * 1000) as receiver:
        assert (await api(emu, "setWebhook", url=receiver.url, allowed_updates=["message"]))["ok"]
        await emu.send_text(alice, "failing")
        await emu.wait_until(lambda: len(receiver.received) >= 2, 5, "redelivered")
        info = (await api(emu, "getWebhookInfo"))["result"]
        assert info["allowed_updates"] == ["message"] and info["pending_update_count"] == 1
        assert (await api(emu, "deleteWebhook"))["ok"]
        seen = len(receiver.received)
        await asyncio.sleep(0.3)  # the backoff is 0.05 s: several retries would have come by now
        assert len(receiver.received) == seen and emu.pending_updates == 1
        polled = await api(emu, "getUpdates")
        assert polled["ok"] and polled["result"][0]["message"]["text"] == "failing"

        assert (await api(emu, "setWebhook", url=receiver.url))["ok"]
        await emu.wait_until(lambda: len(receiver.received) > seen, 5, "pushing again")
        assert (await api(emu, "deleteWebhook", drop_pending_updates=True))["ok"]
        assert emu.pending_updates == 0 and (await api(emu, "getUpdates"))["result"] == []


async def test_chaos_rates_hold_with_a_seed(emu: BotAPIEmulator, alice: EmuUser) -> None:
    """With a seed, about the asked share of sends fails each way; other methods are spared."""
    emu.chaos(0.2, 0.1, 0.05, seed=7, hang=0.05)
    calls = 600
    bodies = await asyncio.gather(
        *(api(emu, "sendMessage", chat_id=alice.id, text=f"n{n}") for n in range(calls))
    )
    kinds = [kind for _, kind, _, _ in emu.faulted]
    assert abs(kinds.count("5xx") / calls - 0.2) < 0.05
    assert abs(kinds.count("429") / calls - 0.1) < 0.04
    assert abs(kinds.count("timeout") / calls - 0.05) < 0.03
    assert all(method == "sendMessage" and chat == alice.id for method, _, chat, _ in emu.faulted)
    errors = [b for b in bodies if not b["ok"]]
    assert len(errors) == kinds.count("5xx") + kinds.count("429")
    assert {b["error_code"] for b in errors} <= {429, 500, 502, 503, 504}
    assert all(b["parameters"] == {"retry_after": 1} for b in errors if b["error_code"] == 429)
    # Timeouts were executed: those messages exist, with the ones that succeeded.
    assert len(emu.messages(alice)) == calls - len(errors)
    assert sum(m.fault == "timeout" for m in emu.messages(alice)) == kinds.count("timeout")
    assert all([(await api(emu, "getMe"))["ok"] for _ in range(20)])

    # The same seed, the same faults.
    async with BotAPIEmulator(token=TOKEN) as other:
        bob = other.user(alice.id, "Bob")
        other.chaos(0.2, 0.1, 0.05, seed=7, hang=0.05)
        for n in range(60):
            await api(other, "sendMessage", chat_id=bob.id, text=f"n{n}")
        assert [k for _, k, _, _ in other.faulted] == kinds[: len(other.faulted)]
        assert 0 < len(other.faulted) < 60

    emu.calm()
    before = len(emu.faulted)
    assert all([(await api(emu, "sendMessage", chat_id=alice.id, text="calm"))["ok"] for _ in range(30)])
    emu.chaos(0.5, methods=["getMe"], seed=1)
    emu.chaos(None)
    assert all([(await api(emu, "getMe"))["ok"] for _ in range(30)])
    assert len(emu.faulted) == before


async def test_chaos_timeout_is_stored_but_answered_late(emu: BotAPIEmulator, alice: EmuUser) -> None:
    emu.chaos(0, 0, 1.0, hang=1.0, seed=3)
    async with running_app(emu, read_timeout=0.3) as app:
        with pytest.raises(TimedOut):
            await app.bot.send_message(alice.id, "late")
        (stored,) = emu.messages(alice)
        assert stored.text == "late" and stored.fault == "timeout"
        assert emu.faulted[0][:3] == ("sendMessage", "timeout", alice.id)

        loop = asyncio.get_running_loop()
        started = loop.time()
        body = await api(emu, "editMessageText", chat_id=alice.id, message_id=stored.message_id, text="new")
        assert body["ok"] and loop.time() - started >= 0.95
        assert emu.messages(alice)[0].text == "new"
        emu.calm()
    with pytest.raises(ValueError):
        emu.chaos(0.6, 0.5)
