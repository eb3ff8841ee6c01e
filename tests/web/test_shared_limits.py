"""The web form's limits are counted in the database: two workers (two web apps, each with its own
engine, on one database) allow together what one would, no more."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, text

from bot.crypto import FernetProtector
from bot.deadlines import PolicyRules
from bot.web import make_app
from bot.webform import WebDeps
from bot.webform.safety import Counters, Limits
from domain.policy import load_policy
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.outbox_store import OutboxStore
from storage.tables import RateLimitRow
from storage.uow import SqlUnitOfWorkFactory
from tests.support import FakeClock, database, postgres_url, seed_roster
from tests.web.conftest import SECRET, Site, answers, public_pages


@pytest.fixture(params=["sqlite", "postgresql"])
async def two_sites(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Site, Site]]:
    """Two web apps on one database, each with its own engine (two workers), one clock."""
    async with database(request.param, tmp_path) as first_engine:
        await upgrade(first_engine)
        if request.param == "sqlite":
            second_engine = create_engine(str(first_engine.url))
        else:
            url = postgres_url()
            assert url is not None
            async with first_engine.connect() as connection:
                schema = (await connection.execute(text("SELECT current_schema()"))).scalar_one()
            second_engine = create_engine(url, connect_args={"server_settings": {"search_path": schema}})
        clock = FakeClock()
        protector = FernetProtector(b"id:" + SECRET)
        sites: list[Site] = []
        try:
            for engine in (first_engine, second_engine):
                uow = SqlUnitOfWorkFactory(session_factory(engine))
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
                sites.append(Site(client, uow, clock, protector, public_pages(app)))
            await seed_roster(sites[0].uow)
            yield sites[0], sites[1]
        finally:
            for site in sites:
                await site.client.close()
            await second_engine.dispose()


async def form_path(site: Site) -> tuple[str, str]:
    path = f"/q/{site.payload('QS01')}/form"
    return path, await site.csrf(path)


async def counters(site: Site) -> dict[str, int]:
    async with site.uow() as uow:
        rows = (await uow.session.scalars(select(RateLimitRow))).all()
        return {row.key: row.hits for row in rows}


async def test_a_flood_spread_over_two_workers_meets_the_same_429(two_sites: tuple[Site, Site]) -> None:
    one, other = two_sites
    forms = [await form_path(one), await form_path(other)]
    for n in range(5):  # five an hour from one address, whichever worker takes them
        site, (path, token) = (one, forms[0]) if n % 2 else (other, forms[1])
        status, body = await site.post(path, {**answers(phone=f"1391234560{n}"), "csrf": token})
        assert status == 200, body
    for site, (path, token) in ((one, forms[0]), (other, forms[1])):
        status, body = await site.post(path, {**answers(phone="13912345699"), "csrf": token})
        assert status == 429 and "太频繁" in body and "12317" in body
    one.clock.advance(hours=1, minutes=1)
    status, _ = await other.post(forms[1][0], {**answers(phone="13912345699"), "csrf": forms[1][1]})
    assert status == 200


async def test_a_phone_counted_by_one_worker_is_refused_by_the_other(two_sites: tuple[Site, Site]) -> None:
    one, other = two_sites
    for _ in range(3):
        assert await one.public.counters.allow(per_phone="+8613912345678")
    path, token = await form_path(other)
    status, body = await other.post(path, {**answers(), "csrf": token})
    assert status == 429 and "太频繁" in body
    # Refused for the phone, the attempt cost the address nothing: only the post was counted.
    assert sorted(hits for key, hits in (await counters(one)).items() if key.startswith("web:per_")) == [3]


async def test_status_look_ups_are_counted_across_workers(two_sites: tuple[Site, Site]) -> None:
    one, other = two_sites
    for n in range(20):  # no CSRF token: refused with 403, but looked at all the same
        response = await (one if n % 2 else other).client.post("/status", data={"receipt": "1", "phone": "2"})
        assert response.status == 403
    for site in two_sites:
        response = await site.client.post("/status", data={"receipt": "1", "phone": "2"})
        assert response.status == 429 and "太频繁" in await response.text()


async def test_workers_counting_at_once_never_lose_a_hit(two_sites: tuple[Site, Site]) -> None:
    one, other = two_sites
    tries = [
        site.public.counters.allow(per_address="203.0.113.7") for site in (one, other) for _ in range(10)
    ]
    allowed = await asyncio.gather(*tries)
    assert allowed.count(True) == 5  # per_address: five an hour


async def test_counter_keys_hold_no_address_or_phone_in_clear(two_sites: tuple[Site, Site]) -> None:
    one, _ = two_sites
    path, token = await form_path(one)
    status, _ = await one.post(path, {**answers(), "csrf": token})
    assert status == 200
    keys = list(await counters(one))
    assert sorted(key.rsplit(":", 1)[0] for key in keys) == [
        "web:per_address",
        "web:per_phone",
        "web:posts_per_address",
    ]
    for key in keys:
        assert "127.0.0.1" not in key and "13912345678" not in key and "8613912345678" not in key
    # A keyed digest: without the service's secret, nobody recomputes it from a guessed number.
    assert one.public.counters.key("per_phone", "+8613912345678") in keys
    elsewhere = Counters(one.public.deps.uow, one.clock, b"another secret, another key", Limits())
    assert elsewhere.key("per_phone", "+8613912345678") not in keys
