"""Report rhythms and the numbers cadres type."""

from __future__ import annotations

from datetime import date

from domain.reports import number, periods


def test_half_monthly_weekly_monthly_and_given_dates() -> None:
    start, end = date(2026, 11, 23), date(2027, 1, 20)
    assert periods({"kind": "half-monthly"}, start, end) == [
        date(2026, 11, 30), date(2026, 12, 15), date(2026, 12, 31), date(2027, 1, 15),
    ]  # fmt: skip
    assert periods({"kind": "monthly"}, start, end) == [date(2026, 11, 30), date(2026, 12, 31)]
    weekly = periods({"kind": "weekly"}, start, date(2026, 12, 12))
    assert weekly == [date(2026, 11, 27), date(2026, 12, 4), date(2026, 12, 11)]  # Fridays
    given = {"kind": "dates", "dates": ["2026-11-01", "2026-12-10", "2027-03-01"]}
    assert periods(given, start, end) == [date(2026, 12, 10), date(2027, 3, 1)]


def test_numbers() -> None:
    assert [number(x) for x in ("12", " 0 ", "１２", "35户", "3个")] == [12, 0, 12, 35, 3]
    assert [number(x) for x in ("", "-1", "十二", "1.5", "12 户 3", "9999999")] == [None] * 6
