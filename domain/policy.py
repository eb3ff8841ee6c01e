"""The time limits of the procedure, read from a policy file, because they differ by province and year."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

UNITS = {"working": True, "calendar": False}
ESCALATE_TO = ("owner", "township")
STEPS = ("acknowledge", "visit", "feedback", "public_notice", "whole")
# 村内公示 lasts at least 5 days in every plan we have; a file may lengthen it, never shorten it.
MIN_PUBLIC_NOTICE_DAYS = 5
MAX_DAYS = 366
MAX_HOURS = 366 * 24
DEFAULT_QUIET_START = time(22, 0)
DEFAULT_QUIET_END = time(7, 0)
SHIPPED = ("anhui", "gansu")

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Limit:
    days: int
    working: bool  # True: working days on the official calendar; False: calendar days


@dataclass(frozen=True)
class EscalationLevel:
    after: timedelta  # how long after the due time
    to: str  # "owner" (预警 to the person responsible) or "township" (up to township staff)


@dataclass(frozen=True)
class Policy:
    name: str
    acknowledge: Limit  # submitted -> acknowledged (签收)
    visit: Limit  # acknowledged -> home visit recorded (入户核实)
    feedback: Limit  # visit -> verdict fed back to the household
    public_notice: Limit  # minimum length of 村内公示
    whole: Limit  # submission -> entered (the whole identification)
    remind_before: timedelta  # the owner is reminded this long before a due time
    escalation: tuple[EscalationLevel, ...]  # ordered by `after`
    quiet_start: time
    quiet_end: time
    extra_holidays: frozenset[date]  # days off the calendar library does not know
    extra_workdays: frozenset[date]  # make-up working days (调休) the calendar library does not know


class PolicyError(ValueError):
    """A policy file was refused; `line` is the 1-based line at fault, or None when there is none."""

    def __init__(self, message: str, *, line: int | None = None, source: str = "<policy>") -> None:
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")
        self.message = message
        self.line = line
        self.source = source


def load_policy(name_or_path: str) -> Policy:
    """A shipped profile by name ("anhui", "gansu"), or the policy file at a path."""
    if name_or_path in SHIPPED:
        source = f"{name_or_path}.toml"
        text = resources.files("domain").joinpath(f"data/policies/{source}").read_text("utf-8")
        return parse_policy(text, source)
    path = Path(name_or_path)
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        shipped = ", ".join(SHIPPED)
        raise PolicyError(
            f"cannot read the policy file ({exc.__class__.__name__}); shipped profiles are: {shipped}",
            source=name_or_path,
        ) from exc
    return parse_policy(text, name_or_path)


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Check and read a policy file; raise `PolicyError` naming the first line that is wrong."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_from_message(str(exc))
        raise PolicyError(f"not valid TOML: {exc}", line=line, source=source) from exc
    return _Reader(_Locator(text), source).policy(raw)


def _line_from_message(message: str) -> int | None:
    """The line tomllib names in its message; older Pythons give no `lineno` attribute."""
    found = re.search(r"line (\d+)", message)
    return int(found.group(1)) if found else None


def dotted(path: KeyPath) -> str:
    """A key path as people read it: limits.visit.days, escalation[2].to (levels counted from 1)."""
    out = ""
    for part in path:
        out += f"[{part + 1}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


class _Reader:
    """Turns the parsed TOML into a `Policy`, refusing anything unexpected."""

    def __init__(self, locator: _Locator, source: str) -> None:
        self.locator = locator
        self.source = source

    def fail(self, path: KeyPath, message: str, *, value: str | None = None) -> PolicyError:
        line = self.locator.line(path, value)
        return PolicyError(f"{dotted(path)} {message}", line=line, source=self.source)

    def table(self, raw: Mapping[str, Any], path: KeyPath, allowed: tuple[str, ...]) -> Mapping[str, Any]:
        """`raw` after refusing keys it should not have, in the order they appear in the file."""
        unknown = [key for key in raw if key not in allowed]
        if unknown:
            first = min(unknown, key=lambda key: self.locator.line((*path, key)) or 0)
            raise self.fail((*path, first), f"is not a known key (expected one of: {', '.join(allowed)})")
        return raw

    def required(self, raw: Mapping[str, Any], path: KeyPath, key: str) -> Any:
        if key not in raw:
            line = self.locator.line(path) if path else None
            where = dotted((*path, key))
            raise PolicyError(f"{where} is missing", line=line, source=self.source)
        return raw[key]

    def section(self, raw: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
        """The required top-level table `key`, checked for unknown keys."""
        return self.table(self.sub_table(self.required(raw, (), key), (key,)), (key,), allowed)

    def sub_table(self, raw: object, path: KeyPath) -> Mapping[str, Any]:
        if not isinstance(raw, dict):
            raise self.fail(path, "must be a table")
        return raw

    def whole_number(self, value: object, path: KeyPath, what: str) -> int:
        # bool is an int in Python; `days = true` is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"must be a whole number of {what}")
        if value < 0:
            raise self.fail(path, "must not be negative")
        # A time limit longer than a year is a typing slip, and a huge one overflows the date arithmetic.
        most = MAX_HOURS if what == "hours" else MAX_DAYS
        if value > most:
            raise self.fail(path, f"must be at most {most} {what}")
        return value

    def policy(self, raw: dict[str, Any]) -> Policy:
        self.table(raw, (), ("name", "limits", "reminders", "escalation", "quiet_hours", "calendar"))
        name = self.required(raw, (), "name")
        if not isinstance(name, str) or not name.strip():
            raise self.fail(("name",), "must be a non-empty string")
        limits = self.section(raw, "limits", STEPS)
        read = {
            step: self.limit(self.required(limits, ("limits",), step), ("limits", step)) for step in STEPS
        }
        notice = read["public_notice"]
        if notice.days < MIN_PUBLIC_NOTICE_DAYS:
            raise self.fail(
                ("limits", "public_notice", "days"), f"must be at least {MIN_PUBLIC_NOTICE_DAYS} (村内公示)"
            )
        reminders = self.section(raw, "reminders", ("before_hours",))
        before = self.whole_number(
            self.required(reminders, ("reminders",), "before_hours"), ("reminders", "before_hours"), "hours"
        )
        escalation = self.escalation(self.required(raw, (), "escalation"))
        quiet_start, quiet_end = self.quiet_hours(raw.get("quiet_hours", {}))
        holidays, workdays = self.calendar(raw.get("calendar", {}))
        return Policy(
            name=name.strip(),
            acknowledge=read["acknowledge"],
            visit=read["visit"],
            feedback=read["feedback"],
            public_notice=notice,
            whole=read["whole"],
            remind_before=timedelta(hours=before),
            escalation=escalation,
            quiet_start=quiet_start,
            quiet_end=quiet_end,
            extra_holidays=holidays,
            extra_workdays=workdays,
        )

    def limit(self, raw: object, path: KeyPath) -> Limit:
        entry = self.table(self.sub_table(raw, path), path, ("days", "unit"))
        days = self.whole_number(self.required(entry, path, "days"), (*path, "days"), "days")
        unit = self.required(entry, path, "unit")
        if unit not in UNITS:
            raise self.fail((*path, "unit"), 'must be "working" or "calendar"')
        return Limit(days=days, working=UNITS[unit])

    def escalation(self, raw: object) -> tuple[EscalationLevel, ...]:
        if not isinstance(raw, list) or not raw:
            raise self.fail(("escalation",), "must list at least one [[escalation]] level")
        levels: list[EscalationLevel] = []
        for index, item in enumerate(raw):
            path: KeyPath = ("escalation", index)
            entry = self.table(self.sub_table(item, path), path, ("after_hours", "to"))
            hours = self.whole_number(
                self.required(entry, path, "after_hours"), (*path, "after_hours"), "hours"
            )
            to = self.required(entry, path, "to")
            if to not in ESCALATE_TO:
                raise self.fail((*path, "to"), 'must be "owner" or "township"')
            level = EscalationLevel(after=timedelta(hours=hours), to=to)
            if levels and level.after < levels[-1].after:
                raise self.fail((*path, "after_hours"), "must not come before the level above it")
            levels.append(level)
        return tuple(levels)

    def quiet_hours(self, raw: object) -> tuple[time, time]:
        path: KeyPath = ("quiet_hours",)
        entry = self.table(self.sub_table(raw, path), path, ("start", "end"))
        start = self.clock_time(entry.get("start", DEFAULT_QUIET_START), (*path, "start"))
        end = self.clock_time(entry.get("end", DEFAULT_QUIET_END), (*path, "end"))
        return start, end

    def clock_time(self, value: object, path: KeyPath) -> time:
        if isinstance(value, time):
            return value
        if isinstance(value, str) and (found := re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())):
            hours, minutes = int(found.group(1)), int(found.group(2))
            if hours < 24 and minutes < 60:
                return time(hours, minutes)
        raise self.fail(path, 'must be a time of day like "22:00"')

    def calendar(self, raw: object) -> tuple[frozenset[date], frozenset[date]]:
        path: KeyPath = ("calendar",)
        entry = self.table(self.sub_table(raw, path), path, ("extra_holidays", "extra_workdays"))
        holidays = self.dates(entry.get("extra_holidays", []), (*path, "extra_holidays"))
        workdays = self.dates(entry.get("extra_workdays", []), (*path, "extra_workdays"))
        if both := sorted(holidays & workdays):
            day = both[0].isoformat()
            raise self.fail((*path, "extra_workdays"), f"lists {day}, also in extra_holidays", value=day)
        return frozenset(holidays), frozenset(workdays)

    def dates(self, raw: object, path: KeyPath) -> set[date]:
        if not isinstance(raw, list):
            raise self.fail(path, "must be a list of dates like 2027-01-01")
        found: set[date] = set()
        for value in raw:
            found.add(self.one_date(value, path))
        return found

    def one_date(self, value: object, path: KeyPath) -> date:
        # A TOML datetime is also a date in Python; a holiday has no time of day.
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        # date.fromisoformat alone would also take 20270101 and week dates; people write 2027-01-01.
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                pass
        raise self.fail(path, f"has {value!r}, not a date like 2027-01-01", value=_literal(value))


def _literal(value: object) -> str:
    """How `value` most likely appears in the file, to find its line."""
    if isinstance(value, datetime | date):
        return value.isoformat().replace("T", " ")[:10]
    return str(value)


_KEY = r'(?:[A-Za-z0-9_-]+|"[^"]*"|\'[^\']*\')'
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_ARRAY_HEADER = re.compile(rf"^\s*\[\[\s*({_DOTTED})\s*\]\]")
_HEADER = re.compile(rf"^\s*\[\s*({_DOTTED})\s*\]")
_ASSIGN = re.compile(rf"^\s*({_DOTTED})\s*=")
_INLINE_KEY = re.compile(rf"[{{,]\s*({_KEY})\s*=")


def _split(keys: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in re.findall(_KEY, keys))


class _Locator:
    """Finds the line a key path was written on; tomllib keeps no positions, so the text is scanned."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.where: dict[KeyPath, int] = {}
        counts: dict[tuple[str, ...], int] = {}
        table: KeyPath = ()
        for number, line in enumerate(self.lines, start=1):
            if line.lstrip().startswith("#"):
                continue
            if found := _ARRAY_HEADER.match(line):
                name = _split(found.group(1))
                index = counts.get(name, 0)
                counts[name] = index + 1
                table = (*name, index)
                self.remember(table, number)
            elif found := _HEADER.match(line):
                table = _split(found.group(1))
                self.remember(table, number)
            elif found := _ASSIGN.match(line):
                key = (*table, *_split(found.group(1)))
                self.remember(key, number)
                # Keys of an inline table on the same line: visit = { days = 2, unit = "working" }
                for inner in _INLINE_KEY.finditer(line, found.end()):
                    self.remember((*key, *_split(inner.group(1))), number)

    def remember(self, path: KeyPath, number: int) -> None:
        self.where.setdefault(path, number)

    def line(self, path: KeyPath, value: str | None = None) -> int | None:
        """The line of `path`, or of the nearest enclosing key found; with `value`, the line showing it."""
        for end in range(len(path), 0, -1):
            if (number := self.where.get(path[:end])) is not None:
                return self.line_showing(number, value) if value else number
        return None

    def line_showing(self, start: int, value: str) -> int:
        """The first line from `start` that shows `value`, for lists spread over several lines."""
        for number in range(start, len(self.lines) + 1):
            text = self.lines[number - 1].split("#", 1)[0]
            if number > start and (_ASSIGN.match(text) or _HEADER.match(text)):
                break
            if value in text:
                return number
            if number > start and "]" in text:
                break
        return start
