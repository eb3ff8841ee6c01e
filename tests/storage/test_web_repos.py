"""Scan counts and web uploads on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

from storage.uow import SqlUnitOfWorkFactory
from tests.support import FakeClock


async def test_scans_add_up_per_village_batch_channel_and_day(uow: SqlUnitOfWorkFactory) -> None:
    async with uow() as work:
        for day, channel in ((1, "web"), (1, "web"), (2, "web"), (2, "telegram")):
            await work.scans.count("QS01", "B1", channel, date(2026, 11, day))
        await work.scans.count("QS01", "", "telegram", date(2026, 11, 2))
        await work.scans.count("QS02", "B1", "web", date(2026, 11, 2))
        await work.commit()
    async with uow() as work:
        totals = await work.scans.totals()
    assert [(t.village_code, t.batch, t.web, t.telegram) for t in totals] == [
        ("QS01", "", 0, 1),
        ("QS01", "B1", 3, 1),
        ("QS02", "B1", 1, 0),
    ]


async def test_an_upload_is_kept_whole(uow: SqlUnitOfWorkFactory, clock: FakeClock) -> None:
    photo = bytes(range(256)) * 100
    async with uow() as work:
        upload_id = await work.uploads.add("image/jpeg", photo, clock.now())
        await work.commit()
    async with uow() as work:
        assert await work.uploads.get(upload_id) == ("image/jpeg", photo)
