"""Telegram deep links and QR images of them."""

from __future__ import annotations

import io

import qrcode
from qrcode.constants import ERROR_CORRECT_M
from telegram.helpers import create_deep_linked_url


def deep_link(bot_username: str, payload: str) -> str:
    """``https://t.me/<bot>?start=<payload>`` (PTB checks the payload's characters and length)."""
    return create_deep_linked_url(bot_username, payload)


def qr_png(link: str, *, box_size: int = 10) -> bytes:
    """A PNG of the QR code for `link`, with the quiet zone scanners need."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=box_size, border=4)
    code.add_data(link)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image().save(buffer)
    return buffer.getvalue()


def landing_url(public_url: str, payload: str) -> str:
    """The landing page for a village payload: it offers Telegram and the web form."""
    return f"{public_url.rstrip('/')}/q/{payload}"


def flyer_link(payload: str, *, bot_username: str, public_url: str | None, to_landing: bool) -> str:
    """What the printed QR code encodes: the landing page when chosen, else the deep link."""
    if to_landing:
        if public_url is None:
            raise ValueError("a landing page needs PUBLIC_URL")
        return landing_url(public_url, payload)
    return deep_link(bot_username, payload)
