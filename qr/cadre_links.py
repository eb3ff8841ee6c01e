"""Short-lived signed links a village cadre opens to file on the web form for a household (代报)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from qr.payload import PayloadError

LINK_TTL = timedelta(hours=2)
# [0-9], not \d: \d also takes other scripts' digits, which the ASCII signature cannot encode.
TOKEN = re.compile(
    r"c(?P<person>[0-9]{1,12})_(?P<code>[A-Za-z0-9]{1,16})_(?P<exp>[0-9]{1,12})_(?P<sig>[A-Za-z0-9_-]{22})"
)


@dataclass(frozen=True)
class CadreLink:
    person_id: int
    village_code: str
    expires_at: datetime


def _signature(secret: bytes, body: str) -> str:
    # A purpose prefix keeps these signatures apart from village payload signatures.
    mac = hmac.new(secret, b"daibao:" + body.encode("ascii"), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


def sign_cadre_link(secret: bytes, person_id: int, village_code: str, now: datetime) -> str:
    """The token of a 代报 link for `person_id` and one of their villages, valid for LINK_TTL."""
    body = f"c{person_id}_{village_code}_{int((now + LINK_TTL).timestamp())}"
    return f"{body}_{_signature(secret, body)}"


def verify_cadre_link(secret: bytes, token: str, now: datetime) -> CadreLink:
    """Who may file for which village with this token; `PayloadError` if malformed, forged or expired."""
    match = TOKEN.fullmatch(token)
    if not match:
        raise PayloadError("malformed")
    body = f"c{match['person']}_{match['code']}_{match['exp']}"
    if not hmac.compare_digest(_signature(secret, body), match["sig"]):
        raise PayloadError("forged")
    try:
        expires_at = datetime.fromtimestamp(int(match["exp"]), tz=now.tzinfo)
    except (OverflowError, OSError, ValueError):  # past year 9999: not a time this service signed
        raise PayloadError("malformed") from None
    if now >= expires_at:
        raise PayloadError("expired")
    return CadreLink(int(match["person"]), match["code"], expires_at)
