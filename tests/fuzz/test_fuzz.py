"""Fuzzing: random and mutated button data, and random messages at every step of every conversation.

Every example runs the real use cases the way the Telegram handlers do (tests/fuzz/world.py), in
one transaction rolled back afterwards, on a database built once per test: nothing may raise, nothing
may log an error, and everything queued must render in both languages. A situation first brings
someone to a step of a conversation (a declaration, a home visit, a reason, an objection, adding
information, a notice, a campaign, a report, a problem) with valid answers; then comes the fuzzed
button press, text, photo, voice note, contact, sticker or command, or a walk: several of them,
mostly taps on the buttons shown, with Back bursts, time passing and other people acting between.

How many examples: ~500 in all by default (`make test`); HYPOTHESIS_PROFILE=fuzz-full runs 10,000,
and FUZZ_EXAMPLES=N runs N (benchmarks/fuzz.py runs the full profile and reports).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import re
import shutil
import string
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram.ext import CommandHandler

from domain import buttons as b
from domain import campaign_chat, intake, risk_types
from domain.conversations import router
from handlers import console, notifications, telegram, web_links
from handlers.buttons import ROUTES
from qr.payload import sign_village
from storage.db import create_engine
from storage.migrate import upgrade
from tests.fuzz import world as w
from tests.support import database

# --- how many examples ------------------------------------------------------------------------------

settings.register_profile(
    "fuzz-short",
    max_examples=500,
    deadline=None,
    database=None,  # no .hypothesis/ in the checkout; a failure prints its example and blob
    print_blob=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # the database is per test on purpose, not per example
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
settings.register_profile("fuzz-full", settings.get_profile("fuzz-short"), max_examples=10_000)


def _profile() -> settings:
    name = os.environ.get("HYPOTHESIS_PROFILE") or getattr(settings, "_current_profile", None) or ""
    return settings.get_profile(name if name in ("fuzz-short", "fuzz-full") else "fuzz-short")


def budget(share: float) -> settings:
    """This test's part of the total number of examples (the profile's, or FUZZ_EXAMPLES)."""
    profile = _profile()
    total = int(os.environ.get("FUZZ_EXAMPLES") or profile.max_examples)
    return settings(profile, max_examples=max(1, round(total * share)))


# The parts of the total, by test.
SHARES = {"valid_buttons": 0.15, "mutated_buttons": 0.1, "random_data": 0.08, "text": 0.25, "media": 0.1,
          "commands": 0.1, "walks": 0.22}  # fmt: skip


# --- the database, per test ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, w.World]:
    """The world in a SQLite file, built once; each test gets a copy (with the same ids)."""
    path = tmp_path_factory.mktemp("fuzz") / "world.db"

    async def build() -> w.World:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        try:
            await upgrade(engine)
            return await w.build_world(engine)
        finally:
            await engine.dispose()

    return path, asyncio.run(build())


class Fuzz:
    """Runs one example on this test's database (in this test's event loop)."""

    def __init__(self, runner: asyncio.Runner, harness: w.Harness) -> None:
        self.runner = runner
        self.harness = harness

    def __call__(
        self,
        kind: str,
        who: str,
        situation: tuple[str, str, dict[str, Any], int],
        message: w.Message | tuple[w.Message, ...],
        shift: timedelta = timedelta(0),
    ) -> None:
        who = situation[0] if who == "subject" else who
        self.runner.run(self.harness.example(kind, who, situation, message, shift=shift))


@pytest.fixture(params=["sqlite", "postgresql"])
def fuzz(request: pytest.FixtureRequest, tmp_path: Path, template: tuple[Path, w.World]) -> Iterator[Fuzz]:
    """A database with the world in it, for this test only (SQLite; PostgreSQL with TEST_DATABASE_URL)."""
    with asyncio.Runner() as runner:
        if request.param == "sqlite":
            path, world = template
            copy = tmp_path / "world.db"
            shutil.copyfile(path, copy)
            engine = create_engine(f"sqlite+aiosqlite:///{copy}")
            try:
                yield Fuzz(runner, w.Harness(engine, world))
            finally:
                runner.run(engine.dispose())
            return
        schema = database("postgresql", tmp_path)
        engine = runner.run(schema.__aenter__())
        try:
            runner.run(upgrade(engine))
            yield Fuzz(runner, w.Harness(engine, runner.run(w.build_world(engine))))
        finally:
            runner.run(schema.__aexit__(None, None, None))


# --- strategies: who, where, when ------------------------------------------------------------------


def _situation(flow: str) -> st.SearchStrategy[tuple[str, str, dict[str, Any], int]]:
    persons, options = w.FLOWS[flow]
    return st.tuples(
        st.sampled_from(persons),
        st.just(flow),
        st.fixed_dictionaries({name: st.sampled_from(choices) for name, choices in options.items()}),
        st.one_of(st.integers(0, w.MAX_MOVES), st.just(w.MAX_MOVES)),  # every step, and the whole path
    )


# Nobody in a conversation (the world as built), or someone brought to some step of one.
SITUATIONS = st.one_of(
    st.tuples(st.sampled_from(list(w.PEOPLE)), st.just("none"), st.just({}), st.just(0)),
    *(_situation(flow) for flow in w.FLOWS),
)
# Who sends the fuzzed message: the person of the situation ("subject"), anyone, or a chat never seen.
SENDERS = st.one_of(st.just("subject"), st.sampled_from([*w.PEOPLE, w.NEWCOMER]))
LANGUAGES = st.one_of(
    st.sampled_from(
        [None, "", "zh-hans", "zh-hant", "zh", "en", "en-US", "ru", "pt-br", "zh-Hans-CN", "x" * 40]
    ),
    st.text(max_size=20),
)
SHIFTS = st.one_of(
    st.just(timedelta(0)),
    st.sampled_from(
        [timedelta(hours=h) for h in (1, 12, 13)] + [timedelta(days=d) for d in (1, 7, 30, 366, 800)]
    ),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=800)),
)


# --- strategies: button data -----------------------------------------------------------------------

PREFIXES = sorted(b.REGISTRY)
KNOWN_CODES = sorted(
    {r.code for r in risk_types.risk_types()}
    | set(intake.RELATIONS)
    | set(intake.EDITABLE)
    | {"QS01", "QS02", "QS03", "BS01", "qs01", "*all", "*next", "all", "X"}
    | set(campaign_chat.RHYTHM_CHOICES)
    | {"yearly", "daily", "a", "z" * 24, "a-b"}
)
IDS = st.one_of(
    st.builds(w.Ref, st.just("conv"), st.integers(-2, 2)),
    st.builds(w.Ref, st.just("notice"), st.integers(-1, 1)),
    st.builds(w.Ref, st.sampled_from(w.ID_NAMES), st.integers(-1, 1)),
    st.integers(1, 15),
    st.integers(1, b.MAX_ID),
)


def field_values(kind: Any) -> st.SearchStrategy[Any]:
    """In-bound values of one button field, as the field's annotation allows."""
    base, bounds = kind, None
    if get_origin(kind) is Annotated:
        base, bounds = get_args(kind)[0], get_args(kind)[1]
    if get_origin(base) is Literal:
        return st.sampled_from(get_args(base))
    if isinstance(base, type) and issubclass(base, enum.Enum):
        return st.sampled_from(list(base))
    if base is int:
        assert isinstance(bounds, b.Range)
        return IDS if (bounds.low, bounds.high) == (1, b.MAX_ID) else st.integers(bounds.low, bounds.high)
    if base is date:
        return st.one_of(
            st.builds(w.Ref, st.just("period"), st.integers(-1, 1)), st.dates(b.FIRST_DAY, b.LAST_DAY)
        )
    assert base is str and isinstance(bounds, b.Pattern), kind
    regex = bounds.regex
    known = [code for code in KNOWN_CODES if re.fullmatch(regex, code)]
    return st.one_of(st.sampled_from(known), st.from_regex(regex, fullmatch=True))


