"""The repository of conversations: a person's one open conversation (flow, step, data)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from domain.model import Conversation, Flow
from storage import statements
from storage.base import Repo, rowcount
from storage.tables import ConversationRow


class ConversationRepository(Repo):
    @staticmethod
    def _conversation(row: Any) -> Conversation:
        return Conversation(
            row.id, row.person_id, Flow(row.flow), row.step, dict(row.data), row.updated_at, row.reminded_at
        )

    async def get(self, person_id: int) -> Conversation | None:
        row = (await self.session.execute(statements.CONVERSATION_OF, {"person_id": person_id})).first()
        return self._conversation(row) if row else None

    async def start(
        self, person_id: int, flow: Flow, step: str, data: dict[str, Any], at: datetime
    ) -> Conversation:
        await self.session.execute(delete(ConversationRow).where(ConversationRow.person_id == person_id))
        row = ConversationRow(
            person_id=person_id, flow=flow.value, step=str(step), data=data, created_at=at, updated_at=at
        )
        self.session.add(row)
        await self.session.flush()
        return self._conversation(row)

    async def update(self, conversation_id: int, step: str, data: dict[str, Any], at: datetime) -> bool:
        result = await self.session.execute(
            statements.CONVERSATION_UPDATE,
            {"conversation_id": conversation_id, "new_step": str(step), "new_data": data, "at": at},
        )
        return rowcount(result) == 1

    async def finish(self, conversation_id: int) -> bool:
        result = await self.session.execute(
            delete(ConversationRow).where(ConversationRow.id == conversation_id)
        )
        return rowcount(result) == 1

    async def idle(self, flow: Flow, before: datetime, limit: int = 500) -> list[Conversation]:
        rows = await self.session.scalars(
            select(ConversationRow)
            .where(ConversationRow.flow == flow.value, ConversationRow.updated_at < before)
            .order_by(ConversationRow.updated_at)
            .limit(limit)
        )
        return [self._conversation(row) for row in rows]

    async def mark_reminded(self, conversation_id: int, at: datetime) -> bool:
        result = await self.session.execute(
            update(ConversationRow)
            .where(ConversationRow.id == conversation_id, ConversationRow.reminded_at.is_(None))
            .values(reminded_at=at)
        )
        return rowcount(result) == 1
