"""The outbox sender against the Bot API emulator: flood limits, 429, errors, blocked people,
several senders on one database, a stop in the middle of a broadcast."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Bot

from bot.limits import splitter, utf16_len
from bot.pacing import Pacer
from bot.sender import OutboxSender
from domain.messages import Action, Outgoing
from domain.model import Channel, Role
from handlers.keyboards import markup_of
from storage.db import session_factory
from storage.outbox_store import OutboxStore
from storage.tables import ChannelAccountRow, OutboxRow, UploadRow
from storage.uow import SqlUnitOfWorkFactory
from storage.workers import WorkerRegistry
from tests.emulator import BotAPIEmulator
from tests.support import FakeClock

TOKEN = "123456:TEST-TOKEN"


@pytest.fixture
async def emu() -> AsyncIterator[BotAPIEmulator]:
    async with BotAPIEmulator(token=TOKEN) as emulator:
        yield emulator


@pytest.fixture
async def bot(emu: BotAPIEmulator) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=emu.base_url, base_file_url=emu.base_file_url) as client:
        yield client


async def people(uow: SqlUnitOfWorkFactory, emu: BotAPIEmulator, count: int, clock: FakeClock) -> list[int]:
    """`count` people bound to emulator users 5000, 5001, ..."""
    ids = []
    async with uow() as work:
        for n in range(count):
            person = await work.persons.add(Role.CADRE, name=f"干部{n}")
            emu.user(5000 + n, f"U{n}")
            await work.persons.bind(person.id, Channel.TELEGRAM, str(5000 + n), clock.now())
            ids.append(person.id)
        await work.commit()
    return ids


async def queue(uow: SqlUnitOfWorkFactory, person_ids: list[int], per_person: int, clock: FakeClock) -> None:
    async with uow() as work:
        for n in range(per_person):
            for person_id in person_ids:
                await work.outbox.add(
                    person_id,
                    Outgoing("intake.noted", {"value": f"m{n}"}),
                    key=f"t:{person_id}:{n}",
                    at=clock.now(),
                )
        await work.commit()


async def statuses(engine: AsyncEngine) -> Counter[str]:
    async with session_factory(engine)() as session:
        return Counter((await session.scalars(select(OutboxRow.status))).all())


async def until(predicate: Any, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


def texts(emu: BotAPIEmulator, user_id: int) -> list[str]:
    return [m.text or "" for m in emu.messages(user_id)]


async def test_flood_limits_are_never_exceeded_and_each_person_gets_each_message_once_in_order(
    engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    uow = SqlUnitOfWorkFactory(session_factory(engine))
    emu.enforce_limits = True
    emu.limit_per_second = 10  # the same rule as Telegram's 30, reached sooner
    ids = await people(uow, emu, 12, clock)
    await queue(uow, ids, 3, clock)
    sender = OutboxSender(
        OutboxStore(session_factory(engine)), bot, clock, "zh_Hans_CN", keyboard=markup_of, pacer=Pacer(10)
    )
    sender.start()
    try:
        await until(lambda: _all_sent(engine, 36))
    finally:
        await sender.stop()
    assert emu.flood_errors == 0
    for n in range(12):
        sent = texts(emu, 5000 + n)
        assert [t for t in sent if "m0" in t or "m1" in t or "m2" in t] == sent
        assert [("m0" in sent[0]), ("m1" in sent[1]), ("m2" in sent[2])] == [True, True, True]
        assert len(sent) == 3


async def _all_sent(engine: AsyncEngine, count: int) -> bool:
    return (await statuses(engine))["sent"] == count


async def test_a_429_pauses_only_that_chat(
    engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    uow = SqlUnitOfWorkFactory(session_factory(engine))
    a, b = await people(uow, emu, 2, clock)
    sender = OutboxSender(
        OutboxStore(session_factory(engine)), bot, clock, "zh_Hans_CN", keyboard=markup_of, idle_poll=0.1
    )
    emu.fail_next("sendMessage", status=429, retry_after=3)
    sender.start()
    try:
        await queue(uow, [a], 1, clock)
        sender.wake()
        await until(lambda: _errors(emu))
        clock.advance(seconds=1)  # the row waits for retry_after on the service's clock
        await queue(uow, [b], 1, clock)
        sender.wake()
        # b is served at once, while a waits out its retry_after.
        await emu.next_message(5001, timeout=2)
        assert emu.messages(5000) == []

        async def a_served() -> bool:
            # The pause is kept on the monotonic clock, the row's due time on the service's.
            clock.advance(seconds=0.2)
            sender.wake()
            return bool(emu.messages(5000))

        await until(a_served, timeout=8)
    finally:
        await sender.stop()
    assert len(emu.messages(5000)) == 1 and len(emu.messages(5001)) == 1
    async with session_factory(engine)() as session:
        rows = (await session.scalars(select(OutboxRow).order_by(OutboxRow.id))).all()
    assert [(r.status, r.attempts) for r in rows] == [("sent", 0), ("sent", 0)]


async def _errors(emu: BotAPIEmulator) -> bool:
    return bool(emu.errors)


async def test_server_errors_back_off_and_the_last_retry_keeps_the_message_as_failed(
    engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    uow = SqlUnitOfWorkFactory(session_factory(engine))
    (a,) = await people(uow, emu, 1, clock)
    await queue(uow, [a], 1, clock)
    emu.fail_next("sendMessage", status=500, times=3)
    sender = OutboxSender(
        OutboxStore(session_factory(engine)), bot, clock, "zh_Hans_CN", keyboard=markup_of, max_attempts=3
    )
    for _ in range(3):
        assert await sender.drain_once() == 1
        assert await sender.drain_once() == 0  # backing off: not due yet
        clock.advance(seconds=10)
    async with session_factory(engine)() as session:
        row = (await session.scalars(select(OutboxRow))).one()
    assert (
        (row.status, row.attempts) == ("failed", 3) and "500" in (row.last_error or "")
    ) or "Internal" in (row.last_error or "")
    assert emu.messages(5000) == []


async def test_telegram_failures_back_off_to_every_8_seconds_and_do_not_give_the_message_up(
    engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    uow = SqlUnitOfWorkFactory(session_factory(engine))
    (a,) = await people(uow, emu, 1, clock)
    await queue(uow, [a], 1, clock)
    emu.fail_next("sendMessage", status=502, times=12)
    # The chat's pace is lifted: only the backoff decides when the next attempt goes.
    pacer = Pacer(per_private_chat=1000, private_burst=1000)
    sender = OutboxSender(
        OutboxStore(session_factory(engine)), bot, clock, "zh_Hans_CN", keyboard=markup_of, pacer=pacer
    )
    waits = []
    for _ in range(12):
        assert await sender.drain_once() == 1, waits
        async with session_factory(engine)() as session:
            row = (await session.scalars(select(OutboxRow))).one()
        assert row.status == "sending" and row.next_attempt_at is not None  # still claimed, waiting
        due = row.next_attempt_at.replace(tzinfo=UTC)  # stored in UTC
        waits.append(round((due - clock.now()).total_seconds()))
        assert await sender.drain_once() == 0  # not before it is due
        clock.advance(seconds=waits[-1])
    assert waits == [1, 2, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8]
    assert await sender.drain_once() == 1
    async with session_factory(engine)() as session:
        row = (await session.scalars(select(OutboxRow))).one()
    assert (row.status, row.attempts) == ("sent", 12)
    assert len(emu.messages(5000)) == 1


async def test_a_timeout_is_retried_and_the_message_is_not_lost(
    engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    uow = SqlUnitOfWorkFactory(session_factory(engine))
    (a,) = await people(uow, emu, 1, clock)
    await queue(uow, [a], 1, clock)
    emu.fail_next("sendMessage", timeout=True, hang=6.0)
    sender = OutboxSender(OutboxStore(session_factory(engine)), bot, clock, "zh_Hans_CN", keyboard=markup_of)
    await sender.drain_once()  # the read times out: retried later
    clock.advance(seconds=5)
    await sender.drain_once()
    async with session_factory(engine)() as session:
        row = (await session.scalars(select(OutboxRow))).one()
    assert (row.status, row.attempts) == ("sent", 1)
    # Telegram may have taken the timed-out request too: at least once, never lost.
    assert len(emu.messages(5000)) >= 1


async def test_a_person_who_blocked_the_bot_is_marked_unreachable_and_staff_are_told(
    uow: SqlUnitOfWorkFactory, engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    from domain import delivery
    from tests.support import seed_roster

    await seed_roster(uow)
    async with uow() as work:
        cadre = await work.persons.by_phone("+8613800000001")
        staff = await work.persons.by_phone("+8613800000003")
        assert cadre is not None and staff is not None
        await work.persons.bind(cadre.id, Channel.TELEGRAM, "2001", clock.now())
        await work.persons.bind(staff.id, Channel.TELEGRAM, "3001", clock.now())
        await work.outbox.add(cadre.id, Outgoing("help.cadre", {"hotline": "12317"}), at=clock.now())
        await work.outbox.add(cadre.id, Outgoing("help.cadre", {"hotline": "12317"}), at=clock.now())
        await work.commit()
    emu.user(2001, "张伟")
    emu.user(3001, "王芳")
    emu.block(2001)

    async def unreachable(person_id: int) -> None:
        async with uow() as work:
            await delivery.recipient_unreachable(work, clock, person_id)
            await work.commit()

    sender = OutboxSender(
        OutboxStore(session_factory(engine)),
        bot,
        clock,
        "zh_Hans_CN",
        keyboard=markup_of,
        on_unreachable=unreachable,
    )
    for _ in range(4):
        await sender.drain_once()
    told = texts(emu, 3001)
    assert len(told) == 1 and "张伟" in told[0] and "屏蔽" in told[0]  # told once, not per message
    assert (await statuses(engine))["failed"] == 2
    async with session_factory(engine)() as session:
        account = await session.scalar(select(ChannelAccountRow).where(ChannelAccountRow.address == "2001"))
    assert account is not None and account.unreachable_at is not None


async def test_two_senders_on_one_database_deliver_each_message_once(
    engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    uow = SqlUnitOfWorkFactory(session_factory(engine))
    ids = await people(uow, emu, 20, clock)
    await queue(uow, ids, 2, clock)
    workers = [WorkerRegistry(session_factory(engine), beat_every=0.2, stale_after=2.0) for _ in range(2)]
    senders = [
        OutboxSender(
            OutboxStore(session_factory(engine)), bot, clock, "zh_Hans_CN", keyboard=markup_of,
            pacer=Pacer(15), in_flight=8, worker=worker,
        )
        for worker in workers
    ]  # fmt: skip
    for worker, sender in zip(workers, senders, strict=True):
        await worker.register()
        worker.start()
        sender.start()
    try:
        await until(lambda: _all_sent(engine, 40))
    finally:
        for worker, sender in zip(workers, senders, strict=True):
            await sender.stop()
            await worker.stop()
    for n in range(20):
        sent = texts(emu, 5000 + n)
        assert len(sent) == 2 and "m0" in sent[0] and "m1" in sent[1]


async def test_a_sender_stopped_mid_broadcast_hands_back_its_claims_and_the_next_one_finishes(
    engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    uow = SqlUnitOfWorkFactory(session_factory(engine))
    ids = await people(uow, emu, 30, clock)
    await queue(uow, ids, 1, clock)
    first = OutboxSender(
        OutboxStore(session_factory(engine)), bot, clock, "zh_Hans_CN", keyboard=markup_of, pacer=Pacer(10)
    )
    first.start()
    await until(lambda: _some_sent(engine, 8))
    await first.stop()  # SIGTERM: what is on the wire is finished and recorded
    counts = await statuses(engine)
    assert counts["sending"] == 0 and counts["pending"] > 0
    second = OutboxSender(
        OutboxStore(session_factory(engine)), bot, clock, "zh_Hans_CN", keyboard=markup_of, pacer=Pacer(10)
    )
    second.start()  # no lease to wait for: the claims were handed back
    try:
        await until(lambda: _all_sent(engine, 30))
    finally:
        await second.stop()
    assert [len(emu.messages(5000 + n)) for n in range(30)] == [1] * 30


async def _some_sent(engine: AsyncEngine, count: int) -> bool:
    return (await statuses(engine))["sent"] >= count


async def test_claims_without_a_worker_from_before_workers_are_taken_again_after_their_lease(
    engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    uow = SqlUnitOfWorkFactory(session_factory(engine))
    ids = await people(uow, emu, 5, clock)
    await queue(uow, ids, 1, clock)
    store = OutboxStore(session_factory(engine))
    await store.claim(clock.now(), 3, timedelta(seconds=60))  # a lease claim, then killed: nothing sent
    sender = OutboxSender(store, bot, clock, "zh_Hans_CN", keyboard=markup_of)
    assert await sender.drain_once() == 2  # the other two; the three wait out the lease
    clock.advance(seconds=61)
    assert await sender.drain_once() == 3
    assert [len(emu.messages(5000 + n)) for n in range(5)] == [1] * 5


class _SlowRecord(OutboxStore):
    """Telegram has taken the message but its `sent` mark is not committed yet."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.recording = asyncio.Event()
        self.hold = asyncio.Event()

    async def record(self, marks: Any, worker: str | None = None, **options: Any) -> bool:
        self.recording.set()
        await self.hold.wait()
        return await super().record(marks, worker, **options)


