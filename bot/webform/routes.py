"""The public pages: landing page of a printed code, the web form, the status page, 代报 links.

GET       /q/<payload>         the landing page of a village's printed code (a scan is counted)
GET|POST  /q/<payload>/form    the declaration form for that village
GET|POST  /d/<token>/form      the same form opened by a cadre's 代报 link (short-lived, signed)
GET|POST  /status              a declaration looked up by receipt number and phone number
POST      /status/objection    the household's objection to 不纳入, from the status page
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qsl

from aiohttp import BodyPartReader, MultipartReader, StreamReader, web
from aiohttp.typedefs import Middleware

from bot.templating import language_of
from bot.webform import pages
from bot.webform.safety import (
    CSRF_FIELD,
    MAX_BODY,
    MAX_PARTS,
    MAX_PHOTO,
    MAX_PHOTOS,
    MAX_TEXT_BODY,
    MAX_TEXT_PART,
    Counters,
    Limits,
    csrf_cookie,
    csrf_ok,
    csrf_token,
    image_type,
    objection_proof,
    objection_token,
    receipt_of,
    receipt_token,
    security_headers,
    set_csrf_cookie,
)
from domain import delivery, validation, web_intake
from domain.model import HOTLINE, Person, Village
from domain.ports import Clock, DeadlineRules, Protector, UnitOfWork
from domain.web_intake import Photo
from locales import gettext
from qr.cadre_links import verify_cadre_link
from qr.links import deep_link
from qr.payload import PayloadError, is_village_payload, verify_village

log = logging.getLogger(__name__)
MAX_OBJECTION_BODY = 4 * MAX_TEXT_PART  # the reason (500 characters, URL-encoded), the tokens
PUBLIC_PREFIXES = ("/q/", "/d/", "/r/", "/status")


@dataclass
class WebDeps:
    """What the public pages need from the service."""

    uow: Callable[[], UnitOfWork]
    clock: Clock
    rules: DeadlineRules
    protector: Protector
    secret: bytes
    bot_username: Callable[[], str | None] = lambda: None
    wake_sender: Callable[[], None] = lambda: None
    secure_cookies: bool = False
    limits: Limits = field(default_factory=Limits)


class TooBig(Exception):
    """The request body is larger than any honest form."""


@dataclass
class FormSubmission:
    fields: dict[str, Any]
    photos: list[Photo]
    photo_error: tuple[str, dict[str, Any]] | None = None


@dataclass(frozen=True)
class Target:
    """Whom the form files for: a village, and the cadre for 代报."""

    village: Village
    cadre: Person | None = None


class PublicPages:
    def __init__(self, deps: WebDeps) -> None:
        self.deps = deps
        # Counted in the database: every worker behind the load balancer counts the same.
        self.counters = Counters(deps.uow, deps.clock, deps.secret, deps.limits)

    # --- helpers ---------------------------------------------------------------------------

    def _with_cookie(
        self, request: web.Request, response: web.Response, cookie: tuple[str, bool]
    ) -> web.Response:
        """`response`, setting the CSRF cookie its form's token was made for when it is new."""
        if cookie[1]:
            set_csrf_cookie(response, cookie[0], secure=self.deps.secure_cookies or request.secure)
        return response

    def _message(
        self, request: web.Request, status: int, title: str, text: str, **params: Any
    ) -> web.Response:
        return pages.message(request, status, title, text, **params)

    def _payload_refused(self, request: web.Request, reason: str) -> web.Response:
        if reason == "expired":
            return self._message(request, 410, "web.expired_title", "start.expired_payload")
        return self._message(request, 404, "web.not_found_title", "start.bad_payload")

    def _client(self, request: web.Request) -> str:
        return request.remote or "-"

    async def _village_of(self, payload: str, *, count: bool) -> Village | PayloadError | None:
        """The village of a printed code's payload (counting the scan), an error, or None if unknown."""
        try:
            if not is_village_payload(payload):
                raise PayloadError("malformed")
            scanned = verify_village(self.deps.secret, payload, self.deps.clock.now().date())
        except PayloadError as exc:
            log.info("refused a landing payload: %s", exc.reason)
            return exc
        async with self.deps.uow() as uow:
            if count:
                village = await web_intake.record_scan(
                    uow, self.deps.clock, scanned.village_code, scanned.batch, "web"
                )
                await uow.commit()
            else:
                village = await web_intake.village_of(uow, scanned.village_code)
        return village

    async def _target(self, request: web.Request) -> Target | web.Response:
        """Whom the form at this address files for, or the page that says why it cannot be used."""
        if "payload" in request.match_info:
            found = await self._village_of(request.match_info["payload"], count=False)
            if isinstance(found, PayloadError):
                return self._payload_refused(request, found.reason)
            if found is None:
                return self._message(request, 404, "web.not_found_title", "start.unknown_village")
            return Target(found)
        try:
            link = verify_cadre_link(self.deps.secret, request.match_info["token"], self.deps.clock.now())
        except PayloadError as exc:
            if exc.reason == "expired":
                return self._message(request, 410, "web.expired_title", "web.link_expired")
            return self._message(request, 404, "web.not_found_title", "web.link_bad")
        async with self.deps.uow() as uow:
            allowed = await web_intake.cadre_for_village(uow, link.person_id, link.village_code)
        if allowed is None:
            return self._message(request, 403, "web.not_allowed_title", "web.link_not_yours")
        return Target(allowed[1], allowed[0])

    # --- the landing page ---------------------------------------------------------------------

    async def landing(self, request: web.Request) -> web.Response:
        """Name the village and offer Telegram or the web form."""
        payload = request.match_info["payload"]
        found = await self._village_of(payload, count=request.method == "GET")  # not HEAD (link previews)
        if isinstance(found, PayloadError):
            return self._payload_refused(request, found.reason)
        if found is None:
            return self._message(request, 404, "web.not_found_title", "start.unknown_village")
        username = self.deps.bot_username()
        link = deep_link(username, payload) if username else None
        return pages.landing(request, found.name, found.township_name, link, f"/q/{payload}/form")

    # --- the form -------------------------------------------------------------------------------

    async def show_form(self, request: web.Request) -> web.Response:
        """The empty declaration form."""
        target = await self._target(request)
        if isinstance(target, web.Response):
            return target
        cookie = csrf_cookie(request)
        view = pages.FormView(
            action=request.path,
            village=target.village.name,
            csrf=csrf_token(self.deps.secret, cookie[0], request.path),
            cadre=target.cadre is not None,
            texts=delivery.texts_on(),
        )
        return self._with_cookie(request, pages.form(request, view), cookie)

    async def submit_form(self, request: web.Request) -> web.Response:
        """Check the answers; show them again with what is wrong, or submit and show the receipt."""
        client = self._client(request)
        if not await self.counters.allow(posts_per_address=client):
            return self._message(request, 429, "web.slow_down_title", "web.slow_down")
        target = await self._target(request)
        if isinstance(target, web.Response):
            return target
        try:
            sent = await read_form(request)
        except TooBig:
            return self._message(
                request, 413, "web.too_big_title", "web.too_big", max_mb=MAX_PHOTO // (1024 * 1024)
            )
        if not csrf_ok(self.deps.secret, request, str(sent.fields.get(CSRF_FIELD, "")), request.path):
            return self._message(request, 403, "web.csrf_title", "web.csrf")
        answers = web_intake.check(
            sent.fields,
            clock=self.deps.clock,
            protector=self.deps.protector,
            filed_by_cadre=target.cadre.id if target.cadre else None,
        )
        if answers.errors or sent.photo_error:
            cookie = csrf_cookie(request)
            view = pages.FormView(
                action=request.path,
                village=target.village.name,
                csrf=csrf_token(self.deps.secret, cookie[0], request.path),
                cadre=target.cadre is not None,
                texts=delivery.texts_on(),
                values=sent.fields,
                errors=answers.errors,
                photo_error=sent.photo_error or (("web.photos_again", {}) if sent.photos else None),
            )
            return self._with_cookie(request, pages.form(request, view, status=400), cookie)
        phone = answers.draft.phone or ""
        sender = {"per_cadre": str(target.cadre.id)} if target.cadre else {"per_address": client}
        if not await self.counters.allow(**sender, per_phone=phone):
            return self._message(request, 429, "web.slow_down_title", "web.slow_down")
        async with self.deps.uow() as uow:
            done = await web_intake.declare(
                uow,
                self.deps.clock,
                self.deps.rules,
                target.village,
                answers.draft,
                sent.photos,
                cadre=target.cadre,
            )
            await uow.commit()
        if done.declaration is None:
            return self._message(request, 409, "web.repeat_title", "web.repeat")
        self.deps.wake_sender()
        # Post, then redirect: reloading the receipt page shows it again rather than posting again.
        raise web.HTTPSeeOther(f"/r/{receipt_token(self.deps.secret, done.declaration.receipt)}")

    async def show_receipt(self, request: web.Request) -> web.Response:
        """The receipt page a submitted form is redirected to: the number and the village only."""
        receipt = receipt_of(self.deps.secret, request.match_info["token"][:80])
        found = None
        if receipt is not None:
            async with self.deps.uow() as uow:
                found = await web_intake.receipt_of(uow, receipt)
        if found is None:
            return self._message(request, 404, "web.not_found_title", "start.bad_payload")
        return pages.receipt(request, found.receipt, found.village)

    # --- the status page ----------------------------------------------------------------------

    async def show_status(self, request: web.Request) -> web.Response:
        """The form asking for the receipt number and the phone number."""
        cookie = csrf_cookie(request)
        token = csrf_token(self.deps.secret, cookie[0], "/status")
        return self._with_cookie(request, pages.status_form(request, token), cookie)

    async def look_up(self, request: web.Request) -> web.Response:
        """A declaration's state, only for its own receipt number and phone number."""
        client = self._client(request)
        if not await self.counters.allow(lookups_per_address=client):
            return self._message(request, 429, "web.slow_down_title", "web.slow_down")
        try:
            form = (await read_form(request, limit=MAX_TEXT_PART)).fields  # three short fields
        except TooBig:
            return self._message(
                request, 413, "web.too_big_title", "web.too_big", max_mb=MAX_PHOTO // (1024 * 1024)
            )
        if not csrf_ok(self.deps.secret, request, str(form.get(CSRF_FIELD, "")), "/status"):
            return self._message(request, 403, "web.csrf_title", "web.csrf")
        receipt, phone = str(form.get("receipt", ""))[:40], str(form.get("phone", ""))[:40]
        async with self.deps.uow() as uow:
            status = await web_intake.look_up(uow, self.deps.clock, self.deps.protector, receipt, phone)
        if status is None:
            cookie = csrf_cookie(request)
            token = csrf_token(self.deps.secret, cookie[0], "/status")
            page = pages.status_form(request, token, receipt=receipt, not_found=True)
            return self._with_cookie(request, page, cookie)
        # The objection form carries the receipt and the phone just proven, signed, not the number.
        number = validation.phone(phone)  # as the lookup read it, since it matched
        signed = objection_token(self.deps.secret, status.receipt, number, self.deps.clock.now())
        return self._status_page(request, status, signed)

    def _status_page(
        self,
        request: web.Request,
        status: web_intake.Status,
        signed: str,
        *,
        typed: str = "",
        problem: tuple[str, dict[str, Any]] | None = None,
    ) -> web.Response:
        """Where a declaration stands; and the objection's form when it may be objected to."""
        form = None
        cookie = csrf_cookie(request)
        if status.objection == "open":
            csrf = csrf_token(self.deps.secret, cookie[0], "/status/objection")
            form = pages.ObjectionForm(csrf, signed, typed, problem)
        rows: list[tuple[str, Any]] = [
            ("web.receipt", status.receipt),
            ("web.village", status.village),
            ("web.submitted_on", {"$date": status.submitted_on.isoformat()}),
            ("web.state", {"$t": f"state.{status.state.value}"}),
            ("web.next", {"$t": status.next_step}),
        ]
        if status.due is not None:
            rows.append(("web.due", {"$date": status.due.isoformat()}))
        rows.append(("web.risks_short", {"$risks": list(status.risks)}))
        if status.id_masked is not None or status.id_unreadable:
            rows.append(("web.id_number_short", status.id_masked or {"$t": "web.id_unreadable"}))
        view = pages.StatusView(rows, status.reason, status.objection, form)
        page = pages.status(request, view, status=400 if problem else 200)
        return self._with_cookie(request, page, cookie) if form else page

    async def show_objection(self, request: web.Request) -> web.Response:
        """The objection's address opened (a language switch, a bookmark): the status page's form."""
        raise web.HTTPSeeOther("/status")

    async def object_to(self, request: web.Request) -> web.Response:
        """The household's objection to 不纳入: the receipt and the phone proven again (the signed
        token of the status page), then the chat's objection, as the household via the web."""
        client = self._client(request)
        if not await self.counters.allow(lookups_per_address=client):
            return self._message(request, 429, "web.slow_down_title", "web.slow_down")
        try:
            form = (await read_form(request, limit=MAX_OBJECTION_BODY)).fields
        except TooBig:
            return self._message(
                request, 413, "web.too_big_title", "web.too_big", max_mb=MAX_PHOTO // (1024 * 1024)
            )
        if not csrf_ok(self.deps.secret, request, str(form.get(CSRF_FIELD, "")), "/status/objection"):
            return self._message(request, 403, "web.csrf_title", "web.csrf")
        signed = str(form.get("token", ""))[:80]
        proof = objection_proof(self.deps.secret, signed, self.deps.clock.now())
        if proof is None:
            return self._message(request, 410, "web.expired_title", "web.objection_expired")
        typed = str(form.get("objection", ""))
        async with self.deps.uow() as uow:
            done = await web_intake.object_to(
                uow, self.deps.clock, self.deps.rules, self.deps.protector, proof[0], proof[1], typed
            )
            if done.done:
                await uow.commit()
        if done.status is None:
            return self._message(request, 403, "web.not_allowed_title", "web.objection_expired")
        if done.problem is not None:
            return self._status_page(request, done.status, signed, typed=typed, problem=done.problem)
        if done.refusal is not None:
            return self._message(request, 409, "web.objection_refused_title", done.refusal)
        self.deps.wake_sender()
        return self._message(
            request, 200, "web.objection_sent_title", "web.objection_sent", receipt=done.status.receipt
        )


