"""The printed flyer: rasterised as a printer would, its code read back as a phone would."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest
from PIL import Image

from domain import risk_types
from qr.flyer import CODE_MM, Flyer, FlyerFontError, code_png, code_svg, render, texts
from qr.links import flyer_link
from qr.payload import sign_village, verify_village
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
