"""Several workers on one database: who may run, who leads, what runs once, who is woken.

- `SingleProcessLock`: SQLite serves one process; a second `python -m bot run` on the same
  database file is refused with one line (an exclusive `flock` on `<database file>.lock`).
- `AdvisoryLock`: a PostgreSQL session-level advisory lock, held on a dedicated connection from
  the engine for as long as it is held. If that connection dies, PostgreSQL frees the lock and
  `held` becomes False (found by `check()`, a cheap `SELECT 1`).
- `Leadership`: takes such a lock every `every` seconds while it does not have it, checks it every
  `every` seconds while it does, and says so through `on_gain`/`on_lose` (one outbox sender, one
  pacer, for every worker; another worker takes over within about `every` seconds of a death).
- `once_across_workers`: runs a named job unless another worker is running it right now.
- `PollerLock`: Telegram allows one long-poller per token.
- `notify` / `Listener`: PostgreSQL LISTEN/NOTIFY, to wake the leader's sender when another worker
  queued a message. A notification is delivered when the writer's transaction commits, never before.

Advisory locks and notification channels are global to a PostgreSQL database, not to a schema:
every key and channel is derived from `current_schema()` and a name, so two deployments (or two
tests) in separate schemas of one database never meet. Keys are 64-bit
(`hashtextextended(schema || ':' || name, 0)`, the single-bigint key space, which never collides
with the two-integer keys of storage/inbox.py's chat locks). On SQLite every lock is granted (one
process, guarded by `SingleProcessLock`) and notifications are no-ops (the one process wakes its
own sender).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import inspect
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

log = logging.getLogger(__name__)
T = TypeVar("T")

# The lock's key, as SQL: one bigint from the schema and the lock's name.
_KEY = "hashtextextended(current_schema() || ':' || :name, 0)"
# A channel name: `<schema>.<channel>`, the schema cut so that the whole fits in an identifier
# (63 bytes; pg_notify refuses longer names, LISTEN would silently cut them).
_CHANNEL = "left(current_schema(), 62 - length({0})) || '.' || {0}"
MAX_CHANNEL = 30
CHECK_TIMEOUT = 5.0  # seconds a `SELECT 1` on a lock's connection may take before it is deemed lost


class AnotherWorker(RuntimeError):
    """Another process already serves this SQLite database."""


class AnotherPoller(RuntimeError):
    """Another worker already long-polls Telegram with this bot's token."""


