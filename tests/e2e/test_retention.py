"""The draft sweep also strips old delivered messages of their personal data; the case stays."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import func, select

from bot.service import Service
from bot.settings import Settings
from storage.tables import CaseEventRow, DeclarationRow, OutboxRow
from tests.e2e.conftest import Chat, bind, declare, village_payload
from tests.support import FakeClock, seed_roster


async def outbox(service: Service) -> list[tuple[str, dict[str, Any]]]:
    async with service.sessions() as session:
        rows = (
            await session.execute(select(OutboxRow.status, OutboxRow.payload).order_by(OutboxRow.id))
        ).all()
    return [(status, payload) for status, payload in rows]


async def test_the_sweep_job_strips_messages_older_than_the_retention_period(
    settings: Settings, chat: Callable[..., Chat]
) -> None:
    clock = FakeClock()
    settings = settings.model_copy(update={"outbox_retention_days": 30})
    async with Service(settings, poll_timeout=1, clock=clock) as service:
        await seed_roster(service.uow)
        cadre = chat(2001, "张伟")
        await bind(service, cadre, "13800000001")
        farmer = chat(1001)
        payload = village_payload(valid_until=clock.now().date() + timedelta(days=365))
        summary = await declare(farmer, payload)
        await farmer.press(summary, "确认提交")
        await farmer.expect("回执编号")
        await cadre.expect("新申报", "王大山", "13912345678")
        assert service.application.job_queue is not None
        [sweep] = service.application.job_queue.get_jobs_by_name("drafts")
        for _ in range(50):  # the sender records the last message's delivery just after it
            sent = await outbox(service)
            if {status for status, _ in sent} == {"sent"}:
                break
            await asyncio.sleep(0.1)
        assert sent and {status for status, _ in sent} == {"sent"}
        assert any("王大山" in str(payload) for _, payload in sent)

        clock.advance(days=29)
        await sweep.callback(cast(Any, None))  # the JobQueue's draft sweep, as it runs every few minutes
        assert await outbox(service) == sent
        clock.advance(days=1, minutes=1)
        await sweep.callback(cast(Any, None))
        stripped = await outbox(service)
        assert [status for status, _ in stripped] == [status for status, _ in sent]
        assert [p["template"] for _, p in stripped] == [p["template"] for _, p in sent]
        assert all(p == {"template": p["template"], "purged": True} for _, p in stripped)
        async with service.sessions() as session:
            [declaration] = (await session.scalars(select(DeclarationRow))).all()
            events = await session.scalar(select(func.count()).select_from(CaseEventRow))
        assert declaration.head_name == "王大山" and declaration.phone == "+8613912345678"
        assert declaration.description and events
