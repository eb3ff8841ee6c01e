"""The fakes keep storage's semantics: the same checks, through domain.ports.UnitOfWork only, on
tests.fakes and on storage's unit of work over SQLite (and PostgreSQL when TEST_DATABASE_URL names
one). What the use-case tests rely on is checked here against the real thing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from domain.cases import receipt_number
from domain.messages import Outgoing
from domain.model import (
    Channel,
    DeclarationStatus,
    Flow,
    NewDeclaration,
    Role,
    RoutedTo,
    TaskStatus,
    Verdict,
)
from domain.ports import Fingerprint, UnitOfWork, UnitOfWorkFactory
from storage.db import session_factory
from storage.migrate import upgrade
from storage.uow import SqlUnitOfWorkFactory
from tests.fakes import FakeUnitOfWorkFactory
from tests.support import FakeClock, database

TG = Channel.TELEGRAM
S = DeclarationStatus


@pytest.fixture(params=["fake", "sqlite", "postgresql"])
async def factory(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[UnitOfWorkFactory]:
    if request.param == "fake":
        yield FakeUnitOfWorkFactory()
        return
    async with database(request.param, tmp_path) as engine:
        await upgrade(engine)
        yield SqlUnitOfWorkFactory(session_factory(engine))


async def _village(uow: UnitOfWork) -> int:
    township = await uow.geography.add_township("青山镇")
    return (await uow.geography.add_village("QS01", "李家村", township.id)).id


def _new(
    village_id: int, declared_by: int, clock: FakeClock, *, phone: str = "+8613912345678"
) -> NewDeclaration:
    return NewDeclaration(
        village_id=village_id, declared_by=declared_by, head_name="王大山", phone=phone,
        risk_types=("illness",), description="老伴住院", consent_version="2026-11", consent_at=clock.now(),
        id_fingerprint=Fingerprint("fp-new", ("fp-old",)),
    )  # fmt: skip


async def test_people_addresses_and_who_is_reachable(factory: UnitOfWorkFactory) -> None:
    clock = FakeClock()
    async with factory() as uow:
        village = await _village(uow)
        other = await uow.geography.add_village("QS02", "王家村", (await uow.geography.townships())[0].id)
        cadre = await uow.persons.add(Role.CADRE, name="张伟", phone="+8613800000001")
        silent = await uow.persons.add(Role.CADRE, name="孙丽")
        staff = await uow.persons.add(Role.TOWNSHIP, name="王芳", township_id=other.township_id)
        farmer = await uow.persons.add(Role.FARMER, locale="zh-Hans-CN-with-a-long-tail")
        await uow.persons.set_villages(cadre.id, (village,))
        await uow.persons.set_villages(silent.id, (village,))
        await uow.persons.set_villages(farmer.id, (village,))  # a household's person has none to read
        await uow.persons.bind(cadre.id, TG, "101", clock.now())
        await uow.persons.bind(farmer.id, TG, "9001", clock.now())
        await uow.commit()

    async with factory() as uow:
        found = await uow.persons.by_address(TG, "101")
        assert found is not None and (found.id, found.village_ids) == (cadre.id, (village,))
        assert [p.id for p in await uow.persons.cadres_of_village(village)] == [cadre.id, silent.id]
        assert await uow.persons.cadres_of_village(other.id) == []
        assert [p.id for p in await uow.persons.staff_of_township(other.township_id)] == [staff.id]
        assert await uow.persons.reachable([cadre.id, silent.id, staff.id, farmer.id]) == {
            cadre.id,
            farmer.id,
        }
        person = await uow.persons.get(farmer.id)
        assert (
            person is not None and person.village_ids == () and person.locale == "zh-Hans-CN-with-"
        )  # 16 characters
        by_phone = await uow.persons.by_phone("+8613800000001")
        assert by_phone is not None and by_phone.id == cadre.id
        # Binding an address takes it from whoever had it; a person keeps one address a channel.
        await uow.persons.bind(silent.id, TG, "101", clock.now())
        await uow.persons.bind(silent.id, TG, "102", clock.now())
        assert await uow.persons.by_address(TG, "101") is None
        moved = await uow.persons.by_address(TG, "102")
        assert moved is not None and moved.id == silent.id
        assert await uow.persons.address_of(silent.id, TG) == "102"
        assert await uow.persons.reachable([cadre.id, silent.id]) == {silent.id}


async def test_one_open_conversation_a_person_and_ids_never_reused(factory: UnitOfWorkFactory) -> None:
    clock = FakeClock()
    async with factory() as uow:
        person = await uow.persons.add(Role.FARMER)
        first = await uow.conversations.start(person.id, Flow.INTAKE, "consent", {"a": [1, 2]}, clock.now())
        second = await uow.conversations.start(person.id, Flow.VISIT, "date", {"task_id": 3}, clock.now())
        await uow.commit()

    async with factory() as uow:
        assert second.id != first.id
        assert not await uow.conversations.update(first.id, "name", {}, clock.now())
        assert await uow.conversations.update(second.id, "notes", {"k": (1, 2)}, clock.now())
        found = await uow.conversations.get(person.id)
        assert found is not None and (found.id, found.flow, found.step) == (second.id, Flow.VISIT, "notes")
        assert found.data == {"k": [1, 2]}  # as JSON gives it back
        assert await uow.conversations.mark_reminded(second.id, clock.now())
        assert not await uow.conversations.mark_reminded(second.id, clock.now())
        assert await uow.conversations.finish(second.id)
        assert not await uow.conversations.finish(second.id)
        assert await uow.conversations.get(person.id) is None
        third = await uow.conversations.start(person.id, Flow.INTAKE, "consent", {}, clock.now())
        assert third.id not in (first.id, second.id)


async def test_declarations_and_tasks_move_only_from_what_was_expected(factory: UnitOfWorkFactory) -> None:
    clock = FakeClock()
    async with factory() as uow:
        village = await _village(uow)
        farmer = await uow.persons.add(Role.FARMER)
        declaration = await uow.declarations.add(_new(village, farmer.id, clock), clock.now())
        task = await uow.tasks.add(declaration.id, village, RoutedTo.VILLAGE, clock.now())
        await uow.commit()

    async with factory() as uow:
        assert declaration.receipt == receipt_number(clock.now().date(), declaration.id)
        assert declaration.status is S.SUBMITTED and task.status is TaskStatus.OPEN
        since = clock.now() - timedelta(days=30)
        by_phone = await uow.declarations.open_for_household(
            phone="+8613912345678", id_fingerprint=None, since=since
        )
        by_old_key = await uow.declarations.open_for_household(
            phone=None, id_fingerprint=Fingerprint("fp-newer", ("fp-new",)), since=since
        )
        assert (
            by_phone is not None and by_old_key is not None and by_phone.id == by_old_key.id == declaration.id
        )
        assert await uow.declarations.count_since(since, declarant_id=farmer.id) == 1
        assert await uow.declarations.count_since(since, phone="+8613900000000") == 0

        assert not await uow.declarations.transition(
            declaration.id, expected=S.VISITED, to=S.PROPOSED, at=clock.now()
        )
        assert await uow.declarations.transition(
            declaration.id,
            expected=S.SUBMITTED,
            to=S.NOT_ELIGIBLE,
            at=clock.now(),
            verdict=Verdict.NOT_ELIGIBLE,
            reason="收入高于监测线",
        )
        moved = await uow.declarations.get(declaration.id)
        assert moved is not None
        assert (moved.status, moved.verdict, moved.verdict_reason) == (
            S.NOT_ELIGIBLE,
            Verdict.NOT_ELIGIBLE,
            "收入高于监测线",
        )
        assert (
            await uow.declarations.open_for_household(
                phone="+8613912345678", id_fingerprint=None, since=since
            )
            is None
        )
        assert await uow.declarations.set_green_channel(declaration.id)
        assert not await uow.declarations.set_green_channel(declaration.id)

        assert await uow.tasks.hand_over(task.id, expected_owner=None, to=farmer.id)
        assert not await uow.tasks.hand_over(task.id, expected_owner=None, to=farmer.id)
        assert await uow.tasks.close(task.id)
        assert not await uow.tasks.close(task.id)
        closed = await uow.tasks.get(task.id)
        assert closed is not None and (closed.status, closed.acknowledged_by) == (
            TaskStatus.CLOSED,
            farmer.id,
        )

        again = await uow.tasks.add(declaration.id, village, RoutedTo.TOWNSHIP, clock.now())
        await uow.tasks.advance(
            again.id,
            status=TaskStatus.ACKNOWLEDGED,
            owner=farmer.id,
            step="visit",
            due_at=None,
            next_check_at=None,
            at=clock.now(),
        )
        assert not await uow.tasks.close(again.id)  # acknowledged first
        newest = await uow.tasks.for_declaration(declaration.id)
        assert newest is not None and (newest.id, newest.acknowledged_by) == (again.id, farmer.id)


async def test_a_cadres_filings_count_whoever_became_the_declarant(factory: UnitOfWorkFactory) -> None:
    """代报: the cadre declares for a household (declared_by the cadre), or the household that agreed
    to hear by text becomes the declarant (declared_by the household): both are the cadre's."""
    clock = FakeClock()
    async with factory() as uow:
        village = await _village(uow)
        cadre = await uow.persons.add(Role.CADRE)
        household = await uow.persons.add(Role.FARMER)
        other = await uow.persons.add(Role.FARMER)
        plain = replace(_new(village, cadre.id, clock), filed_by_cadre=cadre.id)
        consented = replace(
            _new(village, household.id, clock, phone="+8613912345679"), filed_by_cadre=cadre.id
        )
        own = _new(village, other.id, clock, phone="+8613912345670")
        for new in (plain, consented, own):
            await uow.declarations.add(new, clock.now())
        await uow.commit()
    async with factory() as uow:
        since = clock.now() - timedelta(hours=1)
        assert await uow.declarations.count_since(since, filer_id=cadre.id) == 2
        assert await uow.declarations.count_since(since, declarant_id=cadre.id) == 1
        assert await uow.declarations.count_since(since, filer_id=household.id) == 1
        assert await uow.declarations.count_since(since, filer_id=other.id) == 1
        assert await uow.declarations.count_since(clock.now() + timedelta(seconds=1), filer_id=cadre.id) == 0


