"""A campaign's deadline reminder reaches a cadre at its time; 本村已完成 stops the next ones."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.service import Service
from domain import campaigns
from tests.domain.test_campaigns import rows
from tests.e2e.conftest import Chat, bind
from tests.e2e.test_notices import clocked  # noqa: F401 (the fixture)
from tests.support import SHANGHAI, FakeClock


async def test_a_deadline_reminder_and_the_done_button(
    clocked: tuple[Service, FakeClock],  # noqa: F811
    chat: Callable[..., Chat],
) -> None:
    service, clock = clocked
    zhang = chat(2001, "张伟")
    await bind(service, zhang, "13800000001")
    spec = campaigns.parse(
        rows("活动,集中排查\n乡镇,青山镇\n村,QS01\n报告,日期,2026-12-31\n阶段,入户排查,2026-11-30\n"),
        clock.now().date(),
    )
    async with service.uow() as work:
        await campaigns.create(work, service.clock, spec)
        await work.commit()
    await zhang.expect("【集中排查】乡镇部署了这项工作", "入户排查：2026年11月30日 截止")
    # The service was down all day: the 3-day reminder (11-27 08:00) is found late, at night.
    clock.current = datetime(2026, 11, 27, 23, 0, tzinfo=SHANGHAI)
    result = await service.tick()
    assert (result.done, result.deferred) == (0, 1)  # night: it waits for the morning
    await zhang.silent(0.3)
    clock.current = datetime(2026, 11, 28, 7, 0, tzinfo=SHANGHAI)
    assert (await service.tick()).done == 1
    reminder = await zhang.expect("集中排查", "入户排查", "11-30", "还剩 2 天")
    assert await zhang.press(reminder, "本村已完成") == "已记录完成，不再提醒"
    clock.current = datetime(2026, 11, 30, 8, 0, tzinfo=SHANGHAI)
    assert (await service.tick()).done == 2  # the 1-day and the morning-of reminders: nobody left
    await zhang.silent(0.5)
