"""Outgoing messages as data: a catalog key, its parameters and the actions offered.

The domain never builds text or keyboards; the renderer in the recipient's language does.
A parameter value may be a `Text` (a catalog key translated at render time) or a `RiskLabel`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Action:
    """A button: what it does (`name`), on what (`arg`), shown as the label of `name`."""

    name: str
    arg: str = ""
    # A catalog key, or a render-time value such as `risk_label(code)`; None: "action.<name>".
    label: str | dict[str, str] | None = None


@dataclass(frozen=True)
class Outcome:
    """What a use case tells the front end beyond the messages it queued."""

    toast: str | None = None  # catalog key shown where the person pressed a button
    alert: bool = False
    locale: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    done: bool = True  # False: the request was refused; nothing changed


@dataclass(frozen=True)
class Outgoing:
    template: str
    params: dict[str, Any] = field(default_factory=dict)
    actions: tuple[tuple[Action, ...], ...] = ()
    # A reply keyboard: "contact" offers "share my phone number", "remove" takes it away.
    keyboard: str | None = None
    # A photo or document sent with the text as its caption: {"kind": "photo"|"document", "file_id": ...}.
    media: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        data = {
            "template": self.template,
            "params": self.params,
            "actions": [[[a.name, a.arg, a.label] for a in row] for row in self.actions],
            "keyboard": self.keyboard,
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
            media=data.get("media"),
        )


def text(key: str) -> dict[str, str]:
    """A parameter translated at render time."""
    return {"$t": key}


def risk_label(code: str) -> dict[str, str]:
    """A risk type shown by its label in the recipient's language."""
    return {"$risk": code}
