"""The aiohttp web app: health for now; landing pages and webhook later."""

from __future__ import annotations

from aiohttp import web

from storage.outbox_store import OutboxStore

STORE: web.AppKey[OutboxStore] = web.AppKey("outbox_store", OutboxStore)


async def health(request: web.Request) -> web.Response:
    """Liveness plus the outbox backlog, for monitoring."""
    counts = await request.app[STORE].counts()
    return web.json_response({"ok": True, "outbox": counts})


def make_app(store: OutboxStore) -> web.Application:
    app = web.Application()
    app[STORE] = store
    app.router.add_get("/healthz", health)
    return app
