"""The procedure's time limits as the domain asks for them (domain.ports.DeadlineRules):
the policy file's limits counted on China's official calendar."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.calendar import OfficialCalendar
from domain import workdays
from domain.policy import Limit, Policy

log = logging.getLogger(__name__)


class PolicyRules:
    def __init__(self, policy: Policy, calendar: OfficialCalendar | None = None) -> None:
        self.policy = policy
        self.calendar = calendar or OfficialCalendar.for_policy(policy)
        self._unknown: set[int] = set()
        self._told: set[int] = set()

    def _limit(self, step: str) -> Limit:
        limit = getattr(self.policy, step)
        assert isinstance(limit, Limit), step
        return limit

    def _note_unknown(self, year: int) -> None:
        if year not in self._told:
            log.warning("the official calendar does not know %s; deadlines count Monday-Friday", year)
            self._unknown.add(year)
            self._told.add(year)

    def due(self, step: str, start: datetime) -> datetime:
        return workdays.due(start, self._limit(step), self.calendar, on_unknown=self._note_unknown)

    def notice_ends(self, start: datetime) -> datetime:
        # The notice lasts at least its number of whole days: it may end that many days later.
        limit = self.policy.public_notice
        if limit.working:
            return workdays.due(start, limit, self.calendar, on_unknown=self._note_unknown)
        return workdays.shift(start, timedelta(days=limit.days))

    @property
    def remind_before(self) -> timedelta:
        return self.policy.remind_before

    @property
    def escalation(self) -> tuple[tuple[timedelta, str], ...]:
        return tuple((level.after, level.to) for level in self.policy.escalation)

    def quiet(self, moment: datetime) -> bool:
        return workdays.quiet(moment, self.policy)

    def next_outside_quiet(self, moment: datetime) -> datetime:
        return workdays.next_outside_quiet(moment, self.policy)

    def take_unknown_years(self) -> set[int]:
        years, self._unknown = self._unknown, set()
        return years
