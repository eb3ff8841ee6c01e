"""What both SMS adapters share on the wire: one signed POST and what can go wrong with it, the
number as the providers write it, and Beijing time (the providers' clock)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from yarl import URL

from bot.sms.port import Answer, Outcome

BEIJING = ZoneInfo("Asia/Shanghai")


class Unsent(Exception):
    """The request never reached the provider (no connection): nothing can have been sent."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class NoAnswer(Exception):
    """The request went, no answer came (a time-out, a dropped connection): it may have been taken."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def mainland(phone: str) -> str:
    """An 11-digit mainland number from what a provider or a caller gives (+86..., 86..., spaces)."""
    digits = re.sub(r"[\s-]", "", phone).removeprefix("+")
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits


async def post(
    session: aiohttp.ClientSession,
    url: str | URL,
    *,
    data: Any,
    headers: Mapping[str, str] | None = None,
    timeout: float,
) -> tuple[int, bytes]:
    """POST; (HTTP status, body). Raises Unsent when the request never reached the provider,
    NoAnswer when it may have and no answer came."""
    try:
        async with session.post(
            url, data=data, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            return response.status, await response.read()
    except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
        raise Unsent(type(exc).__name__) from None
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise NoAnswer("timeout" if isinstance(exc, TimeoutError) else type(exc).__name__) from None


def unanswered(log: logging.Logger, provider: str, exc: Unsent | NoAnswer) -> Answer:
    """A send that got no answer: retry; after NoAnswer only once the provider was asked for it."""
    if isinstance(exc, Unsent):
        log.warning("sms %s SendSms: %s (not sent; retry)", provider, exc.code)
        return Answer(Outcome.RETRY, code=exc.code, message="the provider could not be reached")
    log.warning("sms %s SendSms: %s after sending (retry after asking)", provider, exc.code)
    return Answer(Outcome.RETRY, code=exc.code, message="no answer in time", uncertain=True)


def pushed_receipts(body: bytes, phone_key: str) -> list[dict[str, Any]]:
    """A status callback's body: a JSON array of receipts, each naming its number under
    `phone_key`; ValueError for anything else."""
    try:
        items = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("not JSON") from exc
    if not isinstance(items, list):
        raise ValueError("not a JSON array of receipts")
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get(phone_key), str):
            raise ValueError(f"a receipt without a {phone_key}")
    return items
