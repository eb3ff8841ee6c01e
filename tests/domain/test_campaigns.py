"""Campaign files: what is accepted, and every problem refused with the line at fault."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from domain.campaigns import CampaignRejected, parse

TODAY = date(2026, 11, 23)


def rows(text: str) -> list[tuple[int, list[str]]]:
    return [(n, row) for n, row in enumerate(csv.reader(io.StringIO(text)), start=1)]


def test_a_campaign_file_in_chinese() -> None:
    spec = parse(
        rows(
            "# 注释行\n活动,集中排查\n乡镇,青山镇\n村,QS01；QS02\n报告,日期,2026-12-10;2026-12-25\n"
            "提醒,1;3\n阶段,动员部署,2026-12-05\n阶段,集中排查,2026/12/20\n"
        ),
        TODAY,
    )
    assert (spec.name, spec.township, spec.villages) == ("集中排查", "青山镇", ("QS01", "QS02"))
    assert spec.reports == {"kind": "dates", "dates": ["2026-12-10", "2026-12-25"]}
    assert spec.offsets == (3, 1)
    assert [(p.name, p.deadline) for p in spec.phases] == [
        ("动员部署", date(2026, 12, 5)),
        ("集中排查", date(2026, 12, 20)),
    ]


def test_defaults_every_village_half_monthly_three_reminders() -> None:
    spec = parse(rows("campaign,排查\ntownship,青山镇\nvillages,all\nphase,排查,2026-12-05\n"), TODAY)
    assert spec.villages == () and spec.reports == {"kind": "half-monthly"} and spec.offsets == (3, 1, 0)


def test_past_deadline_phase_out_of_order_and_bad_lines_are_refused_with_their_lines() -> None:
    with pytest.raises(CampaignRejected) as refused:
        parse(
            rows(
                "活动,排查\n乡镇,青山镇\n阶段,动员部署,2026-11-01\n阶段,集中排查,2026-12-20\n"
                "阶段,信息录入,2026-12-10\n报告,每天\n颜色,红\n阶段,整改,2026-13-01\n"
            ),
            TODAY,
        )
    found = [(p.line, p.key) for p in refused.value.problems]
    assert found == [
        (3, "campaign.deadline_past"),
        (5, "campaign.phase_order"),
        (6, "campaign.bad_rhythm"),
        (7, "campaign.unknown_field"),
        (8, "campaign.bad_date"),
    ]


def test_a_file_without_phases_is_refused() -> None:
    with pytest.raises(CampaignRejected) as refused:
        parse(rows("活动,排查\n乡镇,青山镇\n"), TODAY)
    assert [p.key for p in refused.value.problems] == ["campaign.missing"]
