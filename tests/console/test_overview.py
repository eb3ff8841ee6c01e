"""The overview page (/console/) and its charts, through the console on a migrated database: every
figure counted over the signed-in person's villages only, in the service's days and week."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, datetime
from html.parser import HTMLParser

from domain import cases
from domain.actor import actor_for
from domain.model import Channel, Declaration
from tests.console.conftest import CHEN, LI, LIU, WANG, ZHANG, ZHAO, ZHOU, Desk
from tests.support import SHANGHAI

Table = list[list[str]]


class _Tables(HTMLParser):
    """The page's tables by their chart (`data-chart`), and the key figures by id: cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, Table] = {}
        self.cells: dict[str, str] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._id: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "table" and named.get("data-chart"):
            self._table = named["data-chart"]
            self.tables[self._table or ""] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell, self._id = [], named.get("id")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._cell is not None:
            text = "".join(self._cell).strip()
            if self._table is not None:
                self.tables[self._table][-1].append(text)
            if self._id:
                self.cells[self._id] = text
            self._cell = self._id = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


async def overview(desk: Desk, address: str, query: str = "") -> _Tables:
    """Sign the person of a chat in and read the overview's tables."""
    await desk.sign_in(address)
    response = await desk.client.get(f"/console/{query}")
    assert response.status == 200, await response.text()
    found = _Tables()
    found.feed(await response.text())
    return found


def rows(page: _Tables, chart: str) -> dict[str, list[str]]:
    """A chart's table as {row label: its figures}, the header and total rows included."""
    return {row[0]: row[1:] for row in page.tables.get(chart, []) if row}


async def declare_around(desk: Desk) -> None:
    """Declarations in 李家村 and 陈家村 (青山镇, 青山县) and in 白水村 (白水乡, 白水县)."""
    for n, village in enumerate(("QS01", "QS01", "QS03", "BS01")):
        await desk.declare(village=village, phone=f"+86139000000{n:02d}", address=f"90{n:02d}")


async def acknowledge(desk: Desk, address: str, declaration: Declaration) -> None:
    async with desk.uow() as uow:
        actor = await actor_for(uow, desk.clock, Channel.TELEGRAM, address)
        task = await uow.tasks.for_declaration(declaration.id)
        assert task is not None
        outcome = await cases.acknowledge(uow, desk.clock, desk.rules, actor, task.id)
        await uow.commit()
    assert outcome.done


async def test_township_staff_see_only_their_townships_figures(desk: Desk) -> None:
    await declare_around(desk)

    qingshan = await overview(desk, WANG)

    assert rows(qingshan, "states")["已提交，等待村干部签收"] == ["3"]
    assert rows(qingshan, "states")["合计"] == ["3"]
    assert rows(qingshan, "risks")["因病"] == ["3"]
    assert rows(qingshan, "daily")["11月23日"] == ["3"]
    assert sum(int(v[0]) for k, v in rows(qingshan, "daily").items() if "月" in k) == 3
    assert qingshan.cells["new-this-week"] == "3" and qingshan.cells["open-cases"] == "3"
    assert qingshan.cells["overdue"] == "0"

    baishui = await overview(desk, CHEN)
    assert rows(baishui, "states")["已提交，等待村干部签收"] == ["1"]
    assert rows(baishui, "risks")["因病"] == ["1"]
    assert baishui.cells["new-this-week"] == "1"


async def test_the_county_sees_its_townships_and_a_cadre_their_villages(desk: Desk) -> None:
    await declare_around(desk)

    county = await overview(desk, ZHOU)
    assert rows(county, "states")["合计"] == ["3"]  # 青山县: 李家村 twice and 陈家村, not 白水村

    for address, seen in ((ZHANG, "2"), (LI, "2"), (ZHAO, "1"), (LIU, "1")):
        cadre = await overview(desk, address)
        assert rows(cadre, "states")["合计"] == [seen], address
        assert cadre.cells["new-this-week"] == seen, address


async def test_an_overdue_case_is_counted_under_its_step_and_village(desk: Desk) -> None:
    first = await desk.declare(village="QS01", phone="+8613900000001", address="9001")
    await desk.declare(village="QS01", phone="+8613900000002", address="9002")
    await desk.declare(village="BS01", phone="+8613900000003", address="9003")  # 白水乡's
    desk.clock.advance(hours=5)
    await acknowledge(desk, ZHANG, first)  # in 5 hours, within the day the policy allows
    desk.clock.advance(days=3)  # Thursday: 签收 was due Tuesday night, and so was the visit

    page = await overview(desk, WANG)

    assert page.cells["overdue"] == "2"
    steps = rows(page, "overdue_steps")
    assert steps == {"环节": ["案件数"], "签收": ["1"], "入户核实": ["1"], "合计": ["2"]}
    by_village = rows(page, "overdue_villages")
    assert by_village["村"] == ["签收", "入户核实"]
    assert by_village["李家村"] == ["1", "1"]
    assert "白水村" not in by_village
    acknowledged = rows(page, "acknowledge")
    assert acknowledged["用时"] == ["时限内签收", "超时签收"]
    assert acknowledged["4–24 小时"] == ["1", "0"]
    assert acknowledged["合计"] == ["1", "0"]
    text = await (await desk.client.get("/console/")).text()
    assert "尚未签收 1 件，其中已超过时限 1 件。" in text
    assert "用时中位数 5 小时" in text


