"""Rows for entering declarations into 全国防返贫监测信息系统, for the township that keeps them.

Only township staff (and the operator's command line) export; they are the ones who enter the
cases, so they get full ID numbers. Everyone else's view masks them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from domain import risk_types, validation
from domain.model import Declaration, Person, Role
from domain.ports import Protector, UnitOfWork, Unreadable

COLUMNS = (
    "receipt", "township", "village", "head_name", "id_number", "phone", "household_size", "risk_types",
    "followups", "description", "declared_by", "status", "verdict", "reason", "green_channel",
    "submitted_at", "acknowledged_by",
)  # fmt: skip
# The id_number of a row whose sealed ID no key opens: the sheet shows the catalog's marker.
ID_UNREADABLE = "export.id_unreadable"


# The national system starts long after 2000; a later day than a year ahead is a typing slip, and
# a span of more than three years is not one entry job (and would read the whole table at once).
EARLIEST = date(2000, 1, 1)
AHEAD = timedelta(days=366)
MAX_YEARS = 3


class ExportRefused(Exception):
    """The export is not allowed or names nothing; `key` says why (a catalog key, with `params`)."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


@dataclass(frozen=True)
class Period:
    """The days to export, both included."""

    first: date
    last: date

    def bounds(self, zone: tzinfo | None) -> tuple[datetime, datetime]:
        """[since, until) in `zone`: from the first day's midnight to the midnight after the last."""
        return (
            datetime.combine(self.first, time(0), zone),
            datetime.combine(self.last + timedelta(days=1), time(0), zone),
        )


def period(args: Sequence[str], today: date) -> Period:
    """The period typed after /export: none (this month so far), a first day (to today), or a first
    and a last day, as YYYY-MM-DD; `ExportRefused("export.bad_period")` for anything else."""
    latest = today + AHEAD
    refused = ExportRefused(
        "export.bad_period", earliest=EARLIEST.isoformat(), latest=latest.isoformat(), years=MAX_YEARS
    )
    if len(args) > 2:
        raise refused
    try:
        days = [date.fromisoformat(arg) for arg in args]
    except ValueError:
        raise refused from None
    if not days:
        return Period(today.replace(day=1), today)
    first, last = days[0], days[1] if len(days) == 2 else today
    if not EARLIEST <= first <= last <= latest or validation.years_after(first, MAX_YEARS) <= last:
        raise refused
    return Period(first, last)


def may_export(requester: Person | None) -> None:
    """Refuse anyone but township staff; `requester` None is the operator's command line."""
    if requester is not None and requester.role is not Role.TOWNSHIP:
        raise ExportRefused("work.township_only")


async def rows(
    uow: UnitOfWork,
    protector: Protector,
    *,
    township_name: str | None,
    since: datetime,
    until: datetime,
    requester: Person | None,
) -> list[dict[str, Any]]:
    """One row per declaration of the township submitted in [since, until); `requester` None = operator."""
    may_export(requester)
    if requester is not None:
        townships = [t for t in await uow.geography.townships() if t.id == requester.township_id]
    else:
        townships = [t for t in await uow.geography.townships() if township_name in (None, t.name)]
        if township_name and not townships:
            raise ExportRefused("cli.unknown_township")
    out: list[dict[str, Any]] = []
    for township in townships:
        villages = {v.id: v for v in await uow.geography.villages_in(township.id)}
        for declaration in await uow.declarations.in_villages(tuple(villages), since=since, until=until):
            out.append(
                await _row(uow, protector, declaration, township.name, villages[declaration.village_id].name)
            )
    return out


async def rows_of_scope(
    uow: UnitOfWork, protector: Protector, person: Person, *, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """The console's export: township staff get their township's rows with full ID numbers (as
    /export); the county every township of its county, ID numbers masked; anyone else is refused."""
    if person.role is Role.TOWNSHIP:
        return await rows(uow, protector, township_name=None, since=since, until=until, requester=person)
    if person.role is not Role.COUNTY or not person.county:
        raise ExportRefused("work.township_only")
    out: list[dict[str, Any]] = []
    for township in await uow.geography.townships_of_county(person.county):
        for row in await rows(
            uow, protector, township_name=township.name, since=since, until=until, requester=None
        ):
            number = row["id_number"]
            masked = validation.mask_id(number) if number not in ("", ID_UNREADABLE) else number
            out.append({**row, "id_number": masked})
    return out


def holds_id_numbers(rows: Sequence[dict[str, Any]]) -> bool:
    """Whether the file of `rows` holds a full ID number (its reader is then told to keep it safe)."""
    return any(row["id_number"] not in ("", ID_UNREADABLE) for row in rows)


def _id_number(protector: Protector, sealed: str | None) -> str:
    """The full ID number, or ID_UNREADABLE: one row sealed under a lost key never spoils the file."""
    if not sealed:
        return ""
    try:
        return protector.unseal(sealed)
    except Unreadable:
        return ID_UNREADABLE


async def _row(
    uow: UnitOfWork, protector: Protector, d: Declaration, township: str, village: str
) -> dict[str, Any]:
    task = await uow.tasks.for_declaration(d.id)
    owner = await uow.persons.get(task.acknowledged_by) if task and task.acknowledged_by else None
    followups = "; ".join(f"{key}={value}" for key, value in d.followups.items())
    if d.filed_by_cadre:
        declared_by = "cadre"
    else:
        declared_by = f"family:{d.relation}" if d.relation else "self"
    return {
        "receipt": d.receipt,
        "township": township,
        "village": village,
        "head_name": d.head_name,
        "id_number": _id_number(protector, d.id_sealed),
        "phone": validation.display_phone(d.phone),
        "household_size": d.household_size or "",
        "risk_types": "、".join(
            r.label("zh_Hans") for code in d.risk_types if (r := risk_types.by_code(code))
        ),
        "followups": followups,
        "description": d.description,
        "declared_by": declared_by,
        "status": d.status.value,
        "verdict": d.verdict.value if d.verdict else "",
        "reason": d.verdict_reason or "",
        "green_channel": "yes" if d.green_channel else "",
        "submitted_at": d.created_at,
        "acknowledged_by": owner.name if owner and owner.name else "",
    }
