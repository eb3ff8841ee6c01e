"""The aiohttp web app: health, and the public pages (landing page, web form, status page)."""

from __future__ import annotations

from aiohttp import web

from bot.webform import WebDeps, mount
from bot.webform.safety import MAX_BODY
from storage.outbox_store import OutboxStore

STORE: web.AppKey[OutboxStore] = web.AppKey("outbox_store", OutboxStore)


async def health(request: web.Request) -> web.Response:
    """Liveness plus the outbox backlog, for monitoring."""
    counts = await request.app[STORE].counts()
    return web.json_response({"ok": True, "outbox": counts})


def make_app(store: OutboxStore, public: WebDeps | None = None) -> web.Application:
    """The web app; with `public`, the landing page, the web form and the status page too."""
    app = web.Application(client_max_size=MAX_BODY)
    app[STORE] = store
    app.router.add_get("/healthz", health)
    if public is not None:
        mount(app, public)
    return app
