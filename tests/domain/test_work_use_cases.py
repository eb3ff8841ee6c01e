"""Work in chat, on the in-memory unit of work: /stats, and what /export's file holds."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from domain import export, work
from domain.actor import Actor
from domain.ports import UnitOfWork
from locales.render import text_of
from tests.fakes import FARMER, STAFF, World, build_world
from tests.support import FakeClock


async def test_stats_show_a_village_without_cases_with_0_and_no_empty_brackets() -> None:
    world = await build_world()
    await world.declare(FARMER)
    await world.run(STAFF, work.stats)

    stats = world.last_to(STAFF)
    lines = [line["$t"] for line in stats.params["lines"]["$lines"]]
    assert lines == ["work.stats_line", "work.stats_line_none", "work.stats_line_none"]  # QS01-03
    shown = text_of(stats, "zh_Hans")
    assert "李家村：1 件（" in shown and "· 王家村：0 件\n" in shown and "（）" not in shown


async def rows(world: World) -> list[dict[str, object]]:
    protector = world.services.protector
    since = world.clock.now() - timedelta(days=1)

    async def read(uow: UnitOfWork, clock: FakeClock, actor: Actor) -> list[dict[str, object]]:
        until = clock.now() + timedelta(days=1)
        return await export.rows(
            uow, protector, township_name=None, since=since, until=until, requester=actor
        )

    return await world.run(STAFF, read)


async def test_the_export_holds_full_id_numbers_only_when_a_declaration_gave_one() -> None:
    world = await build_world()
    await world.declare(FARMER)  # no ID number given
    assert not export.holds_id_numbers(await rows(world))

    declaration = max(world.uow.store.declarations.values(), key=lambda d: d.id)
    sealed = world.services.protector.seal("11010519491231002X")
    world.uow.store.declarations[declaration.id] = replace(declaration, id_sealed=sealed)
    found = await rows(world)
    assert [row["id_number"] for row in found] == ["11010519491231002X"]
    assert export.holds_id_numbers(found)
    assert not export.holds_id_numbers([{**found[0], "id_number": export.ID_UNREADABLE}])
