"""The problem ledger (问题台账): cadres add a problem (what, measure, deadline, who answers
for it) and close it (整改销号); the day before, the day of and the day after its deadline the
village's cadres are reminded while it is open; township staff see the ledger."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from domain import buttons as b
from domain.actor import Actor
from domain.dialogue import Kind, Said, Start, Tools, begin
from domain.messages import Action, Outcome, Outgoing, Queued
from domain.model import Conversation, Flow, LedgerItem, LedgerStatus, Role, ScheduledItem
from domain.ports import Clock, UnitOfWork
from domain.reports import morning
from domain.validation import years_after

REMIND_KIND = "ledger-remind"
REMIND_DAYS = (-1, 0, 1)  # relative to the deadline: before, on, overdue
STEPS = ("village", "what", "measure", "deadline", "responsible")
QUESTIONS = {
    "village": "ledger.ask_village",
    "what": "ledger.ask_what",
    "measure": "ledger.ask_measure",
    "deadline": "ledger.ask_deadline",
    "responsible": "ledger.ask_responsible",
}
MAX_TEXT = 500
MAX_RESPONSIBLE = 60
MAX_LISTED = 30
MAX_YEARS_AHEAD = 2  # a later deadline is a typing slip (and 9999-12-31 would overflow the reminders)


def parse_deadline(raw: str, today: date) -> date | None:
    """'2026-12-20', '2026/12/20' or '12-20' (this year, or next once passed)."""
    value = raw.strip().replace("/", "-").replace("月", "-").replace("日", "")
    try:
        return date.fromisoformat(value)
    except ValueError:
        pass
    try:
        month, day = (int(part) for part in value.split("-"))
        found = date(today.year, month, day)
    except ValueError:
        return None
    if found >= today:
        return found
    try:
        return found.replace(year=today.year + 1)
    except ValueError:  # "2-29" once this leap year's has passed: next year has none
        return None


async def start(uow: UnitOfWork, clock: Clock, actor: Actor) -> Outcome:
    """/problem: a cadre begins adding a problem to the ledger."""
    now = clock.now()
    if actor.role is not Role.CADRE or not actor.village_ids:
        await uow.outbox.add(actor.id, Outgoing("ledger.cadres_only"), at=now)
        return Outcome(locale=actor.locale, done=False)
    one = len(actor.village_ids) == 1
    step, data = ("what", {"village": actor.village_ids[0]}) if one else ("village", {})
    conv = await begin(uow, clock, actor, Start(Flow.LEDGER, {}), step, data)
    if conv is not None:
        await uow.outbox.add(actor.id, await ask(uow, clock, conv), at=now)
    return Outcome(locale=actor.locale)


async def ask(uow: UnitOfWork, clock: Clock, conv: Conversation) -> Outgoing:
    """The question the problem being added waits on."""
    if conv.step == "village":
        person = await uow.persons.get(conv.person_id)
        villages = await uow.geography.villages(person.village_ids if person else ())
        buttons = tuple((Action(b.LedgerVillage(conv.id, v.id), label=v.name),) for v in villages)
        return Outgoing(QUESTIONS["village"], actions=buttons)
    return Outgoing(QUESTIONS[conv.step], {"max": MAX_TEXT})


async def choose_village(
    uow: UnitOfWork, clock: Clock, actor: Actor, conv_id: int, village_id: int
) -> Outcome:
    """The village of the problem, one of the cadre's."""
    conv = await uow.conversations.get(actor.id)
    if (
        conv is None
        or conv.id != conv_id
        or conv.flow is not Flow.LEDGER
        or conv.step != "village"
        or village_id not in actor.village_ids
    ):
        return Outcome(toast="ledger.gone", done=False)
    data = {**conv.data, "village": village_id}
    await uow.conversations.update(conv.id, "what", data, clock.now())
    await uow.outbox.add(actor.id, Outgoing(QUESTIONS["what"], {"max": MAX_TEXT}), at=clock.now())
    return Outcome(locale=actor.locale)


