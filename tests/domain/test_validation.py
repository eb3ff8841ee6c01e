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
