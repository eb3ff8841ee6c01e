"""What the console's files page offers township staff and the county: their townships (for the
reports and the ledger), their villages (for flyers), and the messages that could not be delivered
to their people. Anyone else has none of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain import delivery
from domain.actor import Actor
from domain.model import Role, Township
from domain.ports import UnitOfWork

MAX_FAILED = 50  # a township's newest undelivered messages shown


async def townships_of(uow: UnitOfWork, actor: Actor) -> list[Township]:
    """Staff their own township; the county every township of its county; anyone else none."""
    if actor.role is Role.TOWNSHIP and actor.township_id is not None:
        return [t for t in await uow.geography.townships() if t.id == actor.township_id]
    if actor.role is Role.COUNTY and actor.county:
        return await uow.geography.townships_of_county(actor.county)
    return []


async def township_in_scope(uow: UnitOfWork, actor: Actor, township_id: int) -> Township | None:
    return next((t for t in await townships_of(uow, actor) if t.id == township_id), None)


@dataclass(frozen=True)
class Failed:
    """A message the sender gave up on; `reason` is a catalog key."""

    township: str
    name: str | None
    role: Role
    at: datetime
    reason: str


async def failed(uow: UnitOfWork, actor: Actor) -> list[Failed]:
    """The newest undelivered messages to the people of the actor's townships (as /failed lists)."""
    out: list[Failed] = []
    for township in await townships_of(uow, actor):
        for item in await uow.delivery.failed_in_township(township.id, MAX_FAILED):
            reason = delivery.reason_key(item.error)
            out.append(Failed(township.name, item.person_name, _role(item.role), item.at, reason))
    return out


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        return Role.FARMER
