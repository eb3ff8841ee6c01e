"""Whose villages a person sees: a cadre their own, township staff their township's, the county
every township of its county. Anything else is as if it did not exist."""

from __future__ import annotations

from domain.model import Person, Role, Village
from domain.ports import UnitOfWork

# Who may use the console at all.
CONSOLE_ROLES = frozenset({Role.CADRE, Role.TOWNSHIP, Role.COUNTY})


async def villages_of(uow: UnitOfWork, person: Person) -> list[Village]:
    """The villages in `person`'s scope, by code."""
    if person.role is Role.CADRE:
        return await uow.geography.villages(person.village_ids)
    if person.role is Role.TOWNSHIP and person.township_id is not None:
        return await uow.geography.villages_in(person.township_id)
    if person.role is Role.COUNTY and person.county:
        found: list[Village] = []
        for township in await uow.geography.townships_of_county(person.county):
            found += await uow.geography.villages_in(township.id)
        return sorted(found, key=lambda v: v.code)
    return []


async def township_ids_of(uow: UnitOfWork, person: Person) -> list[int]:
    """The townships in `person`'s scope (a cadre's are their villages' townships)."""
    return sorted({v.township_id for v in await villages_of(uow, person)})


async def sees_village(uow: UnitOfWork, person: Person, village_id: int) -> bool:
    return any(v.id == village_id for v in await villages_of(uow, person))
