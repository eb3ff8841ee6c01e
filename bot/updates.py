"""The update path: updates of different chats are handled at the same time, one chat's in order.

Updates come in through long polling (`Poller`) or the webhook (`webhook_view`), are recorded in the
inbox (storage/inbox.py) before Telegram is told they arrived, and are handed to the `Dispatcher`,
which runs PTB's `Application.process_update` for each: concurrently across chats, strictly in
arrival order within a chat (each update waits for the one before it of the same chat). PTB's own
Updater and update queue are not used, so that nothing acknowledges an update before it is
recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from telegram import Bot, Update
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TelegramError, TimedOut

from bot import metrics
from storage import inbox

log = logging.getLogger(__name__)

# The updates the service handles; everything else Telegram would send is never asked for.
ALLOWED_UPDATES = ("message", "callback_query", "my_chat_member")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1 << 20  # an update is a few KB; a webhook body over 1 MB is not Telegram's


@dataclass
class Incoming:
    update_id: int
    chat_id: int | None
    payload: dict[str, Any]
    received: float  # time.monotonic() when it arrived
    update: Update | None = None


def _kind(payload: dict[str, Any]) -> str:
    for kind in ("message", "callback_query", "my_chat_member"):
        if kind in payload:
            return kind
    return "other"


class Dispatcher:
    """Runs `process(update)` for each submitted update: different chats at once (at most
    `limit` at a time), one chat's strictly one after the other in submission order."""

    def __init__(
        self,
        bot: Bot,
        process: Callable[[Update], Awaitable[Any]],
        *,
        worker: str | None,
        limit: int = 256,
        on_unrecorded: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        self.bot = bot
        self.process = process
        self.worker = worker
        self._slots = asyncio.Semaphore(limit)
        self._tails: dict[int, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: set[int] = set()
        self.on_unrecorded = on_unrecorded  # told of a recorded-pending update no handler committed

    def in_flight(self, update_id: int) -> bool:
        return update_id in self._in_flight

    def submit(self, item: Incoming, *, recorded: bool = False) -> asyncio.Task[None] | None:
        """Queue an update behind the earlier ones of its chat; `recorded` when its inbox row is
        pending (webhook, or taken over), so it is marked done even if no handler commits. An
        update already being handled is not queued again (None)."""
        if item.update_id in self._in_flight:
            return None
        loop = asyncio.get_running_loop()
        key = item.chat_id if item.chat_id is not None else 0
        before = self._tails.get(key)
        mine: asyncio.Future[None] = loop.create_future()
        self._tails[key] = mine
        self._in_flight.add(item.update_id)
        metrics.INBOX_OPEN.inc()
        task = loop.create_task(self._run(item, key, before, mine, recorded), name=f"update-{item.update_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _run(
        self,
        item: Incoming,
        key: int,
        before: asyncio.Future[None] | None,
        mine: asyncio.Future[None],
        recorded: bool,
    ) -> None:
        try:
            if before is not None:
                await before  # never raises: set in the finally below
            async with self._slots:
                await self._handle(item, recorded)
        finally:
            self._in_flight.discard(item.update_id)
            metrics.INBOX_OPEN.dec()
            mine.set_result(None)
            if self._tails.get(key) is mine:
                del self._tails[key]

    async def _handle(self, item: Incoming, recorded: bool) -> None:
        kind = _kind(item.payload)
        metrics.INBOX_LAG.observe(time.monotonic() - item.received)
        mark = inbox.InboxMark(item.update_id, item.chat_id, self.worker)
        token = inbox.current.set(mark)
        result = "ok"
        try:
            update = item.update or Update.de_json(item.payload, self.bot)
            await self.process(update)
        except Exception:  # process_update hands handler errors to the error handler; this is the rest
            result = "error"
            log.exception("update %s could not be processed", item.update_id)
        finally:
            inbox.current.reset(token)
            metrics.UPDATES.labels(kind, result).inc()
            metrics.UPDATE_SECONDS.labels(kind).observe(time.monotonic() - item.received)
        if recorded and not mark.recorded and self.on_unrecorded is not None:
            try:
                await self.on_unrecorded(item.update_id)
            except Exception:
                log.warning("could not mark update %s done", item.update_id)

    async def idle(self, timeout: float | None = None) -> None:
        """Wait until every submitted update is handled."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    async def stop(self, timeout: float = 10.0) -> None:
        await self.idle(timeout)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def incoming(update: Update, received: float) -> Incoming:
    payload = update.to_dict()
    return Incoming(update.update_id, inbox.chat_of(payload), payload, received, update)


class Poller:
    """Long polling that acknowledges a batch (the next offset) only once it is recorded: each
    update is processed and its handler's transaction marks it done, or, if still running after
    `ack_within` seconds, it is recorded pending with its payload. After a restart, updates already
    recorded are not run again when Telegram redelivers them."""

    def __init__(
        self,
        bot: Bot,
        dispatcher: Dispatcher,
        store: inbox.InboxStore,
        *,
        timeout: int = 10,
        ack_within: float = 0.25,
    ) -> None:
        self.bot = bot
        self.dispatcher = dispatcher
        self.store = store
        self.timeout = timeout
        self.ack_within = ack_within
        self._task: asyncio.Task[None] | None = None
        self._known: set[int] = set()
        self._offset: int | None = None

    async def prepare(self) -> None:
        """Before the first poll: no webhook left set, and what is recorded already known."""
        with contextlib.suppress(TelegramError):
            # A webhook left set would make getUpdates fail; pending updates are kept.
            await self.bot.delete_webhook(drop_pending_updates=False)
        self._known = await self.store.known()

    async def start(self) -> None:
        await self.prepare()
        self._task = asyncio.create_task(self._loop(), name="poller")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        backoff = 0.5
        while True:
            try:
                await self.poll_once()
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except InvalidToken:
                log.error("Telegram refused the bot token; polling stopped")
                return
            except Conflict:
                log.error("another poller uses this bot token (Telegram answered 409); retrying in 5 s")
                await asyncio.sleep(5)
            except RetryAfter as exc:
                await asyncio.sleep(float(getattr(exc, "_retry_after", 1) or 1))
            except (TimedOut, NetworkError) as exc:
                log.warning("getUpdates failed (%s); retrying in %.1f s", type(exc).__name__, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
            except Exception:
                log.exception("polling failed; retrying in %.1f s", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    async def poll_once(self) -> int:
        """One getUpdates; returns how many updates it brought."""
        updates = await self.bot.get_updates(
            offset=self._offset,
            timeout=self.timeout,
            allowed_updates=list(ALLOWED_UPDATES),
            read_timeout=self.timeout + 10,
        )
        if not updates:
            return 0
        now = time.monotonic()
        tasks: list[tuple[Incoming, asyncio.Task[None]]] = []
        for update in updates:
            if update.update_id in self._known or self.dispatcher.in_flight(update.update_id):
                continue  # recorded before a restart (or taken over from the inbox): not again
            item = incoming(update, now)
            task = self.dispatcher.submit(item)
            if task is not None:
                tasks.append((item, task))
        if tasks:
            await asyncio.wait([task for _, task in tasks], timeout=self.ack_within)
            slow = [(item.update_id, item.chat_id, item.payload) for item, task in tasks if not task.done()]
            if slow:
                # Still running: record them pending before acknowledging, so a crash loses nothing.
                await self.store.record_many(slow)
        self._offset = updates[-1].update_id + 1
        if len(self._known) > 10_000:
            self._known = {u for u in self._known if u >= updates[0].update_id}
        return len(updates)


@dataclass
class Webhook:
    secret: str
    dispatcher: Dispatcher
    store: inbox.InboxStore


WEBHOOK: web.AppKey[Webhook] = web.AppKey("webhook", Webhook)


async def webhook_view(request: web.Request) -> web.Response:
    """POST from Telegram: checked by its secret header, recorded, answered 200, then processed."""
    hook = request.app[WEBHOOK]
    given = request.headers.get(SECRET_HEADER, "")
    if not hmac.compare_digest(given.encode(), hook.secret.encode()):
        return web.Response(status=403, text="forbidden")
    if request.content_length is not None and request.content_length > MAX_UPDATE_BYTES:
        return web.Response(status=413, text="too large")
    try:
        body = await request.content.read(MAX_UPDATE_BYTES + 1)
        if len(body) > MAX_UPDATE_BYTES:
            return web.Response(status=413, text="too large")
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return web.Response(status=400, text="not an update")
    update_id = payload.get("update_id") if isinstance(payload, dict) else None
    if not isinstance(update_id, int) or isinstance(update_id, bool) or not 0 < update_id < 2**53:
        return web.Response(status=400, text="not an update")
    received = time.monotonic()
    chat_id = inbox.chat_of(payload)
    if await hook.store.record(update_id, chat_id, payload):
        hook.dispatcher.submit(Incoming(update_id, chat_id, payload, received), recorded=True)
    return web.Response(status=200, text="ok")


def add_webhook_route(app: web.Application, path: str, hook: Webhook) -> None:
    app[WEBHOOK] = hook
    app.router.add_post(path, webhook_view)


async def take_over(
    dispatcher: Dispatcher,
    store: inbox.InboxStore,
    live: Callable[[], Awaitable[list[str]]],
    *,
    own: bool = False,
) -> int:
    """Process again, from their payloads, the updates recorded pending by a worker that is gone
    (and, with `own`, at start, by this worker's id); returns how many were taken."""
    taken = 0
    while True:
        pending = await store.take_over(await live(), own=own)
        fresh = [p for p in pending if not dispatcher.in_flight(p.update_id)]
        for item in fresh:
            dispatcher.submit(
                Incoming(item.update_id, inbox.chat_of(item.payload), item.payload, time.monotonic()),
                recorded=True,
            )
        taken += len(fresh)
        if len(pending) < 500:
            return taken
