"""The township's roster and invites (staff), and the files page (staff and the county).

GET  /console/roster                       upload a roster sheet (CSV UTF-8 or .xlsx)
POST /console/roster/preview               what the sheet would change, and every bad line; nothing written
POST /console/roster/apply                 apply the sheet shown (kept signed in the page), checked again
GET  /console/roster/invites               the township's cadres and staff, to invite
POST /console/roster/invites               one-time invite links (7 days) for those chosen, to print
GET  /console/roster/invites/<token>.png   a live invite's QR code
and the files (bot/console/admin_files.py) under /console/files.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from bot.console import admin_files, roster_upload
from bot.console.core import ROOT, SESSION, actor_of, deps_of, may_open, message, not_found, page
from domain import people, roster, validation
from domain.model import Person
from domain.office import roster_desk
from domain.roster import PersonChange
from qr.links import deep_link, qr_png

SECTION = "/roster"
MAX_CHOSEN = 500  # people invited in one go
SHEET_FIELD = "sheet"
KEPT_FIELD = "kept"


def _staff(request: web.Request) -> bool:
    return may_open(actor_of(request), SECTION)


FIELDS = {
    "role": "console.roster_field_role",
    "name": "console.roster_field_name",
    "township": "console.roster_field_township",
    "county": "console.roster_field_county",
    "villages": "console.roster_field_villages",
}


def _change_rows(changes: tuple[PersonChange, ...]) -> list[dict[str, Any]]:
    """Each person the sheet adds or changes; for a change, each field's label, before and after."""
    out = []
    for change in changes:
        was = change.was
        if was is not None and not change.changes:
            continue
        before = {
            "role": was.role.value if was else "",
            "name": (was.name or "") if was else "",
            "township": change.was_township or "",
            "county": (was.county or "") if was else "",
            "villages": "、".join(change.was_villages),
        }
        after = {
            "role": change.role.value,
            "name": change.name,
            "township": change.township,
            "county": change.county or "",
            "villages": "、".join(change.villages),
        }
        details = [
            {"label": FIELDS[what], "role": what == "role", "before": before[what], "after": after[what]}
            for what in change.changes
        ]
        out.append(
            {
                "line": change.line,
                "name": change.name,
                "phone": validation.display_phone(change.phone),
                "role": change.role.value,
                "added": was is None,
                "details": details,
            }
        )
    return out


def _preview_page(
    request: web.Request, preview: roster_desk.Preview, lines: roster_upload.Lines, *, changed: bool = False
) -> web.Response:
    deps = deps_of(request)
    actor = actor_of(request)
    kept = ""
    if preview.ready:
        kept = roster_upload.keep(
            deps.secret, request[SESSION], actor.id, lines, preview.fingerprint, deps.clock.now()
        )
    context = {
        "preview": preview,
        "report": preview.plan.report,
        "people": _change_rows(preview.plan.people),
        "kept": kept,
        "changed": changed,
    }
    return page(request, "console/admin/roster_preview.html", context, status=200 if preview.ready else 422)


async def roster_page(request: web.Request) -> web.Response:
    """The upload form."""
    if not _staff(request):
        return not_found(request)
    return page(request, "console/admin/roster.html", {"refused": None, "applied": None})


def _upload(form: MultiDictProxy[Any]) -> bytes:
    sheet = form.get(SHEET_FIELD)
    if not isinstance(sheet, web.FileField):
        return b""
    with sheet.file:  # aiohttp's unnamed temporary file: gone once closed
        return sheet.file.read(roster_upload.MAX_BYTES + 1)


async def preview(request: web.Request) -> web.Response:
    """What the uploaded sheet would change, and every bad line; nothing is written."""
    if not _staff(request):
        return not_found(request)
    deps = deps_of(request)
    form = await request.post()
    try:
        lines = roster_upload.read(_upload(form))
    except roster_upload.Refused as refused:
        context = {"refused": (refused.key, refused.params), "applied": None}
        return page(request, "console/admin/roster.html", context, status=422)
    rows, problems = roster.check(lines)
    async with deps.uow() as uow:
        try:
            found = await roster_desk.preview(uow, actor_of(request), rows, problems)
        except roster_desk.NotStaff:
            return not_found(request)
    return _preview_page(request, found, lines)


