"""The sandbox: the real service against a Bot API emulator in the same process, with demo people.

It is what `make run` starts when TELEGRAM_BOT_TOKEN is unset. The service is the production
`Service` (PTB application, database, outbox sender, web app); only the Bot API it talks to, the
database file, the QR secret and the ID-number key are the sandbox's own. Text messages are on:
the SMS channel talks to a local SMS emulator (smsapi, Alibaba Cloud's API shape) in the same
process, with the sandbox's own keys, signature and template file; production's SMS settings are
never used.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import secrets
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from bot.crypto import new_key
from bot.sandbox import page
from bot.sandbox.demo import Demo, Persona, load, read_demo
from bot.sandbox.page import SandboxRefused
from bot.service import Service
from bot.settings import Settings
from botapi import BotAPIEmulator, EmuMessage, EmuUser
from domain.model import Channel, DeclarationStatus, NoticeStatus, OutboxStatus
from domain.schedule import QuietHours
from locales import catalog_for, gettext
from qr.links import deep_link
from qr.payload import sign_village
from smsapi import EmuText, SmsEmulator
from smsapi.emulator import ALIYUN
from storage.outbox_store import OutboxStore
from storage.tables import (
    Base,
    ConsoleSessionRow,
    DeclarationRow,
    NoticeRecipientRow,
    NoticeRow,
    OutboxRow,
)

log = logging.getLogger(__name__)

BOT_USERNAME = "fanghui_sandbox_bot"
BOT_NAME = "防返贫监测申报（沙盒）"
# Texts: the example template file of Alibaba Cloud, with the status page's address the sandbox's own.
SMS_EXAMPLE = Path(__file__).resolve().parents[2] / "sms-templates.aliyun.example.toml"
EXAMPLE_SITE = "https://example.gov.cn"


STALE = "演示已经重置，这里的按钮和消息已失效。请在新的对话里继续。"
UNKNOWN_PERSONA = "沙盒里没有这个角色。"
GONE_BUTTON = "这个按钮已经失效（消息已更新），请使用最新消息里的按钮。"


@dataclass(frozen=True)
class Answer:
    """What the bot answered to a button press: the short notice shown where it was pressed."""

    text: str
    alert: bool = False


def _own_secret(path: Path, make: Callable[[], str]) -> bytes:
    """The secret kept in `path`, made once: the file is created 0o600, never readable by others
    for a moment (O_EXCL: when two starts race, one makes it and both read it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)  # one made by an older version, before this was done at creation
    else:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(make())
    return path.read_text("ascii").strip().encode("ascii")


def secret_file(var_dir: Path) -> bytes:
    """The sandbox's own QR secret, made once and kept in var/ (never the production QR_SECRET)."""
    return _own_secret(var_dir / "sandbox-qr-secret", lambda: secrets.token_urlsafe(32))


def id_key_file(var_dir: Path) -> bytes:
    """The sandbox's own ID_ENCRYPTION_KEY, kept in var/ beside its QR secret (never production's)."""
    return _own_secret(var_dir / "sandbox-id-key", new_key)


def database_file(var_dir: Path) -> Path:
    """var/sandbox.db: the sandbox's own SQLite file, never the production database."""
    return (var_dir / "sandbox").with_suffix(".db")


def sms_templates_file(var_dir: Path, public_url: str) -> Path:
    """var/sandbox-sms-templates.toml: the Aliyun example file with the status page's address put
    in as a township puts its own (the texts' link then opens the sandbox's status page)."""
    var_dir.mkdir(parents=True, exist_ok=True)
    path = var_dir / "sandbox-sms-templates.toml"
    path.write_text(SMS_EXAMPLE.read_text("utf-8").replace(EXAMPLE_SITE, public_url), "utf-8")
    return path


def sign_name(demo: Demo) -> str:
    """The texts' signature (签名), as a township registers it: 青山镇人民政府."""
    return f"{demo.township}人民政府"


def free_port(host: str) -> int:
    """A port nobody listens on now (the sandbox must know its address before it starts: its
    /web links name it)."""
    with socket.socket() as probe:
        probe.bind((host or "127.0.0.1", 0))
        return int(probe.getsockname()[1])


def shown_host(host: str) -> str:
    """The address a browser on this machine reaches a server listening on `host` by."""
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


