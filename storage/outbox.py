"""The outbox's writer: every message queued is written here, in the transaction of the change
that caused it (the sender's side, claims and marks, is outbox_store.py).

Also the session hooks the outbox and the people repositories rely on: a transaction's answers to
"who is this chat?" and "where does this person get messages?" are kept until it writes to the
people tables, and a write to the outbox other than through `Outbox` tells the sender to look.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, event, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause

from domain import delivery
from domain.delivery import choose
from domain.messages import Outgoing, Queued
from domain.model import Channel, OutboxStatus
from domain.sms import CADRE_KINDS, sms_of
from storage import statements
from storage.base import Repo, insert_or_ignore, rowcount
from storage.outbox_store import Claimed, Mark
from storage.tables import ChannelAccountRow, OutboxRow, PersonRow

log = logging.getLogger(__name__)


class Address(NamedTuple):
    """A person's language and address on a channel (as statements.ADDRESS_OF reads them)."""

    locale: str | None
    address: str


# A transaction asks "who is this chat?" several times (each flow that looks whether the message
# is its own, the button handler and its use case): the answer is kept for the transaction until
# it writes to one of the tables the answer is made of (or runs a raw write, which may).
KNOWN_PERSONS = "persons_by_address"
KNOWN_ADDRESSES = "addresses_of_persons"
PEOPLE_WRITES = "people_writes"
_PEOPLE_TABLES = frozenset({"persons", "channel_accounts", "cadre_villages"})
# Set when the transaction wrote to the outbox other than through `Outbox` (which knows whether
# what it wrote was handed to the sender already): the sender must look after the commit.
OUTBOX_TOUCHED = "outbox_touched"
_OUTBOX_OWN = "outbox_own_write"


def _people_changed(session: Session) -> None:
    session.info[PEOPLE_WRITES] = session.info.get(PEOPLE_WRITES, 0) + 1


def _count_write(state: Any) -> None:
    statement = state.statement
    if isinstance(statement, TextClause):
        _people_changed(state.session)
        state.session.info[OUTBOX_TOUCHED] = True
    elif state.is_insert or state.is_update or state.is_delete:
        name = getattr(getattr(statement, "table", None), "name", None)
        if name in _PEOPLE_TABLES:
            _people_changed(state.session)
        elif name == "outbox" and not state.session.info.get(_OUTBOX_OWN):
            state.session.info[OUTBOX_TOUCHED] = True


def _count_flush(session: Session, _context: Any) -> None:
    names = {getattr(row, "__tablename__", None) for row in (*session.new, *session.dirty, *session.deleted)}
    if names & _PEOPLE_TABLES:
        _people_changed(session)
    if "outbox" in names:
        session.info[OUTBOX_TOUCHED] = True


@contextlib.contextmanager
def _own_write(session: AsyncSession) -> Iterator[None]:
    """An outbox write by `Outbox` itself, which tracks what it leaves pending."""
    info = session.sync_session.info
    info[_OUTBOX_OWN] = True
    try:
        yield
    finally:
        info.pop(_OUTBOX_OWN, None)


def people_pending(session: Any) -> bool:
    pending = (*session.new, *session.dirty, *session.deleted)
    return any(getattr(row, "__tablename__", None) in _PEOPLE_TABLES for row in pending)


def _forget(session: Session, _transaction: Any) -> None:
    session.info.pop(KNOWN_PERSONS, None)
    session.info.pop(KNOWN_ADDRESSES, None)


event.listen(Session, "do_orm_execute", _count_write)
event.listen(Session, "after_flush", _count_flush)
event.listen(Session, "after_transaction_end", _forget)


# Cuts a message too long for the channel into parts that each fit, rendered in the recipient's
# locale (the second argument). Given by bot/'s wiring: storage renders nothing itself.
Splitter = Callable[[Outgoing, str | None], list[Outgoing]]


