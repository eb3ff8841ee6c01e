"""The overview's pictures: a legend is laid out within the picture, whatever the labels."""

from __future__ import annotations

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bot.console import charts


def _legend_span(chart: charts.Chart) -> tuple[float, float, int, list[str]]:
    """Where the legend starts and ends, in inches from the picture's left, its rows, and its
    labels in reading order (line by line, left to right)."""
    height = charts._height(chart)
    figure = Figure(figsize=(charts.WIDTH, height))
    charts._bars(figure, chart, height)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()  # lays the legend out
    legend = figure.axes[0].get_legend()
    assert legend is not None
    box = legend.get_window_extent(canvas.get_renderer())
    rows = -(-len(chart.series) // charts._keys(chart))
    renderer = canvas.get_renderer()
    placed = [(t.get_window_extent(renderer), t.get_text()) for t in legend.get_texts()]
    reading = [text for box_, text in sorted(placed, key=lambda p: (-round(p[0].y0), p[0].x0))]
    return box.x0 / figure.dpi, box.x1 / figure.dpi, rows, reading


@pytest.mark.parametrize(
    "labels",
    [
        ("签收", "入户核实", "给出结果", "村内公示"),  # 超时未办：按村, which was cut at 村
        ("时限内签收", "超时签收"),
        ("签收", "入户核实", "给出结果", "村内公示", "乡镇审核", "县级审定"),
        ("Acknowledge", "Home visit", "Verdict", "Public notice"),
        ("Acknowledged in time", "Acknowledged late"),
    ],
)
def test_a_legend_fits_across_the_picture(labels: tuple[str, ...]) -> None:
    chart = charts.Chart(
        "overdue_by_village", "超时未办：按村", "村", ("李家村", "陈家村"),
        tuple(charts.Series(label, (1, 2)) for label in labels),
    )  # fmt: skip
    start, end, rows, reading = _legend_span(chart)
    assert 0 <= start and end <= charts.WIDTH, (start, end, charts.WIDTH)
    assert rows <= len(labels) // 2 + 1  # as many a line as fit: not one a line
    assert reading == list(labels)  # read along the lines, in the series' order
