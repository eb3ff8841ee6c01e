"""Looking at a flyer as a printer and a phone would: rasterise with poppler, read the code with zxing.

`make test` installs poppler-utils and the font (Makefile: flyer-tools); when they are missing the
tests fail saying so rather than skip, so a machine without them cannot pass silently.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import pytest
import zxingcpp
from PIL import Image, ImageDraw

from bot.settings import FLYER_FONTS

DPI = 150
FONT = FLYER_FONTS[0]


def flyer_font() -> Path:
    """The flyer font the tests use, or a failure saying how to install it."""
    if not FONT.is_file():
        pytest.fail(f"{FONT} is missing: run `make flyer-tools` (Debian's fonts-wqy-zenhei)")
    return FONT


def _poppler(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        pytest.fail(f"{tool} is missing: run `make flyer-tools` (Debian's poppler-utils)")
    return found


def rasterise(pdf: Path, dpi: int = DPI) -> list[Image.Image]:
    """Each page of `pdf` as an image, by `pdftoppm -r DPI -png`."""
    prefix = pdf.with_suffix("")
    subprocess.run([_poppler("pdftoppm"), "-r", str(dpi), "-png", str(pdf), str(prefix)], check=True)
    pages = sorted(pdf.parent.glob(f"{prefix.name}-*.png"))
    return [Image.open(page) for page in pages]


@dataclass(frozen=True)
class Read:
    text: str
    side_mm: float  # the code's width on paper, from the decoder's corners


def read_codes(image: Image.Image, dpi: int = DPI) -> list[Read]:
    """The QR codes zxing finds in `image`, with their printed size."""
    found = []
    for code in zxingcpp.read_barcodes(image):
        corners = code.position
        width = math.dist(
            (corners.top_left.x, corners.top_left.y), (corners.top_right.x, corners.top_right.y)
        )
        found.append(Read(code.text, width / dpi * 25.4))
    return found


def text_of(pdf: Path) -> str:
    """The text a reader (or a screen reader) gets from `pdf`, by poppler's pdftotext."""
    result = subprocess.run(
        [_poppler("pdftotext"), "-enc", "UTF-8", str(pdf), "-"], check=True, capture_output=True
    )
    return result.stdout.decode("utf-8")


def fonts_of(pdf: Path) -> list[tuple[str, bool]]:
    """Each font of `pdf` and whether it is embedded, from poppler's pdffonts."""
    result = subprocess.run([_poppler("pdffonts"), str(pdf)], check=True, capture_output=True, text=True)
    rows = result.stdout.splitlines()[2:]
    # Columns: name type [type...] encoding emb sub uni object ID; emb is the fifth from the end.
    return [(row.split()[0], row.split()[-5] == "yes") for row in rows if row.strip()]


def svg_image(svg: bytes, scale: int = 8) -> Image.Image:
    """Paint the rectangles of qrcode's SVG path as pixels, so the SVG can be read like a photo."""
    root = ElementTree.fromstring(svg)
    assert root.tag.endswith("svg")
    _, _, width, height = (float(v) for v in root.attrib["viewBox"].split())
    paths = [el for el in root.iter() if el.tag.endswith("path")]
    assert len(paths) == 1
    image = Image.new("L", (int(width * scale), int(height * scale)), 255)
    draw = ImageDraw.Draw(image)
    number = r"(\d+(?:\.\d+)?)"
    squares = re.findall(rf"M{number},{number}H{number}V{number}H{number}z", paths[0].attrib["d"])
    assert squares, "no module in the SVG path"
    for x1, y1, x2, y2, _ in squares:
        draw.rectangle(
            (float(x1) * scale, float(y1) * scale, float(x2) * scale - 1, float(y2) * scale - 1), fill=0
        )
    return image
