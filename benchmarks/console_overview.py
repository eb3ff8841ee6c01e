"""The console's overview with 10,000 cases stored: GET /console/ and its seven charts.

    .venv/bin/python benchmarks/console_overview.py [--cases 10000] [--requests 20]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

Rows are written straight into a migrated database (benchmarks/seed.py's Bulk): one county of
five townships, 20 villages each, a cadre a village, a township's staff, the county's person;
`cases` declarations over the last 180 days with their tasks (the last fifth still being worked
on, a third of those overdue), the 签收 events of those acknowledged, and 60 days of flyer scans
of three batches a village. Then the real web app answers, signed in as the county person (every
case in scope) and as one township's staff (a fifth): the page (every figure, one transaction,
the template), and each chart's image, drawn anew and then again from the cache.

The last line printed is one JSON object: the medians and maxima in milliseconds, and the page's
CPU time in this process (the web app's share, whatever else the machine is doing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.seed import Bulk, bench_database, console_session
from bot import console, templating
from bot.console import ConsoleDeps, charts
from bot.console.overview import CHARTS
from bot.crypto import FernetProtector
from bot.deadlines import PolicyRules
from bot.web import make_app
from domain.cases import receipt_number
from domain.intake import CONSENT_VERSION
from domain.model import DeclarationStatus, Role, RoutedTo, TaskStatus
from domain.policy import load_policy
from storage.db import session_factory
from storage.migrate import upgrade
from storage.outbox_store import OutboxStore
from storage.uow import SqlUnitOfWorkFactory

NOW = datetime(2026, 12, 9, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
TOWNSHIPS, VILLAGES = 5, 20
S = DeclarationStatus
OPEN = (S.SUBMITTED, S.ACKNOWLEDGED, S.VISITED, S.PROPOSED, S.PUBLICIZING, S.TOWNSHIP_REVIEW, S.APPROVED)
CLOSED = (S.ENTERED, S.NOT_ELIGIBLE, S.CLOSED, S.WITHDRAWN)
RISKS = ("illness", "disability", "schooling", "disaster", "accident", "housing", "income_drop")
STEP = {S.SUBMITTED: "acknowledge", S.ACKNOWLEDGED: "visit", S.VISITED: "feedback"}
SECRET = b"overview-benchmark-secret-012345"


class FixedClock:
    def now(self) -> datetime:
        return NOW


async def seed(engine: AsyncEngine, cases: int) -> dict[str, int]:
    bulk = Bulk(engine)
    await bulk.insert(
        "townships", ("id", "name", "county"), ((t + 1, f"镇{t}", "青山县") for t in range(TOWNSHIPS))
    )
    villages = [
        (t * VILLAGES + v + 1, f"V{t}{v:02d}", t + 1) for t in range(TOWNSHIPS) for v in range(VILLAGES)
    ]
    await bulk.insert(
        "villages", ("id", "code", "name", "township_id"), ((i, c, f"{c}村", t) for i, c, t in villages)
    )
    people: list[tuple[Any, ...]] = [
        (v, Role.CADRE.value, f"干部{v}", None, None, NOW) for v, _, _ in villages
    ]
    staff = len(people) + 1
    people += [(staff + t, Role.TOWNSHIP.value, f"镇干部{t}", t + 1, None, NOW) for t in range(TOWNSHIPS)]
    county = staff + TOWNSHIPS
    people.append((county, Role.COUNTY.value, "县干部", None, "青山县", NOW))
    farmers = county + 1
    people += [(farmers + n, Role.FARMER.value, None, None, None, NOW) for n in range(cases)]
    await bulk.insert("persons", ("id", "role", "name", "township_id", "county", "created_at"), people)
    await bulk.insert("cadre_villages", ("person_id", "village_id"), ((v, v) for v, _, _ in villages))
    first = NOW - timedelta(days=180)
    every = timedelta(days=180) / cases

    def status(n: int) -> S:
        return OPEN[n % len(OPEN)] if n >= cases * 4 // 5 else CLOSED[n % len(CLOSED)]

    def declaration(n: int) -> tuple[Any, ...]:
        created = first + every * n
        risks = list(dict.fromkeys([RISKS[n % 7], RISKS[(n // 7) % 7]] if n % 3 == 0 else [RISKS[n % 7]]))
        return (
            n + 1, receipt_number(created.date(), n + 1), villages[n % len(villages)][0], farmers + n,
            "王大山", f"+86139{n:08d}", risks[0], risks, "老伴住院", 4, {}, CONSENT_VERSION, created, False,
            status(n).value, created, created,
        )  # fmt: skip

    await bulk.insert(
        "declarations",
        ("id", "receipt", "village_id", "declared_by", "head_name", "phone", "risk_type", "risk_types",
         "description", "household_size", "followups", "consent_version", "consent_at", "green_channel",
         "status", "created_at", "updated_at"),
        (declaration(n) for n in range(cases)),
    )  # fmt: skip

    def task(n: int) -> tuple[Any, ...]:
        village = villages[n % len(villages)][0]
        s = status(n)
        if s.open:
            state = TaskStatus.OPEN if s is S.SUBMITTED else TaskStatus.ACKNOWLEDGED
            due: datetime | None = NOW + timedelta(days=n % 9 - 3, minutes=n % 600)  # a third overdue
        else:
            state, due = TaskStatus.DONE, None
        return (
            n + 1, n + 1, village, RoutedTo.VILLAGE.value, state.value, first + every * n, due,
            STEP.get(s, "whole") if due else None,
        )  # fmt: skip

    await bulk.insert(
        "tasks",
        ("id", "declaration_id", "village_id", "routed_to", "status", "created_at", "due_at", "step"),
        (task(n) for n in range(cases)),
    )
    acknowledged = [n for n in range(cases) if status(n) is not S.SUBMITTED and status(n) is not S.WITHDRAWN]
    await bulk.insert(
        "case_events",
        ("id", "declaration_id", "actor_id", "kind", "data", "at"),
        (
            (i + 1, n + 1, villages[n % len(villages)][0], "acknowledge", {}, first + every * n
             + timedelta(hours=n % 60))
            for i, n in enumerate(acknowledged)
        ),
    )  # fmt: skip
    days = [NOW.date() - timedelta(days=d) for d in range(60)]
    await bulk.insert(
        "qr_scans",
        ("id", "village_code", "batch", "channel", "day", "count"),
        (
            (i + 1, code, batch, channel, day, 1 + (i % 5))
            for i, (code, batch, channel, day) in enumerate(
                (code, batch, channel, day)
                for _, code, _ in villages
                for batch in ("", "2026-09", "2026-11")
                for channel in ("web", "telegram")
                for day in days
            )
        ),
    )
    await bulk.done()
    return {"county": county, "staff": staff}


CPU: list[float] = []  # this process's CPU time of each request (the web app runs in it)


async def timed(client: TestClient[Any, Any], path: str, session: str) -> float:
    """A request's time from asking to the last byte, in ms (its CPU time goes to CPU)."""
    began, cpu = time.perf_counter(), time.process_time()
    response = await client.get(path, headers={"Cookie": f"fh_console={session}"})
    await response.read()
    assert response.status == 200, (path, response.status)
    CPU.append((time.process_time() - cpu) * 1000)
    return (time.perf_counter() - began) * 1000


