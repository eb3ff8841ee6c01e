"""Repositories of the landing page and web form: scan counts and uploaded photos."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select

from domain.model import ScanTotal
from storage.base import Repo, dialect_insert
from storage.tables import QrScanRow, UploadRow


class ScanRepository(Repo):
    async def count(self, village_code: str, batch: str, channel: str, day: date) -> None:
        """One more scan; the day's row is made by the first."""
        statement = dialect_insert(self.session, QrScanRow).values(
            village_code=village_code, batch=batch, channel=channel, day=day, count=1
        )
        statement = statement.on_conflict_do_update(
            index_elements=["village_code", "batch", "channel", "day"],
            set_={"count": QrScanRow.count + 1},
        )
        await self.session.execute(statement)

    async def totals(self) -> list[ScanTotal]:
        """All scans so far per village and batch, web and Telegram apart."""
        rows = await self.session.execute(
            select(QrScanRow.village_code, QrScanRow.batch, QrScanRow.channel, func.sum(QrScanRow.count))
            .group_by(QrScanRow.village_code, QrScanRow.batch, QrScanRow.channel)
            .order_by(QrScanRow.village_code, QrScanRow.batch)
        )
        found: dict[tuple[str, str], dict[str, int]] = {}
        for code, batch, channel, total in rows:
            found.setdefault((code, batch), {})[channel] = int(total or 0)
        return [
            ScanTotal(code, batch, counts.get("web", 0), counts.get("telegram", 0))
            for (code, batch), counts in found.items()
        ]


class UploadRepository(Repo):
    async def add(self, content_type: str, data: bytes, at: datetime) -> int:
        row = UploadRow(content_type=content_type, data=data, at=at)
        self.session.add(row)
        await self.session.flush()
        return row.id

    async def get(self, upload_id: int) -> tuple[str, bytes] | None:
        row = await self.session.get(UploadRow, upload_id)
        return (row.content_type, row.data) if row else None

    async def count(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(UploadRow)) or 0)
