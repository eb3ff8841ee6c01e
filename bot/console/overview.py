"""The overview (/console/): where the cases of the person's villages stand, as charts drawn on the
server (bot.console.charts: matplotlib, SVG) and, beside each, the same figures as a table.

GET /console/                      the page: key figures, then one card a chart
GET /console/charts/<name>.svg     one chart as an image (image/svg+xml), counted again for it
"""

from __future__ import annotations

import asyncio
from datetime import date

from aiohttp import web
from babel.dates import format_skeleton

from bot.console import charts
from bot.console.charts import BAD, GOOD, Chart, Series
from bot.console.core import ROOT, actor_of, deps_of, not_found, page
from bot.templating import language_of, translator
from domain.office import overview as figures
from domain.office.overview import AckSpan, Overview, Part
from locales.render import BABEL_LOCALES, value

# Each chart by its name in the address, and what it counts.
CHARTS: dict[str, Part] = {
    "states": Part.STATES,
    "overdue_steps": Part.OVERDUE,
    "overdue_villages": Part.OVERDUE,
    "risks": Part.RISKS,
    "daily": Part.DAILY,
    "acknowledge": Part.ACKNOWLEDGE,
    "scans": Part.SCANS,
}


def day_label(day: date, language: str) -> str:
    """A day as "11月23日" / "Nov 23"."""
    return format_skeleton("MMMd", day, locale=BABEL_LOCALES.get(language, language))


def _span(span: AckSpan, language: str) -> str:
    t = translator(language)
    if span.high is None:
        return t("console.overview_days_over", days=span.low // 24)
    if span.low == 0:
        return t("console.overview_hours_under", hours=span.high)
    if span.high <= 24:
        return t("console.overview_hours_between", low=span.low, high=span.high)
    return t("console.overview_days_between", low=span.low // 24, high=span.high // 24)


def charts_of(found: Overview, language: str) -> dict[str, Chart]:
    """Every chart of the overview (with its table), its texts in `language`."""
    t = translator(language)
    cases, declarations = t("console.overview_cases"), t("console.overview_declarations")
    total, others = t("console.overview_total"), t("console.overview_others")
    made: dict[str, Chart] = {}
    made["states"] = Chart(
        "states", t("console.overview_states"), t("console.overview_state"),
        tuple(t(f"state.{s.value}") for s, _ in found.states),
        (Series(cases, tuple(n for _, n in found.states)),), total=total,
    )  # fmt: skip
    made["overdue_steps"] = Chart(
        "overdue_steps", t("console.overview_overdue_steps"), t("console.overview_step"),
        tuple(t(f"step.{step}") for step, _ in found.overdue_by_step),
        (Series(cases, tuple(n for _, n in found.overdue_by_step), BAD),), total=total,
    )  # fmt: skip
    steps = [step for step, _ in found.overdue_by_step]
    late = [dict(row.by_step) for row in found.overdue_by_village]
    townships = {v.township_id for v in found.villages}
    made["overdue_villages"] = Chart(
        "overdue_villages", t("console.overview_overdue_villages"), t("console.overview_village"),
        tuple(
            t("console.overview_village_of", village=row.village.name, township=row.village.township_name)
            if len(townships) > 1 else row.village.name
            for row in found.overdue_by_village
        ),
        tuple(
            Series(t(f"step.{step}"), tuple(row.get(step, 0) for row in late))
            for step in steps
        ),
        total=total, others=others,
    )  # fmt: skip
    made["risks"] = Chart(
        "risks", t("console.overview_risks"), t("console.overview_risk"),
        tuple(value({"$risk": code}, language) for code, _ in found.risks),
        (Series(declarations, tuple(n for _, n in found.risks)),),
        notes=(t("console.overview_risks_note"),), others=others,
    )  # fmt: skip
    made["daily"] = Chart(
        "daily", t("console.overview_daily", days=figures.PERIOD_DAYS), t("console.overview_day"),
        tuple(day_label(day, language) for day, _ in found.daily),
        (Series(declarations, tuple(n for _, n in found.daily)),), columns=True, fold=True, total=total,
    )  # fmt: skip
    made["acknowledge"] = _acknowledge_chart(found, language)
    made["scans"] = Chart(
        "scans", t("console.overview_scans"), t("console.overview_flyer"),
        tuple(
            t("console.overview_village_batch", village=s.village.name,
              batch=s.batch or t("console.overview_no_batch"))
            for s in found.scans
        ),
        (
            Series(t("console.overview_web"), tuple(s.web for s in found.scans)),
            Series(t("console.overview_telegram"), tuple(s.telegram for s in found.scans)),
        ),
        total=total, others=others,
    )  # fmt: skip
    return made


def _acknowledge_chart(found: Overview, language: str) -> Chart:
    t = translator(language)
    title = t("console.overview_acknowledge", days=figures.PERIOD_DAYS)
    ack = found.acknowledging
    if ack is None:
        return Chart("acknowledge", title, t("console.overview_time_taken"), (), ())
    due = ack.due_if_declared_now
    notes = [
        t("console.overview_limit", due=f"{day_label(due.date(), language)} {due:%H:%M}"),
        t("console.overview_waiting", waiting=ack.waiting + ack.waiting_late, late=ack.waiting_late),
    ]
    if ack.median_hours is not None:
        notes.append(t("console.overview_median", hours=f"{ack.median_hours:g}"))
    spans = ack.spans if ack.in_time + ack.late else ()
    return Chart(
        "acknowledge", title, t("console.overview_time_taken"),
        tuple(_span(s, language) for s in spans),
        (
            Series(t("console.overview_in_time"), tuple(s.in_time for s in spans), GOOD),
            Series(t("console.overview_late"), tuple(s.late for s in spans), BAD),
        ),
        notes=tuple(notes), total=t("console.overview_total"),
    )  # fmt: skip


async def overview(request: web.Request) -> web.Response:
    """The console's first page: the overview of the person's villages."""
    deps, actor = deps_of(request), actor_of(request)
    language = language_of(request)
    async with deps.uow() as uow:
        found = await figures.overview(uow, deps.clock, deps.rules, actor)
    context = {
        "found": found,
        "charts": list(charts_of(found, language).values()),
        "as_of": f"{found.now:%Y-%m-%d %H:%M}",
        "week_start": day_label(found.week_start, language),
    }
    return page(request, "console/overview.html", context)


async def chart(request: web.Request) -> web.Response:
    """One chart of the overview as an SVG image, counted for it alone."""
    name = request.match_info["name"]
    part = CHARTS.get(name)
    if part is None:
        return not_found(request)
    deps = deps_of(request)
    async with deps.uow() as uow:
        found = await figures.overview(uow, deps.clock, deps.rules, actor_of(request), parts=(part,))
    drawn = await asyncio.to_thread(charts.draw, charts_of(found, language_of(request))[name])
    return web.Response(body=drawn, content_type="image/svg+xml")


def routes(app: web.Application) -> None:
    app.router.add_get(f"{ROOT}/", overview)
    app.router.add_get(f"{ROOT}/charts/{{name:[a-z_]+}}.svg", chart)
