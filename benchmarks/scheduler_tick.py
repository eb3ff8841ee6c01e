"""One schedule tick with 1,000,000 stored reminders of which 100 are due, on SQLite.

    .venv/bin/python benchmarks/scheduler_tick.py [--stored 1000000] [--due 100]

The rows are written straight into a migrated database (the fast way to get a million rows);
the tick is the real one (domain.schedule.tick in one unit of work, committed): it finds the
due rows through ix_schedule_due, runs each item's handler (here: queue one reminder message to
a person in the outbox, as a deadline reminder does) and marks it done. The last line printed is
one JSON object: stored, due, tick_ms (the median of `--runs` ticks, each on fresh due rows),
tick_ms_max, ran (items the tick ran), index (whether the query plan uses ix_schedule_due).
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from domain import schedule
from domain.messages import Outgoing
from domain.model import Channel, Role
from domain.notification_ports import NotificationsUnitOfWork, Queued, ScheduledItem
from domain.ports import Clock
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.uow import SqlUnitOfWorkFactory

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


def stamp(moment: datetime) -> str:
    """How SQLAlchemy stores a datetime in SQLite (in UTC, see storage.models.UTCDateTime)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


async def remind(uow: NotificationsUnitOfWork, clock: Clock, item: ScheduledItem) -> list[Queued]:
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


async def main(stored: int, due: int, runs: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tick.db"
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        await upgrade(engine)
        uow = SqlUnitOfWorkFactory(session_factory(engine))
        async with uow() as work:
            person = await work.persons.add(Role.CADRE, name="张伟")
            await work.persons.bind(person.id, Channel.TELEGRAM, "2001", NOON)
            await work.commit()
        started = time.monotonic()
        fill(path, person.id, stored, due, runs)
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
        await engine.dispose()
    return {
        "stored": stored,
        "due": due,
        "tick_ms": round(statistics.median(timings), 2),
        "tick_ms_max": round(max(timings), 2),
        "runs": runs,
        "ran": ran,
        "index": "ix_schedule_due" in fill.plan,  # type: ignore[attr-defined]
        "fill_seconds": round(fill_seconds, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.stored, args.due, args.runs))))
