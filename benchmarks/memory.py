"""The memory of a running worker with 100,000 households and 10,000 open cases stored.

    .venv/bin/python benchmarks/memory.py [--households 100000] [--open-cases 10000]
        [--villages 100] [--busy-villages 20] [--declarations 3] [--database-url URL]

A migrated database (SQLite in a temporary directory, or with --database-url a fresh database
on that PostgreSQL server, dropped at the end) is seeded straight into the real tables
(benchmarks/seed.py): one township with `--villages` villages and one bound cadre each, one
cadre of the first `--busy-villages` villages, and `--households` farmers with a bound chat
who each declared once, the first `--open-cases` of those cases still open (a task open or
acknowledged; 100 of them due for the deadline tick now), the others finished, with their case
events; 1,000 open ledger problems with their reminders in the schedule (50 due now) and
100,000 more pending schedule rows.

Then the service runs as deployed, `python -m bot run`, in a child process against the local
Bot API emulator run here (QUIET_HOURS set to an hour six hours away, so the reminders go at any
time of day), and real traffic goes through it: the schedule tick (at start) and the deadline
tick (5 s after) over that data, their messages delivered; `--declarations` farmers declaring
at once in chat (/start with a village's QR payload … 确认提交, the receipt), their cases sent
to the cadres; /tasks of the busy cadre (who has about open_cases × busy/villages cases). Then
VmRSS and VmHWM (the peak since start) of the child are read from /proc/<pid>/status.

The last line printed is one JSON object: households, open_cases, rss_mb (after the traffic),
peak_mb (VmHWM), target_mb (200), ok (peak_mb below it), idle_rss_mb (before the traffic),
database, seed_seconds, messages (sendMessage calls of the service during the run),
declarations, busy_cadre_cases (the open cases /tasks was asked about).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text
from sqlalchemy.engine import make_url

from benchmarks import seed
from botapi.emulator import BotAPIEmulator, EmuMessage
from qr.payload import sign_village
from storage.db import create_engine
from storage.migrate import upgrade
from tests.e2e.conftest import Chat

TOKEN = "123456:BENCH-TOKEN"
USERNAME = "fanghui_bench_bot"
SECRET = "bench-qr-secret-0123456789abcdef"
ID_KEY = "bench-id-key-0123456789abcdef"
TARGET_MB = 200
ZONE = ZoneInfo("Asia/Shanghai")  # the service's clock (TIMEZONE's default)
STAFF_CHAT = 30_000_000
CADRE_CHAT = 30_000_100
BUSY_CHAT = 30_099_999
FARMER_CHAT = 31_000_000
NEW_FARMER_CHAT = 39_000_000
DUE_TASKS = 100
LEDGER_ITEMS = 1000
LEDGER_DUE = 50
LATER_SCHEDULE = 100_000
DESCRIPTION = "老伴住院做手术，花了三万多元"
NAMES = ("李大山", "王小明", "张建国", "刘秀英", "陈桂兰", "杨志强", "赵海燕", "黄文华", "周春生", "吴玉梅")


@asynccontextmanager
async def database(url: str | None, tmp: Path) -> AsyncIterator[str]:
    if url is None:
        yield f"sqlite+aiosqlite:///{tmp / 'memory.db'}"
        return
    async with seed.postgres_database(url) as fresh:
        yield fresh


def quiet_hours_away(now: datetime) -> str:
    """An hour of quiet six hours from now: never in the way of this run's reminders."""
    start = now + timedelta(hours=6)
    end = start + timedelta(hours=1)
    return f"{start:%H:%M}-{end:%H:%M}"


