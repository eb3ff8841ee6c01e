"""The township's work: notices, campaigns and their reports, the problem ledger. Every page calls
the chat's own use cases (domain.notices, domain.campaign_chat, domain.ledger) and reads through
domain.office.work, so what is done here is done as in chat, with the same checks and limits.

GET  /console/notices                  the form of a notice; the township's notices, x of y confirmed
POST /console/notices                  notices.compose (sent now, or scheduled)
GET  /console/notices/<id>             one notice: who has confirmed, who has not
POST /console/notices/<id>/remind      notices.remind (once an hour, as in chat)
GET  /console/campaigns                the township's campaigns
GET  /console/campaigns/new            the form of a campaign (the campaign file's fields)
POST /console/campaigns/new            campaign_chat.define
GET  /console/campaigns/<id>           its phases, its reports by village and period, who is missing
GET  /console/ledger                   the ledger (overdue first) and the form to add to it
POST /console/ledger                   ledger.add_item
POST /console/ledger/<id>/close        ledger.close (整改销号)

Staff have the three sections, cadres the ledger. What is not the person's (another township's
notice, campaign or item, a village not theirs) is the same 404 as what does not exist. After a
POST that did something, the page is fetched again (PRG) with a short confirmation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy

from bot.console.core import ROOT, actor_of, deps_of, may_open, not_found, page
from domain import campaign_chat, campaigns, ledger, notices
from domain.actor import Actor
from domain.messages import Outgoing
from domain.model import Audience, Recipient
from domain.office import work
from domain.office.scope import villages_of
from domain.roster import Problem
from domain.validation import years_after

NOTICES, CAMPAIGNS, LEDGER = f"{ROOT}/notices", f"{ROOT}/campaigns", f"{ROOT}/ledger"
ID = "{id:[0-9]{1,9}}"  # any other id is not matched: the same 404
MAX_FIELD = 5000  # longer than any answer is taken: the use case says it is too long
MAX_SHORT = 40  # a choice, a date or a time
MAX_CHOICES = 200  # villages ticked, phase rows
MAX_MISSING_SHOWN = 10
BLANK_PHASES = 6
# What a POST did, said once on the page it leads to: ?done=<code>&n=<number>.
DONE = {
    "sent": ("notice.sent_toast", None),
    "scheduled": ("notice.scheduled_toast", None),
    "reminded": ("notice.reminded", "count"),
    "wait": ("notice.remind_wait", "minutes"),
    "created": ("campaign.chat_created", None),
    "added": ("console.ledger_added", "id"),
    "closed": ("ledger.closed", None),
    "already": ("ledger.already_closed", None),
}
# The campaign file's "missing" and "empty" say which line is missing; beside a field, it is required.
REQUIRED = ("campaign.missing", "campaign.empty_value")
STATUS = {
    "scheduled": "console.notices_status_scheduled",
    "sent": "console.notices_status_sent",
    "cancelled": "console.notices_status_cancelled",
}

Said = list[tuple[str, dict[str, Any]]]  # catalog keys and their parameters, beside a field


# --- what comes from outside: bounded, checked ----------------------------------------------------


def _text(form: MultiDictProxy[Any], name: str, cap: int = MAX_FIELD) -> str:
    value = form.get(name)
    return value[:cap] if isinstance(value, str) else ""


def _texts(form: MultiDictProxy[Any], name: str, cap: int = MAX_FIELD) -> list[str] | None:
    """Every value of a repeated field; None when there are more than any form has."""
    values = form.getall(name, [])
    if len(values) > MAX_CHOICES:
        return None
    return [v[:cap] if isinstance(v, str) else "" for v in values]


def _number(raw: str) -> int | None:
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else None


def _ids(form: MultiDictProxy[Any], name: str) -> list[int] | None:
    """Ids ticked in a form; None when one is not an id at all (no form of ours sends that)."""
    values = _texts(form, name, MAX_SHORT)
    if values is None:
        return None
    found = [_number(v) for v in values]
    return None if any(v is None for v in found) else [v for v in found if v is not None]


def _id(request: web.Request) -> int:
    return int(request.match_info["id"])  # the route takes 1 to 9 digits only


def _done(request: web.Request) -> tuple[str, dict[str, int]] | None:
    """The confirmation of the POST before the redirect (a known code, a bounded number)."""
    found = DONE.get(request.query.get("done", ""))
    if found is None:
        return None
    key, param = found
    return key, ({param: _number(request.query.get("n", "")[:9]) or 0} if param else {})


def _see(path: str, done: str, n: int | None = None) -> web.HTTPSeeOther:
    query = {"done": done} | ({"n": str(n)} if n is not None else {})
    return web.HTTPSeeOther(f"{path}?{urlencode(query)}")


def _said(found: Outgoing | Problem) -> tuple[str, dict[str, Any]]:
    if isinstance(found, Outgoing):
        return found.template, dict(found.params)
    if found.key in REQUIRED:
        return "console.campaigns_required", {}
    return found.key, dict(found.params)


def _clock_text(request: web.Request) -> Any:
    """A time in the service's zone, as a page shows it."""
    zone = deps_of(request).clock.now().tzinfo

    def shown(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else ""

    return shown


def _names(people: list[Recipient], limit: int | None = None) -> dict[str, list[str]]:
    """Names as the chat's status lists them (⚠ for one no message reaches), joined as the page's
    language joins a list."""
    shown = [(r.person.name or "?") + ("" if r.reachable else "⚠") for r in people[:limit]]
    return {"$join": shown + (["…"] if limit is not None and len(people) > limit else [])}


# --- notices -----------------------------------------------------------------------------------------


async def _notices(
    request: web.Request, actor: Actor, values: dict[str, Any], problems: dict[str, Said], status: int = 200
) -> web.Response:
    deps = deps_of(request)
    async with deps.uow() as uow:
        listed = await work.notices_of(uow, actor)
        villages = await villages_of(uow, actor)
    now = deps.clock.now()
    context = {
        "done": _done(request),
        "notices": listed,
        "villages": villages,
        "values": {"body": "", "audience": "", "villages": set(), "when": "now", "send_at": ""} | values,
        "problems": problems,
        "audiences": [(a.value, notices.AUDIENCE_LABELS[a.value]) for a in Audience],
        "labels": notices.AUDIENCE_LABELS,
        "status_keys": STATUS,
        "at": _clock_text(request),
        "names": lambda people: _names(people, MAX_MISSING_SHOWN),
        "max_body": notices.MAX_BODY,
        "earliest": now.strftime("%Y-%m-%dT%H:%M"),
        "latest": (now + notices.MAX_AHEAD).strftime("%Y-%m-%dT%H:%M"),
    }
    return page(request, "console/work/notices.html", context, status=status)


async def notices_page(request: web.Request) -> web.Response:
    """The form of a notice, and the township's notices with their receipts."""
    actor = actor_of(request)
    if not may_open(actor, "/notices"):
        return not_found(request)
    return await _notices(request, actor, {}, {})


async def compose(request: web.Request) -> web.Response:
    """Send a notice now, or schedule it (notices.compose: the chat's checks)."""
    actor = actor_of(request)
    if not may_open(actor, "/notices"):
        return not_found(request)
    form = await request.post()
    villages = _ids(form, "village")
    if villages is None:
        return not_found(request)
    later = _text(form, "when", MAX_SHORT) == "later"
    typed_time = _text(form, "send_at", MAX_SHORT)
    body, audience = _text(form, "body"), _text(form, "audience", MAX_SHORT)
    deps = deps_of(request)
    async with deps.uow() as uow:
        # A browser's date-time field sends 2026-12-01T09:00; the chat reads 2026-12-01 09:00.
        send_at = typed_time.replace("T", " ") if later else None
        done = await notices.compose(
            uow, deps.clock, actor, body=body, audience=audience, villages=villages, send_at=send_at
        )
        if done.notice is not None:
            await uow.commit()
    if done.foreign:
        return not_found(request)
    if done.notice is None:
        values = {
            "body": body, "audience": audience, "villages": set(villages),
            "when": "later" if later else "now", "send_at": typed_time,
        }  # fmt: skip
        problems = {name: [_said(why)] for name, why in done.problems.items()}
        return await _notices(request, actor, values, problems, status=400)
    deps.wake_sender()
    raise _see(NOTICES, "scheduled" if done.scheduled else "sent")


async def notice_page(request: web.Request) -> web.Response:
    """One notice: its text, audience, and every recipient, confirmed or not."""
    actor = actor_of(request)
    if not may_open(actor, "/notices"):
        return not_found(request)
    deps = deps_of(request)
    async with deps.uow() as uow:
        found = await work.notice_of(uow, actor, _id(request))
    if found is None:
        return not_found(request)
    context = {
        "done": _done(request),
        "r": found,
        "labels": notices.AUDIENCE_LABELS,
        "status_keys": STATUS,
        "at": _clock_text(request),
    }
    return page(request, "console/work/notice.html", context)


async def remind(request: web.Request) -> web.Response:
    """提醒: remind everyone who has not confirmed (notices.remind, once an hour a notice)."""
    actor = actor_of(request)
    if not may_open(actor, "/notices"):
        return not_found(request)
    notice_id = _id(request)
    deps = deps_of(request)
    async with deps.uow() as uow:
        outcome = await notices.remind(uow, deps.clock, actor, notice_id)
        await uow.commit()
    if outcome.toast == "notice.gone":
        return not_found(request)
    form = await request.post()
    back = NOTICES if _text(form, "back", MAX_SHORT) == "list" else f"{NOTICES}/{notice_id}"
    if outcome.toast == "notice.remind_wait":
        raise _see(back, "wait", int(outcome.params.get("minutes", 0)))
    deps.wake_sender()
    raise _see(back, "reminded", int(outcome.params.get("count", 0)))


# --- campaigns and their reports ------------------------------------------------------------------


async def campaigns_page(request: web.Request) -> web.Response:
    """The township's campaigns, newest first."""
    actor = actor_of(request)
    if not may_open(actor, "/campaigns"):
        return not_found(request)
    deps = deps_of(request)
    async with deps.uow() as uow:
        listed = await work.campaigns_of(uow, actor)
    context = {"done": _done(request), "campaigns": listed}
    return page(request, "console/work/campaigns.html", context)


async def _campaign_form(
    request: web.Request, actor: Actor, values: dict[str, Any], problems: dict[str, Said], status: int = 200
) -> web.Response:
    deps = deps_of(request)
    async with deps.uow() as uow:
        villages = await villages_of(uow, actor)
    today = deps.clock.now().date()
    phases = list(values.get("phases", []))
    blanks = max(BLANK_PHASES - len(phases), 2)
    phases += [("", "")] * min(blanks, max(campaign_chat.MAX_PHASES - len(phases), 0))
    context = {
        "villages": villages,
        "values": {"name": "", "villages": set(), "rhythm": "half-monthly", "dates": "", "reminders": ""}
        | values
        | {"phases": phases},
        "problems": problems,
        "rhythms": list(campaign_chat.RHYTHM_LABELS.items()),
        "max_name": campaign_chat.MAX_NAME,
        "max_phases": campaign_chat.MAX_PHASES,
        "default_reminders": ";".join(str(d) for d in campaigns.DEFAULT_OFFSETS),
        "earliest": today.isoformat(),
        "latest": years_after(today, campaigns.MAX_YEARS_AHEAD).isoformat(),
    }
    return page(request, "console/work/campaign_new.html", context, status=status)


async def campaign_new(request: web.Request) -> web.Response:
    """The form of a campaign: the campaign file's fields."""
    actor = actor_of(request)
    if not may_open(actor, "/campaigns"):
        return not_found(request)
    return await _campaign_form(request, actor, {}, {})


async def campaign_create(request: web.Request) -> web.Response:
    """Create the campaign (campaign_chat.define: the file's checks, every problem by its field)."""
    actor = actor_of(request)
    if not may_open(actor, "/campaigns"):
        return not_found(request)
    form = await request.post()
    codes = _texts(form, "village", MAX_SHORT)
    names, deadlines = _texts(form, "phase_name"), _texts(form, "phase_deadline", MAX_SHORT)
    if codes is None or names is None or deadlines is None:
        return not_found(request)
    # Rows left blank are no phase (the form offers more rows than most campaigns need).
    phases = [(n, d) for n, d in zip(names, deadlines, strict=False) if n.strip() or d.strip()]
    name, rhythm = _text(form, "name", 1000), _text(form, "rhythm", MAX_SHORT)
    dates, reminders = _text(form, "dates", 1000), _text(form, "reminders", 200)
    deps = deps_of(request)
    async with deps.uow() as uow:
        done = await campaign_chat.define(
            uow, deps.clock, actor, name=name, villages=codes, rhythm=rhythm, dates=dates, phases=phases,
            reminders=reminders,
        )  # fmt: skip
        if done.campaign_id is not None:
            await uow.commit()
    if done.foreign:
        return not_found(request)
    if done.campaign_id is None:
        values = {
            "name": name, "villages": set(codes), "rhythm": rhythm, "dates": dates, "reminders": reminders,
            "phases": phases,
        }  # fmt: skip
        problems = {field: [_said(p) for p in found] for field, found in done.problems.items()}
        return await _campaign_form(request, actor, values, problems, status=400)
    deps.wake_sender()
    raise _see(f"{CAMPAIGNS}/{done.campaign_id}", "created")


async def campaign_page(request: web.Request) -> web.Response:
    """A campaign: its phases, its reports by village and period, who has not reported."""
    actor = actor_of(request)
    if not may_open(actor, "/campaigns"):
        return not_found(request)
    deps = deps_of(request)
    async with deps.uow() as uow:
        progress = await work.progress_of(uow, deps.clock, actor, _id(request))
    if progress is None:
        return not_found(request)
    context = {
        "done": _done(request),
        "p": progress,
        "rhythm": campaign_chat.RHYTHM_LABELS.get(progress.campaign.reports.get("kind", ""), ""),
        "at": _clock_text(request),
        "today": deps.clock.now().date(),
    }
    return page(request, "console/work/campaign.html", context)


# --- the problem ledger -----------------------------------------------------------------------------


async def _ledger(
    request: web.Request, actor: Actor, values: dict[str, Any], problems: dict[str, Said], status: int = 200
) -> web.Response:
    deps = deps_of(request)
    async with deps.uow() as uow:
        seen = await work.ledger_of(uow, deps.clock, actor)
    today = deps.clock.now().date()
    context = {
        "done": _done(request),
        "ledger": seen,
        "values": {"village": None, "what": "", "measure": "", "deadline": "", "responsible": ""} | values,
        "problems": problems,
        "max_text": ledger.MAX_TEXT,
        "max_responsible": ledger.MAX_RESPONSIBLE,
        "earliest": today.isoformat(),
        "latest": years_after(today, ledger.MAX_YEARS_AHEAD).isoformat(),
    }
    return page(request, "console/work/ledger.html", context, status=status)


async def ledger_page(request: web.Request) -> web.Response:
    """The ledger (overdue first), and the form to add a problem."""
    actor = actor_of(request)
    if not may_open(actor, "/ledger"):
        return not_found(request)
    return await _ledger(request, actor, {}, {})


async def ledger_add(request: web.Request) -> web.Response:
    """Add a problem (ledger.add_item: the chat's checks) to a village of the person's."""
    actor = actor_of(request)
    if not may_open(actor, "/ledger"):
        return not_found(request)
    form = await request.post()
    village_id = _number(_text(form, "village", MAX_SHORT))
    if village_id is None:
        return not_found(request)
    what, measure = _text(form, "what"), _text(form, "measure")
    deadline, responsible = _text(form, "deadline", MAX_SHORT), _text(form, "responsible")
    deps = deps_of(request)
    async with deps.uow() as uow:
        done = await ledger.add_item(uow, deps.clock, actor, village_id, what, measure, deadline, responsible)
        if done.item_id is not None:
            await uow.commit()
    if done.foreign:
        return not_found(request)
    if done.item_id is None:
        values = {
            "village": village_id, "what": what, "measure": measure, "deadline": deadline,
            "responsible": responsible,
        }  # fmt: skip
        problems = {name: [_said(why)] for name, why in done.problems.items()}
        return await _ledger(request, actor, values, problems, status=400)
    raise _see(LEDGER, "added", done.item_id)


async def ledger_close(request: web.Request) -> web.Response:
    """整改销号 (ledger.close: a cadre of the item's village)."""
    actor = actor_of(request)
    if not may_open(actor, "/ledger"):
        return not_found(request)
    deps = deps_of(request)
    async with deps.uow() as uow:
        outcome = await ledger.close(uow, deps.clock, actor, _id(request))
        await uow.commit()
    if outcome.toast == "ledger.not_yours":
        return not_found(request)
    raise _see(LEDGER, "closed" if outcome.toast == "ledger.closed" else "already")


def routes(app: web.Application) -> None:
    app.router.add_get(NOTICES, notices_page)
    app.router.add_post(NOTICES, compose)
    app.router.add_get(f"{NOTICES}/{ID}", notice_page)
    app.router.add_post(f"{NOTICES}/{ID}/remind", remind)
    app.router.add_get(CAMPAIGNS, campaigns_page)
    app.router.add_get(f"{CAMPAIGNS}/new", campaign_new)
    app.router.add_post(f"{CAMPAIGNS}/new", campaign_create)
    app.router.add_get(f"{CAMPAIGNS}/{ID}", campaign_page)
    app.router.add_get(LEDGER, ledger_page)
    app.router.add_post(LEDGER, ledger_add)
    app.router.add_post(f"{LEDGER}/{ID}/close", ledger_close)
