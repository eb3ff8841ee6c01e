"""The console's overview: where the cases of a person's villages stand.

Every figure is counted by the database (`uow.overview`) over the person's villages only (a
cadre's own, the township's, the county's townships'); nothing outside them is read. Days and
weeks are the service's (the clock's time zone, Asia/Shanghai), never the machine's. Time to
签收 is judged against the policy's limit (`rules.due("acknowledge", ...)`), case by case.
"""

from __future__ import annotations

import enum
import statistics
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from domain import risk_types
from domain.model import AcknowledgeTime, DeclarationStatus, Person, Village
from domain.office.scope import villages_of
from domain.policy import STEPS
from domain.ports import Clock, DeadlineRules, UnitOfWork

PERIOD_DAYS = 30  # declarations per day and time to acknowledge: the last 30 days, today included
# Time to 签收 is shown in these spans: the upper bounds, in hours (the last span has none).
ACK_SPANS = (4, 24, 48, 96, 168)


class Part(enum.StrEnum):
    """What the overview counts; a chart asks only for its own."""

    STATES = "states"
    WEEK = "week"
    OVERDUE = "overdue"
    RISKS = "risks"
    DAILY = "daily"
    ACKNOWLEDGE = "acknowledge"
    SCANS = "scans"


@dataclass(frozen=True)
class VillageOverdue:
    village: Village
    by_step: tuple[tuple[str, int], ...]  # (step, cases), in the procedure's order; zero left out
    total: int


@dataclass(frozen=True)
class AckSpan:
    """Declarations acknowledged after between `low` and `high` hours (None: more than `low`)."""

    low: int
    high: int | None
    in_time: int
    late: int


@dataclass(frozen=True)
class Acknowledging:
    """签收 of the period's declarations against the policy's limit."""

    spans: tuple[AckSpan, ...]
    in_time: int
    late: int
    waiting: int  # not acknowledged yet, still within the limit
    waiting_late: int  # not acknowledged yet and past the limit
    median_hours: float | None  # of those acknowledged
    due_if_declared_now: datetime  # the limit, as it stands for a declaration made now


@dataclass(frozen=True)
class FlyerScans:
    village: Village
    batch: str  # "" for flyers printed without a batch id
    web: int
    telegram: int


@dataclass(frozen=True)
class Overview:
    villages: tuple[Village, ...]  # the person's scope
    now: datetime
    week_start: date  # Monday of the service's week
    period_start: date  # the first of the PERIOD_DAYS days
    states: tuple[tuple[DeclarationStatus, int], ...] = ()  # the procedure's order; zero left out
    new_this_week: int = 0
    overdue_by_step: tuple[tuple[str, int], ...] = ()
    overdue_by_village: tuple[VillageOverdue, ...] = ()  # the most overdue first
    risks: tuple[tuple[str, int], ...] = ()  # the risk list's order; zero left out
    daily: tuple[tuple[date, int], ...] = ()  # every day of the period, zero included
    acknowledging: Acknowledging | None = None
    scans: tuple[FlyerScans, ...] = ()

    @property
    def open_cases(self) -> int:
        return sum(n for status, n in self.states if status.open)

    @property
    def overdue(self) -> int:
        return sum(n for _, n in self.overdue_by_step)


def _midnight(day: date, now: datetime) -> datetime:
    """The start of `day` in the service's time zone (the clock's)."""
    return datetime.combine(day, time(0), tzinfo=now.tzinfo)


