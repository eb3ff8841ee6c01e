"""Running workers announce themselves with a heartbeat, so that claims can name their worker.

A worker whose heartbeat is older than `stale_after` seconds is dead: what it had claimed (outbox
rows) is due at once for any other worker, with no lease to wait out. Liveness is judged on real
UTC time (`datetime.now(UTC)`), never on the service's clock, which tests move by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.db import urgent
from storage.tables import WorkerRow

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def live_ids(now: datetime, stale_after: float) -> Any:
    """A SELECT of the ids of the workers alive at `now` (real UTC time): a heartbeat within
    the last `stale_after` seconds."""
    return select(WorkerRow.id).where(WorkerRow.heartbeat_at > now - timedelta(seconds=stale_after))


class WorkerRegistry:
    """This process as a row of `workers`, its heartbeat kept fresh by a background task.

    `fresh()` tells the sender whether its claims are still safe from other workers: it stops
    sending well before the heartbeat could look stale to them. `epoch` grows whenever the row
    had to be written again after a gap (a beat missing for `stale_after` or more, or the row
    gone): other workers may have taken this one's claims meanwhile.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        beat_every: float = 1.0,
        stale_after: float = 3.0,
        worker_id: str | None = None,
    ) -> None:
        if stale_after <= beat_every:
            raise ValueError("stale_after must be longer than beat_every")
        self.sessions = sessions
        self.beat_every = beat_every
        self.stale_after = stale_after
        self.id = (worker_id or uuid.uuid4().hex[:16])[:40]
        self.epoch = 0
        self._last_beat: float | None = None  # monotonic time of the last committed beat
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def live_ids(self, now: datetime | None = None) -> Any:
        """The ids of live workers (a SELECT) at `now`, real UTC time by default."""
        return live_ids(now or utcnow(), self.stale_after)

    def fresh(self) -> bool:
        """True while the last committed beat is recent enough that no other worker can think this
        one dead for a while yet (a margin of one beat for a send on the wire)."""
        if self._last_beat is None:
            return False
        return time.monotonic() - self._last_beat < self.stale_after - self.beat_every

    def piggyback(self) -> tuple[Any, float] | None:
        """A heartbeat for another write transaction of this worker to carry (the sender's
        marks: under load they commit several times a second, so the beat costs no transaction
        of its own), with the monotonic time it stands for; pass that to `beaten` once the
        transaction committed and the UPDATE changed the row. None unless the last beat is fresh:
        after a gap only `beat` writes it, and counts the gap. None too while the last beat is
        younger than half a beat: a stream of marks carries about two beats a beat interval, not
        one each."""
        if not self.fresh():
            return None
        assert self._last_beat is not None
        if time.monotonic() - self._last_beat < self.beat_every / 2:
            return None
        table = cast(Table, WorkerRow.__table__)  # a Core UPDATE: the ORM's costs several times more per call
        return update(table).where(table.c.id == self.id).values(heartbeat_at=utcnow()), time.monotonic()

    def beaten(self, at: float) -> None:
        """A piggybacked beat made at monotonic time `at` was committed."""
        if self._last_beat is not None and at > self._last_beat:
            self._last_beat = at

    async def register(self, *, exclusive: bool = False) -> None:
        """Insert this worker's row. `exclusive` (SQLite, where one process runs at a time) also
        deletes every other worker's row: those processes are dead, and their claims free."""
        now = utcnow()
        async with self.sessions() as session, session.begin():
            if exclusive:
                await session.execute(delete(WorkerRow).where(WorkerRow.id != self.id))
            await session.execute(delete(WorkerRow).where(WorkerRow.id == self.id))
            session.add(
                WorkerRow(
                    id=self.id,
                    host=socket.gethostname()[:100],
                    pid=os.getpid(),
                    started_at=now,
                    heartbeat_at=now,
                )
            )
        self._last_beat = time.monotonic()

    async def beat(self) -> None:
        """One heartbeat; the row is written again if it was deleted (another process started
        exclusively, or took this one for dead)."""
        now = utcnow()
        gap = None if self._last_beat is None else time.monotonic() - self._last_beat
        with urgent():  # a queue of handlers on SQLite's one connection never starves the beat
            async with self.sessions() as session, session.begin():
                result = await session.execute(
                    update(WorkerRow).where(WorkerRow.id == self.id).values(heartbeat_at=now)
                )
                missing = int(getattr(result, "rowcount", 0) or 0) == 0
                if missing:
                    session.add(
                        WorkerRow(
                            id=self.id,
                            host=socket.gethostname()[:100],
                            pid=os.getpid(),
                            started_at=now,
                            heartbeat_at=now,
                        )
                    )
        if gap is not None and (missing or gap >= self.stale_after):
            self.epoch += 1
            log.warning("worker %s: heartbeat resumed after a gap; its claims are checked again", self.id)
        self._last_beat = time.monotonic()

    def start(self) -> None:
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self._beating(), name=f"worker-{self.id}")

    async def _beating(self) -> None:
        failed = False
        while not self._stop.is_set():
            # A beat every `beat_every` seconds, counted from the last one, own or piggybacked.
            # After a failed beat, the next try a full `beat_every` later.
            due = self.beat_every
            if self._last_beat is not None and not failed:
                due = max(0.0, self._last_beat + self.beat_every - time.monotonic())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(due):
                    await self._stop.wait()
            if self._stop.is_set():
                return
            if self._last_beat is not None and time.monotonic() - self._last_beat < self.beat_every * 0.95:
                continue  # a piggybacked beat came meanwhile
            try:
                await self.beat()
                failed = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Never crash: the next beat tries again (and the sender stops sending meanwhile).
                failed = True
                log.warning("worker %s: heartbeat failed (%s); trying again", self.id, type(exc).__name__)

    async def stop(self) -> None:
        """Stop beating and delete this worker's row (its remaining claims become free at once)."""
        if self._task is not None:
            # Not cancelled mid-beat: a beat finishing after the delete would write the row again.
            self._stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            async with self.sessions() as session, session.begin():
                await session.execute(delete(WorkerRow).where(WorkerRow.id == self.id))
        finally:
            self._last_beat = None
