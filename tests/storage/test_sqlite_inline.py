"""SQLite's driver calls run on the loop's thread; a wait for another process's write lock does
not block the loop, and the transaction goes on once the lock is free."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from storage.db import create_engine
from storage.sqlite_inline import InlineConnection


async def test_statements_run_on_the_loops_thread(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    threads: set[int] = set()

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def where(*_args: Any) -> None:
        threads.add(threading.get_ident())

    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (n INTEGER)"))
            await connection.execute(text("INSERT INTO t VALUES (1), (2)"))
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT sum(n) FROM t"))).scalar_one() == 3
            raw = await connection.get_raw_connection()
            assert isinstance(raw.driver_connection, InlineConnection)
            # the busy timeout is 0 here: an inline call never sleeps in SQLite's busy handler
            assert (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar_one() == 0
        assert threads == {threading.get_ident()}
    finally:
        await engine.dispose()


async def test_a_lock_held_by_another_process_is_waited_for_off_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (n INTEGER)"))
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")  # as a CLI command writing would
        other.execute("INSERT INTO t VALUES (1)")
        released = threading.Event()

        def release_later() -> None:
            time.sleep(0.6)
            other.execute("COMMIT")
            released.set()

        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        waited = InlineConnection.waited_for_lock
        ticker = asyncio.create_task(tick())
        threading.Thread(target=release_later, daemon=True).start()
        started = time.monotonic()
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO t VALUES (2)"))
        took = time.monotonic() - started
        ticker.cancel()
        assert released.is_set()
        assert took >= 0.5
        assert ticks >= 20  # the loop went on while the transaction waited for the lock
        assert InlineConnection.waited_for_lock == waited + 1
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT n FROM t ORDER BY n"))).scalars().all()
            assert rows == [1, 2]
            # and back to 0 for the next inline call
            assert (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar_one() == 0
        other.close()
    finally:
        await engine.dispose()


async def test_an_error_that_is_not_a_lock_is_raised_at_once(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'error.db'}")
    waited = InlineConnection.waited_for_lock
    try:
        with pytest.raises(Exception, match="no such table"):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT * FROM missing"))
        assert InlineConnection.waited_for_lock == waited
    finally:
        await engine.dispose()
