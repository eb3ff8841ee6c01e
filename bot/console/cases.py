"""The cases: the list, one case, its files, and the steps taken on it (domain.office.cases, which
calls the chat's own use cases for every step).

GET  /console/cases                        the list: filters, search, sorting, pages of 50
GET  /console/cases/<receipt>              one case: every answer, files, history, next steps
POST /console/cases/<receipt>              a step; then back to the case (what it did is said once)
POST /console/cases/<receipt>/reveal       township staff: the full ID number, shown once, recorded
GET  /console/cases/<receipt>/files/<n>    a photo or voice note of the case

A case outside the person's scope is the same 404 as a receipt that does not exist.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot.console.core import ROOT, actor_of, deps_of, may_open, not_found, page
from domain import risk_types
from domain.model import AttachmentKind, DeclarationStatus
from domain.office import cases

SECTION = "/cases"
LIST = f"{ROOT}{SECTION}"
FLASH = "fh_case_said"  # what the last step did, said once on the case page after the redirect
FLASH_MAC = b"console-case-said:"
KEY = re.compile(r"[a-z]+\.[a-z_]+")
FIELDS = ("do", "value", "reason", "date", "notes", "colleague")
# Content types an uploaded photo may be served as; anything else is downloaded, never shown.
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
# The chat's files: Telegram sends photos as JPEG and voice notes as Ogg Opus.
CHAT_TYPES = {AttachmentKind.PHOTO: "image/jpeg", AttachmentKind.VOICE: "audio/ogg"}
# The list's columns that sort it, and their headings.
SORT_HEADINGS = {
    "date": "console.cases_col_date",
    "village": "console.cases_col_village",
    "state": "console.cases_col_state",
    "due": "console.cases_col_due",
}


def _flash(request: web.Request, toast: str | None, params: dict[str, Any], done: bool) -> str:
    body = json.dumps({"k": toast or "console.case_done", "p": params, "ok": done}, ensure_ascii=True)
    packed = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
    mac = hmac.new(deps_of(request).secret, FLASH_MAC + packed.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{packed}.{mac}"


def _said(request: web.Request) -> dict[str, Any] | None:
    """What the step before the redirect did (signed by us, so no one else can make it say anything)."""
    raw = request.cookies.get(FLASH, "")
    packed, _, mac = raw[:4000].partition(".")
    want = hmac.new(deps_of(request).secret, FLASH_MAC + packed.encode(), hashlib.sha256).hexdigest()[:32]
    if not packed or not hmac.compare_digest(mac, want):
        return None
    try:
        said = json.loads(base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4)))
    except (ValueError, binascii.Error):
        return None
    if (
        not isinstance(said, dict)
        or not KEY.fullmatch(str(said.get("k")))
        or not isinstance(said.get("p"), dict)
    ):
        return None
    return said


def _case_path(receipt: str) -> str:
    return f"{LIST}/{receipt}"


async def case_list(request: web.Request) -> web.Response:
    """The cases of the person's scope: filtered, searched, sorted, 50 a page."""
    actor = actor_of(request)
    if not may_open(actor, SECTION):
        return not_found(request)
    deps = deps_of(request)
    filters = cases.read_filters(request.query)
    async with deps.uow() as uow:
        listed = await cases.list_cases(uow, deps.clock, actor, filters)

    def link(**changes: Any) -> str:
        return "?" + urlencode(listed.filters.params(**changes))

    context = {
        "listed": listed,
        "f": listed.filters,
        "link": link,
        "states": list(DeclarationStatus),
        "risks": [r.code for r in risk_types.risk_types()],
        "headings": SORT_HEADINGS,
        "first_way": cases.FIRST_WAY,
        "case_path": _case_path,
    }
    return page(request, "console/cases.html", context)


async def _show(
    request: web.Request, receipt: str, *, said: dict[str, Any] | None = None, revealed: str | None = None,
    status: int = 200,
) -> web.Response:  # fmt: skip
    deps = deps_of(request)
    async with deps.uow() as uow:
        view = await cases.open_case(uow, deps.clock, deps.protector, actor_of(request), receipt)
    if view is None:
        return not_found(request)
    context = {
        "view": view,
        "said": said,
        "revealed": revealed,
        "here": _case_path(view.declaration.receipt),
        "fetchable": deps.telegram_file is not None,
    }
    return page(request, "console/case.html", context, status=status)


async def case_page(request: web.Request) -> web.Response:
    """One case: every answer (the ID number masked), its files, its history, what may be done."""
    if not may_open(actor_of(request), SECTION):
        return not_found(request)
    said = _said(request)
    response = await _show(request, request.match_info["receipt"], said=said)
    if FLASH in request.cookies:
        response.del_cookie(FLASH, path=LIST)
    return response


async def take_step(request: web.Request) -> web.StreamResponse:
    """A step of the case, by the chat's own use case; then back to the case (POST, redirect, GET)."""
    actor = actor_of(request)
    if not may_open(actor, SECTION):
        return not_found(request)
    deps = deps_of(request)
    receipt = request.match_info["receipt"]
    form = await request.post()
    fields = {name: value for name in FIELDS if isinstance(value := form.get(name), str)}
    async with deps.uow() as uow:
        outcome = await cases.act(uow, deps.clock, deps.rules, actor, receipt, fields)
        if outcome is None:
            return not_found(request)
        await uow.commit()
    deps.wake_sender()
    response = web.HTTPSeeOther(_case_path(receipt))
    response.set_cookie(
        FLASH,
        _flash(request, outcome.toast, outcome.params, outcome.done),
        httponly=True,
        samesite="Strict",
        secure=deps.secure_cookies or request.secure,
        path=LIST,
        max_age=60,
    )
    raise response


async def reveal(request: web.Request) -> web.Response:
    """The full ID number for township staff: recorded in the case's history, and shown in this
    answer only (never in an address or a cookie; reloading the case shows it masked again)."""
    actor = actor_of(request)
    if not may_open(actor, SECTION):
        return not_found(request)
    deps = deps_of(request)
    receipt = request.match_info["receipt"]
    async with deps.uow() as uow:
        revealed = await cases.reveal_id(uow, deps.clock, deps.protector, actor, receipt)
        if revealed is None:
            return not_found(request)
        if revealed.number is not None:
            await uow.commit()
    if revealed.number is None:
        said = {"k": revealed.refusal or "console.case_reveal_refused", "p": {}, "ok": False}
        return await _show(request, receipt, said=said, status=403)
    return await _show(request, receipt, revealed=revealed.number)


async def case_file(request: web.Request) -> web.StreamResponse:
    """A photo or voice note of a case the person may see."""
    actor = actor_of(request)
    number = request.match_info["n"]
    if not may_open(actor, SECTION) or not number.isdigit() or len(number) > 3:
        return not_found(request)
    deps = deps_of(request)
    async with deps.uow() as uow:
        found = await cases.case_file(uow, actor, request.match_info["receipt"], int(number))
    if found is None:
        return not_found(request)
    if found.upload is not None:
        content_type, data = found.upload
        headers = {}
        if content_type not in IMAGE_TYPES:
            content_type = "application/octet-stream"
            headers["Content-Disposition"] = "attachment"
        return web.Response(body=data, content_type=content_type, headers=headers)
    fetch = deps.telegram_file
    fetched = await fetch(found.file_ref) if fetch is not None and found.file_ref else None
    if fetched is None:
        return not_found(request)
    return web.Response(body=fetched, content_type=CHAT_TYPES.get(found.kind, "application/octet-stream"))


def routes(app: web.Application) -> None:
    app.router.add_get(LIST, case_list)
    app.router.add_get(LIST + "/{receipt:[0-9]{1,20}}", case_page)
    app.router.add_post(LIST + "/{receipt:[0-9]{1,20}}", take_step)
    app.router.add_post(LIST + "/{receipt:[0-9]{1,20}}/reveal", reveal)
    app.router.add_get(LIST + "/{receipt:[0-9]{1,20}}/files/{n:[0-9]{1,3}}", case_file)
