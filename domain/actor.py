"""The person acting: resolved once by the front end (a chat, a web page, the CLI) and passed to
every use case, which never looks a person up by a channel address itself."""

from __future__ import annotations

from dataclasses import dataclass, fields

from domain.model import Channel, Person, Role
from domain.ports import Clock, UnitOfWork

CHAT, WEB, CLI = "chat", "web", "cli"


@dataclass(frozen=True)
class Actor(Person):
    """A `Person` as they act now; `via` names the front end they act through ("chat", "web",
    "cli"), never a delivery channel: what they are told goes wherever reaches them."""

    via: str = CHAT


def acting(person: Person, via: str = CHAT) -> Actor:
    """`person` as the actor of a use case."""
    if isinstance(person, Actor):
        return person
    return Actor(**{f.name: getattr(person, f.name) for f in fields(Person)}, via=via)


async def actor_for(
    uow: UnitOfWork, clock: Clock, channel: Channel, address: str, *, language: str | None = None
) -> Actor:
    """The person bound to this address; a stranger becomes a member of the public (role farmer).

    A newcomer's language is their client's (`language`), until they choose one with /language;
    the renderer falls back to Chinese for a language we have no catalog for.
    """
    person = await uow.persons.by_address(channel, address)
    if person is None:
        person = await uow.persons.add(Role.FARMER, locale=language)
        await uow.persons.bind(person.id, channel, address, clock.now())
    return acting(person)
