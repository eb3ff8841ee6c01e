"""The fault harness: the real service (`python -m bot run`) as a child process against the Bot API
emulator in this process, killed with SIGKILL at random (seeded) moments or facing random Bot API
failures (`emu.chaos`), while simulated farmers declare and receipts and cadre messages go out.

Each farmer reads its chat and answers the question it sees (not a fixed script): an answer that
was lost leaves the question unanswered, so the farmer answers it again after `patience` seconds
of the service being up, and a question asked again after it was answered is answered again; both
are counted as `repeats` (updates lost). At the end the database and the chats are checked:

- declarations_lost: farmers who got a receipt without exactly one stored declaration, plus
  farmers who confirmed their declaration and never got a receipt;
- declarations_twice: farmers with more than one stored declaration;
- repeats: answers a farmer had to give again;
- duplicates: a bot message with the same text as an earlier one in the same chat. Excused when
  the first copy came from a call the emulator faulted with a timeout (`excused_timeout`), or was
  answered within 100 ms before a kill, or after it (`excused_kill`): Telegram's own duplicates.
  A copy that answers a farmer's repeated answer is counted in `after_repeat`, not as a duplicate;
- repeats_after_timeout, repeats_after_kill: answers given again within `patience` seconds after
  the second copy of such an excused duplicate reached the chat (a question shown twice is
  answered twice, as a person would): the duplicate's consequence, not an update lost, so not a
  problem;
- repeats_after_fault: answers given again when the emulator had faulted a call to that chat
  since the farmer's previous answer: the reply was held up by retries (four 5xx in a row are
  1+2+4+8 s of backoff), not lost. Only chaos runs fault calls; `max_reply_wait` shows the wait;
- cadre_messages_missing: stored declarations whose 【新申报】 did not reach every bound cadre;
- outbox_left, outbox_failed: messages still undelivered (after up to `drain` seconds for the
  outbox to empty), and messages the sender gave up: 100% delivered means both are 0;
- max_wait_after_restart: the longest time a chat with an unanswered answer waited, from a restart
  (the new child up), for its next bot message or edit; more than RESTART_WAIT_LIMIT (5 s) is a
  problem.

No personal data is logged or reported: the report holds counts and seconds only.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from botapi.emulator import BotAPIEmulator, EmuMessage, EmuUser
from qr.payload import sign_village

REPO = Path(__file__).resolve().parents[2]
ROSTER = REPO / "docs" / "roster-example.csv"
TOKEN = "123456:FAULT-TOKEN"
USERNAME = "fanghui_fault_bot"
QR_SECRET = "fault-qr-secret-0123456789abcdef"
ID_KEY = "fault-id-key-0123456789abcdef"
SHANGHAI = ZoneInfo("Asia/Shanghai")
FIRST_FARMER = 30_000_000
FIRST_CADRE = 31_000_000
KILL_EXCUSE = 0.1  # seconds: an answer this close before a kill may never have reached the service

# Villages of docs/roster-example.csv: code -> (name, phones of its cadres).
VILLAGES = {
    "QS01": ("李家村", ("13800000001", "13800000002")),
    "QS02": ("王家村", ("13800000002",)),
    "QS03": ("陈家村", ("13800000005",)),
    "BS01": ("白水村", ("13800000004",)),
}
SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何林罗高"
GIVEN = ("大山", "小明", "建国", "秀英", "桂兰", "志强", "海燕", "文华", "春生", "玉梅")
RISKS = (("因病", True), ("因残", False), ("因意外事故", True), ("因学", False))
DESCRIPTIONS = ("老伴住院做手术，花了三万多元", "孩子上大学学费交不上", "家里的房子漏雨，墙也裂了")


@dataclass(frozen=True)
class Profile:
    """How hard a run is."""

    farmers: int = 6
    kills: int = 4
    chaos: tuple[float, float, float] | None = None  # (rate_5xx, rate_429, rate_timeout)
    seed: int = 1
    spread: float = 6.0  # farmers start at random moments within this many seconds
    think: tuple[float, float] = (0.2, 0.8)  # seconds a farmer thinks before each answer
    uptime: tuple[float, float] = (1.0, 2.5)  # seconds the child runs between kills
    patience: float = 6.0  # seconds of the service being up before an answer counts as lost
    deadline: float = 120.0  # seconds: farmers still declaring then are counted as unfinished
    settle: float = 3.0  # seconds without any bot message before the end is checked
    drain: float = 180.0  # seconds the outbox may take to empty after the last farmer is done
    cadres: bool = True  # bind the villages' cadres, so each declaration sends them a message


async def outbox_counts(engine: Any, states: tuple[str, ...] = ("pending", "sending")) -> dict[str, int]:
    """Outbox rows by status, of the given states."""
    marks = ", ".join(f"'{state}'" for state in states)
    async with engine.connect() as connection:
        found = await connection.execute(
            text(f"SELECT status, count(*) FROM outbox WHERE status IN ({marks}) GROUP BY status")
        )
        return {str(status): int(count) for status, count in found}


RESTART_WAIT_LIMIT = 5.0  # seconds a chat may wait, after a restart, for the answer it is owed


@dataclass
class Report:
    farmers: int = 0
    finished: int = 0
    unfinished: int = 0
    kills: int = 0
    restarts: int = 0
    declarations_stored: int = 0
    declarations_lost: int = 0
    declarations_twice: int = 0
    receipts_missing: int = 0
    repeats: int = 0
    repeated: dict[str, int] = field(default_factory=dict)  # question -> times answered again
    repeats_after_timeout: int = 0
    repeats_after_kill: int = 0
    repeats_after_fault: int = 0
    duplicates: int = 0
    excused_timeout: int = 0
    excused_kill: int = 0
    after_repeat: int = 0
    cadre_messages: int = 0
    cadre_messages_missing: int = 0
    outbox_left: int = 0  # messages still pending or being sent when the run was checked
    outbox_failed: int = 0  # messages the sender gave up
    max_wait_after_restart: float = 0.0
    max_reply_wait: float = 0.0
    faulted: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    database: str = "sqlite"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def problems(self) -> list[str]:
        """Every check that failed, one line each (empty when the run was clean)."""
        found = []
        for name in (
            "unfinished",
            "declarations_lost",
            "declarations_twice",
            "receipts_missing",
            "repeats",
            "duplicates",
            "cadre_messages_missing",
            "outbox_left",
            "outbox_failed",
        ):
            if getattr(self, name):
                found.append(f"{name}={getattr(self, name)}")
        if self.max_wait_after_restart > RESTART_WAIT_LIMIT:
            found.append(f"max_wait_after_restart={self.max_wait_after_restart}")
        return found


# --------------------------------------------------------------------------------------------
# The emulator, noting when each chat changes
# --------------------------------------------------------------------------------------------


class WatchedEmulator(BotAPIEmulator):
    """The emulator, with per chat the moments (time.monotonic()) of every bot message or edit,
    and an event per chat so each farmer waits on its own chat only."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.changed_at: dict[int, list[float]] = defaultdict(list)
        self._chat_events: dict[int, asyncio.Event] = {}

    def _poke(self, chat_id: int) -> None:
        self.changed_at[chat_id].append(time.monotonic())
        event = self._chat_events.pop(chat_id, None)
        if event is not None:
            event.set()

    def _bot_message(self, state: Any, *args: Any, **kwargs: Any) -> EmuMessage:
        message = super()._bot_message(state, *args, **kwargs)
        self._poke(state.id)
        return message

    def _apply_edit(self, state: Any, msg: EmuMessage, **changes: Any) -> Any:
        result = super()._apply_edit(state, msg, **changes)
        self._poke(state.id)
        return result

    async def wait_chat(self, chat_id: int, since: int, timeout: float) -> bool:
        """Wait until the chat changed more than `since` times (or `timeout`); whether it did."""
        if len(self.changed_at[chat_id]) > since:
            return True
        event = self._chat_events.setdefault(chat_id, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        return len(self.changed_at[chat_id]) > since


# --------------------------------------------------------------------------------------------
# The service as a child process
# --------------------------------------------------------------------------------------------


class Child:
    """`python -m bot ...` in a child process, in an empty directory (so no `.env` is read)."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = env
        self.workdir = workdir
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self._drain: asyncio.Task[None] | None = None

    async def command(self, *args: str) -> str:
        """Run a one-off command (migrate, roster import, invite) and return its stdout."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", *args,
            cwd=self.workdir, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"python -m bot {args[0]} failed ({proc.returncode}):\n{err.decode()[-2000:]}")
        return out.decode()

    async def start(self, timeout: float = 60.0) -> None:
        """Start `python -m bot run` and wait for the line run_forever prints once it is up."""
        self.starts += 1
        log = (self.workdir / f"run-{self.starts}.log").open("wb")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--require-token",
            cwd=self.workdir, env=self.env, stdout=asyncio.subprocess.PIPE, stderr=log,
        )  # fmt: skip
        log.close()
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    line = await self.process.stdout.readline()
                    if not line:
                        raise RuntimeError(f"the service exited before it was up:\n{self.log_tail()}")
                    if line.startswith(b"Running as"):
                        break
        except TimeoutError:
            raise RuntimeError(f"the service was not up within {timeout} s:\n{self.log_tail()}") from None
        self._drain = asyncio.create_task(self._read_rest(self.process))

    @staticmethod
    async def _read_rest(process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while await process.stdout.read(65536):
            pass

    def log_tail(self, lines: int = 40) -> str:
        path = self.workdir / f"run-{self.starts}.log"
        content = path.read_text("utf-8", errors="replace") if path.exists() else ""
        return "\n".join(content.splitlines()[-lines:])

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def kill(self) -> None:
        """SIGKILL, and wait until it is gone: no shutdown, nothing released."""
        if self.process is None:
            return
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (run_forever stops cleanly), SIGKILL after `timeout`."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                await self.kill()
        if self._drain is not None:
            self._drain.cancel()


def child_environment(**settings: object) -> dict[str, str]:
    """This process's environment without any of the service's settings, plus `settings`."""
    from bot.settings import Settings

    names = {name.upper() for name in Settings.model_fields}
    env = {key: value for key, value in os.environ.items() if key.upper() not in names}
    env["PYTHONPATH"] = str(REPO)
    env.update({name.upper(): str(value) for name, value in settings.items()})
    return env


@asynccontextmanager
async def database_url(kind: str, workdir: Path) -> AsyncIterator[str]:
    """DATABASE_URL of an empty database: a SQLite file, or a fresh PostgreSQL schema.

    A child takes only DATABASE_URL, which cannot carry asyncpg's search_path; so the schema gets
    a login role of the same name, whose default search_path ("$user", public) finds it."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{workdir / 'faults.db'}"
        return
    base = os.environ.get("TEST_DATABASE_URL")
    assert base, "TEST_DATABASE_URL is not set"
    url = make_url(base)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+asyncpg")
    name = f"fault_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE ROLE "{name}" LOGIN'))
            await connection.execute(text(f'CREATE SCHEMA "{name}" AUTHORIZATION "{name}"'))
        yield url.set(username=name, password=None).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
            await connection.execute(text(f'DROP ROLE IF EXISTS "{name}"'))
        await admin.dispose()


# --------------------------------------------------------------------------------------------
# The farmers
# --------------------------------------------------------------------------------------------


@dataclass
class Farmer:
    index: int
    user: EmuUser
    village: str  # code
    payload: str
    name: str
    phone: str
    risk: str
    followup: bool
    description: str
    rng: random.Random
    answered: dict[str, int] = field(default_factory=dict)  # question -> message id answered
    answers: list[tuple[float, bool]] = field(default_factory=list)  # (when, whether a repeat)
    repeats: int = 0
    repeated: list[str] = field(default_factory=list)  # the questions answered again
    confirmed: bool = False
    receipt: str | None = None
    failure: str | None = None


RECEIPT_RE = re.compile(r"回执编号：(\d+)")


def question(message: EmuMessage, farmer: Farmer) -> tuple[str, str, str] | None:
    """(key, "press" or "text", value) for a bot message that asks something, else None."""
    body = message.text or ""
    buttons = message.button_texts
    if "申报已提交" in body and RECEIPT_RE.search(body):
        return ("receipt", "done", RECEIPT_RE.search(body).group(1))  # type: ignore[union-attr]
    if "知情同意" in body and "同意，开始填写" in buttons:
        return ("consent", "press", "同意，开始填写")
    if "请输入户主姓名" in body:
        return ("name", "text", farmer.name)
    if "我是户主本人" in buttons:
        return ("declarant", "press", "我是户主本人")
    if "请输入联系电话" in body:
        return ("phone", "text", farmer.phone)
    if "不填身份证号，跳过" in buttons:
        return ("id", "press", "不填身份证号，跳过")
    if "几口人" in body and "4" in buttons:
        return ("household", "press", "4")
    if "哪些困难" in body and buttons:
        if f"✅ {farmer.risk}" in buttons and "选好了，下一步" in buttons:
            return ("risks_done", "press", "选好了，下一步")
        if farmer.risk in buttons:
            return ("risk", "press", farmer.risk)
        return None
    if "多少钱" in body:
        return ("amount", "text", "3万")
    if "具体情况" in body:
        return ("description", "text", farmer.description)
    if "没有照片，跳过" in buttons:
        return ("photos", "press", "没有照片，跳过")
    if "请核对" in body and "确认提交" in buttons:
        return ("summary", "press", "确认提交")
    return None


Question = tuple[str, str, str, int]  # key, "press"/"text"/"done", value, message id


def current_question(emu: BotAPIEmulator, farmer: Farmer) -> Question | None:
    """The question the farmer sees: that of the newest bot message that asks one (messages that
    only inform, such as an apology, are read past; a keyboard pressed is gone)."""
    for message in reversed(emu.messages(farmer.user.id)):
        found = question(message, farmer)
        if found is not None:
            return (*found, message.message_id)
    return None


# --------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------


class FaultRun:
    def __init__(self, profile: Profile, workdir: Path, database: str = "sqlite") -> None:
        self.profile = profile
        self.workdir = workdir
        self.database = database
        self.rng = random.Random(profile.seed)
        self.emu = WatchedEmulator(token=TOKEN, bot_username=USERNAME)
        self.child: Child | None = None
        self.up_since: float | None = None  # time.monotonic() the current child came up; None: down
        self.kills: list[tuple[float, float]] = []  # (killed at, next child started at)
        self.restarts: list[float] = []  # when each restarted child was up
        self.farmers: list[Farmer] = []
        self.cadres: dict[str, EmuUser] = {}  # phone -> cadre user
        self.all_done = asyncio.Event()

    # ---------------------------------------------------------------- setup

    async def run(self) -> Report:
        started = time.monotonic()
        async with self.emu, database_url(self.database, self.workdir) as url:
            env = child_environment(
                telegram_bot_token=TOKEN,
                telegram_api_base_url=self.emu.base_url,
                telegram_api_file_url=self.emu.base_file_url,
                database_url=url,
                qr_secret=QR_SECRET,
                id_encryption_key=ID_KEY,
                bot_username=USERNAME,
                web_port=0,
                chat_rate_per_second=10,
                chat_burst=10,
                log_level="WARNING",
            )
            self.child = Child(env, self.workdir)
            await self.child.command("migrate")
            await self.child.command("roster", "import", str(ROSTER))
            await self.child.start()
            self.up_since = time.monotonic()
            try:
                if self.profile.cadres:
                    await self._bind_cadres(url)
                if self.profile.chaos is not None:
                    self.emu.chaos(*self.profile.chaos, seed=self.profile.seed)
                self._make_farmers()
                killer = asyncio.create_task(self._killer())
                await asyncio.gather(*(self._declare(f) for f in self.farmers))
                self.all_done.set()
                await killer
                await self._settle(url)
                self.emu.calm()
                report = await self._check(url)
            finally:
                await self.child.stop()
        report.seconds = round(time.monotonic() - started, 1)
        return report

    async def _bind_cadres(self, url: str) -> None:
        """Each cadre of the roster opens an invite, as `python -m bot invite` makes them."""
        from bot.clock import SystemClock
        from domain import people
        from storage.db import create_engine, session_factory
        from storage.uow import SqlUnitOfWorkFactory

        phones = sorted({phone for _, cadres in VILLAGES.values() for phone in cadres})
        engine = create_engine(url)
        try:
            factory = SqlUnitOfWorkFactory(session_factory(engine))
            payloads = []
            for phone in phones:
                async with factory() as uow:
                    invite = await people.issue_invite(uow, SystemClock(SHANGHAI), phone)
                    await uow.commit()
                payloads.append(invite.payload)
        finally:
            await engine.dispose()
        for n, (phone, payload) in enumerate(zip(phones, payloads, strict=True)):
            user = self.emu.user(FIRST_CADRE + n, f"Cadre{n}", language_code="zh-hans")
            await self.emu.send_command(user, "start", payload)
            await self.emu.wait_until(
                lambda u=user: any("您好" in (m.text or "") for m in self.emu.messages(u)),  # type: ignore[misc]
                30,
                "a cadre's invite answered",
            )
            self.cadres[phone] = user

    def _make_farmers(self) -> None:
        today = datetime.now(SHANGHAI).date()
        codes = sorted(VILLAGES)
        for n in range(self.profile.farmers):
            code = codes[n % len(codes)]
            risk, followup = RISKS[n % len(RISKS)]
            user = self.emu.user(FIRST_FARMER + n, f"Farmer{n}", language_code="zh-hans")
            self.farmers.append(
                Farmer(
                    index=n,
                    user=user,
                    village=code,
                    payload=sign_village(QR_SECRET.encode(), code, today + timedelta(days=365)),
                    name=SURNAMES[n % len(SURNAMES)] + GIVEN[(n // len(SURNAMES)) % len(GIVEN)],
                    phone=f"139{n:08d}",
                    risk=risk,
                    followup=followup,
                    description=DESCRIPTIONS[n % len(DESCRIPTIONS)],
                    rng=random.Random(self.profile.seed * 1_000_003 + n),
                )
            )

    # ---------------------------------------------------------------- kills

    async def _killer(self) -> None:
        """SIGKILL the child after a random uptime, restart it at once; `kills` times at most,
        and only while farmers are still declaring."""
        assert self.child is not None
        low, high = self.profile.uptime
        for _ in range(self.profile.kills):
            try:
                await asyncio.wait_for(self.all_done.wait(), self.rng.uniform(low, high))
                return
            except TimeoutError:
                pass
            killed_at = time.monotonic()
            self.up_since = None
            await self.child.kill()
            restarted_at = time.monotonic()
            self.kills.append((killed_at, restarted_at))
            await self.child.start()
            self.up_since = time.monotonic()
            self.restarts.append(self.up_since)

    # ---------------------------------------------------------------- a farmer

    def _patience_over(self, since: float) -> bool:
        """Whether the service has been up for `patience` seconds since `since`."""
        up = self.up_since
        return up is not None and time.monotonic() - max(up, since) >= self.profile.patience

    async def _declare(self, farmer: Farmer) -> None:
        profile = self.profile
        chat = farmer.user.id
        await asyncio.sleep(farmer.rng.uniform(0, profile.spread))  # arrivals spread over time
        deadline = time.monotonic() + profile.deadline
        restart = ("start", "text", f"/start {farmer.payload}", 0)
        await self._answer(farmer, restart)
        while time.monotonic() < deadline:
            seen = len(self.emu.changed_at[chat])
            asked_at = farmer.answers[-1][0]
            # Wait for the bot's reaction, or for the answer to look lost.
            while not await self.emu.wait_chat(chat, seen, 0.25):
                if self._patience_over(asked_at) or time.monotonic() >= deadline:
                    break
            found = current_question(self.emu, farmer)
            if found is not None and found[0] == "receipt":
                farmer.receipt = found[2]
                return
            lost = self._patience_over(asked_at)
            if found is None:
                if lost:  # nothing to answer and nothing comes: start over, as a person would
                    await self._answer(farmer, restart)
                continue
            answered = farmer.answered.get(found[0])
            if answered is None or answered != found[3] or lost:
                # A new question; or one answered before asked again in a new message; or the
                # answer to this one was lost.
                if answered is None:
                    await asyncio.sleep(farmer.rng.uniform(*profile.think))
                await self._answer(farmer, found)
        farmer.failure = "deadline"

    async def _answer(self, farmer: Farmer, found: Question) -> None:
        key, kind, value, message_id = found
        repeat = key in farmer.answered
        if repeat:
            farmer.repeats += 1
            farmer.repeated.append(key)
        farmer.answered[key] = message_id
        if key == "summary":
            farmer.confirmed = True
        farmer.answers.append((time.monotonic(), repeat))
        if kind == "text":
            await self.emu.send_text(farmer.user, value)
            return
        try:
            await self.emu.press(farmer.user, message_id, value)
        except AssertionError:
            farmer.answers.pop()  # the keyboard changed under the thumb: nothing was sent
            if repeat:
                farmer.repeats -= 1
                farmer.repeated.pop()

    # ---------------------------------------------------------------- the end

    async def _settle(self, url: str) -> None:
        """Wait until the outbox holds nothing pending or being sent (at most `drain` seconds),
        then until no chat has changed for `settle` seconds, at most a minute."""
        engine = create_async_engine(url)
        try:
            end = time.monotonic() + self.profile.drain
            while time.monotonic() < end:
                if not sum((await outbox_counts(engine)).values()):
                    break
                await asyncio.sleep(0.5)  # the child's database: nothing here to wait on
        finally:
            await engine.dispose()
        end = time.monotonic() + 60

        def last_change() -> float:
            return max((times[-1] for times in self.emu.changed_at.values() if times), default=0.0)

        while time.monotonic() < end:
            quiet = time.monotonic() - last_change()
            if quiet >= self.profile.settle:
                return
            since = self.emu.changes
            await self.emu.wait_changed(since, self.profile.settle - quiet)

    async def _check(self, url: str) -> Report:
        report = Report(farmers=len(self.farmers), database=self.database)
        report.kills = len(self.kills)
        report.restarts = len(self.restarts)
        report.finished = sum(f.receipt is not None for f in self.farmers)
        report.unfinished = report.farmers - report.finished
        report.repeats = sum(f.repeats for f in self.farmers)
        report.repeated = dict(Counter(key for f in self.farmers for key in f.repeated))
        report.faulted = dict(Counter(kind for _, kind, _, _ in self.emu.faulted))

        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                rows = (await connection.execute(text("SELECT phone, receipt FROM declarations"))).all()
            report.outbox_left = sum((await outbox_counts(engine)).values())
            report.outbox_failed = (await outbox_counts(engine, ("failed",))).get("failed", 0)
        finally:
            await engine.dispose()
        stored: dict[str, list[str | None]] = defaultdict(list)
        for phone, receipt in rows:
            stored[str(phone)[-11:]].append(receipt)  # stored as +86...
        report.declarations_stored = len(rows)
        for farmer in self.farmers:
            mine = stored.get(farmer.phone, [])
            if len(mine) > 1:
                report.declarations_twice += 1
            if farmer.receipt is not None and farmer.receipt not in mine:
                report.declarations_lost += 1
            elif farmer.confirmed and farmer.receipt is None and not mine:
                report.declarations_lost += 1
            if farmer.confirmed and farmer.receipt is None:
                report.receipts_missing += 1

        # Every stored declaration reaches every bound cadre of its village once.
        village_of = {f.phone: f.village for f in self.farmers}
        for phone, receipts in stored.items():
            for receipt in receipts:
                for cadre_phone in VILLAGES[village_of[phone]][1] if self.profile.cadres else ():
                    cadre = self.cadres[cadre_phone]
                    got = any(
                        "新申报" in (m.text or "") and str(receipt) in (m.text or "")
                        for m in self.emu.messages(cadre, include_deleted=True)
                    )
                    report.cadre_messages += got
                    report.cadre_messages_missing += not got

        self._count_duplicates(report)
        self._excuse_repeats(report)
        self._waits(report)
        return report

    def _count_duplicates(self, report: Report) -> None:
        answers = {f.user.id: f.answers for f in self.farmers}

        def answers_a_repeat(chat: int, message: EmuMessage, first: EmuMessage) -> bool:
            # The farmer's latest answer before this copy was a repeat made after the first copy.
            made = (message.answered_at or 0.0) - 1e-6
            before = [(at, repeat) for at, repeat in answers.get(chat, []) if at <= made]
            return bool(before) and before[-1][1] and before[-1][0] >= (first.answered_at or 0.0) - 1.0

        chats = [f.user.id for f in self.farmers] + [c.id for c in self.cadres.values()]
        for chat in chats:
            by_text: dict[str, list[EmuMessage]] = defaultdict(list)
            for message in self.emu.messages(chat, include_deleted=True):
                by_text[message.text or message.caption or ""].append(message)
            for copies in by_text.values():
                first = copies[0]
                for copy in copies[1:]:
                    if first.fault == "timeout":
                        report.excused_timeout += 1
                    elif self._killed_before_known(first):
                        report.excused_kill += 1
                    elif answers_a_repeat(chat, copy, first):
                        report.after_repeat += 1
                    else:
                        report.duplicates += 1

    def _excuse_repeats(self, report: Report) -> None:
        """Move to `repeats_after_timeout` / `repeats_after_kill` the repeats that an excused
        duplicate's second copy brought (the farmer answered the question shown again)."""
        for farmer in self.farmers:
            by_text: dict[str, list[EmuMessage]] = defaultdict(list)
            for message in self.emu.messages(farmer.user.id, include_deleted=True):
                by_text[message.text or message.caption or ""].append(message)
            # When the later copies of a timed-out call, or of a call answered just before a
            # kill, reached the chat.
            shown: list[tuple[float, str]] = [
                (copy.answered_at, "timeout" if copies[0].fault == "timeout" else "kill")
                for copies in by_text.values()
                if copies[0].fault == "timeout" or self._killed_before_known(copies[0])
                for copy in copies[1:]
                if copy.answered_at is not None
            ]
            faults = [when for _method, _kind, chat, when in self.emu.faulted if chat == farmer.user.id]
            previous: float | None = None
            for at, repeat in farmer.answers:
                cause = next((c for when, c in shown if 0.0 <= at - when <= self.profile.patience), None)
                if repeat and cause is None and previous is not None:
                    if any(previous <= when <= at for when in faults):
                        cause = "fault"
                previous = at
                if repeat and cause is not None:
                    report.repeats -= 1
                    if cause == "timeout":
                        report.repeats_after_timeout += 1
                    elif cause == "fault":
                        report.repeats_after_fault += 1
                    else:
                        report.repeats_after_kill += 1

    def _killed_before_known(self, message: EmuMessage) -> bool:
        """Telegram answered the call that made `message` within KILL_EXCUSE before a kill (or
        while the service was down): the sent mark could not have been committed."""
        at = message.answered_at
        return at is not None and any(k - KILL_EXCUSE <= at <= back for k, back in self.kills)

    def _waits(self, report: Report) -> None:
        """The longest wait, from a restart, of a chat whose last answer was still unanswered,
        and the longest wait of any answer for its reply."""
        for farmer in self.farmers:
            changes = self.emu.changed_at.get(farmer.user.id, [])
            for at, _ in farmer.answers:
                reply = next((c for c in changes if c >= at), None)
                if reply is not None:
                    report.max_reply_wait = max(report.max_reply_wait, reply - at)
            for up in self.restarts:
                before = [at for at, _ in farmer.answers if at <= up]
                if not before:
                    continue
                last = before[-1]
                if any(last <= c <= up for c in changes):
                    continue  # already answered before the restart
                reply = next((c for c in changes if c > up), None)
                end = reply if reply is not None else time.monotonic()
                report.max_wait_after_restart = max(report.max_wait_after_restart, end - up)
        report.max_wait_after_restart = round(report.max_wait_after_restart, 2)
        report.max_reply_wait = round(report.max_reply_wait, 2)


async def run_profile(profile: Profile, workdir: Path, database: str = "sqlite") -> Report:
    """One run of the service under `profile`; the report says what was lost or doubled."""
    os.makedirs(workdir, exist_ok=True)
    return await FaultRun(profile, workdir, database).run()