def _is_postgresql(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"


# --- SQLite: one process ------------------------------------------------------------------------


class SingleProcessLock:
    """An exclusive, non-blocking `flock` on `<database file>.lock`, held while the process runs.

    No lock for an in-memory SQLite database (nobody else can open it) nor for PostgreSQL (any
    number of workers). The lock file stays (removing it would race with the next worker); it
    holds the pid of the process that last took it, for whoever wonders which one runs.
    """

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        database = url.database or ""
        memory = (
            not database
            or database == ":memory:"
            or database.startswith("file::memory:")
            or url.query.get("mode") == "memory"
        )
        self.database = database
        self.path: Path | None = (
            None if url.get_backend_name() != "sqlite" or memory else Path(f"{database}.lock")
        )
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock, or raise `AnotherWorker` (one line saying what to do)."""
        if self.path is None or self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AnotherWorker(
                f"another worker is already running on this SQLite database ({self.database}); "
                "SQLite serves one process — use PostgreSQL (DATABASE_URL=postgresql+asyncpg://...) "
                "to run several workers"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


# --- PostgreSQL: advisory locks -----------------------------------------------------------------


class AdvisoryLock:
    """A session-level advisory lock named `name` (in the current schema), on its own connection.

    The connection is taken from the engine's pool when the lock is taken and kept checked out,
    idle, while it is held; releasing unlocks and hands it back. A connection that died is
    discarded (invalidated), never handed back.
    """

    def __init__(self, engine: AsyncEngine, name: str) -> None:
        self.engine = engine
        self.name = name
        self._connection: AsyncConnection | None = None
        self._sqlite_held = False

    @property
    def held(self) -> bool:
        """Whether this worker holds the lock, as far as the last look knew (`check()` looks)."""
        return self._sqlite_held or self._connection is not None

    async def try_acquire(self) -> bool:
        """Take the lock if nobody holds it: True if this worker holds it now."""
        if not _is_postgresql(self.engine):
            self._sqlite_held = True
            return True
        if self._connection is not None:
            return True
        connection = await self.engine.connect()
        try:
            # Autocommit: the connection idles between checks, never inside a transaction.
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            result = await connection.execute(
                text(f"SELECT pg_try_advisory_lock({_KEY})"), {"name": self.name}
            )
            got = bool(result.scalar_one())
        except BaseException:
            await _discard(connection)
            raise
        if not got:
            await connection.close()
            return False
        self._connection = connection
        return True

    async def check(self, timeout: float = CHECK_TIMEOUT) -> bool:
        """Whether the lock is still held: its connection answers `SELECT 1` within `timeout`
        seconds. A connection that does not is discarded, and the lock counted lost (PostgreSQL
        frees it when it sees the connection gone)."""
        if self._connection is None:
            return self._sqlite_held
        try:
            async with asyncio.timeout(timeout):
                await self._connection.execute(text("SELECT 1"))
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("advisory lock %r lost: its connection failed (%s)", self.name, type(exc).__name__)
            connection, self._connection = self._connection, None
            await _discard(connection)
            return False

    async def release(self) -> None:
        """Let the lock go (no-op when not held)."""
        self._sqlite_held = False
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                await connection.execute(text(f"SELECT pg_advisory_unlock({_KEY})"), {"name": self.name})
        except Exception:
            # Unlocked or not, a connection that may still hold the lock must not go back to the pool.
            await _discard(connection)
            return
        await connection.close()


async def _discard(connection: AsyncConnection) -> None:
    """Close a connection for good: never back to the pool (it may hold a lock, or be dead)."""
    with contextlib.suppress(Exception):
        await connection.invalidate()
    with contextlib.suppress(Exception):
        await connection.close()


class Leadership:
    """One leader among the workers: whoever holds the advisory lock `name`.

    A task tries to take the lock every `every` seconds while this worker is not the leader, and
    checks it every `every` seconds while it is; `on_gain()` is awaited when it becomes leader,
    `on_lose()` when it stops being one (the lock's connection died, or `stop()`). If `on_gain`
    fails, the lock is let go at once (another worker, or the next try, takes over).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        name: str,
        *,
        every: float = 1.0,
        on_gain: Callable[[], Awaitable[object]],
        on_lose: Callable[[], Awaitable[object]],
    ) -> None:
        self.lock = AdvisoryLock(engine, name)
        self.every = every
        self.on_gain = on_gain
        self.on_lose = on_lose
        self.leader = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"leadership-{self.lock.name}")

    async def stop(self) -> None:
        """Stop trying; a leader calls `on_lose()` and lets the lock go (another worker takes over)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.leader:
            await self._lose(stopping=True)
        await self.lock.release()

    async def step(self) -> None:
        """One round: try to become leader, or check that this worker still is."""
        if not self.leader:
            try:
                got = await self.lock.try_acquire()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "leadership %r: cannot reach the database (%s)", self.lock.name, type(exc).__name__
                )
                return
            if not got:
                return
            self.leader = True
            log.info("leadership %r: this worker leads", self.lock.name)
            try:
                await self.on_gain()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("leadership %r: taking over failed; letting the lock go", self.lock.name)
                self.leader = False
                await self.lock.release()
        elif not await self.lock.check():
            await self._lose()

    async def _lose(self, *, stopping: bool = False) -> None:
        self.leader = False
        if stopping:
            log.info("leadership %r: this worker stops leading", self.lock.name)
        else:
            log.warning("leadership %r: this worker no longer leads", self.lock.name)
        try:
            await self.on_lose()
        except Exception:
            log.exception("leadership %r: stepping down failed", self.lock.name)

    async def _run(self) -> None:
        while True:
            await self.step()
            await asyncio.sleep(self.every)  # the period of the look, not a wait for something


async def once_across_workers(
    engine: AsyncEngine, name: str, job: Callable[[], Awaitable[T]]
) -> tuple[bool, T | None]:
    """Run `job()` unless another worker is running the job `name` right now: `(ran, result)`.

    On PostgreSQL the job holds the advisory lock `once:<name>` on a dedicated connection while it
    runs (its own work uses other connections); on SQLite it always runs.
    """
    lock = AdvisoryLock(engine, f"once:{name}")
    if not await lock.try_acquire():
        return False, None
    try:
        return True, await job()
    finally:
        await lock.release()


class PollerLock:
    """Telegram serves one long-poller per token: the advisory lock "poller", held while polling."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.lock = AdvisoryLock(engine, "poller")

    async def acquire(self) -> None:
        """Take the lock, or raise `AnotherPoller` (one line saying what to do)."""
        if not await self.lock.try_acquire():
            raise AnotherPoller(
                "another worker is already long-polling this bot; Telegram allows one poller per "
                "token — set WEBHOOK_URL and WEBHOOK_SECRET to run several workers"
            )

    async def release(self) -> None:
        await self.lock.release()


