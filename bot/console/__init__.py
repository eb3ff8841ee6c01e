"""The township's office: a web console for staff, the county and cadres (issue 13).

Signed in with a one-time link from /web in chat; every page calls the same use cases as the
chat, with the actor of the browser's session; what is outside a person's scope is a 404.
"""

from __future__ import annotations

from aiohttp import web

from bot.console import admin, auth, cases, overview, work
from bot.console.core import DEPS, ROOT, ConsoleDeps, session_middleware


async def _to_root(request: web.Request) -> web.Response:
    raise web.HTTPFound(f"{ROOT}/")


def mount(app: web.Application, deps: ConsoleDeps) -> None:
    """Add the console to the web app (templates are set up by bot.templating)."""
    app[DEPS] = deps
    app.middlewares.append(session_middleware())
    app.router.add_get(ROOT, _to_root)
    for module in (auth, overview, cases, work, admin):
        module.routes(app)


__all__ = ["ConsoleDeps", "mount"]
