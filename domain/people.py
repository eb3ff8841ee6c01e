"""Who is talking to us: accounts, roles, invites that bind a roster person to a chat."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from domain import buttons as b
from domain.actor import Actor, actor_for
from domain.messages import Action, Outcome, Outgoing
from domain.model import HOTLINE, Channel, Person, Role
from domain.ports import Clock, UnitOfWork
from domain.validation import Invalid, phone

# The commands of each role (each described by "command.<name>"), shown as the chat's menu: a
# farmer's stays short; cadres and township staff get theirs once they are bound.
ROLE_COMMANDS = {
    "farmer": ("start", "status", "cancel", "language", "help"),
    "cadre": ("tasks", "daibao", "daibao_web", "problem", "problems", "web", "cancel", "language", "help"),
    "township": (
        "tasks", "overdue", "stats", "case", "notice", "campaign", "report", "problems", "failed",
        "export", "web", "cancel", "language", "help",
    ),
    "county": ("web", "language", "help"),
}  # fmt: skip
COMMANDS = tuple(dict.fromkeys(name for names in ROLE_COMMANDS.values() for name in names))

INVITE_PREFIX = "i_"
INVITE_TTL = timedelta(days=7)
# What issue_invite makes (token_urlsafe); anything else (non-ASCII typed after /start i_) is no invite.
INVITE_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,62}", re.ASCII)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class IssuedInvite:
    person: Person
    token: str
    expires_at: datetime

    @property
    def payload(self) -> str:
        """The deep-link start parameter (letters, digits, _ and -; at most 64 characters)."""
        return INVITE_PREFIX + self.token


async def issue_invite(
    uow: UnitOfWork, clock: Clock, raw_phone: str, ttl: timedelta = INVITE_TTL
) -> IssuedInvite:
    """Make a one-time, expiring invite for the roster person with this phone number; it replaces
    any earlier invite of theirs not yet used."""
    number = phone(raw_phone)
    person = await uow.persons.by_phone(number)
    if person is None or person.role is Role.FARMER:
        raise Invalid("invite.unknown_phone")
    token = secrets.token_urlsafe(24)  # 32 characters
    expires_at = clock.now() + ttl
    # Only the newest invite works: an earlier link someone else got hold of (a forwarded SMS)
    # must not bind their chat as this person once a new one was sent.
    await uow.invites.revoke(person.id, clock.now())
    await uow.invites.add(person.id, hash_token(token), expires_at)
    return IssuedInvite(person=person, token=token, expires_at=expires_at)


async def redeem_invite(uow: UnitOfWork, clock: Clock, channel: Channel, address: str, token: str) -> Outcome:
    """Bind the chat to the invited roster person and greet them by name and villages.

    Like `actor_for`, this is where a front end learns who an address is, so it takes the address:
    a valid invite binds it to the roster person, never to a stranger made first."""
    now = clock.now()
    invite = await uow.invites.by_hash(hash_token(token)) if INVITE_TOKEN.fullmatch(token) else None
    if invite is None or invite.used_at is not None or invite.expires_at <= now:
        stranger = await actor_for(uow, clock, channel, address)
        key = "invite.expired" if invite is not None else "invite.invalid"
        await uow.outbox.add(stranger.id, Outgoing(key), at=now)
        return Outcome(done=False, locale=stranger.locale)
    if not await uow.invites.use(invite.id, now):
        return Outcome(done=False)
    person = await uow.persons.get(invite.person_id)
    assert person is not None
    await uow.persons.bind(person.id, channel, address, now)
    if person.role is Role.CADRE:
        villages = await uow.geography.villages(person.village_ids)
        names = "、".join(v.name for v in villages)
        message = Outgoing("invite.welcome_cadre", {"name": person.name, "villages": names})
    else:
        message = Outgoing("invite.welcome_staff", {"name": person.name})
    await uow.outbox.add(person.id, message, key=f"invite-welcome:{invite.id}", at=now)
    return Outcome(locale=person.locale, params={"role": person.role.value})


async def set_language(uow: UnitOfWork, clock: Clock, actor: Actor, locale: str | None) -> Outcome:
    """Remember the language a person chose and confirm it in that language."""
    if locale not in {code for code, _ in LANGUAGES}:
        return Outcome(toast="button.invalid", locale=actor.locale, done=False)
    await uow.persons.set_locale(actor.id, locale)
    await uow.outbox.add(actor.id, Outgoing("language.set"), at=clock.now())
    return Outcome(locale=locale)


Locale = Literal["zh_Hans", "en"]
LANGUAGES: tuple[tuple[Locale, str], ...] = (("zh_Hans", "language.zh"), ("en", "language.en"))


async def offer_languages(uow: UnitOfWork, clock: Clock, actor: Actor) -> None:
    """Show the languages a person can choose."""
    buttons = tuple(Action(b.ChooseLanguage(code), label=label) for code, label in LANGUAGES)
    await uow.outbox.add(actor.id, Outgoing("language.choose", actions=(buttons,)), at=clock.now())


async def show_help(uow: UnitOfWork, clock: Clock, actor: Actor) -> Person:
    """What this person can do here, by role."""
    key = {
        Role.FARMER: "help.farmer",
        Role.CADRE: "help.cadre",
        Role.TOWNSHIP: "help.staff",
        Role.COUNTY: "help.county",
    }[actor.role]
    await uow.outbox.add(actor.id, Outgoing(key, {"hotline": HOTLINE}), at=clock.now())
    return actor
