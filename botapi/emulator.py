"""A local Telegram Bot API emulator: the end-to-end tests and the sandbox (`make run` without a token)
run the real python-telegram-bot application against it.

The server half speaks the HTTP Bot API (``{base_url}{token}/{method}``) with the result and
error shapes Telegram uses; the test half (methods on :class:`BotAPIEmulator`) plays the human
users in-process: it queues updates, presses inline buttons and reads what the bot sent.

Everything lives on one ``BotAPIEmulator`` instance (no module-level state), so several
emulators can run in one process. All methods must be used from the event loop the emulator
was started on.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import functools
import itertools
import json
import math
import random
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self

import aiohttp
from aiohttp import web

__all__ = ["BotAPIEmulator", "EmuMessage", "EmuUser", "UploadedFile"]

JSONDict = dict[str, Any]

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024

# Form fields that are plain strings; every other form value is JSON-decoded (PTB JSON-encodes
# all non-string values, e.g. ``chat_id=123``, ``reply_markup={...}``, ``show_alert=true``).
_STRING_PARAMS = frozenset(
    """
    text caption parse_mode callback_query_id inline_message_id file_id action url secret_token
    ip_address language_code description short_description name title emoji query phone_number
    first_name last_name vcard business_connection_id message_effect_id photo document voice audio
    video animation sticker thumbnail performer certificate
    """.split()
)

_CHAT_ACTIONS = frozenset(
    """
    typing upload_photo record_video upload_video record_voice upload_voice upload_document
    choose_sticker find_location record_video_note upload_video_note
    """.split()
)

# method -> (message field, file_path folder, file extension, default mime type)
_MEDIA_METHODS: dict[str, tuple[str, str, str, str]] = {
    "sendPhoto": ("photo", "photos", "jpg", "image/jpeg"),
    "sendDocument": ("document", "documents", "bin", "application/octet-stream"),
    "sendVoice": ("voice", "voice", "oga", "audio/ogg"),
    "sendAudio": ("audio", "music", "mp3", "audio/mpeg"),
    "sendVideo": ("video", "videos", "mp4", "video/mp4"),
    "sendAnimation": ("animation", "animations", "mp4", "video/mp4"),
    "sendSticker": ("sticker", "stickers", "webp", "image/webp"),
}

# Methods that create messages and therefore count against Telegram's flood limits.
_FLOOD_METHODS = frozenset({"sendMessage", *_MEDIA_METHODS})

# The calls chaos() faults by default: those that send or edit a message.
_SEND_EDIT_METHODS = frozenset(
    {*_FLOOD_METHODS, "editMessageText", "editMessageCaption", "editMessageReplyMarkup"}
)
_CHAOS_5XX = (500, 502, 503, 504)
_SECRET_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_UPDATE_TYPES = frozenset(
    """
    message edited_message channel_post edited_channel_post business_connection business_message
    edited_business_message deleted_business_messages message_reaction message_reaction_count
    inline_query chosen_inline_result callback_query shipping_query pre_checkout_query
    purchased_paid_media poll poll_answer my_chat_member chat_member chat_join_request
    chat_boost removed_chat_boost
    """.split()
)

_BOT_COMMAND_RE = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![\w/])")
_COMMAND_NAME_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_MSG_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
_QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"


# --------------------------------------------------------------------------------------------
# Public value objects
# --------------------------------------------------------------------------------------------


@dataclass
class EmuUser:
    """A human Telegram user played by the test; its private chat id equals its user id."""

    id: int
    first_name: str = "User"
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    phone_number: str | None = None
    is_premium: bool = False

    @property
    def chat_id(self) -> int:
        """The id of the private chat between this user and the bot."""
        return self.id

    def to_api(self) -> JSONDict:
        """The Bot API ``User`` object for this user."""
        data: JSONDict = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if self.is_premium:
            data["is_premium"] = True
        return data

    def chat_api(self) -> JSONDict:
        """The Bot API ``Chat`` object of this user's private chat."""
        data: JSONDict = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.last_name is not None:
            data["last_name"] = self.last_name
        if self.username is not None:
            data["username"] = self.username
        return data


@dataclass
class UploadedFile:
    """A file part received in a multipart request."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class EmuMessage:
    """A message stored by the emulator (bot- or user-sent), always in its current state."""

    message_id: int
    chat_id: int
    date: int
    from_bot: bool
    method: str  # "sendMessage", "sendPhoto", ... for bot messages, "user" for user messages
    sender: JSONDict
    chat: JSONDict
    text: str | None = None
    caption: str | None = None
    entities: list[JSONDict] = field(default_factory=list)  # text or caption entities
    reply_markup: JSONDict | None = None  # as sent: inline keyboard or reply keyboard etc.
    content: JSONDict = field(default_factory=dict)  # e.g. {"photo": [...]}, {"contact": {...}}
    file_data: bytes | None = None  # bytes of an uploaded media file, if any
    params: JSONDict = field(default_factory=dict)  # params of the creating API call
    reply_to: EmuMessage | None = None
    edit_date: int | None = None
    history: list[JSONDict] = field(default_factory=list)  # previous versions, oldest first
    deleted: bool = False
    # For bot messages: when the creating call was answered (time.monotonic()), and "timeout"
    # when that answer was held back by an injected timeout (the bot never saw it in time).
    answered_at: float | None = None
    fault: str | None = None

    @property
    def kind(self) -> str:
        """``text`` or the content field name (``photo``, ``document``, ``contact``, ...)."""
        if self.content:
            return next(iter(self.content))
        return "text"

    @property
    def edited(self) -> bool:
        """Whether the message was edited at least once."""
        return bool(self.history)

    @property
    def inline_keyboard(self) -> list[list[JSONDict]]:
        """Rows of inline keyboard buttons currently attached (empty if none)."""
        if self.reply_markup and "inline_keyboard" in self.reply_markup:
            rows: list[list[JSONDict]] = self.reply_markup["inline_keyboard"]
            return rows
        return []

    @property
    def button_texts(self) -> list[str]:
        """Texts of all inline buttons, row by row."""
        return [str(b.get("text")) for row in self.inline_keyboard for b in row]

    @property
    def keyboard(self) -> list[list[str]]:
        """Texts of the reply keyboard (custom keyboard) buttons sent with this message."""
        if not self.reply_markup or "keyboard" not in self.reply_markup:
            return []
        return [[_button_text(b) for b in row] for row in self.reply_markup["keyboard"]]

    @property
    def requests_contact(self) -> bool:
        """Whether a reply keyboard button of this message asks for the user's phone number."""
        if not self.reply_markup or "keyboard" not in self.reply_markup:
            return False
        return any(
            isinstance(b, dict) and b.get("request_contact")
            for row in self.reply_markup["keyboard"]
            for b in row
        )

    def button(self, text: str) -> JSONDict | None:
        """The inline button with exactly this text, or None."""
        for row in self.inline_keyboard:
            for b in row:
                if b.get("text") == text:
                    return b
        return None

    def to_api(self, *, with_reply: bool = True) -> JSONDict:
        """The Bot API ``Message`` object for the current state."""
        data: JSONDict = {
            "message_id": self.message_id,
            "from": dict(self.sender),
            "chat": dict(self.chat),
            "date": self.date,
        }
        if self.edit_date is not None:
            data["edit_date"] = self.edit_date
        if self.reply_to is not None and with_reply:
            data["reply_to_message"] = self.reply_to.to_api(with_reply=False)
        if self.text is not None:
            data["text"] = self.text
            if self.entities:
                data["entities"] = copy.deepcopy(self.entities)
        data.update(copy.deepcopy(self.content))
        if self.caption is not None:
            data["caption"] = self.caption
            if self.entities:
                data["caption_entities"] = copy.deepcopy(self.entities)
        if self.reply_markup and "inline_keyboard" in self.reply_markup:
            data["reply_markup"] = copy.deepcopy(self.reply_markup)
        return data

    def describe(self) -> str:
        """A one-line human readable rendering used in transcripts."""
        body = self.text if self.text is not None else self.caption
        parts = [] if self.kind == "text" else [f"[{self.kind}]"]
        if body is not None:
            parts.append(repr(body))
        if self.kind == "contact":
            parts.append(str(self.content["contact"].get("phone_number")))
        if self.inline_keyboard:
            rows = [" | ".join(str(b.get("text")) for b in row) for row in self.inline_keyboard]
            parts.append("buttons: [" + " / ".join(rows) + "]")
        if self.keyboard:
            rows = [" | ".join(row) for row in self.keyboard]
            parts.append("keyboard: {" + " / ".join(rows) + "}")
        if self.deleted:
            parts.append("(deleted)")
        return " ".join(parts)


# --------------------------------------------------------------------------------------------
# Internal state
# --------------------------------------------------------------------------------------------


