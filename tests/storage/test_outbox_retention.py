"""Delivered and failed outbox rows lose their personal data after the retention period, in
batches; open rows, cases and their events keep everything (SQLite, and PostgreSQL when set)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.messages import Outgoing
from domain.model import CaseEvent, Channel, OutboxStatus, Role
from storage.db import session_factory
from storage.outbox_retention import purge_done_before
from storage.outbox_store import OutboxStore
from storage.tables import CaseEventRow, DeclarationRow, OutboxRow, TaskRow
from storage.uow import SqlUnitOfWorkFactory
from tests.storage.test_storage import _declaration
from tests.support import FakeClock

DAYS = 30
PERSONAL = {"name": "王大山", "phone": "+8613912345678", "description": "老伴住院做手术"}


async def rows(engine: AsyncEngine) -> dict[str, OutboxRow]:
    async with session_factory(engine)() as session:
        found = (await session.scalars(select(OutboxRow).order_by(OutboxRow.id))).all()
        session.expunge_all()
    return {row.key: row for row in found}


async def count(engine: AsyncEngine, model: object) -> int:
    async with session_factory(engine)() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)  # type: ignore[arg-type]


async def test_old_sent_and_failed_messages_keep_only_their_template_cases_stay(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    uow = SqlUnitOfWorkFactory(session_factory(engine))
    declaration_id, _ = await _declaration(uow, clock)
    start = clock.now()
    async with uow() as work:
        await work.events.add(CaseEvent(declaration_id, "submitted", None, start, {"note": "住院"}))
        people: dict[str, int] = {}
        for key in ("sent-early", "failed", "sent-later", "sending", "pending"):
            person = await work.persons.add(Role.FARMER, name="王大山", phone=f"1391234560{len(people)}")
            await work.persons.bind(person.id, Channel.TELEGRAM, f"10{len(people)}", start)
            people[key] = person.id
            message = Outgoing("case.new", PERSONAL, lead="notice.lead", lead_params={"name": "王大山"})
            assert await work.outbox.add(person.id, message, key=key, at=start)
        await work.commit()
    store = OutboxStore(session_factory(engine))
    claimed = {m.person_id: m for m in await store.claim(start, 10, timedelta(minutes=5))}
    by_key = {key: claimed[person] for key, person in people.items()}
    await store.sent(by_key["sent-early"].id, start, "77")
    await store.failed(by_key["failed"].id, 5, "forbidden: bot was blocked by the user")
    await store.retry(by_key["sent-later"].id, start + timedelta(days=10), 1, "timed out")
    await store.release([by_key["pending"].id])
    later = await store.claim(start + timedelta(days=10), 10, timedelta(minutes=5))
    assert [m.id for m in later] == [
        by_key[k].id for k in ("sent-later", "sending", "pending")
    ]  # a lease ran out
    await store.sent(by_key["sent-later"].id, start + timedelta(days=10), "78")
    await store.release([by_key["pending"].id])

    # A day before the period is over, nothing changes.
    clock.advance(days=DAYS - 1)
    assert await purge_done_before(store.sessions, before=clock.now() - timedelta(days=DAYS)) == 0
    clock.advance(days=1, minutes=1)
    assert await purge_done_before(store.sessions, before=clock.now() - timedelta(days=DAYS)) == 2
    found = await rows(engine)
    for key in ("sent-early", "failed"):
        assert found[key].payload == {"template": "case.new", "purged": True}, key
    assert found["sent-early"].status == OutboxStatus.SENT.value and found["sent-early"].sent_at == start
    assert found["sent-early"].external_id == "77" and found["sent-early"].person_id == people["sent-early"]
    assert found["failed"].status == OutboxStatus.FAILED.value and found["failed"].attempts == 5
    assert found["failed"].last_error == "forbidden: bot was blocked by the user"
    for key in ("sent-later", "sending", "pending"):
        assert found[key].payload["params"] == PERSONAL, key
    # Running again changes nothing; ten days on, the message sent later goes too; open ones never.
    assert await purge_done_before(store.sessions, before=clock.now() - timedelta(days=DAYS)) == 0
    clock.advance(days=10)
    assert await purge_done_before(store.sessions, before=clock.now() - timedelta(days=DAYS)) == 1
    clock.advance(days=365)
    assert await purge_done_before(store.sessions, before=clock.now() - timedelta(days=DAYS)) == 0
    found = await rows(engine)
    assert found["sent-later"].payload == {"template": "case.new", "purged": True}
    assert found["sending"].payload["params"] == PERSONAL and found["pending"].payload["params"] == PERSONAL
    # The case, its task and its events are untouched.
    assert await count(engine, TaskRow) == 1 and await count(engine, CaseEventRow) == 1
    async with uow() as work:
        declaration = await work.declarations.get(declaration_id)
        assert declaration is not None and declaration.head_name == "王大山"
        assert declaration.phone == "+8613912345678"
    assert await count(engine, DeclarationRow) == 1


async def test_the_purge_goes_in_batches_and_failed_rows_still_list_for_staff(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    uow = SqlUnitOfWorkFactory(session_factory(engine))
    await _declaration(uow, clock)  # the example roster: 张伟 is a cadre of 青山镇's 李家村
    start = clock.now()
    async with uow() as work:
        zhang = await work.persons.by_phone("+8613800000001")
        assert zhang is not None
        await work.persons.bind(zhang.id, Channel.TELEGRAM, "2001", start)
        others = []
        for n in range(4):
            person = await work.persons.add(Role.FARMER)
            await work.persons.bind(person.id, Channel.TELEGRAM, f"30{n}", start)
            others.append(person.id)
        await work.outbox.add(zhang.id, Outgoing("case.new", PERSONAL), key="to-zhang", at=start)
        for n, person_id in enumerate(others):
            await work.outbox.add(person_id, Outgoing("case.update", PERSONAL), key=f"farmer-{n}", at=start)
        await work.commit()
    store = OutboxStore(session_factory(engine))
    claimed = await store.claim(start, 10, timedelta(minutes=5))
    for message in claimed:
        if message.person_id == zhang.id:
            await store.failed(message.id, 1, "no address")
        else:
            await store.sent(message.id, start, None)
    before = start + timedelta(days=DAYS + 1) - timedelta(days=DAYS)
    batches = [await purge_done_before(store.sessions, before=before, limit=2) for _ in range(4)]
    assert batches == [2, 2, 1, 0]
    assert all(row.payload.get("purged") for row in (await rows(engine)).values())
    async with uow() as work:
        village = await work.geography.village_by_code("QS01")
        assert village is not None
        [failed] = await work.delivery.failed_in_township(village.township_id, 20)
    assert failed.person_name == "张伟" and failed.template == "case.new" and failed.error == "no address"
