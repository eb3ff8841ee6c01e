"""One schedule tick with 1,000,000 stored reminders of which 100 are due, on SQLite or PostgreSQL.

    .venv/bin/python benchmarks/scheduler_tick.py [--stored 1000000] [--due 100] [--runs 5]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

The rows are written straight into a migrated database (the fast way to get a million rows:
one executemany on SQLite; on PostgreSQL one INSERT ... SELECT over generate_series, in a fresh
schema that is dropped at the end, as tests/support.py database() does); the tick is the real
one (domain.schedule.tick in one unit of work, committed): it finds the due rows through
ix_schedule_due, runs each item's handler (here: queue one reminder message to a person in the
outbox, as a deadline reminder does) and marks it done. The last line printed is
one JSON object: stored, due, tick_ms (the median of `--runs` ticks, each on fresh due rows),
tick_ms_max, ran (items the tick ran), index (whether the query plan of the tick's query, the
one storage ScheduleRepository.due() sends, uses ix_schedule_due: SQLite's EXPLAIN QUERY PLAN, or
PostgreSQL's EXPLAIN after ANALYZE), plan (that plan, abridged), database, fill_seconds,
target_ms (20) and ok (tick_ms below it, and the index used).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.seed import postgres_schema
from domain import schedule
from domain.messages import Outgoing, Queued
from domain.model import Channel, Role, ScheduledItem
from domain.ports import Clock, UnitOfWork
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.tables import ScheduledRow
from storage.uow import SqlUnitOfWorkFactory

TARGET_MS = 20
NOON = datetime(2026, 11, 23, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


def stamp(moment: datetime) -> str:
    """How SQLAlchemy stores a datetime in SQLite (in UTC, see storage.tables.UTCDateTime)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


async def remind(uow: UnitOfWork, clock: Clock, item: ScheduledItem) -> list[Queued]:
    """A deadline reminder: one message to one person, keyed by the schedule item."""
    message = Outgoing("notice.reminder", {"township": "青山镇", "text": "集中排查入户走访"})
    return [Queued(int(item.payload["person"]), message, f"reminder:{item.key}")]


def fill(path: Path, person_id: int, stored: int, due: int, runs: int) -> None:
    """`stored` pending rows: `due` due by each run's clock (one run a minute apart), the rest later."""
    connection = sqlite3.connect(path)
    rows = []
    for n in range(stored):
        if n < due * runs:
            at = NOON + timedelta(minutes=n // due) - timedelta(seconds=1)
        else:
            at = NOON + timedelta(days=1, seconds=n)
        rows.append(
            (
                f"bench:{n}",
                "bench-reminder",
                json.dumps({"person": person_id}),
                "pending",
                stamp(at),
                stamp(NOON),
            )
        )
    connection.executemany(
        "INSERT INTO schedule (key, kind, payload, status, due_at, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    connection.commit()
    connection.execute("ANALYZE")
    plan = connection.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM schedule WHERE status = 'pending' AND due_at <= ? "
        "ORDER BY due_at LIMIT 200",
        (stamp(NOON),),
    ).fetchall()
    connection.close()
    fill.plan = " ".join(str(step[-1]) for step in plan)  # type: ignore[attr-defined]


async def fill_postgres(engine: AsyncEngine, person_id: int, stored: int, due: int, runs: int) -> str:
    """The same rows as fill(), made by the server (INSERT ... SELECT generate_series); returns
    EXPLAIN of the tick's own query (ScheduleRepository.due) after ANALYZE."""
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO schedule (key, kind, payload, status, due_at, created_at) "
                "SELECT 'bench:' || n, 'bench-reminder', "
                "json_build_object('person', CAST(:person AS bigint)), 'pending', "
                "CASE WHEN n < CAST(:first AS int) "
                "THEN CAST(:noon AS timestamptz) + (n / CAST(:due AS int)) * interval '1 minute' "
                "- interval '1 second' "
                "ELSE CAST(:noon AS timestamptz) + interval '1 day' + n * interval '1 second' END, "
                "CAST(:noon AS timestamptz) "
                "FROM generate_series(0, CAST(:stored AS int) - 1) AS n"
            ),
            {"person": person_id, "first": due * runs, "due": due, "noon": NOON, "stored": stored},
        )
    async with engine.begin() as connection:
        await connection.execute(text("ANALYZE schedule"))
        query = (
            select(ScheduledRow)
            .where(ScheduledRow.status == "pending", ScheduledRow.due_at <= NOON)
            .order_by(ScheduledRow.due_at)
            .limit(200)
            .with_for_update(skip_locked=True)
        )
        sql = str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
        plan = (await connection.execute(text("EXPLAIN " + sql))).scalars().all()
    return " | ".join(line.strip() for line in plan)


@asynccontextmanager
async def database(url: str | None) -> AsyncIterator[tuple[AsyncEngine, Path | None]]:
    """SQLite in a temporary directory, or a fresh schema of the PostgreSQL database at `url`."""
    if url is not None:
        async with postgres_schema(url) as engine:
            yield engine, None
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tick.db"
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        try:
            yield engine, path
        finally:
            await engine.dispose()


async def main(stored: int, due: int, runs: int, url: str | None = None) -> dict[str, object]:
    async with database(url) as (engine, path):
        await upgrade(engine)
        uow = SqlUnitOfWorkFactory(session_factory(engine))
        async with uow() as work:
            person = await work.persons.add(Role.CADRE, name="张伟")
            await work.persons.bind(person.id, Channel.TELEGRAM, "2001", NOON)
            await work.commit()
        started = time.monotonic()
        if path is not None:
            fill(path, person.id, stored, due, runs)
            plan: str = fill.plan  # type: ignore[attr-defined]
        else:
            plan = await fill_postgres(engine, person.id, stored, due, runs)
        fill_seconds = time.monotonic() - started
        handlers = {"bench-reminder": schedule.Handler(remind, quiet=True)}
        quiet = schedule.QuietHours()
        async with uow() as work:  # open the pooled connection before timing
            await work.outbox.count_pending()
        timings: list[float] = []
        ran = 0
        for run in range(runs):
            clock = FixedClock(NOON + timedelta(minutes=run))
            began = time.perf_counter()
            async with uow() as work:
                result = await schedule.tick(work, clock, handlers, quiet)  # type: ignore[arg-type]
                await work.commit()
            timings.append((time.perf_counter() - began) * 1000)
            ran += result.done
    return {
        "stored": stored,
        "due": due,
        "tick_ms": round(statistics.median(timings), 2),
        "tick_ms_max": round(max(timings), 2),
        "target_ms": TARGET_MS,
        "ok": statistics.median(timings) < TARGET_MS and "ix_schedule_due" in plan,
        "runs": runs,
        "ran": ran,
        "index": "ix_schedule_due" in plan,
        "plan": plan[:300],
        "database": "postgresql" if path is None else "sqlite",
        "fill_seconds": round(fill_seconds, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--database-url", default=None, help="a PostgreSQL database (a fresh schema is used); default SQLite"
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.stored, args.due, args.runs, args.database_url))))
