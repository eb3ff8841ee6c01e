"""Rate-limit counters in the database (SQLite, and PostgreSQL when TEST_DATABASE_URL is set)."""

from __future__ import annotations

from datetime import timedelta

from storage.uow import SqlUnitOfWorkFactory
from tests.support import FakeClock

WINDOW = timedelta(hours=1)


async def _hit(uow: SqlUnitOfWorkFactory, clock: FakeClock, key: str = "repeat:person:1") -> bool:
    async with uow() as work:
        allowed = await work.limits.hit(key, limit=2, window=WINDOW, now=clock.now())
        await work.commit()
    return allowed


async def test_a_counter_allows_its_limit_in_a_window_then_starts_again(
    uow: SqlUnitOfWorkFactory, clock: FakeClock
) -> None:
    assert [await _hit(uow, clock) for _ in range(4)] == [True, True, False, False]
    assert await _hit(uow, clock, "repeat:person:2")  # another key counts on its own
    clock.advance(minutes=59)
    assert not await _hit(uow, clock)  # the window runs from the first hit
    clock.advance(minutes=2)
    assert [await _hit(uow, clock) for _ in range(3)] == [True, True, False]


async def test_old_counters_are_forgotten(uow: SqlUnitOfWorkFactory, clock: FakeClock) -> None:
    await _hit(uow, clock, "a")
    clock.advance(days=3)
    await _hit(uow, clock, "b")
    async with uow() as work:
        assert await work.limits.forget(clock.now() - timedelta(days=2)) == 1
        await work.commit()
    assert [await _hit(uow, clock, "b") for _ in range(2)] == [True, False]  # "b" was kept
