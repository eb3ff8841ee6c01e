"""Rate limits: a counter per key in a fixed window, shared by every worker."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete

from storage.base import Repo, dialect_insert, rowcount
from storage.tables import RateLimitRow


class RateLimits(Repo):
    async def hit(self, key: str, *, limit: int, window: timedelta, now: datetime) -> bool:
        """Count one request under `key`; False (counted all the same) once `limit` is passed.

        A fixed window that starts at the first request: one upsert, so two workers counting the
        same key at once never lose a hit.
        """
        expired = RateLimitRow.window_start <= now - window
        statement: Any = dialect_insert(self.session, RateLimitRow).values(
            key=key[:100], window_start=now, hits=1
        )
        statement = statement.on_conflict_do_update(
            index_elements=["key"],
            set_={
                "hits": case((expired, 1), else_=RateLimitRow.hits + 1),
                "window_start": case((expired, now), else_=RateLimitRow.window_start),
            },
        ).returning(RateLimitRow.hits)
        hits = int((await self.session.execute(statement)).scalar_one())
        return hits <= limit

    async def forget(self, before: datetime) -> int:
        """Drop counters whose window started before `before` (they hold hashed phones)."""
        result = await self.session.execute(delete(RateLimitRow).where(RateLimitRow.window_start < before))
        return rowcount(result)
