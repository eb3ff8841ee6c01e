"""Logging: one format, and no secret or personal data in any record, at any level.

At DEBUG, python-telegram-bot logs every Bot API call with its parameters and its answer (message
texts, shared contacts) and httpx (used by libraries) every request URL; so these
libraries stay at INFO or WARNING outside the sandbox. And every record that reaches a root
handler, at any level and from any logger, is redacted first: the token, anything shaped like
`bot<digits>:<secret>`, and every mobile, landline and ID number as `domain.personal_data`
finds them (in the message, its arguments and a traceback).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote

from bot.settings import Settings
from domain import personal_data

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries that log every request, query or job run: at most this verbose, even at DEBUG,
# except in the sandbox at DEBUG (no real token, no real people), where they show everything.
# telegram.ext includes the bot's own logger (telegram.ext.ExtBot), which at DEBUG logs every
# Bot API call with its parameters and answer: names and descriptions too, which no pattern finds.
NOISY = {
    "httpx": logging.WARNING,  # every request URL at INFO, and Bot API URLs contain the token
    "httpcore": logging.WARNING,
    "aiohttp.client": logging.WARNING,  # the Bot API's client (bot/http.py): nothing per request today
    "telegram.ext": logging.INFO,
    "apscheduler": logging.WARNING,  # the JobQueue's scheduler: every run of every job at INFO
    "aiosqlite": logging.WARNING,
    "sqlalchemy.engine": logging.WARNING,  # every statement and its parameters at INFO
}
_TOKEN = re.compile(r"bot\d+(?::|%3A)[A-Za-z0-9_-]+|\b\d{5,}(?::|%3A)[A-Za-z0-9_-]{30,}")


class Redactor(logging.Filter):
    """Replaces secrets and phone and ID numbers in a record's message, arguments and traceback."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        known = {s for s in secrets if s} | {quote(s, safe="") for s in secrets if s}
        self.secrets = sorted(known, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[token]")
        return personal_data.redact(_TOKEN.sub("[token]", text))

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit: logging reports it as usual
            return True
        # The arguments are folded into the message: a handler formats what was redacted.
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def configure(settings: Settings, *, quiet_libraries: bool | None = None) -> Redactor:
    """Set up logging for LOG_LEVEL: the root handlers redact every record; noisy libraries are
    kept at INFO or WARNING (`quiet_libraries`; by default always but in the sandbox, which has
    no token, at DEBUG). Returns the filter, which is on every root handler."""
    level = logging.getLevelName(settings.log_level.upper())
    if not isinstance(level, int):
        level = logging.INFO
    logging.basicConfig(level=level, format=FORMAT)  # a no-op where handlers exist (pytest)
    root = logging.getLogger()
    token = settings.telegram_bot_token.get_secret_value().strip() if settings.telegram_bot_token else ""
    redactor = Redactor([token, token.partition(":")[2]] if token else [])
    for handler in root.handlers:
        for old in [f for f in handler.filters if isinstance(f, Redactor)]:
            handler.removeFilter(old)
        handler.addFilter(redactor)
    if quiet_libraries is None:  # the sandbox at DEBUG shows the Bot API traffic, redacted
        quiet_libraries = bool(token) or level > logging.DEBUG
    for name, quietest in NOISY.items():
        logging.getLogger(name).setLevel(max(level, quietest) if quiet_libraries else level)
    return redactor
