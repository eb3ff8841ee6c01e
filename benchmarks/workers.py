"""Two workers on one PostgreSQL database sharing a notice, through one rate-limited Bot API.

    .venv/bin/python benchmarks/workers.py [--recipients 20000] [--ceiling-recipients 20000]
        [--kill-leader] [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

Two workers run as deployed, `python -m bot run` child processes, on one fresh PostgreSQL
database (made on the server of --database-url, default TEST_DATABASE_URL or the local test
server, and dropped at the end: a child takes only DATABASE_URL, which cannot name a schema),
both talking to one local Bot API emulator run here. The data is seeded straight into the real
tables (benchmarks/seed.py): one township, its staff member, and two villages with `--recipients`
and `--ceiling-recipients` cadres, each with a bound chat. The notices are queued by the real use
case (domain.notices.dispatch in this process, on the same database: one outbox row a cadre and
the status message to the author), to the cadres of one village each, and the workers deliver
them; nothing else tells them (wake() is per process), so they find the rows when they look.

1. Telegram's limits: the emulator enforces 30 messages a second overall and 1 a second per
   chat (429 with retry_after beyond); both workers have SEND_RATE_PER_SECOND=30 (the workers
   between them must keep to it: a leader sender, chosen by a PostgreSQL advisory lock). Figures:
   each recipient's chat got the notice exactly once (sendMessage stored per chat in the
   emulator: lost, duplicated), the combined rate while sending (messages stored between the
   first and the last, over that span) against 0.95 × 30, flood_errors (429s the emulator
   answered), which worker sent how many (outbox.claimed_by of the sent rows, if recorded).
   --kill-leader: once half are delivered, the worker that is sending (the one named by the
   claims of messages being sent, outbox.claimed_by → workers.pid) gets SIGKILL; the other must
   take over and still deliver each message exactly once; `takeover_seconds` is the longest
   pause between two deliveries after the kill.
2. The sender's ceiling: both workers restarted with SEND_RATE_PER_SECOND=1000, the emulator's
   limits off, a notice to `--ceiling-recipients`: messages a second while sending (target
   ≥ 1,000 on this machine), and again exactly once.

A phase that cannot run (a worker refusing its settings, or not delivering within the timeout)
reports `error` with the worker's last log line instead of its figures. The last line printed
is one JSON object: {"limits": {...}, "ceiling": {...}, "ok": ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks import seed
from bot.clock import SystemClock
from botapi.emulator import BotAPIEmulator
from domain import notices
from domain.model import Audience
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.uow import SqlUnitOfWorkFactory

TOKEN = "123456:BENCH-TOKEN"
USERNAME = "fanghui_bench_bot"
SECRET = "bench-qr-secret-0123456789abcdef"
ID_KEY = "bench-id-key-0123456789abcdef"
ZONE = ZoneInfo("Asia/Shanghai")
CAP = 30  # Telegram's messages a second for a bot
CEILING_RATE = 1000
CEILING_TARGET = 1000
STAFF_CHAT = 40_000_000
FIRST_CHAT = 40_000_001  # the limits phase's cadres, then the ceiling phase's
DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
HOOK_SECRET = "bench-hook-secret_0123456789"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TimedEmulator(BotAPIEmulator):
    """The emulator, noting when each bot message was stored and in which chat."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stored: list[tuple[float, int]] = []
        self.per_chat: Counter[int] = Counter()
        self.watched: range = range(0)  # the chats of the phase under way
        self.reached = 0  # how many of them have a message

    def watch(self, chats: range) -> None:
        self.watched = chats
        self.reached = sum(1 for chat in chats if self.per_chat[chat])

    def _bot_message(self, state: Any, *args: Any, **kwargs: Any) -> Any:
        message = super()._bot_message(state, *args, **kwargs)
        self.stored.append((time.monotonic(), state.id))
        self.per_chat[state.id] += 1
        if self.per_chat[state.id] == 1 and state.id in self.watched:
            self.reached += 1
        return message


async def queue_notice(engine: AsyncEngine, world: seed.World, village_id: int) -> int:
    """A notice from the staff member to the cadres of one village, queued by the real use case."""
    clock = SystemClock(ZONE)
    uow = SqlUnitOfWorkFactory(session_factory(engine))
    async with uow() as work:
        draft = await work.notices.add(
            world.township_id,
            world.staff_id,
            body="请各村于本周五前完成集中排查入户走访，并上报进度。",
            audience={"kind": Audience.VILLAGES.value, "villages": [village_id]},
            media=None,
            send_at=None,
            at=clock.now(),
        )
        await work.commit()
    async with uow() as work:
        count = await notices.dispatch(work, clock, draft.id)
        await work.commit()
    return count


async def scalar(engine: AsyncEngine, sql: str) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text(sql))).scalar() or 0)


async def open_messages(engine: AsyncEngine) -> int:
    return await scalar(engine, "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending')")


