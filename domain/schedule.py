"""What is due lives in the database; a tick runs what has come due.

The tick looks only at due rows (through an index), so its cost grows with what is due, not
with everything stored. Reminders respect quiet hours: one that comes due at night waits for
the morning. Each kind of item has a handler; a handler queues its messages with keys derived
from the item, so a tick that runs twice (a crash before its commit) queues nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from domain.messages import Queued
from domain.model import ScheduledItem
from domain.ports import Clock, UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuietHours:
    """From `start` to `end` local time (across midnight when start > end) reminders wait."""

    start: time = time(22, 0)
    end: time = time(7, 0)

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """'22:00-07:00'; an empty string or '-' means none."""
        text = text.strip()
        if text in ("", "-"):
            return cls(time(0, 0), time(0, 0))
        first, _, second = text.partition("-")
        return cls(time.fromisoformat(first.strip()), time.fromisoformat(second.strip()))

    def contains(self, moment: datetime) -> bool:
        local = moment.timetz().replace(tzinfo=None)
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def morning_after(self, moment: datetime) -> datetime:
        """The end of the quiet hours `moment` falls in, in `moment`'s time zone."""
        candidate = moment.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if candidate <= moment:
            candidate += timedelta(days=1)
        return candidate


Run = Callable[[UnitOfWork, Clock, ScheduledItem], Awaitable[list[Queued]]]


@dataclass(frozen=True)
class Handler:
    run: Run  # may write what it needs, and returns the messages to queue
    quiet: bool  # a reminder: waits out the quiet hours


@dataclass(frozen=True)
class TickResult:
    done: int = 0
    deferred: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.done + self.deferred + self.failed


async def tick(
    uow: UnitOfWork,
    clock: Clock,
    handlers: dict[str, Handler],
    quiet: QuietHours,
    *,
    limit: int = 200,
) -> TickResult:
    """Run up to `limit` due items in this transaction; the caller commits.

    All items run under one savepoint, their messages are queued in one statement and they are
    marked done in one more, so a tick costs a handful of statements beyond the handlers' own.
    If any item fails, the batch is undone and run again item by item, each under its own
    savepoint, so that one broken item stays behind as failed and the others go.
    """
    now = clock.now()
    items = await uow.schedule.due(now, limit)
    unknown = [item for item in items if item.kind not in handlers]
    for item in unknown:
        await uow.schedule.failed(item.id, now, f"no handler for {item.kind}")
    known = [item for item in items if item.kind in handlers]
    night = quiet.contains(now)
    waiting = [item for item in known if night and handlers[item.kind].quiet]
    runnable = [item for item in known if not (night and handlers[item.kind].quiet)]
    await uow.schedule.defer([item.id for item in waiting], quiet.morning_after(now))
    try:
        async with uow.schedule.isolated():
            queued: list[Queued] = []
            for item in runnable:
                queued += await handlers[item.kind].run(uow, clock, item)
            await uow.delivery.queue_many(queued, now)
            await uow.schedule.done([item.id for item in runnable], now)
        return TickResult(len(runnable), len(waiting), len(unknown))
    except Exception:
        log.warning("a scheduled item failed; running the batch one by one")
    done = failed = 0
    for item in runnable:
        try:
            async with uow.schedule.isolated():
                await uow.delivery.queue_many(await handlers[item.kind].run(uow, clock, item), now)
                await uow.schedule.done([item.id], now)
        except Exception as exc:
            # One broken item must not stop the others; it stays visible as failed.
            log.exception("scheduled item %s (%s) failed", item.id, item.kind)
            await uow.schedule.failed(item.id, now, f"{type(exc).__name__}: {exc}")
            failed += 1
        else:
            done += 1
    return TickResult(done, len(waiting), failed + len(unknown))


def default_handlers() -> dict[str, Handler]:
    """Every kind of scheduled item the service knows."""
    from domain import campaigns, ledger, notices, reports

    return {
        notices.SEND_KIND: Handler(notices.send_scheduled, quiet=False),
        campaigns.REMIND_KIND: Handler(campaigns.remind, quiet=True),
        reports.REQUEST_KIND: Handler(reports.request, quiet=True),
        reports.REMIND_KIND: Handler(reports.remind, quiet=True),
        ledger.REMIND_KIND: Handler(ledger.remind, quiet=True),
    }