def _plan(cls: type[b.Button]) -> st.SearchStrategy[w.PressPlan]:
    return st.builds(w.PressPlan, st.just(cls), st.tuples(*(field_values(k) for _, k in cls.spec())))


VALID_PRESSES = st.sampled_from([b.REGISTRY[p] for p in PREFIXES]).flatmap(_plan)
MUTATION_TEXTS = st.one_of(
    st.sampled_from([
        ":", "::", "", "-1", "0", "00", "007", "1" * 30, "9" * 30, "2147483647", "2147483648", "-2147483648",
        "１", "٣", "中", "𝟙", " 1", "1 ", "+1", "1e3", "0x1f", "\x00", "\n", "é", "20000101", "20991231",
        "19991231", "21000101", "20260229", "20280229", "99999999", "yes", "no", "self", "family", "*all",
        "*next", "QS01", "zh_Hans", "en", "visit", "not_eligible", "cadres", "now", "later", "illness", "ACK",
        "ack ", *PREFIXES,
    ]),
    st.text(max_size=8),
    st.integers(-(10**30), 10**30).map(str),
)  # fmt: skip
MUTATIONS = st.builds(
    w.Mutation,
    st.sampled_from(["truncate", "insert", "replace", "field", "drop_field", "extra", "prefix", "repeat"]),
    st.integers(0, 80),
    MUTATION_TEXTS,
)
MUTATED_PRESSES = st.builds(
    lambda plan, mutations: w.PressPlan(plan.cls, plan.values, tuple(mutations)),
    VALID_PRESSES,
    st.lists(MUTATIONS, min_size=1, max_size=3),
)
RANDOM_DATA = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=string.ascii_letters + string.digits + ":-_*", max_size=80),
    st.builds(
        lambda p, rest: f"{p}:{rest}",
        st.sampled_from(PREFIXES),
        st.text(alphabet="0123456789:-", max_size=40),
    ),
).map(w.Press)