def sandbox_settings(
    settings: Settings,
    emulator: BotAPIEmulator,
    var_dir: Path,
    *,
    web_port: int,
    sms: SmsEmulator | None = None,
    sms_sign_name: str = "青山镇人民政府",
    sms_callback_token: str | None = None,
) -> Settings:
    """The person's settings with the Bot API, database and secrets replaced by the sandbox's; its
    public address is its own (the console's sign-in links and the web form point there).

    Texts go to `sms` (a running SmsEmulator) with its keys, or nowhere: production's SMS keys,
    signature and templates never reach the sandbox. No quiet hours unless QUIET_HOURS is set: a
    trainer's evening rehearsal sees each text at once (the phone pane says what production does)."""
    public_url = f"http://{shown_host(settings.web_host)}:{web_port}"
    texts: dict[str, object] = {
        "sms_provider": None,
        "sms_key_id": None,
        "sms_key_secret": None,
        "sms_sign_name": None,
        "sms_sdk_app_id": None,
        "sms_endpoint": None,
        "sms_templates": None,
        "sms_callback_token": None,
    }
    if sms is not None:
        provider = sms.settings(ALIYUN)
        texts |= {
            **provider,
            "sms_key_secret": SecretStr(provider["sms_key_secret"]),
            "sms_sign_name": sms_sign_name,
            "sms_templates": str(sms_templates_file(var_dir, public_url)),
            "sms_callback_token": SecretStr(sms_callback_token or secrets.token_urlsafe(24)),
        }
    return settings.model_copy(
        update={
            **texts,
            "quiet_hours": "-" if settings.quiet_hours is None else settings.quiet_hours,
            "telegram_bot_token": SecretStr(emulator.token),
            "telegram_api_base_url": emulator.base_url,
            "telegram_api_file_url": emulator.base_file_url,
            "database_url": f"sqlite+aiosqlite:///{database_file(var_dir)}",
            "qr_secret": SecretStr(secret_file(var_dir).decode("ascii")),
            # Demo ID numbers are sealed with the sandbox's key; production's never leaves production.
            "id_encryption_key": SecretStr(id_key_file(var_dir).decode("ascii")),
            "id_encryption_old_keys": None,
            "bot_username": BOT_USERNAME,
            "web_port": web_port,
            "public_url": public_url,
        }
    )


