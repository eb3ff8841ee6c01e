"""What keeps the public pages safe: CSRF tokens, submission limits, size limits, headers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web

from domain.ports import Clock

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


def set_csrf_cookie(response: web.StreamResponse, value: str, *, secure: bool) -> None:
    response.set_cookie(
        CSRF_COOKIE, value, httponly=True, samesite="Lax", secure=secure, path="/", max_age=12 * 3600
    )


# --- how often -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    times: int
    per: timedelta


class Limiter:
    """At most `limit.times` events per key in any window of `limit.per`, kept in memory.

    In memory on purpose: the web server is one process, the counts protect the cadres from
    floods rather than keep records, and a restart forgetting them costs nothing. Keys are
    forgotten once their window has passed, and at most `max_keys` are held.
    """

    def __init__(self, clock: Clock, limit: Limit, max_keys: int = 50_000) -> None:
        self.clock = clock
        self.limit = limit
        self.max_keys = max_keys
        self._seen: dict[str, deque[datetime]] = {}

    def _recent(self, key: str) -> deque[datetime]:
        since = self.clock.now() - self.limit.per
        times = self._seen.get(key, deque())
        while times and times[0] <= since:
            times.popleft()
        return times

    def allowed(self, key: str) -> bool:
        """Whether one more event for `key` stays within the limit (nothing is counted)."""
        return len(self._recent(key)) < self.limit.times

    def hit(self, key: str) -> None:
        times = self._recent(key)
        times.append(self.clock.now())
        self._seen[key] = times
        if len(self._seen) > self.max_keys:
            for old in list(self._seen)[: len(self._seen) // 10]:
                del self._seen[old]


@dataclass(frozen=True)
class Limits:
    """The submission limits; see docs/README-web.md for why these numbers."""

    per_address: Limit = Limit(5, timedelta(hours=1))
    per_phone: Limit = Limit(3, timedelta(days=1))
    per_cadre: Limit = Limit(30, timedelta(hours=1))
    lookups_per_address: Limit = Limit(20, timedelta(hours=1))
    posts_per_address: Limit = Limit(60, timedelta(hours=1))


# --- headers ---------------------------------------------------------------------------------


def security_headers(style_hash: str) -> dict[str, str]:
    """The headers of every public page; the one inline style sheet is allowed by its hash."""
    return {
        "Content-Security-Policy": (
            f"default-src 'self'; style-src 'sha256-{style_hash}'; img-src 'self' data:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }
