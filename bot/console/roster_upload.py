"""A roster sheet uploaded to the console: read within bounds, and kept between the preview and
the confirmation in the page itself, signed.

Why in the page: the browser that sent the file holds it anyway, so sending its rows back (zlib,
base64, an HMAC of the service's secret over the rows, the session, the person and the time) keeps
nothing with names and phone numbers on the server: no table to clean, nothing lost on a restart or
on another worker. The signature makes a changed or forged copy, one from another session or
person, or one older than `KEPT_FOR`, worth nothing; and what it carries is checked again in full
before anything is written.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import json
import zipfile
import zlib
from datetime import datetime, timedelta

from bot.roster_file import UnreadableFile, rows_of

MAX_BYTES = 1024 * 1024  # a township's roster is a few hundred lines: tens of kilobytes
MAX_UNPACKED = 32 * 1024 * 1024  # what an .xlsx (a zip) may unpack to, all its parts together
MAX_LINES = 2000  # the header included
MAX_COLUMNS = 20
MAX_CELL = 200  # characters
KEPT_FOR = timedelta(minutes=30)
MAX_KEPT = 4 * 1024 * 1024  # characters of the kept copy sent back (it is made from at most MAX_LINES)
KEPT_PURPOSE = b"console-roster-kept:"

Lines = list[tuple[int, list[str]]]


class Refused(Exception):
    """The file cannot be read as a roster; `key` says why (a catalog key, with `params`)."""

    def __init__(self, key: str, params: dict[str, object] | None = None) -> None:
        super().__init__(key)
        self.key = key
        self.params = params or {}


def _is_xlsx(data: bytes) -> bool:
    return data.startswith(b"PK\x03\x04")


def _check_zip(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError):
        raise Refused("console.roster_unreadable") from None
    if unpacked > MAX_UNPACKED:
        raise Refused("console.roster_too_big", {"kb": MAX_BYTES // 1024})


def read(data: bytes) -> Lines:
    """The numbered rows of an uploaded CSV (UTF-8) or .xlsx, told by its first bytes, not its name;
    `Refused` for a file too big, too long, too wide in a cell, or not a sheet we read."""
    if not data:
        raise Refused("console.roster_no_file")
    if len(data) > MAX_BYTES:
        raise Refused("console.roster_too_big", {"kb": MAX_BYTES // 1024})
    xlsx = _is_xlsx(data)
    if xlsx:
        _check_zip(data)
    lines: Lines = []
    rows = rows_of(data, xlsx=xlsx, name="upload", max_columns=MAX_COLUMNS)
    try:
        for number, cells in rows:
            if len(lines) == MAX_LINES:
                raise Refused("console.roster_too_long", {"lines": MAX_LINES})
            cells = cells[:MAX_COLUMNS]
            if any(len(cell) > MAX_CELL for cell in cells):
                raise Refused("console.roster_cell_too_long", {"line": number, "chars": MAX_CELL})
            while cells and not cells[-1].strip():
                cells.pop()
            if cells or not lines:
                lines.append((number, cells))
    except Refused:
        raise
    except UnreadableFile:
        key = "console.roster_unreadable" if xlsx else "console.roster_not_unicode"
        raise Refused(key) from None
    except Exception:  # a broken part of an .xlsx shows itself only when it is read
        raise Refused("console.roster_unreadable") from None
    finally:
        rows.close()  # and the workbook with it
    return lines


def _mac(secret: bytes, session: str, person_id: int, body: str) -> str:
    message = b"%s%s:%d:%s" % (
        KEPT_PURPOSE,
        hashlib.sha256(session.encode()).digest(),
        person_id,
        body.encode(),
    )
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def keep(secret: bytes, session: str, person_id: int, lines: Lines, fingerprint: str, now: datetime) -> str:
    """The rows (and the fingerprint of the changes shown) as a signed text for a hidden field."""
    payload = {"at": int(now.timestamp()), "shown": fingerprint, "lines": lines}
    packed = zlib.compress(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode(), 9)
    body = base64.urlsafe_b64encode(packed).decode("ascii")
    return f"{body}.{_mac(secret, session, person_id, body)}"


def _lines(raw: object) -> Lines | None:
    if not isinstance(raw, list) or len(raw) > MAX_LINES:
        return None
    out: Lines = []
    for item in raw:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], int)):
            return None
        number, cells = item
        if not (isinstance(cells, list) and len(cells) <= MAX_COLUMNS):
            return None
        if not all(isinstance(c, str) and len(c) <= MAX_CELL for c in cells):
            return None
        out.append((number, cells))
    return out


def unkeep(secret: bytes, session: str, person_id: int, kept: str, now: datetime) -> tuple[Lines, str] | None:
    """The rows and the fingerprint a `keep` of this session and person made less than `KEPT_FOR`
    ago; None for anything else."""
    if len(kept) > MAX_KEPT or kept.count(".") != 1:
        return None
    body, mac = kept.split(".")
    if not hmac.compare_digest(mac, _mac(secret, session, person_id, body)):
        return None
    try:
        inflate = zlib.decompressobj()
        text = inflate.decompress(base64.urlsafe_b64decode(body), MAX_KEPT * 4)
        payload = json.loads(text)
    except (binascii.Error, zlib.error, ValueError):
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("at"), int):
        return None
    try:
        made = datetime.fromtimestamp(payload["at"], now.tzinfo)
    except (OverflowError, OSError, ValueError):
        return None
    if not now - KEPT_FOR <= made <= now + timedelta(minutes=1):
        return None
    lines, shown = _lines(payload.get("lines")), payload.get("shown")
    if lines is None or not isinstance(shown, str):
        return None
    return lines, shown
