"""Drains the outbox to Telegram: in order per person, within the flood limits, with retries.

Delivery is exactly once in every case but one: when the process dies after Telegram accepted a
message and before its `sent` mark was committed (the mark waits at most for the batch being
committed before it, a few milliseconds), or a request timed out after Telegram took it, the
message is sent again: after a time-out by this worker on its next attempt, after a death by
the next worker to claim it (at once, as the dead worker's heartbeat stops). Losing a message is
the worse fault, so that window is resolved towards delivering.

A live worker's claims are never taken by another, and a worker sends only while its own
heartbeat is fresh (`WorkerRegistry.fresh`), stopping well before other workers could take it
for dead; after a gap in its heartbeat it drops what it held unsent and claims it again.

How a message reaches the sender: a unit of work that wrote it already claimed by this worker
hands it over in memory after its commit (`accept`); anything else (rows written pending by
other workers, by ticks, older rows, a dead worker's claims) is claimed from the database, all
due rows of each person in one transaction, every `idle_poll` seconds and on `wake()`. Each
person's messages wait in a queue in id order and go one after the other as the pacer allows;
one that must wait (429, a server error) keeps the head of its queue. How each attempt went is
written by a recorder in batches: one transaction for everything that accumulated meanwhile.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import functools
import logging
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from telegram import Bot, InlineKeyboardMarkup, InputFile, ReplyKeyboardMarkup, ReplyKeyboardRemove
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from bot import limits, metrics
from bot.pacing import Pacer
from domain.messages import Outgoing
from domain.model import UPLOAD_REF, Channel
from domain.ports import Clock
from locales import catalog_for
from locales.render import text_of
from storage.db import urgent
from storage.outbox_store import DEFAULT_STALE_AFTER, Claimed, Mark, OutboxStore
from storage.workers import WorkerRegistry, live_ids, utcnow

log = logging.getLogger(__name__)

# The rows this sender claims; text messages (SMS) have their own sender (bot/sms/sender.py).
TELEGRAM_ONLY = (Channel.TELEGRAM.value,)

# Told when a recipient has blocked the bot (or deleted the account): person id.
Unreachable = Callable[[int], Awaitable[None]]

NOT_MODIFIED = "message is not modified"
# The pressed message is gone or too old to edit (or a photo, which has no text to edit).
EDIT_GONE = (
    "message to edit not found",
    "message can't be edited",
    "there is no text in the message to edit",
)


def retry_after_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB warns that the type becomes timedelta
        warnings.simplefilter("ignore")
        retry_after = exc.retry_after
    return retry_after.total_seconds() if isinstance(retry_after, timedelta) else float(retry_after)


class Recorder:
    """Group commit of the sender's marks: everything that accumulated is written in ONE
    transaction, then the next batch. When idle, a mark is written at once; while a batch
    commits, new marks wait for the next one. A failed write is tried again (the marks kept)."""

    def __init__(
        self,
        store: OutboxStore,
        worker: str,
        on_recorded: Callable[[list[Mark]], None] | None = None,
        registry: WorkerRegistry | None = None,
        spacing: float = 0.005,
    ) -> None:
        self.store = store
        self.worker = worker
        self.registry = registry  # its heartbeat rides along with the marks
        self.spacing = spacing
        self._last_write = float("-inf")
        self.on_recorded = on_recorded
        self._marks: list[Mark] = []
        self._writing: list[Mark] = []  # the batch being committed
        self._task: asyncio.Task[None] | None = None
        self.batches = 0

    def answered(self, message_id: int) -> Mark | None:
        """The mark of outbox row `message_id` if Telegram has answered for it (sent, or given
        up) and only the mark is still to be committed."""
        found = None
        for mark in (*self._writing, *self._marks):
            if mark.id == message_id and mark.kind in ("sent", "failed"):
                found = mark
        return found

    def __len__(self) -> int:
        return len(self._marks)

    def add(self, mark: Mark) -> None:
        self._marks.append(mark)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._write(), name="outbox-recorder")

    async def _write(self) -> None:
        delay = 0.05
        while self._marks:
            # SQLite runs on the loop's thread (storage/sqlite_inline.py): a commit no longer
            # yields, so marks would not pile up while one is written. At most one batch every
            # `spacing` seconds: a mark after a quiet spell is written at once, a stream of them
            # in batches.
            wait = self._last_write + self.spacing - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._last_write = time.monotonic()
            batch, self._marks = self._marks, []
            self._writing = batch
            beat = self.registry.piggyback() if self.registry is not None else None
            try:
                with urgent():  # the sooner a "sent" is committed, the less a crash sends twice
                    if await self.store.record(batch, self.worker, heartbeat=beat and beat[0]):
                        assert self.registry is not None and beat is not None
                        self.registry.beaten(beat[1])
            except asyncio.CancelledError:
                self._marks[:0] = batch
                raise
            except Exception:
                log.exception("outbox: could not record %s results; trying again", len(batch))
                self._marks[:0] = batch
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            finally:
                self._writing = []
            delay = 0.05
            self.batches += 1
            metrics.DB_WRITES.labels(by="sender").inc()
            if self.on_recorded is not None:
                self.on_recorded(batch)

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every mark added so far is committed; False if `timeout` ran out first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._marks or (self._task is not None and not self._task.done()):
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._write(), name="outbox-recorder")
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            await asyncio.wait({self._task}, timeout=left)
        return True


# A message's keyboard on Telegram in the reader's language (the chat front end's, given by the wiring).
Keyboard = Callable[[Outgoing, str], InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None]


class OutboxSender:
    """Per-person queues fed in memory (`accept`) and from the database; `wake()` after a
    commit that wrote rows pending makes it look at once.

    Up to `in_flight` messages (2 × the overall rate by default, at least 60) are held at once;
    the pacer decides when each goes. Several senders (processes) may share one database, each
    with its own `WorkerRegistry` (started): claims never overlap. Without `worker` the sender
    registers nothing and claims under an id of its own; it must then be the only sender on its
    database (as on SQLite). The flood limits are per bot: give each of N processes 1/N of them.
    """

    def __init__(
        self,
        store: OutboxStore,
        bot: Bot,
        clock: Clock,
        default_locale: str,
        *,
        keyboard: Keyboard,
        pacer: Pacer | None = None,
        on_unreachable: Unreachable | None = None,
        worker: WorkerRegistry | None = None,
        in_flight: int | None = None,
        idle_poll: float = 1.0,
        # Telegram's own failures (5xx, a time-out, a network error) are retried after 1, 2, 4 and
        # then every 8 s, for about an hour: someone waits for most of these messages, and an
        # outage of Telegram is no reason to drop a receipt. The pacer keeps the total at its rate.
        max_attempts: int = 450,
        base_backoff: float = 1.0,
        max_backoff: float = 8.0,
        # Our own failures (a message that cannot be rendered) do not mend by waiting.
        max_own_attempts: int = 3,
        on_wire: int | None = None,
        sample_every: float = 10.0,
        stop_flush_timeout: float = 10.0,
    ) -> None:
        self.store = store
        self.bot = bot
        self.clock = clock
        self.default_locale = default_locale
        self.keyboard = keyboard
        self.pacer = pacer or Pacer()
        self.on_unreachable = on_unreachable
        self.worker = worker
        self.worker_id = worker.id if worker is not None else f"solo-{uuid.uuid4().hex[:16]}"
        self.in_flight = in_flight or max(60, 2 * self.pacer.per_second)
        # Requests on the wire at once: more than the HTTP pool holds (256, bot/service.py) would
        # only wait in the pool.
        self.on_wire = on_wire or min(128, max(16, self.pacer.per_second // 4))
        self._wire_slots = asyncio.Semaphore(self.on_wire)
        self.idle_poll = idle_poll
        self.max_attempts = max_attempts
        self.max_own_attempts = min(max_own_attempts, max_attempts)
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.sample_every = sample_every
        self.stop_flush_timeout = stop_flush_timeout
        self.recorder = Recorder(store, self.worker_id, self._recorded, worker)
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._queues: dict[int, list[Claimed]] = {}  # person id -> held messages in id order
        self._held: set[int] = set()  # claimed here and not yet recorded as done
        self._wire: dict[int, asyncio.Future[None]] = {}  # on the wire: finished even on stop
        self._runners: dict[int, asyncio.Task[int]] = {}
        self._running = False
        self._stopping = False
        self._epoch = worker.epoch if worker is not None else 0
        self._resync = False
        self._sampled_at = float("-inf")

    # ------------------------------------------------------------------ feeding

    def wake(self) -> None:
        self._wake.set()
        self._notify()

    def _notify(self) -> None:
        """Let every waiting queue look again (a wake, the clock moved, the worker changed)."""
        self._changed.set()
        self._changed = asyncio.Event()

    def accept(self, claimed: list[Claimed]) -> None:
        """Messages a unit of work wrote already claimed by this worker, after its commit."""
        if self._stopping:
            # Left claimed by this worker: free for the next one once this worker's row is gone.
            log.info("outbox: %s messages committed while the sender stops; left to the next", len(claimed))
            return
        for message in claimed:
            if message.id in self._held:
                continue
            self._held.add(message.id)
            bisect.insort(self._queues.setdefault(message.person_id, []), message, key=_id)
            if self._running:
                self._ensure_runner(message.person_id)

    def answered(self, message_id: int) -> Mark | None:
        """The mark of this outbox row if Telegram answered for it (sent or given up) and only the
        mark is still to be committed: the row looks open in the database but is not on its way."""
        return self.recorder.answered(message_id)

    @property
    def held(self) -> int:
        return len(self._held)

    # ------------------------------------------------------------------ running

    def start(self) -> None:
        self._running = True
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name="outbox-sender")
        for person_id in list(self._queues):
            self._ensure_runner(person_id)

    async def stop(self) -> None:
        """Stop claiming; messages already on the wire are finished and recorded, the rest are
        handed back at once (pending) so another sender, or the next start, takes them."""
        self._stopping = True
        self._running = False
        if self._task is not None:
            # Not cancelled: a claim cut off mid-transaction could leave SQLite's write lock held.
            self._wake.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        runners = list(self._runners.values())
        for runner in runners:
            runner.cancel()
        await asyncio.gather(*runners, return_exceptions=True)
        await asyncio.gather(*list(self._wire.values()), return_exceptions=True)
        unsent = [message.id for queue in self._queues.values() for message in queue]
        self._queues.clear()
        for message_id in unsent:
            self.recorder.add(Mark("release", message_id))
        if not await self.recorder.flush(self.stop_flush_timeout):
            log.error("outbox: %s results could not be recorded before the stop", len(self.recorder))

    async def _loop(self) -> None:
        while not self._stopping:
            # Clear before looking, so a wake() that comes while we claim is not lost.
            self._wake.clear()
            for person_id in list(self._queues):
                self._ensure_runner(person_id)
            room = self.in_flight - len(self._held)
            claimed = 0
            try:
                claimed = await self.claim_more()
                await self._sample()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox claim failed; trying again shortly")
            if (claimed and claimed >= room) or self._stopping:
                continue  # a full batch: there may be more
            await _wait(self._wake, self.idle_poll)

    def _ensure_runner(self, person_id: int) -> None:
        task = self._runners.get(person_id)
        if task is None or task.done():
            task = asyncio.create_task(self._serve(person_id, drain=False), name=f"outbox-person-{person_id}")
            self._runners[person_id] = task
            task.add_done_callback(functools.partial(self._runner_done, person_id))

    def _runner_done(self, person_id: int, task: asyncio.Task[int]) -> None:
        if self._runners.get(person_id) is task:
            del self._runners[person_id]
        if task.cancelled():
            return
        if task.exception() is not None:
            # The claim loop starts it again within `idle_poll`.
            log.error("outbox: the queue of person %s failed", person_id, exc_info=task.exception())
        elif self._running and self._queues.get(person_id):
            self._ensure_runner(person_id)

    async def claim_more(self) -> int:
        """Claim due messages from the database up to the room left; returns how many."""
        self._check_epoch()
        room = self.in_flight - len(self._held)
        if room <= 0:
            return 0
        live = self.worker.live_ids() if self.worker is not None else live_ids(utcnow(), DEFAULT_STALE_AFTER)
        mine = self._resync
        claimed = await self.store.claim_for(
            self.worker_id, self.clock.now(), room, live=live, mine=mine, channels=TELEGRAM_ONLY
        )
        if mine:
            self._resync = False
            self._notify()
        if claimed:
            metrics.DB_WRITES.labels(by="sender").inc()
        fresh = [message for message in claimed if message.id not in self._held]
        self.accept(fresh)
        return len(fresh)

    async def drain_once(self) -> int:
        """Claim what is due, then send every queue's due messages (not waiting for later ones)
        and record the results; returns how many attempts were made."""
        await self.claim_more()
        persons = [p for p in self._queues if p not in self._runners]
        attempted = await asyncio.gather(*(self._serve(p, drain=True) for p in persons))
        await self.recorder.flush()
        return sum(attempted)

    async def _sample(self) -> None:
        """Outbox depth for the metrics: a cheap read, at most every `sample_every` seconds."""
        if time.monotonic() - self._sampled_at < self.sample_every:
            return
        self._sampled_at = time.monotonic()
        counts, oldest = await self.store.sample(self.clock.now())
        for state, count in counts.items():
            metrics.OUTBOX_DEPTH.labels(state=state).set(count)
        metrics.OUTBOX_OLDEST_PENDING.set(oldest)

    # ------------------------------------------------------------------ one person's queue

    def _check_epoch(self) -> None:
        """After a gap in this worker's heartbeat, others may have taken its claims: drop what
        is held unsent and claim it again (those still ours come back)."""
        if self.worker is None or self.worker.epoch == self._epoch:
            return
        self._epoch = self.worker.epoch
        for person_id, queue in list(self._queues.items()):
            kept = [message for message in queue if message.id in self._wire]
            for message in queue:
                if message.id not in self._wire:
                    self._held.discard(message.id)
            if kept:
                self._queues[person_id] = kept
            else:
                del self._queues[person_id]
        self._resync = True
        self._wake.set()

    def _may_send(self) -> bool:
        self._check_epoch()
        return not self._resync and (self.worker is None or self.worker.fresh())

    def _wait(self, message: Claimed) -> float:
        """Seconds before `message` may go: its due time (service clock), a pause Telegram asked."""
        wait = 0.0
        if message.next_attempt_at is not None:
            wait = (message.next_attempt_at - self.clock.now()).total_seconds()
        if message.address is not None and message.channel == Channel.TELEGRAM.value:
            wait = max(wait, self.pacer.paused_for(int(message.address)))
        return wait

    async def _sleep(self, seconds: float) -> None:
        await _wait(self._changed, max(0.001, min(seconds, self.idle_poll)))

    async def _serve(self, person_id: int, *, drain: bool) -> int:
        """Send this person's messages one after the other, in order; returns the attempts.
        `drain`: return as soon as the head must wait, instead of waiting."""
        attempted = 0
        while True:
            queue = self._queues.get(person_id)
            if not queue:
                self._queues.pop(person_id, None)
                return attempted
            head = queue[0]
            wait = self._wait(head)
            if wait > 0 or not self._may_send():
                if drain:
                    return attempted
                await self._sleep(wait if wait > 0 else self.idle_poll)
                continue
            await self._attempt(head)
            attempted += 1

    def _current(self, message: Claimed) -> bool:
        queue = self._queues.get(message.person_id)
        return queue is not None and bool(queue) and queue[0] is message

    async def _attempt(self, message: Claimed) -> None:
        if message.channel != Channel.TELEGRAM.value or message.address is None:
            log.warning(
                "outbox %s: person %s has no %s address", message.id, message.person_id, message.channel
            )
            self._done(
                message, Mark("failed", message.id, message.attempts + 1, error="no address on this channel")
            )
            return
        chat_id = int(message.address)
        finish = await self.pacer.turn(chat_id)
        assert finish is not None  # always a turn when nothing limits the wait
        if not self._current(message) or not self._may_send() or self.pacer.paused_for(chat_id) > 0:
            finish()  # dropped, replaced or paused while it waited: look again
            return
        try:
            await self._wire_slots.acquire()
        except BaseException:
            finish()
            raise
        # Once on the wire, the send and its record finish even if the sender is stopped.
        sending = asyncio.ensure_future(self._send(message, chat_id, finish))
        sending.add_done_callback(lambda _: self._wire_slots.release())
        self._wire[message.id] = sending
        sending.add_done_callback(functools.partial(_forget, self._wire, message.id))
        await asyncio.shield(sending)

    def _done(self, message: Claimed, mark: Mark) -> None:
        """The message is finished here (sent or given up): off its queue, its mark recorded."""
        queue = self._queues.get(message.person_id)
        if queue is not None:
            queue[:] = [m for m in queue if m.id != message.id]
        self.recorder.add(mark)

    def _later(self, message: Claimed, seconds: float, attempts: int, error: str) -> None:
        """The message waits, still claimed here, at the head of its person's queue."""
        at = self.clock.now() + timedelta(seconds=seconds)
        queue = self._queues.get(message.person_id)
        if queue is not None:
            queue[:] = [
                replace(m, attempts=attempts, next_attempt_at=at) if m.id == message.id else m for m in queue
            ]
        self.recorder.add(Mark("retry", message.id, attempts, at=at, error=error))

    def _recorded(self, batch: list[Mark]) -> None:
        was_full = len(self._held) >= self.in_flight // 2
        for mark in batch:
            if mark.kind != "retry":
                self._held.discard(mark.id)
        if was_full and len(self._held) < self.in_flight // 2:
            self._wake.set()  # room for a large claim again (not a trickle of small ones)

    def _backoff(self, attempts: int) -> float:
        return float(min(self.max_backoff, self.base_backoff * 2 ** (attempts - 1)))

    async def _send(self, message: Claimed, chat_id: int, finish: Callable[[], None]) -> None:
        try:
            await self._send_and_record(message, chat_id, finish)
        except Exception as exc:
            # Not Telegram's answer but ours (a message that cannot be rendered): an attempt.
            log.exception("outbox %s could not be sent", message.id)
            self._failed_attempt(message, f"{type(exc).__name__}: {exc}", self.max_own_attempts)
        finally:
            finish()  # idempotent; normally called as soon as Telegram answered

    def _failed_attempt(self, message: Claimed, error: str, limit: int | None = None) -> None:
        attempts = message.attempts + 1
        if attempts >= (self.max_attempts if limit is None else limit):
            self._done(message, Mark("failed", message.id, attempts, error=error))
            log.error("outbox %s failed after %s attempts: %s", message.id, attempts, error)
        else:
            self._later(message, self._backoff(attempts), attempts, error)

    async def _send_and_record(self, message: Claimed, chat_id: int, finish: Callable[[], None]) -> None:
        outgoing = Outgoing.from_json(message.payload)
        catalog = catalog_for(message.locale, self.default_locale)
        text, markup = text_of(outgoing, catalog), self.keyboard(outgoing, catalog)
        edit: dict[str, Any] | None = message.payload.get("edit")
        file: str | InputFile = ""
        if edit is not None:
            method = "editMessageReplyMarkup" if edit.get("markup_only") else "editMessageText"
            ack = message.payload.get("ack")
            if ack:
                text = f"{ack}\n{text}"
            text = limits.clip(text, limits.TEXT_LIMIT)
        else:
            limit = limits.TEXT_LIMIT if outgoing.media is None else limits.CAPTION_LIMIT
            if limits.utf16_len(text) > limit:
                # Too long messages are queued in parts; this one was not (queued before that, or its
                # recipient changed language since): cut it rather than have Telegram refuse it all.
                log.warning("outbox %s: %s too long to send whole; cut to fit", message.id, outgoing.template)
                text = limits.clip(text, limit)
            method = "sendMessage"
            if outgoing.media is not None:
                kind = outgoing.media.get("kind")
                method = {"photo": "sendPhoto", "voice": "sendVoice"}.get(kind or "", "sendDocument")
                file = outgoing.media["file_id"]
                if file.startswith(UPLOAD_REF):
                    # A photo from the web form: its bytes are in the database, not on Telegram yet.
                    upload = await self.store.upload(int(file[len(UPLOAD_REF) :]))
                    if upload is None:
                        finish()
                        self._done(
                            message,
                            Mark(
                                "failed", message.id, message.attempts + 1, error="the uploaded file is gone"
                            ),
                        )
                        return
                    content_type, data = upload
                    suffix = {"image/png": "png", "image/webp": "webp"}.get(content_type, "jpg")
                    file = InputFile(data, filename=f"photo.{suffix}")
        started = time.perf_counter()
        try:
            try:
                sent: Any
                if edit is not None and edit.get("markup_only"):
                    sent = await self.bot.edit_message_reply_markup(
                        chat_id, int(edit["message_id"]), reply_markup=None
                    )
                elif edit is not None:
                    inline = markup if isinstance(markup, InlineKeyboardMarkup) else None
                    sent = await self.bot.edit_message_text(
                        text, chat_id=chat_id, message_id=int(edit["message_id"]), reply_markup=inline
                    )
                elif method == "sendMessage":
                    sent = await self.bot.send_message(chat_id, text, reply_markup=markup)
                elif method == "sendPhoto":
                    sent = await self.bot.send_photo(chat_id, file, caption=text, reply_markup=markup)
                elif method == "sendVoice":
                    sent = await self.bot.send_voice(chat_id, file, caption=text, reply_markup=markup)
                else:
                    sent = await self.bot.send_document(chat_id, file, caption=text, reply_markup=markup)
            finally:
                finish()  # the pacer's clock starts when the answer is in, not when it is recorded
                metrics.SEND_SECONDS.observe(time.perf_counter() - started)
        except RetryAfter as exc:
            # Telegram said how long to wait; that is not a failed attempt, and only this chat waits.
            delay = retry_after_seconds(exc)
            metrics.SENDS.labels(method=method, result="retry_after").inc()
            metrics.RETRY_AFTER.inc()
            metrics.RETRY_AFTER_SECONDS.inc(delay)
            log.info("outbox %s: Telegram asked to wait %.0f s (429); the chat waits", message.id, delay)
            self.pacer.pause(chat_id, delay)
            self._later(message, delay, message.attempts, "429")
        except Forbidden as exc:
            metrics.SENDS.labels(method=method, result="forbidden").inc()
            self._done(
                message, Mark("failed", message.id, message.attempts + 1, error=f"forbidden: {exc.message}")
            )
            log.warning(
                "outbox %s: recipient %s unreachable (%s)", message.id, message.person_id, exc.message
            )
            if self.on_unreachable is not None:
                try:
                    await self.on_unreachable(message.person_id)
                except Exception:
                    log.exception("could not record that person %s is unreachable", message.person_id)
        except BadRequest as exc:
            self._refused(message, method, edit, exc)
        except (TelegramError, OSError) as exc:
            metrics.SENDS.labels(method=method, result="error").inc()
            self._failed_attempt(message, f"{type(exc).__name__}: {exc}")
        else:
            metrics.SENDS.labels(method=method, result="ok").inc()
            external = getattr(sent, "message_id", None)
            if external is None and edit is not None:
                external = edit["message_id"]
            self._sent(message, external)

    def _sent(self, message: Claimed, external: object) -> None:
        mark = Mark(
            "sent",
            message.id,
            message.attempts,
            at=self.clock.now(),
            external_id=None if external is None else str(external),
        )
        self._done(message, mark)

    def _refused(self, message: Claimed, method: str, edit: dict[str, Any] | None, exc: BadRequest) -> None:
        reason = exc.message.lower()
        if edit is not None and NOT_MODIFIED in reason:
            # The pressed message already shows this (a second press, a retry after a time-out).
            metrics.SENDS.labels(method=method, result="not_modified").inc()
            self._sent(message, edit["message_id"])
            return
        if edit is not None and any(gone in reason for gone in EDIT_GONE):
            if edit.get("fallback"):
                # The message has content of its own (the next question): send it as a new one,
                # paced as any send, still first in its person's queue.
                metrics.SENDS.labels(method=method, result="fallback").inc()
                log.info("outbox %s: the pressed message cannot be edited; sent as a new one", message.id)
                payload = {k: v for k, v in message.payload.items() if k not in ("edit", "ack")}
                queue = self._queues.get(message.person_id)
                if queue is not None:
                    queue[:] = [replace(m, payload=payload) if m.id == message.id else m for m in queue]
                return
            metrics.SENDS.labels(method=method, result="gone").inc()
            self._done(
                message, Mark("failed", message.id, message.attempts + 1, error=f"bad request: {exc.message}")
            )
            log.warning("outbox %s: the pressed message cannot be edited (%s)", message.id, exc.message)
            return
        metrics.SENDS.labels(method=method, result="bad_request").inc()
        self._done(
            message, Mark("failed", message.id, message.attempts + 1, error=f"bad request: {exc.message}")
        )
        log.error("outbox %s refused by Telegram: %s", message.id, exc.message)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Until `event` is set or `seconds` have passed. (Not asyncio.wait_for, which on Python 3.11
    swallows a cancellation that comes as the event is set, and a stop would then never end.)"""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


def _id(message: Claimed) -> int:
    return message.id


def _forget(running: dict[int, Any], message_id: int, _: object) -> None:
    running.pop(message_id, None)
