"""Files for township staff and the county, each built on request and sent, none kept.

GET /console/files                        the page: flyers, exports, undelivered messages
GET /console/files/flyers/<code>.pdf      a village's flyer (?lang=zh_Hans|en, ?until=YYYY-MM-DD)
GET /console/files/flyers.zip             every village's flyer in the person's scope, one PDF each
GET /console/files/cases.xlsx             declarations submitted ?from= ?to= (ID numbers in full for
                                          township staff only, as /export; masked for the county)
GET /console/files/reports.xlsx?township= the newest campaign's progress reports of a township
GET /console/files/ledger.xlsx?township=  a township's problem ledger
GET /console/files/failed                 messages that could not be delivered to their people

A village or township outside the person's scope is not found, like one that does not exist.
"""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import Awaitable, Callable
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.console.core import HEADERS, ROOT, actor_of, deps_of, may_open, message, not_found, page
from bot.settings import FLYER_FONTS, ConfigError
from bot.templating import language_of
from domain import export, ledger, reports, validation
from domain.model import Village
from domain.office import files, scope
from domain.ports import UnitOfWork
from handlers.sheets import ledger_xlsx, reports_xlsx
from handlers.xlsx import cases_workbook
from qr import flyer
from qr.links import flyer_link
from qr.payload import VILLAGE_CODE, sign_village

SECTION = "/files"
LANGUAGES = ("zh_Hans", "en")
MAX_VALID_YEARS = 5  # the latest a printed code may stay valid
MAX_FLYERS = 1000  # villages in one zip
# What the service gives the console for flyers (ConsoleDeps.extra): the font file (a Path, or a
# function giving it, raising ConfigError when there is none) and whether codes open the landing page.
FLYER_FONT = "flyer_font"
QR_TO_LANDING = "qr_to_landing"
RENDERING: web.AppKey[asyncio.Lock] = web.AppKey("console_flyer_rendering", asyncio.Lock)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class _Refused(Exception):
    def __init__(self, status: int, key: str) -> None:
        super().__init__(key)
        self.status = status
        self.key = key


def _allowed(request: web.Request) -> bool:
    return may_open(actor_of(request), SECTION)


