"""The async unit of work: one transaction; rolled back unless `commit()` is called."""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.case_views import CaseViews
from storage.cases import AttachmentRepository, DeclarationRepository, EventLog, TaskRepository
from storage.conversations import ConversationRepository
from storage.limits import RateLimits
from storage.logins import LoginRepository
from storage.notifications import (
    CampaignRepository,
    DeliveryRepository,
    LedgerRepository,
    NoticeRepository,
    ScheduleRepository,
)
from storage.outbox import OUTBOX_TOUCHED, Outbox, Splitter
from storage.outbox_store import Claimed, Mark
from storage.overview_views import OverviewViews
from storage.people import GeographyRepository, InviteRepository, PersonRepository
from storage.web import ScanRepository, UploadRepository

log = logging.getLogger(__name__)

# Told, after a commit, of the messages that transaction wrote already claimed by the worker.
OnCommit = Callable[[list[Claimed]], None]
# The sender's mark of a row Telegram answered for, while that mark is not yet committed.
Answered = Callable[[int], Mark | None]


class SqlUnitOfWork:
    """The one implementation of domain.ports.UnitOfWork."""

    geography: GeographyRepository
    persons: PersonRepository
    logins: LoginRepository
    invites: InviteRepository
    conversations: ConversationRepository
    declarations: DeclarationRepository
    tasks: TaskRepository
    events: EventLog
    attachments: AttachmentRepository
    outbox: Outbox
    limits: RateLimits
    schedule: ScheduleRepository
    notices: NoticeRepository
    delivery: DeliveryRepository
    campaigns: CampaignRepository
    ledger: LedgerRepository
    scans: ScanRepository
    uploads: UploadRepository
    overview: OverviewViews
    case_views: CaseViews

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        split: Splitter | None = None,
        *,
        worker: str | None = None,
        on_commit: OnCommit | None = None,
        on_pending: Callable[[], None] | None = None,
        answered: Answered | None = None,
    ) -> None:
        self._sessions = sessions
        self._split = split
        self._worker = worker
        self._on_commit = on_commit
        self._on_pending = on_pending
        self._answered = answered
        self._session: AsyncSession | None = None
        # True once a commit wrote outbox rows pending (not handed over): the sender must look.
        self.wrote_pending = False

    async def __aenter__(self) -> Self:
        session = self._sessions()
        self._session = session
        self.geography = GeographyRepository(session)
        self.persons = PersonRepository(session)
        self.invites = InviteRepository(session)
        self.logins = LoginRepository(session)
        self.conversations = ConversationRepository(session)
        self.declarations = DeclarationRepository(session)
        self.tasks = TaskRepository(session)
        self.events = EventLog(session)
        self.attachments = AttachmentRepository(session)
        self.outbox = Outbox(session, self._split, worker=self._worker, answered=self._answered)
        self.schedule = ScheduleRepository(session)
        self.notices = NoticeRepository(session)
        self.delivery = DeliveryRepository(session, self._split)
        self.campaigns = CampaignRepository(session)
        self.ledger = LedgerRepository(session)
        self.scans = ScanRepository(session)
        self.limits = RateLimits(session)
        self.uploads = UploadRepository(session)
        self.overview = OverviewViews(session)
        self.case_views = CaseViews(session)
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
        session = self.session
        await self.outbox.release_holds()  # a press held back and never settled is written as it is
        await session.commit()
        claimed = self.outbox.claimed
        pending = self.outbox.wrote_pending or bool(session.sync_session.info.pop(OUTBOX_TOUCHED, False))
        self.wrote_pending = self.wrote_pending or pending
        self.outbox.reset()
        if pending and self._on_pending is not None:
            self._on_pending()
        if claimed and self._on_commit is not None:
            try:
                self._on_commit(claimed)
            except Exception:
                # Committed all the same: the rows stay claimed by this worker, free once it stops.
                log.exception("outbox: could not hand %s claimed messages to the sender", len(claimed))

    async def rollback(self) -> None:
        await self.session.rollback()
        self.session.sync_session.info.pop(OUTBOX_TOUCHED, None)
        self.outbox.reset()


class SqlUnitOfWorkFactory:
    """Makes a fresh unit of work per use case call.

    `split` cuts a message too long for its channel into parts as it is queued (bot/ gives the
    renderer's); without it messages are queued whole. With `worker` (the sender's worker id),
    messages are written already claimed by that worker where per-person order allows, and
    after each successful commit `on_commit` (the sender's `accept`) gets them: they go out with
    no claim transaction and no read. Without `worker`, every message is written pending.
    `on_pending` is called after a commit that left messages pending (written unclaimed, or any
    other write to the outbox): the sender, here or in another worker, must look for them. A
    commit whose messages were all handed over wakes nobody (no claim transaction per step).
    `answered` (the sender's) gives the mark of a row Telegram has answered for whose mark is not
    committed yet.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        split: Splitter | None = None,
        worker: str | None = None,
        on_commit: OnCommit | None = None,
        on_pending: Callable[[], None] | None = None,
        answered: Answered | None = None,
    ) -> None:
        self.sessions = sessions
        self.split = split
        self.worker = worker
        self.on_commit = on_commit
        self.on_pending = on_pending
        self.answered = answered

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(
            self.sessions,
            self.split,
            worker=self.worker,
            on_commit=self.on_commit,
            on_pending=self.on_pending,
            answered=self.answered,
        )
