"""What every console page shares: the services it uses, who is signed in, CSRF, the layout's
headers, and the answers for what is not there (404, the same for "not yours").

A page handler reads its actor with `actor_of(request)`; the session middleware has already
refused a request without a live session. Every POST carries the CSRF token of its session
(`csrf` field); the middleware refuses one without it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from bot import templating
from domain.actor import Actor
from domain.model import Role
from domain.office import logins
from domain.ports import Clock, DeadlineRules, Protector, UnitOfWork

log = logging.getLogger(__name__)
ROOT = "/console"
LOGIN = f"{ROOT}/login/"
SESSION_COOKIE = "fh_console"
CSRF_FIELD = "csrf"
ACTOR: web.RequestKey[Actor] = web.RequestKey("console_actor", Actor)
SESSION: web.RequestKey[str] = web.RequestKey("console_session", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Pages anyone may open: the sign-in link's page, and the page that says one is signed out.
OPEN = (LOGIN, f"{ROOT}/signed-out", "/static/")
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass
class ConsoleDeps:
    """What the console needs from the service."""

    uow: Callable[[], UnitOfWork]
    clock: Clock
    rules: DeadlineRules
    protector: Protector
    secret: bytes
    secure_cookies: bool = False
    wake_sender: Callable[[], None] = lambda: None
    public_url: str | None = None
    bot_username: Callable[[], str | None] = lambda: None
    # Telegram's files (photos, voice notes) by their file_id, fetched through the Bot API.
    telegram_file: Callable[[str], Awaitable[bytes | None]] | None = None
    default_locale: str = "zh_Hans"  # what the bot speaks to a person who chose no language
    extra: dict[str, Any] = field(default_factory=dict)


DEPS: web.AppKey[ConsoleDeps] = web.AppKey("console_deps", ConsoleDeps)


def deps_of(request: web.Request) -> ConsoleDeps:
    return request.app[DEPS]


def actor_of(request: web.Request) -> Actor:
    """Who is signed in (the middleware let the request through only with a live session)."""
    return request[ACTOR]


def csrf_token(request: web.Request) -> str:
    """The CSRF token of this browser's session, for every form the page holds."""
    mac = hmac.new(deps_of(request).secret, b"console-csrf:" + request[SESSION].encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def _csrf_ok(request: web.Request, sent: str) -> bool:
    return bool(sent) and hmac.compare_digest(csrf_token(request), sent)


def page(request: web.Request, name: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
    """A console page: the layout's context (who, the sections they may open, the CSRF token)."""
    actor = request.get(ACTOR)
    full = {
        "me": actor,
        "roles": Role,
        "csrf": csrf_token(request) if SESSION in request else "",
        "sections": sections_for(actor) if actor is not None else (),
        **context,
    }
    response = templating.render(request, name, full, status=status)
    response.headers.update(HEADERS)
    return response


def message(request: web.Request, status: int, title: str, text: str, **params: Any) -> web.Response:
    """A page that only says something (a refusal, a link that no longer works)."""
    return page(
        request, "console/message.html", {"title": title, "text": text, "params": params}, status=status
    )


def not_found(request: web.Request) -> web.Response:
    """What does not exist, and what is not the person's to see: the same answer."""
    return message(request, 404, "console.not_found_title", "console.not_found")


# The sections of the console, by role: (path under /console, catalog key of its name).
SECTIONS: dict[Role, tuple[tuple[str, str], ...]] = {
    Role.TOWNSHIP: (
        ("/", "console.nav_overview"), ("/cases", "console.nav_cases"), ("/notices", "console.nav_notices"),
        ("/campaigns", "console.nav_campaigns"), ("/ledger", "console.nav_ledger"),
        ("/roster", "console.nav_roster"), ("/files", "console.nav_files"),
    ),
    Role.COUNTY: (
        ("/", "console.nav_overview"), ("/cases", "console.nav_cases"), ("/files", "console.nav_files"),
    ),
    Role.CADRE: (
        ("/", "console.nav_overview"), ("/cases", "console.nav_cases"), ("/ledger", "console.nav_ledger"),
    ),
}  # fmt: skip


def sections_for(actor: Actor) -> tuple[tuple[str, str], ...]:
    return SECTIONS.get(actor.role, ())


def may_open(actor: Actor, section: str) -> bool:
    """Whether a section (its path under /console, e.g. "/roster") is one of the actor's."""
    return any(path == section for path, _ in sections_for(actor))


def session_middleware() -> Middleware:
    """Every console page needs a live session; every POST its CSRF token. Also: the console's
    security headers, and a polite page instead of any failure."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(ROOT) or request.path.startswith(OPEN):
            return await handler(request)
        deps = deps_of(request)
        token = request.cookies.get(SESSION_COOKIE, "")
        async with deps.uow() as uow:
            actor = await logins.signed_in(uow, deps.clock, token)
            await uow.commit()
        if actor is None:
            refused = message(request, 401, "console.signed_out_title", "console.sign_in_again")
            if token:
                refused.del_cookie(SESSION_COOKIE, path=ROOT)
            return refused
        request[ACTOR] = actor
        request[SESSION] = token
        templating.prefer(request, actor.locale or deps.default_locale)
        if request.method == "POST":
            form = await request.post()
            if not _csrf_ok(request, str(form.get(CSRF_FIELD, ""))):
                return message(request, 403, "console.csrf_title", "console.csrf")
        try:
            answered = await handler(request)
        except web.HTTPException as exc:
            if exc.status in (404, 405):
                return not_found(request)
            raise
        except Exception:
            log.exception("console page %s failed", request.method)
            return message(request, 500, "console.error_title", "console.error")
        answered.headers.update(HEADERS)
        return answered

    return middleware


def set_session_cookie(response: web.StreamResponse, request: web.Request, token: str) -> None:
    secure = deps_of(request).secure_cookies or request.secure
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=secure,
        path=ROOT,
        max_age=int(logins.LONGEST.total_seconds()),
    )
