"""Fast seeding for the benchmarks: rows written straight into the real tables of a migrated
database, many at a time (SQLite: one executemany per chunk in one transaction; PostgreSQL:
COPY through asyncpg's copy_records_to_table), with the domain's own values for roles, states
and channels. Not a use case: nothing here checks a rule, so the benchmarks drive the real use
cases for what they measure and use this only for the data already stored.

    from benchmarks.seed import Bulk, World, township, cadres, households, ledger
    from benchmarks.seed import postgres_schema, postgres_database, ServiceProcess

The last part starts the service as deployed, `python -m bot run`, in a child process
(ServiceProcess), with the settings given as environment variables.

Ids are given explicitly (a fresh database has none yet); `Bulk.done()` moves PostgreSQL's
sequences past them, so rows the service adds later get new ids.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from domain.cases import receipt_number
from domain.intake import CONSENT_VERSION
from domain.model import Channel, DeclarationStatus, LedgerStatus, Role, RoutedTo, TaskStatus
from storage.db import create_engine

CHUNK = 20_000
# Tables with an `id` primary key whose sequence must follow the ids given here (PostgreSQL).
SEQUENCED = (
    "townships", "villages", "persons", "channel_accounts", "declarations", "tasks", "case_events",
    "outbox", "schedule", "notices", "ledger_items",
)  # fmt: skip


def stamp(moment: datetime) -> str:
    """How SQLAlchemy stores a datetime in SQLite (in UTC, see storage.tables.UTCDateTime)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class Bulk:
    """Bulk inserts into a migrated database (SQLite or PostgreSQL) through `engine`.

    Values are Python values as the models hold them: aware datetimes, dates, dicts and lists
    for JSON columns, bools; they are converted to what each driver stores."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self.rows = 0

    def _sqlite_value(self, value: Any) -> Any:
        if isinstance(value, datetime):
            return stamp(value)
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, dict | list):
            return json.dumps(value, ensure_ascii=False)
        if isinstance(value, bool):
            return int(value)
        return value

    @staticmethod
    def _postgres_value(value: Any) -> Any:
        if isinstance(value, dict | list):
            return json.dumps(value, ensure_ascii=False)  # asyncpg's json codec takes text
        return value

    async def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Write `rows` (tuples in the order of `columns`) into `table`; returns how many."""
        count = 0
        chunk: list[tuple[Any, ...]] = []
        convert = self._postgres_value if self.postgres else self._sqlite_value
        for row in rows:
            chunk.append(tuple(convert(value) for value in row))
            if len(chunk) >= CHUNK:
                await self._write(table, columns, chunk)
                count += len(chunk)
                chunk = []
        if chunk:
            await self._write(table, columns, chunk)
            count += len(chunk)
        self.rows += count
        return count

    async def _write(self, table: str, columns: Sequence[str], chunk: list[tuple[Any, ...]]) -> None:
        if self.postgres:
            async with self.engine.connect() as connection:
                raw = await connection.get_raw_connection()
                driver: Any = raw.driver_connection
                await driver.copy_records_to_table(table, records=chunk, columns=list(columns))
            return
        names = ", ".join(columns)
        marks = ", ".join("?" for _ in columns)
        async with self.engine.begin() as connection:
            await connection.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", chunk)

    async def done(self) -> None:
        """Move PostgreSQL's id sequences past the ids written, and refresh the planner's statistics."""
        async with self.engine.begin() as connection:
            if self.postgres:
                for table in SEQUENCED:
                    await connection.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                        )
                    )
            await connection.exec_driver_sql("ANALYZE")


# --------------------------------------------------------------------------------------------
# Worlds
# --------------------------------------------------------------------------------------------


@dataclass
class World:
    """What was seeded: ids, and the Telegram chat id (user id) of every bound person."""

    township_id: int = 0
    staff_id: int = 0
    staff_chat: int = 0
    village_ids: list[int] = field(default_factory=list)
    village_codes: list[str] = field(default_factory=list)
    cadre_ids: list[int] = field(default_factory=list)
    cadre_chats: list[int] = field(default_factory=list)
    busy_cadre_chat: int = 0  # a cadre of many villages (/tasks lists many cases)
    busy_cadre_cases: int = 0
    farmer_chats: range = range(0)
    open_cases: int = 0
    due_tasks: int = 0
    ledger_items: int = 0
    due_schedule: int = 0
    scheduled_notice: int | None = None
    next_id: dict[str, int] = field(default_factory=dict)

    def take(self, table: str, count: int = 1) -> int:
        """The first of `count` fresh ids in `table`."""
        first = self.next_id.get(table, 1)
        self.next_id[table] = first + count
        return first


