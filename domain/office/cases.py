"""The console's cases: the list (the person's scope, filters, sorting, pages of 50), one case
(every answer, its files, its history, what the person may do next), and the web's steps, which
call the chat's own use cases.

Nothing outside a person's scope is found: not in the list, not by its receipt (the same None as
a receipt that does not exist). Every value from a query string or a form is bounded and checked
here before it reaches a repository; what is not understood is ignored.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from domain import buttons as b
from domain import risk_types, validation
from domain.actor import CHAT, Actor
from domain.cases.access import is_handler, is_township_of, may_see, records_county_step, refusal_of
from domain.cases.actions import step_actions
from domain.cases.handover import colleagues, hand_over
from domain.cases.moves import allowed
from domain.cases.steps import acknowledge, choose_verdict, reject, simple_step
from domain.cases.visit import record_visit
from domain.intake.draft import Draft, Voice, summary_params
from domain.messages import Outcome
from domain.model import (
    UPLOAD_REF,
    Attachment,
    AttachmentKind,
    CaseEvent,
    Declaration,
    DeclarationStatus,
    Role,
    Task,
    TaskStatus,
    Verdict,
    Village,
)
from domain.office.scope import villages_of
from domain.ports import CaseQuery, Clock, DeadlineRules, Protector, UnitOfWork, Unreadable
from domain.procedure import Party

PAGE_SIZE = 50
MAX_PAGE = 100_000  # more pages than any scope has; a larger number is not a page number
SORTS = ("date", "due", "state", "village")
FIRST_WAY = {"date": "desc", "due": "asc", "state": "asc", "village": "asc"}  # a sort's usual way
CAME_BY = ("chat", "web")
MAX_SEARCH = 30  # characters of a search: a receipt has 14 digits, a name at most 30 characters
MAX_RECEIPT = 20
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)
_CODE = re.compile(r"[A-Za-z0-9]{1,16}")
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_ID = re.compile(r"[1-9][0-9]{0,11}")
YES = ("1", "on", "yes", "true")


# --- the list ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """What the list was asked for, checked: "" (or None, False) is "any"."""

    village: str = ""  # a village code
    state: str = ""  # a DeclarationStatus value
    risk: str = ""  # a risk type's code
    overdue: bool = False
    came_by: str = ""  # "chat" or "web" (the web form)
    filed: str = ""  # "daibao" (filed by any cadre), "self" (by the household), or a cadre's id
    since: date | None = None
    until: date | None = None
    q: str = ""  # a receipt number (or its first digits), or part of a name
    sort: str = "date"
    way: str = "desc"  # "asc" or "desc"
    page: int = 1

    def params(self, **changes: Any) -> dict[str, str]:
        """The query string that asks for these filters (with `changes`), without the defaults."""
        shown = replace(self, **changes)
        out: dict[str, str] = {}
        for name in ("village", "state", "risk", "came_by", "filed", "q"):
            if getattr(shown, name):
                out[name] = getattr(shown, name)
        if shown.overdue:
            out["overdue"] = "1"
        for name in ("since", "until"):
            if getattr(shown, name) is not None:
                out[name] = getattr(shown, name).isoformat()
        if shown.sort != "date" or shown.way != FIRST_WAY["date"]:
            out["sort"], out["way"] = shown.sort, shown.way
        if shown.page != 1:
            out["page"] = str(shown.page)
        return out


def _raw(query: Mapping[str, str], name: str, limit: int = 40) -> str:
    """A query string's value, cut to `limit` characters (nothing longer is a value of ours)."""
    value = query.get(name, "")
    return value[:limit].strip() if isinstance(value, str) else ""


def _day(raw: str) -> date | None:
    if not _ISO_DAY.fullmatch(raw):
        return None
    try:
        found = date.fromisoformat(raw)
    except ValueError:
        return None
    return found if EARLIEST <= found <= LATEST else None


def _search(raw: str) -> str:
    """Printable characters of a search, NFKC-normalised, spaces folded, at most MAX_SEARCH."""
    text = unicodedata.normalize("NFKC", raw[: MAX_SEARCH * 2])
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] not in "C")
    return " ".join(text.split())[:MAX_SEARCH]


