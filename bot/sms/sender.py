"""Drains the outbox's text messages (channel "sms") to the SMS provider.

The same outbox as the chat's, with the same claims (a worker's claim is never taken by a live
other; a dead worker's are free): this sender claims only rows of the SMS channel, in order per
person. For each text:
- a text the provider accepted already (its sms_sends row) is only marked sent;
- in quiet hours it waits for their end, unless urgent (a green-channel case), as reminders do;
- the per-number limits (per number and template kind: 1 a minute, 5 an hour, 10 a day by
  default, the providers' own defaults) make it wait for the window to free;
- after a time-out the provider may have taken it: the provider is asked by the text's out-id
  before it is sent again, so a text the provider had accepted is never sent twice;
- the provider's answer: accepted (recorded with the sent mark in one transaction), retry (a 5xx,
  a time-out: backoff 1, 2, 4... up to 5 minutes, about a day of attempts), throttled (wait what
  the provider asked, no attempt counted), failed (for good: listed by /failed).
Texts are few (a household hears of its case a handful of times), so they go one after the
other, with at most `concurrency` on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.sms.port import Answer, Limits, Outcome, Provider, Text
from domain.ports import Clock, DeadlineRules
from domain.sms import SmsText
from storage.outbox_store import Claimed, Mark, OutboxStore
from storage.sms import Accepted, SmsStore, out_id_of
from storage.workers import WorkerRegistry, live_ids, utcnow

log = logging.getLogger(__name__)

SMS_ONLY = ("sms",)
UNCERTAIN = "uncertain"  # the start of last_error after a time-out: ask the provider before resending
UNCERTAIN_WAIT = 120.0  # seconds before a text that timed out is looked for, then sent again

# A text's provider template and parameters (bot/sms/templates.py's Templates.render).
Render = Callable[[SmsText], tuple[str, dict[str, str]]]


class SmsSender:
    def __init__(
        self,
        outbox: OutboxStore,
        store: SmsStore,
        provider: Provider,
        render: Render,
        clock: Clock,
        rules: DeadlineRules,
        *,
        limits: Limits | None = None,
        worker: WorkerRegistry | None = None,
        idle_poll: float = 1.0,
        batch: int = 50,
        concurrency: int = 4,
        max_attempts: int = 300,
        base_backoff: float = 1.0,
        max_backoff: float = 300.0,
        max_own_attempts: int = 3,
    ) -> None:
        self.outbox = outbox
        self.store = store
        self.provider = provider
        self.render = render
        self.clock = clock
        self.rules = rules
        self.limits = limits or Limits()
        self.worker = worker
        self.worker_id = worker.id if worker is not None else f"sms-{uuid.uuid4().hex[:16]}"
        self.idle_poll = idle_poll
        self.batch = batch
        self.slots = asyncio.Semaphore(concurrency)
        self.max_attempts = max_attempts
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.max_own_attempts = max_own_attempts
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # ------------------------------------------------------------------ running

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name="sms-sender")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            done = 0
            try:
                done = await self.drain_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sms: a round failed; trying again shortly")
            if done >= self.batch or self._stopping:
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.idle_poll):
                    await self._wake.wait()

    async def drain_once(self) -> int:
        """Claim the due texts and handle each (in order per person); returns how many."""
        live = self.worker.live_ids() if self.worker is not None else live_ids(utcnow(), 3.0)
        claimed = await self.outbox.claim_for(
            self.worker_id, self.clock.now(), self.batch, live=live, channels=SMS_ONLY
        )
        if not claimed:
            return 0
        by_person: dict[int, list[Claimed]] = {}
        for message in claimed:
            by_person.setdefault(message.person_id, []).append(message)
        await asyncio.gather(*(self._serve(queue) for queue in by_person.values()))
        return len(claimed)

    async def _serve(self, queue: list[Claimed]) -> None:
        for n, message in enumerate(queue):
            try:
                finished = await self._handle(message)
            except Exception as exc:
                log.exception("sms: outbox %s could not be handled", message.id)
                finished = await self._own_fault(message, f"{type(exc).__name__}")
            if not finished:
                # It waits: the person's later texts wait behind it (handed back, in order).
                await self._record([Mark("release", m.id) for m in queue[n + 1 :]])
                return

    # ------------------------------------------------------------------ one text

    async def _record(self, marks: list[Mark]) -> None:
        if marks:
            await self.outbox.record(marks, self.worker_id)

    async def _later(self, message: Claimed, at: datetime, attempts: int, error: str) -> bool:
        """Hand the text back, due at `at` (the claim is let go: any sender takes it then)."""
        await self._record(
            [Mark("retry", message.id, attempts, at=at, error=error), Mark("release", message.id)]
        )
        return False

    async def _fail(self, message: Claimed, attempts: int, error: str) -> bool:
        await self._record([Mark("failed", message.id, attempts, error=error)])
        log.warning("sms: outbox %s failed: %s", message.id, error)
        return True

    async def _own_fault(self, message: Claimed, error: str) -> bool:
        attempts = message.attempts + 1
        if attempts >= self.max_own_attempts:
            return await self._fail(message, attempts, f"sms error: {error}")
        return await self._later(message, self.clock.now() + timedelta(seconds=30), attempts, error)

    async def _handle(self, message: Claimed) -> bool:
        """True when the text is finished (sent or given up), False when it waits."""
        raw = message.payload.get("sms")
        if not isinstance(raw, dict) or not message.address:
            return await self._fail(message, message.attempts + 1, "sms: no text form or no number")
        text = SmsText.from_json(raw)
        phone = message.address
        out_id = out_id_of(message.id)
        now = self.clock.now()
        before = await self.store.accepted_before(message.id)
        if before is not None:
            await self._record(
                [Mark("sent", message.id, message.attempts, at=now, external_id=before or None)]
            )
            return True
        if self.rules.quiet(now) and not text.urgent:
            return await self._later(
                message, self.rules.next_outside_quiet(now), message.attempts, "quiet hours"
            )
        free_at = await self._limited_until(phone, text.kind.value, now)
        if free_at is not None:
            return await self._later(message, free_at, message.attempts, "per-number limit")
        if message.attempts > 0:
            # A failed attempt (a time-out above all) may have left the text with the provider:
            # ask by its out-id before sending it again.
            try:
                found = await self.provider.find(phone, out_id, now)
            except (ConnectionError, OSError, TimeoutError) as exc:
                # Not knowing is not "not found": ask again later, never send blind.
                return await self._answered(
                    message, text, phone, out_id, Answer(Outcome.RETRY, code=f"find: {type(exc).__name__}")
                )
            if found is not None:
                await self._accepted(message, text, phone, out_id, found.provider_id, now)
                return True
        code, params = self.render(text)
        async with self.slots:
            answer = await self.provider.send(Text(phone, code, params, out_id))
        return await self._answered(message, text, phone, out_id, answer)

    async def _limited_until(self, phone: str, kind: str, now: datetime) -> datetime | None:
        """When a text of `kind` to `phone` may go, if the per-number limits hold it back now."""
        longest = max(seconds for seconds, _ in self.limits.windows)
        sent = await self.store.recent(phone, kind, now - timedelta(seconds=longest))
        free_at: datetime | None = None
        for seconds, most in self.limits.windows:
            window = timedelta(seconds=seconds)
            inside = [at for at in sent if at > now - window]
            if len(inside) >= most:
                # Free when the oldest text that counts leaves the window.
                at = inside[len(inside) - most] + window
                free_at = at if free_at is None else max(free_at, at)
        return free_at

    async def _accepted(
        self, message: Claimed, text: SmsText, phone: str, out_id: str, provider_id: str | None, at: datetime
    ) -> None:
        await self.store.accept(
            Accepted(message.id, out_id, phone, text.kind.value, self.provider.name, provider_id, at),
            message.attempts,
        )

    async def _answered(
        self, message: Claimed, text: SmsText, phone: str, out_id: str, answer: Answer
    ) -> bool:
        now = self.clock.now()
        if answer.outcome is Outcome.ACCEPTED:
            await self._accepted(message, text, phone, out_id, answer.provider_id, now)
            return True
        if answer.outcome is Outcome.THROTTLED:
            wait = answer.retry_after if answer.retry_after is not None else 60.0
            log.info(
                "sms: outbox %s throttled by the provider (%s); waits %.0f s", message.id, answer.code, wait
            )
            return await self._later(
                message, now + timedelta(seconds=wait), message.attempts, f"throttled: {answer.code}"
            )
        if answer.outcome is Outcome.FAILED:
            return await self._fail(message, message.attempts + 1, f"sms failed: {answer.code}")
        attempts = message.attempts + 1
        error = f"{UNCERTAIN if answer.uncertain else 'retry'}: {answer.code or answer.message}"
        if attempts >= self.max_attempts:
            return await self._fail(message, attempts, f"sms failed: {answer.code or 'no answer'}")
        backoff = min(self.max_backoff, self.base_backoff * 2 ** (attempts - 1))
        if answer.uncertain:
            # The provider may have it: give its records time to show it before asking (Tencent
            # lists a text once the carrier's receipt is in, usually within seconds).
            backoff = max(backoff, UNCERTAIN_WAIT)
        log.info(
            "sms: outbox %s: provider error %s; attempt %s again in %.0f s",
            message.id,
            answer.code,
            attempts,
            backoff,
        )
        return await self._later(message, now + timedelta(seconds=backoff), attempts, error)
