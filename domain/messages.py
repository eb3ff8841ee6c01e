"""Outgoing messages as data: a catalog key, its parameters and the actions offered.

The domain never builds text or keyboards; the renderer in the recipient's language does.
A parameter value may be a `Text` (a catalog key translated at render time) or a `RiskLabel`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from domain.buttons import Button, ButtonError, parse


@dataclass(frozen=True)
class Action:
    """An inline button: its typed data, and its label.

    `label` is a catalog key or a render-time value such as `risk_label(code)`; None shows the
    button class's own label. `button` is a packed string only for a message read back from the
    outbox whose data no longer parses (an old deployment's); pressing it is refused as expired.
    """

    button: Button | str
    label: str | dict[str, Any] | None = None

    @property
    def data(self) -> str:
        """The callback data (checked against Telegram's 64 bytes when packed)."""
        return self.button if isinstance(self.button, str) else self.button.pack()

    @property
    def label_or_default(self) -> str | dict[str, Any]:
        if self.label is not None:
            return self.label
        if isinstance(self.button, Button) and self.button.label:
            return self.button.label
        return "button.invalid"


@dataclass(frozen=True)
class Outcome:
    """What a use case tells the front end beyond the messages it queued."""

    toast: str | None = None  # catalog key shown where the person pressed a button
    alert: bool = False
    edit: Outgoing | None = None  # redraw the message whose button was pressed (e.g. a toggle)
    locale: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    # False: the press did not answer the question it was on (refused, or it opened something
    # beside it), so the pressed message keeps its keyboard; True: it took effect, the keyboard goes.
    done: bool = True


@dataclass(frozen=True)
class Outgoing:
    template: str
    params: dict[str, Any] = field(default_factory=dict)
    actions: tuple[tuple[Action, ...], ...] = ()
    # A reply keyboard: "menu" the household's standing menu, "remove" takes any away.
    keyboard: str | None = None
    # A sentence put before the text, e.g. why the last answer was refused, so that the
    # explanation and the repeated question arrive as one message.
    lead: str | None = None
    lead_params: dict[str, Any] = field(default_factory=dict)
    # A photo, voice note or document sent with the text as its caption:
    # {"kind": "photo" | "voice" | "document", "file_id": <the channel's file reference>}.
    media: dict[str, str] | None = None
    # Goes at once even in quiet hours, on a channel that waits them out (SMS): a green-channel case.
    urgent: bool = False

    def led_by(self, key: str, **params: Any) -> Outgoing:
        """This message with `key` said first."""
        return replace(self, lead=key, lead_params=params)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "template": self.template,
            "params": self.params,
            "actions": [[[a.data, a.label] for a in row] for row in self.actions],
            "keyboard": self.keyboard,
            "lead": [self.lead, self.lead_params] if self.lead else None,
        }
        if self.media is not None:
            data["media"] = dict(self.media)
        if self.urgent:
            data["urgent"] = True
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outgoing:
        return cls(
            template=data["template"],
            params=dict(data.get("params") or {}),
            actions=tuple(tuple(_stored_action(item) for item in row) for row in data.get("actions") or ()),
            keyboard=data.get("keyboard"),
            lead=data["lead"][0] if data.get("lead") else None,
            lead_params=dict(data["lead"][1]) if data.get("lead") else {},
            media=data.get("media"),
            urgent=bool(data.get("urgent", False)),
        )


def _stored_action(item: list[Any]) -> Action:
    """A button read back from the outbox: [data, label], or an older row's [name, arg, label]."""
    if len(item) == 3:
        name, arg, label = item
        packed = f"{name}:{arg}" if arg else str(name)
    else:
        packed, label = item
    try:
        return Action(parse(packed), label)
    except ButtonError:
        return Action(str(packed), label)


def text(key: str) -> dict[str, str]:
    """A parameter translated at render time."""
    return {"$t": key}


def risk_label(code: str) -> dict[str, str]:
    """A risk type shown by its label in the recipient's language."""
    return {"$risk": code}


def risk_labels(codes: list[str] | tuple[str, ...]) -> dict[str, list[str]]:
    """Several risk types, listed in the recipient's language."""
    return {"$risks": list(codes)}


def money(yuan: int) -> dict[str, int]:
    """An amount in yuan, formatted for the recipient's locale."""
    return {"$money": yuan}


def day(iso: str) -> dict[str, str]:
    """A date (ISO), formatted for the recipient's locale."""
    return {"$date": iso}


@dataclass(frozen=True)
class Queued:
    """A message a scheduled item wants sent; the tick queues them all in one statement."""

    person_id: int
    message: Outgoing
    key: str
