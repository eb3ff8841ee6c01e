"""Farmers declaring in chat at once: the service against a bare python-telegram-bot echo bot.

    .venv/bin/python benchmarks/intake.py [--farmers 100] [--think 5] [--burst]
                                          [--duration S] [--database-url URL]

N simulated farmers (users of the local Bot API emulator) each make one full declaration, the
plainest way through as tests/e2e/conftest.py `declare()` does: /start with the village's QR
payload → consent → name → declarant → phone → skip the ID number → household size → one risk
and 选好了 → the follow-up amount when the risk has one → description → no photos → 确认提交 →
the receipt (12 or 13 steps). Before every step a farmer thinks for an exponentially distributed
time (mean `--think` seconds; the first step too, so arrivals spread); `--burst` sends them all
at once with no thinking. No farmer starts a step after `--duration` seconds (default 80 in
think mode, so a run takes under 3 minutes and about 80 of 100 finish; 240 in burst mode, where
all finish), every wait has a timeout (`--step-timeout`), and unfinished farmers are counted.

Then the same farmers, with the same think times and the same texts, run the same sequence of
steps (text or press) against an echo bot on a fresh emulator: one MessageHandler sending the
text back and one CallbackQueryHandler answering the query and sending a message, each reply
with one button to press for the next press step. The echo bot uses PTB's
AIORateLimiter(max_retries=0) (the service has no rate limiter on its bot: its outbox sender
paces every call), and both emulators enforce Telegram's 30 messages a second overall, and
10 a second per private chat (the chat pace the service is given here, as in the e2e tests).
AIORateLimiter lets up to twice its rate into one second after a quiet spell, so the echo bot
does get 429s; it sends again after retry_after in the background (the service's outbox does
the same for its own, which its pacer avoids), and the 429s are counted.

Figures, for each bot:
- latency: from the update being queued by the emulator (the farmer's send or press) to the
  first bot message or edit the emulator stores in that farmer's chat (p50, p99, max); and
  `done`: until the step is complete (the next question arrived, and a press was answered);
- steps/s: steps completed over the wall time of the phase;
- CPU per step: time.process_time() over the phase divided by the steps. Bot, emulator and
  simulated farmers run in one process (the emulator's HTTP server and aiosqlite's thread
  included) and nothing is subtracted, so the echo figure is the floor of that harness;
- calls per step: Bot API calls received by the emulator that count against Telegram's limits
  (send*, edit*, deleteMessage, copy/forwardMessage, 429s included; not answerCallbackQuery,
  getUpdates, getMe, setMyCommands, sendChatAction, getFile);
- writes per step (service only): COMMITs on the service's engine (SQLAlchemy "commit" event)
  of transactions that ran an INSERT, UPDATE or DELETE; `commits_per_step` counts every COMMIT
  (on SQLite each one took the write lock with BEGIN IMMEDIATE). The outbox sender's claims and
  the JobQueue's ticks during the phase are included.

- time in BEGIN (service only): on SQLite, BEGIN IMMEDIATE waiting for the write lock.

The last line printed is one JSON object (see main()).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import operator
import os
import random
import re
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import RetryAfter
from telegram.ext import (
    AIORateLimiter,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
)
from telegram.ext import filters as tg_filters

import bot
from bot.service import Service
from bot.settings import Settings, load
from botapi.emulator import BotAPIEmulator, EmuMessage, EmuUser
from qr.payload import sign_village
from tests.support import seed_roster

TOKEN = "123456:BENCH-TOKEN"
SECRET = "bench-qr-secret-0123456789abcdef"
ID_KEY = "bench-id-key-0123456789abcdef"
USERNAME = "fanghui_bench_bot"
OVERALL_PER_SECOND = 30  # Telegram's messages a second for a bot
CHAT_PER_SECOND = 10  # the chat pace the service is given (tests/e2e/conftest.py) and the emulator enforces
FIRST_USER = 20_000_000

# Calls that do not count against Telegram's message limits.
FREE_METHODS = frozenset(
    """
    answerCallbackQuery getUpdates getMe setMyCommands getMyCommands deleteMyCommands setWebhook
    deleteWebhook getWebhookInfo sendChatAction getFile getChat setChatMenuButton getChatMenuButton
    close logOut
    """.split()
)

SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何林罗高"
GIVEN = ("大山", "小明", "建国", "秀英", "桂兰", "志强", "海燕", "文华", "春生", "玉梅")
# (button label, whether choosing it asks for an amount next)
RISKS = (
    ("因病", True),
    ("因残", False),
    ("因意外事故", True),
    ("因学", False),
    ("收入大幅下降", True),
    ("住房安全问题", False),
)
DESCRIPTIONS = (
    "老伴住院做手术，花了三万多元",
    "孩子上大学学费交不上",
    "家里的房子漏雨，墙也裂了",
    "去年养的猪都病死了，欠了钱",
)


def counts_against_limits(method: str) -> bool:
    return method not in FREE_METHODS


# --------------------------------------------------------------------------------------------
# The emulator, noting when each reply reaches a chat
# --------------------------------------------------------------------------------------------


class TimedEmulator(BotAPIEmulator):
    """The emulator, with per chat: the bot's messages, when each message or edit was stored,
    and when each callback query was answered; each farmer waits on its own chat only."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.inbox: dict[int, list[EmuMessage]] = defaultdict(list)
        self.reply_times: dict[int, list[float]] = defaultdict(list)
        self.answered: dict[str, float] = {}
        self.flooded: dict[int, list[float]] = defaultdict(list)  # when a send to the chat got a 429
        self._waiters: dict[int, asyncio.Event] = {}

    def _poke(self, chat_id: int) -> None:
        waiter = self._waiters.get(chat_id)
        if waiter is not None:
            waiter.set()

    def _bot_message(self, state: Any, *args: Any, **kwargs: Any) -> EmuMessage:
        message = super()._bot_message(state, *args, **kwargs)
        self.reply_times[state.id].append(time.perf_counter())
        self.inbox[state.id].append(message)
        self._poke(state.id)
        return message

    def _apply_edit(self, state: Any, msg: EmuMessage, **changes: Any) -> Any:
        before = msg.text
        result = super()._apply_edit(state, msg, **changes)
        if "text" in changes and msg.text != before:
            # The answered question edited into the next one: the farmer reads it as the next message.
            self.inbox[state.id].append(msg)
        self.reply_times[state.id].append(time.perf_counter())
        self._poke(state.id)
        return result

    def _record_error(self, method: str, params: Any, err: Any) -> None:
        super()._record_error(method, params, err)
        chat_id = params.get("chat_id")
        if getattr(err, "status", None) == 429 and chat_id is not None:
            self.flooded[int(chat_id)].append(time.perf_counter())

    async def _api_answer_callback_query(self, params: Any) -> bool:
        result = await super()._api_answer_callback_query(params)
        query_id = str(params.get("callback_query_id") or "")
        self.answered[query_id] = time.perf_counter()
        chat_id = self._queries.get(query_id)
        if chat_id is not None:
            self._poke(chat_id)
        return result

    async def wait_chat(self, chat_id: int, ready: Callable[[], bool], timeout: float) -> bool:
        """Wait until `ready()` holds, re-checked whenever something reaches this chat."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not ready():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            waiter = self._waiters[chat_id] = asyncio.Event()
            try:
                await asyncio.wait_for(waiter.wait(), remaining)
            except TimeoutError:
                return ready()
        return True


# --------------------------------------------------------------------------------------------
# The farmers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    kind: str  # "text" or "press"
    value: str  # the text sent, or the label of the button pressed
    expect: tuple[str, ...] | None  # phrases of the bot message that ends the step; None: the press's answer


@dataclass
class Plan:
    """One farmer: who, what they answer, and how long they think before each step."""

    index: int
    name: str
    phone: str
    risk: str
    followup: bool
    description: str
    thinks: list[float]

    @property
    def user_id(self) -> int:
        return FIRST_USER + self.index


def make_plans(farmers: int, think: float, burst: bool, seed: int) -> list[Plan]:
    plans = []
    for n in range(farmers):
        rng = random.Random(seed * 1_000_003 + n)
        risk, followup = RISKS[n % len(RISKS)]
        name = SURNAMES[n % len(SURNAMES)] + GIVEN[(n // len(SURNAMES)) % len(GIVEN)]
        thinks = [0.0 if burst else rng.expovariate(1 / think) for _ in range(16)]
        plans.append(
            Plan(n, name, f"139{n:08d}", risk, followup, DESCRIPTIONS[n % len(DESCRIPTIONS)], thinks)
        )
    return plans


def service_steps(plan: Plan, payload: str) -> list[Step]:
    """The declaration, step by step, as tests/e2e/conftest.py declare() goes through it."""
    return [
        Step("text", f"/start {payload}", ("知情同意",)),
        Step("press", "同意，开始填写", ("请输入户主姓名",)),
        Step("text", plan.name, ("本人",)),
        Step("press", "我是户主本人", ("联系电话",)),
        Step("text", plan.phone, ("身份证号",)),
        Step("press", "不填身份证号，跳过", ("几口人",)),
        Step("press", "4", ("哪些困难",)),
        Step("press", plan.risk, None),  # the list of risks is redrawn with the choice ticked
        Step("press", "选好了，下一步", ("多少钱",) if plan.followup else ("具体情况",)),
        *([Step("text", "3万", ("具体情况",))] if plan.followup else []),
        Step("text", plan.description, ("照片",)),
        Step("press", "没有照片，跳过", ("请核对",)),
        Step("press", "确认提交", ("回执编号",)),
    ]


ECHO_BUTTON = "好的"


def echo_steps(plan: Plan, payload: str) -> list[Step]:
    """The same sequence of sends and presses, with the same texts, against the echo bot."""
    return [
        Step(step.kind, step.value if step.kind == "text" else ECHO_BUTTON, ())
        for step in service_steps(plan, payload)
    ]


def has_more(inbox: list[EmuMessage], read: int) -> bool:
    return len(inbox) > read


@dataclass
class FarmerResult:
    first_reply: list[float] = field(default_factory=list)  # seconds
    kinds: list[str] = field(default_factory=list)  # "text" or "press", for each first_reply
    flooded: list[bool] = field(default_factory=list)  # whether a 429 came before that first reply
    done: list[float] = field(default_factory=list)
    steps: int = 0
    no_reply: int = 0  # steps that ended without any message or edit
    finished: bool = False
    failure: str | None = None
    last_done_at: float = 0.0


async def farmer(
    emu: TimedEmulator,
    user: EmuUser,
    plan: Plan,
    steps: list[Step],
    *,
    stop_at: float,
    step_timeout: float,
) -> FarmerResult:
    result = FarmerResult()
    chat = user.id
    read = 0  # how many of the bot's messages in this chat this farmer has read
    current: EmuMessage | None = None  # the message whose buttons the next press uses
    for number, step in enumerate(steps):
        pause = min(plan.thinks[number], stop_at - time.perf_counter())
        if pause > 0:
            await asyncio.sleep(pause)
        if time.perf_counter() >= stop_at:
            return result
        mark = len(emu.reply_times[chat])
        started = time.perf_counter()
        try:
            query: str | None = None
            if step.kind == "text":
                await emu.send_text(user, step.value)
            else:
                assert current is not None, "nothing to press yet"
                query = await emu.press(user, current, step.value)
            if query is not None:
                if not await emu.wait_chat(
                    chat, partial(operator.contains, emu.answered, query), step_timeout
                ):
                    raise TimeoutError(f"step {number + 1} ({step.value!r}): press not answered")
            if step.expect is not None:
                deadline = started + step_timeout
                found: EmuMessage | None = None
                while found is None:
                    inbox = emu.inbox[chat]
                    if not await emu.wait_chat(
                        chat, partial(has_more, inbox, read), deadline - time.perf_counter()
                    ):
                        raise TimeoutError(
                            f"step {number + 1} ({step.value!r}): no message with {step.expect}"
                        )
                    message = inbox[read]
                    read += 1
                    body = message.text or message.caption or ""
                    if all(phrase in body for phrase in step.expect):
                        found = message
                current = found
        except (TimeoutError, AssertionError) as exc:
            result.failure = str(exc).splitlines()[0]
            return result
        finished = time.perf_counter()
        replies = emu.reply_times[chat]
        if len(replies) > mark:
            result.first_reply.append(replies[mark] - started)
            result.kinds.append(step.kind)
            result.flooded.append(any(started <= at <= replies[mark] for at in emu.flooded.get(chat, ())))
        else:
            result.no_reply += 1
        result.done.append(finished - started)
        result.steps += 1
        result.last_done_at = finished
    result.finished = True
    return result


# --------------------------------------------------------------------------------------------
# Measuring one phase
# --------------------------------------------------------------------------------------------


_WRITTEN = re.compile(r'(?:INSERT INTO|UPDATE|DELETE FROM)\s+"?(\w+)', re.IGNORECASE)


class Transactions:
    """COMMITs on an engine, and how many of them had written something."""

    def __init__(self) -> None:
        self.reset()

    def attach(self, sync_engine: Any) -> None:
        event.listen(sync_engine, "begin", self._begin)
        event.listen(sync_engine, "commit", self._commit)
        event.listen(sync_engine, "rollback", self._rollback)
        event.listen(sync_engine, "before_cursor_execute", self._execute)
        event.listen(sync_engine, "after_cursor_execute", self._executed)

    def reset(self) -> None:
        self.begins = self.commits = self.writes = self.rollbacks = 0
        self.kinds: Counter[str] = Counter()  # the tables each write transaction wrote, joined by "+"
        self.begin_wait = 0.0  # seconds in BEGIN statements: on SQLite, waiting for the write lock
        self.statements = 0.0  # seconds in every other statement

    def _begin(self, conn: Any) -> None:
        self.begins += 1
        conn.info["bench_wrote"] = False

    def _commit(self, conn: Any) -> None:
        self.commits += 1
        tables = conn.info.pop("bench_tables", set())
        if conn.info.pop("bench_wrote", False):
            self.writes += 1
            self.kinds["+".join(sorted(tables))] += 1

    def _rollback(self, conn: Any) -> None:
        self.rollbacks += 1  # the next "begin" clears the flag

    def _execute(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
            conn.info["bench_wrote"] = True
            written = _WRITTEN.match(statement.lstrip())
            if written is not None:
                conn.info.setdefault("bench_tables", set()).add(written.group(1))
        conn.info["bench_started"] = time.perf_counter()

    def _executed(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        started = conn.info.pop("bench_started", None)
        if started is None:
            return
        if statement.lstrip()[:5].upper() == "BEGIN":
            self.begin_wait += time.perf_counter() - started
        else:
            self.statements += time.perf_counter() - started


@dataclass
class Phase:
    seconds: float
    cpu: float
    results: list[FarmerResult]
    calls: Counter[str]
    flood_errors: int
    transactions: Transactions | None = None

    @property
    def steps(self) -> int:
        return sum(r.steps for r in self.results)


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def drive(
    emu: TimedEmulator,
    plans: list[Plan],
    script: Callable[[Plan], list[Step]],
    *,
    duration: float,
    step_timeout: float,
    transactions: Transactions | None = None,
) -> Phase:
    users = [emu.user(plan.user_id, plan.name, language_code="zh-hans") for plan in plans]
    calls_before = len(emu.calls)
    floods_before = emu.flood_errors
    if transactions is not None:
        transactions.reset()
    started = time.perf_counter()
    cpu_started = time.process_time()
    stop_at = started + duration
    jobs = [
        farmer(emu, user, plan, script(plan), stop_at=stop_at, step_timeout=step_timeout)
        for user, plan in zip(users, plans, strict=True)
    ]
    # Every step has its own timeout; this is the backstop for the phase as a whole.
    results = await asyncio.wait_for(asyncio.gather(*jobs), duration + 2 * step_timeout + 30)
    cpu = time.process_time() - cpu_started
    ended = max((r.last_done_at for r in results), default=time.perf_counter())
    calls = Counter(method for method, _ in emu.calls[calls_before:])
    return Phase(
        seconds=max(ended - started, 1e-9),
        cpu=cpu,
        results=results,
        calls=calls,
        flood_errors=emu.flood_errors - floods_before,
        transactions=transactions,
    )


def figures(phase: Phase) -> dict[str, Any]:
    first = [s for r in phase.results for s in r.first_reply]
    done = [s for r in phase.results for s in r.done]
    steps = max(phase.steps, 1)
    limited = sum(n for method, n in phase.calls.items() if counts_against_limits(method))
    out: dict[str, Any] = {
        "p50_ms": round(percentile(first, 0.50) * 1000, 1),
        "p99_ms": round(percentile(first, 0.99) * 1000, 1),
        "max_ms": round(max(first, default=float("nan")) * 1000, 1),
        "steps_per_s": round(phase.steps / phase.seconds, 2),
        "cpu_ms_per_step": round(phase.cpu / steps * 1000, 2),
        "calls_per_step": round(limited / steps, 3),
    }
    if phase.transactions is not None:
        out["writes_per_step"] = round(phase.transactions.writes / steps, 3)
        out["commits_per_step"] = round(phase.transactions.commits / steps, 3)
        out["begin_wait_ms_per_step"] = round(phase.transactions.begin_wait / steps * 1000, 1)
        out["statements_ms_per_step"] = round(phase.transactions.statements / steps * 1000, 1)
    clean = [s for r in phase.results for s, hit in zip(r.first_reply, r.flooded, strict=True) if not hit]
    out["p99_no429_ms"] = round(percentile(clean, 0.99) * 1000, 1)
    out["steps_hit_by_429"] = len(first) - len(clean)
    for kind in ("text", "press"):
        some = [s for r in phase.results for s, k in zip(r.first_reply, r.kinds, strict=True) if k == kind]
        out[f"{kind}_p50_ms"] = round(percentile(some, 0.50) * 1000, 1)
        out[f"{kind}_p99_ms"] = round(percentile(some, 0.99) * 1000, 1)
    out.update(
        {
            "no_reply": sum(r.no_reply for r in phase.results),
            "done_p50_ms": round(percentile(done, 0.50) * 1000, 1),
            "done_p99_ms": round(percentile(done, 0.99) * 1000, 1),
            "steps": phase.steps,
            "declarations": sum(1 for r in phase.results if r.finished),
            "failed": sum(1 for r in phase.results if r.failure),
            "flood_errors": phase.flood_errors,
            "seconds": round(phase.seconds, 1),
        }
    )
    return out


# --------------------------------------------------------------------------------------------
# The two bots
# --------------------------------------------------------------------------------------------


def service_settings(emu: BotAPIEmulator, database_url: str) -> Settings:
    options: dict[str, object] = {
        "telegram_bot_token": TOKEN,
        "telegram_api_base_url": emu.base_url,
        "telegram_api_file_url": emu.base_file_url,
        "database_url": database_url,
        "qr_secret": SECRET,
        "bot_username": None,
        "web_host": "127.0.0.1",
        "web_port": 0,
        "chat_burst": 10,
        "chat_rate_per_second": float(CHAT_PER_SECOND),
        "_env_file": None,
    }
    if "id_encryption_key" in Settings.model_fields:
        options["id_encryption_key"] = ID_KEY
    return load(**options)


def limited_emulator() -> TimedEmulator:
    emu = TimedEmulator(token=TOKEN, bot_username=USERNAME, host="127.0.0.1")
    emu.enforce_limits = True
    emu.limit_per_second = OVERALL_PER_SECOND
    emu.limit_per_private_chat_per_second = CHAT_PER_SECOND
    return emu


async def fresh_postgres_schema(url: str) -> tuple[str, Callable[[], Awaitable[None]]]:
    """A new schema in the PostgreSQL database at `url`, and how to drop it afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(url)
    async with admin.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))

    async def drop() -> None:
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()

    return schema, drop


