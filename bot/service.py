"""The running service: database, PTB application (polling), outbox sender and web server.

`python -m bot run` and the end-to-end tests start it the same way: `async with Service(...)`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import timedelta
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from aiohttp import web
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes

from bot import console, limits, metrics, templating
from bot.clock import SystemClock
from bot.console import ConsoleDeps
from bot.crypto import protector_for
from bot.deadlines import PolicyRules
from bot.http import AiohttpRequest
from bot.pacing import Pacer
from bot.sender import OutboxSender
from bot.settings import Settings
from bot.sms.channel import SmsChannel
from bot.updates import ALLOWED_UPDATES, Dispatcher, Poller, Webhook, add_webhook_route, take_over
from bot.web import make_app
from bot.webform import WebDeps
from domain import deadlines, delivery, schedule
from domain.conversations import router
from domain.model import Channel
from domain.ports import Clock, DeadlineRules
from handlers import console as console_handlers
from handlers import keyboards, notifications, web_links
from handlers import telegram as tg_handlers
from handlers.context import AppContext, BotData, Services
from storage import inbox, outbox_retention
from storage.coordination import (
    Leadership,
    Listener,
    PollerLock,
    SingleProcessLock,
    notify,
    once_across_workers,
)
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.outbox_store import OutboxStore
from storage.uow import SqlUnitOfWorkFactory
from storage.workers import WorkerRegistry

log = logging.getLogger(__name__)
DRAFT_SWEEP_EVERY = 600  # seconds
DEADLINE_TICK_EVERY = 60  # seconds
TAKE_OVER_EVERY = 5  # seconds: how soon a dead worker's recorded updates are processed by another
FILES_KEPT = 64  # Telegram files (photos, voice notes) kept in memory for the console


def build_application(settings: Settings) -> Application[Any, AppContext, Any, Any, BotData, Any]:
    """The PTB application, talking to TELEGRAM_API_BASE_URL (Telegram, or a local Bot API)."""
    context_types = ContextTypes(context=AppContext, bot_data=BotData)
    application = (
        ApplicationBuilder()
        .token(settings.token())
        .base_url(settings.telegram_api_base_url)
        .base_file_url(settings.telegram_api_file_url)
        .context_types(context_types)
        # No rate limiter on the bot: what counts against Telegram's limits goes out through the
        # outbox sender, whose pacer keeps them; a handler never waits for a limiter.
        .updater(None)
        # PTB's networking over aiohttp (bot/http.py): httpx's pool cost the sender most of its CPU.
        .request(AiohttpRequest(connection_pool_size=256))
        .get_updates_request(AiohttpRequest(connection_pool_size=1))
        .build()
    )
    # The commands of each front-end module first, then buttons and every other message (a command
    # none of them knows gets the help there).
    application.add_handlers(
        [
            *tg_handlers.commands(),
            *notifications.commands(),
            *web_links.commands(),
            *console_handlers.commands(),
            *tg_handlers.messages(),
        ]
    )
    application.add_error_handler(tg_handlers.on_error)
    return application


class Service:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        rules: DeadlineRules | None = None,
        poll_timeout: int = 10,
        web_routes: Callable[[web.Application], None] | None = None,
    ) -> None:
        """`web_routes` adds pages to the web app before it starts (the sandbox mounts its own)."""
        self.settings = settings
        self.clock: Clock = clock or SystemClock(settings.zone)
        policy = settings.load_policy()
        self.rules: DeadlineRules = rules or PolicyRules(policy)
        self.poll_timeout = poll_timeout
        self.application = build_application(settings)
        self.engine = create_engine(settings.database_url)
        self.sessions = session_factory(self.engine)
        # A message too long for Telegram is queued as several, each rendered in its recipient's
        # language and short enough (bot/limits.py).
        self.uow = SqlUnitOfWorkFactory(
            self.sessions, split=limits.splitter(settings.default_locale), on_pending=self.wake_sender
        )
        self.worker_id = uuid.uuid4().hex[:16]
        # Claims (outbox, inbox) name this worker; its heartbeat tells the others it is alive.
        self.workers = WorkerRegistry(self.sessions, worker_id=self.worker_id)
        self._sqlite = self.engine.dialect.name == "sqlite"
        self._leadership: Leadership | None = None
        self._listener: Listener | None = None
        self._sending = False
        self._notifies: set[asyncio.Task[None]] = set()
        self.sender = OutboxSender(
            OutboxStore(self.sessions),
            self.application.bot,
            self.clock,
            settings.default_locale,
            keyboard=keyboards.markup_of,
            pacer=Pacer(
                settings.send_rate_per_second,
                per_private_chat=settings.chat_rate_per_second,
                private_burst=settings.chat_burst,
            ),
            on_unreachable=self._unreachable,
            worker=self.workers,
        )
        # Text messages to households without a chat: only with SMS_PROVIDER (its checks raise
        # ConfigError now, before anything starts).
        sms_config = settings.sms()
        self.sms: SmsChannel | None = None
        if sms_config is not None:
            self.sms = SmsChannel(
                sms_config,
                self.sessions,
                self.clock,
                self.rules,
                public_url=settings.public_url,
                worker=self.workers,
            )
        self._channels_before: tuple[Channel, ...] | None = None
        self._web_routes = web_routes
        self._files: OrderedDict[str, bytes] = OrderedDict()
        # One window for every reminder: the policy's quiet hours, or QUIET_HOURS when set.
        self.quiet_hours = schedule.QuietHours(policy.quiet_start, policy.quiet_end)
        self.schedule_handlers = schedule.default_handlers()
        self._runner: web.AppRunner | None = None
        self.web_port: int | None = None
        self.bot_username: str | None = settings.bot_username
        self.inbox = inbox.InboxStore(self.sessions, self.worker_id)
        self.dispatcher = Dispatcher(
            self.application.bot,
            self.application.process_update,
            worker=self.worker_id,
            on_unrecorded=self.inbox.done_without_handler,
        )
        self.poller: Poller | None = None
        self.webhook_url: str | None = settings.webhook_url
        # SQLite serves one process: a second worker on the same file is refused with one line.
        self._single = SingleProcessLock(settings.database_url)
        self._poller_lock = PollerLock(self.engine)

    async def start(self) -> None:
        self._single.acquire()
        await upgrade(self.engine)
        if self.sms is not None:
            self._channels_before = delivery.switch_on(Channel.SMS)
        inbox.install()
        services = self.application.bot_data.services = Services(
            uow=self.uow,
            clock=self.clock,
            qr_secret=self.settings.secret(),
            protector=protector_for(self.settings),
            rules=self.rules,
            default_locale=self.settings.default_locale,
            wake_sender=self.wake_sender,
            public_url=self.settings.public_url,
        )
        await self.application.initialize()  # calls getMe
        self.bot_username = self.bot_username or self.application.bot.username
        await tg_handlers.publish_commands(self.application, self.settings.default_locale)
        await self.workers.register(exclusive=self._sqlite)
        self.workers.start()
        if self._sqlite:
            await self._gain()  # one process: it is the sender
        else:
            # One sender for every worker (one pacer keeps Telegram's limits): the holder of the
            # advisory lock "sender"; the others queue and wake it with NOTIFY.
            self._listener = Listener(self.engine, "outbox", lambda _: self.sender.wake())
            await self._listener.start()
            self._leadership = Leadership(self.engine, "sender", on_gain=self._gain, on_lose=self._lose)
            await self._leadership.step()
            self._leadership.start()
        public = WebDeps(
            uow=self.uow,
            clock=self.clock,
            rules=self.rules,
            protector=services.protector,
            secret=services.qr_secret,
            bot_username=lambda: self.bot_username,
            wake_sender=self.wake_sender,
            secure_cookies=(self.settings.public_url or "").startswith("https://"),
        )
        app = make_app(OutboxStore(self.sessions), public)
        templating.setup(app)  # the public pages' and the console's templates (set up once)
        console.mount(
            app,
            ConsoleDeps(
                uow=self.uow,
                clock=self.clock,
                rules=self.rules,
                protector=services.protector,
                secret=services.qr_secret,
                secure_cookies=public.secure_cookies,
                wake_sender=self.wake_sender,
                public_url=self.settings.public_url,
                bot_username=lambda: self.bot_username,
                telegram_file=self._telegram_file,
                default_locale=self.settings.default_locale,
                # The console's flyers (bot/console/admin_files.py): asked when one is made.
                extra={
                    "flyer_font": self.settings.flyer_font_file,
                    "qr_to_landing": self.settings.qr_to_landing,
                },
            ),
        )
        metrics.add_route(app)
        if self.sms is not None:
            self.sms.mount(app)  # the provider's delivery receipts
        if self.webhook_url:
            secret = self.settings.webhook_secret
            assert secret is not None, "WEBHOOK_SECRET is checked with WEBHOOK_URL"
            add_webhook_route(
                app,
                urlsplit(self.webhook_url).path or "/",
                Webhook(secret.get_secret_value(), self.dispatcher, self.inbox),
            )
        if self._web_routes is not None:
            self._web_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.web_host, self.settings.web_port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.web_port = sockets[0].getsockname()[1] if sockets else self.settings.web_port
        await self.application.start()
        # PTB's JobQueue is only the ticker: what is due lives in the database.
        assert self.application.job_queue is not None, "python-telegram-bot[job-queue] is required"
        jobs = self.application.job_queue
        jobs.run_repeating(self._tick_job, interval=self.settings.tick_seconds, first=0, name="schedule-tick")
        jobs.run_repeating(self._sweep_job, interval=DRAFT_SWEEP_EVERY, first=30, name="drafts")
        jobs.run_repeating(self._deadline_job, interval=DEADLINE_TICK_EVERY, first=5, name="deadlines")
        jobs.run_repeating(self._take_over_job, interval=TAKE_OVER_EVERY, first=TAKE_OVER_EVERY, name="inbox")
        # What a dead worker (or this one before a restart) recorded and did not finish, first.
        await take_over(self.dispatcher, self.inbox, self._live_workers, own=True)
        if self.webhook_url:
            secret = self.settings.webhook_secret
            assert secret is not None
            await self.application.bot.set_webhook(
                self.webhook_url,
                secret_token=secret.get_secret_value(),
                allowed_updates=list(ALLOWED_UPDATES),
                max_connections=self.settings.webhook_max_connections,
                drop_pending_updates=False,
            )
        else:
            await self._poller_lock.acquire()  # Telegram serves one long-poller per token
            self.poller = Poller(self.application.bot, self.dispatcher, self.inbox, timeout=self.poll_timeout)
            await self.poller.start()
        log.info(
            "service started as @%s; health on http://%s:%s/healthz",
            self.bot_username,
            self.settings.web_host,
            self.web_port,
        )

    async def sweep_drafts(self) -> tuple[int, int]:
        """Remind idle drafts and discard stale ones (the JobQueue runs this every few minutes)."""
        async with self.uow() as uow:
            result = await router.sweep_drafts(uow, self.clock)
            await uow.commit()
        return result

    async def deadline_tick(self) -> int:
        """Remind, warn and escalate what is due (the JobQueue runs this every minute)."""
        async with self.uow() as uow:
            queued = await deadlines.tick(uow, self.clock, self.rules)
            await uow.commit()
        return queued

    async def purge_outbox(self, batch: int = 500) -> int:
        """Strip the personal data of messages delivered or failed more than OUTBOX_RETENTION_DAYS
        ago, batch after batch, each in its own transaction (the JobQueue runs this with the draft
        sweep); cases and their events keep theirs."""
        before = self.clock.now() - timedelta(days=self.settings.outbox_retention_days)
        total = 0
        while True:
            done = await outbox_retention.purge_done_before(self.sessions, before=before, limit=batch)
            total += done
            if done < batch:
                return total

    async def forget_counters(self) -> int:
        """Drop rate-limit counters older than their longest window (a day): they hold hashed
        phone and ID numbers, kept no longer than the limit needs them."""
        async with self.uow() as uow:
            gone = await uow.limits.forget(self.clock.now() - timedelta(days=2))
            await uow.commit()
        return gone

    async def _once(self, name: str, job: Callable[[], Awaitable[object]]) -> None:
        """Run a tick unless another worker is running it right now; timed for /metrics."""
        started = time.monotonic()
        ran, _ = await once_across_workers(self.engine, name, job)
        if ran:
            metrics.TICK_SECONDS.labels(name).observe(time.monotonic() - started)
        else:
            metrics.TICKS_SKIPPED.labels(name).inc()

    async def _deadline_job(self, context: object) -> None:
        await self._once("deadlines", self.deadline_tick)

    async def _sweep_job(self, context: object) -> None:
        await self._once("drafts", self._sweep)

    async def _sweep(self) -> None:
        reminded, discarded = await self.sweep_drafts()
        if reminded or discarded:
            log.info("drafts: %s reminded, %s discarded", reminded, discarded)
        await self.inbox.purge()
        purged = await self.purge_outbox()
        if purged:
            log.info("outbox: personal data removed from %s old delivered or failed messages", purged)
        await self.forget_counters()

    async def _telegram_file(self, file_id: str) -> bytes | None:
        """A photo or voice note sent in chat, fetched through the Bot API for the console; the
        last few are kept in memory (a case page is opened again and again)."""
        cached = self._files.get(file_id)
        if cached is not None:
            self._files.move_to_end(file_id)
            return cached
        try:
            found = await self.application.bot.get_file(file_id[:200])
            data = bytes(await found.download_as_bytearray())
        except TelegramError as exc:
            log.info("could not fetch a file for the console: %s", type(exc).__name__)
            return None
        self._files[file_id] = data
        while len(self._files) > FILES_KEPT:
            self._files.popitem(last=False)
        return data

    async def _unreachable(self, person_id: int) -> None:
        async with self.uow() as uow:
            await delivery.recipient_unreachable(uow, self.clock, person_id)
            await uow.commit()

    async def tick(self, limit: int = 200) -> schedule.TickResult:
        """Run what has come due, batch after batch, each batch in its own transaction."""
        total = schedule.TickResult()
        while True:
            async with self.uow() as uow:
                result = await schedule.tick(
                    uow,
                    self.clock,
                    self.schedule_handlers,
                    self.quiet_hours,
                    limit=limit,
                )
                await uow.commit()
            total = schedule.TickResult(
                total.done + result.done, total.deferred + result.deferred, total.failed + result.failed
            )
            if result.total < limit:
                return total

    async def _tick_job(self, context: object) -> None:
        try:
            await self._once("schedule", self.tick)
        except Exception:
            log.exception("schedule tick failed; the next one tries again")

    @property
    def leading(self) -> bool:
        """Whether this worker is the one that sends."""
        return self._sending

    async def _gain(self) -> None:
        self.uow.worker = self.workers.id
        self.uow.on_commit = self.sender.accept
        self.uow.answered = self.sender.answered
        self.sender.start()
        if self.sms is not None:
            self.sms.start()
        self._sending = True
        metrics.LEADER.set(1)

    async def _lose(self) -> None:
        """Another worker sends from now on (this one lost the 'sender' lock, or stops): messages
        are queued pending for it, and what this sender held is handed back."""
        self._sending = False
        metrics.LEADER.set(0)
        self.uow.worker = None
        self.uow.on_commit = None
        self.uow.answered = None
        await self.sender.stop()
        if self.sms is not None:
            await self.sms.stop()

    async def _retire(self) -> None:
        """At stop: let the sender's lock go, stop listening and beating, delete this worker's row
        (its remaining claims are free at once)."""
        if self._leadership is not None:
            await self._leadership.stop()  # a leader's on_lose stops its sender
            self._leadership = None
        elif self._sending:
            await self._lose()
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        try:
            await self.workers.stop()
        except Exception:
            log.warning("could not retire this worker's row; it is seen dead within seconds")

    def wake_sender(self) -> None:
        """After a commit that queued messages: the sender looks at once (here, or by NOTIFY)."""
        if self._sending:
            self.sender.wake()
            if self.sms is not None:
                self.sms.wake()
        elif self._listener is not None:
            task = asyncio.get_running_loop().create_task(self._notify())
            self._notifies.add(task)
            task.add_done_callback(self._notifies.discard)

    async def _notify(self) -> None:
        try:
            async with self.engine.connect() as connection:
                await notify(connection, "outbox")
                await connection.commit()
        except Exception:
            log.warning("could not wake the sending worker; it looks again within a second")

    async def _live_workers(self) -> list[str]:
        return await inbox.live_workers(self.sessions)

    async def _take_over_job(self, context: object) -> None:
        try:
            await take_over(self.dispatcher, self.inbox, self._live_workers)
        except Exception:
            log.exception("could not take over the inbox of a dead worker; trying again shortly")

    async def pause_updates(self) -> None:
        """Stop taking updates and wait for those in hand (the sandbox's reset). The poller keeps
        its offset, so what it had already handled is acknowledged by its next call."""
        if self.poller is not None:
            await self.poller.stop()
        await self.dispatcher.idle(timeout=10.0)

    async def resume_updates(self) -> None:
        if self.poller is not None:
            await self.poller.start()

    async def stop(self) -> None:
        if self.poller is not None:
            await self.poller.stop()
            self.poller = None
        await self.dispatcher.stop()
        if self.application.running:
            await self.application.stop()
        await self._retire()
        await self.sender.stop()
        if self.sms is not None:
            await self.sms.stop()
            await self.sms.close()
        if self._channels_before is not None:
            delivery.restore(self._channels_before)
            self._channels_before = None
        await self.application.shutdown()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self._poller_lock.release()
        await self.engine.dispose()
        self._single.release()

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def run_forever(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Service(settings) as service:
        print(
            f"Running as @{service.bot_username}; health: http://{settings.web_host}:{service.web_port}/healthz"
            " (Ctrl+C to stop)",
            flush=True,
        )
        await stop.wait()
