"""Signed village payloads for the farmer QR code, within Telegram's 64-character start limit.

Shape: ``v<village code>_<expiry>[_b<batch>]_<signature>``, where expiry is the last valid day
as a count of days since 2000-01-01 in base 36, the optional batch names the printed batch of
flyers (so scans can be counted per village and batch), and the signature is the first 12 bytes
of an HMAC-SHA256 over the rest, base64url. Only letters, digits, ``_`` and ``-`` appear, as
Telegram requires; the longest payload is 50 characters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import date, timedelta

EPOCH = date(2000, 1, 1)
MAX_LENGTH = 64
VILLAGE_CODE = re.compile(r"^[A-Za-z0-9]{1,16}$")
BATCH = re.compile(r"^[A-Za-z0-9]{1,8}$")
PAYLOAD = re.compile(
    r"^v(?P<code>[A-Za-z0-9]{1,16})_(?P<exp>[0-9a-z]{1,5})(?:_b(?P<batch>[A-Za-z0-9]{1,8}))?"
    r"_(?P<sig>[A-Za-z0-9_-]{16})$"
)


class PayloadError(ValueError):
    """A payload that cannot be used; `reason` is "malformed", "forged" or "expired"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class VillagePayload:
    village_code: str
    valid_until: date
    batch: str | None = None


def _b36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if number == 0:
            return out


def _signature(secret: bytes, body: str) -> str:
    mac = hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(mac).decode("ascii")


def sign_village(secret: bytes, village_code: str, valid_until: date, batch: str | None = None) -> str:
    """The start payload naming `village_code`, valid through `valid_until` (inclusive), and
    the printed batch it comes from when given (1-8 letters or digits)."""
    if not VILLAGE_CODE.match(village_code):
        raise ValueError(f"village code must be 1-16 letters or digits: {village_code!r}")
    if batch is not None and not BATCH.match(batch):
        raise ValueError(f"batch must be 1-8 letters or digits: {batch!r}")
    if valid_until < EPOCH:
        raise ValueError("valid_until before 2000-01-01")
    body = f"v{village_code}_{_b36((valid_until - EPOCH).days)}"
    if batch is not None:
        body += f"_b{batch}"
    payload = f"{body}_{_signature(secret, body)}"
    assert len(payload) <= MAX_LENGTH
    return payload


def verify_village(secret: bytes, payload: str, today: date) -> VillagePayload:
    """The village a payload names, or `PayloadError` when it is malformed, forged or expired."""
    match = PAYLOAD.match(payload)
    if not match:
        raise PayloadError("malformed")
    body = f"v{match['code']}_{match['exp']}"
    if match["batch"] is not None:
        body += f"_b{match['batch']}"
    if not hmac.compare_digest(_signature(secret, body), match["sig"]):
        raise PayloadError("forged")
    try:
        valid_until = EPOCH + timedelta(days=int(match["exp"], 36))
    except OverflowError:  # past year 9999, signed by mistake: no code lasts that long
        raise PayloadError("malformed") from None
    if today > valid_until:
        raise PayloadError("expired")
    return VillagePayload(match["code"], valid_until, match["batch"])


def is_village_payload(payload: str) -> bool:
    return payload.startswith("v")