async def run_service(
    plans: list[Plan], database_url: str | None, *, duration: float, step_timeout: float
) -> Phase:
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite:///{Path(tmp) / 'intake.db'}"
        schema: str | None = None
        drop: Callable[[], Awaitable[None]] | None = None
        if make_url(url).get_backend_name() == "postgresql":
            schema, drop = await fresh_postgres_schema(load(database_url=url, _env_file=None).database_url)
        try:
            async with limited_emulator() as emu:
                settings = service_settings(emu, url)
                service = Service(settings, poll_timeout=1)
                if schema is not None:
                    event.listen(service.engine.sync_engine, "connect", search_path(schema), insert=True)
                transactions = Transactions()
                transactions.attach(service.engine.sync_engine)
                async with service as running:
                    await seed_roster(running.uow)
                    today = datetime.now(ZoneInfo(settings.timezone)).date()
                    payload = sign_village(SECRET.encode(), "QS01", today + timedelta(days=365))
                    return await drive(
                        emu,
                        plans,
                        lambda plan: service_steps(plan, payload),
                        duration=duration,
                        step_timeout=step_timeout,
                        transactions=transactions,
                    )
        finally:
            if drop is not None:
                await drop()


def search_path(schema: str) -> Callable[[Any, Any], None]:
    def set_path(dbapi_connection: Any, _record: Any) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        cursor = dbapi_connection.cursor()
        cursor.execute(f'SET SESSION search_path TO "{schema}"')
        cursor.close()
        dbapi_connection.autocommit = autocommit

    return set_path


