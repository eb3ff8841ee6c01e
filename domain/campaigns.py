"""Campaigns: phases with deadlines over a township's villages, and the reminders they bring.

A campaign comes from a file the township keeps (`python -m bot campaign import FILE`, CSV or
.xlsx, one setting a line) or, later, a conversation. Each phase deadline gets reminders at set
offsets before it (3 days, 1 day, the morning of, by default) to the cadres of every village
that has not yet reported the phase done; a village that has is not reminded again.

    campaign,2026年大走访大排查大整改        (活动)
    township,青山镇                          (乡镇)
    villages,QS01;QS02 — or all               (村; 全部)
    reports,half-monthly                     (报告: half-monthly 半月, weekly 每周, monthly 每月,
                                               or dates 2026-12-10;2026-12-25)
    reminders,3;1;0                          (提醒: days before each deadline)
    phase,动员部署,2026-12-05                 (阶段: name, deadline; in order)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from domain import buttons as b
from domain import reports
from domain.actor import Actor
from domain.messages import Action, Outcome, Outgoing, Queued, day
from domain.model import Role, ScheduledItem, Village
from domain.ports import Clock, UnitOfWork
from domain.roster import SEPARATORS, Problem
from domain.validation import years_after

REMIND_KIND = "campaign-remind"
DEFAULT_OFFSETS = (3, 1, 0)
MORNING = time(8, 0)
FIELDS = {
    "campaign": "campaign", "活动": "campaign", "name": "campaign",
    "township": "township", "乡镇": "township",
    "villages": "villages", "村": "villages",
    "reports": "reports", "报告": "reports",
    "reminders": "reminders", "提醒": "reminders",
    "phase": "phase", "阶段": "phase",
}  # fmt: skip
RHYTHMS = {
    "half-monthly": "half-monthly", "半月": "half-monthly", "每半月": "half-monthly",
    "weekly": "weekly", "每周": "weekly",
    "monthly": "monthly", "每月": "monthly",
    "dates": "dates", "日期": "dates",
}  # fmt: skip
ALL = {"all", "全部"}
# A campaign runs for months; a later day is a typing slip, and would schedule a report every half
# month until then (9999-12-31 overflows the calendar arithmetic).
MAX_YEARS_AHEAD = 2


class CampaignRejected(Exception):
    """The file has errors; nothing was written."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


@dataclass(frozen=True)
class PhaseSpec:
    line: int
    name: str
    deadline: date


@dataclass
class CampaignSpec:
    name: str = ""
    township: str = ""
    villages: tuple[str, ...] = ()  # codes; empty: every village of the township
    village_lines: dict[str, int] = field(default_factory=dict)
    reports: dict[str, Any] = field(default_factory=lambda: {"kind": "half-monthly"})
    offsets: tuple[int, ...] = DEFAULT_OFFSETS
    phases: list[PhaseSpec] = field(default_factory=list)
    township_line: int = 0


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip().replace("/", "-"))
    except ValueError:
        return None