def read_filters(query: Mapping[str, str]) -> Filters:
    """The list's filters from a query string: each bounded and checked; anything else ignored."""
    # Each value is cut one character past the longest it can be, so that a longer one is refused.
    village = _raw(query, "village", 17)
    state = _raw(query, "state", 21)
    risk = _raw(query, "risk", 33)
    came_by = _raw(query, "came_by", 5)
    filed = _raw(query, "filed", 13)
    sort = _raw(query, "sort", 8)
    sort = sort if sort in SORTS else "date"
    way = _raw(query, "way", 5)
    page = _raw(query, "page", 12)
    return Filters(
        village=village if _CODE.fullmatch(village) else "",
        state=state if state in {s.value for s in DeclarationStatus} else "",
        risk=risk if risk_types.by_code(risk) is not None else "",
        overdue=_raw(query, "overdue", 5).lower() in YES,
        came_by=came_by if came_by in CAME_BY else "",
        filed=filed if filed in ("daibao", "self") or _ID.fullmatch(filed) else "",
        since=_day(_raw(query, "since", 11)),
        until=_day(_raw(query, "until", 11)),
        q=_search(_raw(query, "q", MAX_SEARCH * 2)),
        sort=sort,
        way=way if way in ("asc", "desc") else FIRST_WAY[sort],
        page=min(int(page), MAX_PAGE) if page.isdigit() and int(page) >= 1 else 1,
    )


@dataclass(frozen=True)
class CaseLine:
    """A case as a line of the list."""

    receipt: str
    village: str
    name: str
    state: DeclarationStatus
    risks: tuple[str, ...]
    submitted: datetime  # in the service's zone
    due: datetime | None  # in the service's zone; None when nothing is due
    overdue: bool
    by_chat: bool  # False: the web form
    daibao: bool
    filer: str | None
    owner: str | None
    green: bool


@dataclass(frozen=True)
class CaseList:
    """A page of the list, with what its filters can choose from."""

    lines: list[CaseLine]
    total: int
    exact: bool  # False: at least `total` (there are more pages than `pages`)
    filters: Filters  # as applied (a value outside the person's scope is dropped)
    pages: int
    villages: list[Village]  # the person's scope
    filers: list[tuple[int, str]]  # the cadres who filed cases of the scope (代报)


def _local(moment: datetime, now: datetime) -> datetime:
    return moment.astimezone(now.tzinfo)


