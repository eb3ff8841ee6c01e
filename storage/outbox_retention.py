"""Outbox rows lose their personal data once they are done with and old enough.

A row's payload is the message itself: the template key and its parameters (names, phone
numbers, descriptions, case details), its buttons and media. Once the message is delivered
(`sent`) or given up on (`failed`) nothing reads the payload again, except /failed, which lists
failed rows by person, time, error and template. So after the retention period the payload is
replaced by `{"template": <key>, "purged": true}` and everything else stays: status, times,
attempts, person, error, key (a key still refuses a repeat of its message). Declarations, tasks
and case events are other tables: untouched.

A failed row has no time of failure; `next_attempt_at`, when its last attempt was due, stands in.

A text message's record (sms_sends: the phone number, the provider's id, its receipt) is needed
for the per-number limits (a day) and its receipt (two days): it goes with the same period.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.model import OutboxStatus
from storage.tables import OutboxRow, SmsSendRow

PURGED = "purged"
DONE = (OutboxStatus.SENT.value, OutboxStatus.FAILED.value)


def _old_and_whole(before: datetime) -> ColumnElement[bool]:
    return and_(
        or_(
            and_(OutboxRow.status == OutboxStatus.SENT.value, OutboxRow.sent_at < before),
            and_(OutboxRow.status == OutboxStatus.FAILED.value, OutboxRow.next_attempt_at < before),
        ),
        OutboxRow.payload[PURGED].as_boolean().is_(None),
    )


async def purge_done_before(
    sessions: async_sessionmaker[AsyncSession], *, before: datetime, limit: int = 500
) -> int:
    """Strip the payloads of up to `limit` rows sent, or failed, before `before`, in one
    transaction; returns how many (fewer than `limit`: nothing older is left)."""
    condition = _old_and_whole(before)
    async with sessions() as session, session.begin():
        rows = await session.execute(
            select(OutboxRow.id, OutboxRow.payload["template"].as_string())
            .where(condition)
            .order_by(OutboxRow.id)
            .limit(limit)
        )
        by_template: dict[str, list[int]] = defaultdict(list)
        for row_id, template in rows.all():
            by_template[template or ""].append(row_id)
        texts = select(SmsSendRow.id).where(SmsSendRow.accepted_at < before).limit(limit)
        await session.execute(delete(SmsSendRow).where(SmsSendRow.id.in_(texts)))
        done = 0
        for template, ids in by_template.items():
            result = await session.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(ids), OutboxRow.status.in_(DONE))
                .values(payload={"template": template, PURGED: True})
            )
            done += int(getattr(result, "rowcount", 0) or 0)
        return done
