"""Turn a queued `Outgoing` into Telegram text and keyboard in the recipient's language."""

from __future__ import annotations

import logging
from typing import Any

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from domain import risk_types
from domain.messages import Outgoing
from locales import gettext

log = logging.getLogger(__name__)

# Labels of buttons whose label is not given by the use case.
ACTION_LABELS = {
    "ack": "action.ack",
    "confirm": "action.confirm",
    "restart": "action.restart",
    "cancel": "action.cancel",
}
# Bot commands shown in Telegram's menu (described by "command.<name>").
COMMANDS = ("start", "cancel", "language", "help")

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


class _Missing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        log.error("catalog text wants {%s}, which the message does not carry", key)
        return "{" + key + "}"


def value(raw: Any, catalog: str) -> str:
    """A parameter as text: catalog keys and risk codes are translated, the rest shown as is."""
    if isinstance(raw, dict):
        if "$t" in raw:
            return gettext(catalog, raw["$t"])
        if "$risk" in raw:
            risk = risk_types.by_code(raw["$risk"])
            return risk.label(catalog) if risk else raw["$risk"]
    return str(raw)


def text_of(message: Outgoing, catalog: str) -> str:
    params = _Missing({name: value(raw, catalog) for name, raw in message.params.items()})
    return gettext(catalog, message.template).format_map(params)


def callback_data(name: str, arg: str) -> str:
    data = f"{name}:{arg}" if arg else name
    if len(data.encode()) > 64:
        raise ValueError(f"callback data over 64 bytes: {data!r}")
    return data


def markup_of(message: Outgoing, catalog: str) -> Markup | None:
    if message.actions:
        return InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        value(action.label, catalog)
                        if isinstance(action.label, dict)
                        else gettext(catalog, action.label or ACTION_LABELS[action.name]),
                        callback_data=callback_data(action.name, action.arg),
                    )
                    for action in row
                ]
                for row in message.actions
            ]
        )
    if message.keyboard == "contact":
        return ReplyKeyboardMarkup(
            [[KeyboardButton(gettext(catalog, "keyboard.share_phone"), request_contact=True)]],
            resize_keyboard=True,
            one_time_keyboard=True,
        )
    if message.keyboard == "remove":
        return ReplyKeyboardRemove()
    return None


def render(message: Outgoing, catalog: str) -> tuple[str, Markup | None]:
    """Text and reply markup for `message` in `catalog`'s language."""
    return text_of(message, catalog), markup_of(message, catalog)