async def list_cases(uow: UnitOfWork, clock: Clock, actor: Actor, filters: Filters) -> CaseList:
    """The cases of the person's scope that match `filters`: one page of them, and how many."""
    villages = await villages_of(uow, actor)
    scope = tuple(v.id for v in villages)
    filers = await uow.case_views.filers(scope)
    by_code = {v.code: v.id for v in villages}
    if filters.village not in by_code:
        filters = replace(filters, village="")
    if filters.filed not in ("", "daibao", "self") and int(filters.filed) not in {i for i, _ in filers}:
        filters = replace(filters, filed="")
    now = clock.now()
    zone = now.tzinfo
    digits = filters.q.replace(" ", "")
    receipt = digits[:MAX_RECEIPT] if digits.isdigit() else None
    query = CaseQuery(
        village_ids=(by_code[filters.village],) if filters.village else scope,
        status=DeclarationStatus(filters.state) if filters.state else None,
        risk=filters.risk or None,
        overdue_at=now if filters.overdue else None,
        by_chat={"chat": True, "web": False}.get(filters.came_by),
        daibao={"daibao": True, "self": False}.get(filters.filed),
        filer=int(filters.filed) if filters.filed.isdigit() else None,
        since=datetime.combine(filters.since, time(), zone) if filters.since else None,
        until=datetime.combine(filters.until + timedelta(days=1), time(), zone) if filters.until else None,
        receipt=receipt,
        name=filters.q if filters.q and receipt is None else None,
        sort=filters.sort,
        descending=filters.way == "desc",
        offset=(filters.page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    found = await uow.case_views.page(query)
    pages = max(1, -(-found.total // PAGE_SIZE))
    if not found.rows and filters.page > pages:
        # Past the last page (an old link, a number typed): the last page.
        filters = replace(filters, page=pages)
        found = await uow.case_views.page(replace(query, offset=(pages - 1) * PAGE_SIZE))
        pages = max(1, -(-found.total // PAGE_SIZE))
    lines = [
        CaseLine(
            receipt=r.receipt,
            village=r.village,
            name=r.head_name,
            state=r.status,
            risks=r.risk_types,
            submitted=_local(r.created_at, now),
            due=_local(r.due_at, now) if r.due_at else None,
            overdue=_overdue(r.due_at, r.task_status, now),
            by_chat=r.by_chat,
            daibao=r.daibao,
            filer=r.filer,
            owner=r.owner,
            green=r.green_channel,
        )
        for r in found.rows
    ]
    return CaseList(lines, found.total, found.exact, filters, pages, villages, filers)


def _overdue(due: datetime | None, status: TaskStatus, now: datetime) -> bool:
    return due is not None and due < now and status in (TaskStatus.OPEN, TaskStatus.ACKNOWLEDGED)


# --- one case ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseFile:
    """A photo or voice note of the case, numbered from 1 in the order they came."""

    n: int
    kind: AttachmentKind
    at: datetime  # in the service's zone
    stored: bool  # uploaded through the web form (kept in the database); else the chat's file
    duration: int | None = None


@dataclass(frozen=True)
class Entry:
    """A line of the case's history: what happened, who did it, when, and whether on the web."""

    at: datetime
    kind: str  # an event kind (its text is "event.<kind>")
    who: str | None  # None: the household (`household`) or the service
    household: bool
    note: Any  # a reason, notes, a verdict, a colleague: shown as a message parameter
    on_web: bool


@dataclass(frozen=True)
class NextStep:
    """Something the person may do next on the case, as the chat's buttons offer it.

    `form`: "ack" (签收), "step" (`value` a one-button step), "verdict" (`value` an eligible
    category), "reject" (不纳入, with its reason), "visit" (the home visit's day and notes), "hand"
    (to a colleague of `CaseView.colleagues`)."""

    form: str
    value: str
    label: str  # the chat button's catalog key


@dataclass(frozen=True)
class CaseView:
    declaration: Declaration
    task: Task
    village: Village
    answers: dict[str, Any]  # the summary's parameters (the ID number masked)
    id_unreadable: bool  # sealed under a key the service no longer has
    may_reveal: bool  # township staff of the case's township may see the full ID number
    submitted: datetime  # in the service's zone
    texts: list[tuple[datetime, str]]  # information added later as text: when, what
    files: list[CaseFile]
    history: list[Entry]
    steps: list[NextStep]
    colleagues: list[tuple[int, str]]
    owner: str | None
    filer: str | None
    due: datetime | None
    overdue: bool
    by_chat: bool


def _receipt(raw: str) -> str | None:
    return raw if raw.isdigit() and len(raw) <= MAX_RECEIPT else None


async def _visible(uow: UnitOfWork, actor: Actor, receipt: str) -> tuple[Declaration, Task] | None:
    """The case with this receipt, when it is in the person's scope; else None, as if none were."""
    cleaned = _receipt(receipt)
    declaration = await uow.declarations.by_receipt(cleaned) if cleaned else None
    if declaration is None or not await may_see(uow, actor, declaration.village_id):
        return None
    task = await uow.tasks.for_declaration(declaration.id)
    return (declaration, task) if task is not None else None


def _files(attachments: list[Attachment], now: datetime) -> list[CaseFile]:
    media = [a for a in attachments if a.kind is not AttachmentKind.TEXT]
    return [
        CaseFile(n, a.kind, _local(a.at, now), a.ref.startswith(UPLOAD_REF), a.duration)
        for n, a in enumerate(media, 1)
    ]


def _masked(protector: Protector, declaration: Declaration) -> tuple[str | None, bool]:
    if not declaration.id_sealed:
        return None, False
    try:
        return validation.mask_id(protector.unseal(declaration.id_sealed)), False
    except Unreadable:
        return None, True


def _answers(
    declaration: Declaration, village: Village, masked: str | None, media: list[Attachment]
) -> dict[str, Any]:
    """Every answer as the household saw it in the summary (and the cadres in 【新申报】)."""
    voice = next((a for a in media if a.kind is AttachmentKind.VOICE), None)
    draft = Draft(
        village_name=village.name,
        filed_by_cadre=declaration.filed_by_cadre,
        name=declaration.head_name,
        declarant="family" if declaration.relation else "self",
        relation=declaration.relation,
        phone=declaration.phone,
        sms_consent_at=declaration.sms_consent_at.isoformat() if declaration.sms_consent_at else None,
        id_masked=masked,
        household=declaration.household_size,
        risks=declaration.risk_types,
        followups=declaration.followups,
        description=declaration.description,
        voice=Voice(voice.ref, voice.duration or 0) if voice else None,
        photos=tuple(a.ref for a in media if a.kind is AttachmentKind.PHOTO),
    )
    return summary_params(draft)


async def _history(uow: UnitOfWork, declaration: Declaration, now: datetime) -> list[Entry]:
    names: dict[int, str | None] = {}
    entries = []
    for event in await uow.events.for_declaration(declaration.id):
        who = None
        if event.actor_id is not None:
            if event.actor_id not in names:
                person = await uow.persons.get(event.actor_id)
                names[event.actor_id] = person.name if person else None
            who = names[event.actor_id]
        # The household's own step (a 代报 filed as the cadre's has none; one whose household
        # agreed to texts has the household's person as its declarant, the cadre as its filer).
        household = event.actor_id == declaration.declared_by != declaration.filed_by_cadre
        entries.append(
            Entry(
                _local(event.at, now),
                event.kind,
                who,
                household,
                await _note(uow, event),
                event.data.get("via") == "web",
            )
        )
    return entries


async def _note(uow: UnitOfWork, event: CaseEvent) -> Any:
    data = event.data
    for name in ("reason", "objection", "notes"):
        if data.get(name):
            return str(data[name])
    if data.get("verdict") in {v.value for v in Verdict}:
        return {"$t": f"verdict.{data['verdict']}"}
    if event.kind == "handed_over" and isinstance(data.get("to"), int):
        person = await uow.persons.get(data["to"])
        return person.name if person and person.name else ""
    return ""


async def _steps(uow: UnitOfWork, actor: Actor, task: Task, declaration: Declaration) -> list[NextStep]:
    """What the person may do next: the chat card's buttons (domain.cases.actions), each only
    when the procedure lets this person make its move now."""
    township = await is_township_of(uow, actor, task.village_id)
    county = await records_county_step(uow, actor, task.village_id)
    handler = await is_handler(uow, actor, task)
    if not (township or county or (handler and task.acknowledged_by in (None, actor.id))):
        return []
    found: list[NextStep] = []
    for row in step_actions(task, declaration, township=township, county=county):
        for action in row:
            button = action.button
            label = action.label_or_default
            label = label if isinstance(label, str) else ""
            step: NextStep | None = None
            move = None
            if isinstance(button, b.Acknowledge):
                step, move = NextStep("ack", "", label), "acknowledge"
            elif isinstance(button, b.Step) and button.action == "visit":
                step, move = NextStep("visit", "", label), "visit"
            elif isinstance(button, b.Step) and button.action == "green":
                if await refusal_of(uow, actor, task, declaration, Party.OWNER) is None:
                    step = NextStep("step", "green", label)
            elif isinstance(button, b.Step):
                step, move = NextStep("step", button.action, label), button.action
            elif isinstance(button, b.ChooseVerdict) and button.verdict is Verdict.NOT_ELIGIBLE:
                step, move = NextStep("reject", "", label), "reject"
            elif isinstance(button, b.ChooseVerdict):
                step, move = NextStep("verdict", button.verdict.value, label), "propose"
            elif isinstance(button, b.OfferHandOver):
                step = NextStep("hand", "", label)
            if step is not None and (move is None or (await allowed(uow, actor, task, declaration, move))[0]):
                found.append(step)
    return found


async def open_case(
    uow: UnitOfWork, clock: Clock, protector: Protector, actor: Actor, receipt: str
) -> CaseView | None:
    """One case, as the person may see it; None when there is none in their scope."""
    visible = await _visible(uow, actor, receipt)
    if visible is None:
        return None
    declaration, task = visible
    village = await uow.geography.village(declaration.village_id)
    assert village is not None
    now = clock.now()
    attachments = await uow.attachments.for_declaration(declaration.id)
    media = [a for a in attachments if a.kind is not AttachmentKind.TEXT]
    masked, unreadable = _masked(protector, declaration)
    steps = await _steps(uow, actor, task, declaration)
    mates = await colleagues(uow, actor, task.id) if any(s.form == "hand" for s in steps) else []
    steps = [s for s in steps if s.form != "hand" or mates]
    owner = await uow.persons.get(task.acknowledged_by) if task.acknowledged_by else None
    filer = await uow.persons.get(declaration.filed_by_cadre) if declaration.filed_by_cadre else None
    return CaseView(
        declaration=declaration,
        task=task,
        village=village,
        answers=_answers(declaration, village, masked, media),
        id_unreadable=unreadable,
        may_reveal=bool(declaration.id_sealed)
        and not unreadable
        and await may_reveal(uow, actor, declaration),
        submitted=_local(declaration.created_at, now),
        texts=[(_local(a.at, now), a.ref) for a in attachments if a.kind is AttachmentKind.TEXT],
        files=_files(attachments, now),
        history=await _history(uow, declaration, now),
        steps=steps,
        colleagues=[(p.id, p.name or str(p.id)) for p in mates],
        owner=owner.name if owner else None,
        filer=filer.name if filer else None,
        due=_local(task.due_at, now) if task.due_at else None,
        overdue=_overdue(task.due_at, task.status, now),
        by_chat=declaration.via == CHAT,
    )


# --- what the console does to a case -------------------------------------------------------------------

STEPS = ("publicize", "close_notice", "approve", "enter", "uphold", "reopen", "green")
VERDICTS = {v.value: v for v in Verdict if v.eligible}
MAX_FIELD = 2 * validation.MAX_REASON  # characters of a form field taken at all (the use case says why)


async def act(
    uow: UnitOfWork, clock: Clock, rules: DeadlineRules, actor: Actor, receipt: str, form: Mapping[str, str]
) -> Outcome | None:
    """A step taken on the console's case page, by the chat's own use case (the same checks, the
    same messages to the household); None when the case is not in the person's scope."""
    visible = await _visible(uow, actor, receipt)
    if visible is None:
        return None
    task = visible[1]

    def field(name: str) -> str:
        value = form.get(name, "")
        return value[:MAX_FIELD] if isinstance(value, str) else ""

    chosen, value = field("do"), field("value")
    if chosen == "ack":
        return await acknowledge(uow, clock, rules, actor, task.id)
    if chosen == "step" and value in STEPS:
        return await simple_step(uow, clock, rules, actor, task.id, value)
    if chosen == "verdict" and value in VERDICTS:
        return await choose_verdict(uow, clock, rules, actor, task.id, VERDICTS[value])
    if chosen == "reject":
        return await reject(uow, clock, rules, actor, task.id, field("reason"))
    if chosen == "visit":
        return await record_visit(uow, clock, rules, actor, task.id, field("date"), field("notes"))
    if chosen == "hand" and _ID.fullmatch(field("colleague")):
        return await hand_over(uow, clock, actor, task.id, int(field("colleague")))
    return Outcome(toast="console.case_unknown_step", alert=True, locale=actor.locale, done=False)


async def may_reveal(uow: UnitOfWork, actor: Actor, declaration: Declaration) -> bool:
    """Township staff of the case's township may see a full ID number; not cadres, not the county."""
    return actor.role is Role.TOWNSHIP and await is_township_of(uow, actor, declaration.village_id)


@dataclass(frozen=True)
class Revealed:
    """The full ID number, shown once; or why not (a catalog key)."""

    number: str | None
    refusal: str | None = None


async def reveal_id(
    uow: UnitOfWork, clock: Clock, protector: Protector, actor: Actor, receipt: str
) -> Revealed | None:
    """The case's full ID number for township staff, recorded in its history (who, when); None
    when the case is not in the person's scope."""
    visible = await _visible(uow, actor, receipt)
    if visible is None:
        return None
    declaration = visible[0]
    if not await may_reveal(uow, actor, declaration):
        return Revealed(None, "console.case_reveal_refused")
    if not declaration.id_sealed:
        return Revealed(None, "console.case_no_id")
    try:
        number = protector.unseal(declaration.id_sealed)
    except Unreadable:
        return Revealed(None, "console.case_id_unreadable")
    await uow.events.add(CaseEvent(declaration.id, "id_revealed", actor.id, clock.now(), {"via": actor.via}))
    return Revealed(number)


@dataclass(frozen=True)
class FileFound:
    """A case's photo or voice note: the bytes of a web upload, or the chat's file reference."""

    kind: AttachmentKind
    upload: tuple[str, bytes] | None  # content type and bytes
    file_ref: str | None  # to fetch from the chat's file store


async def case_file(uow: UnitOfWork, actor: Actor, receipt: str, n: int) -> FileFound | None:
    """The n-th photo or voice note of a case in the person's scope (numbered as CaseView.files)."""
    visible = await _visible(uow, actor, receipt)
    if visible is None or n < 1:
        return None
    media = [
        a for a in await uow.attachments.for_declaration(visible[0].id) if a.kind is not AttachmentKind.TEXT
    ]
    if n > len(media):
        return None
    found = media[n - 1]
    if not found.ref.startswith(UPLOAD_REF):
        return FileFound(found.kind, None, found.ref)
    number = found.ref[len(UPLOAD_REF) :]
    upload = await uow.uploads.get(int(number)) if number.isdigit() and len(number) < 19 else None
    return FileFound(found.kind, upload, None) if upload else None