async def test_new_this_week_is_the_service_s_week(desk: Desk) -> None:
    # Sunday 23:30 and Monday 00:30 in Shanghai: both Sunday in UTC, only one this week.
    desk.clock.current = datetime(2026, 11, 22, 23, 30, tzinfo=SHANGHAI)
    await desk.declare(village="QS01", phone="+8613900000001", address="9001")
    desk.clock.current = datetime(2026, 11, 23, 0, 30, tzinfo=SHANGHAI)
    await desk.declare(village="QS01", phone="+8613900000002", address="9002")
    desk.clock.current = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)

    page = await overview(desk, WANG)

    assert page.cells["new-this-week"] == "1"
    assert rows(page, "daily")["11月22日"] == ["1"] and rows(page, "daily")["11月23日"] == ["1"]
    assert len([k for k in rows(page, "daily") if "月" in k]) == 30
    assert rows(page, "daily")["10月25日"] == ["0"]  # the first of the 30 days


async def test_scans_are_counted_by_village_batch_and_channel(desk: Desk) -> None:
    day = date(2026, 11, 23)
    async with desk.uow() as uow:
        for code, batch, channel, times in (
            ("QS01", "2026-11", "web", 2), ("QS01", "2026-11", "telegram", 3), ("QS01", "", "web", 1),
            ("BS01", "2026-11", "web", 5),
        ):  # fmt: skip
            for _ in range(times):
                await uow.scans.count(code, batch, channel, day)
        await uow.commit()

    page = await overview(desk, WANG)

    scans = rows(page, "scans")
    assert scans["村 · 批次"] == ["网页", "Telegram"]
    assert scans["李家村 · 2026-11"] == ["2", "3"]
    assert scans["李家村 · 未标批次"] == ["1", "0"]
    assert scans["合计"] == ["3", "3"]
    assert not any("白水村" in label for label in scans)


async def test_the_chart_is_an_svg_image_holding_the_figures(desk: Desk) -> None:
    await declare_around(desk)
    await desk.sign_in(WANG)

    response = await desk.client.get("/console/charts/states.svg")

    assert response.status == 200
    assert response.content_type == "image/svg+xml"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    svg = await response.text()
    drawn = ET.fromstring(svg)  # a well-formed document
    texts = ["".join(t.itertext()).strip() for t in drawn.iter("{http://www.w3.org/2000/svg}text")]
    assert "已提交，等待村干部签收" in texts and "3" in texts
    assert "style=" not in svg and "<style" not in svg and "<script" not in svg  # no CSS, no script
    english = await (await desk.client.get("/console/charts/states.svg?lang=en")).text()
    assert "Submitted" in english or "submitted" in english
    page = await desk.client.get("/console/")
    assert 'src="/console/charts/states.svg?lang=zh_Hans"' in await page.text()
    assert (await desk.client.get("/console/charts/nothing.svg")).status == 404


async def test_the_overview_needs_a_session_and_speaks_english(desk: Desk) -> None:
    assert (await desk.client.get("/console/charts/states.svg")).status == 401
    await declare_around(desk)

    page = await overview(desk, WANG, "?lang=en")

    assert rows(page, "states")["State"] == ["Cases"]
    assert rows(page, "risks")["Risk type"] == ["Declarations"]
    assert "Total" in rows(page, "states")


async def test_an_empty_scope_shows_no_chart(desk: Desk) -> None:
    await desk.declare(village="BS01")

    page = await overview(desk, WANG)

    assert page.tables == {} and page.cells["new-this-week"] == "0"
    text = await (await desk.client.get("/console/")).text()
    assert "暂无数据" in text and "/console/charts/" not in text


async def test_the_menu_marks_the_page_one_is_on(desk: Desk) -> None:
    await desk.sign_in(WANG)
    here = re.compile(r'<a href="(/console[^"]*)" class="here">')

    assert here.findall(await (await desk.client.get("/console/")).text()) == ["/console/"]
    assert here.findall(await (await desk.client.get("/console/cases?state=submitted")).text()) == [
        "/console/cases"
    ]