class _Capped:
    """A request's body stream that raises `TooBig` once more than `limit` bytes have come in.

    Counted as the body streams (aiohttp's total of bytes received), not taken from
    Content-Length: a chunked upload has none. Everything that reads the body goes through it,
    the multipart reader's search for boundaries and its skipping of parts included, so nothing
    reads on past the limit.
    """

    def __init__(self, stream: StreamReader, limit: int) -> None:
        self._stream = stream
        self._limit = limit

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _check(self) -> None:
        if self._stream.total_bytes > self._limit:
            raise TooBig

    async def read(self, n: int = -1) -> bytes:
        if n >= 0:
            data = await self._stream.read(n)
            self._check()
            return data
        chunks = []
        while chunk := await self.read(64 * 1024):
            chunks.append(chunk)
        return b"".join(chunks)

    async def readline(self, *, max_line_length: int | None = None) -> bytes:
        line = await self._stream.readline(max_line_length=max_line_length)
        self._check()
        return line

    async def readany(self) -> bytes:
        data = await self._stream.readany()
        self._check()
        return data


async def read_form(request: web.Request, *, limit: int = MAX_BODY) -> FormSubmission:
    """The form's fields and photos, read within the size limits.

    A field longer than allowed is cut (and then refused by the check as too long); a photo too
    large or not an image is refused by name; a body larger than `limit` (or, without photos,
    than MAX_TEXT_BODY) is `TooBig` as soon as that many bytes have come, unread beyond them.
    """
    if (request.content_length or 0) > limit:
        raise TooBig
    fields: dict[str, Any] = {"risks": []}
    photos: list[Photo] = []
    problem: tuple[str, dict[str, Any]] | None = None
    if not request.content_type.startswith("multipart/"):
        body = await _Capped(request.content, min(limit, MAX_TEXT_BODY)).read()
        if request.content_type in ("", "application/x-www-form-urlencoded"):  # as request.post()
            charset = request.charset or "utf-8"
            text = body.decode(charset, errors="replace")
            posted = parse_qsl(text, keep_blank_values=True, encoding=charset, errors="replace")
            for name, raw in posted:
                _keep(fields, name, raw[:MAX_TEXT_PART])
        return FormSubmission(fields, photos)
    reader = MultipartReader(
        request.headers,
        cast(StreamReader, _Capped(request.content, limit)),
        client_max_size=limit,
        max_size_error_cls=TooBig,
    )
    parts = 0
    while (part := await reader.next()) is not None:
        parts += 1
        if parts > MAX_PARTS:
            raise TooBig
        if not isinstance(part, BodyPartReader) or not part.name:
            continue
        if part.filename is not None:
            data, cut = await _read(part, MAX_PHOTO)
            if not data:
                continue  # the file input left empty
            kind = image_type(data)
            if cut:
                problem = ("web.photo_too_big", {"max_mb": MAX_PHOTO // (1024 * 1024)})
            elif kind is None:
                problem = ("web.photo_type", {})
            elif len(photos) >= MAX_PHOTOS:
                problem = ("web.too_many_photos", {"max": MAX_PHOTOS})
            else:
                photos.append(Photo(kind, data))
        else:
            data, cut = await _read(part, MAX_TEXT_PART)
            text = data.decode("utf-8", errors="replace")
            _keep(fields, part.name, text)  # a cut text is still over MAX_FIELD: the check refuses it
    return FormSubmission(fields, photos, problem)


async def _read(part: BodyPartReader, limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes of a part, and whether there was more (the rest is skipped)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(64 * 1024):
        size += len(chunk)
        if size > limit:
            return b"".join(chunks), True
        chunks.append(chunk)
    return b"".join(chunks), False


def _keep(fields: dict[str, Any], name: str, text: str) -> None:
    if name == "risks":
        if len(fields["risks"]) < 20:
            fields["risks"].append(text[:32])
    elif len(fields) < 64:
        fields[name] = text


def headers_middleware() -> Middleware:
    """Security headers on the public pages, and a polite page (in the page's language) instead of
    any failure."""
    headers = security_headers()

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not request.path.startswith(PUBLIC_PREFIXES):
            return await handler(request)
        try:
            response = await handler(request)
        except web.HTTPRequestEntityTooLarge:
            response = _failure(
                request, 413, "web.too_big_title", "web.too_big", max_mb=MAX_PHOTO // (1024 * 1024)
            )
        except web.HTTPException as exc:
            if exc.status >= 400:
                response = _failure(request, exc.status, "web.not_found_title", "web.page_missing")
            else:
                raise
        except Exception:
            log.exception("public page %s failed", request.method)
            response = _failure(request, 500, "web.error_title", "web.error")
        response.headers.update(headers)
        return response

    return middleware


def _failure(request: web.Request, status: int, title: str, text: str, **params: Any) -> web.Response:
    """The page that says what failed; plain text if even the page cannot be made."""
    try:
        return pages.message(request, status, title, text, **params)
    except Exception:
        log.exception("the page of a failure (%s) failed too", status)
        language = language_of(request)
        said = gettext(language, text).format(hotline=HOTLINE, **params)
        return web.Response(text=said, status=status, content_type="text/plain", charset="utf-8")


def mount(app: web.Application, deps: WebDeps) -> PublicPages:
    """Add the public pages to the web app."""
    public = PublicPages(deps)
    app.middlewares.append(headers_middleware())
    app.router.add_get("/q/{payload}", public.landing)
    app.router.add_get("/q/{payload}/form", public.show_form)
    app.router.add_post("/q/{payload}/form", public.submit_form)
    app.router.add_get("/d/{token}/form", public.show_form)
    app.router.add_post("/d/{token}/form", public.submit_form)
    app.router.add_get("/r/{token}", public.show_receipt)
    app.router.add_get("/status", public.show_status)
    app.router.add_post("/status", public.look_up)
    app.router.add_get("/status/objection", public.show_objection)
    app.router.add_post("/status/objection", public.object_to)
    return public
