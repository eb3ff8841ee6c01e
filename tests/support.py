"""Shared test helpers: a controllable clock and database URLs for both engines."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from domain.actor import Actor, actor_for
from domain.model import Channel
from domain.ports import Clock, UnitOfWork
from storage.db import create_engine

SHANGHAI = ZoneInfo("Asia/Shanghai")


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


def postgres_url() -> str | None:
    return os.environ.get("TEST_DATABASE_URL") or None


@asynccontextmanager
async def database(kind: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An empty database of `kind` ("sqlite" or "postgresql"); a PostgreSQL one is a fresh schema."""
    if kind == "sqlite":
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
        try:
            yield engine
        finally:
            await engine.dispose()
        return
    url = postgres_url()
    assert url is not None
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(url)
    async with admin.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(url, connect_args={"server_settings": {"search_path": schema}})
    try:
        yield engine
    finally:
        await engine.dispose()
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


ROSTER = Path(__file__).resolve().parent.parent / "docs" / "roster-example.csv"


async def seed_roster(uow_factory: object, path: Path = ROSTER) -> None:
    """Import the example roster (two townships, four villages, five people) the real way."""
    from bot.roster_file import read_rows
    from domain import roster

    rows = roster.parse(read_rows(path))
    async with uow_factory() as uow:  # type: ignore[operator]
        await roster.apply(uow, rows)
        await uow.commit()


async def chat(uow: UnitOfWork, clock: Clock, address: str, *, language: str | None = None) -> Actor:
    """The person of a Telegram chat as a use case's actor (a stranger becomes a household)."""
    return await actor_for(uow, clock, Channel.TELEGRAM, address, language=language)


CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


async def fill_web_form(url: str, fields: dict[str, str], *, shows: str = "") -> tuple[str, str]:
    """Open the public web form at `url` as a browser does (its CSRF cookie and token), send it
    with `fields` (multipart, an empty file input) and return (the form page, the answer page).
    The form page must contain `shows`; the answer must be 200."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        async with client.get(url) as page:
            html = await page.text()
            assert page.status == 200 and shows in html, html
        token = CSRF_FIELD.search(html)
        assert token
        form = aiohttp.FormData()
        for name, value in {"csrf": token[1], **fields}.items():
            form.add_field(name, value)
        form.add_field("photos", b"", filename="", content_type="application/octet-stream")
        async with client.post(url, data=form) as sent:
            body = await sent.text()
            assert sent.status == 200, body
            return html, body
