"""Spreadsheets for the township: rows with headers in the reader's language.

Every string goes into the sheet as a text cell (`text_row`): a description that begins with
`=`, `+`, `-` or `@` is what the household wrote, never a formula for the reader's Excel.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, tzinfo
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.worksheet.worksheet import Worksheet

from domain.export import ID_UNREADABLE
from domain.model import DeclarationStatus, Verdict
from locales import gettext

MAX_TITLE = 31  # Excel's limit, counted in UTF-16 code units
# Characters Excel refuses in a sheet title, each replaced by its full-width twin (still readable).
TITLE_REPLACEMENTS = str.maketrans(
    {"/": "／", "\\": "＼", "?": "？", "*": "＊", ":": "：", "[": "［", "]": "］"}
)
RESERVED_TITLES = {"history"}  # Excel keeps this one for itself


def text_row(sheet: Worksheet, values: Iterable[object]) -> None:
    """Append a row in which every str is a text cell (never a formula); other values stay typed."""
    row: list[object] = []
    for value in values:
        if isinstance(value, str):
            # Control characters make openpyxl refuse the whole sheet; they carry nothing a reader needs.
            # XML reads a lone carriage return as a newline: write the newline, so the cell reads back
            # exactly as written.
            clean = ILLEGAL_CHARACTERS_RE.sub("", value).replace("\r\n", "\n").replace("\r", "\n")
            cell = Cell(sheet, value=clean)
            cell.data_type = "s"  # not "f" for "=...", not "e" for "#N/A"
            row.append(cell)
        else:
            row.append(value)
    sheet.append(row)


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _cut(text: str, limit: int) -> str:
    while _units(text) > limit:
        text = text[:-1]
    return text


def sheet_title(name: str, taken: Collection[str] = (), fallback: str = "Sheet") -> str:
    """`name` as Excel allows a sheet title: no / \\ ? * : [ ], at most 31 characters, not empty,
    no apostrophe at either end, and unlike every title in `taken` (Excel ignores case)."""
    clean = ILLEGAL_CHARACTERS_RE.sub("", name.translate(TITLE_REPLACEMENTS))
    clean = _cut(" ".join(clean.split()), MAX_TITLE).strip(" '")
    if not clean or clean.casefold() in RESERVED_TITLES:
        clean = _cut(fallback.translate(TITLE_REPLACEMENTS), MAX_TITLE).strip(" '") or "Sheet"
    used = {t.casefold() for t in taken}
    title, number = clean, 1
    while title.casefold() in used:
        number += 1
        suffix = f" ({number})"
        title = _cut(clean, MAX_TITLE - len(suffix)).rstrip(" '") + suffix
    return title


def cases_workbook(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], catalog: str, zone: tzinfo
) -> bytes:
    """An .xlsx of the exported cases: one header row, one row per declaration."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = sheet_title(gettext(catalog, "export.sheet"))
    text_row(sheet, [gettext(catalog, f"export.{column}") for column in columns])
    statuses = {s.value: gettext(catalog, f"state.{s.value}") for s in DeclarationStatus}
    verdicts = {v.value: gettext(catalog, f"verdict.{v.value}") for v in Verdict}
    for row in rows:
        values = []
        for column in columns:
            value = row.get(column, "")
            if column == "status":
                value = statuses.get(value, value)
            elif column == "verdict":
                value = verdicts.get(value, value)
            elif column == "id_number" and value == ID_UNREADABLE:
                value = gettext(catalog, ID_UNREADABLE)
            elif isinstance(value, datetime):
                value = value.astimezone(zone).replace(tzinfo=None)
            values.append(value)
        text_row(sheet, values)
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