async def test_a_message_whose_sent_mark_is_not_committed_yet_is_not_claimed_again(
    engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    uow = SqlUnitOfWorkFactory(session_factory(engine))
    (a,) = await people(uow, emu, 1, clock)
    await queue(uow, [a], 1, clock)
    store = _SlowRecord(session_factory(engine))
    sender = OutboxSender(store, bot, clock, "zh_Hans_CN", keyboard=markup_of)
    sender.start()
    await asyncio.wait_for(store.recording.wait(), 10)
    clock.advance(hours=1)
    assert await sender.claim_more() == 0  # still "sending" in the database, but its claim is ours
    store.hold.set()
    await until(lambda: _all_sent(engine, 1))
    await sender.stop()
    assert len(emu.messages(5000)) == 1


async def test_a_web_photo_is_uploaded_from_its_stored_bytes_and_a_lost_one_is_kept_as_failed(
    engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    uow = SqlUnitOfWorkFactory(session_factory(engine))
    (a,) = await people(uow, emu, 1, clock)
    photo = b"\x89PNG\r\n\x1a\n" + b"\x00" * 300
    async with session_factory(engine)() as session, session.begin():
        stored = UploadRow(content_type="image/png", data=photo, at=clock.now())
        session.add(stored)
        await session.flush()
        upload_id = stored.id
    async with uow() as work:
        for n, ref in enumerate((f"upload:{upload_id}", "upload:999999")):
            await work.outbox.add(
                a, Outgoing("case.attachment", {"receipt": "R1"}, media={"kind": "photo", "file_id": ref}),
                key=f"p{n}", at=clock.now(),
            )  # fmt: skip
        await work.commit()
    sender = OutboxSender(OutboxStore(session_factory(engine)), bot, clock, "zh_Hans_CN", keyboard=markup_of)
    assert [await sender.drain_once(), await sender.drain_once()] == [2, 0]  # in order, one round
    (sent,) = emu.messages(5000)
    assert sent.kind == "photo"
    assert emu.file_bytes(sent.to_api()["photo"][-1]["file_id"]) == photo
    assert await statuses(engine) == Counter({"sent": 1, "failed": 1})


def _long_body(lines: int) -> str:
    return "\n".join(f"#{n:02} " + "三户危房改造未完工，协调施工队加快进度😀" * 25 for n in range(lines))


async def test_a_long_message_goes_in_parts_each_once_in_order_across_an_error_and_a_restart(
    engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    uow = SqlUnitOfWorkFactory(session_factory(engine), split=splitter("zh_Hans"))
    (a,) = await people(uow, emu, 1, clock)
    body = _long_body(16)  # 16 lines of 529 UTF-16 units: three parts
    async with uow() as work:
        await work.outbox.add(
            a, Outgoing("ledger.item", {"line": body}, actions=((Action("ack"),),)), at=clock.now()
        )
        await work.outbox.add(a, Outgoing("intake.noted", {"value": "after"}), at=clock.now())
        await work.commit()
    # One part at a time: the next goes half a second after the answer to the one before.
    paced = Pacer(per_private_chat=2.0, private_burst=1)
    first = OutboxSender(
        OutboxStore(session_factory(engine)), bot, clock, "zh_Hans_CN", keyboard=markup_of, pacer=paced
    )
    draining = asyncio.create_task(first.drain_once())
    await emu.next_message(5000)
    emu.fail_next("sendMessage", status=500)
    # The second part fails: it waits for its retry, and nothing after it overtakes it.
    assert await draining == 2
    assert len(emu.messages(5000)) == 1
    await first.stop()
    clock.advance(seconds=10)
    quick = Pacer(per_private_chat=100.0, private_burst=10)
    second = OutboxSender(
        OutboxStore(session_factory(engine)), bot, clock, "zh_Hans_CN", keyboard=markup_of, pacer=quick
    )
    while await second.drain_once():  # a restart: the next sender goes on where the first stopped
        clock.advance(seconds=10)
    sent = emu.messages(5000)
    assert len(sent) == 4 and "after" in (sent[-1].text or "")
    parts = [m.text or "" for m in sent[:-1]]
    assert "\n".join(parts) == body  # each part once, in order
    assert all(utf16_len(part) <= 4096 for part in parts)
    assert [bool(m.inline_keyboard) for m in sent] == [False, False, True, False]
    assert await statuses(engine) == Counter({"sent": 4})


async def test_a_message_queued_whole_but_too_long_is_cut_to_fit_rather_than_refused(
    engine: AsyncEngine, emu: BotAPIEmulator, bot: Bot, clock: FakeClock
) -> None:
    uow = SqlUnitOfWorkFactory(session_factory(engine))  # queued before messages were split
    (a,) = await people(uow, emu, 1, clock)
    async with uow() as work:
        await work.outbox.add(a, Outgoing("ledger.item", {"line": _long_body(10)}), at=clock.now())
        await work.commit()
    sender = OutboxSender(OutboxStore(session_factory(engine)), bot, clock, "zh_Hans_CN", keyboard=markup_of)
    assert await sender.drain_once() == 1
    (sent,) = emu.messages(5000)
    assert (sent.text or "").startswith("#00") and (sent.text or "").endswith("…")
    assert utf16_len(sent.text or "") <= 4096
    assert await statuses(engine) == Counter({"sent": 1})
