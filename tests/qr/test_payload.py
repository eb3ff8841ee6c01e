from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qr.links import deep_link, qr_png
from qr.payload import MAX_LENGTH, PayloadError, sign_village, verify_village

SECRET = b"a-test-secret-of-enough-length"
TODAY = date(2026, 11, 23)

codes = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=16
)


@given(code=codes, days=st.integers(min_value=0, max_value=40000))
def test_round_trip_within_telegram_limits(code: str, days: int) -> None:
    until = date(2000, 1, 1).fromordinal(date(2000, 1, 1).toordinal() + days)
    payload = sign_village(SECRET, code, until)
    assert len(payload) <= MAX_LENGTH
    assert all(ch.isalnum() or ch in "_-" for ch in payload)
    assert verify_village(SECRET, payload, date(2000, 1, 1)).village_code == code
    assert verify_village(SECRET, payload, until).valid_until == until


def test_altered_village_is_forged() -> None:
    payload = sign_village(SECRET, "QS01", date(2027, 12, 31))
    with pytest.raises(PayloadError) as caught:
        verify_village(SECRET, payload.replace("QS01", "QS02"), TODAY)
    assert caught.value.reason == "forged"


def test_other_secret_is_forged() -> None:
    payload = sign_village(b"another-secret-entirely", "QS01", date(2027, 12, 31))
    with pytest.raises(PayloadError) as caught:
        verify_village(SECRET, payload, TODAY)
    assert caught.value.reason == "forged"


def test_extended_expiry_is_forged() -> None:
    payload = sign_village(SECRET, "QS01", date(2026, 1, 1))
    code, exp, sig = payload.split("_")
    with pytest.raises(PayloadError) as caught:
        verify_village(SECRET, f"{code}_{int(exp, 36) + 1000:x}_{sig}", TODAY)
    assert caught.value.reason in ("forged", "malformed")


def test_expired_payload() -> None:
    payload = sign_village(SECRET, "QS01", date(2026, 11, 22))
    with pytest.raises(PayloadError) as caught:
        verify_village(SECRET, payload, TODAY)
    assert caught.value.reason == "expired"
    assert verify_village(SECRET, payload, date(2026, 11, 22)).village_code == "QS01"


@given(st.text(max_size=80))
def test_garbage_never_verifies(garbage: str) -> None:
    with pytest.raises(PayloadError):
        verify_village(SECRET, garbage, TODAY)


def test_bad_village_code_refused_when_signing() -> None:
    with pytest.raises(ValueError):
        sign_village(SECRET, "村01", date(2027, 1, 1))


def test_deep_link_and_png() -> None:
    payload = sign_village(SECRET, "QS01", date(2027, 12, 31))
    link = deep_link("fanghui_bot", payload)
    assert link == f"https://t.me/fanghui_bot?start={payload}"
    assert qr_png(link).startswith(b"\x89PNG")


def test_a_batch_is_carried_signed_and_within_telegrams_limit() -> None:
    payload = sign_village(SECRET, "Q" * 16, date(2099, 12, 31), batch="B" * 8)
    assert len(payload) <= MAX_LENGTH
    assert verify_village(SECRET, payload, TODAY).batch == "B" * 8
    plain = sign_village(SECRET, "QS01", date(2027, 12, 31))
    assert verify_village(SECRET, plain, TODAY).batch is None
    batched = sign_village(SECRET, "QS01", date(2027, 12, 31), batch="261123")
    with pytest.raises(PayloadError) as forged:
        verify_village(SECRET, batched.replace("_b261123", "_b261124"), TODAY)
    assert forged.value.reason == "forged"
    with pytest.raises(ValueError):
        sign_village(SECRET, "QS01", date(2027, 12, 31), batch="批次")
