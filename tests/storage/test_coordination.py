"""Several workers on one database: the SQLite single-process lock, PostgreSQL advisory locks,
leadership, jobs run once across workers, the poller lock and LISTEN/NOTIFY.

Two workers are two engines on one database (on PostgreSQL: one schema, as two processes with
the same DATABASE_URL would see it)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from storage.coordination import (
    AdvisoryLock,
    AnotherPoller,
    AnotherWorker,
    Leadership,
    Listener,
    PollerLock,
    SingleProcessLock,
    notify,
    once_across_workers,
)
from storage.db import create_engine, session_factory
from storage.uow import SqlUnitOfWorkFactory
from tests.support import database, postgres_url

ROOT = Path(__file__).resolve().parents[2]
REFUSED = (
    "another worker is already running on this SQLite database ({}); SQLite serves one process — "
    "use PostgreSQL (DATABASE_URL=postgresql+asyncpg://...) to run several workers"
)
WAIT = 10.0  # seconds any awaited event may take before the test fails (they take milliseconds)


# --- SQLite: one process -------------------------------------------------------------------------


def test_a_second_lock_on_the_same_sqlite_file_is_refused_with_one_line(tmp_path: Path) -> None:
    database_file = tmp_path / "var" / "fanghui.db"
    url = f"sqlite+aiosqlite:///{database_file}"
    first, second = SingleProcessLock(url), SingleProcessLock(url)
    first.acquire()
    with pytest.raises(AnotherWorker) as refused:
        second.acquire()
    assert str(refused.value) == REFUSED.format(database_file)
    assert "\n" not in str(refused.value) and not second.held
    first.release()
    second.acquire()  # free again once the first worker let go
    assert second.held
    second.release()
    # Another database file is another lock.
    with SingleProcessLock(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"):
        SingleProcessLock(url).acquire()


def test_a_second_process_on_the_same_sqlite_file_is_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fanghui.db'}"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from storage.coordination import SingleProcessLock\n"
            f"lock = SingleProcessLock({url!r}); lock.acquire(); print('held', flush=True); sys.stdin.read()",
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(AnotherWorker, match="another worker is already running"):
            SingleProcessLock(url).acquire()
        # And the other way round: a process started while this one holds the lock is refused.
        with SingleProcessLock(f"sqlite+aiosqlite:///{tmp_path / 'second.db'}"):
            refused = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "from storage.coordination import SingleProcessLock\n"
                    f"SingleProcessLock({str(url).replace('fanghui', 'second')!r}).acquire()",
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
            )
        assert refused.returncode != 0
        assert refused.stderr.strip().splitlines()[-1] == (
            "storage.coordination.AnotherWorker: " + REFUSED.format(tmp_path / "second.db")
        )
        holder.stdin.close()  # the holder ends: its lock ends with it
        assert holder.wait(timeout=60) == 0
    finally:
        holder.kill()
        holder.wait()
    with SingleProcessLock(url) as lock:
        assert lock.held


def test_no_lock_for_memory_databases_and_postgresql() -> None:
    for url in ("sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:", "postgresql+asyncpg://u@h/db"):
        first, second = SingleProcessLock(url), SingleProcessLock(url)
        first.acquire()
        second.acquire()
        assert first.path is None
        first.release()
        second.release()


# --- two workers ---------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
async def workers(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two engines on one database, as two worker processes have."""
    async with database(request.param, tmp_path) as first:
        if request.param == "sqlite":
            second = create_engine(str(first.url))
        else:
            url = postgres_url()
            assert url is not None
            async with first.connect() as connection:
                schema = (await connection.execute(text("SELECT current_schema()"))).scalar_one()
            second = create_engine(url, connect_args={"server_settings": {"search_path": schema}})
        try:
            yield first, second
        finally:
            await second.dispose()


async def holder_pid(engine: AsyncEngine, name: str) -> int | None:
    """The backend holding the advisory lock `name` of this engine's schema, from pg_locks."""
    async with engine.connect() as connection:
        found = await connection.execute(
            text(
                "SELECT pid FROM pg_locks, "
                "(SELECT hashtextextended(current_schema() || ':' || :name, 0) AS k) AS key "
                "WHERE locktype = 'advisory' AND objsubid = 1 AND granted "
                "AND classid = ((key.k >> 32) & 4294967295)::oid AND objid = (key.k & 4294967295)::oid"
            ),
            {"name": name},
        )
        return found.scalar_one_or_none()


