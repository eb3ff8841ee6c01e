"""`python -m bot qr flyer` as the township's operator uses it before a print run."""

from __future__ import annotations

import io
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

import bot.settings
from bot.cli import main
from qr.payload import verify_village
from tests.qr.printed import flyer_font, rasterise, read_codes, svg_image, text_of
from tests.support import ROSTER

SECRET = "cli-flyer-secret-0123456789"
ROSTER_VILLAGES = {"QS01": "李家村", "QS02": "王家村", "QS03": "陈家村", "BS01": "白水村"}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    for name in (
        "TELEGRAM_BOT_TOKEN",
        "QR_SECRET",
        "BOT_USERNAME",
        "DATABASE_URL",
        "DEFAULT_LOCALE",
        "PUBLIC_URL",
        "QR_TARGET",
        "FLYER_FONT",
        "TIMEZONE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("QR_SECRET", SECRET)
    monkeypatch.setenv("ID_ENCRYPTION_KEY", "cli-flyer-id-key-0123456789")
    monkeypatch.setenv("BOT_USERNAME", "@fanghui_test_bot")
    flyer_font()
    assert main(["roster", "import", str(ROSTER)]) == 0
    capsys.readouterr()
    return tmp_path


def payload_of(link: str) -> str:
    return link.split("start=")[1] if "start=" in link else link.rsplit("/q/", 1)[1]


def test_one_village_flyer_png_and_svg_carry_the_signed_batch(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["qr", "flyer", "--village", "QS01", "-o", "qs01.pdf", "--batch", "B7"]
    argv += ["--valid-until", "2027-12-31", "--png", "qs01.png", "--svg", "qs01.svg"]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert "李家村" in out[0]
    link = out[1]
    assert link.startswith("https://t.me/fanghui_test_bot?start=vQS01_")
    found = verify_village(SECRET.encode(), payload_of(link), date(2027, 12, 31))
    assert (found.village_code, found.batch) == ("QS01", "B7")

    (page,) = rasterise(env / "qs01.pdf")
    assert [r.text for r in read_codes(page)] == [link]
    assert [r.text for r in read_codes(Image.open(io.BytesIO((env / "qs01.png").read_bytes())))] == [link]
    assert [r.text for r in read_codes(svg_image((env / "qs01.svg").read_bytes()))] == [link]


def test_the_batch_defaults_to_today_in_the_configured_time_zone(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Far enough from Beijing that the two calendars disagree for part of every day.
    monkeypatch.setenv("TIMEZONE", "Pacific/Kiritimati")
    zone = ZoneInfo("Pacific/Kiritimati")
    before = datetime.now(zone).strftime("%y%m%d")
    assert main(["qr", "flyer", "--village", "QS02", "-o", "qs02.pdf"]) == 0
    after = datetime.now(zone).strftime("%y%m%d")
    link = capsys.readouterr().out.splitlines()[1]
    found = verify_village(SECRET.encode(), payload_of(link), date.today())
    assert found.batch in {before, after}
    assert found.valid_until == date(date.today().year + 2, 12, 31)  # as `qr link`


def test_all_writes_one_flyer_per_village_named_by_its_code(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["qr", "flyer", "--all", "-o", "print", "--batch", "2611A"]) == 0
    capsys.readouterr()
    written = sorted(p.name for p in (env / "print").iterdir())
    assert written == sorted(f"{code}.pdf" for code in ROSTER_VILLAGES)
    for code, name in ROSTER_VILLAGES.items():
        pdf = env / "print" / f"{code}.pdf"
        assert name in text_of(pdf)
        (page,) = rasterise(pdf)
        (read,) = read_codes(page)
        found = verify_village(SECRET.encode(), payload_of(read.text), date.today())
        assert (found.village_code, found.batch) == (code, "2611A")


def test_with_public_url_the_code_opens_the_landing_page_without_asking_for_the_bot(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBLIC_URL", "https://fanghui.example.cn/")
    monkeypatch.delenv("BOT_USERNAME")  # and no token: the landing page needs neither
    assert main(["qr", "flyer", "--village", "BS01", "-o", "bs01.pdf", "--batch", "L1"]) == 0
    link = capsys.readouterr().out.splitlines()[1]
    assert link.startswith("https://fanghui.example.cn/q/vBS01_")
    (page,) = rasterise(env / "bs01.pdf")
    assert [r.text for r in read_codes(page)] == [link]
    assert "网页填写" in "".join(text_of(env / "bs01.pdf").split())


def test_no_font_is_one_clear_line_and_exit_2(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.settings, "FLYER_FONTS", (env / "no-such-font.ttc",))
    assert main(["qr", "flyer", "--village", "QS01", "-o", "qs01.pdf"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "fonts-wqy-zenhei" in err and "FLYER_FONT" in err
    assert not (env / "qs01.pdf").exists()


@pytest.mark.parametrize("content", [None, b"\x00\x01\x00\x00 but not a font" * 50], ids=["missing", "junk"])
def test_a_bad_flyer_font_setting_is_one_line_and_exit_2(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, content: bytes | None
) -> None:
    chosen = env / "chosen.ttf"
    if content is not None:
        chosen.write_bytes(content)
    monkeypatch.setenv("FLYER_FONT", str(chosen))
    assert main(["qr", "flyer", "--all", "-o", "print"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(chosen) in err
    assert not (env / "print").exists()  # the font is checked before anything is written


def test_flyer_font_setting_names_the_font_to_embed(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.settings, "FLYER_FONTS", ())
    monkeypatch.setenv("FLYER_FONT", str(flyer_font()))
    assert main(["qr", "flyer", "--village", "QS03", "-o", "qs03.pdf"]) == 0
    assert "陈家村" in text_of(env / "qs03.pdf")


def test_unknown_village_and_bad_batch_are_refused(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["qr", "flyer", "--village", "NOPE", "-o", "x.pdf"]) == 1
    assert "NOPE" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        main(["qr", "flyer", "--village", "QS01", "-o", "x.pdf", "--batch", "2026-11"])
    assert refused.value.code == 2
    with pytest.raises(SystemExit):
        main(["qr", "flyer", "--all", "-o", "print", "--png", "x.png"])
    assert not (env / "x.pdf").exists()
