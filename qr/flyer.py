"""The printable village flyer (明白纸): an A4 PDF with the QR code, and the bare code as PNG or SVG.

Made for a small phone camera and elderly readers: the code is drawn as vectors, its modules
filling a square of `CODE_MM` whatever the link's length, inside the four-module quiet zone
scanners need; the text is large, in a Chinese TrueType font embedded (subset) in the PDF so
the flyer prints the same on any machine. Its words come from the catalogs (the flyer namespace
and the risk types' labels), in Simplified Chinese, like the paper it replaces, or in English.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

import qrcode
import qrcode.image.svg
from qrcode.constants import ERROR_CORRECT_Q
from reportlab.lib.colors import Color, black, white
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.pdfgen.canvas import Canvas

from domain import risk_types
from domain.model import HOTLINE
from locales import gettext

# Side of the code's modules on paper, quiet zone not included: well above the 8 cm that lets an
# old phone camera read it from arm's length, at about 2 mm a module for the links we print.
CODE_MM = 84.0
QUIET_MODULES = 4
MARGIN_MM = 15.0

ARROW = "↓"
LABEL_COLUMNS = 3
LABEL_PT = 19.0  # the risk types' labels, unless one must be made smaller to fit its column
BULLET_MM = 7.0  # before each label: its bullet and a space
LANGUAGE = "zh_Hans"
# A word of Latin letters, digits or signs (with the spaces after it) is kept whole on a line;
# anything else (a Chinese character) may end one.
_UNIT = re.compile(r"[!-~]+ *|. *")

RED = Color(0.72, 0.07, 0.07)
GREY = Color(0.35, 0.35, 0.35)


class FlyerFontError(Exception):
    """The font cannot be embedded or lacks characters the flyer needs; one line saying which."""


@dataclass(frozen=True)
class Flyer:
    """What one village's flyer says. `web_form`: the code opens the landing page, with its form."""

    village_code: str
    village: str
    township: str
    link: str
    batch: str
    valid_until: date
    web_form: bool
    language: str = LANGUAGE  # the catalog its words come from: zh_Hans or en


@dataclass(frozen=True)
class Words:
    """What a flyer prints, in its language. The notes are lines broken where a reader pauses
    (a catalog text's lines); a line too long for its column is wrapped again to fit."""

    title: str
    place: str
    scan: str
    how: str
    steps: tuple[str, ...]
    web_form: tuple[str, ...]
    help: tuple[str, ...]
    risks_heading: str
    risks: tuple[str, ...]
    hotline: str
    privacy: str
    footer: str


def words(flyer: Flyer) -> Words:
    """The flyer's words from the catalogs, in `flyer.language`."""

    def say(key: str, **params: str) -> str:
        return gettext(flyer.language, key).format(**params)

    return Words(
        title=say("flyer.title"),
        place=say("flyer.place", township=flyer.township, village=flyer.village),
        scan=say("flyer.scan"),
        how=say("flyer.how"),
        steps=(say("flyer.step_scan"), say("flyer.step_answer"), say("flyer.step_contact")),
        web_form=tuple(say("flyer.web_form").split("\n")) if flyer.web_form else (),
        help=tuple(say("flyer.help").split("\n")),
        risks_heading=say("flyer.risks"),
        risks=tuple(risk.label(flyer.language) for risk in risk_types.risk_types()),
        hotline=say("flyer.hotline", hotline=HOTLINE),
        privacy=say("flyer.privacy"),
        footer=say(
            "flyer.footer",
            batch=flyer.batch,
            until=flyer.valid_until.isoformat(),
            code=flyer.village_code,
        ),
    )


def _code(link: str) -> qrcode.QRCode:
    # Q (25 % of the code may be lost) rather than M: paper gets folded, stained and sun-bleached.
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_Q, box_size=10, border=QUIET_MODULES)
    code.add_data(link)
    code.make(fit=True)
    return code


def modules(link: str) -> list[list[bool]]:
    """The QR code's modules for `link` (True is dark), without the quiet zone."""
    inner = slice(QUIET_MODULES, -QUIET_MODULES)
    return [list(row[inner]) for row in _code(link).get_matrix()[inner]]


def code_png(link: str) -> bytes:
    """The bare code as a PNG (10 pixels a module, with its quiet zone)."""
    buffer = io.BytesIO()
    _code(link).make_image().save(buffer)
    return buffer.getvalue()


def code_svg(link: str) -> bytes:
    """The bare code as an SVG (one path, 1 mm a module), for printers and layout software."""
    buffer = io.BytesIO()
    _code(link).make_image(image_factory=qrcode.image.svg.SvgPathImage).save(buffer)
    return buffer.getvalue()


def texts(flyer: Flyer) -> list[str]:
    """Every piece of text the flyer prints, in reading order."""
    w = words(flyer)
    return [
        w.title, w.place, w.scan, w.how, *w.steps, ARROW, *w.web_form, *w.help,
        w.risks_heading, *w.risks, w.hotline, w.privacy, w.footer,
    ]  # fmt: skip