async def main(cases: int, requests: int, url: str | None) -> dict[str, Any]:
    async with bench_database(url, "overview") as engine:
        await upgrade(engine)
        people = await seed(engine, cases)
        uow = SqlUnitOfWorkFactory(session_factory(engine))
        deps = ConsoleDeps(
            uow=uow, clock=FixedClock(), rules=PolicyRules(load_policy("anhui")),
            protector=FernetProtector(b"id:bench"), secret=SECRET,
        )  # fmt: skip
        app = make_app(OutboxStore(session_factory(engine)))
        templating.setup(app)
        console.mount(app, deps)
        result: dict[str, Any] = {"cases": cases, "database": "postgresql" if url else "sqlite"}
        async with TestClient(TestServer(app)) as client:
            for who in ("county", "staff"):
                session = await console_session(uow, FixedClock(), people[who])
                await timed(client, "/console/", session)  # warm: templates, fonts
                CPU.clear()
                pages = [await timed(client, "/console/", session) for _ in range(requests)]
                page_cpu = statistics.median(CPU)
                drawn, cached = [], []
                for _ in range(max(requests // 4, 1)):
                    charts._draw.cache_clear()
                    drawn.append(
                        sum([await timed(client, f"/console/charts/{n}.svg", session) for n in CHARTS])
                    )
                    cached.append(
                        sum([await timed(client, f"/console/charts/{n}.svg", session) for n in CHARTS])
                    )
                result[who] = {
                    "page_p50_ms": round(statistics.median(pages), 1),
                    "page_max_ms": round(max(pages), 1),
                    "page_cpu_ms": round(page_cpu, 1),
                    "seven_charts_drawn_ms": round(statistics.median(drawn), 1),
                    "seven_charts_cached_ms": round(statistics.median(cached), 1),
                }
        return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.cases, args.requests, args.database_url))))
