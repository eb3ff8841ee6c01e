"""Phone and ID numbers are found however they are written; ordinary notice text is not flagged."""

from __future__ import annotations

import unicodedata
from datetime import date

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from stdnum.cn import ric

from domain.personal_data import Kind, find, looks_personal, redact

MOBILE_PREFIXES = ("130", "135", "138", "139", "150", "158", "177", "186", "189", "199")
AREA_CODES = ("010", "021", "0551", "0571", "0931", "0755")
REGIONS = ("110101", "110105", "340102", "340823", "620102", "440305")
# What people put between digits, as typed on a phone (full-width forms included). Not the ASCII
# comma: 13,912 is read as an amount, and an amount never joins a neighbouring number.
GAPS = (" ", "  ", "-", " - ", ".", "/", "、", "，", "。", "－", "．", "　", "—", "·", ") ", "(")
FULL_WIDTH = str.maketrans("0123456789Xx", "０１２３４５６７８９Ｘｘ")
WORDS = st.text(
    alphabet="请各村户于月日前完成排查上报进度监测对象名单已下发共乡镇会议在三楼召开补助元的和", max_size=8
)


def split(digits: str, cuts: list[int]) -> list[str]:
    points = sorted({c % len(digits) for c in cuts} - {0})
    return [digits[a:b] for a, b in zip([0, *points], [*points, len(digits)], strict=True)]


@st.composite
def written(draw: st.DrawFn, digits: str) -> str:
    """`digits` written as a person might: cut into groups, separators between, maybe full width."""
    groups = split(digits, draw(st.lists(st.integers(1, 30), max_size=len(digits) - 1)))
    gaps = [draw(st.sampled_from(GAPS)) for _ in groups[1:]]
    text = groups[0] + "".join(g + part for g, part in zip(gaps, groups[1:], strict=True))
    if draw(st.booleans()):
        text = text.translate(FULL_WIDTH)
    return text


@st.composite
def mobiles(draw: st.DrawFn) -> tuple[str, str]:
    number = draw(st.sampled_from(MOBILE_PREFIXES)) + draw(st.text("0123456789", min_size=8, max_size=8))
    shown = draw(written(number))
    prefix = draw(st.sampled_from(("", "+86 ", "+86-", "(+86)", "86 ", "0086 ", "＋８６ ")))
    return number, prefix + shown


@st.composite
def landlines(draw: st.DrawFn) -> tuple[str, str]:
    area = draw(st.sampled_from(AREA_CODES))
    local = draw(st.sampled_from("2345678")) + draw(
        st.text("0123456789", min_size=7 if len(area) == 3 else 6, max_size=7)
    )
    if draw(st.booleans()):
        return area + local, f"({area}){local}"
    return area + local, draw(written(area + local))


@st.composite
def id_numbers(draw: st.DrawFn) -> tuple[str, str]:
    born = draw(st.dates(date(1930, 1, 1), date(2020, 12, 31)))
    body = (
        draw(st.sampled_from(REGIONS))
        + f"{born:%Y%m%d}"
        + draw(st.text("0123456789", min_size=3, max_size=3))
    )
    number = body + ric.calc_check_digit(body + "?")  # it skips the last character, the check digit
    shown = draw(written(number))
    return number, shown.lower() if draw(st.booleans()) else shown


@settings(max_examples=300)
@given(found=st.one_of(mobiles(), landlines(), id_numbers()), before=WORDS, after=WORDS)
# Written like a date up to its closing X (once crashed the date check).
@example(found=("11010519950801159X", "1 1010519950 8011-5-9X"), before="", after="")
def test_phone_and_id_numbers_are_found_however_written(
    found: tuple[str, str], before: str, after: str
) -> None:
    number, shown = found
    text = f"{before}{shown}{after}"
    assert looks_personal(text), text
    cleaned = unicodedata.normalize("NFKC", redact(text))
    assert number not in "".join(ch for ch in cleaned if ch.isalnum()).upper(), cleaned


