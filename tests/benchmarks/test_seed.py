"""The benchmarks' bulk seeding (benchmarks/seed.py) writes rows the real repositories read as
the domain expects, on SQLite and PostgreSQL; rows added afterwards get fresh ids."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks import seed
from domain.model import Channel, Role, TaskStatus
from storage.uow import SqlUnitOfWorkFactory
from tests.support import FakeClock


async def test_a_seeded_world_reads_back_through_the_repositories(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory, clock: FakeClock
) -> None:
    now = clock.now()
    bulk = seed.Bulk(engine)
    world = seed.World()
    await seed.township(bulk, world, 4, 1000, now)
    await seed.cadres(bulk, world, 4, 2000, now)
    await seed.busy_cadre(bulk, world, 3000, world.village_ids[:2], now)
    await seed.households(bulk, world, 40, 12, 5000, now, due_tasks=3)
    await seed.ledger(bulk, world, 5, 2, now, later=7)
    await bulk.done()

    async with uow() as work:
        farmer = await work.persons.by_address(Channel.TELEGRAM, "5001")
        assert farmer is not None and farmer.role is Role.FARMER
        busy = await work.persons.by_address(Channel.TELEGRAM, "3000")
        assert busy is not None and set(busy.village_ids) == set(world.village_ids[:2])
        cadres = await work.persons.cadres_of_village(world.village_ids[0])
        assert {p.id for p in cadres} == {world.cadre_ids[0], busy.id}
        open_tasks = await work.tasks.open_in(tuple(world.village_ids))
        assert len(open_tasks) == 12
        assert {t.status for t in open_tasks} == {TaskStatus.OPEN, TaskStatus.ACKNOWLEDGED}
        assert len(await work.tasks.open_in(tuple(world.village_ids[:2]))) == 6
        assert len(await work.tasks.due_for_check(now, 100)) == 3
        first = await work.declarations.get(open_tasks[0].declaration_id)
        assert first is not None and first.status.open and first.receipt
        finished = await work.declarations.get(world.next_id["declarations"] - 1)
        assert finished is not None and finished.status in seed.CLOSED_STATES
        assert not finished.status.open
        assert len(await work.schedule.due(now, 100)) == 2
        assert len(await work.schedule.due(now + timedelta(days=400), 100)) == 5 * 3 + 7
        # Ids given by the seeding are behind the sequences: the next person gets a new one.
        added = await work.persons.add(Role.CADRE, name="新人")
        assert added.id == world.next_id["persons"]
        await work.commit()