@cache
def _registered(path: Path) -> tuple[str, frozenset[int]]:
    """Register the font at `path` once per process; its name and the characters it has."""
    try:
        # A .ttc holds several faces: the first is the regular one in the fonts we know.
        font = TTFont(f"FlyerCJK{len(_registered_names)}", str(path), subfontIndex=0)
    except Exception as exc:  # a damaged file can fail anywhere in reportlab's parser
        reason = " ".join(str(exc).split()) if isinstance(exc, TTFError | OSError) else type(exc).__name__
        raise FlyerFontError(
            f"{path}: not a TrueType font that can be embedded in a PDF ({reason})"
        ) from None
    pdfmetrics.registerFont(font)
    _registered_names.append(font.fontName)
    return font.fontName, frozenset(font.face.charToGlyph)


_registered_names: list[str] = []


def font_for(path: Path, flyers: Sequence[Flyer]) -> str:
    """The registered name of the font at `path`, checked to have every character `flyers` print."""
    name, chars = _registered(path.resolve())
    # In reading order, so the message starts with what the title lacks.
    missing = list(dict.fromkeys(c for f in flyers for line in texts(f) for c in line if ord(c) not in chars))
    if missing:
        raise FlyerFontError(f"{path}: lacks characters the flyer prints: {''.join(missing[:20])}")
    return name


def _fit(text: str, font: str, size: float, width: float) -> float:
    """`size`, made smaller until `text` fits in `width` points."""
    while size > 6 and pdfmetrics.stringWidth(text, font, size) > width:
        size -= 0.5
    return size


def _columns(labels: Sequence[str], rows: int, font: str, full: float) -> list[float]:
    """The widths (mm) of the risk labels' columns, filled top to bottom: equal, unless a label
    would have to be made smaller (English ones are longer); then each column as wide as its
    widest label, all scaled alike, so the list is made no smaller than it must be."""
    groups = [labels[c * rows : (c + 1) * rows] for c in range(LABEL_COLUMNS)]
    text = [max((pdfmetrics.stringWidth(one, font, LABEL_PT) / mm for one in g), default=0) for g in groups]
    if max(text) + BULLET_MM <= full / LABEL_COLUMNS:
        return [full / LABEL_COLUMNS] * LABEL_COLUMNS
    scale = (full - BULLET_MM * LABEL_COLUMNS) / sum(text)
    return [BULLET_MM + width * scale for width in text]


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """`text` broken into lines of at most `width` points: after any Chinese character, between
    words of Latin letters (a word longer than a line is broken where it must)."""
    lines = [""]
    for unit in _UNIT.findall(text):
        for piece in [unit] if pdfmetrics.stringWidth(unit.rstrip(), font, size) <= width else unit:
            if lines[-1] and pdfmetrics.stringWidth((lines[-1] + piece).rstrip(), font, size) > width:
                lines.append("")
            lines[-1] += piece
    return [line.rstrip() for line in lines]


class _Page:
    """Drawing with y measured in millimetres from the top of the page, as a layout is read."""

    def __init__(self, canvas: Canvas, font: str) -> None:
        self.canvas = canvas
        self.font = font
        self.width, self.height = A4

    def text(
        self,
        x_mm: float,
        top_mm: float,
        text: str,
        size: float,
        *,
        centre: bool = False,
        bold: bool = False,
        colour: Color = black,
    ) -> None:
        """Draw `text` with its baseline at `top_mm`; bold by stroking the outline (the font has none)."""
        c = self.canvas
        x = x_mm * mm - (pdfmetrics.stringWidth(text, self.font, size) / 2 if centre else 0)
        c.saveState()
        c.setFillColor(colour)
        c.setStrokeColor(colour)
        c.setLineWidth(size / 32)
        line = c.beginText(x, self.height - top_mm * mm)
        line.setFont(self.font, size)
        line.setTextRenderMode(2 if bold else 0)
        line.textOut(text)
        c.drawText(line)
        c.restoreState()

    def code(self, left_mm: float, top_mm: float, grid: list[list[bool]]) -> float:
        """Draw the modules with their quiet zone from (left, top); the side of the whole, in mm."""
        module = CODE_MM / len(grid)
        side = module * (len(grid) + 2 * QUIET_MODULES)
        c = self.canvas
        c.saveState()
        c.setFillColor(white)
        c.rect(left_mm * mm, self.height - (top_mm + side) * mm, side * mm, side * mm, stroke=0, fill=1)
        c.setFillColor(black)
        origin_x = left_mm + QUIET_MODULES * module
        origin_top = top_mm + QUIET_MODULES * module
        for r, row in enumerate(grid):
            c_start = None
            # One rectangle per run of dark modules in a row: fewer, cleaner shapes than squares.
            for col, dark in enumerate([*row, False]):
                if dark and c_start is None:
                    c_start = col
                elif not dark and c_start is not None:
                    x = (origin_x + c_start * module) * mm
                    y = self.height - (origin_top + (r + 1) * module) * mm
                    c.rect(x, y, (col - c_start) * module * mm, module * mm, stroke=0, fill=1)
                    c_start = None
        c.restoreState()
        return side

    def dot(self, x_mm: float, top_mm: float) -> None:
        """A bullet, drawn rather than typed: the font's bullet glyphs are too heavy or missing."""
        self.canvas.circle(x_mm * mm, self.height - top_mm * mm, 1.1 * mm, stroke=0, fill=1)

    def rule(self, top_mm: float, colour: Color = RED, width: float = 1.2) -> None:
        c = self.canvas
        c.saveState()
        c.setStrokeColor(colour)
        c.setLineWidth(width)
        y = self.height - top_mm * mm
        c.line(MARGIN_MM * mm, y, self.width - MARGIN_MM * mm, y)
        c.restoreState()