def outbox_rows(
    key: str,
    person_id: int,
    channel: Channel,
    message: Outgoing,
    locale: str | None,
    at: datetime,
    split: Splitter | None,
    *,
    claimed_by: str | None = None,
) -> list[dict[str, Any]]:
    """The outbox rows of one message: one, or one a part (keys `key`, `key#2`, ...), in order.
    With `claimed_by` they are written already claimed by that worker (status sending).
    On SMS: one row with the message's text form, or none when it has none (domain/sms.py)."""
    if channel is Channel.SMS:
        return _text_rows(key, person_id, message, at)
    parts = [message]
    if split is not None:
        try:
            parts = split(message, locale)
        except Exception:
            # A message that cannot be rendered must not undo the change it reports; the sender
            # will record why it could not go.
            log.exception("outbox: could not measure a %s message; queued whole", message.template)
    status = OutboxStatus.SENDING.value if claimed_by is not None else OutboxStatus.PENDING.value
    return [
        {
            "key": key if n == 1 else f"{key}#{n}",
            "person_id": person_id,
            "channel": channel.value,
            "payload": part.to_json(),
            "status": status,
            "attempts": 0,
            "created_at": at,
            "next_attempt_at": at,
            "claimed_by": claimed_by,
        }
        for n, part in enumerate(parts, 1)
    ]  # fmt: skip


def _text_rows(key: str, person_id: int, message: Outgoing, at: datetime) -> list[dict[str, Any]]:
    """A message to someone reachable only by text: its template kind and values (never its
    text, which may hold what a text must not), pending for the SMS sender."""
    text = sms_of(message)
    if text is None or text.kind in CADRE_KINDS:
        log.info("outbox: a %s message has no text-message form; not queued for SMS", message.template)
        return []
    payload = {**message.to_json(), "sms": text.to_json()}
    return [
        {
            "key": key, "person_id": person_id, "channel": Channel.SMS.value, "payload": payload,
            "status": OutboxStatus.PENDING.value, "attempts": 0, "created_at": at, "next_attempt_at": at,
            "claimed_by": None,
        }
    ]  # fmt: skip


def bound_to(person_ids: Any) -> Any:
    """(person id, locale, channel) of those of `person_ids` with an address on a channel of
    `CHANNELS` (a row per channel)."""
    return (
        select(PersonRow.id, PersonRow.locale, ChannelAccountRow.channel)
        .join(
            ChannelAccountRow,
            and_(
                ChannelAccountRow.person_id == PersonRow.id,
                ChannelAccountRow.channel.in_([c.value for c in delivery.CHANNELS]),
            ),
        )
        .where(PersonRow.id.in_(person_ids))
    )


# An already rendered text (bot/limits.py's PART_TEMPLATE; storage does not import bot).
PART_TEMPLATE = "sender.part"
BOUND_CHUNK = 5000  # person ids a query asks about at once (both databases cap the parameters)


async def queue_many(
    session: AsyncSession, messages: list[Queued], at: datetime, split: Splitter | None
) -> int:
    """Queue keyed messages, a long one as several rows, each on its person's channel (the
    first of `CHANNELS` they have an address on); those to a person with none are left out.
    Written pending: the session hook flags the write, and the unit of work wakes the sender."""
    if not messages:
        return 0
    wanted = sorted({m.person_id for m in messages})
    bound: dict[int, tuple[str | None, set[str]]] = {}
    for start in range(0, len(wanted), BOUND_CHUNK):
        found = await session.execute(bound_to(wanted[start : start + BOUND_CHUNK]))
        for person_id, locale, channel in found.all():
            bound.setdefault(person_id, (locale, set()))[1].add(channel)
    to: dict[int, tuple[str | None, Channel]] = {}
    for person_id, (locale, channels) in bound.items():
        chosen = choose(channels)
        if chosen is not None:
            to[person_id] = (locale, chosen)
    if unbound := sum(1 for m in messages if m.person_id not in to):
        log.info("outbox: %s messages not queued: no address to send them to", unbound)
    rows = [
        row
        for m in messages
        if m.person_id in to
        for row in outbox_rows(
            m.key, m.person_id, to[m.person_id][1], m.message, to[m.person_id][0], at, split
        )
    ]
    if not rows:
        return 0
    statement = insert_or_ignore(session, OutboxRow, ["key"])
    return rowcount(await session.execute(statement, rows))