async def sending_pid(engine: AsyncEngine) -> int | None:
    """The pid of the worker whose claims are being sent now (outbox.claimed_by → workers)."""
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT w.pid FROM outbox o JOIN workers w ON w.id = o.claimed_by "
                    "WHERE o.status = 'sending' GROUP BY w.pid ORDER BY COUNT(*) DESC LIMIT 1"
                )
            )
        ).first()
    return int(row[0]) if row else None


async def sent_by(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                text(
                    "SELECT COALESCE(w.pid::text, o.claimed_by, '?'), COUNT(*) FROM outbox o "
                    "LEFT JOIN workers w ON w.id = o.claimed_by WHERE o.status = 'sent' GROUP BY 1"
                )
            )
        ).all()
    return {str(who): int(count) for who, count in rows}


def last_line(worker: seed.ServiceProcess) -> str:
    lines = [line for line in worker.log_tail(60).splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


async def run_phase(
    emu: TimedEmulator,
    engine: AsyncEngine,
    world: seed.World,
    workers: list[seed.ServiceProcess],
    *,
    village_id: int,
    chats: range,
    kill_leader: bool,
    timeout: float,
) -> dict[str, object]:
    """Queue one notice to `chats`, wait until every message is out, and measure."""
    mark = len(emu.stored)
    floods_before = emu.flood_errors
    for worker in workers:
        await worker.start()
    print(f"  workers up: {[w.pid for w in workers]}", flush=True)
    queued_at = time.monotonic()
    queued = await queue_notice(engine, world, village_id)
    print(f"  notice queued to {queued} in {time.monotonic() - queued_at:.1f} s", flush=True)
    wanted = set(chats)
    emu.watch(chats)
    killed: dict[str, object] = {}
    deadline = time.monotonic() + timeout

    def delivered() -> int:  # re-checked on every emulator event: a counter, not a count
        return emu.reached

    kill_time: float | None = None
    error = None
    try:
        if kill_leader:
            await emu.wait_until(lambda: delivered() >= len(wanted) // 2, timeout, "half delivered")
            pid = await sending_pid(engine)
            victim = next((w for w in workers if w.pid == pid), None)
            killed = {"leader_found": victim is not None}
            victim = victim or workers[0]
            victim.kill()
            kill_time = time.monotonic()
            killed.update({"killed_pid": victim.pid, "killed_at_delivered": delivered()})
            print(f"  SIGKILL to {victim.pid} at {delivered()} delivered", flush=True)
        remaining = max(1.0, deadline - time.monotonic())
        await emu.wait_until(lambda: delivered() >= len(wanted), remaining, "every recipient delivered")
        while await open_messages(engine):  # the author's status message, and any repeat to come
            if time.monotonic() > deadline:
                raise AssertionError("outbox not empty")
            await asyncio.sleep(0.5)
    except AssertionError as exc:
        error = f"{exc} ({delivered()} of {len(wanted)} delivered); worker log: " + " | ".join(
            last_line(w) for w in workers
        )
    stamps = [at for at, chat in emu.stored[mark:] if chat in wanted]
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    rate = (len(stamps) - 1) / span if span > 0 else 0.0
    counts = [emu.per_chat[chat] for chat in chats]
    result: dict[str, object] = {
        "recipients": len(wanted),
        "queued": queued,
        "delivered": sum(1 for n in counts if n),
        "lost": sum(1 for n in counts if n == 0),
        "duplicated": sum(n - 1 for n in counts if n > 1),
        "rate_per_second": round(rate, 2),
        "seconds": round(span, 1),
        "flood_errors": emu.flood_errors - floods_before,
        "sent_by_pid": await sent_by(engine),
    }
    if kill_time is not None:
        after = [at for at in stamps if at >= kill_time]
        gaps = [b - a for a, b in zip([kill_time, *after], after, strict=False)]
        killed["takeover_seconds"] = round(max(gaps), 2) if gaps else None
    if kill_leader:
        result.update(killed)
    if error is not None:
        result["error"] = error
    for worker in workers:
        await worker.stop()
    return result


async def main(args: argparse.Namespace) -> dict[str, object]:
    url = args.database_url or os.environ.get("TEST_DATABASE_URL") or DEFAULT_URL
    now = datetime.now(ZONE)
    with tempfile.TemporaryDirectory(prefix="workers-", dir=args.tmp) as tmp_name:
        tmp = Path(tmp_name)
        async with (
            seed.postgres_database(url) as db_url,
            TimedEmulator(token=TOKEN, bot_username=USERNAME) as emu,
        ):
            engine = create_engine(db_url)
            try:
                await upgrade(engine)
                bulk = seed.Bulk(engine)
                world = seed.World()
                started = time.monotonic()
                await seed.township(bulk, world, 2, STAFF_CHAT, now)
                limits_village, ceiling_village = world.village_ids
                limit_ids = await seed.cadres(bulk, world, args.recipients, FIRST_CHAT, now, [limits_village])
                ceiling_first = FIRST_CHAT + len(limit_ids)
                await seed.cadres(bulk, world, args.ceiling_recipients, ceiling_first, now, [ceiling_village])
                await bulk.done()
                print(f"seeded {bulk.rows} rows in {time.monotonic() - started:.1f} s", flush=True)
                emu.allow_http_webhooks = True  # the workers' hook is on 127.0.0.1
                emu.user(STAFF_CHAT, "王芳")
                for chat in world.cadre_chats:
                    emu.user(chat, "C")

                def pair(prefix: str, rate: int) -> list[seed.ServiceProcess]:
                    """Two workers in webhook mode (one poller per token is all Telegram allows),
                    each serving on its own port; the webhook names the first one's (no updates
                    come in this benchmark; in production a load balancer is in front)."""
                    ports = [free_port(), free_port()]
                    hook = f"http://127.0.0.1:{ports[0]}/telegram/hook"
                    return [
                        seed.ServiceProcess(f"{prefix}{n + 1}", env(rate, port, hook), tmp)
                        for n, port in enumerate(ports)
                    ]

                def env(rate: int, port: int, hook: str) -> dict[str, str]:
                    return seed.service_environment(
                        telegram_bot_token=TOKEN,
                        telegram_api_base_url=emu.base_url,
                        telegram_api_file_url=emu.base_file_url,
                        database_url=db_url,
                        qr_secret=SECRET,
                        id_encryption_key=ID_KEY,
                        web_port=port,
                        webhook_url=hook,
                        webhook_secret=HOOK_SECRET,
                        log_level="WARNING",
                        send_rate_per_second=rate,
                    )

                results: dict[str, object] = {}
                print(f"limits: {args.recipients} recipients at {CAP}/s", flush=True)
                emu.enforce_limits = True
                emu.limit_per_second = CAP
                emu.limit_per_private_chat_per_second = 1
                workers = pair("worker", CAP)
                try:
                    limits = await run_phase(
                        emu, engine, world, workers,
                        village_id=limits_village,
                        chats=range(FIRST_CHAT, ceiling_first),
                        kill_leader=args.kill_leader,
                        timeout=args.recipients / CAP * 2 + 120,
                    )  # fmt: skip
                except RuntimeError as exc:  # a worker did not come up
                    limits = {"error": str(exc).splitlines()[0] + " " + str(exc).splitlines()[-1]}
                finally:
                    for worker in workers:
                        await worker.stop()
                limits["rate_per_cap"] = round(float(limits.get("rate_per_second", 0)) / CAP, 4)  # type: ignore[arg-type]
                results["limits"] = limits
                print(f"limits: {json.dumps(limits)}", flush=True)

                print(f"ceiling: {args.ceiling_recipients} recipients, SEND_RATE_PER_SECOND={CEILING_RATE}")
                emu.enforce_limits = False
                workers = pair("ceiling", CEILING_RATE)
                try:
                    ceiling = await run_phase(
                        emu, engine, world, workers,
                        village_id=ceiling_village,
                        chats=range(ceiling_first, ceiling_first + args.ceiling_recipients),
                        kill_leader=False,
                        timeout=args.ceiling_recipients / 100 + 120,
                    )  # fmt: skip
                except RuntimeError as exc:
                    ceiling = {"error": str(exc).splitlines()[0] + " " + str(exc).splitlines()[-1]}
                finally:
                    for worker in workers:
                        await worker.stop()
                results["ceiling"] = ceiling
                print(f"ceiling: {json.dumps(ceiling)}", flush=True)
            finally:
                await engine.dispose()
    limits_ok = (
        "error" not in limits
        and limits.get("lost") == 0
        and limits.get("duplicated") == 0
        and limits.get("flood_errors") == 0
        and float(limits.get("rate_per_cap", 0)) >= 0.95  # type: ignore[arg-type]
    )
    ceiling_ok = (
        "error" not in ceiling
        and ceiling.get("lost") == 0
        and ceiling.get("duplicated") == 0
        and float(ceiling.get("rate_per_second", 0)) >= CEILING_TARGET  # type: ignore[arg-type]
    )
    return {
        "benchmark": "workers",
        **results,
        "target": {"rate_per_cap": 0.95, "flood_errors": 0, "ceiling_per_second": CEILING_TARGET},
        "limits_ok": limits_ok,
        "ceiling_ok": ceiling_ok,
        "ok": limits_ok and ceiling_ok,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--ceiling-recipients", type=int, default=20_000)
    parser.add_argument("--kill-leader", action="store_true", help="SIGKILL the sending worker halfway")
    parser.add_argument("--database-url", default=None, help=f"a PostgreSQL server (default {DEFAULT_URL})")
    parser.add_argument("--tmp", default=None, help="where the temporary directory goes")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # A killed worker's requests end with the connection reset; the emulator's server logs each.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    print(json.dumps(asyncio.run(main(parser.parse_args())), ensure_ascii=False))
