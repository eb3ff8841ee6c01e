"""Spreadsheets for the township: rows with headers in the reader's language."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from openpyxl import Workbook

from domain.model import DeclarationStatus, Verdict
from locales import gettext


def cases_workbook(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], catalog: str, zone: tzinfo
) -> bytes:
    """An .xlsx of the exported cases: one header row, one row per declaration."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = gettext(catalog, "export.sheet")
    sheet.append([gettext(catalog, f"export.{column}") for column in columns])
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
            elif isinstance(value, datetime):
                value = value.astimezone(zone).replace(tzinfo=None)
            values.append(value)
        sheet.append(values)
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
