"""Drains the outbox to Telegram: in order per person, within the flood limits, with retries.

Delivery is exactly once in every case but one: when the process dies after Telegram accepted a
message and before its `sent` mark was committed (a few milliseconds a message), or a request
timed out after Telegram took it, the message is sent again once its lease runs out. Losing a
message is the worse fault, so that window is resolved towards delivering.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import warnings
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from telegram import Bot, InputFile
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from bot.pacing import Pacer
from domain.messages import Outgoing
from domain.model import UPLOAD_REF, Channel
from domain.ports import Clock
from handlers import limits
from handlers.render import render
from locales import catalog_for
from storage.outbox_store import Claimed, OutboxStore

log = logging.getLogger(__name__)

# Told when a recipient has blocked the bot (or deleted the account): person id.
Unreachable = Callable[[int], Awaitable[None]]


def retry_after_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB warns that the type becomes timedelta
        warnings.simplefilter("ignore")
        retry_after = exc.retry_after
    return retry_after.total_seconds() if isinstance(retry_after, timedelta) else float(retry_after)


class OutboxSender:
    """One background task; `wake()` after a commit makes it look at once.

    Up to `in_flight` claimed messages wait for their turn at once; the pacer decides when each
    goes. Several senders (processes) may share one database: claims never overlap. The flood
    limits are per bot, so give each of N processes a pacer of 30/N a second.
    """

    def __init__(
        self,
        store: OutboxStore,
        bot: Bot,
        clock: Clock,
        default_locale: str,
        *,
        pacer: Pacer | None = None,
        on_unreachable: Unreachable | None = None,
        in_flight: int = 60,
        lease: timedelta = timedelta(seconds=60),
        idle_poll: float = 1.0,
        max_attempts: int = 8,
        base_backoff: float = 1.0,
        max_backoff: float = 300.0,
    ) -> None:
        self.store = store
        self.bot = bot
        self.clock = clock
        self.default_locale = default_locale
        self.pacer = pacer or Pacer()
        self.on_unreachable = on_unreachable
        self.in_flight = in_flight
        self.lease = lease
        self.idle_poll = idle_poll
        self.max_attempts = max_attempts
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._deliveries: dict[int, asyncio.Task[None]] = {}
        self._sending: dict[int, asyncio.Future[None]] = {}

    @staticmethod
    def _forget(running: dict[int, Any], message_id: int, _: object) -> None:
        running.pop(message_id, None)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="outbox-sender")

    async def stop(self) -> None:
        """Stop claiming; messages already on the wire are finished and recorded, the rest
        are handed back at once so another sender (or the next start) takes them."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        deliveries = dict(self._deliveries)
        sending = dict(self._sending)
        unsent = [message_id for message_id in deliveries if message_id not in sending]
        for message_id in unsent:
            deliveries[message_id].cancel()
        await asyncio.gather(*deliveries.values(), return_exceptions=True)
        await asyncio.gather(*sending.values(), return_exceptions=True)
        if unsent:
            await self.store.release(unsent)

    async def _loop(self) -> None:
        while True:
            # Clear before looking, so a wake() that comes while we claim is not lost.
            self._wake.clear()
            try:
                claimed = await self.claim_more()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox claim failed; trying again shortly")
                claimed = 0
            if claimed:
                continue
            waits: set[asyncio.Future[object]] = {asyncio.ensure_future(self._wake.wait())}
            if self._deliveries:
                # A finished delivery frees room, and may let that person's next message go.
                waits.add(
                    asyncio.ensure_future(
                        asyncio.wait(list(self._deliveries.values()), return_when=asyncio.FIRST_COMPLETED)
                    )
                )
            try:
                await asyncio.wait(waits, timeout=self.idle_poll, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waits:
                    waiter.cancel()

    async def claim_more(self) -> int:
        """Claim due messages up to the room left and start delivering them."""
        room = self.in_flight - len(self._deliveries)
        if room <= 0:
            return 0
        claimed = await self.store.claim(self.clock.now(), room, self.lease)
        fresh = 0
        for message in claimed:
            if message.id in self._deliveries:
                # Its lease ran out while this sender still had it on the wire (a stalled commit,
                # a jump of the clock): the delivery under way records it; a second would repeat it.
                log.warning("outbox %s: lease ran out while in flight; not sent again", message.id)
                continue
            fresh += 1
            task = asyncio.create_task(self._deliver(message), name=f"outbox-{message.id}")
            self._deliveries[message.id] = task
            task.add_done_callback(functools.partial(self._forget, self._deliveries, message.id))
        return fresh

    async def drain_once(self) -> int:
        """Claim one batch and deliver it to the end; returns how many were claimed."""
        claimed = await self.store.claim(self.clock.now(), self.in_flight, self.lease)
        if claimed:
            await asyncio.gather(*(self._deliver(message) for message in claimed))
        return len(claimed)

    def _backoff(self, attempts: int) -> float:
        return float(min(self.max_backoff, self.base_backoff * 2 ** (attempts - 1)))

    async def _later(self, message: Claimed, seconds: float, error: str) -> None:
        """Put a message back for later without counting an attempt (it was never sent)."""
        await self.store.retry(
            message.id, self.clock.now() + timedelta(seconds=seconds), message.attempts, error
        )

    async def _deliver(self, message: Claimed) -> None:
        attempts = message.attempts + 1
        if message.channel != Channel.TELEGRAM.value or message.address is None:
            await self.store.failed(message.id, attempts, "no address on this channel")
            log.warning(
                "outbox %s: person %s has no %s address", message.id, message.person_id, message.channel
            )
            return
        chat_id = int(message.address)
        paused = self.pacer.paused_for(chat_id)
        if paused > 0:
            await self._later(message, paused, "429")
            return
        lost = False

        async def still_mine() -> bool:
            # Renew the lease once the chat's turn has come; if it ran out while this waited
            # and another sender took the message, this one must not send it.
            nonlocal lost
            if message.claimed_until is None:
                return True
            lost = not await self.store.still_mine(message, self.clock.now() + self.lease)
            return not lost

        # Never hold a claim so long that its lease could run out while it waits.
        finish = await self.pacer.turn(
            chat_id, wait_at_most=self.lease.total_seconds() / 3, still_wanted=still_mine
        )
        if lost:
            log.warning("outbox %s: claim lost while waiting; left to the sender that holds it", message.id)
            return
        if finish is None:
            await self._later(message, 0, "waiting for the chat's turn")
            return
        # Once on the wire, the send and its record finish even if the sender is stopped.
        sending = asyncio.ensure_future(self._send(message, chat_id, attempts, finish))
        self._sending[message.id] = sending
        sending.add_done_callback(functools.partial(self._forget, self._sending, message.id))
        await asyncio.shield(sending)

    async def _send(self, message: Claimed, chat_id: int, attempts: int, finish: Callable[[], None]) -> None:
        try:
            await self._send_and_record(message, chat_id, attempts, finish)
        finally:
            finish()  # idempotent; normally called as soon as Telegram answered

    async def _send_and_record(
        self, message: Claimed, chat_id: int, attempts: int, finish: Callable[[], None]
    ) -> None:
        outgoing = Outgoing.from_json(message.payload)
        text, markup = render(outgoing, catalog_for(message.locale, self.default_locale))
        limit = limits.TEXT_LIMIT if outgoing.media is None else limits.CAPTION_LIMIT
        if limits.utf16_len(text) > limit:
            # Too long messages are queued in parts; this one was not (queued before that, or its
            # recipient changed language since): cut it rather than have Telegram refuse it all.
            log.warning("outbox %s: %s too long to send whole; cut to fit", message.id, outgoing.template)
            text = limits.clip(text, limit)
        file: str | InputFile = ""
        if outgoing.media is not None:
            file = outgoing.media["file_id"]
            if file.startswith(UPLOAD_REF):
                # A photo from the web form: its bytes are in the database, not on Telegram yet.
                upload = await self.store.upload(int(file[len(UPLOAD_REF) :]))
                if upload is None:
                    await self.store.failed(message.id, attempts, "the uploaded file is gone")
                    return
                content_type, data = upload
                suffix = {"image/png": "png", "image/webp": "webp"}.get(content_type, "jpg")
                file = InputFile(data, filename=f"photo.{suffix}")
        try:
            try:
                if outgoing.media is None:
                    sent = await self.bot.send_message(chat_id, text, reply_markup=markup)
                elif outgoing.media.get("kind") == "photo":
                    sent = await self.bot.send_photo(chat_id, file, caption=text, reply_markup=markup)
                elif outgoing.media.get("kind") == "voice":
                    sent = await self.bot.send_voice(chat_id, file, caption=text, reply_markup=markup)
                else:
                    sent = await self.bot.send_document(chat_id, file, caption=text, reply_markup=markup)
            finally:
                finish()  # the pacer's clock starts when the answer is in, not when it is recorded
        except RetryAfter as exc:
            # Telegram said how long to wait; that is not a failed attempt, and only this chat waits.
            delay = retry_after_seconds(exc)
            self.pacer.pause(chat_id, delay)
            await self._later(message, delay, "429")
        except Forbidden as exc:
            await self.store.failed(message.id, attempts, f"forbidden: {exc.message}")
            log.warning(
                "outbox %s: recipient %s unreachable (%s)", message.id, message.person_id, exc.message
            )
            if self.on_unreachable is not None:
                try:
                    await self.on_unreachable(message.person_id)
                except Exception:
                    log.exception("could not record that person %s is unreachable", message.person_id)
        except BadRequest as exc:
            await self.store.failed(message.id, attempts, f"bad request: {exc.message}")
            log.error("outbox %s refused by Telegram: %s", message.id, exc.message)
        except (TelegramError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            if attempts >= self.max_attempts:
                await self.store.failed(message.id, attempts, error)
                log.error("outbox %s failed after %s attempts: %s", message.id, attempts, error)
            else:
                later = self.clock.now() + timedelta(seconds=self._backoff(attempts))
                await self.store.retry(message.id, later, attempts, error)
        else:
            await self.store.sent(message.id, self.clock.now(), str(sent.message_id))