async def answer(uow: UnitOfWork, tools: Tools, actor: Actor, conv: Conversation, said: Said) -> None:
    """An answer while adding a problem (typed text only)."""
    clock = tools.clock
    step, data = conv.step, dict(conv.data)
    now = clock.now()
    if said.kind is not Kind.TEXT:
        await uow.outbox.add(actor.id, Outgoing("ledger.text_only"), at=now)
        return
    value = said.text.strip()
    if step == "village":
        await uow.outbox.add(actor.id, Outgoing("ledger.use_buttons"), at=now)
        return
    if step == "deadline":
        deadline = check_deadline(value, now.date())
        if isinstance(deadline, Outgoing):
            await uow.outbox.add(actor.id, deadline, at=now)
            return
        data[step] = deadline.isoformat()
    elif (refused := check_text(step, value)) is not None:
        await uow.outbox.add(actor.id, refused, at=now)
        return
    else:
        data[step] = value
    if step != "responsible":
        following = STEPS[STEPS.index(step) + 1]
        await uow.conversations.update(conv.id, following, data, now)
        await uow.outbox.add(actor.id, Outgoing(QUESTIONS[following], {"max": MAX_TEXT}), at=now)
        return
    await uow.conversations.finish(conv.id)
    deadline = date.fromisoformat(data["deadline"])
    item_id = await _record(
        uow, clock, actor, int(data["village"]), data["what"], data["measure"], deadline, data["responsible"]
    )
    params = {"id": item_id, "what": data["what"], "deadline": deadline.strftime("%Y-%m-%d")}
    await uow.outbox.add(actor.id, Outgoing("ledger.added", params, actions=_close_button(item_id)), at=now)


def check_deadline(raw: str, today: date) -> date | Outgoing:
    """A deadline as typed (see parse_deadline), from today to MAX_YEARS_AHEAD; or why not."""
    deadline = parse_deadline(raw, today)
    if deadline is None or deadline < today:
        return Outgoing("ledger.bad_deadline")
    latest = years_after(today, MAX_YEARS_AHEAD)
    if deadline > latest:
        return Outgoing("ledger.deadline_too_far", {"latest": latest.isoformat()})
    return deadline


def check_text(step: str, value: str) -> Outgoing | None:
    """Why the answer to "what", "measure" or "responsible" is refused (empty, too long), or None."""
    limit = MAX_RESPONSIBLE if step == "responsible" else MAX_TEXT
    if not value or len(value) > limit:
        return Outgoing("ledger.bad_text", {"max": limit})
    return None


async def _record(
    uow: UnitOfWork,
    clock: Clock,
    actor: Actor,
    village_id: int,
    what: str,
    measure: str,
    deadline: date,
    responsible: str,
) -> int:
    """Store a checked item and schedule its reminders (before, on and after its deadline)."""
    now = clock.now()
    item_id = await uow.ledger.add(village_id, actor.id, what, measure, deadline, responsible, now)
    for days in REMIND_DAYS:
        due = max(morning(deadline + timedelta(days=days), now), now)
        await uow.schedule.add(
            f"ledger-remind:{item_id}:{days}", REMIND_KIND, due, {"item": item_id, "days": days}, now
        )
    return item_id


@dataclass(frozen=True)
class Added:
    """An item added at once (the console's form): its id; or why not, by field ("what",
    "measure", "deadline", "responsible"); `foreign` when the village is not the actor's to add to
    (as if it did not exist)."""

    item_id: int | None = None
    problems: dict[str, Outgoing] = field(default_factory=dict)
    foreign: bool = False


async def may_add(uow: UnitOfWork, actor: Actor, village_id: int) -> bool:
    """A cadre adds to their villages' ledger; township staff to any village of their township's."""
    if actor.role is Role.CADRE:
        return village_id in actor.village_ids
    if actor.role is Role.TOWNSHIP and actor.township_id is not None:
        village = await uow.geography.village(village_id)
        return village is not None and village.township_id == actor.township_id
    return False


async def add_item(
    uow: UnitOfWork,
    clock: Clock,
    actor: Actor,
    village_id: int,
    what: str,
    measure: str,
    deadline: str,
    responsible: str,
) -> Added:
    """What the conversation's last answer does, with every answer given at once and checked as
    the chat checks each (the deadline as typed: "2026-12-20" or "12-20")."""
    if not await may_add(uow, actor, village_id):
        return Added(foreign=True)
    answers = {"what": what.strip(), "measure": measure.strip(), "responsible": responsible.strip()}
    problems = {step: refused for step, value in answers.items() if (refused := check_text(step, value))}
    checked = check_deadline(deadline, clock.now().date())
    if isinstance(checked, Outgoing):
        problems["deadline"] = checked
    if problems or isinstance(checked, Outgoing):
        return Added(problems=problems)
    item_id = await _record(
        uow, clock, actor, village_id, answers["what"], answers["measure"], checked, answers["responsible"]
    )
    return Added(item_id)


