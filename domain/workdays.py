"""Due times counted in working or calendar days, and the quiet hours when nobody is reminded."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Protocol

from domain.policy import Limit, Policy

END_OF_DAY = time(23, 59, 59)
# The last and first days that survive a move to any UTC offset (stored times are UTC).
LAST_DAY = date.max - timedelta(days=1)
FIRST_DAY = date.min + timedelta(days=1)
# A calendar with no working day in a whole year is broken; stop rather than loop for ever.
MAX_DAYS_OFF_IN_A_ROW = 366


class WorkCalendar(Protocol):
    def is_workday(self, day: date) -> bool | None:
        """Whether `day` is a working day; None when this calendar does not know that day."""
        ...


def due(
    start: datetime,
    limit: Limit,
    calendar: WorkCalendar,
    on_unknown: Callable[[int], None] | None = None,
) -> datetime:
    """The end (23:59:59, in start's tzinfo) of the last day `limit` allows after `start`.

    Counting begins the day after start's date, as "within 2 working days" is usually read: for
    calendar days the end of the day `limit.days` after start's date; for working days the end of
    the Nth working day after it (0 days: the end of start's own day). Where the calendar answers
    None, Monday to Friday count as working days and `on_unknown(year)` is called once per year.
    """
    day = start.date()
    if not limit.working:
        return _end_of(add_days(day, limit.days), start)
    reported: set[int] = set()
    remaining = limit.days
    off_in_a_row = 0
    while remaining > 0 and day < LAST_DAY:
        day += timedelta(days=1)
        if is_workday(day, calendar, reported, on_unknown):
            remaining -= 1
            off_in_a_row = 0
        else:
            off_in_a_row += 1
            if off_in_a_row > MAX_DAYS_OFF_IN_A_ROW:
                raise ValueError(f"the calendar has no working day for a year after {start.date()}")
    return _end_of(day, start)


def is_workday(
    day: date,
    calendar: WorkCalendar,
    reported: set[int] | None = None,
    on_unknown: Callable[[int], None] | None = None,
) -> bool:
    """Whether `day` is a working day, falling back to Monday-Friday where `calendar` does not know."""
    known = calendar.is_workday(day)
    if known is not None:
        return known
    if on_unknown is not None and (reported is None or day.year not in reported):
        if reported is not None:
            reported.add(day.year)
        on_unknown(day.year)
    return day.weekday() < 5


def _end_of(day: date, start: datetime) -> datetime:
    return datetime.combine(min(max(day, FIRST_DAY), LAST_DAY), END_OF_DAY, tzinfo=start.tzinfo)


def add_days(day: date, days: int) -> date:
    """`day` + `days`, held between FIRST_DAY and LAST_DAY rather than overflowing."""
    try:
        return min(max(day + timedelta(days=days), FIRST_DAY), LAST_DAY)
    except OverflowError:
        return LAST_DAY if days > 0 else FIRST_DAY


def shift(moment: datetime, delta: timedelta) -> datetime:
    """`moment` + `delta`, held within FIRST_DAY and LAST_DAY (in moment's zone) rather than overflowing."""
    last = datetime.combine(LAST_DAY, END_OF_DAY, tzinfo=moment.tzinfo)
    first = datetime.combine(FIRST_DAY, time(0), tzinfo=moment.tzinfo)
    try:
        moved = moment + delta
    except OverflowError:
        return last if delta > timedelta(0) else first
    return min(max(moved, first), last)


def quiet(moment: datetime, policy: Policy) -> bool:
    """Whether `moment` (wall time in the service's zone) falls in the policy's quiet hours."""
    start, end, now = policy.quiet_start, policy.quiet_end, moment.time()
    if start == end:
        return False  # an empty window: the policy wants no quiet hours
    if start < end:
        return start <= now < end
    return now >= start or now < end  # the window crosses midnight


def next_outside_quiet(moment: datetime, policy: Policy) -> datetime:
    """`moment` itself when not quiet, else the end of the quiet hours it falls in."""
    if not quiet(moment, policy):
        return moment
    day = moment.date()
    if policy.quiet_start > policy.quiet_end and moment.time() >= policy.quiet_start:
        day = add_days(day, 1)  # the evening part of a window that ends tomorrow morning
    return datetime.combine(day, policy.quiet_end, tzinfo=moment.tzinfo)
