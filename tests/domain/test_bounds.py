"""Every date and number from outside is bounded: refused politely (a catalog key), never an
exception, and no arithmetic near 0001-01-01 or 9999-12-31 overflows."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from domain import export, ledger, workdays
from domain.campaigns import CampaignRejected, parse
from domain.deadlines import _level_time
from domain.policy import Limit, PolicyError, load_policy, parse_policy
from domain.validation import Invalid, past_date, years_after
from qr.cadre_links import _signature as link_signature
from qr.cadre_links import verify_cadre_link
from qr.payload import PayloadError, _signature, verify_village
from tests.domain.test_policy import VALID
from tests.support import SHANGHAI

TODAY = date(2026, 11, 23)  # the service's day (Asia/Shanghai), fixed


# --- /export and `python -m bot export cases`: the period -----------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["0001-01-01", "0001-01-02"],
        ["9999-12-30", "9999-12-31"],
        ["9999-12-31"],
        ["0001-01-01"],
        ["1999-12-31", "2000-01-31"],  # before 2000-01-01
        ["2026-12-01", "2027-11-25"],  # after today + 366 days
        ["2026-11-30", "2026-11-01"],  # backwards
        ["2023-11-23", "2026-11-23"],  # three whole years
        ["2026-11-01", "2026-11-30", "2026-12-31"],
        ["11-01"],
        ["下个月"],
    ],
)
def test_an_export_period_out_of_bounds_is_refused_with_its_bounds(args: list[str]) -> None:
    with pytest.raises(export.ExportRefused) as refused:
        export.period(args, TODAY)
    assert refused.value.key == "export.bad_period"
    assert refused.value.params == {"earliest": "2000-01-01", "latest": "2027-11-24", "years": 3}


@pytest.mark.parametrize(
    ("args", "first", "last"),
    [
        ([], date(2026, 11, 1), TODAY),  # this month so far
        (["2026-10-01"], date(2026, 10, 1), TODAY),
        (["2026-11-01", "2026-11-30"], date(2026, 11, 1), date(2026, 11, 30)),
        (["2000-01-01", "2002-12-31"], date(2000, 1, 1), date(2002, 12, 31)),
        (["2024-11-24", "2027-11-23"], date(2024, 11, 24), date(2027, 11, 23)),  # just under 3 years
        (["2026-11-23", "2026-11-23"], TODAY, TODAY),
    ],
)
def test_an_export_period_within_bounds(args: list[str], first: date, last: date) -> None:
    found = export.period(args, TODAY)
    assert (found.first, found.last) == (first, last)
    since, until = found.bounds(SHANGHAI)
    assert since == datetime.combine(first, time(0), SHANGHAI)
    assert until == datetime.combine(last + timedelta(days=1), time(0), SHANGHAI)


# --- days typed in chat ----------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["9999-12-31", "0001-01-01", "9999年12月31日", "2月29日"])
def test_a_visit_day_far_off_or_that_never_was_is_refused(raw: str) -> None:
    with pytest.raises(Invalid) as refused:
        past_date(raw, date(2028, 1, 15))  # early in a leap year: last year had no 29 February
    assert refused.value.key == "validate.date"


def test_a_visit_on_29_february_of_this_leap_year() -> None:
    assert past_date("2月29日", date(2028, 3, 1)) == date(2028, 2, 29)


def test_a_ledger_deadline_on_a_29_february_that_next_year_lacks_is_not_understood() -> None:
    assert ledger.parse_deadline("2-29", date(2028, 3, 1)) is None
    assert ledger.parse_deadline("2-29", date(2028, 2, 1)) == date(2028, 2, 29)
    assert ledger.parse_deadline("9999-12-31", TODAY) == date(9999, 12, 31)  # bounded by the use case


def _campaign(*lines: str) -> list[tuple[int, list[str]]]:
    text = "活动,集中排查\n乡镇,青山镇\n" + "".join(f"{line}\n" for line in lines)
    return [(n, row) for n, row in enumerate(csv.reader(io.StringIO(text)), start=1)]


def test_a_campaign_deadline_or_report_day_years_ahead_is_refused_by_line() -> None:
    with pytest.raises(CampaignRejected) as refused:
        parse(
            _campaign("报告,日期,2026-12-10;9999-12-31", "阶段,动员部署,2026-12-05", "阶段,排查,9999-12-31"),
            TODAY,
        )
    found = [(p.line, p.key, p.params) for p in refused.value.problems]
    far = {"date": "9999-12-31", "latest": "2028-11-23"}
    assert found == [(3, "campaign.date_too_far", far), (5, "campaign.date_too_far", far)]


def test_a_campaign_up_to_two_years_ahead_is_accepted() -> None:
    spec = parse(_campaign("报告,日期,2028-11-23", "阶段,排查,2028-11-23"), TODAY)
    assert spec.phases[0].deadline == date(2028, 11, 23)
    with pytest.raises(CampaignRejected):
        parse(_campaign("阶段,排查,2028-11-24"), TODAY)


def test_years_after_keeps_within_the_calendar() -> None:
    assert years_after(date(2028, 2, 29), 1) == date(2029, 2, 28)
    assert years_after(date(9999, 6, 1), 2) == date.max


# --- deadline arithmetic at the ends of the calendar ----------------------------------------


class Weekdays:
    def is_workday(self, day: date) -> bool | None:
        return None


@pytest.mark.parametrize("limit", [Limit(days=5, working=True), Limit(days=366, working=False)])
def test_a_due_time_near_9999_is_held_at_the_calendars_end(limit: Limit) -> None:
    start = datetime(9999, 12, 30, 10, 0, tzinfo=SHANGHAI)
    due = workdays.due(start, limit, Weekdays())
    assert start <= due <= datetime(9999, 12, 31, tzinfo=SHANGHAI)
    assert due.astimezone(SHANGHAI).utcoffset() == timedelta(hours=8)


def test_quiet_hours_on_the_last_evening_of_the_calendar() -> None:
    policy = load_policy("anhui")  # quiet 22:00-07:00
    moment = datetime(9999, 12, 31, 23, 0, tzinfo=SHANGHAI)
    assert workdays.next_outside_quiet(moment, policy) >= moment - timedelta(days=2)


def test_escalation_after_a_due_time_near_9999_does_not_overflow() -> None:
    task: Any = SimpleNamespace(due_at=datetime(9999, 12, 31, 20, 0, tzinfo=SHANGHAI))
    rules: Any = SimpleNamespace(escalation=((timedelta(hours=48), "township"),))
    level = _level_time(task, rules, 0)
    assert level is not None and level >= task.due_at - timedelta(days=1)
    assert workdays.shift(datetime(1, 1, 1, 12, 0, tzinfo=SHANGHAI), -timedelta(days=3)).year == 1


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("visit = { days = 2,", "visit = { days = 999999999,"),
        ("after_hours = 24\n", "after_hours = 99999999999\n"),
        ("before_hours = 24", "before_hours = 9000"),
    ],
)
def test_a_policy_time_limit_over_a_year_is_refused(old: str, new: str) -> None:
    assert old in VALID
    with pytest.raises(PolicyError, match="must be at most"):
        parse_policy(VALID.replace(old, new, 1))


# --- signed payloads: nothing a user can type makes them raise anything but PayloadError ----


def test_a_code_signed_to_last_past_9999_is_refused_not_raised() -> None:
    secret = b"qr-secret-0123456789"
    body = "vQS01_zzzzz"  # 60 million days after 2000-01-01
    with pytest.raises(PayloadError):
        verify_village(secret, f"{body}_{_signature(secret, body)}", TODAY)


@pytest.mark.parametrize(
    "token",
    [
        "c١٢_QS01_1893456000_" + "A" * 22,  # Arabic-Indic digits: \\d took them
        "c１２_QS01_1893456000_" + "A" * 22,  # full-width digits
        "c12_QS01_1893456000_" + "A" * 22 + "\n",
    ],
)
def test_a_cadre_link_with_other_digits_is_malformed(token: str) -> None:
    with pytest.raises(PayloadError) as refused:
        verify_cadre_link(b"link-secret-0123456789", token, datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI))
    assert refused.value.reason == "malformed"


def test_a_cadre_link_signed_to_expire_past_9999_is_refused_not_raised() -> None:
    secret = b"link-secret-0123456789"
    body = "c12_QS01_999999999999"
    token = f"{body}_{link_signature(secret, body)}"
    with pytest.raises(PayloadError):
        verify_cadre_link(secret, token, datetime(2026, 11, 23, tzinfo=SHANGHAI))
