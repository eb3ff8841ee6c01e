"""Take the README's screenshots of the sandbox.

    .venv/bin/python -m tests.sandbox.screenshot docs/sandbox.png

It runs a declaration through the page as the browser test does, then photographs the cadre's pane
with the tour at its next step (docs/sandbox.png). Then a household without Telegram declares on
the web form with texts agreed, the cadre acknowledges it, and the phone pane is photographed with
its two texts and the tour's step for it (docs/sandbox-phone.png, beside the first).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from playwright.async_api import Page, async_playwright, expect

from bot.sandbox.runtime import Sandbox
from bot.settings import load
from tests.sandbox.test_sandbox_browser import (
    ARGS,
    CHROMIUM,
    declare_as_farmer,
    last_bot_message,
    pane,
    switch,
)
from tests.sandbox.test_sandbox_sms import declare_on_the_web


async def no_toast(page: Page) -> None:
    await page.locator("#toast").evaluate("box => box.style.display = 'none'")


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
                tour = page.locator("#tour")
                await expect(tour).to_contain_text("2/9")
                await switch(page, "cadre")
                await last_bot_message(page, "cadre", "新申报")
                await no_toast(page)
                await page.screenshot(path=str(target))

                # The household without Telegram: the web form, its receipt text, the cadre's 签收.
                household = sandbox.demo.texted
                await declare_on_the_web(sandbox, household.phone)
                await last_bot_message(page, "cadre", "新申报", household.name)
                await pane(page, "cadre").get_by_role("button", name="签收", exact=True).last.click()
                await sandbox.sms.wait_for_texts(household.phone, 2, timeout=15)
                # The tour at its last step (done), over the phone's pane.
                for _ in range(7):
                    await tour.get_by_role("button", name="下一步").click()
                await expect(tour).to_contain_text("9/9")
                phone = pane(page, "phone")
                await expect(phone.locator(".msg.sms")).to_have_count(2)
                await expect(tour).to_contain_text("已完成")
                await phone.locator(".messages").evaluate("list => list.scrollTop = list.scrollHeight")
                await no_toast(page)
                await page.screenshot(path=str(target.with_name(target.stem + "-phone" + target.suffix)))
                await browser.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/sandbox.png")))
