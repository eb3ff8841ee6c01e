"""The overview's charts, drawn on the server as SVG images with matplotlib.

Why matplotlib: the console runs no script (its CSP allows none), loads nothing from a CDN and
has to work offline in a township office, so a chart is an image drawn on the server, which any
phone shows. matplotlib is Python's established plotting library (bars, stacked bars, a series of
days), pinned in pyproject.toml. It is used through `matplotlib.figure.Figure`, never pyplot:
no global registry of figures, nothing left open, safe in a worker thread (charts are drawn off
the event loop). `svg.fonttype = "none"` keeps text as text: Chinese labels are rendered by the
browser's own fonts (no glyph outlines, small files). The SVG is then made to need no CSS: each
`style` attribute becomes presentation attributes, so the image obeys the console's CSP
(style-src 'self') even when opened on its own.

Every chart has the same figures beside it as a table (`Chart` is both): the picture is a help,
the table is what a screen reader, a printout and the tests read.
"""

from __future__ import annotations

import html
import io
import logging
import re
import unicodedata
import warnings
from dataclasses import dataclass, replace
from functools import lru_cache

import matplotlib
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

# What lays the text out on the server: a Chinese font when one is installed (the browser
# renders the text with its own fonts; this only measures it), else matplotlib's own.
_WANTED = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "Microsoft YaHei", "PingFang SC")
# The files of those fonts that Debian and the Makefile install, added by path too: matplotlib
# keeps its list of fonts in a cache that a font installed after its first run is missing from.
_FILES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
)
_INSTALLED = {f.name for f in font_manager.fontManager.ttflist}
if not _INSTALLED.intersection(_WANTED):
    for _file in _FILES:
        try:
            font_manager.fontManager.addfont(_file)
        except (OSError, RuntimeError, ValueError):
            continue
    _INSTALLED = {f.name for f in font_manager.fontManager.ttflist}
matplotlib.rcParams.update(
    {
        "svg.fonttype": "none",
        "svg.hashsalt": "fanghui-overview",  # the same figures give the same file
        "font.family": [f for f in _WANTED if f in _INSTALLED] + ["DejaVu Sans"],
        "font.size": 10,
        "text.parse_math": False,  # a "$" in a village's name is a dollar sign
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)
# Without a Chinese font on the server the text is measured roughly, and said so on every draw.
warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)
logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)

# What the browser renders the text with: the phone's or the PC's Chinese fonts.
FONTS = (
    "'PingFang SC','Hiragino Sans GB','Microsoft YaHei','Noto Sans CJK SC','Source Han Sans SC',"
    "'WenQuanYi Zen Hei',sans-serif"
)
PALETTE = ("#1a73e8", "#e8710a", "#188038", "#9334e6", "#d93025", "#12b5cb")
GOOD, BAD = "#188038", "#d93025"
# A picture about as wide as a phone's screen, so its text is still legible there (a point is
# 4/3 of a CSS pixel: 4.3 inches are 413 pixels, shown at the card's width).
WIDTH = 4.3  # inches; 72 SVG points each
BAR = 0.3  # inches a row of bars takes
TICKS = 10  # points: the labels' size
LABEL = 1.7  # inches a bar's label may take (eleven Chinese characters); the table has all of it
MOST = 12  # bars a chart draws; the rest of a long list is one bar (the table has every row)


@dataclass(frozen=True)
class Series:
    label: str
    values: tuple[int, ...]  # one a row
    color: str = ""