class Sandbox:
    def __init__(
        self,
        settings: Settings,
        *,
        var_dir: Path = Path("var"),
        demo: Demo | None = None,
        poll_timeout: int = 10,
    ) -> None:
        self.base_settings = settings
        self.var_dir = var_dir
        self.demo = demo or read_demo()
        self.poll_timeout = poll_timeout
        # A fresh random token each start: nothing outside this process can talk as the bot.
        token = f"{secrets.randbelow(9 * 10**8) + 10**8}:{secrets.token_urlsafe(24)}"
        self.emulator = BotAPIEmulator(token=token, bot_username=BOT_USERNAME, bot_name=BOT_NAME)
        # The township's SMS provider: only its signature is approved; each text is delivered at once.
        self.sign_name = sign_name(self.demo)
        self.sms = SmsEmulator(sign_names={self.sign_name})
        self.sms.auto_deliver = True
        self._sms_token = secrets.token_urlsafe(24)  # the receipts' callback path, new each start
        self._policy_quiet: QuietHours | None = None
        self.service: Service | None = None
        # Changes on every start and reset; the page sends it back, so nothing from before counts.
        self.epoch = secrets.token_hex(4)
        self.closing = False
        self._lock = asyncio.Lock()
        self._users: dict[int, EmuUser] = {}

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        assert self.service is not None
        host = shown_host(self.service.settings.web_host)
        return f"http://{host}:{self.service.web_port}{page.ROOT}"

    async def start(self) -> None:
        await self.emulator.start()
        await self.sms.start()
        self._register_users()
        wanted = self.base_settings.web_port
        free = free_port(self.base_settings.web_host)
        for port in (wanted, free) if wanted else (free,):
            settings = sandbox_settings(
                self.base_settings,
                self.emulator,
                self.var_dir,
                web_port=port,
                sms=self.sms,
                sms_sign_name=self.sign_name,
                sms_callback_token=self._sms_token,
            )
            service = Service(
                settings,
                poll_timeout=self.poll_timeout,
                web_routes=lambda app: page.mount(app, self),
            )
            try:
                await service.start()
            except OSError as exc:
                await service.stop()
                if exc.errno != errno.EADDRINUSE or port == free:
                    raise
                # A newcomer's port 8080 is often taken; any free port will do for a sandbox.
                log.warning("port %s is in use; the sandbox takes a free one", port)
                continue
            self.service = service
            break
        self._texts_to(self._service())
        await self._load_demo()

    def _texts_to(self, service: Service) -> None:
        """The phone shows the texts as registered (the same template file), and the provider's
        receipts come back to the service as they would from Alibaba Cloud."""
        assert service.sms is not None
        self.sms.templates = {t.code: t.text for t in service.sms.templates.by_kind.values()}
        receipts = f"{service.settings.public_url}/sms/receipts/{self._sms_token}"
        self.sms.callback_urls = {ALIYUN: receipts}

    async def stop(self) -> None:
        self.closing = True
        if self.service is not None:
            await self.service.stop()
            self.service = None
        await self.sms.stop()
        await self.emulator.stop()

    async def __aenter__(self) -> Sandbox:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _register_users(self) -> None:
        """Every demo person as a Telegram user with a private chat (and a phone to share)."""
        for person in (self.demo.farmer, *self.demo.people):
            self._users[person.chat_id] = self.emulator.user(
                person.chat_id,
                person.name,
                language_code="zh-hans",
                phone_number="+86" + person.phone,
            )

    async def _load_demo(self) -> None:
        service = self._service()
        bound = await load(service.uow, service.clock, self.demo)
        if bound:
            service.sender.wake()

    def _service(self) -> Service:
        if self.service is None:
            raise SandboxRefused("沙盒还没有启动。", status=503)
        return self.service

    # ------------------------------------------------------------------ reset

    async def reset(self) -> str:
        """Start the demo over: empty database and chats, the demo roster bound again."""
        async with self._lock:
            service = self._service()
            self.epoch = secrets.token_hex(4)
            await service.pause_updates()
            await self._outbox_drained(service)
            await self.sms.settle()  # the last receipts pushed, before the texts are forgotten
            async with service.sessions() as session:
                for table in reversed(Base.metadata.sorted_tables):
                    if table.name != "workers":  # this process's heartbeat row stays
                        await session.execute(table.delete())
                await session.commit()
            self.emulator.forget_chats()
            self.sms.clear()
            await service.resume_updates()
            await self._load_demo()
            log.info("sandbox reset")
            return self.epoch

    @staticmethod
    async def _outbox_drained(service: Service, within: float = 5.0) -> None:
        """Wait until the sender has nothing queued or in hand, so no old message lands after a reset.

        The sender keeps running (stopping it mid-query leaves SQLAlchemy complaining); with the
        application stopped nothing new is queued, so this ends as soon as the last row is sent.
        """
        store = OutboxStore(service.sessions)
        service.sender.wake()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline:
            counts = await store.counts()
            if not counts.get(OutboxStatus.PENDING.value) and not counts.get(OutboxStatus.SENDING.value):
                return
            await asyncio.sleep(0.05)
        log.warning("sandbox reset: the outbox did not drain within %ss; resetting anyway", within)

    # ------------------------------------------------------------------ what the page asks

    def persona(self, slug: str) -> Persona:
        person = self.demo.pane(slug)
        if person is None:
            raise SandboxRefused(UNKNOWN_PERSONA, status=404)
        return person

    def _user(self, slug: str, epoch: str) -> EmuUser:
        person = self.persona(slug)
        if epoch != self.epoch:
            raise SandboxRefused(STALE, stale=True)
        return self._users[person.chat_id]

    def village_link(self) -> str:
        """The farmer village's deep link, signed as a printed flyer's would be."""
        code, _ = self.demo.farmer_village
        return deep_link(BOT_USERNAME, self._village_payload(code))

    def _village_payload(self, code: str) -> str:
        """A village's signed code, as its printed flyer carries it (in the QR code and the web form's
        address)."""
        service = self._service()
        valid_until = date(service.clock.now().year + 2, 12, 31)
        return sign_village(service.settings.secret(), code, valid_until)

    def form_path(self) -> str:
        """The web form of the texted household's village, as the flyer's web link opens it."""
        return f"/q/{self._village_payload(self.demo.texted.village)}/form"

    async def send_text(self, slug: str, epoch: str, text: str) -> None:
        user = self._user(slug, epoch)
        text = text.strip()
        if not text:
            raise SandboxRefused("请先输入内容。", status=400)
        if len(text) > 4096:
            raise SandboxRefused("消息太长了（Telegram 最多 4096 个字）。", status=400)
        await self.emulator.send_text(user, text)

    async def scan(self, epoch: str) -> None:
        """The farmer scans the village's QR code: Telegram opens the bot with /start <payload>."""
        user = self._user("farmer", epoch)
        payload = self.village_link().split("start=", 1)[1]
        await self.emulator.send_command(user, "start", payload)

    async def tap_keyboard(self, slug: str, epoch: str, text: str) -> None:
        """A reply-keyboard button: sends its text, or the person's contact when it asks for one."""
        user = self._user(slug, epoch)
        keyboard = self.emulator.reply_keyboard(user.id) or {}
        labels = [
            b if isinstance(b, str) else b.get("text") for row in keyboard.get("keyboard", []) for b in row
        ]
        if text not in labels:
            raise SandboxRefused(GONE_BUTTON)
        await self.emulator.tap_keyboard(user, text)

    async def press(
        self, slug: str, epoch: str, message_id: int, row: int, column: int, label: str | None = None
    ) -> Answer:
        """An inline button, named by its place on the message (and the label the page showed
        there: a message edited since then is refused, not pressed elsewhere); returns the bot's
        short answer."""
        user = self._user(slug, epoch)
        message = self.emulator.message(user.id, message_id)
        try:
            assert message is not None and message.from_bot
            button = message.inline_keyboard[row][column]
            assert row >= 0 and column >= 0 and "callback_data" in button
            assert label is None or button.get("text") == label
        except (AssertionError, IndexError):
            raise SandboxRefused(GONE_BUTTON) from None
        query = await self.emulator.press_data(user, message, str(button["callback_data"]))
        with contextlib.suppress(AssertionError):
            answer = await self.emulator.wait_for_answer(query, timeout=10)
            return Answer(str(answer.get("text") or ""), bool(answer.get("show_alert")))
        return Answer("")

    # ------------------------------------------------------------------ what the page shows

    async def state(self) -> dict[str, Any]:
        """Everything the page draws: the panes, each chat as Telegram would show it, and how far
        the demo has come (the training tour moves on when a step is done)."""
        code, village = self.demo.farmer_village
        panes = []
        for person in self.demo.panes:
            panes.append(
                {
                    "slug": person.pane,
                    "label": person.label,
                    "name": person.name,
                    "detail": self._detail(person),
                    "console": person.role != "farmer",
                    "messages": [_message(m) for m in self.emulator.history(person.chat_id)],
                    "keyboard": _keyboard(self.emulator.reply_keyboard(person.chat_id)),
                }
            )
        service = self._service()
        return {
            "epoch": self.epoch,
            "bot": {"name": BOT_NAME, "username": BOT_USERNAME},
            "township": self.demo.township,
            "village": {"code": code, "name": village},
            "public_url": service.settings.public_url,
            "panes": panes,
            "phone": self.phone(service),
            "progress": await progress(service),
        }

    def _usual_quiet(self) -> QuietHours:
        """The quiet hours of the policy (production's, where QUIET_HOURS is not set); read once."""
        if self._policy_quiet is None:
            policy = self.base_settings.load_policy()
            self._policy_quiet = QuietHours(policy.quiet_start, policy.quiet_end)
        return self._policy_quiet

    def phone(self, service: Service) -> dict[str, Any]:
        """The phone pane: the texts the web-form household's number received, oldest first, as
        the phone shows them (signature first), and the pane's words in the sandbox's language."""
        household = self.demo.texted
        village = self.demo.villages[household.village]
        catalog = catalog_for(service.settings.default_locale)

        def say(key: str, **values: object) -> str:
            return gettext(catalog, key).format(**values)

        if self.base_settings.quiet_hours is None:  # none in the sandbox: say what production does
            start, end = _shown_window(self._usual_quiet())
            note = say("sandbox.phone_no_quiet", start=start, end=end)
        elif service.quiet_hours.contains(service.clock.now()):  # QUIET_HOURS set, and it is now
            start, end = _shown_window(service.quiet_hours)
            note = say("sandbox.phone_quiet_now", start=start, end=end)
        else:
            note = ""
        return {
            "slug": "phone",
            "label": say("sandbox.phone_label"),
            "name": household.name,
            "number": household.phone,
            "form": self.form_path(),
            "texts": [_text(i, t, self.sms.render(t)) for i, t in enumerate(self.sms.texts(household.phone))],
            "words": {
                "title": say("sandbox.phone_title"),
                "head": say("sandbox.phone_head", name=household.name, village=village),
                "hint": say(
                    "sandbox.phone_hint", name=household.name, village=village, phone=household.phone
                ),
                "open_form": say("sandbox.phone_open_form", village=village),
                "empty": say("sandbox.phone_empty"),
                "foot": say("sandbox.phone_foot"),
                "note": note,
                "tour_title": say("sandbox.phone_tour_title"),
                "tour": say(
                    "sandbox.phone_tour", name=household.name, village=village, phone=household.phone
                ),
            },
        }

    def _detail(self, person: Persona) -> str:
        if person.role == "farmer":
            return f"{self.demo.villages[person.villages[0]]} 农户"
        if person.role == "cadre":
            return "、".join(self.demo.villages[c] for c in person.villages) + " 村干部"
        if person.role == "county":
            return f"{self.demo.county} 县级（审定）"
        return f"{self.demo.township} 乡镇工作人员"

    async def signature(self) -> tuple[object, ...]:
        """Changes whenever something the page shows changes: a chat, or how far the demo has come
        (signing in to the console changes no chat, and the tour follows it too)."""
        counts = []
        for person in self.demo.panes:
            chat = person.chat_id
            history = self.emulator.history(chat)
            counts.append((len(history), sum(len(m.history) for m in history)))
        counts.append((len(self.sms.texts(self.demo.texted.phone)), 0))
        done: dict[str, bool] = {}
        if self.service is not None and not self.closing:
            try:
                done = await progress(self.service)
            except SQLAlchemyError:  # a reset or the shutdown in between: the next look sees it
                log.debug("sandbox progress not read", exc_info=True)
        return (self.epoch, *counts, tuple(sorted(done.items())))


