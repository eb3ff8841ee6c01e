"""`python -m bot campaign import FILE`: accepted, or refused with the line at fault."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from bot.cli import main
from tests.bot.test_cli import env  # noqa: F401 (the fixture)
from tests.support import ROSTER


def _file(folder: Path, *phases: str, villages: str = "QS01;QS02") -> Path:
    path = folder / "campaign.csv"
    path.write_text(
        "活动,集中排查\n乡镇,青山镇\n村,"
        + villages
        + "\n报告,半月\n"
        + "".join(f"阶段,{p}\n" for p in phases),
        encoding="utf-8",
    )
    return path


def test_import_a_campaign(env: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    assert main(["roster", "import", str(ROSTER)]) == 0
    soon, later = date.today() + timedelta(days=10), date.today() + timedelta(days=30)
    assert main(["campaign", "import", str(_file(env, f"动员部署,{soon}", f"集中排查,{later}"))]) == 0
    assert "已导入活动“集中排查”" in capsys.readouterr().out


def test_a_bad_campaign_file_is_refused_by_line(env: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    assert main(["roster", "import", str(ROSTER)]) == 0
    past, soon = date.today() - timedelta(days=1), date.today() + timedelta(days=10)
    path = _file(env, f"动员部署,{soon}", f"集中排查,{soon}", f"信息录入,{past}")
    assert main(["campaign", "import", str(path)]) == 1
    err = capsys.readouterr().err
    assert "第 6 行" in err and "晚于上一阶段" in err
    assert "第 7 行" in err and "已经过去" in err
    assert "未导入任何内容" in err
    later = date.today() + timedelta(days=20)
    assert main(["campaign", "import", str(_file(env, f"排查,{later}", villages="QS01;ZZ99"))]) == 1
    assert "第 3 行" in capsys.readouterr().err


def test_export_reports(env: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    from openpyxl import load_workbook

    assert main(["roster", "import", str(ROSTER)]) == 0
    assert main(["export", "reports", "--out", str(env / "r.xlsx")]) == 1
    assert "还没有需要报送进度的活动" in capsys.readouterr().err
    later = date.today() + timedelta(days=20)
    assert main(["campaign", "import", str(_file(env, f"排查,{later}"))]) == 0
    assert main(["export", "reports", "--township", "青山镇", "--out", str(env / "r.xlsx")]) == 0
    assert "0 份报告" in capsys.readouterr().out
    sheet = load_workbook(env / "r.xlsx").active
    assert sheet is not None and sheet["A1"].value == "报送期"
