"""Read a roster sheet (UTF-8 CSV or .xlsx) into numbered rows of text cells."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path


class UnreadableFile(Exception):
    pass


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone number typed into a number cell
    return str(value)


def read_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) for each row, the header first; line numbers as the file shows them."""
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        try:
            workbook = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a broken file
            raise UnreadableFile(f"{path}: not a readable .xlsx file ({exc})") from None
        try:
            sheet = workbook.worksheets[0]
            for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
                yield number, [_cell(v) for v in row]
        finally:
            workbook.close()
        return
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnreadableFile(f"{path}: not UTF-8; save the sheet as 'CSV UTF-8' or .xlsx") from None
    reader = csv.reader(io.StringIO(text))
    for row in reader:
        yield reader.line_num, row
