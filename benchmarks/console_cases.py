"""The console's list of cases with 100,000 cases stored: 200 requests of GET /console/cases.

    .venv/bin/python benchmarks/console_cases.py [--cases 100000] [--requests 200]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

The rows are written straight into a migrated database (benchmarks/seed.py's Bulk: one
executemany a chunk on SQLite, COPY on PostgreSQL in a fresh schema dropped at the end): two
counties of five townships each, 20 villages a township, two cadres a village, a township's
staff, a county person; 100,000 declarations over two years with their tasks (a fifth still
being worked on, some overdue; every tenth filed by a cadre (代报); some declarants without a
chat, as the web form's; declared on the web form: those, and a third of the 代报), spread evenly
over the villages. Then the real web app (the console mounted on bot.web's app, aiohttp's test
server on a local port) answers signed-in requests:
township staff (10,000 cases in scope), the county (50,000) and a cadre (500), each with the
usual filter combinations in turn (none, a state, overdue, a risk type, a name, a receipt, the
four sorts, the channel, 代报, a month, a deep page, a village, combinations).

The last line printed is one JSON object: cases, requests, p50_ms, p95_ms, max_ms (the time of
each whole request: session check, query, page rendering), target_ms (300, at p95), ok,
database, seed_seconds.
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
from bot.console import ConsoleDeps
from bot.crypto import FernetProtector
from bot.deadlines import PolicyRules
from bot.web import make_app
from domain.cases import receipt_number
from domain.intake import CONSENT_VERSION
from domain.model import Channel, DeclarationStatus, Role, RoutedTo, TaskStatus
from domain.policy import load_policy
from storage.db import session_factory
from storage.migrate import upgrade
from storage.outbox_store import OutboxStore
from storage.uow import SqlUnitOfWorkFactory

TARGET_MS = 300
NOW = datetime(2026, 12, 9, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
TOWNSHIPS, VILLAGES = 10, 20  # villages a township
S = DeclarationStatus
OPEN = (S.SUBMITTED, S.ACKNOWLEDGED, S.VISITED, S.PROPOSED, S.PUBLICIZING, S.TOWNSHIP_REVIEW, S.APPROVED)
CLOSED = (S.ENTERED, S.NOT_ELIGIBLE, S.CLOSED)
RISKS = ("illness", "disability", "schooling", "disaster", "accident", "housing", "income_drop")
SURNAMES = "王李张刘陈杨赵黄周吴"
GIVEN = ("大山", "秀英", "建国", "桂兰", "志强", "海燕", "德明", "春花", "国庆", "玉梅", "长生", "小红")
SECRET = b"console-benchmark-secret-0123456"


class FixedClock:
    def now(self) -> datetime:
        return NOW


def filed_by_cadre(n: int) -> bool:
    """Whether the n-th declaration is 代报: one in ten, in every village, by each of its cadres."""
    return (n // (TOWNSHIPS * VILLAGES)) % 10 == 0


async def seed(engine: AsyncEngine, cases: int) -> dict[str, Any]:
    """The counties, townships, villages, people and `cases` declarations with their tasks."""
    bulk = Bulk(engine)
    await bulk.insert(
        "townships",
        ("id", "name", "county"),
        ((t + 1, f"镇{t}", "青山县" if t < TOWNSHIPS // 2 else "白水县") for t in range(TOWNSHIPS)),
    )
    villages = [
        (t * VILLAGES + v + 1, f"V{t:02d}{v:02d}", t + 1) for t in range(TOWNSHIPS) for v in range(VILLAGES)
    ]
    await bulk.insert(
        "villages",
        ("id", "code", "name", "township_id"),
        ((i, code, f"{code}村", t) for i, code, t in villages),
    )
    people: list[tuple[Any, ...]] = []
    cadre_of: dict[int, list[int]] = {}
    pid = 0
    for village_id, _, _ in villages:
        for _ in range(2):
            pid += 1
            people.append((pid, Role.CADRE.value, f"干部{pid}", None, None, NOW))
            cadre_of.setdefault(village_id, []).append(pid)
    staff = {}
    for t in range(TOWNSHIPS):
        pid += 1
        people.append((pid, Role.TOWNSHIP.value, f"镇干部{t}", t + 1, None, NOW))
        staff[t + 1] = pid
    pid += 1
    county = pid
    people.append((pid, Role.COUNTY.value, "县干部", None, "青山县", NOW))
    officials = pid
    farmers = officials + 1
    # A household's person for every declaration not filed by a cadre; 85% have a chat.
    people += [
        (farmers + n, Role.FARMER.value, None, None, None, NOW) for n in range(cases) if not filed_by_cadre(n)
    ]
    await bulk.insert("persons", ("id", "role", "name", "township_id", "county", "created_at"), people)
    await bulk.insert(
        "cadre_villages",
        ("person_id", "village_id"),
        ((p, v) for v, ids in cadre_of.items() for p in ids),
    )
    accounts = [p for p in range(1, officials + 1)] + [
        farmers + n for n in range(cases) if not filed_by_cadre(n) and n % 7
    ]
    await bulk.insert(
        "channel_accounts",
        ("id", "person_id", "channel", "address", "bound_at"),
        ((n + 1, p, Channel.TELEGRAM.value, str(100000 + p), NOW) for n, p in enumerate(accounts)),
    )
    first_day = NOW - timedelta(days=730)
    step = timedelta(days=730) / cases

    def declaration(n: int) -> tuple[Any, ...]:
        created = first_day + step * n
        village = villages[n % len(villages)][0]
        recent = n >= cases * 8 // 10
        status = OPEN[n % len(OPEN)] if recent else CLOSED[n % len(CLOSED)]
        risks = [RISKS[n % len(RISKS)]] + ([RISKS[(n // 7) % len(RISKS)]] if n % 3 == 0 else [])
        risks = list(dict.fromkeys(risks))
        daibao = filed_by_cadre(n)
        cadre = cadre_of[village][(n // (10 * len(villages))) % 2]
        # The web form: the households without a chat, and a third of the cadres' 代报.
        via = "web" if (daibao and (n // 10) % 3 == 0) or (not daibao and n % 7 == 0) else "chat"

        return (
            n + 1, receipt_number(created.date(), n + 1), village, cadre if daibao else farmers + n,
            SURNAMES[n % 10] + GIVEN[(n // 10) % len(GIVEN)], f"+86139{n:08d}", risks[0], risks,
            "老伴住院做手术，花了三万多元", 4, {}, CONSENT_VERSION, created, False, status.value, created,
            created, cadre if daibao else None, via,
        )  # fmt: skip

    await bulk.insert(
        "declarations",
        (
            "id",
            "receipt",
            "village_id",
            "declared_by",
            "head_name",
            "phone",
            "risk_type",
            "risk_types",
            "description",
            "household_size",
            "followups",
            "consent_version",
            "consent_at",
            "green_channel",
            "status",
            "created_at",
            "updated_at",
            "filed_by_cadre",
            "via",
        ),
        (declaration(n) for n in range(cases)),
    )

    def task(n: int) -> tuple[Any, ...]:
        village = villages[n % len(villages)][0]
        created = first_day + step * n
        if n >= cases * 8 // 10:
            status = OPEN[n % len(OPEN)]
            state = TaskStatus.OPEN if status is S.SUBMITTED else TaskStatus.ACKNOWLEDGED
            due = NOW + timedelta(days=n % 9 - 3, minutes=n % 600)  # a third already overdue
        else:
            state, due = TaskStatus.DONE, None
        owner = cadre_of[village][n % 2] if state is TaskStatus.ACKNOWLEDGED else None
        return (
            n + 1, n + 1, village, RoutedTo.VILLAGE.value, state.value, created, owner,
            created if owner else None, due, "visit" if due else None, due,
        )  # fmt: skip

    await bulk.insert(
        "tasks",
        (
            "id",
            "declaration_id",
            "village_id",
            "routed_to",
            "status",
            "created_at",
            "acknowledged_by",
            "acknowledged_at",
            "due_at",
            "step",
            "next_check_at",
        ),
        (task(n) for n in range(cases)),
    )
    await bulk.done()
    staff_of_first = staff[1]
    some = cases - 123
    return {
        "staff": staff_of_first,
        "county": county,
        "cadre": cadre_of[1][0],
        "receipt": receipt_number((first_day + step * some).date(), some + 1),
        "village": villages[0][1],
    }


QUERIES = (
    "",
    "?state=acknowledged",
    "?overdue=1",
    "?risk=illness",
    "?q=王大山",
    "?q={receipt}",
    "?q={prefix}",
    "?sort=due&way=asc",
    "?sort=village&way=asc",
    "?sort=state&way=desc",
    "?came_by=web",
    "?filed=daibao",
    "?since=2026-06-01&until=2026-06-30",
    "?page=40",
    "?village={village}&sort=due&way=asc",
    "?state=submitted&risk=disaster&sort=due&way=asc",
    "?overdue=1&sort=due&way=asc&came_by=chat",
    "?q=张&sort=date&way=asc",
)


async def main(cases: int, requests: int, url: str | None) -> dict[str, Any]:
    async with bench_database(url, "cases") as engine:
        await upgrade(engine)
        began = time.monotonic()
        seeded = await seed(engine, cases)
        seed_seconds = time.monotonic() - began
        uow = SqlUnitOfWorkFactory(session_factory(engine))
        deps = ConsoleDeps(
            uow=uow, clock=FixedClock(), rules=PolicyRules(load_policy("anhui")),
            protector=FernetProtector(b"id:bench"), secret=SECRET,
        )  # fmt: skip
        app = make_app(OutboxStore(session_factory(engine)))
        templating.setup(app)
        console.mount(app, deps)
        people = ("staff", "county", "cadre")
        sessions = [await console_session(uow, FixedClock(), seeded[who]) for who in people]
        values = {
            "receipt": seeded["receipt"],
            "prefix": seeded["receipt"][:10],
            "village": seeded["village"],
        }
        paths = ["/console/cases" + q.format(**values) for q in QUERIES]
        timings: list[float] = []
        async with TestClient(TestServer(app)) as client:
            for n in range(len(paths) + requests):
                session = sessions[n % len(sessions)]
                path = paths[n % len(paths)]
                began_request = time.perf_counter()
                response = await client.get(path, headers={"Cookie": f"fh_console={session}"})
                await response.read()
                elapsed = (time.perf_counter() - began_request) * 1000
                assert response.status == 200, (path, response.status)
                if n >= len(paths):  # the first round only warms up
                    timings.append(elapsed)
    timings.sort()
    p95 = timings[max(0, int(len(timings) * 0.95) - 1)]
    return {
        "cases": cases,
        "requests": len(timings),
        "p50_ms": round(statistics.median(timings), 1),
        "p95_ms": round(p95, 1),
        "max_ms": round(timings[-1], 1),
        "target_ms": TARGET_MS,
        "ok": p95 < TARGET_MS,
        "database": "postgresql" if url else "sqlite",
        "seed_seconds": round(seed_seconds, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.cases, args.requests, args.database_url)), ensure_ascii=False))
