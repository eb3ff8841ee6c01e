"""Bringing every sealed ID number under the current key: `python -m bot keys rotate`.

ID numbers are sealed in two places: declarations (`id_sealed`, `id_fingerprint`) and the drafts
of unfinished conversations (the same two names in `conversations.data`). Each batch is its own
transaction with its rows locked (SQLite's BEGIN IMMEDIATE, PostgreSQL's FOR UPDATE), so the
service may keep running; a second run finds everything current and changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.ports import Unreadable
from storage.tables import ConversationRow, DeclarationRow

log = logging.getLogger(__name__)


class Resealed(Protocol):
    @property
    def token(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def was_current(self) -> bool: ...


class Resealing(Protocol):
    """What a rotation needs of the protector (bot.crypto.FernetProtector)."""

    def reseal(self, token: str) -> Resealed:
        """`token` under the current key and its value's current fingerprint; `Unreadable` else."""
        ...


@dataclass
class RotationCounts:
    rotated: int = 0
    current: int = 0
    unreadable: int = 0

    def add(self, other: RotationCounts) -> RotationCounts:
        return RotationCounts(
            self.rotated + other.rotated, self.current + other.current, self.unreadable + other.unreadable
        )


@dataclass(frozen=True)
class Rotation:
    declarations: RotationCounts
    drafts: RotationCounts
    unreadable_receipts: tuple[str, ...]  # the declarations no key opens, to look into

    @property
    def total(self) -> RotationCounts:
        return self.declarations.add(self.drafts)


UNREADABLE = ("", "")


def _reseal(
    protector: Resealing, token: str, fingerprint: str | None, counts: RotationCounts
) -> tuple[str, str] | None:
    """The new (sealed, fingerprint) pair, None when nothing changes, UNREADABLE; counted."""
    try:
        resealed = protector.reseal(token)
    except Unreadable:
        counts.unreadable += 1
        return UNREADABLE
    if resealed.was_current and resealed.fingerprint == fingerprint:
        counts.current += 1
        return None
    counts.rotated += 1
    return resealed.token, resealed.fingerprint


async def rotate(
    sessions: async_sessionmaker[AsyncSession], protector: Resealing, *, batch: int = 200
) -> Rotation:
    """Re-seal every stored ID number under the current key and recompute its fingerprint."""
    declarations, drafts = RotationCounts(), RotationCounts()
    unreadable: list[str] = []
    last = 0
    while True:
        async with sessions() as session, session.begin():
            rows = list(
                await session.scalars(
                    select(DeclarationRow)
                    .where(DeclarationRow.id > last, DeclarationRow.id_sealed.is_not(None))
                    .order_by(DeclarationRow.id)
                    .limit(batch)
                    .with_for_update()
                )
            )
            for row in rows:
                assert row.id_sealed is not None
                changed = _reseal(protector, row.id_sealed, row.id_fingerprint, declarations)
                if changed is UNREADABLE:
                    unreadable.append(row.receipt or f"#{row.id}")
                elif changed is not None:
                    row.id_sealed, row.id_fingerprint = changed
        if not rows:
            break
        last = rows[-1].id
    last = 0
    while True:
        async with sessions() as session, session.begin():
            conversations = list(
                await session.scalars(
                    select(ConversationRow)
                    .where(ConversationRow.id > last)
                    .order_by(ConversationRow.id)
                    .limit(batch)
                    .with_for_update()
                )
            )
            for conversation in conversations:
                data = conversation.data or {}
                token = data.get("id_sealed")
                if not isinstance(token, str) or not token:
                    continue
                changed = _reseal(protector, token, data.get("id_fingerprint"), drafts)
                if changed is not None and changed is not UNREADABLE:
                    # A new dict: SQLAlchemy sees a JSON column change only when it is assigned.
                    conversation.data = {**data, "id_sealed": changed[0], "id_fingerprint": changed[1]}
        if not conversations:
            break
        last = conversations[-1].id
    log.info(
        "ID keys rotated: declarations %s/%s/%s, drafts %s/%s/%s (rotated/current/unreadable)",
        declarations.rotated, declarations.current, declarations.unreadable,
        drafts.rotated, drafts.current, drafts.unreadable,
    )  # fmt: skip
    return Rotation(declarations, drafts, tuple(unreadable))