async def overview(
    uow: UnitOfWork,
    clock: Clock,
    rules: DeadlineRules,
    actor: Person,
    parts: Collection[Part] = tuple(Part),
) -> Overview:
    """The figures of the overview over the actor's villages (all of them, or only `parts`)."""
    now = clock.now()
    today = now.date()
    villages = tuple(await villages_of(uow, actor))
    ids = tuple(v.id for v in villages)
    tomorrow = _midnight(today + timedelta(days=1), now)
    week_start = today - timedelta(days=today.weekday())
    period = [today - timedelta(days=n) for n in range(PERIOD_DAYS - 1, -1, -1)]
    views = uow.overview
    states: tuple[tuple[DeclarationStatus, int], ...] = ()
    if Part.STATES in parts:
        by_state = await views.by_state(ids)
        states = tuple((s, by_state[s]) for s in DeclarationStatus if by_state.get(s))
    week = 0
    if Part.WEEK in parts:
        (week,) = await views.declared(ids, [_midnight(week_start, now), tomorrow])
    by_step: tuple[tuple[str, int], ...] = ()
    by_village: tuple[VillageOverdue, ...] = ()
    if Part.OVERDUE in parts:
        by_step, by_village = await _overdue(uow, villages, now)
    risks: tuple[tuple[str, int], ...] = ()
    if Part.RISKS in parts:
        by_risk = await views.by_risk(ids)
        order = [r.code for r in risk_types.risk_types()]
        codes = [c for c in order if c in by_risk] + sorted(set(by_risk) - set(order))
        risks = tuple((c, by_risk[c]) for c in codes if by_risk[c])
    daily: tuple[tuple[date, int], ...] = ()
    if Part.DAILY in parts:
        counts = await views.declared(ids, [_midnight(d, now) for d in period] + [tomorrow])
        daily = tuple(zip(period, counts, strict=True))
    acknowledging = None
    if Part.ACKNOWLEDGE in parts:
        times = await views.acknowledge_times(ids, _midnight(period[0], now), tomorrow)
        acknowledging = _acknowledging(times, rules, now)
    scans: tuple[FlyerScans, ...] = ()
    if Part.SCANS in parts:
        by_code = {v.code: v for v in villages}
        scans = tuple(
            FlyerScans(by_code[s.village_code], s.batch, s.web, s.telegram)
            for s in sorted(await views.scans(tuple(by_code)), key=lambda s: (s.village_code, s.batch))
            if s.village_code in by_code
        )
    return Overview(
        villages, now, week_start, period[0], states=states, new_this_week=week,
        overdue_by_step=by_step, overdue_by_village=by_village, risks=risks, daily=daily,
        acknowledging=acknowledging, scans=scans,
    )  # fmt: skip


async def _overdue(
    uow: UnitOfWork, villages: tuple[Village, ...], now: datetime
) -> tuple[tuple[tuple[str, int], ...], tuple[VillageOverdue, ...]]:
    """Overdue cases by step and by village (the most overdue first)."""
    counted = await uow.overview.overdue(tuple(v.id for v in villages), now)
    order = {step: i for i, step in enumerate(STEPS)}
    by_step: dict[str, int] = {}
    by_village: dict[int, dict[str, int]] = {}
    for row in counted:
        by_step[row.step] = by_step.get(row.step, 0) + row.count
        village = by_village.setdefault(row.village_id, {})
        village[row.step] = village.get(row.step, 0) + row.count
    steps = sorted(by_step, key=lambda s: (order.get(s, len(order)), s))
    rows = []
    for v in villages:
        late = by_village.get(v.id)
        if late:
            rows.append(
                VillageOverdue(v, tuple((s, late[s]) for s in steps if s in late), sum(late.values()))
            )
    most_first = sorted(rows, key=lambda r: (-r.total, r.village.code))
    return tuple((s, by_step[s]) for s in steps), tuple(most_first)


def _acknowledging(times: list[AcknowledgeTime], rules: DeadlineRules, now: datetime) -> Acknowledging:
    due_of = _due_by_day(rules, now)
    spans = {low: [0, 0] for low in (0, *ACK_SPANS)}
    waiting = waiting_late = 0
    hours: list[float] = []
    for case in times:
        due = due_of(case.created_at)
        if case.acknowledged_at is None:
            if case.status is DeclarationStatus.SUBMITTED:  # (one withdrawn first waits for nobody)
                waiting_late += now > due
                waiting += now <= due
            continue
        taken = (case.acknowledged_at - case.created_at).total_seconds() / 3600
        hours.append(taken)
        low = max((b for b in ACK_SPANS if taken >= b), default=0)
        spans[low][0 if case.acknowledged_at <= due else 1] += 1
    bounds = zip((0, *ACK_SPANS), (*ACK_SPANS, None), strict=True)
    return Acknowledging(
        spans=tuple(AckSpan(low, high, *spans[low]) for low, high in bounds),
        in_time=sum(s[0] for s in spans.values()),
        late=sum(s[1] for s in spans.values()),
        waiting=waiting,
        waiting_late=waiting_late,
        median_hours=round(statistics.median(hours), 1) if hours else None,
        due_if_declared_now=rules.due("acknowledge", now),
    )


def _due_by_day(rules: DeadlineRules, now: datetime) -> Callable[[datetime], datetime]:
    """When 签收 of a declaration made at a time is due. The policy's limits end at the end of a
    day (domain.workdays.due), so one answer serves every declaration of the same local day."""
    known: dict[date, datetime] = {}

    def due(created: datetime) -> datetime:
        local = created.astimezone(now.tzinfo)
        if local.date() not in known:
            known[local.date()] = rules.due("acknowledge", local)
        return known[local.date()]

    return due
