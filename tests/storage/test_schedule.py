"""The schedule on SQLite and PostgreSQL: due items run once, quiet hours, failures, the index."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain import schedule
from domain.messages import Outgoing, Queued
from domain.model import Channel, Role, ScheduledItem
from domain.ports import Clock, UnitOfWork
from storage.db import session_factory
from storage.migrate import upgrade
from storage.tables import OutboxRow, ScheduledRow
from storage.uow import SqlUnitOfWorkFactory
from tests.support import FakeClock, database

ran: list[str] = []


async def remind(uow: UnitOfWork, clock: Clock, item: ScheduledItem) -> list[Queued]:
    ran.append(item.key)
    return [
        Queued(int(item.payload["person"]), Outgoing("help.cadre", {"hotline": "12317"}), f"r:{item.key}")
    ]


async def broken(uow: UnitOfWork, clock: Clock, item: ScheduledItem) -> list[Queued]:
    raise RuntimeError("no such campaign")


HANDLERS = {
    "remind": schedule.Handler(remind, quiet=True),
    "now": schedule.Handler(remind, quiet=False),
    "broken": schedule.Handler(broken, quiet=False),
}


async def _person(uow: SqlUnitOfWorkFactory, clock: FakeClock) -> int:
    async with uow() as work:
        person = await work.persons.add(Role.CADRE, name="张伟")
        await work.persons.bind(person.id, Channel.TELEGRAM, "2001", clock.now())
        await work.commit()
    return person.id


async def _add(
    uow: SqlUnitOfWorkFactory, clock: FakeClock, key: str, kind: str, minutes: float, person: int
) -> bool:
    async with uow() as work:
        added = await work.schedule.add(
            key, kind, clock.now() + timedelta(minutes=minutes), {"person": person}, clock.now()
        )
        await work.commit()
    return added


async def _tick(uow: SqlUnitOfWorkFactory, clock: FakeClock) -> schedule.TickResult:
    async with uow() as work:
        result = await schedule.tick(work, clock, HANDLERS, schedule.QuietHours())
        await work.commit()
    return result


async def _outbox_keys(engine: AsyncEngine) -> list[str]:
    async with session_factory(engine)() as session:
        return sorted((await session.scalars(select(OutboxRow.key))).all())


async def test_due_items_run_once_and_later_ones_wait(engine: AsyncEngine, clock: FakeClock) -> None:
    uow = SqlUnitOfWorkFactory(session_factory(engine))
    person = await _person(uow, clock)
    assert await _add(uow, clock, "a", "remind", -5, person)
    assert not await _add(uow, clock, "a", "remind", 30, person)  # a key is scheduled once
    await _add(uow, clock, "b", "now", 0, person)
    await _add(uow, clock, "c", "remind", 60, person)
    assert (await _tick(uow, clock)).done == 2
    assert (await _tick(uow, clock)).total == 0
    assert await _outbox_keys(engine) == ["r:a", "r:b"]
    clock.advance(minutes=61)
    assert (await _tick(uow, clock)).done == 1
    assert await _outbox_keys(engine) == ["r:a", "r:b", "r:c"]


async def test_reminders_wait_out_the_quiet_hours_but_other_items_do_not(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    uow = SqlUnitOfWorkFactory(session_factory(engine))
    clock.current = clock.current.replace(hour=22, minute=30)
    person = await _person(uow, clock)
    await _add(uow, clock, "night", "remind", 0, person)
    await _add(uow, clock, "notice", "now", 0, person)
    result = await _tick(uow, clock)
    assert (result.done, result.deferred) == (1, 1)
    async with session_factory(engine)() as session:
        night = await session.scalar(select(ScheduledRow).where(ScheduledRow.key == "night"))
    assert night is not None and night.status == "pending"
    morning = night.due_at.astimezone(clock.now().tzinfo)
    assert (morning.date() - clock.now().date(), morning.hour, morning.minute) == (timedelta(days=1), 7, 0)
    clock.advance(hours=8)  # 06:30: still quiet
    assert (await _tick(uow, clock)).done == 0
    clock.advance(minutes=30)
    assert (await _tick(uow, clock)).done == 1
    assert await _outbox_keys(engine) == ["r:night", "r:notice"]


async def test_a_broken_item_is_kept_as_failed_and_the_others_still_run(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    uow = SqlUnitOfWorkFactory(session_factory(engine))
    person = await _person(uow, clock)
    await _add(uow, clock, "ok1", "now", 0, person)
    await _add(uow, clock, "bad", "broken", 0, person)
    await _add(uow, clock, "ok2", "now", 0, person)
    await _add(uow, clock, "odd", "unknown-kind", 0, person)
    result = await _tick(uow, clock)
    assert (result.done, result.failed) == (2, 2)
    assert await _outbox_keys(engine) == ["r:ok1", "r:ok2"]
    async with session_factory(engine)() as session:
        rows = {r.key: (r.status, r.last_error) for r in (await session.scalars(select(ScheduledRow))).all()}
    assert rows["bad"][0] == "failed" and "no such campaign" in (rows["bad"][1] or "")
    assert rows["odd"][0] == "failed"


async def test_two_ticks_at_once_run_each_item_once(engine: AsyncEngine, clock: FakeClock) -> None:
    uow = SqlUnitOfWorkFactory(session_factory(engine))
    person = await _person(uow, clock)
    for n in range(30):
        await _add(uow, clock, f"k{n}", "now", 0, person)
    results = await asyncio.gather(_tick(uow, clock), _tick(uow, clock))
    assert sum(r.done for r in results) == 30
    assert len(await _outbox_keys(engine)) == 30


async def test_the_tick_finds_due_items_through_the_index(tmp_path: Path) -> None:
    async with database("sqlite", tmp_path) as engine:
        await upgrade(engine)
        async with engine.connect() as connection:
            plan = (
                await connection.execute(
                    text(
                        "EXPLAIN QUERY PLAN SELECT id FROM schedule WHERE status = 'pending' "
                        "AND due_at <= '2026-11-23' ORDER BY due_at LIMIT 200"
                    )
                )
            ).all()
    assert any("ix_schedule_due" in str(step[-1]) for step in plan), plan
