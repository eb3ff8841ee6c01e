"""Engines and sessions for SQLite (embedded default) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util import queue as sqla_queue
from sqlalchemy.util.concurrency import await_

from storage.sqlite_inline import BUSY_TIMEOUT_MS, InlineConnection, async_creator

_URGENT: contextvars.ContextVar[bool] = contextvars.ContextVar("storage_urgent", default=False)


@contextlib.contextmanager
def urgent() -> Iterator[None]:
    """Transactions begun inside get SQLite's one connection before every other waiting one
    (the sender's marks of what Telegram took, the heartbeat): the shorter the wait between
    Telegram's answer and the mark, the fewer messages a crash in between sends twice. No effect
    on PostgreSQL, whose pool has room for everyone."""
    token = _URGENT.set(True)
    try:
        yield
    finally:
        _URGENT.reset(token)


class _UrgentFirstQueue(sqla_queue.AsyncAdaptedQueue[Any]):
    """The pool's queue of connections: first come, first served, except that waiters marked
    `urgent()` are served before the others."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        super().__init__(maxsize, use_lifo)
        self._items: deque[Any] = deque()
        self._waiters: dict[bool, deque[asyncio.Future[Any]]] = {True: deque(), False: deque()}

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return self.maxsize > 0 and len(self._items) >= self.maxsize

    def qsize(self) -> int:
        return len(self._items)

    def put_nowait(self, item: Any) -> None:
        for urgent_first in (True, False):
            waiters = self._waiters[urgent_first]
            while waiters:
                waiter = waiters.popleft()
                if not waiter.done():
                    waiter.set_result(item)
                    return
        if self.full():
            raise sqla_queue.Full()
        self._items.append(item)

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        if not self._items:
            raise sqla_queue.Empty()
        return self._items.popleft()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if self._items or not block:
            return self.get_nowait()
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters[_URGENT.get()].append(waiter)
        return await_(self._wait(waiter, timeout))

    async def _wait(self, waiter: asyncio.Future[Any], timeout: float | None) -> Any:
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(waiter)
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self.put_nowait(waiter.result())  # handed over just as we gave up: to the next
            else:
                waiter.cancel()
            if isinstance(exc, TimeoutError):
                raise sqla_queue.Empty() from exc
            raise


class _UrgentFirstPool(AsyncAdaptedQueuePool):
    _queue_class = _UrgentFirstQueue


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event open transactions (see _sqlite_begin), not the driver.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    if not isinstance(getattr(dbapi_connection, "_connection", None), InlineConnection):
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")  # an inline one waits on its thread
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # Take the write lock up front: two transactions that read then write (two presses of the
    # same button) then queue on busy_timeout instead of one failing with "database is locked".
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(url: str, **options: Any) -> AsyncEngine:
    """An async engine; SQLite gets WAL, foreign keys and a busy timeout on every connection.

    SQLite has one writer at a time and every transaction here takes the write lock (BEGIN
    IMMEDIATE), so a file database gets one pooled connection: transactions wait their turn in
    the pool's queue, in arrival order (but `urgent()` ones first) and without blocking the event
    loop, instead of polling in SQLite's busy handler (unfair under load: a waiter could starve
    past busy_timeout while newcomers got in). The connection goes back to the queue once COMMIT
    or ROLLBACK is done. Its driver calls run on the loop's thread (storage/sqlite_inline.py):
    no thread round trip per call, and a wait for another process's lock on aiosqlite's thread.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            options = {
                "poolclass": _UrgentFirstPool,
                "pool_size": 1,
                "max_overflow": 0,
                "async_creator": async_creator(parsed.database),
                **options,
            }
        engine = create_async_engine(url, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(url, pool_pre_ping=True, **options)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
