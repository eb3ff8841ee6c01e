"""Progress reports: asked of each village on the campaign's rhythm, answered in chat, compiled.

Each period has a due date. Two days before it the cadres of every village that has not yet
reported are asked (with a button that starts the questions); on the due date those still
missing are reminded. The answers (households visited, new risks found, problems found and
closed, free text) are asked one by one, the draft kept in the database.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from domain import buttons as b
from domain.actor import Actor
from domain.dialogue import Kind, Said, Start, Tools, begin
from domain.messages import Action, Outcome, Outgoing, Queued
from domain.model import (
    Campaign,
    Conversation,
    Flow,
    Report,
    ReportDraft,
    ReportStep,
    Role,
    ScheduledItem,
)
from domain.ports import Clock, UnitOfWork

REQUEST_KIND = "report-request"
REMIND_KIND = "report-remind"
ASK_DAYS_BEFORE = 2
MAX_NUMBER = 100_000
MAX_NOTE = 500


STEPS = list(ReportStep)
ANSWERS = {step.value for step in ReportStep}
QUESTIONS = {
    ReportStep.VISITED: "report.ask_visited",
    ReportStep.NEW_RISKS: "report.ask_new_risks",
    ReportStep.FOUND: "report.ask_found",
    ReportStep.CLOSED: "report.ask_closed",
    ReportStep.NOTE: "report.ask_note",
}


def periods(reports: dict[str, Any], start: date, end: date) -> list[date]:
    """The due dates of the reports from `start` to `end` (the last deadline)."""
    kind = reports.get("kind", "half-monthly")
    if kind == "dates":
        return sorted(d for d in (date.fromisoformat(x) for x in reports.get("dates", [])) if start <= d)
    found: list[date] = []
    if kind == "weekly":
        day = start + timedelta(days=(4 - start.weekday()) % 7)  # Fridays
        while day <= end:
            found.append(day)
            day += timedelta(days=7)
        return found
    year, month = start.year, start.month
    while date(year, month, 1) <= end:
        last = date(year, month, calendar.monthrange(year, month)[1])
        candidates = [last] if kind == "monthly" else [date(year, month, 15), last]
        found += [d for d in candidates if start <= d <= end]
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


def morning(day: date, now: datetime) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=now.tzinfo).replace(hour=8)


def asked_at(period: date, created: datetime) -> datetime:
    """When the request of `period` goes out: the morning ASK_DAYS_BEFORE days before it, or at
    once for a campaign created after that (`created` in the service's time zone)."""
    return max(morning(period - timedelta(days=ASK_DAYS_BEFORE), created), created)


async def schedule_requests(
    uow: UnitOfWork, clock: Clock, campaign_id: int, reports: dict[str, Any], end: date
) -> int:
    """Schedule the request and the reminder of every period of a campaign; returns the periods."""
    now = clock.now()
    due_dates = periods(reports, now.date(), end)
    for day in due_dates:
        payload = {"campaign": campaign_id, "period": day.isoformat()}
        ask = asked_at(day, now)
        await uow.schedule.add(f"report-request:{campaign_id}:{day}", REQUEST_KIND, ask, payload, now)
        await uow.schedule.add(
            f"report-remind:{campaign_id}:{day}", REMIND_KIND, morning(day, now), payload, now
        )
    return len(due_dates)


async def _ask_missing(uow: UnitOfWork, item: ScheduledItem, template: str, prefix: str) -> list[Queued]:
    campaign_id = int(item.payload["campaign"])
    period = date.fromisoformat(item.payload["period"])
    campaign = await uow.campaigns.get(campaign_id)
    if campaign is None:
        return []
    done = {r.village_id for r in await uow.campaigns.reports(campaign_id, period)}
    queued: list[Queued] = []
    for village in await uow.campaigns.villages_of(campaign_id):
        if village.id in done:
            continue
        arg = f"{campaign_id}:{period:%Y%m%d}:{village.id}"
        actions = ((Action(b.FillReport(campaign_id, period, village.id), label="report.fill_button"),),)
        params = {"campaign": campaign.name, "village": village.name, "period": period.strftime("%m-%d")}
        for cadre in await uow.persons.cadres_of_village(village.id):
            queued.append(
                Queued(cadre.id, Outgoing(template, params, actions=actions), f"{prefix}:{arg}:{cadre.id}")
            )
    return queued


async def request(uow: UnitOfWork, clock: Clock, item: ScheduledItem) -> list[Queued]:
    """The schedule's handler: ask each village that has not reported for the period."""
    return await _ask_missing(uow, item, "report.request", "report-request")


async def remind(uow: UnitOfWork, clock: Clock, item: ScheduledItem) -> list[Queued]:
    """The schedule's handler on the due date: remind the villages still missing."""
    return await _ask_missing(uow, item, "report.reminder", "report-remind")


async def start(
    uow: UnitOfWork, clock: Clock, actor: Actor, campaign_id: int, period: date, village_id: int
) -> Outcome:
    """The 填报 button: begin the questions of the village's report."""
    if actor.role is not Role.CADRE or village_id not in actor.village_ids:
        return Outcome(toast="report.not_yours", done=False, locale=actor.locale)
    village = await uow.geography.village(village_id)
    campaign = await uow.campaigns.get(campaign_id)
    if village is None or campaign is None:
        return Outcome(toast="report.not_yours", done=False, locale=actor.locale)
    # The button names the campaign, period and village; only one of the campaign's own villages
    # may report, and only for one of its report periods (never another township's campaign).
    in_campaign = {v.id for v in await uow.campaigns.villages_of(campaign.id)}
    due = periods(campaign.reports, campaign.created_at.date(), campaign.end)
    if village_id not in in_campaign or period not in due:
        return Outcome(toast="report.not_yours", done=False, locale=actor.locale)
    subject = {"campaign_id": campaign_id, "period": period.isoformat(), "village_id": village_id}
    conv = await begin(uow, clock, actor, Start(Flow.REPORT, subject), ReportStep.VISITED.value, subject)
    if conv is not None:
        now = clock.now()
        await uow.outbox.add(
            actor.id,
            Outgoing("report.start", {"village": village.name, "period": period.strftime("%m-%d")}),
            at=now,
        )
        await uow.outbox.add(actor.id, await ask(uow, clock, conv), at=now)
    return Outcome(done=False, locale=actor.locale)  # the button stays, to start again


async def ask(uow: UnitOfWork, clock: Clock, conv: Conversation) -> Outgoing:
    """The question the report waits on."""
    return Outgoing(QUESTIONS[ReportStep(conv.step)], {"max": MAX_NOTE})


def _draft(conv: Conversation) -> ReportDraft:
    data = conv.data
    return ReportDraft(
        conv.person_id,
        int(data["campaign_id"]),
        date.fromisoformat(str(data["period"])),
        int(data["village_id"]),
        ReportStep(conv.step),
        {k: v for k, v in data.items() if k in ANSWERS},
    )


def number(raw: str) -> int | None:
    """A count typed by a cadre: digits (full-width too), at most MAX_NUMBER."""
    text = raw.strip().removesuffix("户").removesuffix("个").removesuffix("条").strip()
    if not text.isdigit():
        return None
    value = int(text)
    return value if value <= MAX_NUMBER else None


async def answer(uow: UnitOfWork, tools: Tools, actor: Actor, conv: Conversation, said: Said) -> None:
    """An answer to the report's question; anything but typed text: numbers are wanted."""
    clock = tools.clock
    now = clock.now()
    draft = _draft(conv)
    if said.kind is not Kind.TEXT:
        await uow.outbox.add(actor.id, Outgoing("report.need_number", {"max": MAX_NUMBER}), at=now)
        await uow.outbox.add(actor.id, await ask(uow, clock, conv), at=now)
        return
    data = dict(draft.data)
    if draft.step is ReportStep.NOTE:
        note = said.text.strip()
        if len(note) > MAX_NOTE:
            await uow.outbox.add(actor.id, Outgoing("report.note_too_long", {"max": MAX_NOTE}), at=now)
            return
        data["note"] = "" if note in ("无", "没有", "-", "none") else note
        await uow.conversations.finish(conv.id)
        await uow.campaigns.save_report(draft, data, now)
        village = await uow.geography.village(draft.village_id)
        await uow.outbox.add(
            actor.id,
            Outgoing(
                "report.saved",
                {
                    "village": village.name if village else "",
                    "visited": data["visited"],
                    "new_risks": data["new_risks"],
                    "found": data["problems_found"],
                    "closed": data["problems_closed"],
                },
            ),
            at=now,
        )
        return
    value = number(said.text)
    if value is None:
        await uow.outbox.add(actor.id, Outgoing("report.need_number", {"max": MAX_NUMBER}), at=now)
        await uow.outbox.add(actor.id, await ask(uow, clock, conv), at=now)
        return
    if draft.step is ReportStep.CLOSED and value > int(data.get("problems_found", 0)):
        await uow.outbox.add(actor.id, Outgoing("report.closed_too_many"), at=now)
        await uow.outbox.add(actor.id, await ask(uow, clock, conv), at=now)
        return
    following = STEPS[STEPS.index(draft.step) + 1]
    moved = {**conv.data, draft.step.value: value}
    await uow.conversations.update(conv.id, following.value, moved, now)
    await uow.outbox.add(actor.id, Outgoing(QUESTIONS[following], {"max": MAX_NOTE}), at=now)


@dataclass(frozen=True)
class Compiled:
    campaign: str
    period: date | None  # the latest period asked of the villages; None before the first request
    rows: list[tuple[str, Report | None]]  # (village name, its report or None)
    first: tuple[date, datetime] | None = None  # before any request: the first period, when asked
    asked: tuple[date, ...] = ()  # every period asked so far, in order (the latest is `period`)


async def compile_latest(uow: UnitOfWork, township_id: int, now: datetime) -> Compiled | None:
    """The newest campaign of a township, its latest requested period, village by village (a
    period not asked yet is nobody's missing report)."""
    campaign = await uow.campaigns.latest(township_id)
    if campaign is None:
        return None
    return await compile_campaign(uow, campaign, now)


async def compile_campaign(uow: UnitOfWork, campaign: Campaign, now: datetime) -> Compiled:
    """A campaign's latest requested period, village by village (see compile_latest)."""
    created = campaign.created_at.astimezone(now.tzinfo)
    due = periods(campaign.reports, created.date(), campaign.end)
    asked = [d for d in due if asked_at(d, created) <= now]
    if not asked:
        first = (due[0], asked_at(due[0], created)) if due else None
        return Compiled(campaign.name, None, [], first)
    period = asked[-1]
    reports = {r.village_id: r for r in await uow.campaigns.reports(campaign.id, period)}
    villages = await uow.campaigns.villages_of(campaign.id)
    rows = [(v.name, reports.get(v.id)) for v in villages]
    return Compiled(campaign.name, period, rows, asked=tuple(asked))


async def show(uow: UnitOfWork, clock: Clock, actor: Actor) -> None:
    """/report: the compiled table of the latest period, village by village (staff only)."""
    now = clock.now()
    if actor.role is not Role.TOWNSHIP or actor.township_id is None:
        await uow.outbox.add(actor.id, Outgoing("report.staff_only"), at=now)
        return
    compiled = await compile_latest(uow, actor.township_id, now)
    if compiled is not None and compiled.period is None and compiled.first is not None:
        period, when = compiled.first
        first = {
            "campaign": compiled.campaign,
            "period": period.strftime("%m-%d"),
            "asked": when.astimezone(now.tzinfo).strftime("%m-%d %H:%M"),
        }
        await uow.outbox.add(actor.id, Outgoing("report.none_asked", first), at=now)
        return
    if compiled is None or compiled.period is None:
        await uow.outbox.add(actor.id, Outgoing("report.no_campaign"), at=now)
        return
    lines = []
    for name, report in compiled.rows:
        if report is None:
            lines.append(f"{name}：—")
        else:
            counts = (report.visited, report.new_risks, report.problems_found, report.problems_closed)
            lines.append(f"{name}：" + " / ".join(str(c) for c in counts))
    done = sum(1 for _, r in compiled.rows if r is not None)
    params = {
        "campaign": compiled.campaign,
        "period": compiled.period.strftime("%m-%d"),
        "rows": "\n".join(lines),
        "done": done,
        "total": len(compiled.rows),
    }
    await uow.outbox.add(actor.id, Outgoing("report.table", params), at=now)


@dataclass(frozen=True)
class Export:
    campaign: str
    villages: list[tuple[int, str, str]]  # (id, code, name)
    reports: list[Report]


async def export(uow: UnitOfWork, township_id: int) -> Export | None:
    """Every report of the township's newest campaign, for a sheet."""
    campaign = await uow.campaigns.latest(township_id)
    if campaign is None:
        return None
    villages = [(v.id, v.code, v.name) for v in await uow.campaigns.villages_of(campaign.id)]
    return Export(campaign.name, villages, await uow.campaigns.reports(campaign.id))


async def export_for(uow: UnitOfWork, clock: Clock, actor: Actor) -> Export | None:
    """The export a staff member may see (their township's), or None."""
    if actor is None or actor.role is not Role.TOWNSHIP or actor.township_id is None:
        return None
    return await export(uow, actor.township_id)