# How far a declaration has come, by its state (for the tour: acknowledged, visited, decided).
_ACKNOWLEDGED = {s.value for s in DeclarationStatus} - {
    DeclarationStatus.SUBMITTED.value,
    DeclarationStatus.WITHDRAWN.value,
}
_VISITED = _ACKNOWLEDGED - {DeclarationStatus.ACKNOWLEDGED.value}
_DECIDED = _VISITED - {DeclarationStatus.VISITED.value}


async def progress(service: Service) -> dict[str, bool]:
    """What of the training tour's steps has been done in this demo, read from the database."""

    async def some(query: Any) -> bool:
        return (await session.scalar(select(query.exists()))) is True

    texts_sent = select(func.count(OutboxRow.id)).where(
        OutboxRow.channel == Channel.SMS.value, OutboxRow.status == OutboxStatus.SENT.value
    )
    async with service.sessions() as session:
        statuses = set(
            await session.scalars(select(DeclarationRow.status).where(DeclarationRow.receipt.is_not(None)))
        )
        return {
            "declared": bool(statuses),
            "acknowledged": bool(statuses & _ACKNOWLEDGED),
            "visited": bool(statuses & _VISITED),
            "decided": bool(statuses & _DECIDED),
            "notice_sent": await some(
                select(NoticeRow.id).where(NoticeRow.status == NoticeStatus.SENT.value)
            ),
            "notice_read": await some(
                select(NoticeRecipientRow.person_id).where(NoticeRecipientRow.acknowledged_at.is_not(None))
            ),
            "console": await some(select(ConsoleSessionRow.id)),
            # A household heard of its case by text twice: its receipt, then the cadre's 签收.
            "texted": (await session.scalar(texts_sent) or 0) >= 2,
        }


