"""Drains the outbox to Telegram: in order per person, with retries and backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from datetime import timedelta

from telegram import Bot
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from domain.messages import Outgoing
from domain.model import Channel
from domain.ports import Clock
from handlers.render import render
from locales import catalog_for
from storage.outbox_store import Claimed, OutboxStore

log = logging.getLogger(__name__)


class OutboxSender:
    """One background task; `wake()` after a commit makes it look at once."""

    def __init__(
        self,
        store: OutboxStore,
        bot: Bot,
        clock: Clock,
        default_locale: str,
        *,
        batch: int = 25,
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
        self.batch = batch
        self.lease = lease
        self.idle_poll = idle_poll
        self.max_attempts = max_attempts
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="outbox-sender")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            # Clear before looking, so a wake() that comes while we drain is not lost.
            self._wake.clear()
            try:
                busy = await self.drain_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox pass failed; trying again shortly")
                busy = 0
            if busy:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.idle_poll)

    async def drain_once(self) -> int:
        """Send one batch of due messages; returns how many were claimed."""
        claimed = await self.store.claim(self.clock.now(), self.batch, self.lease)
        if claimed:
            await asyncio.gather(*(self._deliver(message) for message in claimed))
        return len(claimed)

    def _backoff(self, attempts: int) -> float:
        return float(min(self.max_backoff, self.base_backoff * 2 ** (attempts - 1)))

    async def _deliver(self, message: Claimed) -> None:
        attempts = message.attempts + 1
        if message.channel != Channel.TELEGRAM.value or message.address is None:
            await self.store.failed(message.id, attempts, "no address on this channel")
            log.warning(
                "outbox %s: person %s has no %s address", message.id, message.person_id, message.channel
            )
            return
        text, markup = render(
            Outgoing.from_json(message.payload), catalog_for(message.locale, self.default_locale)
        )
        outgoing = Outgoing.from_json(message.payload)
        try:
            chat = int(message.address)
            if outgoing.media and outgoing.media[0] == "voice":
                sent = await self.bot.send_voice(
                    chat, outgoing.media[1], caption=text[:1024], reply_markup=markup
                )
            elif outgoing.media:
                sent = await self.bot.send_photo(
                    chat, outgoing.media[1], caption=text[:1024], reply_markup=markup
                )
            else:
                sent = await self.bot.send_message(chat, text, reply_markup=markup)
        except RetryAfter as exc:
            # Telegram said how long to wait; that is not a failed attempt.
            with warnings.catch_warnings():  # PTB warns that the type becomes timedelta
                warnings.simplefilter("ignore")
                retry_after = exc.retry_after
            delay = retry_after.total_seconds() if isinstance(retry_after, timedelta) else float(retry_after)
            await self.store.retry(
                message.id, self.clock.now() + timedelta(seconds=delay), message.attempts, "429"
            )
        except Forbidden as exc:
            await self.store.failed(message.id, attempts, f"forbidden: {exc.message}")
            log.warning(
                "outbox %s: recipient %s unreachable (%s)", message.id, message.person_id, exc.message
            )
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