@dataclass(frozen=True)
class Chart:
    """One chart and the table beside it: rows (the categories) by series."""

    name: str
    title: str
    head: str  # the table's first column: what the rows are
    rows: tuple[str, ...]
    series: tuple[Series, ...]
    columns: bool = False  # upright columns along a time line, rather than bars across
    notes: tuple[str, ...] = ()
    fold: bool = False  # a long table, shown folded under the chart
    total: str = ""  # the label of a total row (none when "")
    others: str = ""  # the label of the rest of a long list in the picture (never folded when "")

    @property
    def empty(self) -> bool:
        return not any(v for s in self.series for v in s.values)

    @property
    def totals(self) -> tuple[int, ...]:
        """Each row's sum over the series."""
        return tuple(sum(s.values[i] for s in self.series) for i in range(len(self.rows)))

    @property
    def grand_total(self) -> tuple[int, ...]:
        """Each series' sum over the rows."""
        return tuple(sum(s.values) for s in self.series)

    @property
    def folded(self) -> bool:
        """Whether the table is long enough to be shown folded."""
        return self.fold or len(self.rows) > MOST

    @property
    def picture(self) -> Chart:
        """What is drawn: the rows, or of a long list the largest and one bar for the rest."""
        if not self.others or len(self.rows) <= MOST:
            return self
        totals = self.totals
        kept = sorted(sorted(range(len(self.rows)), key=lambda i: -totals[i])[: MOST - 1])
        rest = sorted(set(range(len(self.rows))) - set(kept))
        return replace(
            self,
            rows=(*(self.rows[i] for i in kept), self.others),
            series=tuple(
                replace(s, values=(*(s.values[i] for i in kept), sum(s.values[i] for i in rest)))
                for s in self.series
            ),
        )

    @property
    def size(self) -> tuple[int, int]:
        """The picture's width and height, in CSS pixels (4/3 of an SVG point)."""
        return round(WIDTH * 96), round(_height(self.picture) * 96)


def _height(chart: Chart) -> float:
    if chart.columns:
        return 2.4
    return 0.45 + _legend(chart) + BAR * max(len(chart.rows), 1)


