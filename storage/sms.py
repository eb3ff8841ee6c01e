"""The SMS sender's side of the database: texts the provider accepted (sms_sends), what the
per-number limits count, and delivery receipts.

A text's outbox row is marked sent in the same transaction as its sms_sends row is written, so a
text the provider accepted is never offered to it again (a retry first looks here, then asks the
provider by the text's out-id). An undelivered receipt marks the outbox row failed, so `/failed`
and the console list it beside the chat's failures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.model import OutboxStatus
from storage.base import insert_or_ignore
from storage.tables import OutboxRow, SmsSendRow

# Our id of a text, sent as Aliyun's OutId / Tencent's SessionContext; echoed in receipts.
OUT_ID_PREFIX = "fh-"
UNDELIVERED = "sms undelivered"  # the start of an outbox row's last_error (domain.delivery.reason_key)


def out_id_of(outbox_id: int) -> str:
    return f"{OUT_ID_PREFIX}{outbox_id}"


def outbox_id_of(out_id: str | None) -> int | None:
    if not out_id or not out_id.startswith(OUT_ID_PREFIX):
        return None
    digits = out_id[len(OUT_ID_PREFIX) :]
    return int(digits) if digits.isdigit() and len(digits) < 19 else None


@dataclass(frozen=True)
class Accepted:
    outbox_id: int
    out_id: str
    phone: str
    kind: str
    provider: str
    provider_id: str | None
    at: datetime


class SmsStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def accepted_before(self, outbox_id: int) -> str | None:
        """The provider's id if the text of this outbox row was accepted already ("" without one)."""
        async with self.sessions() as session:
            row = (
                await session.execute(select(SmsSendRow.provider_id).where(SmsSendRow.outbox_id == outbox_id))
            ).first()
        return None if row is None else (row[0] or "")

    async def recent(self, phone: str, kind: str, since: datetime) -> list[datetime]:
        """When the texts of `kind` to `phone` accepted since `since` were accepted (oldest first)."""
        async with self.sessions() as session:
            found = await session.scalars(
                select(SmsSendRow.accepted_at)
                .where(SmsSendRow.phone == phone, SmsSendRow.kind == kind, SmsSendRow.accepted_at >= since)
                .order_by(SmsSendRow.accepted_at)
            )
            return list(found)

    async def accept(self, accepted: Accepted, attempts: int) -> None:
        """The provider took the text: record it and mark its outbox row sent, in one transaction."""
        async with self.sessions() as session, session.begin():
            statement = insert_or_ignore(session, SmsSendRow, ["outbox_id"])
            await session.execute(
                statement,
                [
                    {
                        "outbox_id": accepted.outbox_id,
                        "out_id": accepted.out_id,
                        "phone": accepted.phone,
                        "kind": accepted.kind,
                        "provider": accepted.provider,
                        "provider_id": accepted.provider_id,
                        "accepted_at": accepted.at,
                    }
                ],
            )
            await session.execute(
                update(OutboxRow)
                .where(OutboxRow.id == accepted.outbox_id)
                .values(
                    status=OutboxStatus.SENT.value,
                    sent_at=accepted.at,
                    external_id=accepted.provider_id,
                    attempts=attempts,
                    claimed_until=None,
                )
            )

    async def report(
        self,
        *,
        out_id: str | None,
        provider_id: str | None,
        delivered: bool,
        code: str,
        at: datetime,
    ) -> bool:
        """A delivery receipt; False when it names no text of ours. A text reported undelivered
        is failed in the outbox (for /failed and the console); a later "delivered" wins."""
        async with self.sessions() as session, session.begin():
            query = select(SmsSendRow)
            by_out = outbox_id_of(out_id)
            if by_out is not None:
                query = query.where(SmsSendRow.outbox_id == by_out)
            elif provider_id:
                query = query.where(SmsSendRow.provider_id == provider_id[:64])
            else:
                return False
            row = await session.scalar(query.limit(1))
            if row is None:
                return False
            if row.delivery == "delivered" and not delivered:
                return True  # a late failure after a success: the phone has it
            row.delivery = "delivered" if delivered else "undelivered"
            row.delivery_code = code[:64]
            row.reported_at = at
            values: dict[str, Any]
            if delivered:
                values = {"status": OutboxStatus.SENT.value}
                where = OutboxRow.status == OutboxStatus.FAILED.value
            else:
                values = {"status": OutboxStatus.FAILED.value, "last_error": f"{UNDELIVERED}: {code}"[:500]}
                where = OutboxRow.status == OutboxStatus.SENT.value
            await session.execute(
                update(OutboxRow).where(OutboxRow.id == row.outbox_id, where).values(**values)
            )
            return True

    async def awaiting_report(self, now: datetime, older_than: timedelta, limit: int) -> list[Accepted]:
        """Texts accepted more than `older_than` ago and less than two days ago with no receipt yet
        (asked of the provider by a pull, for providers or setups without a callback)."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(SmsSendRow)
                .where(
                    SmsSendRow.delivery.is_(None),
                    SmsSendRow.accepted_at <= now - older_than,
                    SmsSendRow.accepted_at >= now - timedelta(days=2),
                )
                .order_by(SmsSendRow.id)
                .limit(limit)
            )
            return [
                Accepted(r.outbox_id, r.out_id, r.phone, r.kind, r.provider, r.provider_id, r.accepted_at)
                for r in rows
            ]