def parse(rows: Iterable[tuple[int, list[str]]], today: date) -> CampaignSpec:
    """Check a campaign file; raise `CampaignRejected` with every problem and its line."""
    spec = CampaignSpec()
    problems: list[Problem] = []
    latest = years_after(today, MAX_YEARS_AHEAD)

    def too_far(line: int, day: date) -> Problem:
        return Problem(line, "campaign.date_too_far", {"date": day.isoformat(), "latest": latest.isoformat()})

    for line, cells in rows:
        cells = [c.strip() for c in cells]
        if not cells or not cells[0] or cells[0].startswith("#"):
            continue
        name = FIELDS.get(cells[0].lstrip("\ufeff").lower())
        values = [c for c in cells[1:] if c]
        if name is None:
            problems.append(Problem(line, "campaign.unknown_field", {"field": cells[0]}))
        elif not values:
            problems.append(Problem(line, "campaign.empty_value", {"field": cells[0]}))
        elif name == "campaign":
            spec.name = values[0][:100]
        elif name == "township":
            spec.township, spec.township_line = values[0], line
        elif name == "villages":
            codes = [c.strip() for c in SEPARATORS.split(";".join(values)) if c.strip()]
            if not any(c.lower() in ALL for c in codes):
                spec.villages = tuple(codes)
                spec.village_lines = {code: line for code in codes}
        elif name == "reports":
            rhythm = RHYTHMS.get(values[0].lower())
            dates = [_date(d) for d in SEPARATORS.split(";".join(values[1:])) if d.strip()]
            if rhythm is None:
                problems.append(Problem(line, "campaign.bad_rhythm", {"value": values[0]}))
            elif rhythm == "dates":
                if not dates or any(d is None for d in dates):
                    problems.append(Problem(line, "campaign.bad_date", {"value": ";".join(values[1:])}))
                else:
                    spec.reports = {"kind": rhythm, "dates": sorted(d.isoformat() for d in dates if d)}
                    problems += [too_far(line, d) for d in dates if d and d > latest]
            else:
                spec.reports = {"kind": rhythm}
        elif name == "reminders":
            try:
                offsets = tuple(sorted({int(v) for v in SEPARATORS.split(";".join(values))}, reverse=True))
            except ValueError:
                problems.append(Problem(line, "campaign.bad_reminders", {"value": ";".join(values)}))
            else:
                if any(o < 0 or o > 60 for o in offsets):
                    problems.append(Problem(line, "campaign.bad_reminders", {"value": ";".join(values)}))
                spec.offsets = offsets
        else:  # phase
            deadline = _date(values[1]) if len(values) > 1 else None
            if deadline is None:
                problems.append(
                    Problem(line, "campaign.bad_date", {"value": values[1] if len(values) > 1 else ""})
                )
                continue
            if deadline < today:
                problems.append(Problem(line, "campaign.deadline_past", {"date": deadline.isoformat()}))
            elif deadline > latest:
                problems.append(too_far(line, deadline))
            if spec.phases and deadline <= spec.phases[-1].deadline:
                problems.append(
                    Problem(
                        line,
                        "campaign.phase_order",
                        {"phase": values[0], "previous": spec.phases[-1].name},
                    )
                )
            spec.phases.append(PhaseSpec(line, values[0][:100], deadline))
    if not spec.name:
        problems.append(Problem(0, "campaign.missing", {"field": "campaign"}))
    if not spec.township:
        problems.append(Problem(0, "campaign.missing", {"field": "township"}))
    if not spec.phases:
        problems.append(Problem(0, "campaign.missing", {"field": "phase"}))
    if problems:
        raise CampaignRejected(problems)
    return spec


def remind_at(deadline: date, offset: int, now: datetime) -> datetime:
    """The morning `offset` days before `deadline`, in the service's time zone."""
    return datetime.combine(deadline - timedelta(days=offset), MORNING, tzinfo=now.tzinfo)


async def create(uow: UnitOfWork, clock: Clock, spec: CampaignSpec) -> int:
    """Store a checked campaign and schedule its reminders; raise CampaignRejected for names the
    database does not know (township, villages). Returns the campaign id."""
    now = clock.now()
    township = await uow.geography.township_by_name(spec.township)
    if township is None:
        raise CampaignRejected(
            [Problem(spec.township_line, "campaign.unknown_township", {"name": spec.township})]
        )
    known = {v.code: v for v in await uow.notices.township_villages(township.id)}
    unknown = [code for code in spec.villages if code not in known]
    if unknown:
        raise CampaignRejected(
            [
                Problem(spec.village_lines[code], "campaign.unknown_village", {"code": code})
                for code in unknown
            ]
        )
    villages = [known[code] for code in spec.villages] if spec.villages else list(known.values())
    campaign_id = await uow.campaigns.add(township.id, spec.name, spec.reports, [v.id for v in villages], now)
    for seq, phase in enumerate(spec.phases, start=1):
        phase_id = await uow.campaigns.add_phase(campaign_id, seq, phase.name, phase.deadline)
        for offset in spec.offsets:
            due = remind_at(phase.deadline, offset, now)
            if due > now:
                await uow.schedule.add(
                    f"campaign-remind:{phase_id}:{offset}",
                    REMIND_KIND,
                    due,
                    {"phase": phase_id, "offset": offset},
                    now,
                )
    await reports.schedule_requests(uow, clock, campaign_id, spec.reports, spec.phases[-1].deadline)
    await _tell_cadres(uow, campaign_id, spec, villages, now)
    return campaign_id