async def _people(bulk: Bulk, world: World, role: Role, names: list[str], chats: list[int], now: datetime,
                  township_id: int | None) -> list[int]:  # fmt: skip
    """Persons of `role`, each with a bound Telegram chat; returns their ids."""
    first = world.take("persons", len(names))
    ids = list(range(first, first + len(names)))
    await bulk.insert(
        "persons",
        ("id", "role", "name", "township_id", "created_at"),
        ((pid, role.value, name, township_id, now) for pid, name in zip(ids, names, strict=True)),
    )
    account = world.take("channel_accounts", len(ids))
    await bulk.insert(
        "channel_accounts",
        ("id", "person_id", "channel", "address", "bound_at"),
        (
            (account + n, pid, Channel.TELEGRAM.value, str(chat), now)
            for n, (pid, chat) in enumerate(zip(ids, chats, strict=True))
        ),
    )
    return ids


async def township(bulk: Bulk, world: World, villages: int, first_chat: int, now: datetime) -> None:
    """A township with `villages` villages (codes V0000…), and one staff member, bound."""
    world.township_id = world.take("townships")
    await bulk.insert("townships", ("id", "name"), [(world.township_id, "青山镇")])
    first = world.take("villages", villages)
    world.village_ids = list(range(first, first + villages))
    world.village_codes = [f"V{n:04d}" for n in range(villages)]
    await bulk.insert(
        "villages",
        ("id", "code", "name", "township_id"),
        (
            (vid, code, f"{n}村", world.township_id)
            for n, (vid, code) in enumerate(zip(world.village_ids, world.village_codes, strict=True))
        ),
    )
    world.staff_chat = first_chat
    (world.staff_id,) = await _people(
        bulk, world, Role.TOWNSHIP, ["王芳"], [first_chat], now, world.township_id
    )


async def cadres(bulk: Bulk, world: World, count: int, first_chat: int, now: datetime,
                 villages: Sequence[int] | None = None) -> list[int]:  # fmt: skip
    """`count` village cadres with bound chats (first_chat, first_chat + 1, …), cadre n of village
    n mod len(villages); returns their ids."""
    chats = list(range(first_chat, first_chat + count))
    ids = await _people(bulk, world, Role.CADRE, [f"干部{n}" for n in range(count)], chats, now, None)
    among = list(villages or world.village_ids)
    await bulk.insert(
        "cadre_villages",
        ("person_id", "village_id"),
        ((pid, among[n % len(among)]) for n, pid in enumerate(ids)),
    )
    world.cadre_ids += ids
    world.cadre_chats += chats
    return ids


async def busy_cadre(bulk: Bulk, world: World, chat: int, villages: Sequence[int], now: datetime) -> int:
    """One cadre of all of `villages`, with a bound chat; returns the id."""
    (pid,) = await _people(bulk, world, Role.CADRE, ["忙干部"], [chat], now, None)
    await bulk.insert("cadre_villages", ("person_id", "village_id"), ((pid, v) for v in villages))
    world.busy_cadre_chat = chat
    return pid


CLOSED_STATES = (DeclarationStatus.ENTERED, DeclarationStatus.NOT_ELIGIBLE, DeclarationStatus.CLOSED)
OPEN_STATES = (
    (DeclarationStatus.SUBMITTED, TaskStatus.OPEN, "acknowledge"),
    (DeclarationStatus.ACKNOWLEDGED, TaskStatus.ACKNOWLEDGED, "visit"),
    (DeclarationStatus.VISITED, TaskStatus.ACKNOWLEDGED, "assess"),
)
DECLARATION_COLUMNS = (
    "id", "receipt", "village_id", "declared_by", "head_name", "phone", "risk_type", "risk_types",
    "description", "household_size", "followups", "consent_version", "consent_at", "green_channel",
    "status", "created_at", "updated_at",
)  # fmt: skip
TASK_COLUMNS = (
    "id", "declaration_id", "village_id", "routed_to", "status", "created_at", "acknowledged_by",
    "acknowledged_at", "due_at", "step", "next_check_at",
)  # fmt: skip
LEDGER_COLUMNS = (
    "id", "village_id", "added_by", "what", "measure", "deadline", "responsible", "status", "created_at",
)  # fmt: skip
RISKS = ("illness", "disability", "schooling", "disaster", "accident", "housing")
DESCRIPTIONS = ("老伴住院做手术，花了三万多元", "孩子上大学学费交不上", "家里的房子漏雨，墙也裂了")


