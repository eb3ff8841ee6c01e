"""The procedure's time limits as the domain asks for them (domain.ports.DeadlineRules)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

DEFAULT_LIMITS = {"acknowledge": 1, "visit": 2, "feedback": 5, "whole": 20, "public_notice": 5}


def _end_of_day(moment: datetime) -> datetime:
    return moment.replace(hour=23, minute=59, second=59, microsecond=0)


class CalendarDayRules:
    """Limits counted in calendar days, ending at the end of the day."""

    def __init__(
        self,
        limits: dict[str, int] | None = None,
        *,
        remind_before: timedelta = timedelta(hours=24),
        escalation: tuple[tuple[timedelta, str], ...] = (
            (timedelta(0), "owner"),
            (timedelta(hours=24), "township"),
        ),
        quiet_start: time = time(22, 0),
        quiet_end: time = time(7, 0),
    ) -> None:
        self.limits = {**DEFAULT_LIMITS, **(limits or {})}
        self._remind_before = remind_before
        self._escalation = escalation
        self.quiet_start = quiet_start
        self.quiet_end = quiet_end

    def due(self, step: str, start: datetime) -> datetime:
        return _end_of_day(start + timedelta(days=self.limits[step]))

    def notice_ends(self, start: datetime) -> datetime:
        return start + timedelta(days=self.limits["public_notice"])

    @property
    def remind_before(self) -> timedelta:
        return self._remind_before

    @property
    def escalation(self) -> tuple[tuple[timedelta, str], ...]:
        return self._escalation

    def quiet(self, moment: datetime) -> bool:
        now = moment.time()
        return now >= self.quiet_start or now < self.quiet_end

    def next_outside_quiet(self, moment: datetime) -> datetime:
        if not self.quiet(moment):
            return moment
        morning = moment.replace(
            hour=self.quiet_end.hour, minute=self.quiet_end.minute, second=0, microsecond=0
        )
        return morning if moment.time() < self.quiet_end else morning + timedelta(days=1)

    def take_unknown_years(self) -> set[int]:
        return set()
