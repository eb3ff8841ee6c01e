"""SQLite on the event loop's own thread, with aiosqlite's thread kept for waiting on locks.

aiosqlite runs every driver call (cursor, execute, fetch, close, commit) on a thread of its own
and hands the result back through the event loop's self-pipe: about 4 thread round trips per
statement, each a GIL hand-over and a wake-up of the loop. A declaration step here runs about
20 statements, each a few microseconds of SQLite work on a local file, so those hand-overs were
about a third of the service's CPU per step (measured with benchmarks/intake.py: 22.5 → 15.5
ms a step).

`InlineConnection` is aiosqlite's connection with one change: a call runs at once, on the
caller's thread, with SQLite's busy timeout at 0, so it can never block the loop waiting for a
lock. When SQLite answers SQLITE_BUSY (another process, such as a CLI command, holds the write
lock: the only wait a WAL database has, because every transaction here starts with BEGIN
IMMEDIATE and readers never block), the same call is made again on aiosqlite's thread with
the full busy timeout, and the loop goes on meanwhile. SQLite documents a statement that
answered SQLITE_BUSY as safe to retry, COMMIT included.

What still runs on the loop's thread: the work itself. A long query (an export of every case)
holds the loop for its length, where before it held only the pool's one connection; and with
`synchronous=NORMAL` in WAL mode a COMMIT does not wait for the disk, except the automatic
checkpoint every ~1,000 pages.

Only for file databases: `:memory:` connections are made with check_same_thread=True.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import partial
from typing import Any

import aiosqlite

BUSY_TIMEOUT_MS = 10_000
_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _BUSY_CODES
    return "locked" in str(exc) or "busy" in str(exc)


class InlineConnection(aiosqlite.Connection):
    """aiosqlite's connection, its calls made inline; see the module's docstring."""

    #: calls that had to wait for a lock on the thread (for tests and curiosity)
    waited_for_lock = 0

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        try:
            return fn(*args, **kwargs)
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
        type(self).waited_for_lock += 1
        return await super()._execute(partial(self._with_busy_timeout, fn, *args, **kwargs))

    def _with_busy_timeout(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # On aiosqlite's thread, while the loop awaits it: nothing else uses the connection.
        connection = self._conn
        connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        try:
            return fn(*args, **kwargs)
        finally:
            connection.execute("PRAGMA busy_timeout=0")


def async_creator(database: str) -> Callable[[], Any]:
    """For create_async_engine(async_creator=...): a file database's connection, made on
    aiosqlite's thread as usual (check_same_thread off, as SQLAlchemy's aiosqlite dialect asks
    for a file database), then used inline."""

    def connector() -> sqlite3.Connection:
        connection = sqlite3.connect(database, check_same_thread=False)
        connection.execute("PRAGMA busy_timeout=0")
        return connection

    async def create() -> InlineConnection:
        connection = InlineConnection(connector, iter_chunk_size=64)
        connection._thread.daemon = True
        await connection  # opens it on aiosqlite's thread
        return connection

    return create