# --- PostgreSQL: LISTEN / NOTIFY ----------------------------------------------------------------


def _check_channel(channel: str) -> str:
    if not channel or len(channel) > MAX_CHANNEL or not channel.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"a channel is 1-{MAX_CHANNEL} letters, digits, _ or -: {channel!r}")
    return channel


async def notify(target: AsyncSession | AsyncConnection, channel: str, payload: str = "") -> None:
    """Queue a notification on `<schema>.<channel>` in `target`'s transaction: listeners hear it
    when that transaction commits (never if it rolls back). No-op on SQLite. Never put personal
    data in `payload` (it is logged by PostgreSQL on errors, and seen by every listener)."""
    _check_channel(channel)
    dialect = target.dialect.name if isinstance(target, AsyncConnection) else target.get_bind().dialect.name
    if dialect != "postgresql":
        return
    await target.execute(
        text(f"SELECT pg_notify({_CHANNEL.format(':channel')}, :payload)"),
        {"channel": channel, "payload": payload},
    )


class Listener:
    """LISTEN on `<schema>.<channel>` on a dedicated connection; `callback(payload)` on each
    notification (e.g. `lambda _: sender.wake()`); a coroutine it returns is run as a task.

    It is also called, with "", each time the listener (re)connects: what was notified while
    nobody listened is not heard. A lost connection (killed, or silent for `check_every` + 5 s) is
    replaced after `retry` seconds. No-op on SQLite.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        channel: str,
        callback: Callable[[str], object],
        *,
        check_every: float = 30.0,
        retry: float = 1.0,
    ) -> None:
        self.engine = engine
        self.channel = _check_channel(channel)
        self.callback = callback
        self.check_every = check_every
        self.retry = retry
        self.listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._first = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        """Start listening; returns once the first attempt is done (listening, or failed and retrying)."""
        if not _is_postgresql(self.engine) or self._task is not None:
            return
        self._task = asyncio.create_task(self._run(), name=f"listener-{self.channel}")
        first = asyncio.ensure_future(self._first.wait())
        await asyncio.wait({first, self._task}, return_when=asyncio.FIRST_COMPLETED)
        first.cancel()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in list(self._tasks):
            task.cancel()

    def _heard(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        self._fire(payload)

    def _fire(self, payload: str) -> None:
        try:
            result = self.callback(payload)
        except Exception:
            log.exception("listener %s: the callback failed", self.channel)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "listener %s: connection lost (%s); listening again", self.channel, type(exc).__name__
                )
            finally:
                self.listening.clear()
                self._first.set()
            await asyncio.sleep(self.retry)

    async def _listen(self) -> None:
        connection = await self.engine.connect()
        try:
            raw: Any = (await connection.get_raw_connection()).driver_connection  # asyncpg's
            lost = asyncio.Event()
            raw.add_termination_listener(lambda *_: lost.set())
            name = await raw.fetchval(f"SELECT {_CHANNEL.format('$1::text')}", self.channel)
            await raw.add_listener(name, self._heard)
            self.listening.set()
            self._first.set()
            self._fire("")  # what was queued while nobody listened
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self.check_every)
                if lost.is_set():
                    raise ConnectionError("the listening connection closed")
                async with asyncio.timeout(CHECK_TIMEOUT):
                    await raw.fetchval("SELECT 1")
        finally:
            # Never back to the pool: it is listening, or dead.
            await _discard(connection)
