"""The console's roster: township staff check a sheet against the roster before it is applied,
for their own township only, and print invite links for its cadres and staff.

A sheet is applied whole or not at all, as the command line applies it: any bad line (the sheet's
own, or one outside the township) stops it, and the page says which and why, beside the line.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from domain import people, roster
from domain.actor import Actor
from domain.model import Person, Role, Township
from domain.ports import Clock, UnitOfWork
from domain.roster import Problem, RosterRow

OTHER_TOWNSHIP = "console.roster_other_township"
OTHER_COUNTY = "console.roster_other_county"
PERSON_ELSEWHERE = "console.roster_person_elsewhere"
VILLAGE_ELSEWHERE = "console.roster_village_elsewhere"


class NotStaff(Exception):
    """The actor keeps no township's roster (the console shows what does not exist)."""


@dataclass(frozen=True)
class Preview:
    """What a sheet would change in the township's roster, and every line that stops it."""

    township: Township
    plan: roster.Plan  # of the good lines only
    problems: tuple[Problem, ...]  # by line

    @property
    def ready(self) -> bool:
        return not self.problems

    @property
    def fingerprint(self) -> str:
        """Names these changes: applying checks they are still what was shown."""
        return hashlib.sha256(repr((self.plan, self.problems)).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Applied:
    report: roster.ImportReport


@dataclass(frozen=True)
class Changed:
    """The roster changed since the preview (or the sheet has bad lines): here is the new one."""

    preview: Preview


async def township_of(uow: UnitOfWork, actor: Actor) -> Township:
    """The township whose roster the actor keeps; `NotStaff` for anyone else."""
    if actor.role is not Role.TOWNSHIP or actor.township_id is None:
        raise NotStaff
    found = next((t for t in await uow.geography.townships() if t.id == actor.township_id), None)
    if found is None:
        raise NotStaff
    return found


async def _outside(uow: UnitOfWork, township: Township, row: RosterRow) -> Problem | None:
    """Why a line is not the township's to write, or None."""
    if row.role is Role.COUNTY or row.township != township.name:
        return Problem(row.line, OTHER_TOWNSHIP, {"township": row.township or row.county or ""})
    if row.county and row.county != township.county:
        return Problem(row.line, OTHER_COUNTY, {"county": row.county})
    person = await uow.persons.by_phone(row.phone)
    if person is not None and (
        person.role is Role.COUNTY or (person.township_id is not None and person.township_id != township.id)
    ):
        return Problem(row.line, PERSON_ELSEWHERE, {"phone": row.phone})
    for code, _ in row.villages:
        village = await uow.geography.village_by_code(code)
        if village is not None and village.township_id != township.id:
            return Problem(row.line, VILLAGE_ELSEWHERE, {"code": code})
    return None


async def preview(uow: UnitOfWork, actor: Actor, rows: list[RosterRow], problems: list[Problem]) -> Preview:
    """The changes of the sheet's good lines (`rows` and `problems` as `roster.check` gives them),
    with its bad lines and those outside the actor's township; nothing is written."""
    township = await township_of(uow, actor)
    bad = {p.line for p in problems}
    found = list(problems)
    good: list[RosterRow] = []
    for row in rows:
        if row.line in bad:
            continue
        outside = await _outside(uow, township, row)
        if outside is None:
            good.append(row)
        else:
            found.append(outside)
    plan = await roster.plan(uow, good)
    found += plan.problems
    return Preview(township, plan, tuple(sorted(found, key=lambda p: p.line)))


async def confirm(
    uow: UnitOfWork,
    clock: Clock,
    actor: Actor,
    rows: list[RosterRow],
    problems: list[Problem],
    fingerprint: str,
) -> Applied | Changed:
    """Apply the sheet when it is still exactly what the actor was shown and has no bad line."""
    checked = await preview(uow, actor, rows, problems)
    if not checked.ready or checked.fingerprint != fingerprint:
        return Changed(checked)
    return Applied(await roster.apply(uow, rows, clock.now()))


# --- invites -------------------------------------------------------------------------------------


async def invitable(uow: UnitOfWork, actor: Actor) -> list[Person]:
    """The township's staff, then its villages' cadres, by name."""
    township = await township_of(uow, actor)
    cadres: dict[int, Person] = {}
    for village in await uow.geography.villages_in(township.id):
        for cadre in await uow.persons.cadres_of_village(village.id):
            cadres.setdefault(cadre.id, cadre)
    staff = await uow.persons.staff_of_township(township.id)

    def by_name(group: list[Person]) -> list[Person]:
        return sorted(group, key=lambda p: (p.name or "", p.id))

    return by_name(staff) + by_name([c for c in cadres.values() if c.phone])


async def bound(uow: UnitOfWork, found: list[Person]) -> set[int]:
    """Those of `found` whom messages reach already (their chat is bound)."""
    return await uow.persons.reachable([p.id for p in found])


async def invite(
    uow: UnitOfWork, clock: Clock, actor: Actor, person_ids: list[int] | None
) -> list[people.IssuedInvite]:
    """A one-time invite (7 days) for each of the township's people named (None: everyone not bound
    yet); any other id is ignored. Each replaces the person's earlier invite not yet used."""
    listed = await invitable(uow, actor)
    wanted = set(person_ids) if person_ids is not None else {p.id for p in listed} - await bound(uow, listed)
    issued = []
    for person in listed:
        if person.id in wanted and person.phone:
            issued.append(await people.issue_invite(uow, clock, person.phone))
    return issued


@dataclass(frozen=True)
class LiveInvite:
    person: Person
    expires_at: datetime


async def live_invite(uow: UnitOfWork, clock: Clock, actor: Actor, token: str) -> LiveInvite | None:
    """The invite of `token` when it is unused, unexpired and for one of the actor's township."""
    if not people.INVITE_TOKEN.fullmatch(token):
        return None
    found = await uow.invites.by_hash(people.hash_token(token))
    if found is None or found.used_at is not None or found.expires_at <= clock.now():
        return None
    person = next((p for p in await invitable(uow, actor) if p.id == found.person_id), None)
    return LiveInvite(person, found.expires_at) if person is not None else None