def _keys(chart: Chart) -> int:
    """How many series the legend names a line: as many as fit across. A key is its colour, the
    gap to its label and the label (matplotlib's 2 + 0.8 em), and 2 em to the next key; the
    legend starts a little in from the edge (its anchor and border: 0.2 inches with the right
    margin)."""
    em = TICKS / 72
    key = max(_width_in(s.label, TICKS) for s in chart.series) + 2.8 * em
    return max(1, min(len(chart.series), int((WIDTH - 0.2 + 2 * em) // (key + 2 * em))))


def _legend(chart: Chart) -> float:
    """The inches the legend takes above the bars (none for one series)."""
    return 0.0 if len(chart.series) < 2 else 0.1 + 0.25 * -(-len(chart.series) // _keys(chart))


def _short(label: str) -> str:
    """The label, cut short with "…" where it is wider than LABEL."""
    if _width_in(label, TICKS) <= LABEL:
        return label
    while label and _width_in(label + "…", TICKS) > LABEL:
        label = label[:-1]
    return label.rstrip() + "…"


def _width_in(text: str, points: float) -> float:
    """Roughly how wide `text` is: a Chinese character is 1 em, anything else about 0.6."""
    wide = sum(1 for c in text if unicodedata.east_asian_width(c) in "WF")
    return (wide + 0.6 * (len(text) - wide)) * points / 72


def draw(chart: Chart) -> bytes:
    """The chart's picture as an SVG document (the same figures give the same bytes, drawn once)."""
    return _draw(chart.picture)


@lru_cache(maxsize=128)
def _draw(chart: Chart) -> bytes:
    height = _height(chart)
    figure = Figure(figsize=(WIDTH, height))
    if chart.empty:
        figure.text(0.5, 0.5, "—", ha="center", va="center", fontsize=16, color="#666")
    elif chart.columns:
        _columns(figure, chart, height)
    else:
        _bars(figure, chart, height)
    out = io.StringIO()
    with warnings.catch_warnings():  # the filter above, also where it was reset (as pytest does)
        warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)
        figure.savefig(out, format="svg", metadata={"Date": None})
    return plain_svg(out.getvalue(), chart.title).encode("utf-8")


def _colors(chart: Chart) -> list[str]:
    return [s.color or PALETTE[i % len(PALETTE)] for i, s in enumerate(chart.series)]


def _bars(figure: Figure, chart: Chart, height: float) -> None:
    """Horizontal bars, one a row, the series stacked; each row's figure at its end."""
    labels = [_short(r) for r in chart.rows]
    left = min(0.5, (max(_width_in(label, TICKS) for label in labels) + 0.2) / WIDTH)
    top = 0.1 + _legend(chart)
    figure.subplots_adjust(left=left, right=0.94, top=1 - top / height, bottom=0.35 / height)
    axes = figure.add_subplot()
    places = list(range(len(labels)))
    start = [0] * len(labels)
    for series, color in zip(chart.series, _colors(chart), strict=True):
        axes.barh(places, series.values, left=start, color=color, label=series.label, height=0.68)
        start = [a + b for a, b in zip(start, series.values, strict=True)]
    for place, total in zip(places, chart.totals, strict=True):
        axes.text(total, place, f" {total}", va="center", fontsize=TICKS)
    axes.set_yticks(places, labels, fontsize=TICKS)
    axes.set_ylim(len(labels) - 0.5, -0.5)  # the first row on top
    axes.set_xlim(0, max(max(chart.totals) * 1.15, 1))
    axes.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
    axes.tick_params(axis="x", labelsize=TICKS - 1, colors="#555")
    axes.tick_params(axis="y", length=0)
    if len(chart.series) > 1:
        # matplotlib fills a legend column by column (the first columns one key longer): handed
        # column c the series c, c + keys, ..., it reads along the lines, in the series' order.
        keys = _keys(chart)
        handles, names = axes.get_legend_handles_labels()
        order = [i for c in range(keys) for i in range(c, len(handles), keys)]
        axes.legend(
            [handles[i] for i in order],
            [names[i] for i in order],
            loc="upper left",
            bbox_to_anchor=(0.01, 1.0),
            bbox_transform=figure.transFigure,
            ncols=keys,
            frameon=False,
            fontsize=TICKS,
        )


def _columns(figure: Figure, chart: Chart, height: float) -> None:
    """Upright columns along days: a label under every seventh, each day's figure above it."""
    figure.subplots_adjust(left=0.09, right=0.93, top=1 - 0.2 / height, bottom=0.4 / height)
    axes = figure.add_subplot()
    places = list(range(len(chart.rows)))
    start = [0] * len(places)
    for series, color in zip(chart.series, _colors(chart), strict=True):
        axes.bar(places, series.values, bottom=start, color=color, width=0.75)
        start = [a + b for a, b in zip(start, series.values, strict=True)]
    for place, total in zip(places, chart.totals, strict=True):
        if total:
            axes.text(place, total, str(total), ha="center", va="bottom", fontsize=TICKS - 3)
    shown = [p for p in places if (len(places) - 1 - p) % 7 == 0]  # the last day and every 7th before
    axes.set_xticks(shown, [chart.rows[p] for p in shown], fontsize=TICKS - 1)
    axes.set_xlim(-0.6, len(places) - 0.4)
    axes.set_ylim(0, max(max(chart.totals) * 1.2, 1))
    axes.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    axes.tick_params(axis="y", labelsize=TICKS - 1, colors="#555")


# --- an SVG that needs no style sheet -------------------------------------------------------------

# The CSS properties matplotlib writes that SVG also takes as attributes.
PRESENTATION = frozenset(
    {
        "fill", "fill-opacity", "fill-rule", "stroke", "stroke-width", "stroke-linecap",
        "stroke-linejoin", "stroke-miterlimit", "stroke-opacity", "stroke-dasharray",
        "stroke-dashoffset", "opacity", "font-size", "font-family", "font-weight", "font-style",
        "text-anchor", "dominant-baseline", "clip-path", "visibility", "display", "letter-spacing",
    }
)  # fmt: skip
_STYLE = re.compile(r' style="([^"]*)"')
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)
_SHEET = re.compile(r"\s*<defs>\s*<style[^>]*>.*?</style>\s*</defs>", re.S)
_ROOT = re.compile(r"<svg\b[^>]*>")


def _attributes(match: re.Match[str]) -> str:
    found: list[str] = []
    for declaration in match[1].split(";"):
        name, _, value = declaration.partition(":")
        name, value = name.strip(), value.strip()
        if name not in PRESENTATION or not value:
            continue
        if name == "font-family":
            value = FONTS
        found.append(f' {name}="{html.escape(value)}"')
    return "".join(found)


def plain_svg(svg: str, title: str) -> str:
    """matplotlib's SVG with no CSS in it (style attributes become presentation attributes, its
    style sheet the root's attributes), no metadata, and a <title>."""
    svg = _METADATA.sub("", svg)
    svg = _SHEET.sub("", svg)
    svg = _STYLE.sub(_attributes, svg)
    root = _ROOT.search(svg)
    assert root is not None, "matplotlib wrote no <svg>"
    opened = root[0][:-1] + ' stroke-linejoin="round" stroke-linecap="butt">'
    return svg[: root.start()] + opened + f"\n <title>{html.escape(title)}</title>" + svg[root.end() :]
