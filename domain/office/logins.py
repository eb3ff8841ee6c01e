"""Signing in to the console without a password: a one-time link asked for in chat (/web), then a
session kept on the server, ended by signing out, by 30 idle minutes, after 12 hours, or when the
roster changes the person's role.

Only hashes of the link's and the session's tokens are stored: a copy of the database opens no
session. The link is opened with a GET that only shows whom it signs in (link previews fetch it
too); the sign-in itself is a POST, so a preview never uses the link up.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.actor import WEB, Actor, acting
from domain.messages import Outcome, Outgoing
from domain.model import HOTLINE, Person
from domain.office.scope import CONSOLE_ROLES
from domain.ports import Clock, UnitOfWork

LINK_TTL = timedelta(minutes=10)
IDLE = timedelta(minutes=30)
LONGEST = timedelta(hours=12)
TOUCH_EVERY = timedelta(minutes=1)  # a session's last-seen time is written at most this often
MAX_TOKEN = 64  # characters of a token from outside; anything longer is no token of ours


def digest(token: str) -> str:
    """What is stored of a token: its SHA-256."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


async def offer(
    uow: UnitOfWork,
    clock: Clock,
    actor: Actor,
    *,
    public_url: str | None,
    link: Callable[[str], str],
) -> Outcome:
    """/web: staff, the county and cadres get a link that signs them in to the console once,
    within 10 minutes; anyone else is told the console is not for them."""
    now = clock.now()
    if actor.role not in CONSOLE_ROLES:
        await uow.outbox.add(actor.id, Outgoing("console.not_for_you", {"hotline": HOTLINE}), at=now)
        return Outcome(locale=actor.locale, done=False)
    if public_url is None:
        await uow.outbox.add(actor.id, Outgoing("web.no_public_url", {"hotline": HOTLINE}), at=now)
        return Outcome(locale=actor.locale, done=False)
    token = secrets.token_urlsafe(24)
    await uow.logins.add_link(actor.id, digest(token), now + LINK_TTL, now)
    minutes = int(LINK_TTL.total_seconds() // 60)
    await uow.outbox.add(actor.id, Outgoing("console.link", {"url": link(token), "minutes": minutes}), at=now)
    return Outcome(locale=actor.locale)


@dataclass(frozen=True)
class Refused:
    """Why a link or a session does not sign anyone in (a catalog key)."""

    key: str


async def _link_person(uow: UnitOfWork, now: datetime, token: str) -> tuple[int, Person] | Refused:
    if not token or len(token) > MAX_TOKEN:
        return Refused("console.link_bad")
    link = await uow.logins.link(digest(token))
    if link is None:
        return Refused("console.link_bad")
    if link.used_at is not None:
        return Refused("console.link_used")
    if link.expires_at <= now:
        return Refused("console.link_expired")
    person = await uow.persons.get(link.person_id)
    if person is None or person.role not in CONSOLE_ROLES:
        return Refused("console.link_bad")
    return link.id, person


async def whom(uow: UnitOfWork, clock: Clock, token: str) -> Person | Refused:
    """Whom a link would sign in (for the page that asks to confirm), without using it."""
    found = await _link_person(uow, clock.now(), token)
    return found if isinstance(found, Refused) else found[1]


async def sign_in(uow: UnitOfWork, clock: Clock, token: str) -> tuple[Actor, str] | Refused:
    """Use the link (once) and open a session; the actor and the session's token."""
    now = clock.now()
    found = await _link_person(uow, now, token)
    if isinstance(found, Refused):
        return found
    link_id, person = found
    if not await uow.logins.use_link(link_id, now):
        return Refused("console.link_used")
    session = secrets.token_urlsafe(32)
    await uow.logins.add_session(person.id, person.role, digest(session), now)
    return acting(person, via=WEB), session


async def signed_in(uow: UnitOfWork, clock: Clock, session: str) -> Actor | None:
    """The actor of a browser's session, while it lasts; a session past its time, or of a person
    whose role changed since, is ended."""
    if not session or len(session) > MAX_TOKEN:
        return None
    found = await uow.logins.find_session(digest(session))
    if found is None or found.ended_at is not None:
        return None
    now = clock.now()
    person = await uow.persons.get(found.person_id)
    why = None
    if person is None or person.role is not found.role or person.role not in CONSOLE_ROLES:
        why = "role"
    elif now - found.last_seen_at > IDLE:
        why = "idle"
    elif now - found.created_at > LONGEST:
        why = "age"
    if why is not None or person is None:
        await uow.logins.end(found.id, now, why or "role")
        return None
    if now - found.last_seen_at >= TOUCH_EVERY:
        await uow.logins.touch(found.id, now)
    return acting(person, via=WEB)


async def sign_out(uow: UnitOfWork, clock: Clock, session: str) -> None:
    """End this browser's session."""
    if session and len(session) <= MAX_TOKEN:
        found = await uow.logins.find_session(digest(session))
        if found is not None:
            await uow.logins.end(found.id, clock.now(), "logout")
