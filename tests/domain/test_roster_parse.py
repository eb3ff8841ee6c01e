import pytest

from domain import roster
from domain.model import Role


def rows(*lines: str) -> list[tuple[int, list[str]]]:
    return [(number, line.split(",")) for number, line in enumerate(lines, start=1)]


HEADER = "township,village_code,village,name,phone,role"


def test_english_header_and_several_villages() -> None:
    parsed = roster.parse(
        rows(
            HEADER,
            "青山镇,QS01;QS02,李家村;王家村,李娜,13800000002,cadre",
            "青山镇,,,王芳,13800000003,township",
        )
    )
    assert parsed[0].villages == (("QS01", "李家村"), ("QS02", "王家村"))
    assert parsed[0].role is Role.CADRE
    assert parsed[1].role is Role.TOWNSHIP and parsed[1].villages == ()


def test_chinese_header_and_roles() -> None:
    parsed = roster.parse(
        rows(
            "乡镇,村代码,村,姓名,手机,角色",
            "青山镇,QS01,李家村,张伟,13800000001,村干部",
            "青山镇,,,王芳,13800000003,乡镇",
        )
    )
    assert [p.role for p in parsed] == [Role.CADRE, Role.TOWNSHIP]
    assert parsed[0].phone == "+8613800000001"


def test_every_bad_row_reported_with_its_line() -> None:
    with pytest.raises(roster.RosterRejected) as caught:
        roster.parse(
            rows(
                HEADER,
                "青山镇,QS01,李家村,张伟,13800000001,cadre",
                "青山镇,QS01,李家村,李娜,12345,cadre",
                "青山镇,QS02,王家村,王五,13800000009,boss",
                "青山镇,QS01,李家村,张伟,13800000001,cadre",
                "青山镇,QS01,别的村,赵六,13800000008,cadre",
            )
        )
    found = {(p.line, p.key) for p in caught.value.problems}
    assert found == {
        (3, "validate.phone"),
        (4, "roster.bad_role"),
        (5, "roster.duplicate_phone"),
        (6, "roster.village_conflict"),
    }


def test_missing_columns() -> None:
    with pytest.raises(roster.RosterRejected) as caught:
        roster.parse(rows("township,name,phone", "青山镇,张伟,13800000001"))
    assert caught.value.problems[0].key == "roster.missing_columns"
    assert caught.value.problems[0].line == 1


def test_cadre_needs_village_and_staff_has_none() -> None:
    with pytest.raises(roster.RosterRejected) as caught:
        roster.parse(
            rows(HEADER, "青山镇,,,张伟,13800000001,cadre", "青山镇,QS01,李家村,王芳,13800000003,township")
        )
    assert [p.key for p in caught.value.problems] == [
        "roster.cadre_without_village",
        "roster.staff_with_village",
    ]


def test_blank_lines_are_skipped() -> None:
    parsed = roster.parse(
        [
            (1, HEADER.split(",")),
            (2, ["", "", "", "", "", ""]),
            (3, "青山镇,QS01,李家村,张伟,13800000001,cadre".split(",")),
        ]
    )
    assert [p.line for p in parsed] == [3]
