from dataclasses import replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.policy import Limit, Policy, load_policy
from domain.workdays import due, is_workday, next_outside_quiet, quiet

ZONE = ZoneInfo("Asia/Shanghai")
D = date


class FakeCalendar:
    """The 2026 official calendar around National Day, as published; nothing known after 2026."""

    def __init__(
        self, holidays: frozenset[date] = frozenset(), workdays: frozenset[date] = frozenset()
    ) -> None:
        self.holidays = {D(2026, 9, 25), D(2026, 9, 26), D(2026, 9, 27)}
        self.holidays |= {D(2026, 10, day) for day in range(1, 8)} | holidays
        self.workdays = {D(2026, 9, 20), D(2026, 10, 10)} | workdays

    def is_workday(self, day: date) -> bool | None:
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        if day.year > 2026:
            return None
        return day.weekday() < 5


def at(day: date, hour: int = 10, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZONE)


def end_of(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=ZONE)


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (D(2026, 9, 30), 1, D(2026, 10, 8)),  # Wed before the holiday: next is Thu after it
        (D(2026, 9, 30), 2, D(2026, 10, 9)),
        (D(2026, 9, 30), 3, D(2026, 10, 10)),  # Sat 10-10 is a make-up working day
        (D(2026, 9, 30), 4, D(2026, 10, 12)),  # Sun 10-11 is not
        (D(2026, 9, 18), 1, D(2026, 9, 20)),  # Fri: Sun 9-20 is a make-up working day
        (D(2026, 9, 24), 1, D(2026, 9, 28)),  # Thu: 9-25..27 are Mid-autumn
        (D(2026, 10, 3), 1, D(2026, 10, 8)),  # submitted during the holiday
        (D(2026, 10, 3), 0, D(2026, 10, 3)),  # no days: the end of the same day
        (D(2026, 10, 9), 1, D(2026, 10, 10)),
        (D(2026, 11, 20), 1, D(2026, 11, 23)),  # an ordinary weekend
    ],
)
def test_working_days_across_national_day(start: date, days: int, expected: date) -> None:
    unknown: list[int] = []
    assert due(at(start), Limit(days, working=True), FakeCalendar(), unknown.append) == end_of(expected)
    assert unknown == []


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (D(2026, 9, 30), 1, D(2026, 10, 1)),  # holidays count as calendar days
        (D(2026, 9, 30), 15, D(2026, 10, 15)),
        (D(2026, 12, 31), 1, D(2027, 1, 1)),
        (D(2026, 12, 20), 15, D(2027, 1, 4)),
        (D(2026, 12, 20), 0, D(2026, 12, 20)),
    ],
)
def test_calendar_days_count_every_day_and_ask_nothing(start: date, days: int, expected: date) -> None:
    unknown: list[int] = []
    assert due(at(start), Limit(days, working=False), FakeCalendar(), unknown.append) == end_of(expected)
    assert unknown == []


@pytest.mark.parametrize(
    ("start", "days", "holidays", "expected", "told"),
    [
        (D(2026, 12, 30), 1, frozenset(), D(2026, 12, 31), []),
        (D(2026, 12, 31), 1, frozenset(), D(2027, 1, 1), [2027]),  # Fri, by the weekday fallback
        (D(2026, 12, 31), 1, frozenset({D(2027, 1, 1)}), D(2027, 1, 4), [2027]),  # skipped, Sat unknown
        (D(2026, 12, 25), 5, frozenset(), D(2027, 1, 1), [2027]),
        (D(2026, 12, 25), 5, frozenset({D(2027, 1, 1)}), D(2027, 1, 4), [2027]),
        (D(2026, 12, 31), 10, frozenset(), D(2027, 1, 14), [2027]),  # told once, not once a day
    ],
)
def test_working_days_across_the_year_end(
    start: date, days: int, holidays: frozenset[date], expected: date, told: list[int]
) -> None:
    unknown: list[int] = []
    calendar = FakeCalendar(holidays=holidays)
    assert due(at(start), Limit(days, working=True), calendar, unknown.append) == end_of(expected)
    assert unknown == told


def test_unknown_days_without_a_listener_still_fall_back() -> None:
    assert due(at(D(2026, 12, 31)), Limit(2, working=True), FakeCalendar()) == end_of(D(2027, 1, 4))


