"""Defining a campaign in chat (/campaign): the same fields as the campaign file, asked one by one.

The answers are written as the lines of a campaign file and checked by `campaigns.parse`, so a
campaign typed in chat and one imported from a file pass exactly the same rules. The draft lives
in the person's conversation (flow "campaign"), so a restart mid-way loses nothing; every button
carries the conversation's id, so a button from an earlier draft is refused.

    name → villages (buttons) → report rhythm (buttons; dates typed) → phases (typed, one a line:
    "动员部署 2026-12-05") → reminders (button for 3;1;0 or typed) → summary → create
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from domain import buttons as b
from domain import campaigns
from domain.actor import Actor
from domain.dialogue import Kind, Said, Start, Tools, begin
from domain.ledger import parse_deadline
from domain.messages import Action, Outcome, Outgoing, text
from domain.model import Conversation, Flow, Person, Role
from domain.ports import Clock, UnitOfWork
from domain.roster import Problem
from domain.validation import years_after

STEPS = NAME, VILLAGES, RHYTHM, DATES, PHASES, REMINDERS, CONFIRM = (
    "name", "villages", "rhythm", "dates", "phases", "reminders", "confirm",
)  # fmt: skip
MAX_NAME = 100
MAX_PHASES = 20
RHYTHM_LABELS = {
    "half-monthly": "campaign.rhythm_half_monthly",
    "weekly": "campaign.rhythm_weekly",
    "monthly": "campaign.rhythm_monthly",
    "dates": "campaign.rhythm_dates",
}
RHYTHM_CHOICES = tuple(RHYTHM_LABELS)
# "动员部署 2026-12-05", "动员部署，12月5日", "动员部署,2026/12/05": the name, then the date.
_PHASE_LINE = re.compile(r"^(?P<name>.+?)[\s,，、:：]+(?P<date>[0-9][0-9年月日/\-.]*[0-9日])$")


def text_with(key: str, **params: Any) -> dict[str, Any]:
    return {"$t": key, "$with": params}


def _rhythm_label(kind: str) -> dict[str, str]:
    return text(RHYTHM_LABELS[kind])


async def _township_name(uow: UnitOfWork, township_id: int) -> str:
    for township in await uow.geography.townships():
        if township.id == township_id:
            return township.name
    return ""


async def _mine(uow: UnitOfWork, actor: Actor) -> tuple[Person, Conversation] | None:
    conv = await uow.conversations.get(actor.id) if actor else None
    if actor is None or conv is None or conv.flow is not Flow.CAMPAIGN:
        return None
    return actor, conv


async def start(uow: UnitOfWork, clock: Clock, actor: Actor) -> Outcome:
    """/campaign: township staff begin defining a campaign; anyone else is told it is not for them."""
    now = clock.now()
    if actor.role is not Role.TOWNSHIP or actor.township_id is None:
        await uow.outbox.add(actor.id, Outgoing("campaign.chat_not_allowed"), at=now)
        return Outcome(locale=actor.locale, done=False)
    township = await _township_name(uow, actor.township_id)
    data = {"township": township, "township_id": actor.township_id}
    conv = await begin(uow, clock, actor, Start(Flow.CAMPAIGN, {}), NAME, data)
    if conv is not None:
        await uow.outbox.add(actor.id, await ask(uow, clock, conv), at=now)
    return Outcome(locale=actor.locale)


async def _township_of(uow: UnitOfWork, conv: Conversation) -> int:
    """The township the campaign is defined for (the staff member's)."""
    if "township_id" in conv.data:
        return int(conv.data["township_id"])
    person = await uow.persons.get(conv.person_id)
    return person.township_id if person and person.township_id is not None else 0


async def ask(uow: UnitOfWork, clock: Clock, conv: Conversation) -> Outgoing:
    """The question the campaign being defined waits on."""
    data = conv.data
    if conv.step == NAME:
        return Outgoing("campaign.chat_ask_name", {"township": data.get("township", ""), "max": MAX_NAME})
    if conv.step == VILLAGES:
        chosen = set(data.get("villages", []))
        rows: list[tuple[Action, ...]] = []
        villages = await uow.notices.township_villages(await _township_of(uow, conv))
        chosen_label: Any = text("campaign.chat_all")
        if chosen:
            chosen_label = "、".join(v.name for v in villages if v.code in chosen)
        for village in villages:
            mark = "✅ " if village.code in chosen else ""
            rows.append((Action(b.CampaignVillage(conv.id, village.code), label=f"{mark}{village.name}"),))
        rows.append(
            (
                Action(b.CampaignVillage(conv.id, "*all"), label="campaign.chat_all_villages"),
                Action(b.CampaignVillage(conv.id, "*next"), label="campaign.chat_next"),
            )
        )
        return Outgoing("campaign.chat_ask_villages", {"chosen": chosen_label}, actions=tuple(rows))
    if conv.step == RHYTHM:
        choices = tuple(
            (Action(b.CampaignRhythm(conv.id, kind), label=RHYTHM_LABELS[kind]),) for kind in RHYTHM_CHOICES
        )
        return Outgoing("campaign.chat_ask_rhythm", actions=choices)
    if conv.step == DATES:
        return Outgoing("campaign.chat_ask_dates")
    if conv.step == PHASES:
        return Outgoing("campaign.chat_ask_phases")
    if conv.step == REMINDERS:
        default = ((Action(b.CampaignDefaultReminders(conv.id), label="campaign.chat_default_reminders"),),)
        return Outgoing("campaign.chat_ask_reminders", actions=default)
    return await _summary(uow, clock, conv)


async def _move(
    uow: UnitOfWork, clock: Clock, actor: Actor, conv: Conversation, step: str, data: dict[str, Any]
) -> None:
    """Store the answers, go to `step` and ask its question."""
    await uow.conversations.update(conv.id, step, data, clock.now())
    moved = Conversation(conv.id, conv.person_id, conv.flow, step, data, clock.now())
    await uow.outbox.add(actor.id, await ask(uow, clock, moved), at=clock.now())


def _rows(data: dict[str, Any], phase_lines: list[str] | None = None) -> list[tuple[int, list[str]]]:
    """The draft as the lines of a campaign file; phases get their line in the typed message."""
    rows: list[tuple[int, list[str]]] = [
        (0, ["campaign", data["name"]]),
        (0, ["township", data["township"]]),
        (0, ["villages", ";".join(data.get("villages") or ["all"])]),
        (0, ["reports", data.get("rhythm", "half-monthly"), ";".join(data.get("dates", []))]),
    ]
    if "reminders" in data:
        rows.append((0, ["reminders", data["reminders"]]))
    lines = phase_lines if phase_lines is not None else [f"{n} {d}" for n, d in data.get("phases", [])]
    for number, line in enumerate(lines, start=1):
        match = _PHASE_LINE.match(line.strip())
        rows.append((number, ["phase", match["name"], match["date"]] if match else ["phase", line.strip()]))
    return rows


def _problems(problems: list[Problem]) -> Outgoing:
    listed = [
        text_with("campaign.chat_line" if p.line else "campaign.chat_problem", line=p.line,
                  problem=text_with(p.key, **p.params))
        for p in problems
    ]  # fmt: skip
    return Outgoing("campaign.chat_problems", {"problems": {"$lines": listed}})


def _normalise_dates(line: str, today: date) -> str:
    """'动员部署 12月5日' → '动员部署 2026-12-05', so the file's date rule can check it."""
    match = _PHASE_LINE.match(line.strip())
    if not match:
        return line
    found = parse_deadline(match["date"].replace(".", "-"), today)
    return f"{match['name']} {found.isoformat()}" if found else line


async def answer(uow: UnitOfWork, tools: Tools, actor: Actor, conv: Conversation, said: Said) -> None:
    """An answer while defining a campaign (typed text; a photo or file will not do)."""
    clock, person = tools.clock, actor
    now = clock.now()
    if said.kind is not Kind.TEXT:
        await uow.outbox.add(actor.id, Outgoing("campaign.chat_text_only"), at=now)
        return
    data = dict(conv.data)
    value = said.text.strip()
    if conv.step == NAME:
        if (refused := check_name(value)) is not None:
            await uow.outbox.add(person.id, Outgoing(refused.key, refused.params), at=now)
            return
        data["name"] = value
        await _move(uow, clock, actor, conv, VILLAGES, data)
    elif conv.step == DATES:
        dates = read_dates(value, now.date())
        if isinstance(dates, Problem):
            bad = _problems([dates]) if dates.key == "campaign.date_too_far" else Outgoing(dates.key)
            await uow.outbox.add(person.id, bad, at=now)
            return
        data["dates"] = dates
        await _move(uow, clock, actor, conv, PHASES, data)
    elif conv.step == PHASES:
        lines = [_normalise_dates(line, now.date()) for line in value.splitlines() if line.strip()]
        if len(lines) > MAX_PHASES:
            await uow.outbox.add(person.id, Outgoing("campaign.chat_too_many", {"max": MAX_PHASES}), at=now)
            return
        try:
            spec = campaigns.parse(_rows(data, lines), now.date())
        except campaigns.CampaignRejected as exc:
            await uow.outbox.add(person.id, _problems(exc.problems), at=now)
            return
        data["phases"] = [[p.name, p.deadline.isoformat()] for p in spec.phases]
        await _move(uow, clock, actor, conv, REMINDERS, data)
    elif conv.step == REMINDERS:
        candidate = dict(data, reminders=value)
        try:
            campaigns.parse(_rows(candidate), now.date())
        except campaigns.CampaignRejected as exc:
            await uow.outbox.add(person.id, _problems(exc.problems), at=now)
            return
        await _move(uow, clock, actor, conv, CONFIRM, candidate)
    else:  # a step answered with buttons
        await uow.outbox.add(person.id, Outgoing("campaign.chat_use_buttons"), at=now)


def check_name(value: str) -> Problem | None:
    """Why a campaign's name (trimmed) is refused: empty or longer than MAX_NAME; or None."""
    if not value or len(value) > MAX_NAME:
        return Problem(0, "campaign.chat_bad_name", {"max": MAX_NAME})
    return None


def read_dates(value: str, today: date) -> list[str] | Problem:
    """The report dates typed ("2026-12-10；12-25"), as ISO dates in order; or why not."""
    dates = [d for d in re.split(r"[\s;；,，、]+", value) if d]
    normal = [parse_deadline(d.replace(".", "-"), today) for d in dates]
    if not dates or any(d is None for d in normal):
        return Problem(0, "campaign.chat_bad_dates", {})
    latest = years_after(today, campaigns.MAX_YEARS_AHEAD)
    if far := sorted(d for d in normal if d and d > latest):
        params: dict[str, object] = {"date": far[-1].isoformat(), "latest": latest.isoformat()}
        return Problem(0, "campaign.date_too_far", params)
    return sorted({d.isoformat() for d in normal if d})


async def _pressed(
    uow: UnitOfWork, actor: Actor, conv_id: int, step: str
) -> tuple[Person, Conversation] | None:
    mine = await _mine(uow, actor)
    if mine is None or mine[1].id != conv_id or mine[1].step != step:
        return None
    return mine


async def choose_village(uow: UnitOfWork, clock: Clock, actor: Actor, conv_id: int, code: str) -> Outcome:
    """A village button: toggle it; "all" clears the choice (every village); "next" moves on."""
    mine = await _pressed(uow, actor, conv_id, VILLAGES)
    if mine is None:
        return Outcome(toast="campaign.chat_gone", done=False)
    person, conv = mine
    data = dict(conv.data)
    if code == "*next":
        await _move(uow, clock, actor, conv, RHYTHM, data)
        return Outcome(locale=person.locale)
    known = {v.code for v in await uow.notices.township_villages(await _township_of(uow, conv))}
    if code == "*all":
        data["villages"] = []
    elif code in known:
        chosen = set(data.get("villages", []))
        chosen ^= {code}
        data["villages"] = sorted(chosen)
    else:
        return Outcome(toast="campaign.chat_gone", done=False)
    await _move(uow, clock, actor, conv, VILLAGES, data)
    return Outcome(locale=person.locale)


async def choose_rhythm(uow: UnitOfWork, clock: Clock, actor: Actor, conv_id: int, kind: str) -> Outcome:
    mine = await _pressed(uow, actor, conv_id, RHYTHM)
    if mine is None or kind not in RHYTHM_CHOICES:
        return Outcome(toast="campaign.chat_gone", done=False)
    person, conv = mine
    data = dict(conv.data, rhythm=kind)
    await _move(uow, clock, actor, conv, DATES if kind == "dates" else PHASES, data)
    return Outcome(locale=person.locale)


async def default_reminders(uow: UnitOfWork, clock: Clock, actor: Actor, conv_id: int) -> Outcome:
    mine = await _pressed(uow, actor, conv_id, REMINDERS)
    if mine is None:
        return Outcome(toast="campaign.chat_gone", done=False)
    person, conv = mine
    data = dict(conv.data)
    data.pop("reminders", None)
    try:
        # Checked again as a typed answer is: a deadline may have passed since it was given.
        campaigns.parse(_rows(data), clock.now().date())
    except campaigns.CampaignRejected as exc:
        await uow.outbox.add(person.id, _problems(exc.problems), at=clock.now())
        return Outcome(locale=person.locale, done=False)
    await _move(uow, clock, actor, conv, CONFIRM, data)
    return Outcome(locale=person.locale)


async def _summary(uow: UnitOfWork, clock: Clock, conv: Conversation) -> Outgoing:
    data = conv.data
    spec = campaigns.parse(_rows(data), clock.now().date())
    phases = [
        text_with("campaign.chat_phase_line", name=p.name, date=p.deadline.isoformat()) for p in spec.phases
    ]
    names = {v.code: v.name for v in await uow.notices.township_villages(await _township_of(uow, conv))}
    villages: Any = (
        "、".join(names.get(code, code) for code in spec.villages)
        if spec.villages
        else text("campaign.chat_all")
    )
    rhythm: Any = _rhythm_label(spec.reports["kind"])
    if spec.reports["kind"] == "dates":
        rhythm = text_with("campaign.chat_rhythm_dates_list", dates="、".join(spec.reports["dates"]))
    params = {
        "name": spec.name,
        "township": spec.township,
        "villages": villages,
        "rhythm": rhythm,
        "phases": {"$lines": phases},
        "reminders": "、".join(str(o) for o in spec.offsets),
    }
    buttons = (
        (
            Action(b.CampaignConfirm(conv.id, "yes"), label="campaign.chat_create"),
            Action(b.CampaignConfirm(conv.id, "no"), label="campaign.chat_discard"),
        ),
    )
    return Outgoing("campaign.chat_summary", params, actions=buttons)


async def confirm(uow: UnitOfWork, clock: Clock, actor: Actor, conv_id: int, answer: str) -> Outcome:
    """Create the campaign shown in the summary (once, however often pressed), or drop it."""
    mine = await _pressed(uow, actor, conv_id, CONFIRM)
    if mine is None or answer not in ("yes", "no"):
        return Outcome(toast="campaign.chat_gone", done=False)
    person, conv = mine
    now = clock.now()
    if not await uow.conversations.finish(conv.id):
        return Outcome(toast="campaign.chat_gone", done=False)
    if answer == "no":
        await uow.outbox.add(person.id, Outgoing("campaign.chat_cancelled"), at=now)
        return Outcome(locale=person.locale)
    try:
        spec = campaigns.parse(_rows(conv.data), now.date())
        campaign_id = await campaigns.create(uow, clock, spec)
    except campaigns.CampaignRejected as exc:
        # A deadline may have passed, or a village left the roster, since the answer was given.
        await uow.outbox.add(person.id, _problems(exc.problems), at=now)
        await uow.outbox.add(person.id, Outgoing("campaign.chat_start_again"), at=now)
        return Outcome(locale=person.locale)
    await uow.outbox.add(
        person.id,
        Outgoing("campaign.chat_done", {"name": spec.name, "id": campaign_id, "phases": len(spec.phases)}),
        at=now,
    )
    return Outcome(toast="campaign.chat_created", locale=person.locale)


@dataclass(frozen=True)
class Defined:
    """A campaign defined at once (the console's form): its id; or every problem, by field
    ("name", "villages", "rhythm", "dates", "phases", "phase<i>" the i-th phase from 0,
    "reminders"; "" the whole); `foreign` when a village named is none of the township's (as if
    it did not exist: nothing is said of it)."""

    campaign_id: int | None = None
    problems: dict[str, list[Problem]] = field(default_factory=dict)
    foreign: bool = False


# The field of the form a problem of the campaign file's check is about, by its key (a phase's
# problems are by its line).
_FIELDS = {
    "campaign.bad_rhythm": "rhythm",
    "campaign.bad_date": "dates",
    "campaign.date_too_far": "dates",
    "campaign.bad_reminders": "reminders",
    "campaign.unknown_village": "villages",
}
_FILE_FIELDS = {"campaign": "name", "phase": "phases", "reminders": "reminders", "reports": "rhythm"}


def _field_of(problem: Problem) -> str:
    if problem.line:
        return f"phase{problem.line - 1}"
    if problem.key in ("campaign.missing", "campaign.empty_value"):
        return _FILE_FIELDS.get(str(problem.params.get("field")), "")
    return _FIELDS.get(problem.key, "")


async def define(
    uow: UnitOfWork,
    clock: Clock,
    actor: Actor,
    *,
    name: str,
    villages: Sequence[str],
    rhythm: str,
    dates: str,
    phases: Sequence[tuple[str, str]],
    reminders: str,
) -> Defined:
    """What the conversation's confirm does, with every answer given at once: the same lines of a
    campaign file (`_rows`), the same `campaigns.parse` and `campaigns.create`. `villages` are
    codes (none: every village); `phases` (name, deadline) pairs, a deadline as the chat reads
    one; `reminders` as typed ("3;1;0"; empty: the default)."""
    now = clock.now()
    today = now.date()
    if actor.role is not Role.TOWNSHIP or actor.township_id is None:
        return Defined(problems={"": [Problem(0, "campaign.chat_not_allowed", {})]})
    known = {v.code for v in await uow.notices.township_villages(actor.township_id)}
    if any(code not in known for code in villages):
        return Defined(foreign=True)
    problems: dict[str, list[Problem]] = {}
    data: dict[str, Any] = {
        "township": await _township_name(uow, actor.township_id),
        "township_id": actor.township_id,
        "name": name.strip(),
        "villages": sorted(set(villages)),
    }
    if (refused := check_name(data["name"])) is not None:
        problems["name"] = [refused]
    if rhythm not in RHYTHM_CHOICES:
        problems["rhythm"] = [Problem(0, "campaign.bad_rhythm", {"value": rhythm[:20]})]
    data["rhythm"] = rhythm if rhythm in RHYTHM_CHOICES else "half-monthly"
    if rhythm == "dates":
        read = read_dates(dates, today)
        if isinstance(read, Problem):
            problems["dates"] = [read]
        else:
            data["dates"] = read
    if reminders.strip():
        data["reminders"] = reminders.strip()
    lines = [_normalise_dates(f"{n.strip()} {d.strip()}", today) for n, d in phases if n.strip() or d.strip()]
    if len(lines) > MAX_PHASES:
        problems["phases"] = [Problem(0, "campaign.chat_too_many", {"max": MAX_PHASES})]
        lines = lines[:MAX_PHASES]
    checked = set(problems)  # a field refused already: the file's check would only repeat it
    try:
        spec = campaigns.parse(_rows(data, lines), today)
    except campaigns.CampaignRejected as exc:
        for problem in exc.problems:
            if (where := _field_of(problem)) not in checked:
                problems.setdefault(where, []).append(problem)
        return Defined(problems=problems)
    if problems:
        return Defined(problems=problems)
    try:
        return Defined(await campaigns.create(uow, clock, spec))
    except campaigns.CampaignRejected as exc:
        for problem in exc.problems:
            problems.setdefault(_field_of(problem), []).append(problem)
        return Defined(problems=problems)
