"""China's official working-day calendar (with 调休), from the chinese-calendar library and the policy."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import chinese_calendar

from domain.policy import Policy


class OfficialCalendar:
    """A `WorkCalendar`: the policy's extra days first, then the library; None past what either knows."""

    def __init__(self, extra_holidays: Iterable[date] = (), extra_workdays: Iterable[date] = ()) -> None:
        self.extra_holidays = frozenset(extra_holidays)
        self.extra_workdays = frozenset(extra_workdays)

    @classmethod
    def for_policy(cls, policy: Policy) -> OfficialCalendar:
        """The calendar with the extra days the policy file lists."""
        return cls(policy.extra_holidays, policy.extra_workdays)

    def is_workday(self, day: date) -> bool | None:
        """Whether `day` is a working day; None for a year the library has no data for."""
        if day in self.extra_workdays:
            return True
        if day in self.extra_holidays:
            return False
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            # The library raises this for years it has no data for (before 2004, after its last release).
            return None
