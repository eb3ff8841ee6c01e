"""The async unit of work: one transaction; rolled back unless `commit()` is called."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage import notification_repos, web_repos
from storage import repositories as repos


class SqlUnitOfWork:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], split: repos.Splitter | None = None
    ) -> None:
        self._sessions = sessions
        self._split = split
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> Self:
        session = self._sessions()
        self._session = session
        self.geography = repos.GeographyRepository(session)
        self.persons = repos.PersonRepository(session)
        self.invites = repos.InviteRepository(session)
        self.conversations = repos.ConversationRepository(session)
        self.declarations = repos.DeclarationRepository(session)
        self.tasks = repos.TaskRepository(session)
        self.events = repos.EventLog(session)
        self.attachments = repos.AttachmentRepository(session)
        self.outbox = repos.Outbox(session, self._split)
        self.schedule = notification_repos.ScheduleRepository(session)
        self.notices = notification_repos.NoticeRepository(session)
        self.delivery = notification_repos.DeliveryRepository(session, self._split)
        self.campaigns = notification_repos.CampaignRepository(session)
        self.ledger = notification_repos.LedgerRepository(session)
        self.scans = web_repos.ScanRepository(session)
        self.limits = repos.RateLimits(session)
        self.uploads = web_repos.UploadRepository(session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._session is not None
        try:
            await self._session.rollback()
        finally:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> AsyncSession:
        assert self._session is not None, "use the unit of work in `async with`"
        return self._session

    async def commit(self) -> None:
        await self.session.commit()

    async def rollback(self) -> None:
        await self.session.rollback()


class SqlUnitOfWorkFactory:
    """Makes a fresh unit of work per use case call.

    `split` cuts a message too long for its channel into parts as it is queued (bot/ gives the
    renderer's); without it messages are queued whole.
    """

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, split: repos.Splitter | None = None
    ) -> None:
        self.sessions = sessions
        self.split = split

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.sessions, self.split)
