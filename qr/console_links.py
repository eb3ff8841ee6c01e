"""The console's one-time sign-in links: a random token (its hash kept in the database) and an
HMAC of it, so a forged link is refused before anything is looked up."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

# token_urlsafe(24) is 32 characters; the signature 22.
SIGNED = re.compile(r"(?P<token>[A-Za-z0-9_-]{16,64})\.(?P<sig>[A-Za-z0-9_-]{22})")


def _signature(secret: bytes, token: str) -> str:
    # A purpose prefix keeps these signatures apart from the village payloads' and 代报 links'.
    mac = hmac.new(secret, b"console-login:" + token.encode("ascii"), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


def sign_login(secret: bytes, token: str) -> str:
    """What the link carries: the token and its signature."""
    return f"{token}.{_signature(secret, token)}"


def verify_login(secret: bytes, signed: str) -> str | None:
    """The token a link carries, or None when it is malformed or not signed by us."""
    found = SIGNED.fullmatch(signed[:100])
    if found is None:
        return None
    token = found["token"]
    return token if hmac.compare_digest(_signature(secret, token), found["sig"]) else None
