from dataclasses import replace
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from bot.calendar import OfficialCalendar
from domain.policy import Limit, load_policy
from domain.workdays import due

ZONE = ZoneInfo("Asia/Shanghai")
D = date


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (D(2026, 9, 19), False),  # Sat
        (D(2026, 9, 20), True),  # Sun, make-up working day for National Day
        (D(2026, 9, 25), False),  # Fri, Mid-autumn
        (D(2026, 9, 27), False),  # Sun, Mid-autumn
        (D(2026, 9, 30), True),
        (D(2026, 10, 1), False),
        (D(2026, 10, 7), False),  # Wed, last day of the holiday
        (D(2026, 10, 8), True),
        (D(2026, 10, 10), True),  # Sat, make-up working day
        (D(2026, 10, 11), False),  # Sun
        (D(2026, 12, 31), True),
        (D(2027, 1, 1), None),  # past the library's data
        (D(2003, 6, 2), None),  # before it
    ],
)
def test_official_calendar(day: date, working: bool | None) -> None:
    assert OfficialCalendar().is_workday(day) is working


def test_policy_days_take_precedence_over_the_library() -> None:
    calendar = OfficialCalendar(
        extra_holidays={D(2026, 10, 9), D(2027, 1, 1)}, extra_workdays={D(2026, 10, 5), D(2027, 2, 14)}
    )
    assert calendar.is_workday(D(2026, 10, 9)) is False
    assert calendar.is_workday(D(2026, 10, 5)) is True
    assert calendar.is_workday(D(2027, 1, 1)) is False
    assert calendar.is_workday(D(2027, 2, 14)) is True
    assert calendar.is_workday(D(2027, 1, 4)) is None


def at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=ZONE)


def end_of(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=ZONE)


@pytest.mark.parametrize(
    ("profile", "step", "start", "expected"),
    [
        ("anhui", "acknowledge", D(2026, 9, 30), D(2026, 10, 8)),
        ("anhui", "acknowledge", D(2026, 9, 18), D(2026, 9, 20)),
        ("anhui", "acknowledge", D(2026, 10, 9), D(2026, 10, 10)),
        # 9-15 Tue + 20 working days: 9-20 and 10-10 count, Mid-autumn and National Day do not.
        ("anhui", "whole", D(2026, 9, 15), D(2026, 10, 19)),
        ("gansu", "visit", D(2026, 9, 29), D(2026, 10, 10)),  # 9-30, 10-8, 10-9, 10-10
        ("gansu", "whole", D(2026, 9, 30), D(2026, 10, 15)),  # 15 calendar days
        ("gansu", "public_notice", D(2026, 9, 30), D(2026, 10, 5)),
    ],
)
def test_shipped_profiles_across_national_day(profile: str, step: str, start: date, expected: date) -> None:
    policy = load_policy(profile)
    limit: Limit = getattr(policy, step)
    unknown: list[int] = []
    assert due(at(start), limit, OfficialCalendar.for_policy(policy), unknown.append) == end_of(expected)
    assert unknown == []


@pytest.mark.parametrize(
    ("extra_holidays", "expected"),
    [
        (frozenset(), D(2027, 1, 1)),  # Fri by the weekday fallback
        (frozenset({D(2027, 1, 1)}), D(2027, 1, 4)),  # 元旦 added in the policy
    ],
)
def test_year_end_falls_back_and_tells_once(extra_holidays: frozenset[date], expected: date) -> None:
    policy = replace(load_policy("anhui"), extra_holidays=extra_holidays)
    unknown: list[int] = []
    result = due(at(D(2026, 12, 31)), policy.acknowledge, OfficialCalendar.for_policy(policy), unknown.append)
    assert result == end_of(expected)
    assert unknown == [2027]


def test_whole_procedure_started_in_december_runs_into_2027() -> None:
    policy = load_policy("anhui")
    unknown: list[int] = []
    result = due(at(D(2026, 12, 14)), policy.whole, OfficialCalendar.for_policy(policy), unknown.append)
    # 12-15..12-31 give 13 working days, then 7 weekdays of 2027: 1-1, 1-4..1-8, 1-11.
    assert result == end_of(D(2027, 1, 11))
    assert unknown == [2027]
