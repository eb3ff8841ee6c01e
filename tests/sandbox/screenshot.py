"""Take the README's screenshot of the sandbox.

    .venv/bin/python -m tests.sandbox.screenshot docs/sandbox.png

It runs a declaration through the page as the browser test does, then photographs the cadre's pane
with the tour at its next step.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from playwright.async_api import async_playwright, expect

from bot.sandbox.runtime import Sandbox
from bot.settings import load
from tests.sandbox.test_sandbox_browser import ARGS, CHROMIUM, declare_as_farmer, last_bot_message, switch


async def main(target: Path) -> None:
    with tempfile.TemporaryDirectory() as var:
        async with Sandbox(load(web_port=0, _env_file=None), var_dir=Path(var), poll_timeout=1) as sandbox:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
                page = await browser.new_page(viewport={"width": 900, "height": 720}, device_scale_factor=1)
                page.set_default_timeout(15_000)
                await page.goto(sandbox.url)
                await declare_as_farmer(page, menu=False)
                # Submitting was the tour's first step: it moves on to the cadre's 签收 by itself.
                await expect(page.locator("#tour")).to_contain_text("2/8")
                await switch(page, "cadre")
                await last_bot_message(page, "cadre", "新申报")
                await page.locator("#toast").evaluate("box => box.style.display = 'none'")
                await page.screenshot(path=str(target))
                await browser.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/sandbox.png")))
