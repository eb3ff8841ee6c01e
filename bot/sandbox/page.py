"""The sandbox page: one chat pane per demo person, served by the service's own aiohttp app.

GET  /sandbox                 the page (Simplified Chinese; page.html)
GET  /sandbox/api/state       panes and chats, and the phone pane's texts, as JSON
GET  /sandbox/api/events      server-sent events: "changed" whenever a chat or the demo's progress changes
GET  /sandbox/qr.png          the QR code of the farmer's village
POST /sandbox/api/send        {persona, epoch, text}
POST /sandbox/api/keyboard    {persona, epoch, text}: a reply-keyboard button
POST /sandbox/api/press       {persona, epoch, message_id, row, column, label}: an inline button
POST /sandbox/api/scan        {epoch}: the farmer scans the village's QR code
POST /sandbox/api/reset       start the demo over; answers the new epoch
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from qr.links import qr_png


class SandboxRefused(Exception):
    """A request from the page that cannot be done; `message` is shown to the person as is."""

    def __init__(self, message: str, *, status: int = 409, stale: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.stale = stale


class Answered(Protocol):
    """What the bot answered to a button press."""

    @property
    def text(self) -> str: ...
    @property
    def alert(self) -> bool: ...


class Sandbox(Protocol):
    """What the page asks of the sandbox (bot.sandbox.runtime.Sandbox)."""

    emulator: Any
    epoch: str
    closing: bool

    def village_link(self) -> str: ...
    async def state(self) -> dict[str, Any]: ...
    async def signature(self) -> tuple[object, ...]: ...
    async def send_text(self, slug: str, epoch: str, text: str) -> None: ...
    async def tap_keyboard(self, slug: str, epoch: str, text: str) -> None: ...
    async def scan(self, epoch: str) -> None: ...
    async def reset(self) -> str: ...
    async def press(
        self, slug: str, epoch: str, message_id: int, row: int, column: int, label: str | None = None
    ) -> Answered: ...


ROOT = "/sandbox"
PAGE = Path(__file__).with_name("page.html")
SANDBOX: web.AppKey[Sandbox] = web.AppKey("sandbox")
KEEPALIVE = 15.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def mount(app: web.Application, sandbox: Sandbox) -> None:
    """Add the sandbox's routes to the service's web app."""
    app[SANDBOX] = sandbox
    app.router.add_get("/", home)
    app.router.add_get(ROOT, page)
    app.router.add_get(ROOT + "/qr.png", qr)
    app.router.add_get(ROOT + "/api/state", state)
    app.router.add_get(ROOT + "/api/events", events)
    for name, handler in (
        ("send", send),
        ("keyboard", keyboard),
        ("press", press),
        ("scan", scan),
        ("reset", reset),
    ):
        app.router.add_post(f"{ROOT}/api/{name}", _refusals(handler))


async def home(request: web.Request) -> web.Response:
    """The sandbox is the only page there is: send visitors of / to it."""
    raise web.HTTPFound(ROOT)


def _refusals(handler: Handler) -> Handler:
    """Answer a refusal or a malformed request with a JSON error the page shows as is."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except SandboxRefused as exc:
            body = {
                "ok": False,
                "error": exc.message,
                "stale": exc.stale,
                "epoch": request.app[SANDBOX].epoch,
            }
            return web.json_response(body, status=exc.status)
        except Malformed:
            return web.json_response({"ok": False, "error": "请求的格式不对。"}, status=400)

    return wrapped


class Malformed(Exception):
    """The request's body is not the JSON object the endpoint takes."""


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.text() or "{}")
    except ValueError:
        raise Malformed from None
    if not isinstance(data, dict):
        raise Malformed
    return data


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise Malformed
    return value


def _label(body: dict[str, Any]) -> str | None:
    """The label the page showed on the pressed button (at most 64 characters), if it sent one."""
    value = body.get("label")
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise Malformed
    return value


def _number(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Malformed
    return value


def _epoch(body: dict[str, Any]) -> str:
    """The demo the page was showing; a missing one is as stale as an old one."""
    return str(body.get("epoch") or "")


async def page(request: web.Request) -> web.Response:
    """The page itself; it draws everything from /api/state."""
    return web.Response(text=PAGE.read_text("utf-8"), content_type="text/html", charset="utf-8")


async def qr(request: web.Request) -> web.Response:
    """The QR code printed on the farmer village's flyer."""
    png = qr_png(request.app[SANDBOX].village_link(), box_size=6)
    return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "no-store"})


async def state(request: web.Request) -> web.Response:
    return web.json_response(await request.app[SANDBOX].state(), headers={"Cache-Control": "no-store"})


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: one `changed` whenever the chats change, a comment now and then."""
    sandbox = request.app[SANDBOX]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    shown: tuple[object, ...] | None = None
    seen = sandbox.emulator.changes
    idle = 0.0
    try:
        while not sandbox.closing:
            now = await sandbox.signature()
            if now != shown:
                shown = now
                await response.write(
                    f"event: changed\ndata: {json.dumps({'epoch': sandbox.epoch})}\n\n".encode()
                )
                idle = 0.0
            elif idle >= KEEPALIVE:
                await response.write(b": keep-alive\n\n")
                idle = 0.0
            # Short waits, so shutting down never waits for a quiet page.
            before = asyncio.get_running_loop().time()
            seen = await sandbox.emulator.wait_changed(seen, 1.0)
            idle += asyncio.get_running_loop().time() - before
    except ConnectionResetError:
        pass  # the page was closed
    return response


async def send(request: web.Request) -> web.Response:
    body = await _body(request)
    await request.app[SANDBOX].send_text(_text(body, "persona"), _epoch(body), _text(body, "text"))
    return web.json_response({"ok": True})


async def keyboard(request: web.Request) -> web.Response:
    body = await _body(request)
    await request.app[SANDBOX].tap_keyboard(_text(body, "persona"), _epoch(body), _text(body, "text"))
    return web.json_response({"ok": True})


async def press(request: web.Request) -> web.Response:
    body = await _body(request)
    answer = await request.app[SANDBOX].press(
        _text(body, "persona"),
        _epoch(body),
        _number(body, "message_id"),
        _number(body, "row"),
        _number(body, "column"),
        _label(body),
    )
    return web.json_response({"ok": True, "answer": answer.text, "alert": answer.alert})


async def scan(request: web.Request) -> web.Response:
    body = await _body(request)
    await request.app[SANDBOX].scan(_epoch(body))
    return web.json_response({"ok": True})


async def reset(request: web.Request) -> web.Response:
    epoch = await request.app[SANDBOX].reset()
    return web.json_response({"ok": True, "epoch": epoch})
