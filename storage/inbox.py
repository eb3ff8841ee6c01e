"""The inbox: every update from Telegram is recorded before it is acknowledged.

Two ways in, one table (`inbox`, `update_id` unique):
- **webhook**: the request records the update (its payload, pending) and is answered 200 only
  after that commit; the update is then processed from the record. Telegram's redelivery of an
  update already recorded is a no-op.
- **long polling**: a batch is processed before the next getUpdates offset acknowledges it, and
  the handler's own transaction records the update as done (so a step costs one write
  transaction, not two). An update still being processed when the batch's wait is over is
  recorded pending, with its payload, before the offset moves on.

The handler's transaction records "done" through a SQLAlchemy session hook: while an update is
being processed, `current` names it, and the first transaction committed in that context upserts
its row with `done_at` (and drops its payload: an update holds what a person typed). A row that
stays pending (the worker died) is taken over and processed again from its payload by a live
worker. On PostgreSQL each handler transaction also takes a transaction-level advisory lock on its
chat, so that two workers never run one chat's updates at the same time.
"""

from __future__ import annotations

import contextvars
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, event, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause

from storage import statements
from storage.base import dialect_of, insert_or_ignore
from storage.tables import InboxRow, WorkerRow

log = logging.getLogger(__name__)


@dataclass
class InboxMark:
    """The update a handler is processing: recorded done by the first commit in its context that
    wrote something."""

    update_id: int
    chat_id: int | None
    worker: str | None
    recorded: bool = False
    locked: set[int] = field(default_factory=set)  # id() of sessions that took the chat lock


current: contextvars.ContextVar[InboxMark | None] = contextvars.ContextVar("inbox_update", default=None)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _chat_lock_key(chat_id: int) -> int:
    # Fold the chat id into PostgreSQL's bigint key space next to the schema (advisory locks are
    # global to the database; the schema keeps two deployments, or two tests, apart).
    return chat_id & 0x7FFFFFFF


_WROTE = "inbox_wrote"
_WRITES = ("INSERT", "UPDATE", "DELETE")


def _orm_execute(state: Any) -> None:
    statement = state.statement
    if (
        state.is_insert
        or state.is_update
        or state.is_delete
        or (isinstance(statement, TextClause) and statement.text.lstrip()[:6].upper() in _WRITES)
    ):
        state.session.info[_WROTE] = True


def _transaction_end(session: Session, _transaction: Any) -> None:
    session.info.pop(_WROTE, None)


def _before_commit(session: Session) -> None:
    """The first transaction of an update's handling that writes marks the update done in that
    same commit. A transaction that only read (a handler group that found nothing of its own)
    does not: were it to, a crash before the transaction doing the work would leave the update
    done and never handled (seen under SIGKILL: a typed phone number lost)."""
    mark = current.get()
    if mark is None or mark.recorded or session.bind is None:
        return
    if not (session.info.get(_WROTE) or session.new or session.dirty or session.deleted):
        return
    session.execute(
        statements.inbox_done(session.bind.dialect.name),
        {"u_update": mark.update_id, "u_chat": mark.chat_id, "u_at": _utcnow(), "u_worker": mark.worker},
    )
    mark.recorded = True


def _after_begin(session: Session, transaction: Any, connection: Any) -> None:
    mark = current.get()
    if mark is None or mark.chat_id is None or connection.dialect.name != "postgresql":
        return
    connection.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':chat'), :chat)"),
        {"chat": _chat_lock_key(mark.chat_id)},
    )


_installed = False


def install() -> None:
    """Hook the handler transactions (every Session of this process; only acts inside `current`)."""
    global _installed
    if _installed:
        return
    event.listen(Session, "do_orm_execute", _orm_execute)
    event.listen(Session, "after_transaction_end", _transaction_end)
    event.listen(Session, "before_commit", _before_commit)
    event.listen(Session, "after_begin", _after_begin)
    _installed = True


@dataclass(frozen=True)
class Pending:
    update_id: int
    payload: dict[str, Any]


class InboxStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], worker: str | None) -> None:
        self.sessions = sessions
        self.worker = worker

    async def record(self, update_id: int, chat_id: int | None, payload: dict[str, Any]) -> bool:
        """Record an update pending (the webhook's way in); False when it was recorded before."""
        async with self.sessions() as session, session.begin():
            statement = insert_or_ignore(session, InboxRow, ["update_id"]).values(
                update_id=update_id, chat_id=chat_id, payload=payload, received_at=_utcnow(),
                worker=self.worker,
            )  # fmt: skip
            result = await session.execute(statement)
            return int(getattr(result, "rowcount", 0) or 0) > 0

    async def record_many(self, items: list[tuple[int, int | None, dict[str, Any]]]) -> None:
        """Record several updates pending in one transaction (polling: those still being processed
        when the batch is acknowledged); rows already there are left as they are."""
        if not items:
            return
        now = _utcnow()
        async with self.sessions() as session, session.begin():
            statement = insert_or_ignore(session, InboxRow, ["update_id"]).values(
                [
                    {"update_id": u, "chat_id": c, "payload": p, "received_at": now, "worker": self.worker}
                    for u, c, p in items
                ]
            )
            await session.execute(statement)

    async def known(self, since: timedelta = timedelta(days=1)) -> set[int]:
        """Update ids recorded recently (done or pending): what a redelivery must not run again."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(InboxRow.update_id).where(InboxRow.received_at >= _utcnow() - since)
            )
            return set(rows.all())

    async def take_over(self, live: list[str], *, own: bool = False, limit: int = 500) -> list[Pending]:
        """Pending updates whose worker is not live (with `own`, this worker's too): claimed for
        this worker and returned in update_id order, to be processed from their payloads."""
        others = [w for w in live if w != self.worker] if own else list(live)
        async with self.sessions() as session, session.begin():
            owner_gone = InboxRow.worker.is_(None) | InboxRow.worker.not_in([*others, "-"])
            query = (
                select(InboxRow.update_id, InboxRow.payload)
                .where(InboxRow.done_at.is_(None), owner_gone)
                .order_by(InboxRow.update_id)
                .limit(limit)
            )
            if dialect_of(session) == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = (await session.execute(query)).all()
            if not rows:
                return []
            ids = [update_id for update_id, _ in rows]
            await session.execute(
                update(InboxRow).where(InboxRow.update_id.in_(ids)).values(worker=self.worker)
            )
            return [Pending(update_id, dict(payload or {})) for update_id, payload in rows]

    async def done_without_handler(self, update_id: int) -> None:
        """An update recorded pending that no handler committed anything for (ignored, refused
        before any transaction): mark it done so it is not taken over again."""
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(InboxRow)
                .where(InboxRow.update_id == update_id, InboxRow.done_at.is_(None))
                .values(done_at=_utcnow(), payload=None)
            )

    async def open_count(self) -> int:
        async with self.sessions() as session:
            return int(
                await session.scalar(
                    select(func.count()).select_from(InboxRow).where(InboxRow.done_at.is_(None))
                )
                or 0
            )

    async def purge(self, older_than: timedelta = timedelta(days=2)) -> int:
        """Forget done updates (Telegram redelivers only for a day)."""
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                delete(InboxRow).where(
                    InboxRow.done_at.is_not(None), InboxRow.received_at < _utcnow() - older_than
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)


async def live_workers(sessions: async_sessionmaker[AsyncSession], stale_after: float = 3.0) -> list[str]:
    async with sessions() as session:
        rows = await session.scalars(
            select(WorkerRow.id).where(WorkerRow.heartbeat_at > _utcnow() - timedelta(seconds=stale_after))
        )
        return list(rows.all())


def chat_of(payload: dict[str, Any]) -> int | None:
    """The chat an update belongs to (its order key), from the raw JSON."""
    for kind in ("message", "edited_message", "channel_post", "edited_channel_post"):
        item = payload.get(kind)
        if isinstance(item, dict):
            chat = item.get("chat")
            if isinstance(chat, dict) and isinstance(chat.get("id"), int):
                return int(chat["id"])
    query = payload.get("callback_query")
    if isinstance(query, dict):
        message = query.get("message")
        if isinstance(message, dict) and isinstance(message.get("chat"), dict):
            chat_id = message["chat"].get("id")
            if isinstance(chat_id, int):
                return chat_id
        sender = query.get("from")
        if isinstance(sender, dict) and isinstance(sender.get("id"), int):
            return int(sender["id"])
    for kind in ("my_chat_member", "chat_member", "chat_join_request"):
        item = payload.get(kind)
        if isinstance(item, dict) and isinstance(item.get("chat"), dict):
            chat_id = item["chat"].get("id")
            if isinstance(chat_id, int):
                return chat_id
    return None
