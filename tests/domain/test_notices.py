"""Rules of notices and of quiet hours, without storage."""

from __future__ import annotations

from datetime import datetime, time

import pytest

from domain.notices import looks_personal, parse_time
from domain.schedule import QuietHours
from tests.support import SHANGHAI


@pytest.mark.parametrize(
    "body",
    [
        "请王大山（身份证 110101199003071234）到村委会",
        "身份证号11010119900307123X已登记",
        "有事打 13912345678",
        "联系电话 139 1234 5678",
        "联系 +86 139-1234-5678",
        "乡政府电话 0571-87654321",
    ],
)
def test_notices_with_id_or_phone_numbers_are_held_back(body: str) -> None:
    assert looks_personal(body)


@pytest.mark.parametrize(
    "body",
    [
        "请各村于12月1日前完成集中排查，上报进度。",
        "2026年第2批次监测对象名单已下发，共 135 户。",
        "咨询电话 12317",
        "会议定于 2026-12-01 09:00 在乡政府三楼召开",
    ],
)
def test_ordinary_notices_pass(body: str) -> None:
    assert not looks_personal(body)


def test_send_times() -> None:
    now = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
    assert parse_time("10:30", now) == now.replace(minute=30)
    assert parse_time("09：00", now) == datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI)  # tomorrow
    assert parse_time("2026-12-01 08:00", now) == datetime(2026, 12, 1, 8, 0, tzinfo=SHANGHAI)
    assert parse_time("12/01 08:00", now) == datetime(2026, 12, 1, 8, 0, tzinfo=SHANGHAI)
    assert parse_time("明天上午", now) is None
    assert parse_time("2026-02-30 08:00", now) is None


def test_quiet_hours_across_midnight() -> None:
    quiet = QuietHours.parse("22:00-07:00")
    day = datetime(2026, 11, 23, 0, 0, tzinfo=SHANGHAI)
    assert [quiet.contains(day.replace(hour=h)) for h in (6, 7, 12, 21, 22, 23)] == [
        True, False, False, False, True, True,
    ]  # fmt: skip
    assert quiet.morning_after(day.replace(hour=23)) == datetime(2026, 11, 24, 7, 0, tzinfo=SHANGHAI)
    assert quiet.morning_after(day.replace(hour=3)) == datetime(2026, 11, 23, 7, 0, tzinfo=SHANGHAI)
    assert not QuietHours.parse("-").contains(day)
    assert QuietHours.parse("12:00-14:00").contains(day.replace(hour=13))
    assert QuietHours(time(22), time(7)) == quiet
