"""Outgoing messages as data: a catalog key, its parameters and the actions offered.

The domain never builds text or keyboards; the renderer in the recipient's language does.
A parameter value may be a `Text` (a catalog key translated at render time) or a `RiskLabel`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Action:
    """A button: what it does (`name`), on what (`arg`), shown as the label of `name`."""

    name: str
    arg: str = ""
    # A catalog key, or a render-time value such as `risk_label(code)`; None: "action.<name>".
    label: str | dict[str, Any] | None = None


@dataclass(frozen=True)
class Outcome:
    """What a use case tells the front end beyond the messages it queued."""

    toast: str | None = None  # catalog key shown where the person pressed a button
    alert: bool = False
    edit: Outgoing | None = None  # redraw the message whose button was pressed (e.g. a toggle)
    locale: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    done: bool = True  # False: the request was refused; nothing changed


@dataclass(frozen=True)
class Outgoing:
    template: str
    params: dict[str, Any] = field(default_factory=dict)
    actions: tuple[tuple[Action, ...], ...] = ()
    # A reply keyboard: "contact" offers "share my phone number" (with Back and Cancel),
    # "menu" the household's standing menu, "remove" takes any away.
    keyboard: str | None = None
    # A sentence put before the text, e.g. why the last answer was refused, so that the
    # explanation and the repeated question arrive as one message.
    lead: str | None = None
    lead_params: dict[str, Any] = field(default_factory=dict)
    # A photo, voice note or document sent with the text as its caption:
    # {"kind": "photo" | "voice" | "document", "file_id": <the channel's file reference>}.
    media: dict[str, str] | None = None

    def led_by(self, key: str, **params: Any) -> Outgoing:
        """This message with `key` said first."""
        return replace(self, lead=key, lead_params=params)

    def to_json(self) -> dict[str, Any]:
        data = {
            "template": self.template,
            "params": self.params,
            "actions": [[[a.name, a.arg, a.label] for a in row] for row in self.actions],
            "keyboard": self.keyboard,
            "lead": [self.lead, self.lead_params] if self.lead else None,
        }
        if self.media is not None:
            data["media"] = dict(self.media)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outgoing:
        return cls(
            template=data["template"],
            params=dict(data.get("params") or {}),
            actions=tuple(
                tuple(Action(name, arg, label) for name, arg, label in row)
                for row in data.get("actions") or ()
            ),
            keyboard=data.get("keyboard"),
            lead=data["lead"][0] if data.get("lead") else None,
            lead_params=dict(data["lead"][1]) if data.get("lead") else {},
            media=data.get("media"),
        )


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