async def households(bulk: Bulk, world: World, count: int, open_cases: int, first_chat: int, now: datetime,
                     *, due_tasks: int = 0) -> None:  # fmt: skip
    """`count` households: a farmer with a bound chat, who declared once, in village n mod V.
    The first `open_cases` declarations are still being worked on (a task open or acknowledged,
    due in a few days; `due_tasks` of them are for the deadline tick to look at now, their step
    due in an hour), the others are finished (entered, not eligible or closed; their task done).
    Each has the case events a submission writes (submitted, assigned)."""
    chats = range(first_chat, first_chat + count)
    world.farmer_chats = chats
    world.open_cases, world.due_tasks = open_cases, due_tasks
    villages = world.village_ids
    people = await _people(
        bulk, world, Role.FARMER, [f"户主{n}" for n in range(count)], list(chats), now, None
    )
    first = world.take("declarations", count)
    created = now - timedelta(days=20)

    def declaration(n: int) -> tuple[Any, ...]:
        did = first + n
        status = OPEN_STATES[n % 3][0] if n < open_cases else CLOSED_STATES[n % 3]
        risk = RISKS[n % len(RISKS)]
        return (
            did, receipt_number(created.date(), did), villages[n % len(villages)], people[n], f"户主{n}",
            f"1{n:010d}", risk, [risk], DESCRIPTIONS[n % len(DESCRIPTIONS)], 4, {}, CONSENT_VERSION,
            created, False, status.value, created, created,
        )  # fmt: skip

    await bulk.insert(
        "declarations",
        DECLARATION_COLUMNS,
        (declaration(n) for n in range(count)),
    )
    task_first = world.take("tasks", count)

    def task(n: int) -> tuple[Any, ...]:
        if n < open_cases:
            _, status, step = OPEN_STATES[n % 3]
            due = now + timedelta(hours=1) if n < due_tasks else now + timedelta(days=3, minutes=n)
            check = now - timedelta(minutes=1) if n < due_tasks else due - timedelta(days=1)
        else:
            status, step, due, check = TaskStatus.DONE, None, None, None
        owner = world.cadre_ids[n % len(world.cadre_ids)] if status is TaskStatus.ACKNOWLEDGED else None
        return (
            task_first + n, first + n, villages[n % len(villages)], RoutedTo.VILLAGE.value, status.value,
            created, owner, created if owner else None, due, step, check,
        )  # fmt: skip

    await bulk.insert(
        "tasks",
        TASK_COLUMNS,
        (task(n) for n in range(count)),
    )
    event_first = world.take("case_events", 2 * count)
    await bulk.insert(
        "case_events",
        ("id", "declaration_id", "actor_id", "kind", "data", "at"),
        (
            row
            for n in range(count)
            for row in (
                (event_first + 2 * n, first + n, people[n], "submitted",
                 {"consent_version": CONSENT_VERSION, "filed_by_cadre": None}, created),
                (event_first + 2 * n + 1, first + n, None, "assigned",
                 {"task": task_first + n, "routed_to": RoutedTo.VILLAGE.value, "to": []}, created),
            )
        ),
    )  # fmt: skip


async def ledger(bulk: Bulk, world: World, items: int, due: int, now: datetime, *, later: int = 0) -> None:
    """`items` open ledger problems (问题台账), each with its three reminders in the schedule
    (ledger-remind, as domain.ledger queues them): `due` of the reminders due a minute ago, the
    rest in the coming weeks; plus `later` more pending schedule rows of the same kind, far off."""
    from domain import ledger as ledger_domain

    first = world.take("ledger_items", items)
    villages = world.village_ids
    deadline = (now + timedelta(days=30)).date()
    await bulk.insert(
        "ledger_items",
        LEDGER_COLUMNS,
        (
            (first + n, villages[n % len(villages)], world.cadre_ids[n % len(world.cadre_ids)], "危房未改造",
             "申请危房改造资金", deadline, "李四", LedgerStatus.OPEN.value, now)
            for n in range(items)
        ),
    )  # fmt: skip
    total = items * len(ledger_domain.REMIND_DAYS) + later
    schedule_first = world.take("schedule", total)

    def reminder(n: int) -> tuple[Any, ...]:
        if n < items * len(ledger_domain.REMIND_DAYS):
            item, days = first + n // 3, ledger_domain.REMIND_DAYS[n % 3]
        else:
            item, days = first + n % items, 100 + n  # a later round; never due in the benchmark
        at = now - timedelta(minutes=1) if n < due else now + timedelta(days=29 + days % 3, seconds=n)
        key = f"ledger-remind:{item}:{days}"
        return (schedule_first + n, key, ledger_domain.REMIND_KIND, {"item": item, "days": days}, "pending",
                at, now)  # fmt: skip

    await bulk.insert(
        "schedule",
        ("id", "key", "kind", "payload", "status", "due_at", "created_at"),
        (reminder(n) for n in range(total)),
    )
    world.ledger_items, world.due_schedule = items, due