def test_is_workday_tells_each_time_without_a_memory() -> None:
    told: list[int] = []
    assert is_workday(D(2027, 1, 2), FakeCalendar(), None, told.append) is False
    assert is_workday(D(2027, 1, 4), FakeCalendar(), None, told.append) is True
    assert told == [2027, 2027]


def test_due_keeps_the_time_zone_and_naive_stays_naive() -> None:
    utc = datetime(2026, 11, 23, 1, 0, tzinfo=ZoneInfo("UTC"))
    assert due(utc, Limit(1, working=True), FakeCalendar()).tzinfo is utc.tzinfo
    naive = datetime(2026, 11, 23, 1, 0)
    assert due(naive, Limit(1, working=True), FakeCalendar()) == datetime(2026, 11, 24, 23, 59, 59)


def test_a_calendar_without_working_days_is_refused_not_looped() -> None:
    class Never:
        def is_workday(self, day: date) -> bool | None:
            return False

    with pytest.raises(ValueError, match="no working day"):
        due(at(D(2026, 1, 1)), Limit(1, working=True), Never())


starts = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(ZONE)
)


@given(start=starts, days=st.integers(min_value=0, max_value=40), working=st.booleans())
def test_due_is_never_before_start_and_ends_on_a_day_the_limit_allows(
    start: datetime, days: int, working: bool
) -> None:
    calendar = FakeCalendar()
    result = due(start, Limit(days, working), calendar, lambda year: None)
    assert result >= start
    assert result.time() == time(23, 59, 59) and result.tzinfo is start.tzinfo
    between = [start.date() + timedelta(n) for n in range(1, (result.date() - start.date()).days + 1)]
    if not working:
        assert len(between) == days
    else:
        counted = [day for day in between if is_workday(day, calendar)]
        assert len(counted) == days
        if days:
            assert is_workday(result.date(), calendar)


QUIET = load_policy("anhui")  # 22:00-07:00


@pytest.mark.parametrize(
    ("moment", "is_quiet", "next_allowed"),
    [
        (at(D(2026, 11, 23), 21, 59), False, at(D(2026, 11, 23), 21, 59)),
        (at(D(2026, 11, 23), 22, 0), True, at(D(2026, 11, 24), 7)),
        (at(D(2026, 11, 23), 23, 30), True, at(D(2026, 11, 24), 7)),
        (at(D(2026, 12, 31), 23, 30), True, at(D(2027, 1, 1), 7)),  # across the year end
        (at(D(2026, 11, 24), 0, 0), True, at(D(2026, 11, 24), 7)),
        (at(D(2026, 11, 24), 6, 59), True, at(D(2026, 11, 24), 7)),
        (at(D(2026, 11, 24), 7, 0), False, at(D(2026, 11, 24), 7)),
        (at(D(2026, 11, 24), 12, 0), False, at(D(2026, 11, 24), 12)),
    ],
)
def test_quiet_hours_across_midnight(moment: datetime, is_quiet: bool, next_allowed: datetime) -> None:
    assert quiet(moment, QUIET) is is_quiet
    assert next_outside_quiet(moment, QUIET) == next_allowed


def test_quiet_hours_within_one_day() -> None:
    lunch = replace(QUIET, quiet_start=time(12, 0), quiet_end=time(14, 0))
    assert quiet(at(D(2026, 11, 23), 13), lunch)
    assert not quiet(at(D(2026, 11, 23), 23), lunch)
    assert next_outside_quiet(at(D(2026, 11, 23), 13), lunch) == at(D(2026, 11, 23), 14)


def test_equal_start_and_end_means_no_quiet_hours() -> None:
    never = replace(QUIET, quiet_start=time(7, 0), quiet_end=time(7, 0))
    assert not any(quiet(at(D(2026, 11, 23), hour), never) for hour in range(24))


policies = st.tuples(st.times(), st.times()).map(
    lambda se: replace(QUIET, quiet_start=se[0], quiet_end=se[1])
)


@given(moment=starts, policy=policies)
def test_next_outside_quiet_is_not_before_and_not_quiet(moment: datetime, policy: Policy) -> None:
    allowed = next_outside_quiet(moment, policy)
    assert moment <= allowed <= moment + timedelta(days=1)
    assert not quiet(allowed, policy)
