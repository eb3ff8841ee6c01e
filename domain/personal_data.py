"""Personal data in free text: mainland mobile numbers, landlines with their area code and
resident ID numbers, found however they are written.

People type numbers on a phone in many ways: full-width digits (１３９…), spaces, dots, dashes,
brackets, slashes, +86, or the Chinese 、，。 between the digits. So a text is read as groups of
digits (any Unicode digits, NFKC-normalised; an ID's final X ends a group) joined by at most
three separator characters, and every stretch of consecutive groups is tried as one number.

What must not look like a phone number: a date (2026-12-05, 2026.12.05, 2026/12/05) or an amount
with thousands separators (3,500) is kept whole, so it never joins a neighbouring number; times
(14:30) and counts with their unit (135 户) are broken by the colon or the unit anyway. Receipt
numbers (YYYYMMDD + 6 digits) are 14 digits and fit none of the shapes. An ID number written in
one piece is recognised by its province code, shape and birth date (a mistyped check digit is still someone's
ID number); one pieced together from several groups must also have a valid check digit, which
keeps unrelated numbers next to each other from passing for one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from stdnum.cn import ric


class Kind(StrEnum):
    PHONE = "phone"  # a mobile or a landline with its area code
    ID_NUMBER = "id"


@dataclass(frozen=True)
class Found:
    kind: Kind
    start: int  # in the text as given: text[start:end] is the number, separators included
    end: int


# Characters written between the digits of one number (after NFKC, which turns full-width
# forms into ASCII ones). Whitespace counts too. Not the colon: 14:30 is a time.
SEPARATORS = frozenset(".-_/\\()[]{}+~*,，·・、。【】〔〕‐‑‒–—―−")
MAX_GAP = 3  # separator characters between two groups of one number, e.g. ") " or " - "
MAX_DIGITS = 20  # longer stretches are no phone or ID number (+86 and a mobile is 13, 0086 15)

_MOBILE = re.compile(r"(?:(?:00)?86)?1[3-9]\d{9}")
_LANDLINE = re.compile(r"(?:0|(?:00)?86)(?:(?:10|2\d)[2-9]\d{7}|[3-9]\d{2}[2-9]\d{6,7})")
_ID_18 = re.compile(r"[1-9]\d{5}((?:19|20)\d{6})\d{3}[\dX]")
_ID_15 = re.compile(r"[1-9]\d{5}(\d{6})\d{3}")
_DATE_SEPARATORS = frozenset("-./")
# An ID number begins with its province's code (71 Taiwan, 81 Hong Kong, 82 Macao, 83 the
# residence permits of Taiwan residents); 20... is a receipt number or a date, never an ID.
_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 "
    "61 62 63 64 65 71 81 82 83".split()
)


@dataclass
class _Group:
    start: int
    end: int
    digits: str  # ASCII digits, perhaps a final X
    gap: str = ""  # the normalised characters between the previous group and this one, if joined
    joined: bool = False  # whether this group continues the previous one's number
    whole: bool = False  # part of a date or an amount: never joins a number for phones


def _digit(char: str) -> str | None:
    """The ASCII digit(s) a character stands for (１ → 1, ① → 1), else None."""
    normal = unicodedata.normalize("NFKC", char)
    if normal.isascii() and normal.isdigit():
        return normal
    value = unicodedata.decimal(char, None)
    return str(value) if value is not None else None


def _separator(char: str) -> str | None:
    if char == "，":
        return char  # the Chinese comma: unlike NFKC's ",", no thousands separator
    normal = unicodedata.normalize("NFKC", char)
    if normal.isspace() or normal in SEPARATORS:
        return " " if normal.isspace() else normal
    return None


def _groups(text: str) -> list[_Group]:
    """The digit groups of `text`, each marked with whether it joins the one before."""
    groups: list[_Group] = []
    current: _Group | None = None
    gap: list[str] | None = None  # separators since the last group; None: something else came

    def joins() -> bool:
        return bool(groups) and gap is not None and 0 < len(gap) <= MAX_GAP and groups[-1].digits[-1] != "X"

    for index, char in enumerate(text):
        digit = _digit(char)
        is_x = digit is None and unicodedata.normalize("NFKC", char) in ("X", "x")
        if digit is not None or (is_x and current is None and joins()):
            # An X ends a group; alone after a separator it is the last piece of an ID number.
            if current is None:
                current = _Group(index, index, "", "".join(gap or ()), joins())
            current.digits += digit or "X"
            current.end = index + 1
            if digit is not None:
                continue
            is_x = True
        elif is_x and current is not None:
            current.digits += "X"
            current.end = index + 1
        if current is not None:
            groups.append(current)
            current, gap = None, []
            if is_x:
                continue
        separator = _separator(char)
        if separator is not None and gap is not None:
            gap.append(separator)
        else:
            gap = None
    if current is not None:
        groups.append(current)
    return groups


def _chain(groups: list[_Group], first: int, gap: str) -> int:
    """The index after the last group joined to groups[first] by exactly `gap` each time."""
    end = first + 1
    while end < len(groups) and groups[end].joined and groups[end].gap == gap:
        end += 1
    return end


def _is_date(parts: list[str]) -> bool:
    if len(parts) != 3 or len(parts[0]) != 4 or not all(1 <= len(p) <= 2 for p in parts[1:]):
        return False
    if not all(p.isascii() and p.isdigit() for p in parts):  # an ID number's closing X, say
        return False
    year, month, day = (int(p) for p in parts)
    if not 1900 <= year <= 2099:
        return False
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _mark_whole(groups: list[_Group]) -> None:
    """Mark dates (2026-12-05) and amounts (13,500): chains of groups that are one such value."""
    index = 0
    while index < len(groups):
        nxt = index + 1
        if nxt < len(groups) and groups[nxt].joined and "X" not in groups[index].digits:
            gap = groups[nxt].gap
            end = _chain(groups, index, gap)
            parts = [g.digits for g in groups[index:end]]
            before_joins = index > 0 and groups[index].joined and groups[index].gap == gap
            if not before_joins and (
                (gap in _DATE_SEPARATORS and _is_date(parts))
                or (gap == "," and 1 <= len(parts[0]) <= 3 and all(len(p) == 3 for p in parts[1:]))
            ):
                for group in groups[index:end]:
                    group.whole = True
                index = end
                continue
        index += 1


def _birth_date_ok(digits: str) -> bool:
    if len(digits) == 6:
        digits = "19" + digits
    try:
        date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return False
    return True


def _id_number(number: str, pieces: int) -> bool:
    if number[:2] not in _PROVINCES:
        return False
    for shape in (_ID_18, _ID_15) if pieces == 1 else (_ID_18,):
        matched = shape.fullmatch(number)
        if matched and _birth_date_ok(matched[1]):
            # Not stdnum's is_valid: it also wants the county to have existed in the birth year,
            # and counties merged since (崇文区 into 东城区) still have people with their codes.
            return pieces == 1 or ric.calc_check_digit(number) == number[-1]
    return False


def _phone(number: str) -> bool:
    return "X" not in number and bool(_MOBILE.fullmatch(number) or _LANDLINE.fullmatch(number))


def find(text: str) -> list[Found]:
    """Every phone or ID number in `text`, in order; overlapping finds are merged."""
    groups = _groups(text)
    _mark_whole(groups)
    found: list[Found] = []
    for first in range(len(groups)):
        number = ""
        for last in range(first, len(groups)):
            group = groups[last]
            if last > first and not group.joined:
                break
            number += group.digits
            if len(number) > MAX_DIGITS:
                break
            pieces = last - first + 1
            span = groups[first : last + 1]
            if _id_number(number, pieces):
                found.append(Found(Kind.ID_NUMBER, groups[first].start, group.end))
            elif (pieces == 1 or not any(g.whole for g in span)) and _phone(number):
                found.append(Found(Kind.PHONE, groups[first].start, group.end))
    return _merged(found)


def _merged(found: list[Found]) -> list[Found]:
    merged: list[Found] = []
    for item in sorted(found, key=lambda f: (f.start, -f.end)):
        if merged and item.start < merged[-1].end:
            last = merged[-1]
            kind = Kind.ID_NUMBER if Kind.ID_NUMBER in (last.kind, item.kind) else last.kind
            merged[-1] = Found(kind, last.start, max(last.end, item.end))
        else:
            merged.append(item)
    return merged


def looks_personal(text: str) -> bool:
    """Whether `text` seems to carry an ID or phone number."""
    return bool(find(text))


def redact(text: str, masks: dict[Kind, str] | None = None) -> str:
    """`text` with every phone and ID number replaced by a mask ("[phone]", "[id]")."""
    found = find(text)
    if not found:
        return text
    names = masks or {Kind.PHONE: "[phone]", Kind.ID_NUMBER: "[id]"}
    pieces: list[str] = []
    at = 0
    for item in found:
        pieces.append(text[at : item.start])
        pieces.append(names[item.kind])
        at = item.end
    pieces.append(text[at:])
    return "".join(pieces)
