import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import validation
from domain.validation import Invalid


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13812345678", "+8613812345678"),
        ("138 1234 5678", "+8613812345678"),
        ("+86 138-1234-5678", "+8613812345678"),
        ("１３８１２３４５６７８", "+8613812345678"),  # full-width digits from a Chinese keyboard
        ("010-12345678", "+861012345678"),
    ],
)
def test_valid_phones(raw: str, expected: str) -> None:
    assert validation.phone(raw) == expected


@pytest.mark.parametrize("raw", ["", "12345", "1381234567", "+1 650 253 0000", "电话号码", "138123456789999"])
def test_invalid_phones(raw: str) -> None:
    with pytest.raises(Invalid) as caught:
        validation.phone(raw)
    assert caught.value.key == "validate.phone"


@given(st.text(max_size=40))
def test_phone_never_crashes(raw: str) -> None:
    try:
        result = validation.phone(raw)
    except Invalid:
        return
    assert result.startswith("+86")


@pytest.mark.parametrize("raw", ["张三", "欧阳·娜娜", "Zhang San", "阿卜杜拉·买买提"])
def test_valid_names(raw: str) -> None:
    assert validation.person_name(raw) == raw


@pytest.mark.parametrize("raw", ["", "😀😀", "123", "张三😀", "名" * 31, "   "])
def test_invalid_names(raw: str) -> None:
    with pytest.raises(Invalid):
        validation.person_name(raw)


@given(st.text(max_size=60))
def test_name_never_crashes_and_keeps_letters(raw: str) -> None:
    try:
        name = validation.person_name(raw)
    except Invalid:
        return
    assert 0 < len(name) <= validation.MAX_NAME
    assert any(ch.isalpha() for ch in name)


def test_description_limits() -> None:
    assert validation.description("  孩子住院花了三万元  ") == "孩子住院花了三万元"
    with pytest.raises(Invalid) as too_long:
        validation.description("病" * 1001)
    assert too_long.value.params["length"] == 1001
    with pytest.raises(Invalid):
        validation.description("🙏🙏🙏")


VALID_IDS = ["11010519491231002X", "110105199003071239", "11010519491231002x", " 110105 19491231 002X "]


@pytest.mark.parametrize("raw", VALID_IDS)
def test_valid_id_numbers_are_normalised(raw: str) -> None:
    value = validation.id_number(raw)
    assert len(value) == 18 and value == value.upper() and " " not in value


@pytest.mark.parametrize(
    "raw", ["110105194912310021", "11010519491231002", "1101051949123100XX", "", "身份证"]
)
def test_invalid_id_numbers(raw: str) -> None:
    with pytest.raises(Invalid) as caught:
        validation.id_number(raw)
    assert caught.value.key == "validate.id_number"


@given(st.text(max_size=25))
def test_id_number_never_crashes(raw: str) -> None:
    try:
        value = validation.id_number(raw)
    except Invalid:
        return
    assert len(value) == 18


def test_mask_shows_first_and_last_four() -> None:
    assert validation.mask_id("11010519491231002X") == "1101**********002X"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("30000", 30000), ("3万", 30000), ("3.5万元", 35000), ("三万", 30000), ("三万五千", 35000),
     ("两千块", 2000), ("30,000元", 30000), ("大约2万", 20000), ("０", 0)],
)  # fmt: skip
def test_amounts_as_farmers_write_them(raw: str, expected: int) -> None:
    assert validation.amount(raw) == expected


@given(st.integers(min_value=0, max_value=validation.MAX_AMOUNT))
def test_amount_round_trips_digits(n: int) -> None:
    assert validation.amount(str(n)) == n
    assert validation.amount(f"{n:,}元") == n


@pytest.mark.parametrize("raw", ["NAN", "nan元", "inf", "-inf", "Infinity", "1e999"])
def test_what_float_reads_but_nobody_writes_is_refused_politely(raw: str) -> None:
    with pytest.raises(Invalid):
        validation.amount(raw)
    with pytest.raises(Invalid):
        validation.household_size(raw)


@given(st.text(max_size=20))
def test_amount_never_crashes(raw: str) -> None:
    try:
        value = validation.amount(raw)
    except Invalid:
        return
    assert 0 <= value <= validation.MAX_AMOUNT


@pytest.mark.parametrize(("raw", "expected"), [("4", 4), ("4口", 4), ("四口人", 4), ("十二", 12), ("1", 1)])
def test_household_sizes(raw: str, expected: int) -> None:
    assert validation.household_size(raw) == expected


@pytest.mark.parametrize("raw", ["0", "31", "3.5", "很多", ""])
def test_bad_household_sizes(raw: str) -> None:
    with pytest.raises(Invalid):
        validation.household_size(raw)


def test_dates_past_only_and_year_guessed() -> None:
    from datetime import date

    today = date(2026, 1, 5)
    assert validation.past_date("昨天", today) == date(2026, 1, 4)
    assert validation.past_date("12月30日", today) == date(2025, 12, 30)
    assert validation.past_date("2025-07-10", today) == date(2025, 7, 10)
    for bad in ("2026年1月6日", "2月30日", "明天", "1990-01-01"):
        with pytest.raises(Invalid):
            validation.past_date(bad, today)


@given(st.text(max_size=20), st.dates())
def test_past_date_never_crashes_nor_returns_the_future(raw: str, today: object) -> None:
    try:
        value = validation.past_date(raw, today)  # type: ignore[arg-type]
    except Invalid:
        return
    assert value <= today  # type: ignore[operator]