def _close_button(item_id: int) -> tuple[tuple[Action, ...], ...]:
    return ((Action(b.LedgerClose(item_id), label="ledger.close_button"),),)


def may_close(actor: Actor, item: LedgerItem) -> bool:
    """整改销号 is for a cadre of the item's village."""
    return actor.role is Role.CADRE and item.village_id in actor.village_ids


async def close(uow: UnitOfWork, clock: Clock, actor: Actor, item_id: int) -> Outcome:
    """整改销号: a cadre of the item's village closes it; its reminders stop."""
    item = await uow.ledger.get(item_id)
    if item is None or not may_close(actor, item):
        return Outcome(toast="ledger.not_yours", done=False, locale=actor.locale)
    if not await uow.ledger.close(item_id, actor.id, clock.now()):
        return Outcome(toast="ledger.already_closed", locale=actor.locale)
    return Outcome(toast="ledger.closed", locale=actor.locale)


def _line(item: LedgerItem, today: date) -> str:
    mark = "✅" if item.status is LedgerStatus.CLOSED else ("⚠️" if item.deadline < today else "⏳")
    return f"{mark} #{item.id} {item.village_name}：{item.what}（{item.deadline:%m-%d}，{item.responsible}）"


async def show(uow: UnitOfWork, clock: Clock, actor: Actor) -> None:
    """/problems: a cadre's open items with a 销号 button each; township staff the whole ledger."""
    now = clock.now()
    if actor.role is Role.TOWNSHIP and actor.township_id is not None:
        items = await uow.ledger.of_township(actor.township_id)
        open_items = [i for i in items if i.status is LedgerStatus.OPEN]
        params = {
            "open": len(open_items),
            "overdue": sum(1 for i in open_items if i.deadline < now.date()),
            "closed": len(items) - len(open_items),
            "items": "\n".join(_line(i, now.date()) for i in items[:MAX_LISTED]) or "—",
        }
        await uow.outbox.add(actor.id, Outgoing("ledger.township", params), at=now)
        return
    if actor.role is not Role.CADRE:
        await uow.outbox.add(actor.id, Outgoing("ledger.cadres_only"), at=now)
        return
    items = await uow.ledger.of_villages(actor.village_ids, open_only=True)
    if not items:
        await uow.outbox.add(actor.id, Outgoing("ledger.none_open"), at=now)
    for item in items[:MAX_LISTED]:
        await uow.outbox.add(
            actor.id,
            Outgoing("ledger.item", {"line": _line(item, now.date())}, actions=_close_button(item.id)),
            at=now,
        )


async def remind(uow: UnitOfWork, clock: Clock, item: ScheduledItem) -> list[Queued]:
    """The schedule's handler: remind the village's cadres of an item still open."""
    found = await uow.ledger.get(int(item.payload["item"]))
    if found is None or found.status is not LedgerStatus.OPEN:
        return []
    days = int(item.payload["days"])
    template = {-1: "ledger.due_tomorrow", 0: "ledger.due_today"}.get(days, "ledger.overdue")
    params = {"id": found.id, "what": found.what, "deadline": found.deadline.strftime("%Y-%m-%d")}
    return [
        Queued(
            cadre.id, Outgoing(template, params, actions=_close_button(found.id)), f"{item.key}:{cadre.id}"
        )
        for cadre in await uow.persons.cadres_of_village(found.village_id)
    ]


def export_rows(items: list[LedgerItem]) -> list[list[object]]:
    """The ledger as sheet rows (after a header the caller writes)."""
    return [
        [
            i.id, i.village_name, i.what, i.measure, i.deadline.isoformat(), i.responsible, i.status.value,
            i.created_at.strftime("%Y-%m-%d"), i.closed_at.strftime("%Y-%m-%d") if i.closed_at else "",
        ]
        for i in items
    ]  # fmt: skip
