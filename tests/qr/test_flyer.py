"""The printed flyer: rasterised as a printer would, its code read back as a phone would."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from PIL import Image
from reportlab.lib.units import mm

from bot.cli import main
from domain import risk_types
from locales import gettext
from qr.flyer import CODE_MM, Flyer, FlyerFontError, _wrap, code_png, code_svg, font_for, render, texts
from qr.links import flyer_link
from qr.payload import sign_village, verify_village
from tests.bot.test_cli_flyer import env  # noqa: F401 (fixture: a roster and the settings)
from tests.qr.printed import flyer_font, fonts_of, rasterise, read_codes, svg_image, text_of

SECRET = b"flyer-test-secret-0123456789"
UNTIL = date(2028, 12, 31)


def flyer(*, to_landing: bool, batch: str = "261123", code: str = "QS01") -> Flyer:
    payload = sign_village(SECRET, code, UNTIL, batch)
    link = flyer_link(
        payload, bot_username="fanghui_bot", public_url="https://fanghui.example.cn", to_landing=to_landing
    )
    return Flyer(code, "李家村", "青山镇", link, batch, UNTIL, web_form=to_landing)


def printed(tmp_path: Path, one: Flyer) -> Path:
    pdf = tmp_path / f"{one.village_code}.pdf"
    pdf.write_bytes(render([one], flyer_font()))
    return pdf


@pytest.mark.parametrize("to_landing", [False, True], ids=["deep-link", "landing-page"])
def test_the_printed_code_reads_back_as_the_link_with_the_batch_signed(
    tmp_path: Path, to_landing: bool
) -> None:
    one = flyer(to_landing=to_landing, batch="B2611")
    (page,) = rasterise(printed(tmp_path, one))
    (read,) = read_codes(page)
    assert read.text == one.link
    if to_landing:
        assert read.text.startswith("https://fanghui.example.cn/q/v")
        payload = read.text.rsplit("/", 1)[1]
    else:
        assert read.text.startswith("https://t.me/fanghui_bot?start=v")
        payload = read.text.split("start=")[1]
    found = verify_village(SECRET, payload, date(2028, 12, 31))
    assert (found.village_code, found.batch, found.valid_until) == ("QS01", "B2611", UNTIL)
    # Large enough for an old phone camera at arm's length.
    assert read.side_mm >= 80


def test_the_flyer_says_what_can_be_declared_how_and_whom_to_call(tmp_path: Path) -> None:
    words = text_of(printed(tmp_path, flyer(to_landing=False)))
    squeezed = "".join(words.split())
    assert "防止返贫“一键申报”" in squeezed
    assert "青山镇" in squeezed and "李家村" in squeezed
    for risk in risk_types.risk_types():
        assert risk.label("zh_Hans") in squeezed
    assert "扫码" in squeezed and "按提示填写" in squeezed and "村干部联系您" in squeezed
    assert "12317" in squeezed
    assert "个人信息仅用于核实和帮扶，不会公开" in squeezed
    assert "261123" in squeezed and "2028-12-31" in squeezed
    # Without the landing page there is no web form to promise.
    assert "网页填写" not in squeezed


def test_only_a_code_to_the_landing_page_promises_the_web_form(tmp_path: Path) -> None:
    squeezed = "".join(text_of(printed(tmp_path, flyer(to_landing=True))).split())
    assert "没有Telegram也可以扫码用网页填写" in squeezed
    assert "没有Telegram也可以扫码用网页填写" in "".join(texts(flyer(to_landing=True)))
    assert not any("网页" in line for line in texts(flyer(to_landing=False)))


def test_the_chinese_font_is_embedded_and_no_other_font_is_used(tmp_path: Path) -> None:
    pdf = printed(tmp_path, flyer(to_landing=False))
    fonts = fonts_of(pdf)
    assert fonts, "pdffonts listed no font"
    assert all(embedded for _, embedded in fonts), fonts
    assert any("WenQuanYi" in name for name, _ in fonts), fonts
    assert b"/FontFile2" in pdf.read_bytes()


def test_the_same_flyer_gives_the_same_bytes() -> None:
    one = flyer(to_landing=True)
    assert render([one], flyer_font()) == render([one], flyer_font())


def test_a_file_that_is_not_a_truetype_font_is_refused_in_one_line(tmp_path: Path) -> None:
    fake = tmp_path / "fake.ttf"
    fake.write_bytes(b"not a font at all" * 100)
    with pytest.raises(FlyerFontError) as refused:
        render([flyer(to_landing=False)], fake)
    assert str(fake) in str(refused.value) and "\n" not in str(refused.value)


def test_the_bare_code_as_png_and_svg_reads_back() -> None:
    link = flyer(to_landing=True).link
    png = Image.open(io.BytesIO(code_png(link)))
    assert [r.text for r in read_codes(png)] == [link]
    assert [r.text for r in read_codes(svg_image(code_svg(link)))] == [link]


def test_the_code_keeps_its_printed_size_whatever_the_link_length(tmp_path: Path) -> None:
    short = Flyer("A", "甲村", "乙镇", "https://t.me/b?start=x", "1", UNTIL, web_form=False)
    (page,) = rasterise(printed(tmp_path, short))
    (read,) = read_codes(page)
    assert read.text == short.link
    assert abs(read.side_mm - CODE_MM) < 2


def test_a_font_without_chinese_is_refused_naming_what_it_lacks() -> None:
    import reportlab

    latin_only = Path(reportlab.__file__).parent / "fonts" / "Vera.ttf"  # ships with reportlab
    with pytest.raises(FlyerFontError, match="lacks characters") as refused:
        render([flyer(to_landing=False)], latin_only)
    assert "防" in str(refused.value)


# --- in English ---------------------------------------------------------------------------------


def squeezed_text(pdf: Path) -> str:
    return "".join(text_of(pdf).split())


def test_a_flyer_in_english_says_it_all_in_english_and_its_code_reads_back(tmp_path: Path) -> None:
    one = replace(flyer(to_landing=True, batch="B2612"), language="en")
    pdf = printed(tmp_path, one)
    words = squeezed_text(pdf)
    assert (
        texts(one)[0] == gettext("en", "flyer.title") == "Prevent a return to poverty: declare with one scan"
    )
    assert "Preventareturntopoverty:declarewithonescan" in words
    assert "李家村,青山镇" in words  # the names as the roster has them
    for risk in risk_types.risk_types():
        assert "".join(risk.label("en").split()) in words
    assert "Scanthecode" in words and "Answerthequestions" in words and "Acadrecontactsyou" in words
    assert "NoTelegram?Youcanstillscanandfillinawebform" in words
    assert "Askavillagecadretodeclareforyou" in words
    assert "Questions?Call12317" in words and "nevermadepublic" in words
    assert "B2612" in words and "2028-12-31" in words
    assert not any(char in words for char in "扫码申报咨询电话批次")  # no Chinese but the names
    (page,) = rasterise(pdf)
    (read,) = read_codes(page)
    assert read.text == one.link and read.side_mm >= 80
    # The Chinese flyer is still the default, and the same with its language named.
    chinese = flyer(to_landing=True)
    assert chinese.language == "zh_Hans" and texts(chinese)[0] == "防止返贫“一键申报”"
    assert render([chinese], flyer_font()) == render([replace(chinese, language="zh_Hans")], flyer_font())


def test_a_note_is_wrapped_between_english_words_and_after_any_chinese_character() -> None:
    font = font_for(flyer_font(), [flyer(to_landing=True)])
    note = "Ask a village cadre to declare for you"
    lines = _wrap(note, font, 16, 50 * mm)
    assert len(lines) > 1 and " ".join(lines) == note
    chinese = "没有Telegram也可以扫码用网页填写" * 2
    lines = _wrap(chinese, font, 16, 50 * mm)
    assert len(lines) > 1 and "".join(lines) == chinese
    assert all("Telegram" in line or "Tele" not in line for line in lines)  # a word stays whole


def test_the_cli_draws_the_flyer_in_english_when_asked(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["qr", "flyer", "--village", "QS01", "-o", "en.pdf", "--lang", "en"]) == 0
    link = capsys.readouterr().out.splitlines()[1]
    words = squeezed_text(env / "en.pdf")
    assert "Preventareturntopoverty" in words and "防止返贫" not in words
    (page,) = rasterise(env / "en.pdf")
    assert [r.text for r in read_codes(page)] == [link]
    assert main(["qr", "flyer", "--village", "QS01", "-o", "zh.pdf"]) == 0
    assert "防止返贫“一键申报”" in squeezed_text(env / "zh.pdf")
    with pytest.raises(SystemExit):
        main(["qr", "flyer", "--village", "QS01", "-o", "fr.pdf", "--lang", "fr"])
