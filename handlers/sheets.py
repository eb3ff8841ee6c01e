"""Progress reports as an .xlsx sheet: one row per village and period, missing ones marked."""

from __future__ import annotations

import io

from openpyxl import Workbook

from domain.reports import Export
from handlers.xlsx import sheet_title, text_row
from locales import gettext

COLUMNS = (
    "report.col_period", "report.col_code", "report.col_village", "report.col_visited",
    "report.col_new_risks", "report.col_found", "report.col_closed", "report.col_note", "report.col_at",
)  # fmt: skip


def reports_xlsx(data: Export, catalog: str) -> bytes:
    """The sheet: header in the reader's language, then every period of every village."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = sheet_title(data.campaign, fallback="reports")
    text_row(sheet, [gettext(catalog, key) for key in COLUMNS])
    by_key = {(r.period, r.village_id): r for r in data.reports}
    for period in sorted({r.period for r in data.reports}):
        for village_id, code, name in data.villages:
            report = by_key.get((period, village_id))
            if report is None:
                text_row(
                    sheet,
                    [
                        period.isoformat(),
                        code,
                        name,
                        None,
                        None,
                        None,
                        None,
                        gettext(catalog, "report.missing"),
                    ],
                )
            else:
                text_row(
                    sheet,
                    [
                        period.isoformat(), code, name, report.visited, report.new_risks,
                        report.problems_found, report.problems_closed, report.note,
                        report.at.strftime("%Y-%m-%d %H:%M"),
                    ],
                )  # fmt: skip
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


LEDGER_COLUMNS = (
    "ledger.col_id", "ledger.col_village", "ledger.col_what", "ledger.col_measure", "ledger.col_deadline",
    "ledger.col_responsible", "ledger.col_status", "ledger.col_added", "ledger.col_closed",
)  # fmt: skip


def ledger_xlsx(rows: list[list[object]], catalog: str) -> bytes:
    """The problem ledger as a sheet (rows from domain.ledger.export_rows)."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = sheet_title(gettext(catalog, "ledger.sheet_title"), fallback="ledger")
    text_row(sheet, [gettext(catalog, key) for key in LEDGER_COLUMNS])
    for row in rows:
        text_row(sheet, row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
