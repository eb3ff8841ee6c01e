"""The console overview's counts (domain.ports.OverviewViews): aggregate SQL, GROUP BY in the
database, each query limited to the villages it is given; the same statements on SQLite and
PostgreSQL (only the JSON array of risk types is unnested by each database's own function)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, distinct, func, select, true

from domain.cases import FINAL
from domain.model import AcknowledgeTime, DeclarationStatus, OverdueCount, ScanTotal, TaskStatus
from storage.base import Repo, dialect_of
from storage.tables import CaseEventRow, DeclarationRow, QrScanRow, TaskRow

D = DeclarationRow
UNFINISHED = (TaskStatus.OPEN.value, TaskStatus.ACKNOWLEDGED.value)


class OverviewViews(Repo):
    async def by_state(self, village_ids: tuple[int, ...]) -> dict[DeclarationStatus, int]:
        if not village_ids:
            return {}
        rows = await self.session.execute(
            select(D.status, func.count()).where(D.village_id.in_(village_ids)).group_by(D.status)
        )
        return {DeclarationStatus(status): int(n) for status, n in rows}

    async def by_risk(self, village_ids: tuple[int, ...]) -> dict[str, int]:
        if not village_ids:
            return {}
        # One row per risk a declaration names: a table-valued function over its JSON array.
        unnest: Any = (
            func.json_array_elements_text(D.risk_types)
            if dialect_of(self.session) == "postgresql"
            else func.json_each(D.risk_types)
        )
        each = unnest.table_valued("value").alias("risk")
        rows = await self.session.execute(
            select(each.c.value, func.count())
            .select_from(D)
            .join(each, true())
            .where(D.village_id.in_(village_ids))
            .group_by(each.c.value)
        )
        return {str(code): int(n) for code, n in rows}

    async def declared(self, village_ids: tuple[int, ...], bounds: Sequence[datetime]) -> list[int]:
        spans = len(bounds) - 1
        if not village_ids or spans < 1:
            return [0] * max(spans, 0)
        # The span each declaration falls in, numbered in a subquery and counted outside it, so
        # GROUP BY names a column rather than repeating an expression full of parameters.
        span = case(*((D.created_at < end, n) for n, end in enumerate(bounds[1:])), else_=None)
        inner = (
            select(span.label("span"))
            .where(D.village_id.in_(village_ids), D.created_at >= bounds[0], D.created_at < bounds[-1])
            .subquery()
        )
        counts = [0] * spans
        for n, total in await self.session.execute(select(inner.c.span, func.count()).group_by(inner.c.span)):
            if n is not None:
                counts[int(n)] = int(total)
        return counts

    async def overdue(self, village_ids: tuple[int, ...], now: datetime) -> list[OverdueCount]:
        if not village_ids:
            return []
        rows = await self.session.execute(
            select(TaskRow.step, TaskRow.village_id, func.count(distinct(TaskRow.declaration_id)))
            .join(D, D.id == TaskRow.declaration_id)
            .where(
                TaskRow.village_id.in_(village_ids),
                TaskRow.status.in_(UNFINISHED),
                TaskRow.step.is_not(None),
                TaskRow.due_at < now,
                D.status.not_in([s.value for s in FINAL]),
            )
            .group_by(TaskRow.step, TaskRow.village_id)
        )
        return [OverdueCount(str(step), int(village), int(n)) for step, village, n in rows]

    async def acknowledge_times(
        self, village_ids: tuple[int, ...], since: datetime, until: datetime
    ) -> list[AcknowledgeTime]:
        if not village_ids:
            return []
        first = func.min(CaseEventRow.at)
        signed = and_(CaseEventRow.declaration_id == D.id, CaseEventRow.kind == "acknowledge")
        rows = await self.session.execute(
            select(D.created_at, first, D.status)
            .select_from(D)
            .outerjoin(CaseEventRow, signed)
            .where(D.village_id.in_(village_ids), D.created_at >= since, D.created_at < until)
            .group_by(D.id, D.created_at, D.status)
        )
        return [AcknowledgeTime(made, first_at, DeclarationStatus(status)) for made, first_at, status in rows]

    async def scans(self, village_codes: tuple[str, ...]) -> list[ScanTotal]:
        if not village_codes:
            return []
        rows = await self.session.execute(
            select(QrScanRow.village_code, QrScanRow.batch, QrScanRow.channel, func.sum(QrScanRow.count))
            .where(QrScanRow.village_code.in_(village_codes))
            .group_by(QrScanRow.village_code, QrScanRow.batch, QrScanRow.channel)
        )
        found: dict[tuple[str, str], dict[str, int]] = {}
        for code, batch, channel, total in rows:
            found.setdefault((code, batch), {})[channel] = int(total or 0)
        return [
            ScanTotal(code, batch, counts.get("web", 0), counts.get("telegram", 0))
            for (code, batch), counts in sorted(found.items())
        ]
