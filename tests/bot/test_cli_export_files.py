"""Export files hold ID numbers and names: created for their owner only, and only for sane dates."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from bot.cli import main
from tests.bot.test_cli import env  # noqa: F401 (the fixture)
from tests.support import ROSTER


@pytest.fixture(autouse=True)
def id_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ID_ENCRYPTION_KEY", "export-files-test-id-key-0123456789")


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most servers have, under which a plain write makes a file world-readable."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _campaign(folder: Path) -> Path:
    later = date.today() + timedelta(days=20)  # the CLI runs on the system clock, as the operator does
    path = folder / "campaign.csv"
    path.write_text(f"活动,集中排查\n乡镇,青山镇\n村,QS01\n报告,半月\n阶段,排查,{later}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("existing", [False, True], ids=["new file", "old export file 0644"])
def test_every_export_file_is_readable_by_its_owner_only(
    env: Path,  # noqa: F811
    usual_umask: None,
    existing: bool,
) -> None:
    assert main(["roster", "import", str(ROSTER)]) == 0
    assert main(["campaign", "import", str(_campaign(env))]) == 0
    commands = {
        "cases.xlsx": ["export", "cases", "--from", "2026-11-01", "--to", "2026-11-30", "-o"],
        "reports.xlsx": ["export", "reports", "--township", "青山镇", "--out"],
        "ledger.xlsx": ["export", "ledger", "--township", "青山镇", "--out"],
    }
    for name, command in commands.items():
        out = env / name
        if existing:
            out.write_bytes(b"an export from last month")
            out.chmod(0o644)
        assert main([*command, str(out)]) == 0, name
        assert mode(out) == 0o600, f"{name}: {oct(mode(out))}"
        assert out.read_bytes()[:2] == b"PK", name  # the new workbook, not what was there


@pytest.mark.parametrize(
    ("first", "last"),
    [
        ("0001-01-01", "0001-01-02"),
        ("9999-12-30", "9999-12-31"),
        ("2026-11-30", "2026-11-01"),
        ("1999-12-31", "2000-01-31"),
    ],
)
def test_the_command_line_export_refuses_dates_out_of_bounds(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    first: str,
    last: str,
) -> None:
    out = env / "cases.xlsx"
    assert main(["export", "cases", "--from", first, "--to", last, "-o", str(out)]) == 2
    assert "导出日期不对" in capsys.readouterr().err
    assert not out.exists()


def test_an_invite_lasts_a_bounded_number_of_days(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["roster", "import", str(ROSTER)]) == 0
    for days in ("1000000000", "0", "-3"):
        with pytest.raises(SystemExit) as refused:
            main(["invite", "13800000001", "--days", days])
        assert refused.value.code == 2
        assert "1 to 90" in capsys.readouterr().err
