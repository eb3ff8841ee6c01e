"""Telegram's length limits: a message too long to send whole becomes several that each fit.

Telegram refuses a text over 4,096 characters and a caption over 1,024, counted in UTF-16 code
units (a Chinese character is one, most emoji two). `split_message` is the one place that cuts:
the outbox writer calls it (through the splitter `bot/` gives storage) when a message is queued,
so each part is an outbox row of its own, with the row's guarantees (order, once, retries).
The sender `clip`s what still comes too long (a row queued whole before), never sending it whole.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import replace

from domain.messages import Outgoing
from locales import catalog_for
from locales.render import text_of

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
# A part already rendered in the recipient's language: the catalog text is "{text}".
PART_TEMPLATE = "sender.part"
ELLIPSIS = "…"
BREAKS = "\n \t\u3000"  # where a text is cut: a line break first, else a space


def utf16_len(text: str) -> int:
    """The length Telegram counts: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _fitting(text: str, limit: int) -> int:
    """How many characters from the start fit in `limit` UTF-16 units: the most, unless that
    would part a character from the marks or joiners that belong to it."""
    end = min(len(text), limit)
    while (over := utf16_len(text[:end]) - limit) > 0:
        end -= (over + 1) // 2  # each character is one or two units
    used = utf16_len(text[:end])
    while end < len(text) and used + _units(text[end]) <= limit:
        used += _units(text[end])
        end += 1
    most = end
    while 0 < end < len(text) and _joined(text[end - 1], text[end]):
        end -= 1
    return end or most


def _units(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def _joined(before: str, char: str) -> bool:
    if char in BREAKS:
        return False
    return before == "\u200d" or unicodedata.category(char) in ("Mn", "Me", "Mc", "Cf")


def take(text: str, limit: int) -> tuple[str, str]:
    """The longest head that fits in `limit`, cut at a line break, else a space, else anywhere;
    and the rest. The break character at the cut is dropped."""
    if utf16_len(text) <= limit:
        return text, ""
    end = _fitting(text, limit)
    window = text[: end + 1]  # a break right after the last character that fits is fine too
    for breaks in ("\n", BREAKS[1:]):
        cut = max(window.rfind(b) for b in breaks)
        if cut > 0:
            return text[:cut], text[cut + 1 :]
    end = end or 1  # a limit smaller than one character: still make progress
    return text[:end], text[end:]


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """`text` in parts of at most `limit` UTF-16 units each, in order; blank parts are left out
    (Telegram refuses an empty text)."""
    parts: list[str] = []
    rest = text
    while rest:
        head, rest = take(rest, limit)
        if head.strip():
            parts.append(head)
    return parts


def clip(text: str, limit: int) -> str:
    """`text` cut to fit `limit`, marked as cut: for a message that must go as one."""
    if utf16_len(text) <= limit:
        return text
    return text[: _fitting(text, limit - utf16_len(ELLIPSIS))] + ELLIPSIS


def part(text: str) -> Outgoing:
    """A message that is `text` as it is (already in the recipient's language)."""
    return Outgoing(PART_TEMPLATE, {"text": {"$plain": text}})


def split_message(message: Outgoing, catalog: str) -> list[Outgoing]:
    """`message` as it is when it fits; otherwise its text rendered in `catalog` and cut into
    parts that each fit, in order, the buttons or keyboard on the last one. A photo, voice note
    or document keeps the first part that fits as its caption; the rest follows as text."""
    text = text_of(message, catalog)
    limit = CAPTION_LIMIT if message.media is not None else TEXT_LIMIT
    if utf16_len(text) <= limit:
        return [message]
    parts: list[Outgoing] = []
    if message.media is not None:
        caption, text = take(text, CAPTION_LIMIT)
        parts.append(replace(part(caption if caption.strip() else ""), media=message.media))
    parts += [part(piece) for piece in split_text(text)]
    if not parts:
        return [message]  # nothing but spaces: nothing to keep
    last = parts[-1]
    parts[-1] = replace(last, actions=message.actions, keyboard=message.keyboard)
    return parts


Splitter = Callable[[Outgoing, str | None], list[Outgoing]]


def splitter(default_locale: str) -> Splitter:
    """What the outbox writer is given: split a message in its recipient's language (their
    locale code, or the service's default) as the sender would render it."""

    def split(message: Outgoing, locale: str | None) -> list[Outgoing]:
        return split_message(message, catalog_for(locale, default_locale))

    return split