@pytest.mark.parametrize(
    "text",
    [
        "139.1234.5678",
        "１３９１２３４５６７８",
        "(139)12345678",
        "+86 139 1234 5678",
        "电话：139、1234、5678",
        "110101 19900307 002X",
        "110101-1990-0307-002X",
        "身份证１１０１０１１９９００３０７００２ｘ",
        "0571-8765 4321",
    ],
)
def test_the_reviewed_evasions_are_caught(text: str) -> None:
    assert looks_personal(text)


# --- what ordinary notices carry ----------------------------------------------------------------


@st.composite
def dates(draw: st.DrawFn) -> str:
    day = draw(st.dates(date(1990, 1, 1), date(2035, 12, 31)))
    style = draw(
        st.sampled_from(("{:%Y-%m-%d}", "{:%Y.%m.%d}", "{:%Y/%m/%d}", "{d.year}年{d.month}月{d.day}日"))
    )
    return style.format(day, d=day)


times = st.builds("{:02d}:{:02d}".format, st.integers(0, 23), st.integers(0, 59)) | st.builds(
    "{:02d}：{:02d}".format, st.integers(0, 23), st.integers(0, 59)
)
amounts = (
    st.integers(1, 99_999_999).map(lambda n: f"¥{n:,}")
    | st.integers(1, 9999).map(lambda n: f"{n}元")
    | st.integers(1, 999).map(lambda n: f"{n / 10}万元")
)
counts = st.builds(
    "{}{}".format,
    st.integers(0, 99_999),
    st.sampled_from(("户", " 户", "人", " 人", "批", "%", "个村", "项")),
)
receipts = st.builds(
    lambda day, serial: f"回执{day:%Y%m%d}{serial:06d}",
    st.dates(date(2026, 1, 1), date(2030, 12, 31)),
    st.integers(1, 999_999),
)
fragments = st.one_of(dates(), times, amounts, counts, receipts, st.just("咨询电话 12317"), WORDS)
joints = st.sampled_from((" ", "，", "、", "。", "；", "：", "\n", "前", "起", "至", "共"))


@settings(max_examples=300)
@given(parts=st.lists(st.tuples(fragments, joints), min_size=1, max_size=8))
def test_ordinary_notice_text_is_not_flagged(parts: list[tuple[str, str]]) -> None:
    text = "".join(fragment + joint for fragment, joint in parts)
    assert find(text) == [], text


@pytest.mark.parametrize(
    "text",
    [
        "会议定于 2026-12-05 14:30 在乡政府三楼召开",
        "每户补助¥13,500，2026-12-05前发放",
        "截至2026.12.05，全镇已排查 1,350 户，新纳入监测 12 户",
        "1999.12.31 165人",
        "回执 20261123000042 已办结，20261123000043 待核实",
        "咨询电话 12317，时间 08:30-17:30",
        "第1、3、5、7组于12-05前上报",
    ],
)
def test_dates_times_amounts_counts_and_receipts_pass(text: str) -> None:
    assert not looks_personal(text)


def test_redact_names_what_it_hid_and_keeps_the_rest() -> None:
    text = "王大山 电话 139-1234-5678，身份证 11010519491231002X，2026-12-05 到村委会"
    assert redact(text) == "王大山 电话 [phone]，身份证 [id]，2026-12-05 到村委会"
    assert [f.kind for f in find(text)] == [Kind.PHONE, Kind.ID_NUMBER]
    assert redact("no numbers here") == "no numbers here"


def test_an_id_number_in_one_piece_is_found_with_a_wrong_check_digit() -> None:
    assert looks_personal("110101199003071234")  # a typo in the check digit is still an ID number
    assert not looks_personal("110101 19900307 1234")  # in pieces it must be a valid one
    assert not looks_personal("回执20261119010101，1999年")  # no province code begins with 20
