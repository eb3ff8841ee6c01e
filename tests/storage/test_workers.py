"""Workers: registration (exclusive on SQLite), heartbeats on real time, liveness, a failed beat."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import session_factory
from storage.tables import WorkerRow
from storage.workers import WorkerRegistry, live_ids, utcnow


async def _live(engine: AsyncEngine, stale_after: float = 3.0) -> set[str]:
    async with session_factory(engine)() as session:
        return set((await session.scalars(live_ids(utcnow(), stale_after))).all())


async def _rows(engine: AsyncEngine) -> dict[str, WorkerRow]:
    async with session_factory(engine)() as session:
        return {row.id: row for row in (await session.scalars(select(WorkerRow))).all()}


async def test_workers_register_beat_and_leave_and_an_exclusive_one_clears_the_dead(
    engine: AsyncEngine,
) -> None:
    one = WorkerRegistry(session_factory(engine), beat_every=0.05, stale_after=1.0)
    two = WorkerRegistry(session_factory(engine), beat_every=0.05, stale_after=1.0)
    assert one.id != two.id and len(one.id) <= 40
    assert not one.fresh()  # never beaten: not safe to send yet
    await one.register()
    await two.register()
    assert one.fresh()
    assert await _live(engine) == {one.id, two.id}
    first = (await _rows(engine))[one.id].heartbeat_at
    one.start()
    for _ in range(100):
        if (await _rows(engine))[one.id].heartbeat_at > first:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("no heartbeat")
    async with session_factory(engine)() as session, session.begin():
        # two's process was killed ten seconds ago (real time)
        await session.execute(
            update(WorkerRow)
            .where(WorkerRow.id == two.id)
            .values(heartbeat_at=utcnow() - timedelta(seconds=10))
        )
    assert await _live(engine) == {one.id}
    await one.stop()
    assert set(await _rows(engine)) == {two.id}  # a clean stop leaves no row
    three = WorkerRegistry(session_factory(engine))
    await three.register(exclusive=True)  # SQLite: one process at a time, the others are dead
    assert set(await _rows(engine)) == {three.id}
    row = (await _rows(engine))[three.id]
    assert row.pid > 0 and row.host and row.started_at == row.heartbeat_at
    await three.stop()


class _Flaky:
    """A session factory whose first `failures` sessions fail when used."""

    def __init__(self, sessions: Any, failures: int) -> None:
        self.sessions = sessions
        self.failures = failures

    def __call__(self) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("database away")
        return self.sessions()


async def test_a_failed_heartbeat_is_logged_and_retried_and_a_gap_is_noticed(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = _Flaky(session_factory(engine), 0)
    # `fresh` holds for stale_after - beat_every after a beat: room for a loaded machine's stall.
    worker = WorkerRegistry(flaky, beat_every=0.05, stale_after=1.0)  # type: ignore[arg-type]
    await worker.register()
    flaky.failures = 25  # 1.25 s without a beat: longer than stale_after
    caplog.set_level(logging.WARNING)
    worker.start()
    for _ in range(200):
        if worker.epoch == 1:
            break
        await asyncio.sleep(0.02)
    assert worker.epoch == 1  # beating again; the sender knows its claims may have been taken
    assert worker.fresh()
    failed = [r for r in caplog.records if "heartbeat failed" in r.getMessage()]
    assert len(failed) == 25 and all(r.levelno == logging.WARNING and r.exc_info is None for r in failed)
    await worker.stop()


async def test_a_beat_after_the_row_was_deleted_writes_it_again(engine: AsyncEngine) -> None:
    worker = WorkerRegistry(session_factory(engine))
    await worker.register()
    other = WorkerRegistry(session_factory(engine))
    await other.register(exclusive=True)  # deletes worker's row
    await worker.beat()
    assert set(await _rows(engine)) == {worker.id, other.id}
    assert worker.epoch == 1
    await worker.stop()
    await other.stop()


async def test_the_senders_marks_carry_the_heartbeat_so_it_costs_no_transaction_of_its_own(
    engine: AsyncEngine,
) -> None:
    from bot.sender import Recorder
    from storage.outbox_store import Mark, OutboxStore

    sessions = session_factory(engine)
    # A beat interval long beside a loaded machine's commit (CI runs three test processes and
    # PostgreSQL on two cores): a mark every 0.1 s carries a beat once the last is 0.75 s old, and
    # the registry's own beat waits 1.4 s, so only a flush stalled for over half a second beats alone.
    worker = WorkerRegistry(sessions, beat_every=1.5, stale_after=5.0)
    await worker.register()
    own_beats = 0
    beat = worker.beat

    async def counted() -> None:
        nonlocal own_beats
        own_beats += 1
        await beat()

    worker.beat = counted  # type: ignore[method-assign]
    recorder = Recorder(OutboxStore(sessions), worker.id, registry=worker)
    worker.start()
    try:
        before = (await _rows(engine))[worker.id].heartbeat_at
        for _ in range(25):  # a mark every 0.1 s for 2.5 s (of nothing: id 0 is no row)
            recorder.add(Mark("sent", 0, at=utcnow()))
            assert await recorder.flush(timeout=5)
            await asyncio.sleep(0.1)
        assert own_beats == 0  # every beat rode on a batch of marks
        assert (await _rows(engine))[worker.id].heartbeat_at > before
        assert worker.fresh()
        worker.beaten(time.monotonic())
        assert worker.piggyback() is None  # just beaten: a batch of marks now carries no beat
        await asyncio.sleep(2.0)  # no marks: the registry beats by itself again
        assert own_beats >= 1
        # After a gap (not fresh) the marks carry no beat: only `beat` may write it, and count it.
        worker._last_beat = None
        assert worker.piggyback() is None
    finally:
        await worker.stop()


async def test_a_piggybacked_beat_on_a_deleted_row_is_not_counted(engine: AsyncEngine) -> None:
    from storage.outbox_store import Mark, OutboxStore

    sessions = session_factory(engine)
    worker = WorkerRegistry(sessions)
    await worker.register()
    other = WorkerRegistry(sessions)
    await other.register(exclusive=True)  # deletes worker's row
    assert worker._last_beat is not None
    worker._last_beat -= worker.beat_every  # a beat is due: the next batch of marks carries it
    carried = worker.piggyback()
    assert carried is not None
    assert not await OutboxStore(sessions).record([Mark("sent", 0)], worker.id, heartbeat=carried[0])
    await worker.beat()  # the registry's own beat finds the row gone and counts the gap
    assert worker.epoch == 1
    await worker.stop()
    await other.stop()
