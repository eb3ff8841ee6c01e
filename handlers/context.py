"""The typed context handlers receive, and the services the application wires into it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from telegram.ext import Application, CallbackContext, ExtBot

from domain.ports import Clock, DeadlineRules, Protector, UnitOfWorkFactory


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