# --- strategies: what people type -----------------------------------------------------------------

WORDS = sorted(router.BACK_WORDS | router.CANCEL_WORDS | router.MENU_WORDS)
SPECIAL_TEXTS = [
    "9999-12-31", "0001-01-01", "9999-12-31 23:59", "0001-01-01 00:00", "2026-02-29", "2028-02-29", "02-29",
    "2-29", "12-31", "13-01", "00-00", "12月32日", "12月5日", "25:00", "24:00", "23:59", "00:00", "09:00",
    "９：００", "2026/12/01 09:00", "2026-11-23", "2026-11-22", "2026-11-24", "今天", "昨天", "明天", "前天",
    "无", "没有", "-", "none", "0", "-1", "1e309", "nan", "inf", "-0", "１２３", "一万", "三万五千", "十二",
    "两千五百元", "5000元", "99999999999999999999999999999", "4口人", "30", "31", "六", "+8613800000001",
    "13800000001", "138-0000-0001", "(010) 12345678", "+1 202 555 0100", w.VALID_ID, "110105194912310021",
    "李家村", "王家村", "陈家村", "白水村", "QS01", "qs03", "青山", "青山镇", "白水乡", "李家", "因病",
    "因自然灾害", "Illness", "all", "全部", "weekly", "dates", "3;1;0", "0;0;0", "999", "-3", "3;3;3",
    "动员部署 2026-12-05", "动员部署 9999-12-31", "阶段 0001-01-01", "阶段", "a 1", "{", "}", "{name}", "{0}",
    "%s", "$t", "<b>x</b>", "\x00", "\u202e", "\ufeff", "\u200d", "👨‍👩‍👧", "/start", "/cancel", "", " ",
    "\n", "\t", "王大山", "儿媳", "我的申报", *WORDS,
]  # fmt: skip


def _id_number(region: str, born: date, seq: int, valid: bool) -> str:
    body = f"{region}{born:%Y%m%d}{seq:03d}"
    total = sum(int(c) * pow(2, 17 - i, 11) for i, c in enumerate(body))
    check = (12 - total % 11) % 11
    digit = "X" if check == 10 else str(check)
    return body + (digit if valid else str((check + 1) % 10))


