"""The console's one-time sign-in links and its sessions: only the hashes of their tokens are kept."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from domain.model import ConsoleSession, LoginLink, Role
from storage.base import Repo, rowcount
from storage.tables import ConsoleSessionRow, LoginLinkRow


class LoginRepository(Repo):
    @staticmethod
    def _link(row: LoginLinkRow) -> LoginLink:
        return LoginLink(row.id, row.person_id, row.expires_at, row.used_at)

    @staticmethod
    def _session(row: ConsoleSessionRow) -> ConsoleSession:
        return ConsoleSession(
            row.id, row.person_id, Role(row.role), row.created_at, row.last_seen_at, row.ended_at
        )

    async def add_link(
        self, person_id: int, token_hash: str, expires_at: datetime, at: datetime
    ) -> LoginLink:
        row = LoginLinkRow(person_id=person_id, token_hash=token_hash, created_at=at, expires_at=expires_at)
        self.session.add(row)
        await self.session.flush()
        return self._link(row)

    async def link(self, token_hash: str) -> LoginLink | None:
        row = await self.session.scalar(select(LoginLinkRow).where(LoginLinkRow.token_hash == token_hash))
        return self._link(row) if row else None

    async def use_link(self, link_id: int, at: datetime) -> bool:
        result = await self.session.execute(
            update(LoginLinkRow)
            .where(LoginLinkRow.id == link_id, LoginLinkRow.used_at.is_(None))
            .values(used_at=at)
        )
        return rowcount(result) == 1

    async def add_session(self, person_id: int, role: Role, token_hash: str, at: datetime) -> ConsoleSession:
        row = ConsoleSessionRow(
            person_id=person_id, token_hash=token_hash, role=role.value, created_at=at, last_seen_at=at
        )
        self.session.add(row)
        await self.session.flush()
        return self._session(row)

    async def find_session(self, token_hash: str) -> ConsoleSession | None:
        row = await self.session.scalar(
            select(ConsoleSessionRow).where(ConsoleSessionRow.token_hash == token_hash)
        )
        return self._session(row) if row else None

    async def touch(self, session_id: int, at: datetime) -> None:
        await self.session.execute(
            update(ConsoleSessionRow).where(ConsoleSessionRow.id == session_id).values(last_seen_at=at)
        )

    async def end(self, session_id: int, at: datetime, why: str) -> bool:
        result = await self.session.execute(
            update(ConsoleSessionRow)
            .where(ConsoleSessionRow.id == session_id, ConsoleSessionRow.ended_at.is_(None))
            .values(ended_at=at, ended_why=why[:16])
        )
        return rowcount(result) == 1

    async def end_for(self, person_id: int, at: datetime, why: str) -> int:
        result = await self.session.execute(
            update(ConsoleSessionRow)
            .where(ConsoleSessionRow.person_id == person_id, ConsoleSessionRow.ended_at.is_(None))
            .values(ended_at=at, ended_why=why[:16])
        )
        return rowcount(result)