ECHO_KEYBOARD = InlineKeyboardMarkup([[InlineKeyboardButton(ECHO_BUTTON, callback_data="ok")]])


async def send_or_retry(context: ContextTypes.DEFAULT_TYPE, chat_id: int, body: str) -> None:
    """Send; on a 429 (AIORateLimiter lets a burst of up to twice its rate into one second, and
    with max_retries=0 it gives up) send again after retry_after, in the background as the
    service's outbox would, so that the next update is not held up."""

    async def later(seconds: float) -> None:
        await asyncio.sleep(seconds)
        await send_or_retry(context, chat_id, body)

    try:
        await context.bot.send_message(chat_id, body, reply_markup=ECHO_KEYBOARD)
    except RetryAfter as exc:
        wait = exc.retry_after
        seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
        context.application.create_task(later(seconds))


async def echo_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_chat is not None and update.effective_message is not None
    await send_or_retry(context, update.effective_chat.id, update.effective_message.text or "…")


async def echo_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None and update.effective_chat is not None
    await query.answer()
    await send_or_retry(context, update.effective_chat.id, f"按了：{query.data}")


async def run_echo(plans: list[Plan], *, duration: float, step_timeout: float) -> Phase:
    async with limited_emulator() as emu:
        application = (
            ApplicationBuilder()
            .token(TOKEN)
            .base_url(emu.base_url)
            .base_file_url(emu.base_file_url)
            .rate_limiter(AIORateLimiter(max_retries=0))  # PTB's own pacing for the bare bot
            .build()
        )
        application.add_handler(MessageHandler(tg_filters.TEXT, echo_text))
        application.add_handler(CallbackQueryHandler(echo_press))
        await application.initialize()
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0.0, timeout=1, drop_pending_updates=False)
        try:
            payload = sign_village(SECRET.encode(), "QS01", datetime.now().date() + timedelta(days=365))
            return await drive(
                emu,
                plans,
                lambda plan: echo_steps(plan, payload),
                duration=duration,
                step_timeout=step_timeout,
            )
        finally:
            await application.updater.stop()
            await application.stop()
            await application.shutdown()


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def table(service: dict[str, Any], echo: dict[str, Any]) -> str:
    rows: list[tuple[str, str | tuple[str, str]]] = [
        ("first reply p50 (ms)", "p50_ms"),
        ("first reply p99 (ms)", "p99_ms"),
        ("first reply max (ms)", "max_ms"),
        ("  p99 without 429-delayed steps", "p99_no429_ms"),
        ("  steps delayed by a 429", "steps_hit_by_429"),
        ("  after a text p50 / p99", ("text_p50_ms", "text_p99_ms")),
        ("  after a press p50 / p99", ("press_p50_ms", "press_p99_ms")),
        ("step done p50 (ms)", "done_p50_ms"),
        ("step done p99 (ms)", "done_p99_ms"),
        ("steps/s", "steps_per_s"),
        ("CPU ms/step", "cpu_ms_per_step"),
        ("limited API calls/step", "calls_per_step"),
        ("DB write transactions/step", "writes_per_step"),
        ("DB commits/step", "commits_per_step"),
        ("DB ms/step in BEGIN (SQLite lock)", "begin_wait_ms_per_step"),
        ("DB ms/step in other SQL", "statements_ms_per_step"),
        ("steps completed", "steps"),
        ("declarations completed", "declarations"),
        ("farmers failed", "failed"),
        ("steps without a reply", "no_reply"),
        ("429 answers", "flood_errors"),
        ("wall seconds", "seconds"),
    ]
    lines = [f"{'':30} {'service':>16} {'echo bot':>16}"]
    for label, key in rows:
        if isinstance(key, tuple):
            ours, theirs = (" / ".join(str(side.get(k, "-")) for k in key) for side in (service, echo))
        else:
            ours, theirs = str(service.get(key, "-")), str(echo.get(key, "-"))
        lines.append(f"{label:30} {ours:>16} {theirs:>16}")
    return "\n".join(lines)