async def _tell_cadres(
    uow: UnitOfWork, campaign_id: int, spec: CampaignSpec, villages: list[Village], now: datetime
) -> None:
    """Each cadre of the campaign's villages hears of it once (however many of their villages it
    takes in): its name, their villages in it, its phases and its first deadline."""
    theirs: dict[int, list[str]] = {}
    for village in villages:
        cadres = await uow.persons.cadres_of_village(village.id)
        reachable = await uow.persons.reachable([c.id for c in cadres])
        for cadre in cadres:
            if cadre.id in reachable:
                theirs.setdefault(cadre.id, []).append(village.name)
    phases = [
        {"$t": "campaign.created_phase", "$with": {"phase": p.name, "deadline": day(p.deadline.isoformat())}}
        for p in spec.phases
    ]
    for cadre_id, names in theirs.items():
        params = {
            "campaign": spec.name,
            "villages": {"$join": names},
            "phases": {"$lines": phases},
            "deadline": day(spec.phases[0].deadline.isoformat()),
        }
        key = f"campaign-new:{campaign_id}:{cadre_id}"
        await uow.outbox.add(cadre_id, Outgoing("campaign.created", params), key=key, at=now)


async def remind(uow: UnitOfWork, clock: Clock, item: ScheduledItem) -> list[Queued]:
    """The schedule's handler: remind the cadres of each village that has not done the phase."""
    phase = await uow.campaigns.phase(int(item.payload["phase"]))
    if phase is None:
        return []
    offset = int(item.payload["offset"])
    days = (phase.deadline - clock.now().date()).days
    queued: list[Queued] = []
    for village in await uow.campaigns.villages_not_done(phase.id):
        actions = ((Action(b.PhaseDone(phase.id, village.id), label="campaign.done_button"),),)
        params = {
            "campaign": phase.campaign_name,
            "phase": phase.name,
            "deadline": phase.deadline.strftime("%m-%d"),
            "days": max(days, 0),
            "village": village.name,
        }
        template = "campaign.reminder_today" if days <= 0 else "campaign.reminder"
        for cadre in await uow.persons.cadres_of_village(village.id):
            queued.append(
                Queued(
                    cadre.id,
                    Outgoing(template, params, actions=actions),
                    f"campaign-remind:{phase.id}:{offset}:{village.id}:{cadre.id}",
                )
            )
    return queued


async def mark_done(uow: UnitOfWork, clock: Clock, actor: Actor, phase_id: int, village_id: int) -> Outcome:
    """A cadre reports that their village has finished a phase: its reminders stop."""
    if actor.role is not Role.CADRE or village_id not in actor.village_ids:
        return Outcome(toast="campaign.not_yours", done=False, locale=actor.locale)
    phase = await uow.campaigns.phase(phase_id)
    if phase is None or village_id not in {v.id for v in await uow.campaigns.villages_of(phase.campaign_id)}:
        return Outcome(toast="campaign.not_yours", done=False, locale=actor.locale)
    if not await uow.campaigns.mark_done(phase_id, village_id, actor.id, clock.now()):
        return Outcome(toast="campaign.already_done", locale=actor.locale)
    return Outcome(toast="campaign.marked_done", locale=actor.locale)
