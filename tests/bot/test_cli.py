"""The command line as the township's operator uses it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from datetime import date
from pathlib import Path

import pytest
from openpyxl import Workbook

from bot.cli import main
from qr.payload import verify_village
from tests.support import ROSTER

ROOT = Path(__file__).resolve().parents[2]
SECRET = "cli-test-secret-0123456789"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    for name in ("TELEGRAM_BOT_TOKEN", "QR_SECRET", "BOT_USERNAME", "DATABASE_URL", "DEFAULT_LOCALE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("QR_SECRET", SECRET)
    monkeypatch.setenv("ID_ENCRYPTION_KEY", "cli-test-id-key-0123456789")
    monkeypatch.setenv("BOT_USERNAME", "@fanghui_test_bot")
    return tmp_path


def test_roster_import_csv_then_again_changes_nothing(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["roster", "import", str(ROSTER)]) == 0
    assert "新增 5 人" in capsys.readouterr().out
    assert main(["roster", "import", str(ROSTER)]) == 0
    assert "新增 0 人，更新 0 人，未变 5 人" in capsys.readouterr().out


def test_roster_import_xlsx_with_chinese_header(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["乡镇", "村代码", "村", "姓名", "手机", "角色"])
    sheet.append(["青山镇", "QS01", "李家村", "张伟", 13800000001, "村干部"])  # phone typed as a number
    sheet.append(["青山镇", None, None, "王芳", "13800000003", "乡镇"])
    book.save(env / "roster.xlsx")
    assert main(["roster", "import", str(env / "roster.xlsx")]) == 0
    assert "新增 2 人" in capsys.readouterr().out


def test_bad_rows_are_reported_by_line_and_nothing_is_written(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = env / "bad.csv"
    bad.write_text(
        "township,village_code,village,name,phone,role\n"
        "青山镇,QS01,李家村,张伟,13800000001,cadre\n"
        "青山镇,QS02,王家村,李娜,1380000,cadre\n",
        encoding="utf-8",
    )
    assert main(["roster", "import", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "第 3 行" in err and "电话号码格式不对" in err and "未导入任何内容" in err
    # The good line 2 was not written either: an invite for 张伟 is refused.
    assert main(["invite", "13800000001"]) == 1
    assert "花名册里没有" in capsys.readouterr().err


def test_roster_file_not_utf8(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gbk = env / "gbk.csv"
    gbk.write_bytes("乡镇,村代码,村,姓名,手机,角色\n".encode("gbk"))
    assert main(["roster", "import", str(gbk)]) == 2
    assert "UTF-8" in capsys.readouterr().err


def test_invite_prints_a_one_time_deep_link(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["roster", "import", str(ROSTER)])
    capsys.readouterr()
    assert main(["invite", "138 0000 0001"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "张伟" in out[0]
    assert out[1].startswith("https://t.me/fanghui_test_bot?start=i_")
    assert len(out[1].split("start=")[1]) <= 64


def test_qr_link_is_signed_for_the_village(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["roster", "import", str(ROSTER)])
    capsys.readouterr()
    assert (
        main(["qr", "link", "--village", "QS01", "--valid-until", "2027-12-31", "--png", str(env / "q.png")])
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert "李家村" in out[0]
    payload = out[1].split("start=")[1]
    assert verify_village(SECRET.encode(), payload, date(2027, 12, 31)).village_code == "QS01"
    assert (env / "q.png").read_bytes().startswith(b"\x89PNG")
    assert main(["qr", "link", "--village", "NOPE"]) == 1
    assert "NOPE" in capsys.readouterr().err


def test_qr_link_opens_the_landing_page_when_public_url_is_set(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    main(["roster", "import", str(ROSTER)])
    capsys.readouterr()
    monkeypatch.setenv("PUBLIC_URL", "https://fanghui.example.cn/")
    assert main(["qr", "link", "--village", "QS01", "--valid-until", "2027-12-31"]) == 0
    link = capsys.readouterr().out.splitlines()[1]
    assert link.startswith("https://fanghui.example.cn/q/vQS01_")
    assert verify_village(SECRET.encode(), link.rsplit("/", 1)[1], date(2027, 12, 31)).village_code == "QS01"
    monkeypatch.setenv("QR_TARGET", "telegram")
    assert main(["qr", "link", "--village", "QS01"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("https://t.me/fanghui_test_bot?start=vQS01_")


def test_a_command_prints_its_result_and_no_log_lines(tmp_path: Path) -> None:
    """Each command brings the database up to date first: Alembic's steps are not its output."""
    environment = dict(
        os.environ, PYTHONPATH=str(ROOT), DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}", QR_SECRET=SECRET,
        ID_ENCRYPTION_KEY="cli-test-id-key-0123456789", BOT_USERNAME="@fanghui_test_bot", LOG_LEVEL="INFO",
    )  # fmt: skip
    campaign = tmp_path / "campaign.csv"
    later = date.today().replace(day=1).replace(year=date.today().year + 1)
    campaign.write_text(f"活动,集中排查\n乡镇,青山镇\n村,QS01\n阶段,排查,{later}\n", encoding="utf-8")
    for command, result in (
        (["roster", "import", str(ROSTER)], "新增 5 人"),
        (["campaign", "import", str(campaign)], "已导入活动“集中排查”"),
        (["migrate"], "database is up to date"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "bot", *command],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert result in done.stdout and len(done.stdout.splitlines()) == 1
        # (A warning would still be shown: e.g. catalogs edited and not compiled in a working copy.)
        assert " INFO " not in done.stderr and "alembic" not in done.stderr, done.stderr


def test_run_without_token_says_what_to_set(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_BOT_TOKEN", "QR_SECRET")}
    environment["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--require-token"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "TELEGRAM_BOT_TOKEN is not set" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_setting_is_one_line(tmp_path: Path) -> None:
    environment = dict(os.environ, PYTHONPATH=str(ROOT), TIMEZONE="Mars/Olympus", TELEGRAM_BOT_TOKEN="1:x")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("TIMEZONE:") and "Traceback" not in result.stderr


def test_run_without_token_starts_the_sandbox(tmp_path: Path) -> None:
    """One line: a sandbox, its address, how to use Telegram; its own database and secret in var/."""
    environment = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_BOT_TOKEN", "QR_SECRET")}
    environment.update(PYTHONPATH=str(ROOT), WEB_PORT="0", DATABASE_URL=f"sqlite:///{tmp_path / 'prod.db'}")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "沙盒" in line and "TELEGRAM_BOT_TOKEN" in line
        url = line.split("http://", 1)[1].split()[0]
        with urllib.request.urlopen(f"http://{url}", timeout=10) as page:
            assert "重置" in page.read().decode("utf-8")
        assert (tmp_path / "var" / "sandbox.db").exists()
        assert (tmp_path / "var" / "sandbox-qr-secret").stat().st_mode & 0o077 == 0
        assert not (tmp_path / "prod.db").exists()  # DATABASE_URL is the production one: untouched
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
