"""Who may act on a case, and the opening every step of a case begins with: load the task and
its declaration, or refuse (written once here; each step then checks the move it makes)."""

from __future__ import annotations

from dataclasses import dataclass

from domain.actor import Actor
from domain.messages import Outcome
from domain.model import Declaration, Person, Role, RoutedTo, Task
from domain.ports import UnitOfWork
from domain.procedure import Party


@dataclass(frozen=True)
class Opened:
    """A case a step was asked for: its task and its declaration, both found."""

    task: Task
    declaration: Declaration


def refused(person: Person, key: str | None) -> Outcome:
    """The answer to a press that may not or cannot be carried out (nothing changed)."""
    return Outcome(toast=key or "case.not_found", alert=True, locale=person.locale, done=False)


async def open_task(uow: UnitOfWork, actor: Actor, task_id: int) -> Opened | Outcome:
    """The case a button names, or the refusal to show when there is none."""
    task = await uow.tasks.get(task_id)
    declaration = await uow.declarations.get(task.declaration_id) if task else None
    if task is None or declaration is None:
        return refused(actor, "case.not_found")
    return Opened(task, declaration)


async def open_declaration(uow: UnitOfWork, declaration_id: int) -> Opened | None:
    """A declaration and its task, when both exist."""
    declaration = await uow.declarations.get(declaration_id)
    task = await uow.tasks.for_declaration(declaration_id) if declaration else None
    if declaration is None or task is None:
        return None
    return Opened(task, declaration)


async def recipients_of(uow: UnitOfWork, task: Task) -> list[Person]:
    """Everyone the task was routed to: the village's cadres, or the township's staff."""
    if task.routed_to is RoutedTo.VILLAGE:
        return await uow.persons.cadres_of_village(task.village_id)
    village = await uow.geography.village(task.village_id)
    assert village is not None
    return await uow.persons.staff_of_township(village.township_id)


async def is_township_of(uow: UnitOfWork, person: Person, village_id: int) -> bool:
    village = await uow.geography.village(village_id)
    return village is not None and person.role is Role.TOWNSHIP and person.township_id == village.township_id


async def county_of(uow: UnitOfWork, village_id: int) -> str | None:
    """The county of a village's township (None: the roster names none)."""
    village = await uow.geography.village(village_id)
    if village is None:
        return None
    township = next((t for t in await uow.geography.townships() if t.id == village.township_id), None)
    return township.county if township else None


async def is_county_of(uow: UnitOfWork, person: Person, village_id: int) -> bool:
    return (
        person.role is Role.COUNTY
        and bool(person.county)
        and person.county == await county_of(uow, village_id)
    )


async def records_county_step(uow: UnitOfWork, person: Person, village_id: int) -> bool:
    """Who records 县级审定: the county of the village's township; where the roster names no
    county for it, its township's staff (as before there was a county role)."""
    if await county_of(uow, village_id) is not None:
        return await is_county_of(uow, person, village_id)
    return await is_township_of(uow, person, village_id)


async def may_see(uow: UnitOfWork, person: Person, village_id: int) -> bool:
    """A cadre sees the cases of their villages; township staff those of their township; the
    county those of every township of its county."""
    if person.role is Role.CADRE:
        return village_id in person.village_ids
    if person.role is Role.COUNTY:
        return await is_county_of(uow, person, village_id)
    return await is_township_of(uow, person, village_id)


async def is_handler(uow: UnitOfWork, person: Person, task: Task) -> bool:
    in_village = person.role is Role.CADRE and task.village_id in person.village_ids
    if task.routed_to is RoutedTo.VILLAGE:
        return in_village
    # A case routed to the township that its staff handed to one of the village's cadres is theirs.
    return await is_township_of(uow, person, task.village_id) or (
        in_village and task.acknowledged_by == person.id
    )


async def owner_in_place(uow: UnitOfWork, task: Task) -> int | None:
    """Who acknowledged the task, while they still handle it; None when nobody has, or when the
    roster has since moved them away from its village (they no longer hear of it or act on it)."""
    if task.acknowledged_by is None:
        return None
    owner = await uow.persons.get(task.acknowledged_by)
    return owner.id if owner is not None and await is_handler(uow, owner, task) else None


async def refusal_of(
    uow: UnitOfWork, person: Person, task: Task, declaration: Declaration, party: Party
) -> str | None:
    """Why `person` may not make a move that needs `party` (a catalog key), or None."""
    if party is Party.HOUSEHOLD:
        return None if declaration.declared_by == person.id else "case.not_allowed"
    if party is Party.TOWNSHIP:
        return None if await is_township_of(uow, person, task.village_id) else "case.township_only"
    if party is Party.COUNTY:
        return None if await records_county_step(uow, person, task.village_id) else "case.county_only"
    if not await is_handler(uow, person, task):
        return "case.not_allowed"
    if party is Party.OWNER and task.acknowledged_by != person.id:
        return "case.not_yours"
    return None
