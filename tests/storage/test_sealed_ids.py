"""Re-keying sealed ID numbers (`keys rotate`) and finding repeats by ID across a key change, on
SQLite and (with TEST_DATABASE_URL) PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.crypto import FernetProtector
from domain import intake
from domain.model import Flow, NewDeclaration, Role
from storage.db import session_factory
from storage.sealed_ids import RotationCounts, rotate
from storage.tables import ConversationRow, DeclarationRow
from storage.uow import SqlUnitOfWorkFactory
from tests.support import FakeClock, seed_roster

OLD, NEW, LOST = b"old-id-key-0123456789", b"new-id-key-0123456789", b"a-key-nobody-has-any-more"
IDS = ("11010519491231002X", "110105194912310037", "110105194912310045", "110105194912310053")


async def declare(
    uow: SqlUnitOfWorkFactory, clock: FakeClock, protector: FernetProtector, id_number: str, phone: str
) -> int:
    async with uow() as work:
        village = await work.geography.village_by_code("QS01")
        farmer = await work.persons.add(Role.FARMER)
        assert village is not None
        made = await work.declarations.add(
            NewDeclaration(
                village_id=village.id, declared_by=farmer.id, head_name="王大山", phone=phone,
                risk_types=("illness",), description="住院", consent_version="2026-11",
                consent_at=clock.now(), id_sealed=protector.seal(id_number),
                id_fingerprint=protector.fingerprint(id_number),
            ),
            clock.now(),
        )  # fmt: skip
        await work.commit()
    return made.id


async def draft(uow: SqlUnitOfWorkFactory, clock: FakeClock, data: dict[str, object]) -> None:
    async with uow() as work:
        farmer = await work.persons.add(Role.FARMER)
        await work.conversations.start(farmer.id, Flow.INTAKE, "household", data, clock.now())
        await work.commit()


async def test_repeats_by_id_number_match_across_a_key_change_before_and_after_rotation(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory, clock: FakeClock
) -> None:
    await seed_roster(uow)
    first = await declare(uow, clock, FernetProtector(OLD), IDS[0], "+8613912345678")
    changed = FernetProtector(NEW, [OLD])  # ID_ENCRYPTION_KEY changed, the old one kept for reading

    async def repeat(protector: FernetProtector) -> int | None:
        async with uow() as work:
            # The lookup the chat and the web form make, with the fingerprint their protector gives.
            found = await intake.open_declaration_of(
                work, clock, phone=None, fingerprint=protector.fingerprint(IDS[0])
            )
        return found.id if found else None

    assert await repeat(changed) == first  # before any row is re-keyed
    assert await repeat(FernetProtector(NEW)) is None  # which is what the old key is still kept for
    await rotate(session_factory(engine), changed)
    assert await repeat(changed) == first
    assert await repeat(FernetProtector(NEW)) == first  # after rotation the old key can go
    async with uow() as work:
        other = await intake.open_declaration_of(
            work, clock, phone=None, fingerprint=changed.fingerprint(IDS[1])
        )
    assert other is None


async def test_rotation_reseals_declarations_and_drafts_in_batches_and_a_second_run_changes_nothing(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory, clock: FakeClock
) -> None:
    await seed_roster(uow)
    old, changed = FernetProtector(OLD), FernetProtector(NEW, [OLD])
    for n, id_number in enumerate(IDS[:3]):
        await declare(uow, clock, old, id_number, f"+861391234567{n}")
    current = await declare(uow, clock, changed, IDS[3], "+8613912345679")
    lost = await declare(uow, clock, FernetProtector(LOST), IDS[0], "+8613900000000")
    sealed = {"id_sealed": old.seal(IDS[1]), "id_fingerprint": old.fingerprint(IDS[1])}
    await draft(uow, clock, {"phone": "+8613800000009", **sealed, "id_masked": "1101**********0037"})
    await draft(uow, clock, {"phone": "+8613800000008"})  # no ID number: nothing to do

    sessions = session_factory(engine)
    done = await rotate(sessions, changed, batch=2)  # five declarations: three batches
    assert done.declarations == RotationCounts(rotated=3, current=1, unreadable=1)
    assert done.drafts == RotationCounts(rotated=1, current=0, unreadable=0)
    async with sessions() as session:
        lost_receipt = (await session.get(DeclarationRow, lost)).receipt  # type: ignore[union-attr]
    assert done.unreadable_receipts == (lost_receipt,)

    only_new = FernetProtector(NEW)
    async with sessions() as session:
        rows = {row.id: row for row in await session.scalars(select(DeclarationRow))}
        drafts = [c.data for c in await session.scalars(select(ConversationRow)) if "id_sealed" in c.data]
    for row in rows.values():
        if row.id == lost:
            assert row.id_sealed is not None and row.id_fingerprint is not None  # left as it was
            continue
        assert row.id_sealed is not None
        value = only_new.unseal(row.id_sealed)
        assert row.id_fingerprint == only_new.fingerprint(value)
    assert only_new.unseal(rows[current].id_sealed or "") == IDS[3]
    [data] = drafts
    assert only_new.unseal(data["id_sealed"]) == IDS[1]
    assert data["id_fingerprint"] == only_new.fingerprint(IDS[1])
    assert data["phone"] == "+8613800000009" and data["id_masked"] == "1101**********0037"

    again = await rotate(sessions, changed, batch=2)
    assert again.declarations == RotationCounts(rotated=0, current=4, unreadable=1)
    assert again.drafts == RotationCounts(rotated=0, current=1, unreadable=0)
    async with sessions() as session:
        after = {
            row.id: (row.id_sealed, row.id_fingerprint)
            for row in await session.scalars(select(DeclarationRow))
        }
    assert after == {row.id: (row.id_sealed, row.id_fingerprint) for row in rows.values()}