def _attachment(body: bytes, content_type: str, filename: str) -> web.Response:
    response = web.Response(body=body, content_type=content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _township_id(request: web.Request) -> int | None:
    raw = request.query.get("township", "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else None


async def files_page(request: web.Request) -> web.Response:
    """Flyers of the villages in scope, the exports, and a link to the undelivered messages."""
    if not _allowed(request):
        return not_found(request)
    deps = deps_of(request)
    actor = actor_of(request)
    async with deps.uow() as uow:
        villages = await scope.villages_of(uow, actor)
        townships = await files.townships_of(uow, actor)
    today = deps.clock.now().date()
    context = {
        "villages": villages,
        "townships": townships,
        "first": today.replace(day=1).isoformat(),
        "today": today.isoformat(),
        "tomorrow": (today + timedelta(days=1)).isoformat(),
        "until": _default_until(today).isoformat(),
        "latest": validation.years_after(today, MAX_VALID_YEARS).isoformat(),
        "full_ids": actor.township_id is not None,
    }
    return page(request, "console/admin/files.html", context)


# --- flyers --------------------------------------------------------------------------------------


def _default_until(today: date) -> date:
    """As the command line: the end of the year after next."""
    return date(today.year + 2, 12, 31)


def _until(request: web.Request, today: date) -> date:
    raw = request.query.get("until", "")
    if not raw:
        return _default_until(today)
    try:
        chosen = date.fromisoformat(raw) if len(raw) == 10 else None
    except ValueError:
        chosen = None
    if chosen is None or not today < chosen <= validation.years_after(today, MAX_VALID_YEARS):
        raise _Refused(400, "console.files_bad_until")
    return chosen


def _language(request: web.Request) -> str:
    chosen = request.query.get("lang", LANGUAGES[0])
    if chosen not in LANGUAGES:
        raise _Refused(400, "console.files_bad_language")
    return chosen


def _font(request: web.Request) -> Path:
    given = deps_of(request).extra.get(FLYER_FONT)
    try:
        if callable(given):
            found = given()
        elif given is not None:
            found = given
        else:
            found = next((f for f in FLYER_FONTS if f.is_file()), None)
    except ConfigError:
        found = None
    if not isinstance(found, Path) or not found.is_file():
        raise _Refused(503, "console.files_no_font")
    return found


async def _flyers(request: web.Request, villages: list[Village]) -> tuple[list[flyer.Flyer], Path]:
    """The flyers of `villages` as asked (language, last valid day), and the font to draw them in."""
    deps = deps_of(request)
    now = deps.clock.now()
    language, until = _language(request), _until(request, now.date())
    landing = deps.extra.get(QR_TO_LANDING, deps.public_url is not None)
    landing = bool(landing() if callable(landing) else landing) and deps.public_url is not None
    username = "" if landing else deps.bot_username()
    if username is None:
        raise _Refused(503, "console.files_no_bot")
    batch = now.strftime("%y%m%d")  # as the command line: the day printed, signed into the code
    made = [
        flyer.Flyer(
            village_code=v.code,
            village=v.name,
            township=v.township_name,
            link=flyer_link(
                sign_village(deps.secret, v.code, until, batch),
                bot_username=username,
                public_url=deps.public_url,
                to_landing=landing,
            ),
            batch=batch,
            valid_until=until,
            web_form=landing,
            language=language,
        )
        for v in villages
    ]
    font = _font(request)
    try:
        # Checked once, before anything is sent; loading the font the first time takes a moment.
        async with request.app[RENDERING]:
            await asyncio.to_thread(flyer.font_for, font, made)
    except flyer.FlyerFontError:
        raise _Refused(503, "console.files_no_font") from None
    return made, font


async def _render(request: web.Request, one: flyer.Flyer, font: Path) -> bytes:
    # One flyer at a time, off the event loop: reportlab's font registry is shared, the CPU is small.
    async with request.app[RENDERING]:
        return await asyncio.to_thread(flyer.render, [one], font)


def _refusal(request: web.Request, refused: _Refused) -> web.Response:
    return message(request, refused.status, "console.files_title", refused.key)


async def flyer_pdf(request: web.Request) -> web.Response:
    """One village's flyer, for a village in the person's scope."""
    if not _allowed(request):
        return not_found(request)
    code = request.match_info["code"]
    deps = deps_of(request)
    async with deps.uow() as uow:
        village = next((v for v in await scope.villages_of(uow, actor_of(request)) if v.code == code), None)
    if village is None or not VILLAGE_CODE.match(code):
        return not_found(request)
    try:
        made, font = await _flyers(request, [village])
    except _Refused as refused:
        return _refusal(request, refused)
    pdf = await _render(request, made[0], font)
    return _attachment(pdf, "application/pdf", f"flyer-{village.code}-{made[0].language}.pdf")


class _Sink(io.RawIOBase):
    """Where a zip is written as it is made; `take` hands over what was written since."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


async def flyers_zip(request: web.Request) -> web.StreamResponse:
    """Every village's flyer in the person's scope, one PDF each, sent as each is drawn."""
    if not _allowed(request):
        return not_found(request)
    deps = deps_of(request)
    async with deps.uow() as uow:
        villages = await scope.villages_of(uow, actor_of(request))
    if not villages:
        return message(request, 404, "console.files_title", "console.files_no_villages")
    if len(villages) > MAX_FLYERS:
        return message(request, 413, "console.files_title", "console.files_too_many")
    try:
        made, font = await _flyers(request, villages)
    except _Refused as refused:
        return _refusal(request, refused)
    response = web.StreamResponse(headers=HEADERS)
    response.content_type = "application/zip"
    response.headers["Content-Disposition"] = f'attachment; filename="flyers-{made[0].language}.zip"'
    await response.prepare(request)
    sink = _Sink()
    # The sink cannot seek: zipfile then writes each entry's sizes after its data.
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        for one in made:
            # By code only: a village's name is the roster's text, not a path to trust.
            archive.writestr(f"{one.village_code}.pdf", await _render(request, one, font))
            await response.write(sink.take())
    await response.write(sink.take())
    await response.write_eof()
    return response


# --- exports -------------------------------------------------------------------------------------


async def cases_xlsx(request: web.Request) -> web.Response:
    """The declarations of the person's scope submitted in the days asked."""
    if not _allowed(request):
        return not_found(request)
    deps = deps_of(request)
    now = deps.clock.now()
    first, last = request.query.get("from", ""), request.query.get("to", "")
    # None: this month; a first day: to today; both; a last day alone is refused (no first day).
    asked = [first, last] if last else [first] if first else []
    try:
        days = export.period(asked, now.date())
        since, until = days.bounds(now.tzinfo)
        async with deps.uow() as uow:
            found = await export.rows_of_scope(
                uow, deps.protector, actor_of(request), since=since, until=until
            )
    except export.ExportRefused as refused:
        return message(request, 400, "console.exports_title", refused.key, **refused.params)
    book = cases_workbook(found, export.COLUMNS, language_of(request), now.tzinfo or UTC)
    return _attachment(book, XLSX, f"cases-{days.first.isoformat()}-{days.last.isoformat()}.xlsx")


async def _township_file(
    request: web.Request, build: Callable[[UnitOfWork, int], Awaitable[bytes | None]], name: str
) -> web.Response:
    if not _allowed(request):
        return not_found(request)
    deps = deps_of(request)
    township_id = _township_id(request)
    if township_id is None:
        return not_found(request)
    async with deps.uow() as uow:
        township = await files.township_in_scope(uow, actor_of(request), township_id)
        if township is None:
            return not_found(request)
        body = await build(uow, township.id)
    if body is None:
        return message(request, 404, "console.exports_title", "console.exports_no_campaign")
    return _attachment(body, XLSX, f"{name}-{township.id}.xlsx")


async def reports_file(request: web.Request) -> web.Response:
    """The progress reports of a township's newest campaign."""
    catalog = language_of(request)

    async def build(uow: UnitOfWork, township_id: int) -> bytes | None:
        data = await reports.export(uow, township_id)
        return reports_xlsx(data, catalog) if data is not None else None

    return await _township_file(request, build, "reports")


async def ledger_file(request: web.Request) -> web.Response:
    """A township's problem ledger."""
    catalog = language_of(request)

    async def build(uow: UnitOfWork, township_id: int) -> bytes | None:
        return ledger_xlsx(ledger.export_rows(await uow.ledger.of_township(township_id)), catalog)

    return await _township_file(request, build, "ledger")


async def failed_page(request: web.Request) -> web.Response:
    """The messages that could not be delivered to the people of the person's townships."""
    if not _allowed(request):
        return not_found(request)
    deps = deps_of(request)
    async with deps.uow() as uow:
        found = await files.failed(uow, actor_of(request))
    return page(request, "console/admin/failed.html", {"failed": found, "zone": deps.clock.now().tzinfo})


def routes(app: web.Application) -> None:
    app[RENDERING] = asyncio.Lock()
    app.router.add_get(f"{ROOT}/files", files_page)
    app.router.add_get(f"{ROOT}/files/flyers/{{code:[A-Za-z0-9]{{1,16}}}}.pdf", flyer_pdf)
    app.router.add_get(f"{ROOT}/files/flyers.zip", flyers_zip)
    app.router.add_get(f"{ROOT}/files/cases.xlsx", cases_xlsx)
    app.router.add_get(f"{ROOT}/files/reports.xlsx", reports_file)
    app.router.add_get(f"{ROOT}/files/ledger.xlsx", ledger_file)
    app.router.add_get(f"{ROOT}/files/failed", failed_page)
