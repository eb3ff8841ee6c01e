"""The console through aiohttp's test client, on a migrated database (SQLite, and PostgreSQL when
TEST_DATABASE_URL names one) with a roster of two counties, their townships, cadres and staff, and
a county person; everyone's chat bound. `desk.sign_in(address)` signs a chat's person in."""

from __future__ import annotations

import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot import console, templating
from bot.console import ConsoleDeps
from bot.crypto import FernetProtector
from bot.deadlines import PolicyRules
from bot.web import make_app
from domain import roster, validation
from domain.actor import actor_for
from domain.intake import CONSENT_VERSION, Draft, submit
from domain.model import Channel, Declaration
from domain.office import logins
from domain.policy import load_policy
from qr.console_links import sign_login
from storage.db import session_factory
from storage.migrate import upgrade
from storage.outbox_store import OutboxStore
from storage.uow import SqlUnitOfWorkFactory
from tests.support import FakeClock, database

SECRET = b"console-test-secret-0123456789"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
ROSTER = """county,township,village_code,village,name,phone,role
青山县,青山镇,QS01,李家村,张伟,13800000001,cadre
青山县,青山镇,QS01;QS02,李家村;王家村,李娜,13800000002,cadre
青山县,青山镇,QS03,陈家村,赵强,13800000005,cadre
青山县,青山镇,,,王芳,13800000003,township
白水县,白水乡,BS01,白水村,刘洋,13800000004,cadre
白水县,白水乡,,,陈静,13800000006,township
青山县,,,,周明,13800000007,county
"""
# The chat of each roster person, by phone; households declare from 9001 on.
CHATS = {
    "13800000001": "2001",  # 张伟, cadre of 李家村
    "13800000002": "2002",  # 李娜, cadre of 李家村 and 王家村
    "13800000005": "2005",  # 赵强, cadre of 陈家村
    "13800000003": "3001",  # 王芳, staff of 青山镇
    "13800000004": "2004",  # 刘洋, cadre of 白水村 (白水县)
    "13800000006": "3006",  # 陈静, staff of 白水乡
    "13800000007": "4001",  # 周明, county staff of 青山县
}
ZHANG, LI, ZHAO, WANG, LIU, CHEN, ZHOU = "2001", "2002", "2005", "3001", "2004", "3006", "4001"


@dataclass
class Desk:
    client: TestClient[Any, Any]
    uow: SqlUnitOfWorkFactory
    clock: FakeClock
    deps: ConsoleDeps
    rules: PolicyRules
    links: list[str] = field(default_factory=list)

    async def link(self, address: str) -> str:
        """The path of a fresh sign-in link for the person of a chat (as /web sends it)."""
        made: list[str] = []

        def link(token: str) -> str:
            made.append(f"/console/login/{sign_login(SECRET, token)}")
            return made[-1]

        async with self.uow() as uow:
            actor = await actor_for(uow, self.clock, Channel.TELEGRAM, address)
            outcome = await logins.offer(uow, self.clock, actor, public_url="https://example.org", link=link)
            await uow.commit()
        assert outcome.done and made, f"{address} got no link"
        return made[0]

    async def sign_in(self, address: str) -> None:
        """Open the link's page, press 登录: the client holds the session's cookie afterwards."""
        path = await self.link(address)
        page = await self.client.get(path)
        assert page.status == 200, await page.text()
        token = CSRF.search(await page.text())
        assert token is not None
        done = await self.client.post(path, data={"csrf": token[1]}, allow_redirects=False)
        assert done.status == 303, await done.text()

    async def csrf(self, path: str = "/console/") -> str:
        """The session's CSRF token, from any console page's forms."""
        response = await self.client.get(path)
        found = CSRF.search(await response.text())
        assert found is not None, f"no form on {path}"
        return found[1]

    async def declare(
        self, village: str = "QS01", phone: str = "+8613912345678", address: str = "9001"
    ) -> Declaration:
        """A household's declaration, submitted as the chat's confirm submits it."""
        async with self.uow() as uow:
            actor = await actor_for(uow, self.clock, Channel.TELEGRAM, address)
            found = await uow.geography.village_by_code(village)
            assert found is not None
            draft = Draft(
                village_id=found.id, village_name=found.name, consent_version=CONSENT_VERSION,
                consent_at=self.clock.now().isoformat(), name="王大山", declarant="self", phone=phone,
                id_answered=True, household=4, risks=("illness",), risks_done=True,
                followups={"illness.cost": 5000}, description="老伴住院", description_done=True,
                photos_done=True,
            )  # fmt: skip
            declaration = await submit(uow, self.clock, self.rules, actor, draft)
            await uow.commit()
        return declaration


def roster_rows(text: str) -> list[roster.RosterRow]:
    """A roster sheet's rows, read as the CLI and the console read a CSV file."""
    from bot.roster_file import read_rows

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "roster.csv"
        path.write_text(text, encoding="utf-8")
        return roster.parse(read_rows(path))


async def seed(uow: SqlUnitOfWorkFactory, clock: FakeClock) -> None:
    """The roster, imported the real way, and every roster person's chat bound."""
    rows = roster_rows(ROSTER)
    async with uow() as work:
        await roster.apply(work, rows, clock.now())
        for phone, address in CHATS.items():
            person = await work.persons.by_phone(validation.phone(phone))
            assert person is not None
            await work.persons.bind(person.id, Channel.TELEGRAM, address, clock.now())
        await work.commit()


@pytest.fixture(params=["sqlite", "postgresql"])
async def desk(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Desk]:
    async with database(request.param, tmp_path) as engine:
        await upgrade(engine)
        uow = SqlUnitOfWorkFactory(session_factory(engine))
        clock = FakeClock()
        await seed(uow, clock)
        rules = PolicyRules(load_policy("anhui"))
        deps = ConsoleDeps(
            uow=uow, clock=clock, rules=rules, protector=FernetProtector(b"id:console"), secret=SECRET
        )
        app = make_app(OutboxStore(session_factory(engine)))
        templating.setup(app)
        console.mount(app, deps)
        async with TestClient(TestServer(app)) as client:
            yield Desk(client, uow, clock, deps, rules)
