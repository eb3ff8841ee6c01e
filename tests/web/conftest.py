"""The public pages through aiohttp's test client, on a migrated SQLite database with the
example roster."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

from bot.crypto import FernetProtector
from bot.deadlines import PolicyRules
from bot.web import make_app
from bot.webform import PublicPages, WebDeps
from domain.policy import load_policy
from qr.payload import sign_village
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.outbox_store import OutboxStore
from storage.uow import SqlUnitOfWorkFactory
from tests.support import FakeClock, seed_roster

SECRET = b"web-test-secret-0123456789"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Site:
    client: TestClient[Any, Any]
    uow: SqlUnitOfWorkFactory
    clock: FakeClock
    protector: FernetProtector
    public: PublicPages

    def payload(
        self, code: str = "QS01", *, valid_until: date | None = None, batch: str | None = None
    ) -> str:
        until = valid_until or self.clock.now().date() + timedelta(days=365)
        return sign_village(SECRET, code, until, batch)

    async def csrf(self, path: str) -> str:
        """Open the form page (which sets the CSRF cookie) and return its token."""
        response = await self.client.get(path)
        assert response.status == 200, await response.text()
        found = CSRF.search(await response.text())
        assert found
        return found[1]

    async def post(
        self, path: str, fields: dict[str, Any], *, photos: list[bytes] | None = None
    ) -> tuple[int, str]:
        """Send the form as a browser does (multipart, an empty file input when no photo)."""
        form = FormData()
        for name, value in fields.items():
            for one in value if isinstance(value, list) else [value]:
                form.add_field(name, str(one))
        for n, photo in enumerate(photos or []):
            form.add_field("photos", photo, filename=f"p{n}.jpg", content_type="image/jpeg")
        if not photos:
            form.add_field("photos", b"", filename="", content_type="application/octet-stream")
        response = await self.client.post(path, data=form)
        return response.status, await response.text()


def answers(**changes: Any) -> dict[str, Any]:
    """A complete, valid declaration as the form sends it."""
    base: dict[str, Any] = {
        "consent": "yes",
        "name": "王大山",
        "declarant": "self",
        "relation": "spouse",
        "phone": "13912345678",
        "id_number": "",
        "household": "4",
        "risks": ["illness"],
        "fu_illness_cost": "3万",
        "description": "老伴住院做手术，花了三万多元",
    }
    base.update(changes)
    return base


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'web.db'}")
    await upgrade(engine)
    uow = SqlUnitOfWorkFactory(session_factory(engine))
    await seed_roster(uow)
    clock = FakeClock()
    protector = FernetProtector(b"id:" + SECRET)
    deps = WebDeps(
        uow=cast(Any, uow),
        clock=clock,
        rules=PolicyRules(load_policy("anhui")),
        protector=protector,
        secret=SECRET,
        bot_username=lambda: "fanghui_test_bot",
    )
    app = make_app(OutboxStore(session_factory(engine)), deps)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Site(client, uow, clock, protector, public_pages(app))
    finally:
        await client.close()
        await engine.dispose()


def public_pages(app: Any) -> PublicPages:
    """The PublicPages behind the mounted routes (its limiters are what the flood tests look at)."""
    for route in app.router.routes():
        handler = getattr(route.handler, "__self__", None)
        if isinstance(handler, PublicPages):
            return handler
    raise AssertionError("public pages not mounted")
