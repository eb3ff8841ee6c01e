"""The aiohttp web app: health, the templates and static files, and the public pages (landing page,
web form, status page)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import aiohttp_jinja2
from aiohttp import web

from bot import templating
from bot.webform import WebDeps, mount
from bot.webform.safety import MAX_BODY
from storage.outbox_store import OutboxStore

STORE: web.AppKey[OutboxStore] = web.AppKey("outbox_store", OutboxStore)


async def health(request: web.Request) -> web.Response:
    """Liveness plus the outbox backlog, for monitoring."""
    counts = await request.app[STORE].counts()
    return web.json_response({"ok": True, "outbox": counts})


def versioned_static(app: web.Application) -> Callable[[str], str]:
    """`static(name)` for the templates: the address of a file under /static/ with its content's hash.

    aiohttp appends the hash (`?v=`) when `add_static(append_version=True)`, but only through the
    static resource's `url_for`, which aiohttp-jinja2's own `static()` does not use; a page that
    names the hash makes a browser fetch new styles after a deploy and keep unchanged ones.
    The files do not change while the service runs, so each address is worked out once.
    """
    resource = next(
        r for r in app.router.resources() if isinstance(r, web.StaticResource) and r.canonical == "/static"
    )

    @cache
    def static(name: str) -> str:
        return str(resource.url_for(filename=name.removeprefix("/static/").lstrip("/")))

    return static


def make_app(store: OutboxStore, public: WebDeps | None = None) -> web.Application:
    """The web app; with `public`, the landing page, the web form and the status page too."""
    app = web.Application(client_max_size=MAX_BODY)
    app[STORE] = store
    templating.setup(app)  # once, for the public pages and the console alike
    aiohttp_jinja2.get_env(app).globals["static"] = versioned_static(app)
    app.router.add_get("/healthz", health)
    if public is not None:
        mount(app, public)
    return app