async def eventually(probe: Callable[[], Awaitable[object]], *, equals: object) -> None:
    """Wait until `probe()` gives `equals` (for what PostgreSQL does on its own time, e.g. a
    backend's exit after its client hung up: there is no event to await)."""
    deadline = time.monotonic() + WAIT
    while (found := await probe()) != equals:
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.02)


async def kill(engine: AsyncEngine, pid: int) -> None:
    """What a worker's death (or a cut network) does to its connection."""
    async with engine.connect() as connection:
        assert (
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        ).scalar_one()
        await connection.commit()


@pytest.mark.parametrize("workers", ["postgresql"], indirect=True)
async def test_an_advisory_lock_held_by_one_worker_is_refused_to_the_other_until_its_connection_dies(
    workers: tuple[AsyncEngine, AsyncEngine], tmp_path: Path
) -> None:
    one, other = workers
    first, second = AdvisoryLock(one, "leader"), AdvisoryLock(other, "leader")
    assert await first.try_acquire() and first.held
    assert await first.try_acquire()  # taking it again is a no-op
    assert not await second.try_acquire() and not second.held
    another = AdvisoryLock(other, "another name")
    assert await another.try_acquire()
    await another.release()
    # Advisory locks are global to the database: another schema has its own.
    async with database("postgresql", tmp_path) as elsewhere:
        elsewhere_lock = AdvisoryLock(elsewhere, "leader")
        assert await elsewhere_lock.try_acquire()
        await elsewhere_lock.release()
    pid = await holder_pid(other, "leader")
    assert pid is not None
    await kill(other, pid)
    # pg_terminate_backend only signals: the backend lets go of the lock when it has exited.
    await eventually(lambda: holder_pid(other, "leader"), equals=None)
    assert await second.try_acquire()  # PostgreSQL freed it with the connection
    assert first.held  # as far as the first knew, until it looks:
    assert not await first.check() and not first.held
    assert not await first.try_acquire()
    await second.release()
    assert await holder_pid(one, "leader") is None
    assert await first.try_acquire()
    await first.release()


@pytest.mark.parametrize("workers", ["sqlite"], indirect=True)
async def test_on_sqlite_every_lock_is_granted(workers: tuple[AsyncEngine, AsyncEngine]) -> None:
    first, second = AdvisoryLock(workers[0], "leader"), AdvisoryLock(workers[1], "leader")
    assert await first.try_acquire() and await second.try_acquire() and await first.check()
    await first.release()
    assert not first.held
    await PollerLock(workers[0]).acquire()
    await PollerLock(workers[1]).acquire()


class Watcher:
    """A Leadership's callbacks, as events a test awaits."""

    def __init__(self) -> None:
        self.gained = asyncio.Event()
        self.lost = asyncio.Event()

    async def gain(self) -> None:
        self.lost.clear()
        self.gained.set()

    async def lose(self) -> None:
        self.gained.clear()
        self.lost.set()


@pytest.mark.parametrize("workers", ["postgresql"], indirect=True)
async def test_when_the_leader_dies_another_worker_leads_within_two_seconds(
    workers: tuple[AsyncEngine, AsyncEngine],
) -> None:
    one, other = workers
    first_seen, second_seen = Watcher(), Watcher()
    first = Leadership(one, "sender", every=0.2, on_gain=first_seen.gain, on_lose=first_seen.lose)
    second = Leadership(other, "sender", every=0.2, on_gain=second_seen.gain, on_lose=second_seen.lose)
    await first.step()
    assert first.leader and first_seen.gained.is_set()
    await second.step()
    assert not second.leader and not second_seen.gained.is_set()
    first.start()
    second.start()
    try:
        pid = await holder_pid(other, "sender")
        assert pid is not None
        started = time.monotonic()
        await kill(other, pid)
        await asyncio.wait_for(second_seen.gained.wait(), WAIT)
        took = time.monotonic() - started
        await asyncio.wait_for(first_seen.lost.wait(), WAIT)  # the old leader found out and stepped down
        assert took < 2.0, took
        print(f"take-over: {took:.3f}s")
        assert second.leader and not first.leader
        # A worker that stops hands over at once: the lock goes with it.
        await second.stop()
        assert second_seen.lost.is_set()
        await asyncio.wait_for(first_seen.gained.wait(), WAIT)
        assert first.leader
    finally:
        await first.stop()
        await second.stop()
    assert await holder_pid(one, "sender") is None


