"""/daibao_web: a village cadre gets a short-lived link to the web form, to file for a household
(代报) on the phone's browser, for one of their villages."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler, filters

from domain import web_intake
from domain.model import Person, Village
from handlers.context import AppContext, run
from qr.cadre_links import LINK_TTL, sign_cadre_link

PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE


async def daibao_web(update: Update, context: AppContext) -> None:
    """Send a cadre one signed web-form link per assigned village; refuse anyone else."""
    services = context.services
    base = (services.public_url or "").rstrip("/")

    def link(person: Person, village: Village) -> str:
        token = sign_cadre_link(services.qr_secret, person.id, village.code, services.clock.now())
        return f"{base}/d/{token}/form"

    await run(
        update,
        context,
        lambda uow, clock, actor: web_intake.offer_links(
            uow,
            clock,
            actor,
            public_url=services.public_url,
            link=link,
            minutes=int(LINK_TTL.total_seconds() // 60),
        ),
    )


def commands() -> list[BaseHandler[Update, AppContext, None]]:
    """The 代报 link command (composed with the chat's in bot/)."""
    return [CommandHandler("daibao_web", daibao_web, filters=PRIVATE)]
