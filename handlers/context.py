"""The typed context handlers receive, and the services the application wires into it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from telegram import Update
from telegram.ext import Application, CallbackContext, ExtBot

from domain.actor import Actor, actor_for
from domain.model import Channel
from domain.ports import Clock, DeadlineRules, Protector, UnitOfWork, UnitOfWorkFactory

T = TypeVar("T")
# A use case as a handler runs it: in the handler's unit of work, for the actor it resolved.
UseCase = Callable[[UnitOfWork, Clock, Actor], Awaitable[T]]


@dataclass
class Services:
    uow: UnitOfWorkFactory
    clock: Clock
    qr_secret: bytes
    protector: Protector
    rules: DeadlineRules
    default_locale: str
    wake_sender: Callable[[], None]
    public_url: str | None = None  # where the web pages are reached (PUBLIC_URL), for 代报 links


class BotData:
    """Application-wide data; `services` is set in post_init, before any update is handled."""

    services: Services | None = None


class AppContext(CallbackContext[ExtBot[None], dict[object, object], dict[object, object], BotData]):
    def __init__(
        self,
        application: Application,
        chat_id: int | None = None,
        user_id: int | None = None,
    ) -> None:
        super().__init__(application=application, chat_id=chat_id, user_id=user_id)

    @property
    def services(self) -> Services:
        services = self.bot_data.services
        assert services is not None, "services are wired in post_init"
        return services


def address_of(update: Update) -> str:
    """The chat's address on the Telegram channel (its id)."""
    assert update.effective_chat is not None
    return str(update.effective_chat.id)


def language_of(update: Update) -> str | None:
    """The language of the person's Telegram client (kept for a newcomer until they choose)."""
    return update.effective_user.language_code if update.effective_user else None


async def resolve(uow: UnitOfWork, clock: Clock, update: Update) -> Actor:
    """Who sent the update: resolved once, in the handler's transaction, for its use case."""
    return await actor_for(uow, clock, Channel.TELEGRAM, address_of(update), language=language_of(update))


async def run(update: Update, context: AppContext, use_case: UseCase[T]) -> T:
    """Run a use case for the update's sender in its own transaction (its commit wakes the
    sender for what it left pending)."""
    services = context.services
    async with services.uow() as uow:
        actor = await resolve(uow, services.clock, update)
        result = await use_case(uow, services.clock, actor)
        await uow.commit()
    return result
