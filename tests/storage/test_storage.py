"""Storage on a real SQLite file, and on PostgreSQL when TEST_DATABASE_URL is set."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.limits import TEXT_LIMIT, splitter, utf16_len
from domain.messages import Outgoing, Queued
from domain.model import Channel, DeclarationStatus, Flow, NewDeclaration, Role, RoutedTo, TaskStatus
from locales.render import text_of
from storage.db import session_factory
from storage.migrate import upgrade
from storage.outbox_store import OutboxStore
from storage.tables import OutboxRow, TaskRow
from storage.uow import SqlUnitOfWorkFactory
from tests.support import FakeClock, seed_roster


async def test_migrations_are_idempotent_and_create_every_table(engine: AsyncEngine) -> None:
    await upgrade(engine)  # a second time: nothing to do
    async with engine.connect() as connection:
        tables = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    assert {
        "townships", "villages", "persons", "cadre_villages", "channel_accounts", "invites",
        "conversations", "declarations", "tasks", "case_events", "outbox", "alembic_version",
    } <= tables  # fmt: skip


async def test_sqlite_runs_with_wal_and_foreign_keys(tmp_path: object) -> None:
    from tests.support import database

    async with database("sqlite", tmp_path) as engine:  # type: ignore[arg-type]
        async with engine.connect() as connection:
            assert (await connection.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1


async def test_unit_of_work_rolls_back_unless_committed(uow: SqlUnitOfWorkFactory) -> None:
    async with uow() as work:
        await work.geography.add_township("青山镇")
    async with uow() as work:
        assert await work.geography.township_by_name("青山镇") is None
        await work.geography.add_township("青山镇")
        await work.commit()
    async with uow() as work:
        assert await work.geography.township_by_name("青山镇") is not None


async def test_roster_import_twice_changes_nothing(uow: SqlUnitOfWorkFactory) -> None:
    await seed_roster(uow)
    async with uow() as work:
        li_na = await work.persons.by_phone("+8613800000002")
        village = await work.geography.village_by_code("QS02")
    assert li_na is not None and li_na.role is Role.CADRE and len(li_na.village_ids) == 2
    assert village is not None and village.name == "王家村" and village.township_name == "青山镇"

    from bot.roster_file import read_rows
    from domain import roster
    from tests.support import ROSTER

    async with uow() as work:
        report = await roster.apply(work, roster.parse(read_rows(ROSTER)))
        await work.commit()
    assert (report.created, report.updated, report.unchanged, report.villages_created) == (0, 0, 5, 0)


async def test_binding_moves_an_address_to_its_new_owner(uow: SqlUnitOfWorkFactory, clock: FakeClock) -> None:
    async with uow() as work:
        stranger = await work.persons.add(Role.FARMER)
        cadre = await work.persons.add(Role.CADRE, name="张伟", phone="+8613800000001")
        await work.persons.bind(stranger.id, Channel.TELEGRAM, "1001", clock.now())
        await work.persons.bind(cadre.id, Channel.TELEGRAM, "1001", clock.now())
        found = await work.persons.by_address(Channel.TELEGRAM, "1001")
        assert found is not None and found.id == cadre.id
        assert await work.persons.address_of(stranger.id, Channel.TELEGRAM) is None


async def test_conversation_finishes_exactly_once(uow: SqlUnitOfWorkFactory, clock: FakeClock) -> None:
    async with uow() as work:
        person = await work.persons.add(Role.FARMER)
        first = await work.conversations.start(person.id, Flow.INTAKE, "risk", {"a": 1}, clock.now())
        second = await work.conversations.start(person.id, Flow.INTAKE, "risk", {"b": 2}, clock.now())
        assert second.id != first.id
        assert not await work.conversations.update(first.id, "name", {}, clock.now())
        assert await work.conversations.update(second.id, "name", {"b": 3}, clock.now())
        got = await work.conversations.get(person.id)
        assert got is not None and got.step == "name" and got.data == {"b": 3}
        assert await work.conversations.finish(second.id)
        assert not await work.conversations.finish(second.id)


async def _declaration(uow: SqlUnitOfWorkFactory, clock: FakeClock) -> tuple[int, int]:
    await seed_roster(uow)
    async with uow() as work:
        village = await work.geography.village_by_code("QS01")
        farmer = await work.persons.add(Role.FARMER)
        assert village is not None
        declaration = await work.declarations.add(
            NewDeclaration(
                village_id=village.id,
                declared_by=farmer.id,
                head_name="王大山",
                phone="+8613912345678",
                risk_types=("illness", "housing"),
                description="住院",
                consent_version="2026-11",
                consent_at=clock.now(),
                household_size=4,
                id_fingerprint="f" * 64,
                followups={"illness.cost": 30000},
            ),
            clock.now(),
        )
        task = await work.tasks.add(declaration.id, village.id, RoutedTo.VILLAGE, clock.now())
        await work.commit()
    return declaration.id, task.id


async def test_receipt_and_conditional_transitions(uow: SqlUnitOfWorkFactory, clock: FakeClock) -> None:
    declaration_id, task_id = await _declaration(uow, clock)
    async with uow() as work:
        declaration = await work.declarations.get(declaration_id)
        assert declaration is not None
        assert declaration.receipt == f"20261123{declaration_id:06d}"
        assert declaration.risk_types == ("illness", "housing") and declaration.risk_type == "illness"
        assert declaration.followups == {"illness.cost": 30000} and declaration.household_size == 4
        assert await work.declarations.by_receipt(declaration.receipt) == declaration
        cadre = await work.persons.by_phone("+8613800000001")
        assert cadre is not None
        await work.tasks.advance(
            task_id,
            status=TaskStatus.ACKNOWLEDGED,
            owner=cadre.id,
            step="visit",
            due_at=clock.now(),
            next_check_at=None,
            at=clock.now(),
        )
        task = await work.tasks.get(task_id)
        assert task is not None and task.acknowledged_by == cadre.id and task.step == "visit"
        # Signed for on the service's clock, not the machine's (the overview's time to 签收).
        signed_at = await work.session.scalar(select(TaskRow.acknowledged_at).where(TaskRow.id == task_id))
        assert signed_at == clock.now()
        assert await work.declarations.transition(
            declaration_id,
            expected=DeclarationStatus.SUBMITTED,
            to=DeclarationStatus.ACKNOWLEDGED,
            at=clock.now(),
        )
        assert not await work.declarations.transition(
            declaration_id,
            expected=DeclarationStatus.SUBMITTED,
            to=DeclarationStatus.ACKNOWLEDGED,
            at=clock.now(),
        )


async def test_two_acknowledgements_at_once_one_wins(engine: AsyncEngine, clock: FakeClock) -> None:
    uow = SqlUnitOfWorkFactory(session_factory(engine))
    declaration_id, _ = await _declaration(uow, clock)
    async with uow() as work:
        a = await work.persons.by_phone("+8613800000001")
        b = await work.persons.by_phone("+8613800000002")
    assert a is not None and b is not None

    async def press(person_id: int) -> bool:
        # What acknowledging does first: move the declaration on, only from where it was.
        async with uow() as work:
            won = await work.declarations.transition(
                declaration_id,
                expected=DeclarationStatus.SUBMITTED,
                to=DeclarationStatus.ACKNOWLEDGED,
                at=clock.now(),
            )
            await work.commit()
            return won

    results = await asyncio.gather(press(a.id), press(b.id))
    assert sorted(results) == [False, True]


async def test_outbox_key_queues_once(uow: SqlUnitOfWorkFactory, clock: FakeClock) -> None:
    async with uow() as work:
        person = await work.persons.add(Role.FARMER)
        await work.persons.bind(person.id, Channel.TELEGRAM, "1", clock.now())
        assert await work.outbox.add(person.id, Outgoing("help.farmer"), key="k1", at=clock.now())
        assert not await work.outbox.add(person.id, Outgoing("help.staff"), key="k1", at=clock.now())
        assert await work.outbox.add(person.id, Outgoing("help.staff"), at=clock.now())
        assert await work.outbox.count_pending() == 2


async def test_nothing_is_queued_for_a_person_with_no_address(
    uow: SqlUnitOfWorkFactory, engine: AsyncEngine, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with uow() as work:
        bound = await work.persons.add(Role.CADRE, name="张伟", phone="13800000001")
        never = await work.persons.add(Role.CADRE, name="李娜", phone="13800000002")
        await work.persons.bind(bound.id, Channel.TELEGRAM, "2001", clock.now())
        with caplog.at_level(logging.INFO, logger="storage"):
            assert await work.outbox.add(bound.id, Outgoing("help.cadre"), key="a", at=clock.now())
            assert not await work.outbox.add(never.id, Outgoing("help.cadre"), key="b", at=clock.now())
            assert not await work.outbox.add(never.id, Outgoing("help.cadre"), at=clock.now())
            many = [
                Queued(person.id, Outgoing("help.cadre"), key) for person, key in ((bound, "c"), (never, "d"))
            ]
            await work.delivery.queue_many(many, clock.now())
        await work.commit()
    assert "not queued" in caplog.text
    assert "李娜" not in caplog.text and "13800000002" not in caplog.text
    async with session_factory(engine)() as session:
        rows = (await session.scalars(select(OutboxRow).order_by(OutboxRow.id))).all()
    assert [(row.person_id, row.key) for row in rows] == [(bound.id, "a"), (bound.id, "c")]
    async with uow() as work:
        # Once the invite is opened, the next message is queued; the refused key was never taken.
        await work.persons.bind(never.id, Channel.TELEGRAM, "2002", clock.now())
        assert await work.outbox.add(never.id, Outgoing("help.cadre"), key="b", at=clock.now())
        await work.commit()


async def test_a_message_too_long_is_queued_as_parts_in_order_and_once(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    uow = SqlUnitOfWorkFactory(session_factory(engine), split=splitter("zh_Hans"))
    body = "\n".join(f"#{n:02} " + "危房改造未完工" * 90 for n in range(20))  # 20 lines of 634
    long = Outgoing("ledger.item", {"line": body}, keyboard="menu")
    async with uow() as work:
        one = await work.persons.add(Role.CADRE, name="张伟")
        two = await work.persons.add(Role.CADRE, name="李娜", locale="en")
        await work.persons.bind(one.id, Channel.TELEGRAM, "2001", clock.now())
        await work.persons.bind(two.id, Channel.TELEGRAM, "2002", clock.now())
        assert await work.outbox.add(one.id, long, key="long", at=clock.now())
        assert await work.outbox.add(one.id, Outgoing("help.cadre"), at=clock.now())
        assert not await work.outbox.add(one.id, long, key="long", at=clock.now())  # queued before
        many = [Queued(two.id, long, "many")]
        await work.delivery.queue_many(many, clock.now())
        await work.delivery.queue_many(many, clock.now())  # queued before: skipped
        await work.commit()
    async with session_factory(engine)() as session:
        rows = (await session.scalars(select(OutboxRow).order_by(OutboxRow.id))).all()
    keys = [row.key for row in rows]
    assert keys[:4] == ["long", "long#2", "long#3", "long#4"] and keys[4].startswith("reply:")
    assert keys[5:] == ["many", "many#2", "many#3", "many#4"]
    for person, parts in ((one.id, rows[:4]), (two.id, rows[5:])):
        messages = [Outgoing.from_json(row.payload) for row in parts]
        texts = [text_of(message, "en") for message in messages]  # already rendered: any language shows them
        assert "\n".join(texts) == body and all(utf16_len(t) <= TEXT_LIMIT for t in texts)
        assert [m.keyboard for m in messages] == [None, None, None, "menu"]
        assert {row.person_id for row in parts} == {person}
    # The sender takes a person's parts one after the other, never two at once.
    store = OutboxStore(session_factory(engine))
    seen: list[int] = []
    while claimed := await store.claim(clock.now(), 10, timedelta(seconds=30)):
        assert len({message.person_id for message in claimed}) == len(claimed)
        for message in claimed:
            seen.append(message.id)
            await store.sent(message.id, clock.now(), None)
    assert sorted(seen) == [row.id for row in rows]
    for person in (one.id, two.id):
        assert [i for i in seen if i in {r.id for r in rows if r.person_id == person}] == [
            r.id for r in rows if r.person_id == person
        ]


async def test_outbox_claims_in_order_one_per_person_and_reclaims_after_lease(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    uow = SqlUnitOfWorkFactory(session_factory(engine))
    async with uow() as work:
        alice = await work.persons.add(Role.FARMER)
        bob = await work.persons.add(Role.FARMER)
        await work.persons.bind(alice.id, Channel.TELEGRAM, "1", clock.now())
        await work.persons.bind(bob.id, Channel.TELEGRAM, "2", clock.now())
        for n in range(3):
            await work.outbox.add(alice.id, Outgoing("intake.noted", {"value": n}), at=clock.now())
        await work.outbox.add(bob.id, Outgoing("help.farmer"), at=clock.now())
        # Bob's chat is bound to someone else after his message was queued: it has no address now.
        carol = await work.persons.add(Role.FARMER)
        await work.persons.bind(carol.id, Channel.TELEGRAM, "2", clock.now())
        await work.commit()
    store = OutboxStore(session_factory(engine))
    lease = timedelta(seconds=30)
    first = await store.claim(clock.now(), 10, lease)
    assert [(m.person_id, m.payload["params"].get("value")) for m in first] == [(alice.id, 0), (bob.id, None)]
    assert first[0].address == "1" and first[1].address is None
    assert await store.claim(clock.now(), 10, lease) == []  # both people have one in flight
    await store.sent(first[0].id, clock.now(), "77")
    nxt = await store.claim(clock.now(), 10, lease)
    assert [m.payload["params"]["value"] for m in nxt] == [1]
    clock.advance(seconds=31)  # the sender died holding these: the lease runs out
    again = await store.claim(clock.now(), 10, lease)
    assert sorted(m.id for m in again) == sorted([nxt[0].id, first[1].id])
    await store.retry(again[0].id, clock.now() + timedelta(seconds=5), 1, "boom")
    await store.failed(again[1].id, 1, "forbidden")
    counts = await store.counts()
    assert counts == {"sent": 1, "pending": 2, "failed": 1}


@pytest.mark.parametrize("senders", [2])
async def test_concurrent_claims_never_share_a_row(
    engine: AsyncEngine, clock: FakeClock, senders: int
) -> None:
    uow = SqlUnitOfWorkFactory(session_factory(engine))
    async with uow() as work:
        for n in range(40):
            person = await work.persons.add(Role.FARMER)
            await work.persons.bind(person.id, Channel.TELEGRAM, str(n), clock.now())
            await work.outbox.add(person.id, Outgoing("help.farmer"), at=clock.now())
        await work.commit()
    stores = [OutboxStore(session_factory(engine)) for _ in range(senders)]
    batches = await asyncio.gather(*(s.claim(clock.now(), 15, timedelta(seconds=30)) for s in stores))
    ids = [m.id for batch in batches for m in batch]
    assert len(ids) == len(set(ids)) == min(40, 15 * senders)


async def test_migrations_match_the_models(engine: AsyncEngine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from storage.tables import Base

    def diff(connection: object) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": False})  # type: ignore[arg-type]
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as connection:
        assert await connection.run_sync(diff) == []


async def test_repeat_lookup_by_phone_or_id_within_the_window(
    uow: SqlUnitOfWorkFactory, clock: FakeClock
) -> None:
    declaration_id, task_id = await _declaration(uow, clock)
    since = clock.now() - timedelta(days=30)
    async with uow() as work:
        by_phone = await work.declarations.open_for_household(
            phone="+8613912345678", id_fingerprint=None, since=since
        )
        by_id = await work.declarations.open_for_household(phone=None, id_fingerprint="f" * 64, since=since)
        assert by_phone is not None and by_id is not None and by_phone.id == by_id.id == declaration_id
        later = clock.now() + timedelta(days=31)
        assert (
            await work.declarations.open_for_household(
                phone="+8613912345678", id_fingerprint=None, since=later
            )
            is None
        )
        assert (
            await work.declarations.open_for_household(
                phone="+8613900000000", id_fingerprint=None, since=since
            )
            is None
        )
        # Withdrawn is no longer open.
        assert await work.tasks.close(task_id)
        assert not await work.tasks.close(task_id)
        await work.declarations.transition(
            declaration_id,
            expected=DeclarationStatus.SUBMITTED,
            to=DeclarationStatus.WITHDRAWN,
            at=clock.now(),
        )
        assert (
            await work.declarations.open_for_household(
                phone="+8613912345678", id_fingerprint=None, since=since
            )
            is None
        )


async def test_idle_drafts_and_reminder_once(uow: SqlUnitOfWorkFactory, clock: FakeClock) -> None:
    async with uow() as work:
        person = await work.persons.add(Role.FARMER)
        conv = await work.conversations.start(person.id, Flow.INTAKE, "name", {}, clock.now())
        await work.commit()
    clock.advance(hours=25)
    async with uow() as work:
        idle = await work.conversations.idle(Flow.INTAKE, clock.now() - timedelta(hours=24))
        assert [c.id for c in idle] == [conv.id]
        assert await work.conversations.mark_reminded(conv.id, clock.now())
        assert not await work.conversations.mark_reminded(conv.id, clock.now())
        # An answer makes it fresh again: a later idle spell is reminded once more.
        await work.conversations.update(conv.id, "phone", {}, clock.now())
        fresh = await work.conversations.get(person.id)
        assert fresh is not None and fresh.reminded_at is None
