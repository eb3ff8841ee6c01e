"""/web: staff, the county and cadres get a one-time link that signs them in to the web console."""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler, filters

from domain.office import logins
from handlers.context import AppContext, run
from qr.console_links import sign_login

PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
LOGIN_PATH = "/console/login/"


async def web(update: Update, context: AppContext) -> None:
    """Send a one-time sign-in link to the console (valid 10 minutes, one use)."""
    services = context.services
    base = (services.public_url or "").rstrip("/")

    def link(token: str) -> str:
        return f"{base}{LOGIN_PATH}{sign_login(services.qr_secret, token)}"

    await run(
        update,
        context,
        lambda uow, clock, actor: logins.offer(uow, clock, actor, public_url=services.public_url, link=link),
    )


def commands() -> list[BaseHandler[Any, Any, Any]]:
    """The console's command (composed with the chat's in bot/)."""
    return [CommandHandler("web", web, filters=PRIVATE)]