@dataclass
class _Hold:
    """A press's disarm (rows[0]) and the replies to its person queued after it, not yet written."""

    token: int
    channel: Channel
    address: str
    locale: str | None
    message_id: int
    rows: list[dict[str, Any]]
    of_rows: list[_RowOf]  # each row's part number, address and language


class _RowOf(NamedTuple):
    part: int  # 1 for a whole message or its first part
    address: str
    locale: str | None


_NO_BOUND = 2**62  # `_newest` with nothing of this transaction written: every row is older


@dataclass
class _Queued:
    """A row this unit of work wrote (for `settle_press`)."""

    id: int
    part: int  # 1 for a whole message or its first part
    payload: dict[str, Any]
    claimed: bool


class Outbox(Repo):
    """Queues messages in the transaction of the change that caused them.

    With `worker` (a worker id), a message whose person has no older open row, other than rows
    this worker already holds, is written already claimed by that worker and listed in
    `claimed`, to be handed to the sender in memory once the transaction commits: it costs no
    claim transaction and no read. Otherwise (or without `worker`) it is written pending, and a
    sender claims it from the database, after that person's older messages.
    """

    def __init__(
        self,
        session: AsyncSession,
        split: Splitter | None = None,
        *,
        worker: str | None = None,
        answered: Callable[[int], Mark | None] | None = None,
    ) -> None:
        super().__init__(session)
        self.split = split
        self.worker = worker
        # The sender's: the mark of a row Telegram answered for, while that mark is not written.
        self._answered = answered or (lambda _: None)
        self.claimed: list[Claimed] = []
        self.wrote_pending = False
        self._may_claim: dict[int, bool] = {}
        self._queued: dict[int, list[_Queued]] = {}
        self._holds: dict[int, _Hold] = {}
        self._held = 0

    def reset(self) -> None:
        """Forget what this transaction wrote (after its commit or rollback)."""
        self.claimed = []
        self.wrote_pending = False
        self._may_claim.clear()
        self._queued.clear()
        self._holds.clear()

    async def _address(self, person_id: int, channel: Channel) -> Any:
        """The person's address and language (kept for the transaction: a press queues two or
        three rows for one person), read again after a write to the people tables."""
        writes = self.session.sync_session.info.get(PEOPLE_WRITES, 0)
        key = (person_id, channel.value)
        addresses = self.session.sync_session.info.setdefault(KNOWN_ADDRESSES, {})
        known = addresses.get(key)
        if known is not None and known[0] == writes and not people_pending(self.session):
            return known[1]
        found = (
            await self.session.execute(
                statements.ADDRESS_OF, {"person_id": person_id, "channel": channel.value}
            )
        ).first()
        addresses[key] = (writes, found)
        return found

    async def _claimable(self, person_id: int) -> bool:
        """May this worker write the person's new rows already claimed (no older open row held
        by anyone else, none pending)? Asked once per person and transaction."""
        if self.worker is None:
            return False
        known = self._may_claim.get(person_id)
        if known is None:
            other_open = await self.session.scalar(
                statements.OTHER_OPEN, {"person_id": person_id, "worker": self.worker}
            )
            known = self._may_claim[person_id] = other_open is None
        return known

    async def _insert(
        self,
        person_id: int,
        channel: Channel,
        rows: list[dict[str, Any]],
        address: str,
        locale: str | None,
        of_rows: list[_RowOf] | None = None,
    ) -> bool:
        """Write `rows` (of one message, or as held: `of_rows` gives each row's part number,
        address and language); False when none was new."""
        if of_rows is None:
            of_rows = [_RowOf(n, address, locale) for n in range(1, len(rows) + 1)]
        hold = self._holds.get(person_id)
        if hold is not None:
            if channel is hold.channel and all(row["key"].startswith("reply:") for row in rows):
                # Held back with the press's disarm until `settle_press` knows what to write.
                hold.rows.extend(rows)
                hold.of_rows.extend(of_rows)
                return True
            await self._release(person_id)  # a keyed message must know whether it was new
        if not rows:
            return False
        dialect = self.session.bind.dialect.name if self.session.bind else "sqlite"
        with _own_write(self.session):
            result = await self.session.execute(statements.outbox_insert(dialect), rows)
        inserted = {key: int(row_id) for row_id, key in result.all()}
        queued = self._queued.setdefault(person_id, [])
        for (n, address, locale), row in zip(of_rows, rows, strict=True):
            row_id = inserted.get(row["key"])
            if row_id is None:
                continue  # queued before under this key
            claimed = row["claimed_by"] is not None
            queued.append(_Queued(row_id, n, row["payload"], claimed))
            if claimed:
                self.claimed.append(
                    Claimed(
                        row_id, person_id, channel.value, row["payload"], 0, address, locale,
                        next_attempt_at=row["next_attempt_at"],
                    )
                )  # fmt: skip
            else:
                self.wrote_pending = True
        return bool(inserted)

    async def add(
        self,
        person_id: int,
        message: Outgoing,
        *,
        at: datetime,
        key: str | None = None,
    ) -> bool:
        """Queue a message on the first channel of `CHANNELS` the person has an address on; False
        (nothing queued) when `key` was queued before, or when the person has no address at all (a
        roster cadre who never opened the invite)."""
        for channel in delivery.CHANNELS:
            found = await self._address(person_id, channel)
            if found is not None:
                break
        else:
            log.info("outbox: a %s message not queued: no address for it", message.template)
            return False
        # Only the chat's sender takes rows handed over in memory; texts wait for theirs.
        claim = channel is Channel.TELEGRAM and await self._claimable(person_id)
        rows = outbox_rows(
            key or f"reply:{uuid.uuid4().hex}", person_id, channel, message, found.locale, at, self.split,
            claimed_by=self.worker if claim else None,
        )  # fmt: skip
        return await self._insert(person_id, channel, rows, found.address, found.locale)

    async def hold_press(self, person_id: int, message_id: int, *, at: datetime, key: str) -> int | None:
        """Queue "take the pressed message's keyboard away" before the use case queues anything
        (so it goes first); `settle_press` keeps, folds or drops it once the outcome is known.
        A pressed message is a Telegram message: its edit goes by Telegram."""
        channel = Channel.TELEGRAM
        found = await self._address(person_id, channel)
        if found is None:
            return None
        claim = await self._claimable(person_id)
        disarm = Outgoing(PART_TEMPLATE, {"text": {"$plain": ""}})
        rows = outbox_rows(
            key, person_id, channel, disarm, found.locale, at, None, claimed_by=self.worker if claim else None
        )
        rows[0]["payload"]["edit"] = {"message_id": message_id, "markup_only": True}
        await self._release(person_id)
        self._held += 1
        self._holds[person_id] = _Hold(
            -self._held,
            channel,
            found.address,
            found.locale,
            message_id,
            rows[:1],
            [_RowOf(1, found.address, found.locale)],
        )
        return -self._held

    async def _release(self, person_id: int) -> None:
        """Write a held press as it is: its disarm first, then what was queued behind it."""
        hold = self._holds.pop(person_id, None)
        if hold is not None:
            await self._insert(person_id, hold.channel, hold.rows, hold.address, hold.locale, hold.of_rows)

    async def release_holds(self) -> None:
        """Write every press still held (before a commit, or before reading the outbox)."""
        for person_id in list(self._holds):
            await self._release(person_id)

    async def redraw(
        self,
        person_id: int,
        message_id: int,
        message: Outgoing,
        *,
        at: datetime,
        key: str,
    ) -> None:
        """Queue an edit of `message_id` into `message` (a toggled list redrawn), in order behind
        what the person still has coming and retried like a message (by Telegram, as the press)."""
        channel = Channel.TELEGRAM
        found = await self._address(person_id, channel)
        if found is None:
            return
        claim = await self._claimable(person_id)
        rows = outbox_rows(
            key,
            person_id,
            channel,
            message,
            found.locale,
            at,
            None,
            claimed_by=self.worker if claim else None,
        )
        rows[0]["payload"]["edit"] = {"message_id": message_id}
        await self._insert(person_id, channel, rows[:1], found.address, found.locale)

    async def editing(self, person_id: int, message_id: int) -> bool:
        """Whether an edit of `message_id` is still queued or on its way (a redraw that failed and
        is being retried): a newer redraw must then queue behind it, not overtake it."""
        await self._release(person_id)
        rows = await self.session.execute(
            select(OutboxRow.id, OutboxRow.payload)
            .where(
                OutboxRow.person_id == person_id,
                OutboxRow.status.in_((OutboxStatus.PENDING.value, OutboxStatus.SENDING.value)),
            )
            .limit(50)
        )
        # A row this worker's sender already has Telegram's answer for is not on its way: the
        # person may have pressed a button of what it drew before its mark was committed.
        return any(
            (payload.get("edit") or {}).get("message_id") == message_id and self._answered(row_id) is None
            for row_id, payload in rows.all()
        )

    async def disarm(self, person_id: int, key: str, *, at: datetime) -> None:
        """Take the buttons away from the message queued under `key` (its last part, `key#n`, when
        it went in parts: that one carries them). Sent: an edit of its keyboard, by Telegram as a
        press's, keyed `disarm:<key>` so it goes once. Still pending, or written by this
        transaction: its buttons are dropped before it goes. On its way with no answer yet, or
        failed: nothing is done (the use case behind the buttons refuses a stale press anyway)."""
        row = OutboxRow
        found = await self.session.execute(
            select(row.id, row.status, row.payload, row.external_id, row.channel).where(
                row.person_id == person_id,
                or_(row.key == key, row.key.startswith(f"{key}#", autoescape=True)),
            )
        )
        for row_id, status, payload, external_id, channel in found.all():
            if not payload.get("actions"):
                continue
            ours = next((c for c in self.claimed if c.id == row_id), None)
            if ours is not None or status == OutboxStatus.PENDING.value:
                bare = {**payload, "actions": []}
                with _own_write(self.session):
                    await self.session.execute(
                        update(OutboxRow)
                        .where(OutboxRow.id == row_id, OutboxRow.status == status)
                        .values(payload=bare)
                    )
                self.claimed = [replace(c, payload=bare) if c.id == row_id else c for c in self.claimed]
                for queued in self._queued.get(person_id, []):
                    if queued.id == row_id:
                        queued.payload = bare
                continue
            if status != OutboxStatus.SENT.value:
                mark = self._answered(row_id)  # sent, if this worker's sender has Telegram's answer
                if mark is None or mark.kind != "sent":
                    continue
                external_id = mark.external_id
            address = await self._address(person_id, Channel.TELEGRAM)
            if external_id is None or channel != Channel.TELEGRAM.value or address is None:
                continue
            claim = await self._claimable(person_id)
            disarm = Outgoing(PART_TEMPLATE, {"text": {"$plain": ""}})
            rows = outbox_rows(
                f"disarm:{key}", person_id, Channel.TELEGRAM, disarm, address.locale, at, None,
                claimed_by=self.worker if claim else None,
            )  # fmt: skip
            rows[0]["payload"]["edit"] = {"message_id": int(external_id), "markup_only": True}
            await self._insert(person_id, Channel.TELEGRAM, rows[:1], address.address, address.locale)

    async def _newest(self, person_id: int, before: int, message_id: int) -> bool:
        """Whether `message_id` is the newest message sent to the person, with nothing of theirs
        still on its way (rows older than `before`, this transaction's first)."""
        latest = (
            await self.session.execute(statements.NEWEST_BEFORE, {"person_id": person_id, "before": before})
        ).first()
        if latest is None:
            return False
        status, external_id = latest.status, latest.external_id
        if status != OutboxStatus.SENT.value:
            # Sent already, if this worker's sender has Telegram's answer and only the mark waits.
            mark = self._answered(latest.id)
            if mark is None or mark.kind != "sent":
                return False
            external_id = mark.external_id
        return bool(external_id == str(message_id))

    async def settle_press(
        self, person_id: int, held: int, *, keep: bool, ack: str | None, text: bool
    ) -> None:
        hold = self._holds.get(person_id)
        if hold is not None and hold.token == held:
            await self._settle_hold(person_id, hold, keep=keep, ack=ack, text=text)
            return
        queued = self._queued.get(person_id, [])
        place = next((n for n, q in enumerate(queued) if q.id == held), None)
        if place is None:
            return
        after = queued[place + 1] if place + 1 < len(queued) else None
        fold = (
            keep
            and text
            and after is not None
            and after.part == 1
            and "edit" not in after.payload
            and after.payload.get("media") is None
            and after.payload.get("keyboard") is None
        )
        message_id = int(queued[place].payload["edit"]["message_id"])
        if fold and not await self._newest(person_id, held, message_id):
            fold = False  # the next question would appear above what came after: a new message
        if keep and not fold:
            return  # only the keyboard goes
        with _own_write(self.session):
            await self.session.execute(statements.OUTBOX_DELETE, {"row_id": held})
        del queued[place]
        self.claimed = [c for c in self.claimed if c.id != held]
        if fold and after is not None:
            payload = dict(after.payload)
            payload["edit"] = {"message_id": message_id, "fallback": True}
            if ack:
                payload["ack"] = ack
            with _own_write(self.session):
                await self.session.execute(
                    statements.OUTBOX_PAYLOAD, {"row_id": after.id, "new_payload": payload}
                )
            after.payload = payload
            self.claimed = [replace(c, payload=payload) if c.id == after.id else c for c in self.claimed]

    async def _settle_hold(
        self, person_id: int, hold: _Hold, *, keep: bool, ack: str | None, text: bool
    ) -> None:
        """`settle_press` before anything of the press was written: the disarm kept, folded into
        the next question or dropped in memory, and the rows written in one INSERT."""
        del self._holds[person_id]
        after = hold.rows[1]["payload"] if len(hold.rows) > 1 else None
        fold = (
            keep
            and text
            and after is not None
            and hold.of_rows[1].part == 1
            and "edit" not in after
            and after.get("media") is None
            and after.get("keyboard") is None
        )
        if fold and not await self._newest(person_id, _NO_BOUND, hold.message_id):
            fold = False  # the next question would appear above what came after: a new message
        rows, of_rows = hold.rows, hold.of_rows
        if not keep or fold:
            rows, of_rows = rows[1:], of_rows[1:]  # the disarm goes: nothing to take away, or folded
        if fold:
            payload = dict(rows[0]["payload"])
            payload["edit"] = {"message_id": hold.message_id, "fallback": True}
            if ack:
                payload["ack"] = ack
            rows = [{**rows[0], "payload": payload}, *rows[1:]]
        await self._insert(person_id, hold.channel, rows, hold.address, hold.locale, of_rows)

    async def count_pending(self) -> int:
        return int(
            await self.session.scalar(
                select(func.count())
                .select_from(OutboxRow)
                .where(OutboxRow.status == OutboxStatus.PENDING.value)
            )
            or 0
        )
