"""What the domain needs from outside: storage (a unit of work) and a clock."""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from domain.messages import Outgoing
from domain.model import (
    CaseEvent,
    Channel,
    Conversation,
    Declaration,
    DeclarationStatus,
    Flow,
    Invite,
    Person,
    Role,
    RoutedTo,
    Task,
    Township,
    Verdict,
    Village,
)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in the service's time zone."""
        ...


class GeographyRepository(Protocol):
    async def township_by_name(self, name: str) -> Township | None: ...
    async def add_township(self, name: str) -> Township: ...
    async def village_by_code(self, code: str) -> Village | None: ...
    async def village(self, village_id: int) -> Village | None: ...
    async def villages(self, village_ids: tuple[int, ...]) -> list[Village]: ...
    async def add_village(self, code: str, name: str, township_id: int) -> Village: ...
    async def update_village(self, village_id: int, name: str, township_id: int) -> None: ...


class PersonRepository(Protocol):
    async def get(self, person_id: int) -> Person | None: ...
    async def by_phone(self, phone: str) -> Person | None: ...
    async def by_address(self, channel: Channel, address: str) -> Person | None: ...
    async def add(
        self,
        role: Role,
        *,
        name: str | None = None,
        phone: str | None = None,
        township_id: int | None = None,
    ) -> Person: ...
    async def update(
        self, person_id: int, *, role: Role, name: str | None, township_id: int | None
    ) -> None: ...
    async def set_villages(self, person_id: int, village_ids: tuple[int, ...]) -> None: ...
    async def set_locale(self, person_id: int, locale: str | None) -> None: ...
    async def bind(self, person_id: int, channel: Channel, address: str, at: datetime) -> None: ...
    async def address_of(self, person_id: int, channel: Channel) -> str | None: ...
    async def cadres_of_village(self, village_id: int) -> list[Person]: ...
    async def staff_of_township(self, township_id: int) -> list[Person]: ...
    async def reachable(self, person_ids: list[int], channel: Channel) -> set[int]: ...


class InviteRepository(Protocol):
    async def add(self, person_id: int, token_hash: str, expires_at: datetime) -> Invite: ...
    async def by_hash(self, token_hash: str) -> Invite | None: ...
    async def use(self, invite_id: int, at: datetime) -> bool:
        """Mark used; False when it already was (one use only)."""
        ...


class ConversationRepository(Protocol):
    async def get(self, person_id: int) -> Conversation | None: ...
    async def start(
        self, person_id: int, flow: Flow, step: str, data: dict[str, Any], at: datetime
    ) -> Conversation:
        """Replace any open conversation of the person with a new one (new id)."""
        ...

    async def update(self, conversation_id: int, step: str, data: dict[str, Any], at: datetime) -> bool: ...
    async def finish(self, conversation_id: int) -> bool:
        """Close it; False when it was already closed (so a double submit does nothing)."""
        ...


class DeclarationRepository(Protocol):
    async def add(
        self,
        *,
        village_id: int,
        declared_by: int,
        head_name: str,
        phone: str,
        risk_type: str,
        description: str,
        at: datetime,
    ) -> Declaration: ...
    async def get(self, declaration_id: int) -> Declaration | None: ...
    async def by_receipt(self, receipt: str) -> Declaration | None: ...
    async def transition(
        self,
        declaration_id: int,
        *,
        expected: DeclarationStatus,
        to: DeclarationStatus,
        at: datetime,
        verdict: Verdict | None = None,
        reason: str | None = None,
    ) -> bool:
        """Move from `expected` to `to`; False when the declaration was not in `expected`."""
        ...


class TaskRepository(Protocol):
    async def add(self, declaration_id: int, village_id: int, routed_to: RoutedTo, at: datetime) -> Task: ...
    async def get(self, task_id: int) -> Task | None: ...
    async def acknowledge(self, task_id: int, person_id: int, at: datetime) -> bool: ...
    async def decide(self, task_id: int, person_id: int, at: datetime) -> bool: ...


class EventLog(Protocol):
    async def add(self, event: CaseEvent) -> None: ...
    async def for_declaration(self, declaration_id: int) -> list[CaseEvent]: ...


class Outbox(Protocol):
    async def add(
        self,
        person_id: int,
        message: Outgoing,
        *,
        at: datetime,
        key: str | None = None,
        channel: Channel = Channel.TELEGRAM,
    ) -> bool:
        """Queue a message; False (and nothing queued) when `key` was queued before.

        A reply to what a person just did needs no key; a notification caused by a change
        of state gets one derived from that change, so it can never be queued twice.
        """
        ...


class UnitOfWork(Protocol):
    @property
    def geography(self) -> GeographyRepository: ...
    @property
    def persons(self) -> PersonRepository: ...
    @property
    def invites(self) -> InviteRepository: ...
    @property
    def conversations(self) -> ConversationRepository: ...
    @property
    def declarations(self) -> DeclarationRepository: ...
    @property
    def tasks(self) -> TaskRepository: ...
    @property
    def events(self) -> EventLog: ...
    @property
    def outbox(self) -> Outbox: ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...