async def test_the_outbox_skips_a_key_queued_before_and_a_person_with_no_address(
    factory: UnitOfWorkFactory,
) -> None:
    clock = FakeClock()
    async with factory() as uow:
        bound = await uow.persons.add(Role.FARMER)
        never = await uow.persons.add(Role.CADRE, name="孙丽")
        await uow.persons.bind(bound.id, TG, "9001", clock.now())
        message = Outgoing("case.new", {"receipt": "1"})
        assert await uow.outbox.add(bound.id, message, at=clock.now(), key="k:1")
        assert not await uow.outbox.add(bound.id, message, at=clock.now(), key="k:1")
        assert await uow.outbox.add(bound.id, message, at=clock.now())
        assert await uow.outbox.add(bound.id, message, at=clock.now())  # a reply needs no key
        assert not await uow.outbox.add(never.id, message, at=clock.now(), key="k:2")
        assert await uow.outbox.add(bound.id, message, at=clock.now(), key="k:2")  # k:2 was not taken
        await uow.commit()
    async with factory() as uow:
        assert not await uow.outbox.add(bound.id, message, at=clock.now(), key="k:1")


async def test_a_limit_counts_within_its_window(factory: UnitOfWorkFactory) -> None:
    clock = FakeClock()
    window = timedelta(hours=1)
    async with factory() as uow:
        assert [await uow.limits.hit("k", limit=2, window=window, now=clock.now()) for _ in range(3)] == [
            True,
            True,
            False,
        ]
        clock.advance(minutes=59)
        assert not await uow.limits.hit("k", limit=2, window=window, now=clock.now())
        clock.advance(minutes=1)  # the window began at the first hit
        assert await uow.limits.hit("k", limit=2, window=window, now=clock.now())
        assert await uow.limits.hit("other", limit=2, window=window, now=clock.now())


async def test_what_is_not_committed_is_undone(factory: UnitOfWorkFactory) -> None:
    clock = FakeClock()
    async with factory() as uow:
        kept = await uow.persons.add(Role.FARMER)
        await uow.commit()
        dropped = await uow.persons.add(Role.FARMER)
        await uow.persons.bind(kept.id, TG, "9001", clock.now())
    async with factory() as uow:
        assert await uow.persons.get(kept.id) is not None
        assert await uow.persons.get(dropped.id) is None
        assert await uow.persons.by_address(TG, "9001") is None
        await uow.persons.bind(kept.id, TG, "9001", clock.now())
        await uow.rollback()
        assert await uow.persons.by_address(TG, "9001") is None
