"""The sender's costs and claims: messages handed over in memory (no claim transaction), claims
of dead and live workers, per-person order across a 429, results written in batches, stop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Bot

from bot.pacing import Pacer
from bot.sender import OutboxSender
from domain.messages import Outgoing
from handlers.keyboards import markup_of
from storage.db import session_factory
from storage.outbox_store import OutboxStore
from storage.tables import OutboxRow, WorkerRow
from storage.uow import SqlUnitOfWorkFactory
from storage.workers import WorkerRegistry, utcnow
from tests.bot.test_sender import TOKEN, people, queue, statuses, texts, until
from tests.emulator import BotAPIEmulator
from tests.support import FakeClock


@pytest.fixture
async def emu() -> AsyncIterator[BotAPIEmulator]:
    async with BotAPIEmulator(token=TOKEN) as emulator:
        yield emulator


@pytest.fixture
async def bot(emu: BotAPIEmulator) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=emu.base_url, base_file_url=emu.base_file_url) as client:
        yield client


class Writes:
    """Committed transactions that wrote (INSERT, UPDATE or DELETE), as benchmarks/intake.py counts."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        self.statements: list[str] = []
        sync = engine.sync_engine
        event.listen(sync, "begin", self._begin)
        event.listen(sync, "commit", self._commit)
        event.listen(sync, "before_cursor_execute", self._execute)

    def _begin(self, conn: Any) -> None:
        conn.info["h1_wrote"] = []

    def _commit(self, conn: Any) -> None:
        wrote = conn.info.pop("h1_wrote", [])
        if wrote:
            self.count += 1
            self.statements.append(" | ".join(wrote))

    def _execute(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        head = statement.lstrip()[:6].upper()
        if head in ("INSERT", "UPDATE", "DELETE"):
            conn.info.setdefault("h1_wrote", []).append(" ".join(statement.split()[:3]))


async def _rows(engine: AsyncEngine) -> list[OutboxRow]:
    async with session_factory(engine)() as session:
        return list((await session.scalars(select(OutboxRow).order_by(OutboxRow.id))).all())


async def test_a_reply_written_already_claimed_is_handed_over_and_costs_no_claim_transaction(
    engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    plain = SqlUnitOfWorkFactory(session_factory(engine))
    (a,) = await people(plain, emu, 1, clock)
    sender = OutboxSender(
        OutboxStore(session_factory(engine)), bot, clock, "zh_Hans_CN", keyboard=markup_of, idle_poll=30
    )
    handler = SqlUnitOfWorkFactory(session_factory(engine), worker=sender.worker_id, on_commit=sender.accept)
    sender.start()
    await asyncio.sleep(0.2)  # its first look at the database (a read) is over
    writes = Writes(engine)
    try:
        async with handler() as work:
            await work.outbox.add(a, Outgoing("intake.noted", {"value": "m0"}), at=clock.now())
            await work.commit()
        assert not work.wrote_pending  # nothing for the sender to look for
        sent = await emu.next_message(5000, timeout=5)  # no wake(): it was handed over
        assert "m0" in (sent.text or "")
        await until(lambda: _sent_rows(engine, 1))
    finally:
        await sender.stop()
    # The step's own transaction and one for the sent mark: no claim, no lease renewal.
    assert writes.count == 2, writes.statements
    assert writes.statements[0].startswith("INSERT INTO outbox")
    assert "UPDATE outbox" in writes.statements[1]
    (row,) = await _rows(engine)
    assert (row.status, row.claimed_by, row.attempts) == ("sent", sender.worker_id, 0)


async def _sent_rows(engine: AsyncEngine, count: int) -> bool:
    return (await statuses(engine))["sent"] == count


async def test_a_person_with_an_older_open_message_gets_the_new_one_pending_behind_it(
    engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    plain = SqlUnitOfWorkFactory(session_factory(engine))
    a, b = await people(plain, emu, 2, clock)
    await queue(plain, [a], 1, clock)  # a's older message, written pending (a tick, another worker)
    handed: list[Any] = []
    handler = SqlUnitOfWorkFactory(session_factory(engine), worker="w-test", on_commit=handed.extend)
    async with handler() as work:
        for person in (a, b):
            await work.outbox.add(person, Outgoing("intake.noted", {"value": "x1"}), at=clock.now())
            await work.outbox.add(person, Outgoing("intake.noted", {"value": "x2"}), at=clock.now())
        await work.commit()
    assert work.wrote_pending
    rows = await _rows(engine)
    by_person = {(r.person_id, r.payload["params"]["value"]): (r.status, r.claimed_by) for r in rows}
    assert by_person[(a, "x1")] == by_person[(a, "x2")] == ("pending", None)
    # b had nothing open: both of b's are claimed at once, also the second of the same step.
    assert by_person[(b, "x1")] == by_person[(b, "x2")] == ("sending", "w-test")
    assert [(c.person_id, c.payload["params"]["value"], c.attempts, c.address) for c in handed] == [
        (b, "x1", 0, "5001"),
        (b, "x2", 0, "5001"),
    ]
    async with handler() as work:
        await work.outbox.add(b, Outgoing("intake.noted", {"value": "x3"}), at=clock.now())
        await work.rollback()
    assert len(handed) == 2  # nothing handed over without a commit


async def test_a_commit_wakes_the_sender_only_when_it_left_a_message_for_it_to_find(
    engine: AsyncEngine, emu: BotAPIEmulator, clock: FakeClock
) -> None:
    plain = SqlUnitOfWorkFactory(session_factory(engine))
    a, b = await people(plain, emu, 2, clock)
    await queue(plain, [a], 1, clock)  # a's older message, pending
    wakes: list[int] = []
    handler = SqlUnitOfWorkFactory(
        session_factory(engine), worker="w-test", on_commit=lambda _: None, on_pending=lambda: wakes.append(1)
    )
    async with handler() as work:  # b's reply is handed over: nothing to look for
        await work.outbox.add(b, Outgoing("intake.noted", {"value": "b1"}), at=clock.now())
        await work.commit()
    assert wakes == []
    async with handler() as work:  # only reads
        assert await work.persons.get(a) is not None
        await work.commit()
    assert wakes == []
    async with handler() as work:  # a's goes pending behind the older one
        await work.outbox.add(a, Outgoing("intake.noted", {"value": "a1"}), at=clock.now())
        await work.commit()
    assert wakes == [1]
    async with handler() as work:  # any other write to the outbox (a notice's rows, a retry)
        await work.session.execute(update(OutboxRow).where(OutboxRow.person_id == b).values(attempts=0))
        await work.commit()
    assert wakes == [1, 1]
    async with handler() as work:
        await work.outbox.add(a, Outgoing("intake.noted", {"value": "a2"}), at=clock.now())
        await work.rollback()
    async with handler() as work:
        await work.commit()
    assert wakes == [1, 1]  # a rolled back write leaves nothing behind to wake for


async def test_a_dead_workers_claims_are_taken_back_at_once_and_a_live_ones_never(
    engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    plain = SqlUnitOfWorkFactory(session_factory(engine))
    ids = await people(plain, emu, 4, clock)
    await queue(plain, ids, 1, clock)
    store = OutboxStore(session_factory(engine))
    dead = WorkerRegistry(session_factory(engine))
    live = WorkerRegistry(session_factory(engine), beat_every=0.2, stale_after=2.0)
    for registry in (dead, live):
        await registry.register()
    live.start()
    assert len(await store.claim_for(dead.id, clock.now(), 2, live=dead.live_ids())) == 2
    assert len(await store.claim_for(live.id, clock.now(), 2, live=live.live_ids())) == 2
    async with session_factory(engine)() as session, session.begin():
        # The dead one was SIGKILLed: its heartbeat stopped 10 s ago (real time; the service's
        # clock is not moved at all).
        await session.execute(
            update(WorkerRow)
            .where(WorkerRow.id == dead.id)
            .values(heartbeat_at=utcnow() - timedelta(seconds=10))
        )
    mine = WorkerRegistry(session_factory(engine), beat_every=0.2, stale_after=2.0)
    await mine.register()
    mine.start()
    sender = OutboxSender(store, bot, clock, "zh_Hans_CN", keyboard=markup_of, worker=mine)
    try:
        assert await sender.drain_once() == 2  # the dead one's two, with no wait
        clock.advance(days=2)  # however long: a live worker's claims are never taken
        assert await sender.drain_once() == 0
        assert [len(emu.messages(5000 + n)) for n in range(4)] == [1, 1, 0, 0]
        await live.stop()  # a clean stop deletes its row: its claims are free at once
        assert await sender.drain_once() == 2
    finally:
        await sender.stop()
        await mine.stop()
    assert [len(emu.messages(5000 + n)) for n in range(4)] == [1, 1, 1, 1]


async def test_a_restarted_sender_takes_back_what_its_killed_predecessor_held_without_waiting(
    engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    """On SQLite one process runs at a time: the new one registers exclusively, so the old one's
    row is gone and its claims are due at once."""
    plain = SqlUnitOfWorkFactory(session_factory(engine))
    ids = await people(plain, emu, 3, clock)
    await queue(plain, ids, 1, clock)
    old = WorkerRegistry(session_factory(engine))
    await old.register()
    store = OutboxStore(session_factory(engine))
    assert len(await store.claim_for(old.id, clock.now(), 10, live=old.live_ids())) == 3  # then killed
    new = WorkerRegistry(session_factory(engine))
    await new.register(exclusive=True)
    sender = OutboxSender(store, bot, clock, "zh_Hans_CN", keyboard=markup_of, worker=new)
    assert await sender.drain_once() == 3
    await sender.stop()
    await new.stop()
    assert [len(emu.messages(5000 + n)) for n in range(3)] == [1, 1, 1]


async def test_a_429_in_the_middle_keeps_the_persons_order_and_is_not_logged_as_an_error(
    engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    plain = SqlUnitOfWorkFactory(session_factory(engine))
    a, b = await people(plain, emu, 2, clock)
    await queue(plain, [a], 3, clock)
    # Half a second between a's messages, so that the 429 can be set up after the first.
    pacer = Pacer(per_private_chat=2.0, private_burst=1)
    sender = OutboxSender(
        OutboxStore(session_factory(engine)),
        bot,
        clock,
        "zh_Hans_CN",
        keyboard=markup_of,
        pacer=pacer,
        idle_poll=0.1,
    )
    caplog.set_level(logging.INFO)
    sender.start()
    try:
        await emu.next_message(5000)
        emu.fail_next("sendMessage", status=429, retry_after=1)
        await until(lambda: _errors(emu))

        async def waiting() -> bool:
            rows = [r for r in await _rows(engine) if r.person_id == a]
            return rows[1].last_error == "429"

        await until(waiting)
        rows = [r for r in await _rows(engine) if r.person_id == a]
        # It waits claimed by this worker, its due time recorded, not counted as an attempt.
        assert [(r.status, r.claimed_by, r.attempts) for r in rows[1:]] == [
            ("sending", sender.worker_id, 0),
            ("sending", sender.worker_id, 0),
        ]
        assert rows[1].next_attempt_at > clock.now()
        await queue(plain, [b], 1, clock)
        sender.wake()
        await emu.next_message(5001, timeout=2)  # b is not held up by a's pause
        assert len(emu.messages(5000)) == 1

        async def all_of_a() -> bool:
            clock.advance(seconds=0.2)  # the row's due time is on the service's clock
            sender.wake()
            return len(emu.messages(5000)) == 3

        await until(all_of_a, timeout=10)
    finally:
        await sender.stop()
    sent = texts(emu, 5000)
    assert ["m0" in sent[0], "m1" in sent[1], "m2" in sent[2]] == [True, True, True]
    assert [(r.status, r.attempts) for r in await _rows(engine)] == [("sent", 0)] * 4
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    (told,) = [r for r in caplog.records if r.name == "bot.sender" and "429" in r.getMessage()]
    assert told.levelno == logging.INFO and told.exc_info is None


async def _errors(emu: BotAPIEmulator) -> bool:
    return bool(emu.errors)


async def test_results_are_written_in_batches_far_fewer_than_the_messages(
    engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    plain = SqlUnitOfWorkFactory(session_factory(engine))
    ids = await people(plain, emu, 100, clock)
    await queue(plain, ids, 1, clock)
    writes = Writes(engine)
    sender = OutboxSender(
        OutboxStore(session_factory(engine)), bot, clock, "zh_Hans_CN", keyboard=markup_of, pacer=Pacer(1000)
    )
    started = time.monotonic()
    sender.start()
    try:
        await until(lambda: _sent_rows(engine, 100))
    finally:
        await sender.stop()
    took = time.monotonic() - started
    assert [len(emu.messages(5000 + n)) for n in range(100)] == [1] * 100
    # One claim, then the marks of 100 messages: at most one batch every `spacing` seconds
    # (and the last one on stop), so marks that arrive meanwhile go together.
    spacing = sender.recorder.spacing
    assert writes.count - 1 <= took / spacing + 2, (writes.count, took)
    assert writes.count <= 50, writes.count
    assert sender.recorder.batches == writes.count - 1


class _SlowStore(OutboxStore):
    """Every batch of results takes a while to commit."""

    async def record(self, marks: Any, worker: str | None = None, **options: Any) -> bool:
        await asyncio.sleep(0.3)
        return await super().record(marks, worker, **options)


async def test_stop_flushes_every_result_and_hands_back_the_rest(
    engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    plain = SqlUnitOfWorkFactory(session_factory(engine))
    ids = await people(plain, emu, 20, clock)
    await queue(plain, ids, 2, clock)
    sender = OutboxSender(
        _SlowStore(session_factory(engine)), bot, clock, "zh_Hans_CN", keyboard=markup_of, pacer=Pacer(10)
    )
    sender.start()
    await emu.next_message(5000)
    await sender.stop()
    counts = await statuses(engine)
    delivered = sum(len(emu.messages(5000 + n)) for n in range(20))
    assert counts["sending"] == 0  # nothing left claimed
    assert counts["sent"] == delivered > 0 and counts["pending"] == 40 - delivered
