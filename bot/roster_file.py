"""Read a roster sheet (UTF-8 CSV or .xlsx) into numbered rows of text cells."""

from __future__ import annotations

import csv
import io
from collections.abc import Generator, Iterator
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
    yield from rows_of(path.read_bytes(), xlsx=path.suffix.lower() == ".xlsx", name=str(path))


def rows_of(
    data: bytes, *, xlsx: bool, name: str, max_columns: int | None = None
) -> Generator[tuple[int, list[str]], None, None]:
    """`read_rows` of a file's content (`name` for the messages); an .xlsx row is cut at `max_columns`."""
    if xlsx:
        from openpyxl import load_workbook

        try:
            workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a broken file
            raise UnreadableFile(f"{name}: not a readable .xlsx file ({exc})") from None
        try:
            sheet = workbook.worksheets[0]
            for number, row in enumerate(sheet.iter_rows(values_only=True, max_col=max_columns), start=1):
                yield number, [_cell(v) for v in row]
        finally:
            workbook.close()
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnreadableFile(f"{name}: not UTF-8; save the sheet as 'CSV UTF-8' or .xlsx") from None
    reader = csv.reader(io.StringIO(text))
    for row in reader:
        yield reader.line_num, row