class _ApiError(Exception):
    """An error answer of the Bot API."""

    def __init__(self, status: int, description: str, parameters: JSONDict | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> JSONDict:
        """The JSON body Telegram sends for this error."""
        data: JSONDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            data["parameters"] = self.parameters
        return data


def _bad(description: str) -> _ApiError:
    """A 400 ``Bad Request: ...`` error."""
    return _ApiError(400, f"Bad Request: {description}")


@dataclass
class _Fault:
    """An injected failure for the next calls of one method."""

    method: str  # lowercase method name or "*"
    status: int
    retry_after: int | None
    description: str | None
    timeout: bool
    hang: float
    times: int

    def error(self) -> _ApiError:
        """The error answer this fault produces."""
        if self.status == 429:
            retry = self.retry_after if self.retry_after is not None else 1
            desc = self.description or f"Too Many Requests: retry after {retry}"
            return _ApiError(429, desc, {"retry_after": retry})
        try:
            phrase = HTTPStatus(self.status).phrase
        except ValueError:
            phrase = "Error"
        return _ApiError(self.status, self.description or phrase)


@dataclass
class _Chaos:
    """Random failures of a share of the calls to some methods (see BotAPIEmulator.chaos)."""

    rate_5xx: float
    rate_429: float
    rate_timeout: float
    methods: frozenset[str]  # lowercase method names
    retry_after: int
    hang: float
    rng: random.Random

    def draw(self, method: str) -> str | None:
        """The fault of one call: "5xx", "429", "timeout" or None."""
        if method.lower() not in self.methods:
            return None
        roll = self.rng.random()
        if roll < self.rate_5xx:
            return "5xx"
        if roll < self.rate_5xx + self.rate_429:
            return "429"
        if roll < self.rate_5xx + self.rate_429 + self.rate_timeout:
            return "timeout"
        return None


@dataclass
class _StoredFile:
    """A file known to the emulator, downloadable through getFile."""

    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str


@dataclass
class _Chat:
    """Per-chat state: messages, read cursors and transcript."""

    id: int
    api: JSONDict
    next_message_id: int = 1
    messages: dict[int, EmuMessage] = field(default_factory=dict)
    bot_order: list[int] = field(default_factory=list)
    read_pos: int = 0
    edits: list[EmuMessage] = field(default_factory=list)
    edit_pos: int = 0
    log: list[str] = field(default_factory=list)
    reply_keyboard: JSONDict | None = None


ChatRef = int | EmuUser


def _chat_id(ref: ChatRef) -> int:
    """The chat id for a user or a raw chat id."""
    return ref.id if isinstance(ref, EmuUser) else int(ref)


def _button_text(button: Any) -> str:
    """Text of a reply keyboard button given as string or object."""
    return button if isinstance(button, str) else str(button.get("text"))


def _utf16_len(text: str) -> int:
    """Length of a string in UTF-16 code units (Telegram's entity unit)."""
    return len(text.encode("utf-16-le")) // 2


def _decode_form_value(name: str, value: str) -> Any:
    """Decode one form value the way the Bot API does (JSON for non-string params)."""
    if name in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _maybe_json(value: Any) -> Any:
    """Parse a JSON-encoded string value; return other values unchanged."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _as_int(value: Any) -> int | None:
    """Coerce an integer param (int or numeric string), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def _as_bool(value: Any) -> bool:
    """Coerce a boolean param."""
    if isinstance(value, str):
        return value.lower() in ("true", "1")
    return bool(value)


# --------------------------------------------------------------------------------------------
# Formatting: parse_mode HTML / MarkdownV2 / Markdown -> (text, entities), like Telegram
# --------------------------------------------------------------------------------------------


class _ParseError(Exception):
    """An entity parsing failure (becomes ``can't parse entities: ...``)."""


_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_ENTITY_RE = re.compile(r"&(#[0-9]+|#[xX][0-9a-fA-F]+|lt|gt|amp|quot);")
_HTML_ATTR_RE = re.compile(r"""([A-Za-z][\w-]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")


def _byte_offset(src: str, index: int) -> int:
    """UTF-8 byte offset of a character index (Telegram reports byte offsets)."""
    return len(src[:index].encode())


def _parse_html(src: str) -> tuple[str, list[JSONDict]]:
    """Parse Telegram-flavoured HTML into plain text and entities."""
    out: list[str] = []
    pos = 0
    stack: list[tuple[str, int, dict[str, str]]] = []
    entities: list[JSONDict] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c == "&":
            m = _HTML_ENTITY_RE.match(src, i)
            if m:
                ref = m.group(1)
                if ref.startswith("#"):
                    ch = chr(int(ref[2:], 16) if ref[1] in "xX" else int(ref[1:]))
                else:
                    ch = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}[ref]
                out.append(ch)
                pos += _utf16_len(ch)
                i = m.end()
                continue
        if c != "<":
            out.append(c)
            pos += _utf16_len(c)
            i += 1
            continue
        offset = _byte_offset(src, i)
        if src.startswith("</", i):
            end = src.find(">", i)
            if end < 0:
                raise _ParseError(f"Unclosed end tag at byte offset {offset}")
            name = src[i + 2 : end].strip().lower()
            if not stack:
                raise _ParseError(f"Unexpected end tag at byte offset {offset}")
            tag, start, attrs = stack.pop()
            if name and name != tag:
                raise _ParseError(
                    f'Unmatched end tag at byte offset {offset}, expected "</{tag}>", found "</{name}>"'
                )
            length = pos - start
            if tag == "code" and stack and stack[-1][0] == "pre" and "class" in attrs:
                language = attrs["class"].removeprefix("language-")
                stack[-1][2]["language"] = language
            elif length > 0:
                entity: JSONDict = {"type": _HTML_TAGS[tag], "offset": start, "length": length}
                if tag == "a":
                    entity["url"] = attrs.get("href", "")
                elif tag == "pre" and attrs.get("language"):
                    entity["language"] = attrs["language"]
                elif tag == "blockquote" and "expandable" in attrs:
                    entity["type"] = "expandable_blockquote"
                elif tag == "tg-emoji":
                    entity["custom_emoji_id"] = attrs.get("emoji-id", "")
                entities.append(entity)
            i = end + 1
            continue
        j = i + 1
        while j < n and not src[j].isspace() and src[j] != ">":
            j += 1
        end = src.find(">", j)
        if j >= n or end < 0:
            raise _ParseError(f"Unclosed start tag at byte offset {offset}")
        name = src[i + 1 : j].lower()
        if name not in _HTML_TAGS:
            raise _ParseError(f'Unsupported start tag "{name}" at byte offset {offset}')
        attrs = {
            m.group(1).lower(): next((g for g in m.groups()[1:] if g is not None), "")
            for m in _HTML_ATTR_RE.finditer(src[j:end])
        }
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise _ParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {offset}')
        stack.append((name, pos, attrs))
        i = end + 1
    if stack:
        raise _ParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return "".join(out), sorted(entities, key=lambda e: (e["offset"], -e["length"]))


_MDV2_RESERVED = "_*[]()~`>#+-=|{}.!"
_MDV2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
}


def _parse_markdown_v2(src: str) -> tuple[str, list[JSONDict]]:
    """Parse MarkdownV2 into plain text and entities, rejecting unescaped reserved chars."""
    out: list[str] = []
    pos = 0
    stack: list[tuple[str, int, int, str | None]] = []  # type, start, byte offset, language
    entities: list[JSONDict] = []
    i, n = 0, len(src)

    def emit(ch: str) -> None:
        nonlocal pos
        out.append(ch)
        pos += _utf16_len(ch)

    while i < n:
        c = src[i]
        if c == "\\" and i + 1 < n and 0 < ord(src[i + 1]) <= 126:
            emit(src[i + 1])
            i += 2
            continue
        top = stack[-1][0] if stack else None
        if top in ("code", "pre") and not (c == "`" and (top == "code" or src.startswith("```", i))):
            emit(c)
            i += 1
            continue
        if c == ">" and (i == 0 or src[i - 1] == "\n") and not stack:
            i += 1  # blockquote marker; the quote itself is not tracked as an entity
            continue
        if c not in _MDV2_RESERVED:
            emit(c)
            i += 1
            continue
        closing = {
            "bold": c == "*",
            "italic": c == "_" and not src.startswith("__", i),
            "underline": src.startswith("__", i),
            "strikethrough": c == "~",
            "spoiler": src.startswith("||", i),
            "code": c == "`",
            "pre": src.startswith("```", i),
            "text_link": c == "]",
        }
        if top is not None and closing.get(top):
            kind, start, _, pre_language = stack.pop()
            i += {"underline": 2, "spoiler": 2, "pre": 3}.get(kind, 1)
            entity: JSONDict = {"type": kind, "offset": start, "length": pos - start}
            if kind == "text_link":
                if i < n and src[i] == "(":
                    j = i + 1
                    url: list[str] = []
                    while j < n and src[j] != ")":
                        if src[j] == "\\" and j + 1 < n:
                            j += 1
                        url.append(src[j])
                        j += 1
                    if j >= n:
                        raise _ParseError(f"Can't find end of a URL at byte offset {_byte_offset(src, i)}")
                    entity["url"] = "".join(url)
                    i = j + 1
                else:
                    entity = {}
            if kind == "pre" and pre_language:
                entity["language"] = pre_language
            if entity and entity["length"] > 0:
                entities.append(entity)
            continue
        offset = _byte_offset(src, i)
        language: str | None = None
        if src.startswith("```", i):
            kind, i = "pre", i + 3
            newline = src.find("\n", i)
            closer = src.find("```", i)
            if newline >= 0 and (closer < 0 or newline < closer) and " " not in src[i:newline]:
                language = src[i:newline] or None
                i = newline + 1
        elif c == "`":
            kind, i = "code", i + 1
        elif src.startswith("__", i):
            kind, i = "underline", i + 2
        elif c == "_":
            kind, i = "italic", i + 1
        elif c == "*":
            kind, i = "bold", i + 1
        elif c == "~":
            kind, i = "strikethrough", i + 1
        elif src.startswith("||", i):
            kind, i = "spoiler", i + 2
        elif c == "[":
            kind, i = "text_link", i + 1
        else:
            raise _ParseError(f"Character '{c}' is reserved and must be escaped with the preceding '\\'")
        stack.append((kind, pos, offset, language))
    if stack:
        kind, _, offset, _ = stack[-1]
        raise _ParseError(f"Can't find end of {_MDV2_NAMES[kind]} entity at byte offset {offset}")
    return "".join(out), sorted(entities, key=lambda e: (e["offset"], -e["length"]))


def _parse_markdown(src: str) -> tuple[str, list[JSONDict]]:
    """Parse legacy Markdown (bold, italic, code, pre, links) into text and entities."""
    out: list[str] = []
    pos = 0
    entities: list[JSONDict] = []
    i, n = 0, len(src)

    def add(text: str, kind: str | None, **extra: str) -> None:
        nonlocal pos
        if kind and text:
            entities.append({"type": kind, "offset": pos, "length": _utf16_len(text), **extra})
        out.append(text)
        pos += _utf16_len(text)

    while i < n:
        c = src[i]
        if c == "\\" and i + 1 < n and src[i + 1] in "_*`[":
            add(src[i + 1], None)
            i += 2
            continue
        if c not in "_*`[":
            add(c, None)
            i += 1
            continue
        error = f"Can't find end of the entity starting at byte offset {_byte_offset(src, i)}"
        if c == "[":
            close = src.find("]", i + 1)
            if close < 0:
                raise _ParseError(error)
            label = src[i + 1 : close]
            if src.startswith("(", close + 1):
                end = src.find(")", close + 2)
                if end < 0:
                    raise _ParseError(error)
                add(label, "text_link", url=src[close + 2 : end])
                i = end + 1
            else:
                add(label, None)
                i = close + 1
        elif src.startswith("```", i):
            end = src.find("```", i + 3)
            if end < 0:
                raise _ParseError(error)
            body = src[i + 3 : end]
            first, sep, rest = body.partition("\n")
            if sep and first and " " not in first:
                add(rest, "pre", language=first)
            else:
                add(body, "pre")
            i = end + 3
        else:
            end = src.find(c, i + 1)
            if end < 0:
                raise _ParseError(error)
            add(src[i + 1 : end], {"*": "bold", "_": "italic", "`": "code"}[c])
            i = end + 1
    return "".join(out), entities


_PARSERS: dict[str, Callable[[str], tuple[str, list[JSONDict]]]] = {
    "html": _parse_html,
    "markdownv2": _parse_markdown_v2,
    "markdown": _parse_markdown,
}


# --------------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------------


class BotAPIEmulator:
    """A local Telegram Bot API server plus a test-side API playing the human users."""

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        bot_username: str = "test_bot",
        *,
        bot_name: str = "Test Bot",
        host: str = "127.0.0.1",
        port: int = 0,
        allow_http_webhooks: bool = False,
    ) -> None:
        """Configure the emulator; nothing is bound until :meth:`start`.

        Telegram only pushes to https webhooks; ``allow_http_webhooks=True`` also accepts
        ``http://`` URLs (tests point the webhook at a local server).
        """
        self.token = token
        self.bot_username = bot_username
        self.bot_name = bot_name
        self.host = host
        self.port = port
        prefix = token.split(":", 1)[0]
        self.bot_id = int(prefix) if prefix.isdigit() else 1

        # Observable state for tests.
        self.calls: list[tuple[str, JSONDict]] = []
        self.errors: list[tuple[str, JSONDict, int, str]] = []
        self.callback_answers: list[JSONDict] = []
        self.chat_actions: list[tuple[int, str]] = []
        self.commands: dict[tuple[str, str], list[JSONDict]] = {}
        self.menu_buttons: dict[int | None, JSONDict] = {}
        self.bot_texts: dict[tuple[str, str], str] = {}
        self.webhook_url: str = ""
        # True: a bot message whose text an edit changes is read again by next_message() (the
        # service edits an answered question into the next one; a person reads that as new).
        # A function (old text, new text) -> bool decides which edits count.
        self.read_edits_as_new: bool | Callable[[str, str], bool] = False
        self.allow_http_webhooks = allow_http_webhooks
        self.webhook_timeout = 10.0  # seconds a webhook may take to answer one update
        self.webhook_backoff = 0.5  # seconds before the queue is pushed again after a failure
        self.webhook_deliveries: list[tuple[int, int]] = []  # (update_id, HTTP status or 0)
        self.webhook_secret: str | None = None
        self.webhook_max_connections = 40
        self.webhook_allowed_updates: list[str] | None = None
        self.webhook_last_error: tuple[int, str] | None = None  # (unix time, message)
        self.faulted: list[tuple[str, str, int | None, float]] = []  # see chaos()
        self.flood_errors = 0
        self.changes = 0  # counts state changes; see wait_changed()

        # Flood limits (only applied when enforce_limits is True).
        self.enforce_limits = False
        self.limit_per_second = 30
        self.limit_per_private_chat_per_second = 1
        self.limit_per_group_per_minute = 20

        self._users: dict[int, EmuUser] = {}
        self._chats: dict[int, _Chat] = {}
        self._blocked: dict[int, str] = {}
        self._not_started: set[int] = set()
        self._updates: list[JSONDict] = []
        self._update_ids = itertools.count(100_000_001)
        self._query_ids = itertools.count(4_100_000_000_000_001)
        self._file_ids = itertools.count(1)
        self._queries: dict[str, int] = {}  # callback query id -> chat id
        self._answered: set[str] = set()
        self._files: dict[str, _StoredFile] = {}
        self._files_by_path: dict[str, _StoredFile] = {}
        self._faults: list[_Fault] = []
        self._chaos: _Chaos | None = None
        self._call_messages: contextvars.ContextVar[list[EmuMessage] | None] = contextvars.ContextVar(
            f"emu_call_messages_{id(self)}", default=None
        )
        self._pusher: asyncio.Task[None] | None = None
        self._webhook_paused_until = 0.0
        self._webhook_generation = 0
        self._flood_all: deque[float] = deque()
        self._flood_chat: dict[int, deque[float]] = {}
        self._poll_generation = 0
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._methods: dict[str, tuple[str, Callable[[JSONDict], Awaitable[Any]]]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._api_get_me,
                "getUpdates": self._api_get_updates,
                "setWebhook": self._api_set_webhook,
                "deleteWebhook": self._api_delete_webhook,
                "getWebhookInfo": self._api_get_webhook_info,
                "setMyCommands": self._api_set_my_commands,
                "getMyCommands": self._api_get_my_commands,
                "deleteMyCommands": self._api_delete_my_commands,
                "setChatMenuButton": self._api_set_chat_menu_button,
                "getChatMenuButton": self._api_get_chat_menu_button,
                "setMyDescription": self._api_set_bot_text("description"),
                "getMyDescription": self._api_get_bot_text("description"),
                "setMyShortDescription": self._api_set_bot_text("short_description"),
                "getMyShortDescription": self._api_get_bot_text("short_description"),
                "setMyName": self._api_set_bot_text("name"),
                "getMyName": self._api_get_bot_text("name"),
                "getChat": self._api_get_chat,
                "sendMessage": self._api_send_message,
                "editMessageText": self._api_edit_message_text,
                "editMessageCaption": self._api_edit_message_caption,
                "editMessageReplyMarkup": self._api_edit_message_reply_markup,
                "deleteMessage": self._api_delete_message,
                "answerCallbackQuery": self._api_answer_callback_query,
                "sendChatAction": self._api_send_chat_action,
                "getFile": self._api_get_file,
                "close": self._api_true,
                "logOut": self._api_true,
                **{name: self._media_sender(name) for name in _MEDIA_METHODS},
            }.items()
        }

    # ---------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        """Value for ``ApplicationBuilder().base_url(...)``."""
        return f"http://{self.host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """Value for ``ApplicationBuilder().base_file_url(...)``."""
        return f"http://{self.host}:{self.port}/file/bot"

    @property
    def running(self) -> bool:
        """Whether the HTTP server is up."""
        return self._runner is not None

    async def start(self) -> None:
        """Bind the HTTP server (on a free port unless one was given)."""
        if self._runner is not None:
            return
        self._closing = False
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._handle_file)
        runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self.port = runner.addresses[0][1]
        self._runner = runner

    async def stop(self) -> None:
        """Release pending long polls and hung requests, then shut the server down."""
        if self._runner is None:
            return
        self._closing = True
        await self._stop_pusher()
        self._notify()
        await asyncio.sleep(0.01)
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> Self:
        """Start the emulator."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the emulator."""
        await self.stop()

    # ---------------------------------------------------------------- users and chats

    @property
    def bot_user(self) -> JSONDict:
        """The bot's ``User`` object as returned by getMe."""
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_name,
            "username": self.bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def user(
        self,
        user_id: int,
        first_name: str = "User",
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        phone_number: str | None = None,
        started: bool = True,
    ) -> EmuUser:
        """Register a user and its private chat (``started=False``: bot may not write first)."""
        user = EmuUser(
            user_id,
            first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
            phone_number=phone_number,
        )
        self._register(user)
        if started:
            self._not_started.discard(user_id)
        else:
            self._not_started.add(user_id)
        return user

    def group(self, chat_id: int, title: str = "Group", *, supergroup: bool = False) -> int:
        """Register a group chat (negative id) the bot is a member of; returns its id."""
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        api = {"id": chat_id, "type": "supergroup" if supergroup else "group", "title": title}
        chat = self._chats.setdefault(chat_id, _Chat(chat_id, api))
        chat.api = api
        return chat_id

    def block(self, user: ChatRef) -> None:
        """Make the user block the bot (sends then fail with 403)."""
        self._blocked[_chat_id(user)] = "Forbidden: bot was blocked by the user"

    def deactivate(self, user: ChatRef) -> None:
        """Make the user's account deleted (sends then fail with 403)."""
        self._blocked[_chat_id(user)] = "Forbidden: user is deactivated"

    def unblock(self, user: ChatRef) -> None:
        """Undo :meth:`block` / :meth:`deactivate`."""
        self._blocked.pop(_chat_id(user), None)

    def _register(self, user: EmuUser) -> _Chat:
        """Store the user and make sure its private chat exists."""
        self._users[user.id] = user
        chat = self._chats.get(user.id)
        if chat is None:
            chat = self._chats[user.id] = _Chat(user.id, user.chat_api())
        chat.api = user.chat_api()
        return chat

    # ---------------------------------------------------------------- user actions

    async def send_text(
        self,
        user: EmuUser,
        text: str,
        *,
        chat: int | None = None,
        reply_to: EmuMessage | int | None = None,
        entities: list[JSONDict] | None = None,
    ) -> EmuMessage:
        """The user sends a text message (``/commands`` get ``bot_command`` entities)."""
        if entities is None:
            entities = [
                {
                    "type": "bot_command",
                    "offset": _utf16_len(text[: m.start()]),
                    "length": _utf16_len(m.group()),
                }
                for m in _BOT_COMMAND_RE.finditer(text)
            ]
        return self._user_message(user, chat, text=text, entities=entities, reply_to=reply_to)

    async def send_command(
        self, user: EmuUser, command: str, args: str | None = None, *, chat: int | None = None
    ) -> EmuMessage:
        """The user sends ``/command args``."""
        text = "/" + command.lstrip("/") + (f" {args}" if args else "")
        return await self.send_text(user, text, chat=chat)

    async def send_contact(
        self,
        user: EmuUser,
        phone_number: str,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        user_id: int | None = None,
        own: bool = True,
        chat: int | None = None,
    ) -> EmuMessage:
        """The user shares a contact (by default their own: ``user_id`` = the user's id)."""
        contact: JSONDict = {
            "phone_number": phone_number,
            "first_name": first_name or user.first_name,
        }
        last = last_name if last_name is not None else (user.last_name if own else None)
        if last:
            contact["last_name"] = last
        if user_id is not None or own:
            contact["user_id"] = user_id if user_id is not None else user.id
        return self._user_message(user, chat, content={"contact": contact})

    async def send_photo(
        self,
        user: EmuUser,
        data: bytes,
        caption: str | None = None,
        *,
        width: int = 1280,
        height: int = 960,
        chat: int | None = None,
    ) -> EmuMessage:
        """The user sends a photo; the bytes can be fetched through getFile."""
        small = self._store_file(data, "photos", "jpg")
        big = self._store_file(data, "photos", "jpg")
        sizes = [
            self._file_obj(small, width=90, height=max(1, 90 * height // max(width, 1))),
            self._file_obj(big, width=width, height=height),
        ]
        return self._user_message(user, chat, content={"photo": sizes}, caption=caption, file_data=data)

    async def send_voice(
        self,
        user: EmuUser,
        data: bytes,
        duration: int = 3,
        *,
        mime_type: str = "audio/ogg",
        chat: int | None = None,
    ) -> EmuMessage:
        """The user sends a voice note."""
        stored = self._store_file(data, "voice", "oga")
        voice = self._file_obj(stored, duration=duration, mime_type=mime_type)
        return self._user_message(user, chat, content={"voice": voice}, file_data=data)

    async def send_document(
        self,
        user: EmuUser,
        data: bytes,
        file_name: str = "file.bin",
        *,
        mime_type: str = "application/octet-stream",
        caption: str | None = None,
        chat: int | None = None,
    ) -> EmuMessage:
        """The user sends a document."""
        ext = file_name.rsplit(".", 1)[-1] if "." in file_name else "bin"
        stored = self._store_file(data, "documents", ext)
        doc = self._file_obj(stored, file_name=file_name, mime_type=mime_type)
        return self._user_message(user, chat, content={"document": doc}, caption=caption, file_data=data)

    async def send_sticker(self, user: EmuUser, emoji: str = "👍", *, chat: int | None = None) -> EmuMessage:
        """The user sends a (static) sticker."""
        data = b"RIFF\x00\x00\x00\x00WEBPVP8 "
        stored = self._store_file(data, "stickers", "webp")
        sticker = self._file_obj(
            stored,
            type="regular",
            width=512,
            height=512,
            is_animated=False,
            is_video=False,
            emoji=emoji,
        )
        return self._user_message(user, chat, content={"sticker": sticker}, file_data=data)

    async def send_location(
        self, user: EmuUser, latitude: float, longitude: float, *, chat: int | None = None
    ) -> EmuMessage:
        """The user shares a location."""
        location = {"latitude": latitude, "longitude": longitude}
        return self._user_message(user, chat, content={"location": location})

    async def tap_keyboard(self, user: EmuUser, text: str, *, chat: int | None = None) -> EmuMessage:
        """The user taps a button of the chat's current reply keyboard."""
        cid = chat if chat is not None else user.id
        state = self._chats.get(cid)
        markup = state.reply_keyboard if state else None
        buttons = [b for row in (markup or {}).get("keyboard", []) for b in row]
        for b in buttons:
            if _button_text(b) != text:
                continue
            if isinstance(b, dict) and b.get("request_contact"):
                phone = user.phone_number or f"+1555{user.id:07d}"
                return await self.send_contact(user, phone, chat=chat)
            return await self.send_text(user, text, chat=chat)
        available = [_button_text(b) for b in buttons]
        raise AssertionError(
            f"no reply keyboard button {text!r} in chat {cid}; available: {available}\n"
            + self.transcript(cid)
        )

    async def press(
        self,
        user: EmuUser,
        message: EmuMessage | int,
        button_text: str,
        *,
        chat: int | None = None,
    ) -> str:
        """The user presses the inline button with this text; returns the callback query id."""
        cid, mid = self._message_ref(user, message, chat)
        state = self._chats.get(cid)
        current = state.messages.get(mid) if state else None
        if state is None or current is None or current.deleted:
            raise AssertionError(f"message #{mid} does not exist in chat {cid}\n" + self.transcript(cid))
        button = current.button(button_text)
        if button is None:
            raise AssertionError(
                f"no inline button {button_text!r} on message #{mid} in chat {cid}; "
                f"available: {current.button_texts}\n" + self.transcript(cid)
            )
        if "callback_data" not in button:
            raise AssertionError(f"button {button_text!r} has no callback_data: {button}")
        return self._callback(user, state, mid, current, button["callback_data"], button_text)

    async def press_data(
        self, user: EmuUser, message: EmuMessage | int, data: str, *, chat: int | None = None
    ) -> str:
        """The user's client sends arbitrary callback data for any message id (forged/stale)."""
        cid, mid = self._message_ref(user, message, chat)
        state = self._register(user) if cid == user.id else self._chats.get(cid)
        if state is None:
            raise AssertionError(f"chat {cid} is not registered (use emu.group())")
        current = state.messages.get(mid)
        if current is not None and current.deleted:
            current = None
        return self._callback(user, state, mid, current, data, None)

    def queue_update(self, update: JSONDict) -> int:
        """Queue a raw update (without ``update_id``); returns the assigned update id."""
        update = {"update_id": next(self._update_ids), **update}
        self._updates.append(update)
        self._notify()
        return int(update["update_id"])

    def _message_ref(self, user: EmuUser, message: EmuMessage | int, chat: int | None) -> tuple[int, int]:
        """Resolve (chat id, message id) for a message object or id."""
        if isinstance(message, EmuMessage):
            return message.chat_id, message.message_id
        return (chat if chat is not None else user.id), int(message)

    def _callback(
        self,
        user: EmuUser,
        state: _Chat,
        mid: int,
        current: EmuMessage | None,
        data: str,
        label: str | None,
    ) -> str:
        """Queue a callback_query update and log it."""
        query_id = str(next(self._query_ids))
        self._queries[query_id] = state.id
        msg: JSONDict = (
            current.to_api()
            if current is not None
            else {"chat": dict(state.api), "message_id": mid, "date": 0}
        )
        query = {
            "id": query_id,
            "from": user.to_api(),
            "message": msg,
            "chat_instance": str(abs(state.id * 7919 + self.bot_id) % 10**18),
            "data": data,
        }
        what = f"[{label}]" if label is not None else "raw data"
        state.log.append(f"{user.first_name} pressed {what} on #{mid} (data={data!r})")
        self.queue_update({"callback_query": query})
        return query_id

    def _user_message(
        self,
        user: EmuUser,
        chat: int | None,
        *,
        text: str | None = None,
        entities: list[JSONDict] | None = None,
        caption: str | None = None,
        content: JSONDict | None = None,
        file_data: bytes | None = None,
        reply_to: EmuMessage | int | None = None,
    ) -> EmuMessage:
        """Store a user message and queue the ``message`` update."""
        private = self._register(user)
        state = private if chat is None else self._chats.get(chat)
        if state is None:
            raise AssertionError(f"chat {chat} is not registered (use emu.group())")
        if state is private:
            self._not_started.discard(user.id)
        target = None
        if reply_to is not None:
            rid = reply_to.message_id if isinstance(reply_to, EmuMessage) else int(reply_to)
            target = state.messages.get(rid)
        msg = EmuMessage(
            message_id=state.next_message_id,
            chat_id=state.id,
            date=int(time.time()),
            from_bot=False,
            method="user",
            sender=user.to_api(),
            chat=dict(state.api),
            text=text,
            caption=caption,
            entities=entities or [],
            content=content or {},
            file_data=file_data,
            reply_to=target,
        )
        state.next_message_id += 1
        state.messages[msg.message_id] = msg
        state.log.append(f"#{msg.message_id} {user.first_name}: {msg.describe()}")
        self.queue_update({"message": msg.to_api()})
        return msg

    # ---------------------------------------------------------------- inspection

    async def next_message(self, chat: ChatRef, timeout: float = 10.0) -> EmuMessage:
        """The next bot message in the chat not yet returned by this method (live object)."""
        cid = _chat_id(chat)

        def ready() -> bool:
            state = self._chats.get(cid)
            return state is not None and state.read_pos < len(state.bot_order)

        if not await self._wait_for(ready, timeout):
            raise AssertionError(
                f"no new bot message in chat {cid} within {timeout}s\n" + self.transcript(cid)
            )
        state = self._chats[cid]
        msg = state.messages[state.bot_order[state.read_pos]]
        state.read_pos += 1
        return msg

    async def next_edit(self, chat: ChatRef, timeout: float = 10.0) -> EmuMessage:
        """The next edit in the chat not yet returned: a snapshot right after that edit."""
        cid = _chat_id(chat)

        def ready() -> bool:
            state = self._chats.get(cid)
            return state is not None and state.edit_pos < len(state.edits)

        if not await self._wait_for(ready, timeout):
            raise AssertionError(
                f"no new message edit in chat {cid} within {timeout}s\n" + self.transcript(cid)
            )
        state = self._chats[cid]
        snapshot = state.edits[state.edit_pos]
        state.edit_pos += 1
        return snapshot

    async def no_message(self, chat: ChatRef, within: float = 0.5) -> None:
        """Assert that the bot sends no new message to the chat within ``within`` seconds."""
        cid = _chat_id(chat)

        def arrived() -> bool:
            state = self._chats.get(cid)
            return state is not None and state.read_pos < len(state.bot_order)

        if await self._wait_for(arrived, within):
            state = self._chats[cid]
            new = [state.messages[m].describe() for m in state.bot_order[state.read_pos :]]
            raise AssertionError(f"unexpected bot message(s) in chat {cid}: {new}\n" + self.transcript(cid))

    async def wait_until(
        self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition"
    ) -> None:
        """Wait until ``predicate()`` is true (re-checked on every emulator event)."""
        if not await self._wait_for(predicate, timeout):
            raise AssertionError(f"{what} not reached within {timeout}s")

    async def wait_for_answer(self, callback_query_id: str, timeout: float = 5.0) -> JSONDict:
        """Wait for the bot's answerCallbackQuery for this query and return its params."""
        await self.wait_until(
            lambda: self.answer_for(callback_query_id) is not None,
            timeout,
            f"answerCallbackQuery for {callback_query_id}",
        )
        answer = self.answer_for(callback_query_id)
        assert answer is not None
        return answer

    def messages(self, chat: ChatRef, *, include_deleted: bool = False) -> list[EmuMessage]:
        """All bot messages in the chat, in send order, in their current state."""
        state = self._chats.get(_chat_id(chat))
        if state is None:
            return []
        found = [state.messages[m] for m in dict.fromkeys(state.bot_order)]  # once, where first sent
        return [m for m in found if include_deleted or not m.deleted]

    def message(self, chat: ChatRef, message_id: int) -> EmuMessage | None:
        """Any stored message (bot or user) by id."""
        state = self._chats.get(_chat_id(chat))
        return state.messages.get(message_id) if state else None

    def reply_keyboard(self, chat: ChatRef) -> JSONDict | None:
        """The reply keyboard currently shown in the chat (None if removed/never sent)."""
        state = self._chats.get(_chat_id(chat))
        return state.reply_keyboard if state else None

    def answer_for(self, callback_query_id: str) -> JSONDict | None:
        """The answerCallbackQuery params for this query id, or None."""
        for answer in self.callback_answers:
            if answer["callback_query_id"] == callback_query_id:
                return answer
        return None

    def calls_of(self, method: str) -> list[JSONDict]:
        """Params of every received call of one method (case-insensitive)."""
        return [p for m, p in self.calls if m.lower() == method.lower()]

    def file_bytes(self, file_id: str) -> bytes:
        """The bytes behind a file id (user- or bot-sent)."""
        return self._files[file_id].data

    def my_commands(self, scope: JSONDict | None = None, language_code: str = "") -> list[JSONDict]:
        """Commands set with setMyCommands for a scope/language."""
        return self.commands.get(self._commands_key(scope, language_code), [])

    @property
    def pending_updates(self) -> int:
        """Number of queued updates the bot has not confirmed yet."""
        return len(self._updates)

    def history(self, chat: ChatRef) -> list[EmuMessage]:
        """Every message of the chat, the user's and the bot's, in order (deleted ones left out)."""
        state = self._chats.get(_chat_id(chat))
        if state is None:
            return []
        return [m for _, m in sorted(state.messages.items()) if not m.deleted]

    def forget_chats(self) -> None:
        """Drop every chat, queued update and open callback query: the users start afresh.

        Users stay registered (with empty chats); update ids keep counting, so a bot that is
        polling never sees an old id again.
        """
        self._updates.clear()
        self._queries.clear()
        self._answered.clear()
        self.callback_answers.clear()
        self._chats = {uid: _Chat(uid, user.chat_api()) for uid, user in self._users.items()}
        self._notify()

    def transcript(self, chat: ChatRef) -> str:
        """A readable log of everything that happened in the chat."""
        state = self._chats.get(_chat_id(chat))
        if state is None or not state.log:
            return f"  (chat {_chat_id(chat)}: empty transcript)"
        return "\n".join("  " + line for line in state.log)

    def fail_next(
        self,
        method: str,
        status: int = 429,
        *,
        retry_after: int | None = None,
        times: int = 1,
        timeout: bool = False,
        hang: float = 6.0,
        description: str | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (``"*"`` = any) fail.

        ``status`` 429 answers with ``parameters.retry_after``; other statuses answer
        ``{"ok": false}`` with the HTTP phrase. ``timeout=True`` executes the call normally but
        holds the answer for ``hang`` seconds (longer than the client's read timeout).
        """
        key = "*" if method == "*" else method.lower()
        self._faults.append(_Fault(key, status, retry_after, description, timeout, hang, times))

    def chaos(
        self,
        rate_5xx: float | None = 0.2,
        rate_429: float = 0.1,
        rate_timeout: float = 0.05,
        *,
        methods: Iterable[str] | None = None,
        retry_after: int = 1,
        hang: float = 6.0,
        seed: int | None = None,
    ) -> None:
        """Make a random share of the calls to ``methods`` (default: every send and edit) fail.

        Each call fails with probability ``rate_5xx`` with a server error (500, 502, 503 or 504,
        ``{"ok": false}``), ``rate_429`` with Too Many Requests (``parameters.retry_after``), or
        ``rate_timeout`` with a timeout: the call is EXECUTED (a message is stored, as Telegram
        would) but its answer is held for ``hang`` seconds, longer than the client's read timeout
        (python-telegram-bot's default is 5 s). Every faulted call is recorded in :attr:`faulted`
        as (method, kind, chat_id, time.monotonic()), kind being "5xx", "429" or "timeout".
        ``chaos(None)`` stops it, as :meth:`calm` does; :meth:`fail_next` faults come first.
        """
        if rate_5xx is None:
            self._chaos = None
            return
        rates = (rate_5xx, rate_429, rate_timeout)
        if any(r < 0 for r in rates) or sum(rates) > 1:
            raise ValueError("chaos rates must be at least 0 and add up to at most 1")
        names = _SEND_EDIT_METHODS if methods is None else frozenset(methods)
        self._chaos = _Chaos(
            rate_5xx,
            rate_429,
            rate_timeout,
            frozenset(m.lower() for m in names),
            retry_after,
            hang,
            random.Random(seed),
        )

    def calm(self) -> None:
        """Stop the random failures of :meth:`chaos`."""
        self._chaos = None

    # ---------------------------------------------------------------- waiting

    def _notify(self) -> None:
        """Wake everybody waiting for a state change."""
        self.changes += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_changed(self, since: int, timeout: float) -> int:
        """Wait until :attr:`changes` moves past ``since`` (or ``timeout``); returns it."""
        await self._wait_for(lambda: self.changes != since, timeout)
        return self.changes

    async def _wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until predicate() holds or timeout passes; return the final predicate value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return predicate()
        return True

    # ---------------------------------------------------------------- HTTP layer

    @staticmethod
    def _json(body: JSONDict, status: int = 200) -> web.Response:
        """A JSON response."""
        return web.json_response(body, status=status)

    async def _read_params(self, request: web.Request) -> JSONDict:
        """Read query, urlencoded, multipart or JSON params into a decoded dict."""
        params: JSONDict = {k: _decode_form_value(k, v) for k, v in request.query.items()}
        files: dict[str, UploadedFile] = {}
        if request.content_type == "application/json":
            raw = await request.read()
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError as exc:
                    raise _bad("can't parse JSON encoded request body") from exc
                if not isinstance(body, dict):
                    raise _bad("JSON object expected as request body")
                params.update(body)
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = UploadedFile(key, value.filename, value.content_type, value.file.read())
                else:
                    params[key] = _decode_form_value(key, str(value))
        for key, value in list(params.items()):
            if isinstance(value, str) and value.startswith("attach://"):
                uploaded = files.pop(value.removeprefix("attach://"), None)
                if uploaded is None:
                    raise _bad(f"file for {key} is not attached")
                params[key] = uploaded
        params.update(files)
        return params

    async def _handle_api(self, request: web.Request) -> web.Response:
        """Dispatch one Bot API call."""
        if request.match_info["token"] != self.token:
            return self._json(_ApiError(401, "Unauthorized").body(), 401)
        entry = self._methods.get(request.match_info["method"].lower())
        if entry is None:
            return self._json(_ApiError(404, "Not Found").body(), 404)
        method, handler = entry
        try:
            params = await self._read_params(request)
        except _ApiError as err:
            return self._json(err.body(), err.status)
        except ConnectionResetError:  # the client died while sending (a killed bot): nobody to answer
            return web.Response(status=400)
        self.calls.append((method, params))
        self._notify()
        fault = self._take_fault(method)
        if fault is not None and not fault.timeout:
            injected = fault.error()
            self._record_error(method, params, injected)
            return self._json(injected.body(), injected.status)
        hang = fault.hang if fault is not None else None
        if fault is None and self._chaos is not None:
            kind = self._chaos.draw(method)
            if kind is not None:
                self.faulted.append((method, kind, _as_int(params.get("chat_id")), time.monotonic()))
            if kind == "timeout":
                hang = self._chaos.hang
            elif kind is not None:
                injected = self._chaos_error(kind)
                self._record_error(method, params, injected)
                return self._json(injected.body(), injected.status)
        created: list[EmuMessage] = []
        context = self._call_messages.set(created)
        try:
            self._check_flood(method, params)
            result = await handler(params)
            self._record_flood(method, params)
            status, body = 200, {"ok": True, "result": result}
        except (_ApiError, ValueError, TypeError) as exc:
            failure = exc if isinstance(exc, _ApiError) else _bad(f"invalid parameter: {exc}")
            if request.transport is not None:  # a client that already hung up saw nothing
                self._record_error(method, params, failure)
            status, body = failure.status, failure.body()
        finally:
            self._call_messages.reset(context)
        for message in created:
            message.answered_at = time.monotonic()
            if hang is not None:
                message.fault = "timeout"
        self._notify()
        if hang is not None:
            await self._wait_for(lambda: self._closing, hang)
            for message in created:
                message.answered_at = time.monotonic()
        return self._json(body, status)

    def _chaos_error(self, kind: str) -> _ApiError:
        """The error answer of a call chaos() fails with ("5xx" or "429")."""
        assert self._chaos is not None
        if kind == "429":
            retry = self._chaos.retry_after
            return _ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})
        code = self._chaos.rng.choice(_CHAOS_5XX)
        return _ApiError(code, HTTPStatus(code).phrase)

    async def _handle_file(self, request: web.Request) -> web.Response:
        """Serve a file downloaded via ``{base_file_url}{token}/{file_path}``."""
        if request.match_info["token"] != self.token:
            return self._json(_ApiError(401, "Unauthorized").body(), 401)
        stored = self._files_by_path.get(request.match_info["path"])
        if stored is None:
            return self._json(_ApiError(404, "Not Found").body(), 404)
        return web.Response(body=stored.data, content_type="application/octet-stream")

    def _take_fault(self, method: str) -> _Fault | None:
        """Consume one matching injected fault, if any."""
        for fault in self._faults:
            if fault.method in ("*", method.lower()):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _record_error(self, method: str, params: JSONDict, err: _ApiError) -> None:
        """Remember an error answer (also in the chat transcript)."""
        self.errors.append((method, params, err.status, err.description))
        cid = _as_int(params.get("chat_id"))
        if cid is None and "callback_query_id" in params:
            cid = self._queries.get(str(params["callback_query_id"]))
        if cid is not None and cid in self._chats:
            self._chats[cid].log.append(f"!! {method} -> {err.status} {err.description}")

    def _check_flood(self, method: str, params: JSONDict) -> None:
        """Answer 429 like Telegram when a send would exceed the flood limits."""
        if not self.enforce_limits or method not in _FLOOD_METHODS:
            return
        now = asyncio.get_running_loop().time()
        while self._flood_all and self._flood_all[0] <= now - 1.0:
            self._flood_all.popleft()
        waits: list[float] = []
        if len(self._flood_all) >= self.limit_per_second:
            waits.append(self._flood_all[0] + 1.0 - now)
        cid = _as_int(params.get("chat_id"))
        if cid is not None:
            window, limit = self._chat_window(cid)
            sent = self._flood_chat.setdefault(cid, deque())
            while sent and sent[0] <= now - window:
                sent.popleft()
            if len(sent) >= limit:
                waits.append(sent[0] + window - now)
        if waits:
            self.flood_errors += 1
            retry = max(1, math.ceil(max(waits)))
            raise _ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})

    def _chat_window(self, chat_id: int) -> tuple[float, int]:
        """(window seconds, max messages) for one chat."""
        if chat_id < 0:
            return 60.0, self.limit_per_group_per_minute
        return 1.0, self.limit_per_private_chat_per_second

    def _record_flood(self, method: str, params: JSONDict) -> None:
        """Count a successful send for the flood limits."""
        if method not in _FLOOD_METHODS:
            return
        now = asyncio.get_running_loop().time()
        self._flood_all.append(now)
        cid = _as_int(params.get("chat_id"))
        if cid is not None:
            self._flood_chat.setdefault(cid, deque()).append(now)

    # ---------------------------------------------------------------- shared helpers

    def _target_chat(self, params: JSONDict, *, check_blocked: bool = True) -> _Chat:
        """Resolve ``chat_id`` to a known chat, raising the errors Telegram would."""
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise _bad("chat_id is empty")
        cid = _as_int(raw)
        if cid is None and isinstance(raw, str) and raw.startswith("@"):
            cid = next((c.id for c in self._chats.values() if c.api.get("username") == raw[1:]), None)
        state = self._chats.get(cid) if cid is not None else None
        if state is None:
            raise _bad("chat not found")
        if check_blocked and state.id in self._blocked:
            raise _ApiError(403, self._blocked[state.id])
        if check_blocked and state.id in self._not_started:
            raise _ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        return state

    def _format(
        self, value: Any, parse_mode: Any, entities: Any, *, caption: bool
    ) -> tuple[str | None, list[JSONDict]]:
        """Apply parse_mode/entities and Telegram's length checks to a text or caption."""
        if value is None or value == "":
            if caption:
                return None, []
            raise _bad("message text is empty")
        text = str(value)
        entities = _maybe_json(entities)
        if entities is not None:
            if not isinstance(entities, list):
                raise _bad("can't parse entities JSON object")
            parsed = [dict(e) for e in entities]
        elif parse_mode:
            parser = _PARSERS.get(str(parse_mode).lower())
            if parser is None:
                raise _bad(f"unsupported parse_mode {parse_mode!r}")
            try:
                text, parsed = parser(text)
            except _ParseError as exc:
                raise _bad(f"can't parse entities: {exc}") from None
        else:
            parsed = []
        # Telegram counts the limits in UTF-16 code units, as it counts entity offsets.
        if caption:
            if _utf16_len(text) > MAX_CAPTION_LENGTH:
                raise _bad("message caption is too long")
            return text, parsed
        if not text.strip():
            raise _bad("message text is empty")
        if _utf16_len(text) > MAX_TEXT_LENGTH:
            raise _bad("message is too long")
        return text, parsed

    def _markup(self, params: JSONDict, *, inline_only: bool = False) -> JSONDict | None:
        """Validate ``reply_markup`` like Telegram (button data size, URLs, shape)."""
        if "reply_markup" not in params or params["reply_markup"] in (None, ""):
            return None
        markup = _maybe_json(params["reply_markup"])
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
            for button in (b for row in rows for b in row):
                if not isinstance(button, dict) or not button.get("text"):
                    raise _bad("can't parse inline keyboard button: Text is empty")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA_BYTES:
                    raise _bad("BUTTON_DATA_INVALID")
                url = button.get("url")
                if url is not None and not re.match(r"^(https?|tg)://\S+$", str(url)):
                    raise _bad(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")
                actions = set(button) - {"text"}
                if not actions:
                    raise _bad(
                        "can't parse inline keyboard button: Text buttons are unallowed in the "
                        "inline keyboard"
                    )
            return markup
        if inline_only:
            raise _bad("inline keyboard expected")
        if "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad('field "keyboard" of the ReplyKeyboardMarkup must be an Array')
            return markup
        if markup.get("remove_keyboard") or markup.get("force_reply"):
            return markup
        raise _bad("can't parse reply keyboard markup JSON object")

    def _reply_target(self, state: _Chat, params: JSONDict) -> EmuMessage | None:
        """Resolve reply_parameters / reply_to_message_id."""
        reply = _maybe_json(params.get("reply_parameters"))
        if isinstance(reply, dict):
            mid, allow = _as_int(reply.get("message_id")), reply.get("allow_sending_without_reply")
        else:
            mid = _as_int(params.get("reply_to_message_id"))
            allow = params.get("allow_sending_without_reply")
        if mid is None:
            return None
        target = state.messages.get(mid)
        if target is None or target.deleted:
            if allow and _as_bool(allow):
                return None
            raise _bad("message to be replied not found")
        return target

    def _bot_message(
        self,
        state: _Chat,
        method: str,
        params: JSONDict,
        *,
        text: str | None = None,
        caption: str | None = None,
        entities: list[JSONDict] | None = None,
        markup: JSONDict | None = None,
        content: JSONDict | None = None,
        file_data: bytes | None = None,
    ) -> EmuMessage:
        """Store a bot-sent message and advance the chat's message id counter."""
        msg = EmuMessage(
            message_id=state.next_message_id,
            chat_id=state.id,
            date=int(time.time()),
            from_bot=True,
            method=method,
            sender={
                "id": self.bot_id,
                "is_bot": True,
                "first_name": self.bot_name,
                "username": self.bot_username,
            },
            chat=dict(state.api),
            text=text,
            caption=caption,
            entities=entities or [],
            reply_markup=markup,
            content=content or {},
            file_data=file_data,
            params=params,
            reply_to=self._reply_target(state, params),
        )
        state.next_message_id += 1
        state.messages[msg.message_id] = msg
        state.bot_order.append(msg.message_id)
        created = self._call_messages.get()
        if created is not None:
            created.append(msg)
        if markup is not None and "keyboard" in markup:
            state.reply_keyboard = markup
        elif markup is not None and markup.get("remove_keyboard"):
            state.reply_keyboard = None
        state.log.append(f"#{msg.message_id} bot: {msg.describe()}")
        return msg

    def _edit_target(self, params: JSONDict) -> tuple[_Chat, EmuMessage]:
        """Resolve the message an edit* call refers to."""
        if params.get("inline_message_id"):
            raise _bad("MESSAGE_ID_INVALID")
        state = self._target_chat(params)
        mid = _as_int(params.get("message_id"))
        if mid is None:
            raise _bad("message identifier is not specified")
        msg = state.messages.get(mid)
        if msg is None or msg.deleted:
            raise _bad("message to edit not found")
        if not msg.from_bot:
            raise _bad("message can't be edited")
        return state, msg

    def _apply_edit(self, state: _Chat, msg: EmuMessage, **changes: Any) -> JSONDict:
        """Apply an edit, keep the previous version in history, return the new API object."""
        msg.history.append(
            {
                "text": msg.text,
                "caption": msg.caption,
                "entities": copy.deepcopy(msg.entities),
                "reply_markup": copy.deepcopy(msg.reply_markup),
                "edit_date": msg.edit_date,
            }
        )
        for key, value in changes.items():
            setattr(msg, key, value)
        msg.edit_date = int(time.time())
        rule = self.read_edits_as_new
        old_text = msg.history[-1]["text"]
        if (
            rule
            and "text" in changes
            and old_text != msg.text
            and (rule is True or (callable(rule) and rule(old_text or "", msg.text or "")))
        ):
            # A message edited into something new (the next question in place of the answered
            # one) is what the person reads next: next_message() returns it again, as it is now.
            unread = state.bot_order[state.read_pos :]
            if msg.message_id in unread:
                del state.bot_order[state.read_pos + unread.index(msg.message_id)]
            state.bot_order.append(msg.message_id)
        state.edits.append(copy.deepcopy(msg))
        state.log.append(f"#{msg.message_id} bot edited: {msg.describe()}")
        return msg.to_api()

    def _store_file(self, data: bytes, folder: str, ext: str) -> _StoredFile:
        """Register bytes under a new file id and file path."""
        n = next(self._file_ids)
        stored = _StoredFile(
            file_id=f"BQACAgIAAxkBAAI{self.bot_id:x}{n:06d}emu",
            file_unique_id=f"AgAD{n:06d}",
            data=data,
            file_path=f"{folder}/file_{n}.{ext}",
        )
        self._files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    @staticmethod
    def _file_obj(stored: _StoredFile, **extra: Any) -> JSONDict:
        """A Bot API file object (PhotoSize, Document, Voice, ...)."""
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            **extra,
        }

    @staticmethod
    def _commands_key(scope: Any, language_code: Any) -> tuple[str, str]:
        """Storage key of a command list."""
        scope = _maybe_json(scope) or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(language_code or "")

    # ---------------------------------------------------------------- API methods

    async def _api_true(self, params: JSONDict) -> bool:
        """close, logOut."""
        return True

    async def _api_get_me(self, params: JSONDict) -> JSONDict:
        """getMe."""
        return self.bot_user

    async def _api_get_updates(self, params: JSONDict) -> list[JSONDict]:
        """getUpdates with offset confirmation and long polling."""
        if self.webhook_url:
            raise _ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )
        offset = _as_int(params.get("offset")) or 0
        limit = min(max(_as_int(params.get("limit")) or 100, 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        allowed = _maybe_json(params.get("allowed_updates")) or None
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        self._poll_generation += 1
        generation = self._poll_generation
        self._notify()  # terminates an older pending getUpdates with 409, like Telegram

        def batch() -> list[JSONDict]:
            found = [u for u in self._updates if allowed is None or any(k in allowed for k in u)]
            return found[:limit]

        await self._wait_for(
            lambda: bool(batch()) or self._closing or generation != self._poll_generation,
            timeout,
        )
        result = batch()
        if not result and generation != self._poll_generation and not self._closing:
            raise _ApiError(
                409,
                "Conflict: terminated by other getUpdates request; make sure that only one bot "
                "instance is running",
            )
        return copy.deepcopy(result)

    async def _api_set_webhook(self, params: JSONDict) -> bool:
        """setWebhook: from now on queued updates are POSTed to the URL (see _push_updates)."""
        url = str(params.get("url") or "")
        http_ok = self.allow_http_webhooks and url.startswith("http://")
        if url and not (url.startswith("https://") or http_ok):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and secret != "" and not _SECRET_TOKEN_RE.match(str(secret)):
            raise _bad("secret token contains unallowed characters")
        connections = _as_int(params.get("max_connections"))
        if "max_connections" in params and connections is None:
            raise _bad("invalid parameter max_connections")
        allowed = _maybe_json(params.get("allowed_updates"))
        if allowed is not None and not (
            isinstance(allowed, list) and all(isinstance(a, str) for a in allowed)
        ):
            raise _bad("can't parse allowed updates")
        await self._stop_pusher()
        self.webhook_url = url
        self.webhook_secret = str(secret) if secret else None
        self.webhook_max_connections = min(max(connections or 40, 1), 100)
        # An empty list means every update type but a few, as on Telegram; None: keep as before.
        if allowed is not None:
            self.webhook_allowed_updates = [a for a in allowed if a in _UPDATE_TYPES] or None
        self.webhook_last_error = None
        if _as_bool(params.get("drop_pending_updates", False)):
            self._updates.clear()
        if url:
            self._webhook_paused_until = 0.0
            self._pusher = asyncio.create_task(self._push_updates(), name="emulator-webhook")
        self._notify()
        return True

    async def _api_delete_webhook(self, params: JSONDict) -> bool:
        """deleteWebhook: pushing stops; queued updates stay for getUpdates unless dropped."""
        await self._stop_pusher()
        self.webhook_url = ""
        self.webhook_secret = None
        if _as_bool(params.get("drop_pending_updates", False)):
            self._updates.clear()
        self._notify()
        return True

    async def _api_get_webhook_info(self, params: JSONDict) -> JSONDict:
        """getWebhookInfo."""
        info: JSONDict = {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook_url:
            info["max_connections"] = self.webhook_max_connections
            info["ip_address"] = "127.0.0.1"
            if self.webhook_allowed_updates is not None:
                info["allowed_updates"] = list(self.webhook_allowed_updates)
        if self.webhook_last_error is not None:
            info["last_error_date"], info["last_error_message"] = self.webhook_last_error
        return info

    # ---------------------------------------------------------------- webhook push

    async def _stop_pusher(self) -> None:
        """Stop pushing updates (in-flight deliveries are abandoned; their updates stay queued)."""
        pusher, self._pusher = self._pusher, None
        self._webhook_generation += 1  # the pusher's loop sees it and ends (a cancel may be lost)
        self._notify()
        if pusher is not None and not pusher.done():
            with contextlib.suppress(asyncio.CancelledError):
                await pusher

    def _webhook_wanted(self, update: JSONDict) -> bool:
        """Whether the webhook's allowed_updates let this update through."""
        allowed = self.webhook_allowed_updates
        return allowed is None or any(key in allowed for key in update if key != "update_id")

    async def _push_updates(self) -> None:
        """POST queued updates to the webhook in update_id order, at most max_connections at
        once; an update leaves the queue only on a 2xx answer. After a failure (another status,
        no connection, no answer within webhook_timeout) nothing is pushed for webhook_backoff
        seconds, then the queue is pushed again from its oldest update."""
        loop = asyncio.get_running_loop()
        generation = self._webhook_generation
        in_flight: dict[int, asyncio.Task[None]] = {}
        headers = {"Content-Type": "application/json"}
        if self.webhook_secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook_secret
        url = self.webhook_url
        connector = aiohttp.TCPConnector(limit=0)
        session = aiohttp.ClientSession(connector=connector, headers=headers)

        def waiting() -> list[JSONDict]:
            # Updates the webhook does not take are dropped, as Telegram never sends them.
            unwanted = [u for u in self._updates if not self._webhook_wanted(u)]
            for update in unwanted:
                self._updates.remove(update)
            return [u for u in self._updates if u["update_id"] not in in_flight]

        def over() -> bool:
            return self._closing or generation != self._webhook_generation

        def work() -> bool:
            if over():
                return True
            if loop.time() < self._webhook_paused_until:
                return False
            return bool(waiting()) and len(in_flight) < self.webhook_max_connections

        try:
            while not over():
                paused_until = self._webhook_paused_until
                pause = paused_until - loop.time()
                # A failure that starts a new pause ends the wait, so its end is waited for.
                await self._wait_for(
                    lambda until=paused_until: work() or self._webhook_paused_until != until,  # type: ignore[misc]
                    pause if pause > 0 else 3600.0,
                )
                if over():
                    break
                if loop.time() < self._webhook_paused_until:
                    continue
                for update in waiting():
                    if len(in_flight) >= self.webhook_max_connections:
                        break
                    uid = int(update["update_id"])
                    task = asyncio.create_task(self._deliver(session, url, update))
                    in_flight[uid] = task
                    task.add_done_callback(functools.partial(self._delivered, in_flight, uid))
        finally:
            for task in list(in_flight.values()):
                task.cancel()
            await asyncio.gather(*in_flight.values(), return_exceptions=True)
            await session.close()

    def _delivered(
        self, in_flight: dict[int, asyncio.Task[None]], update_id: int, _task: asyncio.Task[None]
    ) -> None:
        """A delivery ended (whatever its outcome): room for the next one."""
        in_flight.pop(update_id, None)
        self._notify()

    async def _deliver(self, session: aiohttp.ClientSession, url: str, update: JSONDict) -> None:
        """POST one update; drop it from the queue on 2xx, else note the error and back off."""
        uid = int(update["update_id"])
        body = json.dumps(update, ensure_ascii=False).encode()
        timeout = aiohttp.ClientTimeout(total=self.webhook_timeout)
        error: str | None = None
        status = 0
        try:
            async with session.post(url, data=body, timeout=timeout) as response:
                status = response.status
                await response.read()
                if not 200 <= status < 300:
                    error = f"Wrong response from the webhook: {status} {response.reason}"
        except TimeoutError:
            error = "Read timeout expired"
        except aiohttp.ClientError as exc:
            error = f"Connection failed: {type(exc).__name__}"
        self.webhook_deliveries.append((uid, status))
        if error is None:
            self._updates = [u for u in self._updates if u["update_id"] != uid]
        else:
            self.webhook_last_error = (int(time.time()), error)
            loop = asyncio.get_running_loop()
            self._webhook_paused_until = max(self._webhook_paused_until, loop.time() + self.webhook_backoff)

    async def _api_set_my_commands(self, params: JSONDict) -> bool:
        """setMyCommands with Telegram's command validation."""
        commands = _maybe_json(params.get("commands"))
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad("can't parse commands JSON object")
        for cmd in commands:
            if not isinstance(cmd, dict) or not _COMMAND_NAME_RE.match(str(cmd.get("command"))):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(cmd.get("description") or "")) <= 256:
                raise _bad("command description must be non-empty")
        key = self._commands_key(params.get("scope"), params.get("language_code"))
        self.commands[key] = [{"command": c["command"], "description": c["description"]} for c in commands]
        return True

    async def _api_get_my_commands(self, params: JSONDict) -> list[JSONDict]:
        """getMyCommands."""
        key = self._commands_key(params.get("scope"), params.get("language_code"))
        return copy.deepcopy(self.commands.get(key, []))

    async def _api_delete_my_commands(self, params: JSONDict) -> bool:
        """deleteMyCommands."""
        self.commands.pop(self._commands_key(params.get("scope"), params.get("language_code")), None)
        return True

    async def _api_set_chat_menu_button(self, params: JSONDict) -> bool:
        """setChatMenuButton (per chat or default)."""
        cid = _as_int(params.get("chat_id"))
        if cid is not None and cid not in self._chats:
            raise _bad("chat not found")
        button = _maybe_json(params.get("menu_button")) or {"type": "default"}
        if not isinstance(button, dict) or "type" not in button:
            raise _bad("can't parse menu button JSON object")
        self.menu_buttons[cid] = button
        return True

    async def _api_get_chat_menu_button(self, params: JSONDict) -> JSONDict:
        """getChatMenuButton."""
        cid = _as_int(params.get("chat_id"))
        button = self.menu_buttons.get(cid) or self.menu_buttons.get(None)
        return copy.deepcopy(button or {"type": "commands"})

    def _api_set_bot_text(self, kind: str) -> Callable[[JSONDict], Awaitable[bool]]:
        """Build setMyDescription / setMyShortDescription / setMyName."""

        async def handler(params: JSONDict) -> bool:
            self.bot_texts[(kind, str(params.get("language_code") or ""))] = str(params.get(kind) or "")
            return True

        return handler

    def _api_get_bot_text(self, kind: str) -> Callable[[JSONDict], Awaitable[JSONDict]]:
        """Build getMyDescription / getMyShortDescription / getMyName."""

        async def handler(params: JSONDict) -> JSONDict:
            lang = str(params.get("language_code") or "")
            default = self.bot_name if kind == "name" else ""
            return {kind: self.bot_texts.get((kind, lang), default)}

        return handler

    async def _api_get_chat(self, params: JSONDict) -> JSONDict:
        """getChat (a minimal ChatFullInfo)."""
        state = self._target_chat(params, check_blocked=False)
        return {**state.api, "accent_color_id": 0, "max_reaction_count": 11}

    async def _api_send_message(self, params: JSONDict) -> JSONDict:
        """sendMessage."""
        state = self._target_chat(params)
        text, entities = self._format(
            params.get("text"), params.get("parse_mode"), params.get("entities"), caption=False
        )
        markup = self._markup(params)
        msg = self._bot_message(state, "sendMessage", params, text=text, entities=entities, markup=markup)
        return msg.to_api()

    def _media_sender(self, method: str) -> Callable[[JSONDict], Awaitable[JSONDict]]:
        """Build sendPhoto / sendDocument / sendVoice / ... handlers."""
        key, folder, ext, default_mime = _MEDIA_METHODS[method]

        async def handler(params: JSONDict) -> JSONDict:
            state = self._target_chat(params)
            media = params.get(key)
            if media is None or media == "":
                raise _bad(f"there is no {key} in the request")
            filename: str | None = None
            mime = default_mime
            if isinstance(media, UploadedFile):
                filename = media.filename
                if media.content_type and media.content_type != "application/octet-stream":
                    mime = media.content_type
                suffix = filename.rsplit(".", 1)[-1] if filename and "." in filename else ext
                stored = self._store_file(media.data, folder, suffix)
            elif isinstance(media, str) and media in self._files:
                stored = self._files[media]
            elif isinstance(media, str) and re.match(r"^https?://", media):
                filename = media.rsplit("/", 1)[-1] or None
                stored = self._store_file(b"", folder, ext)
            else:
                raise _bad("wrong file identifier/HTTP URL specified")
            caption, entities = self._format(
                params.get("caption"),
                params.get("parse_mode"),
                params.get("caption_entities"),
                caption=True,
            )
            markup = self._markup(params)
            obj: Any
            if key == "photo":
                obj = [
                    self._file_obj(self._store_file(stored.data, folder, ext), width=90, height=90),
                    self._file_obj(stored, width=1280, height=1280),
                ]
            elif key == "sticker":
                obj = self._file_obj(
                    stored,
                    type="regular",
                    width=512,
                    height=512,
                    is_animated=False,
                    is_video=False,
                )
            else:
                obj = self._file_obj(stored, mime_type=mime)
                if key in ("document", "audio", "animation"):
                    obj["file_name"] = filename or stored.file_path.rsplit("/", 1)[-1]
                if key in ("voice", "audio", "video", "animation"):
                    obj["duration"] = _as_int(params.get("duration")) or 0
                if key in ("video", "animation"):
                    obj["width"] = _as_int(params.get("width")) or 640
                    obj["height"] = _as_int(params.get("height")) or 480
            msg = self._bot_message(
                state,
                method,
                params,
                caption=caption,
                entities=entities,
                markup=markup,
                content={key: obj},
                file_data=stored.data,
            )
            return msg.to_api()

        return handler

    async def _api_edit_message_text(self, params: JSONDict) -> JSONDict:
        """editMessageText (omitting reply_markup removes the inline keyboard, as on Telegram)."""
        state, msg = self._edit_target(params)
        if msg.text is None:
            raise _bad("there is no text in the message to edit")
        text, entities = self._format(
            params.get("text"), params.get("parse_mode"), params.get("entities"), caption=False
        )
        markup = self._markup(params, inline_only=True)
        current = msg.reply_markup if msg.inline_keyboard else None
        if text == msg.text and entities == msg.entities and markup == current:
            raise _bad(_MSG_NOT_MODIFIED)
        keep = msg.reply_markup if markup is None and not msg.inline_keyboard else markup
        return self._apply_edit(state, msg, text=text, entities=entities, reply_markup=keep)

    async def _api_edit_message_caption(self, params: JSONDict) -> JSONDict:
        """editMessageCaption."""
        state, msg = self._edit_target(params)
        if not msg.content:
            raise _bad("there is no caption in the message to edit")
        caption, entities = self._format(
            params.get("caption"),
            params.get("parse_mode"),
            params.get("caption_entities"),
            caption=True,
        )
        markup = self._markup(params, inline_only=True)
        current = msg.reply_markup if msg.inline_keyboard else None
        if caption == msg.caption and entities == msg.entities and markup == current:
            raise _bad(_MSG_NOT_MODIFIED)
        keep = msg.reply_markup if markup is None and not msg.inline_keyboard else markup
        return self._apply_edit(state, msg, caption=caption, entities=entities, reply_markup=keep)

    async def _api_edit_message_reply_markup(self, params: JSONDict) -> JSONDict:
        """editMessageReplyMarkup."""
        state, msg = self._edit_target(params)
        markup = self._markup(params, inline_only=True)
        current = msg.reply_markup if msg.inline_keyboard else None
        if markup == current:
            raise _bad(_MSG_NOT_MODIFIED)
        keep = msg.reply_markup if markup is None and not msg.inline_keyboard else markup
        return self._apply_edit(state, msg, reply_markup=keep)

    async def _api_delete_message(self, params: JSONDict) -> bool:
        """deleteMessage (bot messages and incoming messages of the chat)."""
        state = self._target_chat(params, check_blocked=False)
        mid = _as_int(params.get("message_id"))
        msg = state.messages.get(mid) if mid is not None else None
        if msg is None or msg.deleted:
            raise _bad("message to delete not found")
        msg.deleted = True
        state.log.append(f"#{msg.message_id} deleted by bot")
        return True

    async def _api_answer_callback_query(self, params: JSONDict) -> bool:
        """answerCallbackQuery (each query can be answered once)."""
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._queries or query_id in self._answered:
            raise _bad(_QUERY_INVALID)
        text = params.get("text")
        if text is not None and len(str(text)) > 200:
            raise _bad("MESSAGE_TOO_LONG")
        self._answered.add(query_id)
        answer: JSONDict = {
            "callback_query_id": query_id,
            "text": text,
            "show_alert": _as_bool(params.get("show_alert", False)),
        }
        for key in ("url", "cache_time"):
            if key in params:
                answer[key] = params[key]
        self.callback_answers.append(answer)
        state = self._chats.get(self._queries[query_id])
        if state is not None:
            alert = " (alert)" if answer["show_alert"] else ""
            state.log.append(f"bot answered callback: {text!r}{alert}")
        return True

    async def _api_send_chat_action(self, params: JSONDict) -> bool:
        """sendChatAction."""
        state = self._target_chat(params)
        action = str(params.get("action") or "")
        if action not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        self.chat_actions.append((state.id, action))
        state.log.append(f"bot action: {action}")
        return True

    async def _api_get_file(self, params: JSONDict) -> JSONDict:
        """getFile."""
        stored = self._files.get(str(params.get("file_id") or ""))
        if stored is None:
            raise _bad("invalid file_id")
        if len(stored.data) > MAX_DOWNLOAD_SIZE:
            raise _bad("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }
