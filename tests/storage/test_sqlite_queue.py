"""SQLite's one connection: transactions wait their turn in arrival order, `urgent()` ones first,
and a waiter that gives up (a time-out, a cancellation) does not lose the connection for the rest."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import exc, text

from storage.db import create_engine, urgent


async def test_urgent_transactions_go_before_the_queue_the_rest_in_arrival_order(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'q.db'}")
    order: list[str] = []

    async def transaction(name: str, *, is_urgent: bool = False) -> None:
        if is_urgent:
            with urgent():
                async with engine.begin() as connection:
                    await connection.execute(text("SELECT 1"))
                    order.append(name)
        else:
            async with engine.begin() as connection:
                await connection.execute(text("SELECT 1"))
                order.append(name)

    try:
        holder = await engine.connect()  # the one connection, held
        waiting = [asyncio.create_task(transaction(f"normal{n}")) for n in range(3)]
        await asyncio.sleep(0.05)
        waiting.append(asyncio.create_task(transaction("urgent", is_urgent=True)))
        await asyncio.sleep(0.05)
        assert order == []  # all wait for the held connection
        await holder.close()
        await asyncio.gather(*waiting)
        assert order == ["urgent", "normal0", "normal1", "normal2"]
    finally:
        await engine.dispose()


async def test_a_waiter_that_gives_up_leaves_the_connection_to_the_next(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'q.db'}", pool_timeout=0.2)
    try:
        holder = await engine.connect()
        with pytest.raises(exc.TimeoutError):
            async with engine.connect():
                pass
        cancelled = asyncio.create_task(engine.connect().__aenter__())
        await asyncio.sleep(0.05)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        await holder.close()
        async with engine.connect() as connection:  # neither kept it
            assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await engine.dispose()
