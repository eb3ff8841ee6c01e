"""The sender's side of the outbox: claim due messages, record how each attempt went.

A claim names its worker (`status='sending', claimed_by=<worker id>`): a live worker's claim is
never taken; a claim of a worker that is not live (no row in `workers`, or a stale heartbeat) is
due at once for any sender. Claims written before workers existed (`claimed_by` NULL) keep the
lease rule: due again once `claimed_until` has passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import Table, and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from domain.model import OutboxStatus
from storage.tables import ChannelAccountRow, OutboxRow, PersonRow, UploadRow
from storage.workers import live_ids, utcnow

OPEN = (OutboxStatus.PENDING.value, OutboxStatus.SENDING.value)
PENDING = OutboxStatus.PENDING.value
SENDING = OutboxStatus.SENDING.value
DEFAULT_STALE_AFTER = 3.0  # seconds without a heartbeat after which a worker is dead


@dataclass(frozen=True)
class Claimed:
    """A message this sender holds: read back from a claim, or handed over by the unit of work
    that wrote it already claimed."""

    id: int
    person_id: int
    channel: str
    payload: dict[str, Any]
    attempts: int
    address: str | None
    locale: str | None
    claimed_until: datetime | None = None  # a legacy lease (claims without a worker)
    next_attempt_at: datetime | None = None  # not to be sent before (a retry waiting its turn)


MarkKind = Literal["sent", "retry", "failed", "release"]


@dataclass(frozen=True)
class Mark:
    """How one attempt went, to be written with others in one transaction (`OutboxStore.record`).

    sent: `at` sent_at, `external_id`; retry: `at` next_attempt_at, the row stays claimed by its
    worker; failed: given up (kept, visible); release: handed back unsent (pending, unclaimed).
    `attempts` is the count of failed attempts so far (kept as it is by a release).
    """

    kind: MarkKind
    id: int
    attempts: int = 0
    at: datetime | None = None
    external_id: str | None = None
    error: str | None = None


def _due(row: Any, worker: str, now: datetime, live: Any, *, mine: bool = False) -> Any:
    """The rows this worker may claim: pending and due; a legacy claim whose lease ran out; a
    claim of a worker that is not live; with `mine`, also its own claims (after a lost heartbeat)."""
    clauses = [
        and_(row.status == PENDING, row.next_attempt_at <= now),
        and_(
            row.status == SENDING,
            row.claimed_by.is_(None),
            or_(row.claimed_until.is_(None), row.claimed_until <= now),
        ),
        and_(
            row.status == SENDING,
            row.claimed_by.is_not(None),
            row.claimed_by != worker,
            row.claimed_by.not_in(live),
        ),
    ]
    if mine:
        clauses.append(and_(row.status == SENDING, row.claimed_by == worker))
    return or_(*clauses)


def _blocking(row: Any, worker: str, now: datetime, live: Any) -> Any:
    """An open row that holds back its person's later rows: not due yet, or held by a live
    other worker (or a legacy lease). This worker's own claims do not: they are in its queues."""
    return or_(
        and_(row.status == PENDING, row.next_attempt_at > now),
        and_(row.status == SENDING, row.claimed_by.is_(None), row.claimed_until > now),
        and_(
            row.status == SENDING,
            row.claimed_by.is_not(None),
            row.claimed_by != worker,
            row.claimed_by.in_(live),
        ),
    )


class OutboxStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def claim_for(
        self,
        worker: str,
        now: datetime,
        limit: int,
        *,
        live: Any | None = None,
        mine: bool = False,
        channels: Sequence[str] | None = None,
    ) -> list[Claimed]:
        """Claim up to `limit` due messages for `worker`, in one transaction: all due rows of
        each person in order, skipping a person whose oldest open row is held by a live other
        worker or is not due yet. `live` is a SELECT of live worker ids (WorkerRegistry.live_ids;
        by default heartbeats of the last 3 s of real time). On PostgreSQL, rows another sender
        is claiming are skipped (FOR UPDATE SKIP LOCKED), and so are the later rows of their
        person, so that one person's messages never go out from two senders at once."""
        if live is None:
            live = live_ids(utcnow(), DEFAULT_STALE_AFTER)
        earlier = aliased(OutboxRow)
        held_back = (
            select(earlier.id)
            .where(
                earlier.person_id == OutboxRow.person_id,
                earlier.id < OutboxRow.id,
                _blocking(earlier, worker, now, live),
            )
            .exists()
        )
        due = _due(OutboxRow, worker, now, live, mine=mine)
        if channels is not None:  # each channel has its own sender (bot/sender.py, bot/sms/sender.py)
            due = and_(OutboxRow.channel.in_(list(channels)), due)
        query = (
            select(OutboxRow.id, OutboxRow.person_id)
            .where(OutboxRow.status.in_(OPEN), due, ~held_back)
            .order_by(OutboxRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self.sessions() as session, session.begin():
            found = [(int(i), int(p)) for i, p in (await session.execute(query)).all()]
            if not found:
                return []
            if session.bind is not None and session.bind.dialect.name != "sqlite":
                found = await self._in_order(session, found, due)
                if not found:
                    return []
            ids = [i for i, _ in found]
            await session.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(ids))
                .values(status=SENDING, claimed_by=worker, claimed_until=None)
            )
            return await self._read(session, ids)

    @staticmethod
    async def _in_order(
        session: AsyncSession, found: list[tuple[int, int]], due: Any
    ) -> list[tuple[int, int]]:
        """Of the rows just locked, those that start their person's due rows: a row another
        sender holds locked (skipped) must not be overtaken by the same person's next one."""
        persons = sorted({p for _, p in found})
        everything = await session.execute(
            select(OutboxRow.id, OutboxRow.person_id)
            .where(OutboxRow.person_id.in_(persons), OutboxRow.status.in_(OPEN), due)
            .order_by(OutboxRow.id)
        )
        expected: dict[int, list[int]] = {}
        for i, p in everything.all():
            expected.setdefault(int(p), []).append(int(i))
        position: dict[int, int] = {}
        kept = []
        for i, p in found:
            n = position.get(p, 0)
            wanted = expected.get(p, [])
            if n < len(wanted) and wanted[n] == i:
                position[p] = n + 1
                kept.append((i, p))
            else:
                position[p] = len(wanted) + 1  # broken: nothing later of this person either
        return kept

    @staticmethod
    async def _read(session: AsyncSession, ids: list[int], lease: datetime | None = None) -> list[Claimed]:
        rows = await session.execute(
            select(OutboxRow, ChannelAccountRow.address, PersonRow.locale)
            .join(PersonRow, PersonRow.id == OutboxRow.person_id)
            .outerjoin(
                ChannelAccountRow,
                and_(
                    ChannelAccountRow.person_id == OutboxRow.person_id,
                    ChannelAccountRow.channel == OutboxRow.channel,
                ),
            )
            .where(OutboxRow.id.in_(ids))
            .order_by(OutboxRow.id)
        )
        return [
            Claimed(
                row.id, row.person_id, row.channel, dict(row.payload), row.attempts, address, locale,
                lease, row.next_attempt_at,
            )
            for row, address, locale in rows.all()
        ]  # fmt: skip

    async def claim(self, now: datetime, limit: int, lease: timedelta) -> list[Claimed]:
        """The claim without a worker (kept for tools and older callers): up to `limit` due
        messages, at most one per person and only that person's oldest, each under a lease
        (`claimed_by` NULL): taken again by anyone once `lease` has passed."""
        earlier = aliased(OutboxRow)
        due = or_(
            and_(OutboxRow.status == PENDING, OutboxRow.next_attempt_at <= now),
            and_(
                OutboxRow.status == SENDING,
                or_(
                    and_(OutboxRow.claimed_by.is_(None), OutboxRow.claimed_until <= now),
                    and_(
                        OutboxRow.claimed_by.is_not(None),
                        OutboxRow.claimed_by.not_in(live_ids(utcnow(), DEFAULT_STALE_AFTER)),
                    ),
                ),
            ),
        )
        older_open = (
            select(earlier.id)
            .where(
                earlier.person_id == OutboxRow.person_id, earlier.id < OutboxRow.id, earlier.status.in_(OPEN)
            )
            .exists()
        )
        query = (
            select(OutboxRow.id)
            .where(due, ~older_open)
            .order_by(OutboxRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self.sessions() as session, session.begin():
            ids = list((await session.scalars(query)).all())
            if not ids:
                return []
            await session.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(ids))
                .values(status=SENDING, claimed_until=now + lease, claimed_by=None)
            )
            return await self._read(session, ids, now + lease)

    async def record(
        self, marks: Sequence[Mark], worker: str | None = None, *, heartbeat: Any = None
    ) -> bool:
        """Write every mark in ONE transaction (the sender's group commit). A retry or release
        is fenced by the claim: it changes a row only while `worker` (None: nobody) holds it.
        `heartbeat` (WorkerRegistry.piggyback's UPDATE) goes in the same transaction; True when
        it changed the worker's row."""
        if not marks:
            return False
        beat = False
        table = cast(Table, OutboxRow.__table__)
        retries: dict[int, Mark] = {}
        final: dict[int, Mark] = {}
        for mark in marks:
            (retries if mark.kind == "retry" else final)[mark.id] = mark
        claimant = table.c.claimed_by == worker if worker is not None else table.c.claimed_by.is_(None)
        async with self.sessions() as session, session.begin():
            if retries:
                await session.execute(
                    update(table)
                    .where(table.c.id == bindparam("m_id"), table.c.status == SENDING, claimant)
                    .values(
                        next_attempt_at=bindparam("m_at"),
                        attempts=bindparam("m_attempts"),
                        last_error=bindparam("m_error"),
                    ),
                    [
                        {
                            "m_id": m.id,
                            "m_at": m.at,
                            "m_attempts": m.attempts,
                            "m_error": (m.error or "")[:500],
                        }
                        for m in retries.values()
                    ],
                )
            sent = [m for m in final.values() if m.kind == "sent"]
            if sent:
                await session.execute(
                    update(table)
                    .where(table.c.id == bindparam("m_id"))
                    .values(
                        status=OutboxStatus.SENT.value,
                        sent_at=bindparam("m_at"),
                        external_id=bindparam("m_external"),
                        attempts=bindparam("m_attempts"),
                        claimed_until=None,
                    ),
                    [
                        {"m_id": m.id, "m_at": m.at, "m_external": m.external_id, "m_attempts": m.attempts}
                        for m in sent
                    ],
                )
            failed = [m for m in final.values() if m.kind == "failed"]
            if failed:
                await session.execute(
                    update(table)
                    .where(table.c.id == bindparam("m_id"))
                    .values(
                        status=OutboxStatus.FAILED.value,
                        attempts=bindparam("m_attempts"),
                        last_error=bindparam("m_error"),
                        claimed_until=None,
                    ),
                    [
                        {"m_id": m.id, "m_attempts": m.attempts, "m_error": (m.error or "")[:500]}
                        for m in failed
                    ],
                )
            released = [m.id for m in final.values() if m.kind == "release"]
            if released:
                await session.execute(
                    update(table)
                    .where(table.c.id.in_(released), table.c.status == SENDING, claimant)
                    .values(status=PENDING, claimed_by=None, claimed_until=None)
                )
            if heartbeat is not None:
                beat = int(getattr(await session.execute(heartbeat), "rowcount", 0) or 0) == 1
        return beat

    async def sent(self, message_id: int, at: datetime, external_id: str | None) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(OutboxRow)
                .where(OutboxRow.id == message_id)
                .values(
                    status=OutboxStatus.SENT.value, sent_at=at, external_id=external_id, claimed_until=None
                )
            )

    async def retry(self, message_id: int, at: datetime, attempts: int, error: str) -> None:
        """Hand a message back for a later attempt (pending, unclaimed)."""
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(OutboxRow)
                .where(OutboxRow.id == message_id)
                .values(
                    status=PENDING,
                    next_attempt_at=at,
                    attempts=attempts,
                    last_error=error[:500],
                    claimed_until=None,
                    claimed_by=None,
                )
            )

    async def failed(self, message_id: int, attempts: int, error: str) -> None:
        """Give up on a message; it stays in the table, visible, never dropped."""
        await self.record([Mark("failed", message_id, attempts, error=error)])

    async def release(self, message_ids: list[int], worker: str | None = None) -> None:
        """Hand back claimed messages that were never sent, so that nobody waits for them:
        those of `worker`, or (None) legacy lease claims."""
        if message_ids:
            await self.record([Mark("release", i) for i in message_ids], worker)

    async def upload(self, upload_id: int) -> tuple[str, bytes] | None:
        """A photo uploaded on the web form (content type, bytes), to send as a file."""
        async with self.sessions() as session:
            row = await session.get(UploadRow, upload_id)
            return (row.content_type, bytes(row.data)) if row else None

    async def counts(self) -> dict[str, int]:
        async with self.sessions() as session:
            rows = await session.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status))
            return {status: int(count) for status, count in rows.all()}

    async def sample(self, now: datetime) -> tuple[dict[str, int], float]:
        """A cheap look for the metrics (a read, through the index on status and due time): how
        many rows are pending and sending, and the age in seconds of the oldest due unsent one."""
        async with self.sessions() as session:
            counts = {state: 0 for state in OPEN}
            rows = await session.execute(
                select(OutboxRow.status, func.count())
                .where(OutboxRow.status.in_(OPEN))
                .group_by(OutboxRow.status)
            )
            counts.update({status: int(count) for status, count in rows.all()})
            oldest = await session.scalar(
                select(func.min(OutboxRow.next_attempt_at)).where(
                    OutboxRow.status.in_(OPEN), OutboxRow.next_attempt_at <= now
                )
            )
        age = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
        return counts, age