# --------------------------------------------------------------------------------------------
# PostgreSQL: a fresh schema (in this process) or a fresh database (for child processes)
# --------------------------------------------------------------------------------------------


def asyncpg_url(url: str) -> str:
    from bot.settings import load

    return load(database_url=url, _env_file=None).database_url


@asynccontextmanager
async def postgres_schema(url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a new schema of the PostgreSQL database at `url`, dropped afterwards
    (as tests/support.py database() does)."""
    url = asyncpg_url(url)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(url)
    async with admin.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(url, connect_args={"server_settings": {"search_path": schema}})
    try:
        yield engine
    finally:
        await engine.dispose()
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@asynccontextmanager
async def postgres_database(url: str) -> AsyncIterator[str]:
    """The URL of a new database on the PostgreSQL server at `url`, dropped afterwards.

    Child processes (`python -m bot run`) take only DATABASE_URL, which cannot name a schema
    with asyncpg, so they get a database of their own instead of a schema."""
    url = asyncpg_url(url)
    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


# --------------------------------------------------------------------------------------------
# The service as a child process (`python -m bot run`), as it is deployed
# --------------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent


def service_environment(**settings: object) -> dict[str, str]:
    """The environment of a `python -m bot run` child: this one's, without any setting of the
    service (Settings' fields) it may carry, plus `settings` (names as in bot/settings.py)."""
    from bot.settings import Settings

    names = {name.upper() for name in Settings.model_fields}
    env = {key: value for key, value in os.environ.items() if key.upper() not in names}
    env["PYTHONPATH"] = str(REPO)
    env.update({name.upper(): str(value) for name, value in settings.items()})
    return env


class ServiceProcess:
    """`python -m bot run --require-token` in a child process, started in an empty directory
    (so no `.env` is read) with the given environment; its output goes to files there."""

    def __init__(self, name: str, env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.env = env
        self.workdir = workdir / name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self, timeout: float = 60.0) -> None:
        """Start it and wait for the line `run_forever` prints once the service is up."""
        stderr = (self.workdir / "stderr.log").open("wb")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--require-token",
            cwd=self.workdir, env=self.env, stdout=asyncio.subprocess.PIPE, stderr=stderr,
        )  # fmt: skip
        stderr.close()
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    line = await self.process.stdout.readline()
                    if not line:
                        raise RuntimeError(f"{self.name} exited before it was up:\n{self.log_tail()}")
                    if line.startswith(b"Running as"):
                        break
        except TimeoutError:
            raise RuntimeError(f"{self.name} not up within {timeout} s:\n{self.log_tail()}") from None
        # Keep reading its output, so that a full pipe never blocks it.
        self._drain = asyncio.create_task(self._read_rest())

    async def _read_rest(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        while await self.process.stdout.read(65536):
            pass

    def log_tail(self, lines: int = 30) -> str:
        path = self.workdir / "stderr.log"
        text_ = path.read_text("utf-8", errors="replace") if path.exists() else ""
        return "\n".join(text_.splitlines()[-lines:])

    def memory(self) -> dict[str, float]:
        """VmRSS and VmHWM (the peak) of the child, in MB, from /proc/<pid>/status."""
        found: dict[str, float] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) / 1024  # kB
        return found

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no releasing of claims."""
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)

    async def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (run_forever stops cleanly on it), then SIGKILL after `timeout`."""
        if self.process is None:
            return None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                self.process.send_signal(signal.SIGKILL)
                await self.process.wait()
        drain = getattr(self, "_drain", None)
        if drain is not None:
            drain.cancel()
        return self.process.returncode


async def console_session(uow: Any, clock: Any, person_id: int) -> str:
    """A console session for the person, opened as the /web link opens one; its cookie's token."""
    from domain.actor import acting
    from domain.office import logins

    made: list[str] = []

    def link(token: str) -> str:
        made.append(token)
        return token

    async with uow() as work:
        person = await work.persons.get(person_id)
        assert person is not None
        await logins.offer(work, clock, acting(person), public_url="https://bench", link=link)
        await work.commit()
    async with uow() as work:
        found = await logins.sign_in(work, clock, made[0])
        await work.commit()
    assert not isinstance(found, logins.Refused)
    return str(found[1])


@asynccontextmanager
async def bench_database(url: str | None, name: str) -> AsyncIterator[AsyncEngine]:
    """A fresh schema of the PostgreSQL at `url`, or a throwaway SQLite file `<name>.db`."""
    if url is not None:
        async with postgres_schema(url) as engine:
            yield engine
        return
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(tmp) / name}.db")
        try:
            yield engine
        finally:
            await engine.dispose()