async def apply(request: web.Request) -> web.Response:
    """Apply the sheet shown, when it is the one kept in the page and still makes the same changes."""
    if not _staff(request):
        return not_found(request)
    deps = deps_of(request)
    actor = actor_of(request)
    form = await request.post()
    kept = roster_upload.unkeep(
        deps.secret, request[SESSION], actor.id, str(form.get(KEPT_FIELD, "")), deps.clock.now()
    )
    if kept is None:
        return message(request, 400, "console.roster_title", "console.roster_kept_bad")
    lines, shown = kept
    rows, problems = roster.check(lines)
    async with deps.uow() as uow:
        try:
            done = await roster_desk.confirm(uow, deps.clock, actor, rows, problems, shown)
        except roster_desk.NotStaff:
            return not_found(request)
        if isinstance(done, roster_desk.Changed):
            return _preview_page(request, done.preview, lines, changed=True)
        await uow.commit()
    deps.wake_sender()
    return page(request, "console/admin/roster.html", {"refused": None, "applied": done.report})


# --- invites -------------------------------------------------------------------------------------


async def invites_page(request: web.Request) -> web.Response:
    """The township's staff and cadres, each to be given a link."""
    if not _staff(request):
        return not_found(request)
    deps = deps_of(request)
    async with deps.uow() as uow:
        try:
            found = await roster_desk.invitable(uow, actor_of(request))
        except roster_desk.NotStaff:
            return not_found(request)
        listed = _listed(found, await roster_desk.bound(uow, found))
    return page(request, "console/admin/invites.html", {"people": listed, "issued": None, "everyone": False})


def _listed(found: list[Person], bound: set[int]) -> list[dict[str, Any]]:
    return [
        {
            "id": p.id,
            "name": p.name or "",
            "role": p.role.value,
            "phone": validation.display_phone(p.phone or ""),
            "bound": p.id in bound,
        }
        for p in found
        if p.phone
    ]


class _BadChoice(Exception):
    pass


def _chosen(form: MultiDictProxy[Any]) -> list[int] | None:
    """The person ids ticked, bounded; None for everyone not bound yet ("all")."""
    if form.get("all") == "1":
        return None
    raw = [str(v) for v in form.getall("person", [])]
    if len(raw) > MAX_CHOSEN or not all(v.isascii() and v.isdigit() and len(v) <= 9 for v in raw):
        raise _BadChoice
    return [int(v) for v in raw]


async def invite(request: web.Request) -> web.Response:
    """Issue a one-time link for each person chosen (an earlier unused one stops working)."""
    if not _staff(request):
        return not_found(request)
    deps = deps_of(request)
    username = deps.bot_username()
    if not username:
        return message(request, 503, "console.invites_title", "console.invites_no_bot")
    try:
        chosen = _chosen(await request.post())
    except _BadChoice:
        return message(request, 400, "console.invites_title", "console.invites_bad_choice")
    async with deps.uow() as uow:
        try:
            issued = await roster_desk.invite(uow, deps.clock, actor_of(request), chosen)
            found = await roster_desk.invitable(uow, actor_of(request))
        except roster_desk.NotStaff:
            return not_found(request)
        listed = _listed(found, await roster_desk.bound(uow, found))
        await uow.commit()
    zone = deps.clock.now().tzinfo
    links = [
        {
            "name": one.person.name or "",
            "role": one.person.role.value,
            "link": deep_link(username, one.payload),
            "token": one.token,
            "until": one.expires_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        }
        for one in issued
    ]
    context = {"people": listed, "issued": links, "everyone": chosen is None}
    return page(request, "console/admin/invites.html", context)


async def invite_qr(request: web.Request) -> web.Response:
    """The QR code of a live invite of the township (anything else: not found)."""
    if not _staff(request):
        return not_found(request)
    deps = deps_of(request)
    username = deps.bot_username()
    token = request.match_info["token"]
    async with deps.uow() as uow:
        try:
            live = await roster_desk.live_invite(uow, deps.clock, actor_of(request), token)
        except roster_desk.NotStaff:
            return not_found(request)
    if live is None or not username:
        return not_found(request)
    png = qr_png(deep_link(username, people.INVITE_PREFIX + token))
    return web.Response(body=png, content_type="image/png")


def routes(app: web.Application) -> None:
    app.router.add_get(f"{ROOT}/roster", roster_page)
    app.router.add_post(f"{ROOT}/roster/preview", preview)
    app.router.add_post(f"{ROOT}/roster/apply", apply)
    app.router.add_get(f"{ROOT}/roster/invites", invites_page)
    app.router.add_post(f"{ROOT}/roster/invites", invite)
    app.router.add_get(f"{ROOT}/roster/invites/{{token:[A-Za-z0-9_-]{{1,62}}}}.png", invite_qr)
    admin_files.routes(app)