FULL_WIDTH = str.maketrans("0123456789:-", "０１２３４５６７８９：－")
DATES = st.dates(date(1, 1, 1), date(9999, 12, 31))
DATE_TEXTS = st.one_of(
    DATES.map(date.isoformat),
    DATES.map(lambda d: f"{d.month}-{d.day}"),
    DATES.map(lambda d: f"{d.year}/{d.month}/{d.day}"),
    DATES.map(lambda d: f"{d.month}月{d.day}日"),
    DATES.map(lambda d: f"{d.year}年{d.month}月{d.day}日"),
    DATES.map(lambda d: f"{d:%Y.%m.%d}"),
    st.builds(lambda d, t: f"{d.isoformat()} {t:%H:%M}", DATES, st.times()),
    st.builds(lambda d, t: f"{d.month:02d}-{d.day:02d} {t:%H:%M}", DATES, st.times()),
    st.times().map(lambda t: f"{t:%H:%M}"),
    st.builds(lambda d: f"动员部署 {d.isoformat()}", DATES),
)
NUMBER_TEXTS = st.one_of(
    st.integers(-(10**40), 10**40).map(str),
    st.integers(0, 10**6).map(lambda n: f"{n}户"),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.text(alphabet="0123456789", min_size=1, max_size=40),
    st.text(alphabet="零〇一二两三四五六七八九十百千万亿元", min_size=1, max_size=12),
)
PHONE_TEXTS = st.one_of(
    st.from_regex(r"\A(\+?86[ -]?)?1[0-9]{2}[ -]?[0-9]{4}[ -]?[0-9]{4}\Z"),
    st.from_regex(r"\A\(?0[0-9]{2,3}\)?[ -]?[0-9]{7,8}\Z"),
    st.text(alphabet="0123456789+-() ", min_size=1, max_size=25),
)
ID_TEXTS = st.one_of(
    st.from_regex(r"\A[0-9]{17}[0-9Xx]\Z"),
    st.builds(
        _id_number,
        st.sampled_from(["110105", "340102", "999999", "000000"]),
        st.dates(date(1800, 1, 1), date(2099, 12, 31)),
        st.integers(0, 999),
        st.booleans(),
    ),
)
ATOMS = st.one_of(
    st.sampled_from(SPECIAL_TEXTS),
    st.text(max_size=60),
    DATE_TEXTS,
    NUMBER_TEXTS,
    PHONE_TEXTS,
    ID_TEXTS,
    st.one_of(NUMBER_TEXTS, DATE_TEXTS, PHONE_TEXTS).map(lambda t: t.translate(FULL_WIDTH)),
)
LONG_TEXTS = st.builds(
    lambda piece, size: (piece * size)[:size], st.text(min_size=1, max_size=30), st.integers(100, 5000)
)
TEXTS = st.one_of(
    ATOMS,
    st.lists(ATOMS, min_size=2, max_size=5).map(" ".join),
    st.lists(ATOMS, min_size=2, max_size=25).map("\n".join),
    LONG_TEXTS,
)
FILE_IDS = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=100),
    st.text(max_size=300),
)
CAPTIONS = st.one_of(st.none(), TEXTS)
MEDIA = st.one_of(
    st.builds(w.Photo, FILE_IDS, CAPTIONS),
    st.builds(w.Voice, FILE_IDS, st.one_of(st.integers(0, 600), st.integers(0, 2**31))),
    st.builds(w.Contact, st.one_of(PHONE_TEXTS, TEXTS), st.booleans()),
    st.builds(w.Other, st.sampled_from(["sticker", "location", "document", "video"]), FILE_IDS, CAPTIONS),
)
PAYLOADS = st.one_of(
    st.builds(w.Ref, st.just("invite"), st.integers(0, 4)),
    st.builds(
        lambda code, until, secret: sign_village(secret, code, until),
        st.sampled_from(["QS01", "QS02", "QS03", "BS01", "XX99", "Z"]),
        st.dates(date(2000, 1, 1), date(9999, 12, 31)),
        st.sampled_from([w.QR_SECRET, b"forged"]),
    ),
    st.text(alphabet=string.ascii_letters + string.digits + "_-", max_size=64).map(lambda t: "i_" + t),
    st.text(alphabet=string.ascii_letters + string.digits + "_-", max_size=64).map(lambda t: "v" + t),
    st.text(max_size=64),
)
ARGS = st.one_of(
    PAYLOADS,
    st.builds(w.Ref, st.just("receipt"), st.integers(0, 9)),
    DATE_TEXTS,
    ATOMS,
)
COMMAND_MESSAGES = st.builds(
    w.Command,
    st.sampled_from([*w.COMMANDS, "foo", "START", "help2"]),
    st.lists(ARGS, max_size=3).map(tuple),
    LANGUAGES,
)
# A walk through the chat: mostly tapping buttons shown (old ones too), with anything else between.
TAPS = st.builds(w.Tap, st.integers(0, 40))
WAITS = st.builds(w.Wait, st.sampled_from([1, 60, 60 * 9, 60 * 24, 60 * 24 * 3, 60 * 24 * 8, 60 * 24 * 40]))
BACKS = st.builds(
    w.Repeat, st.sampled_from([w.PressPlan(b.Back, (w.Ref("conv"),)), w.Text("返回")]), st.integers(1, 12)
)
STEPS = st.one_of(
    TAPS, TAPS, TAPS, BACKS, st.builds(w.Text, ATOMS), MEDIA, COMMAND_MESSAGES, VALID_PRESSES, WAITS
)
WALKS = st.lists(
    st.one_of(STEPS, st.builds(w.As, st.sampled_from(list(w.PEOPLE)), st.one_of(TAPS, STEPS))),
    min_size=1,
    max_size=8,
).map(tuple)


