"""What every conversation shares: what a person sends in one (`Said`), what flows need beside the
unit of work (`Tools`), and `begin`, the one way a conversation is opened.

A person has at most one open conversation (one row of `conversations`, whatever its flow). A use
case that would open another while one is open asks first whether to drop it: the question's
button names the open conversation, and the new one's start is kept on it until answered.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Protocol

from domain import buttons as b
from domain.actor import Actor
from domain.messages import Action, Outgoing, text
from domain.model import Conversation, Flow
from domain.ports import Clock, DeadlineRules, Protector, UnitOfWork

# The start waiting on an open conversation while its person is asked whether to drop it.
PENDING = "$pending"


class Tools(Protocol):
    """What the flows need beside the unit of work (handlers.context.Services has them)."""

    @property
    def clock(self) -> Clock: ...
    @property
    def rules(self) -> DeadlineRules: ...
    @property
    def protector(self) -> Protector: ...


class Kind(enum.StrEnum):
    """What kind of message a person sent into a conversation."""

    TEXT = "text"
    CONTACT = "contact"
    VOICE = "voice"
    PHOTO = "photo"
    DOCUMENT = "document"
    OTHER = "other"  # a sticker, a location, anything the service takes nowhere


@dataclass(frozen=True)
class Said:
    """One message of a person in a conversation (not a button: buttons name what they answer).

    `text` is the typed text, a caption, or a shared contact's number; `ref` the channel's
    reference of a file; `seconds` a voice note's length; `own` whether a contact card is the
    sender's own (one forwarded is not).
    """

    kind: Kind
    text: str = ""
    ref: str | None = None
    seconds: int = 0
    own: bool = True

    @classmethod
    def typed(cls, raw: str) -> Said:
        return cls(Kind.TEXT, raw)


@dataclass(frozen=True)
class Start:
    """How a conversation is started: its flow and the arguments of its start (JSON), so that
    a start put off by "drop the open one first?" can be made again from the button."""

    flow: Flow
    args: dict[str, Any]


def pending(conv: Conversation) -> Start | None:
    """The start waiting for the person to drop `conv`, if any."""
    raw = conv.data.get(PENDING)
    if not isinstance(raw, dict):
        return None
    try:
        return Start(Flow(raw["flow"]), dict(raw.get("args") or {}))
    except (KeyError, ValueError):
        return None


def label_of(flow: Flow) -> dict[str, str]:
    """The name of a flow in the reader's language ("申报", "入户核实"...)."""
    return text(f"flow.{flow.value}")


class _Unread:
    """`begin` is not told the open conversation: it reads it."""


UNREAD = _Unread()


async def begin(
    uow: UnitOfWork,
    clock: Clock,
    actor: Actor,
    start: Start,
    step: str,
    data: dict[str, Any],
    *,
    current: Conversation | _Unread | None = UNREAD,
) -> Conversation | None:
    """Open `start.flow` at `step` for the actor, or ask whether to drop the open conversation.

    An open conversation of the same flow and the same start is replaced (asked again, it starts
    over); any other is kept, and the person is asked whether to drop it. None when asked.
    `current` is the actor's open conversation when the caller has just read it.
    """
    if isinstance(current, _Unread):
        current = await uow.conversations.get(actor.id)
    now = clock.now()
    if current is not None and (current.flow is not start.flow or _start_of(current) != start.args):
        held = {"flow": start.flow.value, "args": start.args}
        await uow.conversations.update(current.id, current.step, {**current.data, PENDING: held}, now)
        ask = Outgoing(
            "conversation.switch",
            {"open": label_of(current.flow), "new": label_of(start.flow)},
            actions=(
                (
                    Action(b.Switch(current.id, "drop"), label="conversation.drop_button"),
                    Action(b.Switch(current.id, "keep"), label="conversation.keep_button"),
                ),
            ),
        )
        await uow.outbox.add(actor.id, ask, at=now)
        return None
    return await uow.conversations.start(actor.id, start.flow, step, {**data, START: start.args}, now)


# The arguments a conversation was started with (to know a second start of the same one).
START = "$start"


def _start_of(conv: Conversation) -> dict[str, Any]:
    found = conv.data.get(START)
    return dict(found) if isinstance(found, dict) else {}