def failures(name: str, phase: Phase) -> list[str]:
    found = Counter(r.failure for r in phase.results if r.failure)
    return [f"  {name}: {n} × {reason}" for reason, n in found.most_common(5)]


async def main(args: argparse.Namespace) -> dict[str, Any]:
    duration = args.duration if args.duration is not None else (240.0 if args.burst else 80.0)
    step_timeout = args.step_timeout if args.step_timeout is not None else (90.0 if args.burst else 30.0)
    plans = make_plans(args.farmers, args.think, args.burst, args.seed)
    mode = "burst" if args.burst else "think"
    print(f"bot package: {bot.__file__}", flush=True)
    load_before = os.getloadavg()[0]
    print(
        f"{args.farmers} farmers, {mode} mode"
        + ("" if args.burst else f" (mean think {args.think} s, no new step after {duration:.0f} s)"),
        flush=True,
    )
    service = await run_service(plans, args.database_url, duration=duration, step_timeout=step_timeout)
    print(
        f"service: {service.steps} steps in {service.seconds:.1f} s; calls {dict(service.calls)}", flush=True
    )
    echo = await run_echo(plans, duration=duration, step_timeout=step_timeout)
    print(f"echo:    {echo.steps} steps in {echo.seconds:.1f} s; calls {dict(echo.calls)}", flush=True)
    ours, theirs = figures(service), figures(echo)
    print(table(ours, theirs))
    problems = failures("service", service) + failures("echo", echo)
    if problems:
        print("failures:\n" + "\n".join(problems))
    if service.transactions is not None:
        t = service.transactions
        print(
            f"service transactions: {t.begins} begun, {t.commits} committed ({t.writes} wrote), "
            f"{t.rollbacks} rolled back"
        )
        print("write transactions by the tables they wrote:", dict(t.kinds.most_common()))
    load_after = os.getloadavg()[0]
    print("CPU: bot, emulator and simulated farmers in one process; nothing subtracted.")
    print(f"machine: {os.cpu_count()} CPUs, load average {load_before:.2f} before, {load_after:.2f} after")
    keys = ("p50_ms", "p99_ms", "max_ms", "steps_per_s", "cpu_ms_per_step", "calls_per_step", "p99_no429_ms")
    return {
        "benchmark": "intake",
        "mode": mode,
        "farmers": args.farmers,
        "service": {
            k: ours[k] for k in (*keys, "writes_per_step", "commits_per_step", "steps", "declarations")
        },
        "echo": {k: theirs[k] for k in (*keys, "steps", "declarations")},
        "ratio": {
            "p99": ratio(ours["p99_ms"], theirs["p99_ms"]),
            "p99_no429": ratio(ours["p99_no429_ms"], theirs["p99_no429_ms"]),
            "steps_per_s": ratio(ours["steps_per_s"], theirs["steps_per_s"]),
            "cpu": ratio(ours["cpu_ms_per_step"], theirs["cpu_ms_per_step"]),
        },
        "load_avg": [round(load_before, 2), round(load_after, 2)],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--farmers", type=int, default=100)
    parser.add_argument("--think", type=float, default=5.0, help="mean think time before each step, seconds")
    parser.add_argument("--burst", action="store_true", help="all farmers at once, no think time")
    parser.add_argument(
        "--duration", type=float, default=None, help="no new step after this (default 80; burst 240)"
    )
    parser.add_argument("--step-timeout", type=float, default=None, help="seconds (default 30; burst 90)")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temporary directory")
    parser.add_argument("--seed", type=int, default=1)
    parsed = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # It logs every 429 it gives up on with a traceback; the table counts them.
    logging.getLogger("telegram.ext.AIORateLimiter").setLevel(logging.CRITICAL)
    print(json.dumps(asyncio.run(main(parsed)), ensure_ascii=False))