@pytest.mark.parametrize("workers", ["postgresql"], indirect=True)
async def test_a_leader_that_fails_to_take_over_lets_the_lock_go(
    workers: tuple[AsyncEngine, AsyncEngine],
) -> None:
    lost = asyncio.Event()

    async def broken() -> None:
        raise RuntimeError("cannot start the sender")

    async def lose() -> None:
        lost.set()

    leadership = Leadership(workers[0], "sender", on_gain=broken, on_lose=lose)
    await leadership.step()
    assert not leadership.leader and not lost.is_set()
    assert await holder_pid(workers[1], "sender") is None


async def test_a_job_runs_once_when_two_workers_race(workers: tuple[AsyncEngine, AsyncEngine]) -> None:
    one, other = workers
    running, finish = asyncio.Event(), asyncio.Event()
    runs: list[str] = []

    async def job(worker: str) -> str:
        runs.append(worker)
        running.set()
        await finish.wait()
        return f"done by {worker}"

    first = asyncio.create_task(once_across_workers(one, "tick", lambda: job("one")))
    await asyncio.wait_for(running.wait(), WAIT)
    if one.dialect.name == "sqlite":
        # One process: whoever asks runs (the single-process lock keeps others away).
        finish.set()
        assert await once_across_workers(other, "tick", lambda: job("other")) == (True, "done by other")
        assert await first == (True, "done by one")
        return
    assert await once_across_workers(other, "tick", lambda: job("other")) == (False, None)
    assert await once_across_workers(other, "another job", lambda: asyncio.sleep(0, "ran")) == (True, "ran")
    finish.set()
    assert await first == (True, "done by one")
    assert runs == ["one"]
    # Once the first run is over, the next tick runs wherever it comes.
    assert await once_across_workers(other, "tick", lambda: job("other")) == (True, "done by other")
    # A job that fails lets the lock go all the same.
    with pytest.raises(ZeroDivisionError):
        await once_across_workers(one, "tick", lambda: asyncio.sleep(0, 1 / 0))
    assert await holder_pid(one, "once:tick") is None


@pytest.mark.parametrize("workers", ["postgresql"], indirect=True)
async def test_a_second_poller_is_refused_with_one_line(workers: tuple[AsyncEngine, AsyncEngine]) -> None:
    first, second = PollerLock(workers[0]), PollerLock(workers[1])
    await first.acquire()
    with pytest.raises(AnotherPoller) as refused:
        await second.acquire()
    assert str(refused.value) == (
        "another worker is already long-polling this bot; Telegram allows one poller per token — "
        "set WEBHOOK_URL and WEBHOOK_SECRET to run several workers"
    )
    await first.release()
    await second.acquire()
    await second.release()


# --- LISTEN / NOTIFY -----------------------------------------------------------------------------


class Heard:
    """What a Listener heard, each payload awaitable."""

    def __init__(self) -> None:
        self.payloads: list[str] = []
        self._changed = asyncio.Condition()

    def __call__(self, payload: str) -> None:
        self.payloads.append(payload)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, payload: str, count: int = 1) -> None:
        async def seen() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: self.payloads.count(payload) >= count)

        await asyncio.wait_for(seen(), WAIT)