async def fill(url: str, args: argparse.Namespace, now: datetime) -> seed.World:
    engine = create_engine(url)
    try:
        await upgrade(engine)
        bulk = seed.Bulk(engine)
        world = seed.World()
        await seed.township(bulk, world, args.villages, STAFF_CHAT, now)
        await seed.cadres(bulk, world, args.villages, CADRE_CHAT, now)
        await seed.busy_cadre(bulk, world, BUSY_CHAT, world.village_ids[: args.busy_villages], now)
        await seed.households(
            bulk, world, args.households, args.open_cases, FARMER_CHAT, now, due_tasks=DUE_TASKS
        )
        await seed.ledger(bulk, world, LEDGER_ITEMS, LEDGER_DUE, now, later=LATER_SCHEDULE)
        await bulk.done()
    finally:
        await engine.dispose()
    return world


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 120.0) -> None:
    """Poll the database (the child's state is only seen there) until `check()` is true."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached within {timeout} s")
        await asyncio.sleep(0.25)


async def said(farmer: Chat, *phrases: str, timeout: float = 30.0) -> EmuMessage:
    """The next bot message in the chat with every phrase, passing over others (an edited
    question read as a new message, a toast's redraw)."""
    deadline = time.monotonic() + timeout
    while True:
        message = await farmer.emu.next_message(farmer.user.id, timeout=max(0.1, deadline - time.monotonic()))
        if all(phrase in (message.text or "") for phrase in phrases):
            return message


async def declaration(farmer: Chat, payload: str, village: str, name: str, phone: str) -> None:
    """One household declares in chat, the plainest way (tests/e2e/conftest.py declare()), and
    submits; the list of risks is pressed on once its redraw with the choice is in."""
    await farmer.emu.send_command(farmer.user, "start", payload)
    await farmer.press(await said(farmer, village, "12317", "知情同意"), "同意，开始填写")
    await said(farmer, "请输入户主姓名", village)
    await farmer.send(name)
    await farmer.press(await said(farmer, name, "本人"), "我是户主本人")
    await said(farmer, "联系电话")
    await farmer.send(phone)
    await farmer.press(await said(farmer, "身份证号"), "不填身份证号，跳过")
    await farmer.press(await said(farmer, "几口人"), "4")
    choose = await said(farmer, "哪些困难")
    await farmer.press(choose, "因病")
    await farmer.emu.wait_until(lambda: choose.button("选好了，下一步") is not None, 30, "the risk ticked")
    await farmer.press(choose, "选好了，下一步")
    await said(farmer, "多少钱")
    await farmer.send("3万")
    await said(farmer, "具体情况")
    await farmer.send(DESCRIPTION)
    await farmer.press(await said(farmer, "照片"), "没有照片，跳过")
    await farmer.press(await said(farmer, "请核对", name, village), "确认提交")
    await said(farmer, "回执编号")


async def main(args: argparse.Namespace) -> dict[str, object]:
    now = datetime.now(ZONE)
    with tempfile.TemporaryDirectory(prefix="memory-", dir=args.tmp) as tmp_name:
        tmp = Path(tmp_name)
        async with (
            database(args.database_url, tmp) as url,
            BotAPIEmulator(token=TOKEN, bot_username=USERNAME) as emu,
        ):
            # The service edits an answered question into the next one: read that as the next
            # message (as tests/e2e/conftest.py does).
            emu.read_edits_as_new = True
            started = time.monotonic()
            world = await fill(url, args, now)
            seed_seconds = time.monotonic() - started
            print(f"seeded in {seed_seconds:.1f} s", flush=True)
            emu.user(world.staff_chat, "王芳")
            for n, chat in enumerate(world.cadre_chats):
                emu.user(chat, f"C{n}")
            busy = emu.user(world.busy_cadre_chat, "忙干部", language_code="zh-hans")
            env = seed.service_environment(
                telegram_bot_token=TOKEN,
                telegram_api_base_url=emu.base_url,
                telegram_api_file_url=emu.base_file_url,
                database_url=url,
                qr_secret=SECRET,
                id_encryption_key=ID_KEY,
                web_port=0,
                log_level="WARNING",
                chat_burst=10,
                chat_rate_per_second=10,  # the e2e tests' chat pace: farmers answer fast here
                quiet_hours=quiet_hours_away(now),
            )
            child = seed.ServiceProcess("worker", env, tmp)
            watch = create_engine(url)
            try:
                await child.start()
                idle = child.memory()
                print(f"service up (pid {child.pid}): {idle['VmRSS']:.1f} MB", flush=True)

                async def scalar(sql: str) -> int:
                    async with watch.connect() as connection:
                        return int((await connection.execute(text(sql))).scalar() or 0)

                async def ticks_done() -> bool:
                    # The due tasks are the first ones; the tick marks each reminded.
                    due_tasks = await scalar(
                        "SELECT COUNT(*) FROM tasks WHERE reminded_at IS NULL"
                        f" AND id < (SELECT MIN(id) FROM tasks) + {DUE_TASKS}"
                    )
                    due_items = await scalar(
                        "SELECT COUNT(*) FROM schedule WHERE status = 'done' AND kind = 'ledger-remind'"
                    )
                    return due_tasks == 0 and due_items >= LEDGER_DUE

                async def outbox_empty() -> bool:
                    open_ = await scalar("SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending')")
                    return open_ == 0

                await until(ticks_done, "the deadline and schedule ticks")
                await until(outbox_empty, "their messages delivered")
                after_ticks = len(emu.calls_of("sendMessage"))
                print(f"ticks done, {after_ticks} messages", flush=True)
                # Farmers declare at once, in a village the busy cadre works in.
                village_code, village_name = world.village_codes[0], "0村"
                payload = sign_village(SECRET.encode(), village_code, now.date() + timedelta(days=365))
                farmers = [
                    Chat(emu, emu.user(NEW_FARMER_CHAT + n, f"F{n}", language_code="zh-hans"))
                    for n in range(args.declarations)
                ]

                async def one(n: int, farmer: Chat) -> None:
                    await declaration(farmer, payload, village_name, NAMES[n % len(NAMES)], f"138{n:08d}")

                await asyncio.gather(*(one(n, farmer) for n, farmer in enumerate(farmers)))
                await until(outbox_empty, "the new cases sent to the cadres")
                # /tasks of the busy cadre: skip what reached the chat before, then the list.
                cadre = Chat(emu, busy)
                for _ in emu.messages(busy.id):
                    await emu.next_message(busy.id)
                await cadre.send("/tasks")
                listing = await cadre.expect(timeout=60)
                busy_cases = await scalar(
                    "SELECT COUNT(*) FROM tasks WHERE status IN ('open', 'acknowledged') AND village_id IN "
                    f"(SELECT village_id FROM cadre_villages JOIN channel_accounts USING (person_id) "
                    f"WHERE address = '{busy.id}')"
                )
                print(f"/tasks answered ({len(listing.text or '')} characters)", flush=True)
                await until(outbox_empty, "everything delivered")
                memory = child.memory()
                messages = len(emu.calls_of("sendMessage"))
            except BaseException:
                print(f"failed; the worker's log ends:\n{child.log_tail()}", flush=True)
                raise
            finally:
                code = await child.stop()
                await watch.dispose()
                if code not in (0, None):
                    print(f"worker exited with {code}:\n{child.log_tail()}", flush=True)
    return {
        "households": args.households,
        "open_cases": args.open_cases,
        "rss_mb": round(memory["VmRSS"], 1),
        "peak_mb": round(memory["VmHWM"], 1),
        "target_mb": TARGET_MB,
        "ok": memory["VmHWM"] < TARGET_MB,
        "idle_rss_mb": round(idle["VmRSS"], 1),
        "database": make_url(url).get_backend_name(),
        "seed_seconds": round(seed_seconds, 1),
        "messages": messages,
        "declarations": args.declarations,
        "busy_cadre_cases": busy_cases,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--open-cases", type=int, default=10_000)
    parser.add_argument("--villages", type=int, default=100)
    parser.add_argument("--busy-villages", type=int, default=20)
    parser.add_argument("--declarations", type=int, default=3)
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server (a fresh database is used)")
    parser.add_argument("--tmp", default=None, help="where the temporary directory goes")
    parsed = parser.parse_args()
    print(json.dumps(asyncio.run(main(parsed)), ensure_ascii=False))
