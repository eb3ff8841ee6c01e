"""Telegram's keyboards for an outgoing message: its actions as inline buttons, or the reply
keyboard it asks for. The text comes from locales.render."""

from __future__ import annotations

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from domain.messages import Outgoing
from locales import gettext
from locales.render import label_of, text_of

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


def markup_of(message: Outgoing, catalog: str) -> Markup | None:
    """The keyboard of `message` in `catalog`'s language, if it has one."""
    if message.actions:
        return InlineKeyboardMarkup(
            [
                [InlineKeyboardButton(label_of(action, catalog), callback_data=action.data) for action in row]
                for row in message.actions
                if row
            ]
        )
    if message.keyboard == "menu":
        return ReplyKeyboardMarkup(
            [[KeyboardButton(gettext(catalog, "keyboard.my_declarations"))]],
            resize_keyboard=True,
            is_persistent=True,
        )
    if message.keyboard == "remove":
        return ReplyKeyboardRemove()
    return None


def render(message: Outgoing, catalog: str) -> tuple[str, Markup | None]:
    """Text and reply markup for `message` in `catalog`'s language."""
    return text_of(message, catalog), markup_of(message, catalog)
