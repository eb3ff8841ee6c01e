"""The sender's side of the outbox: claim due messages, record how each attempt went."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from domain.model import OutboxStatus
from storage.models import ChannelAccountRow, OutboxRow, PersonRow, UploadRow

OPEN = (OutboxStatus.PENDING.value, OutboxStatus.SENDING.value)


@dataclass(frozen=True)
class Claimed:
    id: int
    person_id: int
    channel: str
    payload: dict[str, Any]
    attempts: int
    address: str | None
    locale: str | None
    claimed_until: datetime | None = None  # the lease this claim holds: its fencing token


class OutboxStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def claim(self, now: datetime, limit: int, lease: timedelta) -> list[Claimed]:
        """Take up to `limit` due messages, at most one per person and only that person's oldest.

        A claim is a lease: a sender that dies mid-send leaves rows that another (or the same,
        restarted) sender takes again once `lease` has passed. On PostgreSQL, rows another
        sender is claiming are skipped (FOR UPDATE SKIP LOCKED) rather than waited for.
        """
        earlier = aliased(OutboxRow)
        due = or_(
            and_(OutboxRow.status == OutboxStatus.PENDING.value, OutboxRow.next_attempt_at <= now),
            and_(OutboxRow.status == OutboxStatus.SENDING.value, OutboxRow.claimed_until <= now),
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
                .values(status=OutboxStatus.SENDING.value, claimed_until=now + lease)
            )
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
                    now + lease,
                )
                for row, address, locale in rows.all()
            ]  # fmt: skip

    async def still_mine(self, message: Claimed, until: datetime) -> bool:
        """Renew the lease of a claim just before sending; False when the lease ran out and
        another sender claimed the message meanwhile (then this one must not send it)."""
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.id == message.id,
                    OutboxRow.status == OutboxStatus.SENDING.value,
                    OutboxRow.claimed_until == message.claimed_until,
                )
                .values(claimed_until=until)
            )
            return int(getattr(result, "rowcount", 0) or 0) == 1

    async def _set(self, message_id: int, **values: Any) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(update(OutboxRow).where(OutboxRow.id == message_id).values(**values))

    async def sent(self, message_id: int, at: datetime, external_id: str | None) -> None:
        await self._set(
            message_id,
            status=OutboxStatus.SENT.value,
            sent_at=at,
            external_id=external_id,
            claimed_until=None,
        )

    async def retry(self, message_id: int, at: datetime, attempts: int, error: str) -> None:
        await self._set(
            message_id,
            status=OutboxStatus.PENDING.value,
            next_attempt_at=at,
            attempts=attempts,
            last_error=error[:500],
            claimed_until=None,
        )

    async def failed(self, message_id: int, attempts: int, error: str) -> None:
        """Give up on a message; it stays in the table, visible, never dropped."""
        await self._set(
            message_id,
            status=OutboxStatus.FAILED.value,
            attempts=attempts,
            last_error=error[:500],
            claimed_until=None,
        )

    async def release(self, message_ids: list[int]) -> None:
        """Hand back claimed messages that were never sent, so they need not wait for the lease."""
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(message_ids), OutboxRow.status == OutboxStatus.SENDING.value)
                .values(status=OutboxStatus.PENDING.value, claimed_until=None)
            )

    async def upload(self, upload_id: int) -> tuple[str, bytes] | None:
        """A photo uploaded on the web form (content type, bytes), to send as a file."""
        async with self.sessions() as session:
            row = await session.get(UploadRow, upload_id)
            return (row.content_type, bytes(row.data)) if row else None

    async def counts(self) -> dict[str, int]:
        from sqlalchemy import func

        async with self.sessions() as session:
            rows = await session.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status))
            return {status: int(count) for status, count in rows.all()}