def _draw(page: _Page, flyer: Flyer) -> None:
    font = page.font
    full = page.width / mm - 2 * MARGIN_MM
    middle = page.width / mm / 2
    w = words(flyer)

    page.text(middle, 30, w.title, _fit(w.title, font, 40, full * mm), centre=True, bold=True, colour=RED)
    page.text(middle, 45, w.place, _fit(w.place, font, 28, full * mm), centre=True, bold=True)
    page.rule(51)

    # The code on the left, its quiet zone inside the page margin; how to declare on the right.
    grid = modules(flyer.link)
    quiet = QUIET_MODULES * CODE_MM / len(grid)
    code_left = MARGIN_MM - quiet / 2
    side = page.code(code_left, 54, grid)
    page.text(
        code_left + side / 2, 54 + side + 3, w.scan, _fit(w.scan, font, 20, side * mm), centre=True, bold=True
    )
    code_bottom = 54 + side + 3

    column = code_left + side + 4
    width = (page.width / mm - MARGIN_MM - column) * mm
    top = 54 + quiet + 8
    page.text(column, top, w.how, _fit(w.how, font, 24, width), bold=True, colour=RED)
    for i, step in enumerate(w.steps):
        top += 15
        page.text(column, top, step, _fit(step, font, 22, width), bold=True)
        if i < len(w.steps) - 1:
            page.text(column + 4, top + 7.5, ARROW, 16, colour=GREY)
    top += 6
    for note in w.web_form:
        for line in _wrap(note, font, 16, width):
            top += 8
            page.text(column, top, line, 16, bold=True, colour=RED)
    top += 4
    for note in w.help:
        for line in _wrap(note, font, 16, width):
            top += 8
            page.text(column, top, line, 16)

    top = max(code_bottom, top) + 15
    page.text(MARGIN_MM, top, w.risks_heading, _fit(w.risks_heading, font, 20, full * mm), bold=True)
    labels = w.risks
    rows = -(-len(labels) // LABEL_COLUMNS)
    widths = _columns(labels, rows, font, full)
    # One size for the whole list, the largest at which every label fits its column.
    size = min(
        _fit(label, font, LABEL_PT, (widths[i // rows] - BULLET_MM) * mm) for i, label in enumerate(labels)
    )
    for i, label in enumerate(labels):
        r, col = i % rows, i // rows
        left, baseline = MARGIN_MM + sum(widths[:col]), top + 12 + r * 10.5
        page.dot(left + 2.5, baseline - 2.3)
        page.text(left + 6, baseline, label, size)
    top += 12 + (rows - 1) * 10.5 + 10

    page.rule(top, colour=GREY, width=0.5)
    page.text(middle, top + 15, w.hotline, _fit(w.hotline, font, 30, full * mm), centre=True, bold=True)
    page.text(middle, top + 27, w.privacy, _fit(w.privacy, font, 16, full * mm), centre=True, colour=GREY)
    page.text(middle, page.height / mm - 10, w.footer, 8, centre=True, colour=GREY)


def render(flyers: Sequence[Flyer], font_file: Path) -> bytes:
    """An A4 PDF with one page per flyer, the font embedded; `FlyerFontError` when it cannot be."""
    font = font_for(font_file, flyers)
    buffer = io.BytesIO()
    # invariant: no creation date or random id, so the same flyer gives the same bytes.
    canvas = Canvas(buffer, pagesize=A4, invariant=True, initialFontName=font, initialFontSize=12)
    title = gettext(flyers[0].language if flyers else LANGUAGE, "flyer.title")
    canvas.setTitle(f"{title} {', '.join(words(f).place for f in flyers)}")
    canvas.setSubject(", ".join(f"{f.village_code} {f.batch}" for f in flyers))
    for flyer in flyers:
        _draw(_Page(canvas, font), flyer)
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()