def _message(message: EmuMessage) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": message.message_id,
        "from_bot": message.from_bot,
        "kind": message.kind,
        "text": message.text if message.text is not None else message.caption,
        "entities": message.entities,
        "date": message.date,
        "edited": message.edited,
        "buttons": [
            [{"text": b.get("text"), "url": b.get("url"), "data": "callback_data" in b} for b in row]
            for row in message.inline_keyboard
        ],
    }
    if message.kind == "contact":
        data["contact"] = message.content["contact"].get("phone_number")
    return data


def _text(number: int, text: EmuText, shown: str) -> dict[str, Any]:
    return {"id": number, "text": shown, "date": int(text.accepted_at.timestamp())}


def _shown_window(window: QuietHours) -> tuple[str, str]:
    def hhmm(moment: time) -> str:
        return moment.strftime("%H:%M")

    return hhmm(window.start), hhmm(window.end)


def _keyboard(markup: dict[str, Any] | None) -> list[list[dict[str, Any]]]:
    if not markup:
        return []
    return [
        [
            {"text": b, "contact": False}
            if isinstance(b, str)
            else {"text": b.get("text"), "contact": bool(b.get("request_contact"))}
            for b in row
        ]
        for row in markup.get("keyboard", [])
    ]


def banner(sandbox: Sandbox, locale: str) -> str:
    """The one line `make run` prints: a sandbox, its address, how to use real Telegram instead."""
    return gettext(catalog_for(locale), "sandbox.ready").format(url=sandbox.url)


async def run_sandbox(settings: Settings) -> None:
    """Run the sandbox until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Sandbox(settings) as sandbox:
        print(banner(sandbox, settings.default_locale), flush=True)
        await stop.wait()