@pytest.mark.parametrize("workers", ["postgresql"], indirect=True)
async def test_a_listener_hears_another_workers_notify_only_once_it_commits(
    workers: tuple[AsyncEngine, AsyncEngine], tmp_path: Path
) -> None:
    one, other = workers
    heard = Heard()
    listener = Listener(one, "outbox", heard)
    await listener.start()
    try:
        assert listener.listening.is_set()
        await heard.wait_for("")  # the wake-up on connecting: what was queued before is looked at
        async with other.connect() as writer, other.connect() as second_writer:
            await notify(writer, "outbox", "first")  # in a transaction not yet committed
            await notify(second_writer, "outbox", "second")
            await notify(second_writer, "other-channel", "elsewhere")
            await second_writer.commit()
            # PostgreSQL delivers in commit order: "second" heard means "first" would have been.
            await heard.wait_for("second")
            assert "first" not in heard.payloads
            await writer.commit()
            await heard.wait_for("first")
            # A rolled-back transaction notifies nobody.
            await notify(writer, "outbox", "rolled back")
            await writer.rollback()
            await notify(second_writer, "outbox", "third")
            await second_writer.commit()
            await heard.wait_for("third")
        # Another schema's channel of the same name is another channel.
        async with database("postgresql", tmp_path) as elsewhere, elsewhere.begin() as connection:
            await notify(connection, "outbox", "other schema")
        async with other.begin() as connection:
            await notify(connection, "outbox", "fourth")
        await heard.wait_for("fourth")
        assert heard.payloads == ["", "second", "first", "third", "fourth"]
    finally:
        await listener.stop()


@pytest.mark.parametrize("workers", ["postgresql"], indirect=True)
async def test_a_listener_whose_connection_dies_listens_again(
    workers: tuple[AsyncEngine, AsyncEngine],
) -> None:
    one, other = workers
    heard = Heard()
    listener = Listener(one, "outbox", heard, retry=0.05)
    await listener.start()
    try:
        await heard.wait_for("")
        async with other.connect() as connection:
            schema = (await connection.execute(text("SELECT current_schema()"))).scalar_one()
            pid = (
                await connection.execute(
                    text("SELECT pid FROM pg_stat_activity WHERE query = :listen"),
                    {"listen": f'LISTEN "{schema}.outbox"'},
                )
            ).scalar_one()
        await kill(other, pid)
        await heard.wait_for("", count=2)  # connected again (and woke the sender, in case)
        async with other.begin() as connection:
            await notify(connection, "outbox", "after")
        await heard.wait_for("after")
    finally:
        await listener.stop()
    # Stopped: its connection is closed, not back in the pool.
    assert isinstance(one.pool, QueuePool) and one.pool.checkedout() == 0

    async def still_listening() -> int:
        async with other.connect() as connection:
            found = await connection.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE query LIKE :listen"),
                {"listen": f"LISTEN%{schema}%"},
            )
            return int(found.scalar_one())

    await eventually(lambda: still_listening(), equals=0)


@pytest.mark.parametrize("workers", ["sqlite"], indirect=True)
async def test_notify_and_listen_are_no_ops_on_sqlite(workers: tuple[AsyncEngine, AsyncEngine]) -> None:
    listener = Listener(workers[0], "outbox", lambda _: None)
    await listener.start()
    assert not listener.listening.is_set()
    async with workers[1].begin() as connection:
        await notify(connection, "outbox")
    await listener.stop()


def test_channel_names_are_short_and_plain() -> None:
    engine = create_engine("sqlite+aiosqlite://")
    for bad in ("", "x" * 31, "out box", "outbox;drop"):
        with pytest.raises(ValueError):
            Listener(engine, bad, lambda _: None)


async def test_declarations_of_one_phone_are_counted_one_transaction_at_a_time(engine: AsyncEngine) -> None:
    """Two confirms with the same phone on two workers: the second counts only once the first has
    committed (else both see 2 of 3 and both get through the limit)."""
    uow = SqlUnitOfWorkFactory(session_factory(engine))
    order: list[str] = []

    async def second() -> None:
        async with uow() as work:
            await work.declarations.lock_phone("13912345678")
            order.append("second")

    async with uow() as work:
        await work.declarations.lock_phone("13912345678")
        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.5)
        assert not waiting.done()
        order.append("first")
        await work.commit()
    await asyncio.wait_for(waiting, 10)
    assert order == ["first", "second"]
