"""Signing in with the one-time link from /web, and signing out.

GET  /console/login/<link>   whom the link signs in, and a button to sign in (a link preview
                             fetching the page uses nothing up)
POST /console/login/<link>   use the link once, open the session, go to the console
POST /console/logout         end this browser's session
GET  /console/signed-out     says so
"""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

from bot import templating
from bot.console.core import (
    CSRF_FIELD,
    LOGIN,
    ROOT,
    SESSION_COOKIE,
    deps_of,
    message,
    page,
    set_session_cookie,
)
from domain.office import logins
from qr.console_links import verify_login

LOGIN_CSRF = b"console-login-csrf:"


def _login_csrf(request: web.Request, signed: str) -> str:
    return hmac.new(deps_of(request).secret, LOGIN_CSRF + signed.encode(), hashlib.sha256).hexdigest()[:32]


def _refused(request: web.Request, key: str) -> web.Response:
    status = 410 if key in ("console.link_used", "console.link_expired") else 404
    return message(request, status, "console.link_title", key)


async def show_link(request: web.Request) -> web.Response:
    """Whom the link signs in, with the button that does it."""
    deps = deps_of(request)
    signed = request.match_info["link"]
    token = verify_login(deps.secret, signed)
    if token is None:
        return _refused(request, "console.link_bad")
    async with deps.uow() as uow:
        found = await logins.whom(uow, deps.clock, token)
    if isinstance(found, logins.Refused):
        return _refused(request, found.key)
    templating.prefer(request, found.locale or deps.default_locale)
    context = {"person": found, "action": request.path, "login_csrf": _login_csrf(request, signed)}
    return page(request, "console/login.html", context)


async def sign_in(request: web.Request) -> web.StreamResponse:
    """Use the link (once), open the session and go to the console."""
    deps = deps_of(request)
    signed = request.match_info["link"]
    form = await request.post()
    if not hmac.compare_digest(str(form.get(CSRF_FIELD, "")), _login_csrf(request, signed)):
        return message(request, 403, "console.csrf_title", "console.csrf")
    token = verify_login(deps.secret, signed)
    if token is None:
        return _refused(request, "console.link_bad")
    async with deps.uow() as uow:
        found = await logins.sign_in(uow, deps.clock, token)
        await uow.commit()
    if isinstance(found, logins.Refused):
        return _refused(request, found.key)
    _, session = found
    response = web.HTTPSeeOther(f"{ROOT}/")
    set_session_cookie(response, request, session)
    raise response


async def sign_out(request: web.Request) -> web.StreamResponse:
    """End this browser's session."""
    deps = deps_of(request)
    async with deps.uow() as uow:
        await logins.sign_out(uow, deps.clock, request.cookies.get(SESSION_COOKIE, ""))
        await uow.commit()
    response = web.HTTPSeeOther(f"{ROOT}/signed-out")
    response.del_cookie(SESSION_COOKIE, path=ROOT)
    raise response


async def signed_out(request: web.Request) -> web.Response:
    return message(request, 200, "console.signed_out_title", "console.signed_out")


def routes(app: web.Application) -> None:
    app.router.add_get(LOGIN + "{link}", show_link)
    app.router.add_post(LOGIN + "{link}", sign_in)
    app.router.add_post(f"{ROOT}/logout", sign_out)
    app.router.add_get(f"{ROOT}/signed-out", signed_out)
