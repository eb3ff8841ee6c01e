"""Take the README's screenshots of the landing page and the web form, on a phone-sized screen.

    .venv/bin/python -m tests.web.screenshot docs/landing.png docs/web-form.png

It serves the public pages on a throwaway database with the example roster (needs a CJK font,
e.g. Debian's fonts-noto-cjk) and prints the size of each page in bytes.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any, cast

from aiohttp import web
from playwright.async_api import async_playwright

from bot.clock import SystemClock
from bot.crypto import FernetProtector
from bot.deadlines import PolicyRules
from bot.web import make_app
from bot.webform import WebDeps
from domain.policy import load_policy
from qr.payload import sign_village
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.outbox_store import OutboxStore
from storage.uow import SqlUnitOfWorkFactory
from tests.sandbox.test_sandbox_browser import ARGS, CHROMIUM
from tests.support import SHANGHAI, seed_roster

SECRET = b"screenshot-secret-0123456789"


async def main(landing_png: Path, form_png: Path | None) -> None:
    with tempfile.TemporaryDirectory() as var:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(var) / 'shot.db'}")
        await upgrade(engine)
        uow = SqlUnitOfWorkFactory(session_factory(engine))
        await seed_roster(uow)
        deps = WebDeps(
            uow=cast(Any, uow),
            clock=SystemClock(SHANGHAI),
            rules=PolicyRules(load_policy("anhui")),
            protector=FernetProtector(b"id:" + SECRET),
            secret=SECRET,
            bot_username=lambda: "fanghui_bot",
        )
        runner = web.AppRunner(make_app(OutboxStore(session_factory(engine)), deps), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        payload = sign_village(SECRET, "QS01", date.today() + timedelta(days=365), "B2611")
        try:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
                page = await browser.new_page(
                    viewport={"width": 375, "height": 667}, device_scale_factor=1, locale="zh-CN"
                )
                for path, target in ((f"/q/{payload}", landing_png), (f"/q/{payload}/form", form_png)):
                    response = await page.goto(f"http://127.0.0.1:{port}{path}")
                    assert response is not None and response.ok
                    size = len(await response.body())
                    print(f"{path.replace(payload, '<payload>')}: {size} bytes")
                    if target is not None:
                        await page.screenshot(path=str(target))
                await browser.close()
        finally:
            await runner.cleanup()
            await engine.dispose()


if __name__ == "__main__":
    landing = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/landing.png")
    form = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    asyncio.run(main(landing, form))