# --- the tests ------------------------------------------------------------------------------------


@budget(SHARES["valid_buttons"])
@given(situation=SITUATIONS, who=SENDERS, plan=VALID_PRESSES, shift=SHIFTS)
def test_valid_buttons(fuzz: Fuzz, situation: Any, who: str, plan: w.PressPlan, shift: timedelta) -> None:
    fuzz("valid button", who, situation, plan, shift)


@budget(SHARES["mutated_buttons"])
@given(situation=SITUATIONS, who=SENDERS, plan=MUTATED_PRESSES)
def test_mutated_buttons(fuzz: Fuzz, situation: Any, who: str, plan: w.PressPlan) -> None:
    fuzz("mutated button", who, situation, plan)


@budget(SHARES["random_data"])
@given(situation=SITUATIONS, who=SENDERS, press=RANDOM_DATA)
def test_random_callback_data(fuzz: Fuzz, situation: Any, who: str, press: w.Press) -> None:
    fuzz("random data", who, situation, press)


@budget(SHARES["text"])
@given(situation=SITUATIONS, who=SENDERS, typed=TEXTS, language=LANGUAGES, shift=SHIFTS)
def test_text_at_every_step(
    fuzz: Fuzz, situation: Any, who: str, typed: str, language: str | None, shift: timedelta
) -> None:
    fuzz("text", who, situation, w.Text(typed, language), shift)


@budget(SHARES["media"])
@given(situation=SITUATIONS, who=SENDERS, message=MEDIA)
def test_media_at_every_step(fuzz: Fuzz, situation: Any, who: str, message: w.Message) -> None:
    fuzz("media", who, situation, message)


@budget(SHARES["commands"])
@given(situation=SITUATIONS, who=SENDERS, command=COMMAND_MESSAGES, shift=SHIFTS)
def test_commands_at_every_step(
    fuzz: Fuzz, situation: Any, who: str, command: w.Command, shift: timedelta
) -> None:
    fuzz("command", who, situation, command, shift)


@budget(SHARES["walks"])
@given(situation=SITUATIONS, who=SENDERS, walk=WALKS, shift=SHIFTS)
def test_walks_through_the_chat(
    fuzz: Fuzz, situation: Any, who: str, walk: tuple[w.Message, ...], shift: timedelta
) -> None:
    fuzz("walk", who, situation, walk, shift)


# --- the fuzzing itself is checked: it covers everything, and it can fail --------------------------


def test_every_button_and_command_is_fuzzed() -> None:
    assert set(ROUTES) == set(b.REGISTRY.values())
    registered = {
        name
        for handler in (
            *telegram.commands(),
            *notifications.commands(),
            *web_links.commands(),
            *console.commands(),
        )
        if isinstance(handler, CommandHandler)
        for name in handler.commands
    }
    assert registered == set(w.COMMANDS)


@pytest.mark.parametrize("failure", ["raises", "logs"])
def test_a_failing_use_case_fails_the_example(
    fuzz: Fuzz, failure: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> bool:
        if failure == "raises":
            raise ZeroDivisionError("inside a use case")
        logging.getLogger("domain.notices").error("a message could not be rendered")
        return False

    monkeypatch.setattr(w.router, "show_help", broken)  # staff typing with nothing open get the help
    monkeypatch.setattr(w, "STATS", w.Stats())
    with pytest.raises((ZeroDivisionError, AssertionError)):
        fuzz("text", "staff", ("staff", "none", {}, 0), w.Text("你好"))
    assert sum(w.STATS.failures.values()) == 1


@pytest.mark.parametrize(
    ("field", "entry"), [(f, ("qr", "plain", "daibao")[n % 3]) for n, f in enumerate(intake.EDITABLE)]
)
def test_back_to_the_start_after_changing_an_answer(fuzz: Fuzz, field: str, entry: str) -> None:
    """At the summary, change one answer to another (other risk types, another village...), then
    Back all the way to the first question: every question on the way can be asked."""
    options = {"entry": entry, "village": "QS01", "risks": ("illness", "disaster"), "risks_after": ("water",),
               "village_after": "QS02", "declarant": "family", "id": True, "photos": 1, "edit": field,
               "submit": False}  # fmt: skip
    who = "cadre_two" if entry == "daibao" else "stranger"
    fuzz("back", who, (who, "intake", options, 99), w.Repeat(w.PressPlan(b.Back, (w.Ref("conv"),)), 30))
