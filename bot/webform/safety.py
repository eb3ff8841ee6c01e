"""What keeps the public pages safe: CSRF tokens, submission limits, size limits, headers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web

from domain.ports import Clock, UnitOfWork

CSRF_COOKIE = "fh_csrf"
CSRF_FIELD = "csrf"
MAX_PHOTO = 3 * 1024 * 1024  # bytes per photo: a phone's photo, JPEG at full size, is 2-4 MB
MAX_PHOTOS = 5
MAX_TEXT_PART = 4 * 1024  # bytes of any text field (1000 Chinese characters in UTF-8 is 3000)
MAX_TEXT_BODY = 64 * 1024  # a form without photos: its fields, URL-encoded (a Chinese character is 9)
MAX_BODY = MAX_PHOTOS * MAX_PHOTO + MAX_TEXT_BODY  # the whole form; aiohttp's client_max_size
MAX_PARTS = 100  # of a multipart form (ours has about 30); 300 000 empty ones take a minute to parse
# Images a phone sends, told by their first bytes (not by the name or type the browser claims).
IMAGE_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)


def image_type(data: bytes) -> str | None:
    """The image type of `data` from its first bytes: JPEG, PNG, WebP or HEIC; else None."""
    for magic, kind in IMAGE_MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1", b"msf1"):
        return "image/heic"
    return None


# --- CSRF: a random cookie, and in each form an HMAC of it and the page's path ----------------


def csrf_cookie(request: web.Request) -> tuple[str, bool]:
    """The client's CSRF cookie value, and whether it is new (must be set on the response)."""
    current = request.cookies.get(CSRF_COOKIE, "")
    if 16 <= len(current) <= 64 and current.replace("-", "").replace("_", "").isalnum():
        return current, False
    return secrets.token_urlsafe(18), True


def csrf_token(secret: bytes, cookie: str, scope: str) -> str:
    mac = hmac.new(secret, f"csrf|{cookie}|{scope}".encode(), hashlib.sha256).digest()[:18]
    return base64.urlsafe_b64encode(mac).decode("ascii")


def csrf_ok(secret: bytes, request: web.Request, sent: str, scope: str) -> bool:
    """Whether the form's token matches this client's cookie and this page (double submit)."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not sent:
        return False
    return hmac.compare_digest(csrf_token(secret, cookie, scope), sent)


def receipt_token(secret: bytes, receipt: str) -> str:
    """The address of a receipt page: the number and its HMAC, so pages cannot be guessed."""
    mac = hmac.new(secret, f"receipt|{receipt}".encode(), hashlib.sha256).hexdigest()[:20]
    return f"{receipt}-{mac}"


def receipt_of(secret: bytes, token: str) -> str | None:
    """The receipt number a receipt page's token names, or None when forged."""
    receipt, _, _ = token.partition("-")
    return receipt if receipt and hmac.compare_digest(receipt_token(secret, receipt), token) else None


# --- the status page's objection form: the receipt and the phone proven there, signed -----------------

OBJECTION_MINUTES = 30  # time to write an objection after looking the case up
OBJECTION_TOKEN = re.compile(r"([0-9]{1,20})\.([0-9]{1,12})\.([0-9a-f]{32})")


def _objection_mac(secret: bytes, receipt: str, phone: str, until: int) -> str:
    return hmac.new(secret, f"objection|{receipt}|{phone}|{until}".encode(), hashlib.sha256).hexdigest()[:32]


def objection_token(secret: bytes, receipt: str, phone: str, now: datetime) -> str:
    """What the objection form carries instead of the phone number: the receipt number, an expiry
    and an HMAC of both with the phone number (E.164) the status page was given."""
    until = int((now + timedelta(minutes=OBJECTION_MINUTES)).timestamp())
    return f"{receipt}.{until}.{_objection_mac(secret, receipt, phone, until)}"


def objection_proof(secret: bytes, token: str, now: datetime) -> tuple[str, Callable[[str], bool]] | None:
    """The receipt number an objection form names, and the check of a declaration's phone number
    against it (the lookup is redone with it); None when the token is malformed or expired."""
    found = OBJECTION_TOKEN.fullmatch(token)
    if found is None:
        return None
    receipt, until, mac = found[1], int(found[2]), found[3]
    if until < now.timestamp():
        return None
    return receipt, lambda phone: hmac.compare_digest(_objection_mac(secret, receipt, phone, until), mac)


def set_csrf_cookie(response: web.StreamResponse, value: str, *, secure: bool) -> None:
    response.set_cookie(
        CSRF_COOKIE, value, httponly=True, samesite="Lax", secure=secure, path="/", max_age=12 * 3600
    )


# --- how often -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    times: int
    per: timedelta


class Counters:
    """The submission limits, counted in the database (`rate_limits`), so that every worker behind
    the load balancer counts the same submissions: a second worker allows no more than one.

    Fixed windows that start at a key's first event (`uow.limits.hit`). Keys hold no address or
    phone number in clear: an HMAC of it under the service's secret (a phone number's plain hash
    is found by trying them all). A refused attempt costs nothing: when one limit is passed,
    nothing is counted.
    """

    def __init__(self, uow: Callable[[], UnitOfWork], clock: Clock, secret: bytes, limits: Limits) -> None:
        self.uow = uow
        self.clock = clock
        self.secret = secret
        self.limits = limits

    def key(self, limit: str, value: str) -> str:
        digest = hmac.new(self.secret, f"web-limit|{value}".encode(), hashlib.sha256).hexdigest()[:32]
        return f"web:{limit}:{digest}"

    async def allow(self, **events: str) -> bool:
        """Count one event under each named limit (a field of `Limits`, e.g. `per_phone=phone`):
        True when every one stays within its limit, and then all are counted; else none is."""
        chosen = [(getattr(self.limits, limit), self.key(limit, value)) for limit, value in events.items()]
        now = self.clock.now()
        async with self.uow() as uow:
            for limit, key in chosen:
                if not await uow.limits.hit(key, limit=limit.times, window=limit.per, now=now):
                    await uow.rollback()
                    return False
            await uow.commit()
        return True


@dataclass(frozen=True)
class Limits:
    """The submission limits; see docs/README-web.md for why these numbers."""

    per_address: Limit = Limit(5, timedelta(hours=1))
    per_phone: Limit = Limit(3, timedelta(days=1))
    per_cadre: Limit = Limit(30, timedelta(hours=1))
    lookups_per_address: Limit = Limit(20, timedelta(hours=1))
    posts_per_address: Limit = Limit(60, timedelta(hours=1))


# --- headers ---------------------------------------------------------------------------------


def security_headers() -> dict[str, str]:
    """The headers of every public page: styles come from the site's own style sheet (/static/),
    and no inline style or script is allowed."""
    return {
        "Content-Security-Policy": (
            "default-src 'self'; style-src 'self'; img-src 'self' data:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }
