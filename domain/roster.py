"""The roster of township staff and village cadres, imported from a sheet the township keeps."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from domain import validation
from domain.model import Person, Role, Village
from domain.ports import UnitOfWork
from domain.validation import Invalid

COLUMNS = ("township", "village_code", "village", "name", "phone", "role")
OPTIONAL = ("county",)  # the county a township belongs to; for a county person, their county
CHINESE_COLUMNS = {
    "乡镇": "township",
    "村代码": "village_code",
    "村": "village",
    "姓名": "name",
    "手机": "phone",
    "角色": "role",
    "县": "county",
    "县区": "county",
    "县（区）": "county",
}
ROLES = {
    "cadre": Role.CADRE, "村干部": Role.CADRE, "township": Role.TOWNSHIP, "乡镇": Role.TOWNSHIP,
    "county": Role.COUNTY, "县级": Role.COUNTY, "县": Role.COUNTY,
}  # fmt: skip
VILLAGE_CODE = re.compile(r"^[A-Za-z0-9]{1,16}$")
SEPARATORS = re.compile(r"[;；]")


@dataclass(frozen=True)
class Problem:
    line: int
    key: str
    params: dict[str, object] = field(default_factory=dict)


class RosterRejected(Exception):
    """The sheet has errors; nothing was written."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


@dataclass(frozen=True)
class RosterRow:
    line: int
    township: str
    villages: tuple[tuple[str, str | None], ...]  # (code, name or None when defined elsewhere)
    name: str
    phone: str
    role: Role
    county: str | None = None


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    villages_created: int = 0


def header_map(header: Iterable[str]) -> dict[int, str]:
    """Column index -> field, from an English or Chinese header row."""
    found: dict[int, str] = {}
    for index, raw in enumerate(header):
        name = (raw or "").strip().lstrip("\ufeff")
        key = CHINESE_COLUMNS.get(name) or (name.lower() if name.lower() in (*COLUMNS, *OPTIONAL) else None)
        if key:
            found[index] = key
    return found


def parse(rows: Iterable[tuple[int, list[str]]]) -> list[RosterRow]:
    """Check every row of a sheet (first row the header); raise `RosterRejected` listing all problems."""
    parsed, problems = check(rows)
    if problems:
        raise RosterRejected(problems)
    return parsed


def check(rows: Iterable[tuple[int, list[str]]]) -> tuple[list[RosterRow], list[Problem]]:
    """The rows that read, and every problem by line. A row that clashes with an earlier one (its
    phone, a village's name or township) is among the rows and its line among the problems; a sheet
    without the columns gives no rows."""
    iterator = iter(rows)
    try:
        header_line, header = next(iterator)
    except StopIteration:
        return [], [Problem(1, "roster.empty")]
    columns = header_map(header)
    missing = [c for c in COLUMNS if c not in columns.values()]
    if missing:
        return [], [Problem(header_line, "roster.missing_columns", {"columns": ",".join(missing)})]
    problems: list[Problem] = []
    parsed: list[RosterRow] = []
    for line, cells in iterator:
        record = {columns[i]: (cells[i] if i < len(cells) else "").strip() for i in columns}
        if not any(record.values()):
            continue
        try:
            parsed.append(_row(line, record))
        except Invalid as exc:
            problems.append(Problem(line, exc.key, dict(exc.params)))
    problems.extend(_cross_check(parsed))
    return parsed, sorted(problems, key=lambda p: p.line)


def _row(line: int, record: Mapping[str, str]) -> RosterRow:
    role = ROLES.get(record["role"].lower()) or ROLES.get(record["role"])
    if role is None:
        raise Invalid("roster.bad_role", value=record["role"])
    county = validation.short_text(record["county"]) if record.get("county") else None
    name = validation.person_name(record["name"])
    phone = validation.phone(record["phone"])
    codes = [c.strip() for c in SEPARATORS.split(record["village_code"]) if c.strip()]
    names = [n.strip() for n in SEPARATORS.split(record["village"]) if n.strip()]
    if role is Role.COUNTY:
        # 县级: sees every township of its county; belongs to no township and no village.
        if county is None:
            raise Invalid("roster.county_without_county")
        if codes or record["township"]:
            raise Invalid("roster.county_with_township")
        return RosterRow(line, "", (), name, phone, role, county)
    if not record["township"]:
        raise Invalid("roster.no_township")
    if role is Role.TOWNSHIP:
        if codes:
            raise Invalid("roster.staff_with_village")
        return RosterRow(line, record["township"], (), name, phone, role, county)
    if not codes:
        raise Invalid("roster.cadre_without_village")
    for code in codes:
        if not VILLAGE_CODE.match(code):
            raise Invalid("roster.bad_village_code", value=code)
    if names and len(names) != len(codes):
        raise Invalid("roster.village_count")
    pairs = tuple(zip(codes, names or [None] * len(codes), strict=True))
    return RosterRow(line, record["township"], pairs, name, phone, role, county)


def _cross_check(rows: list[RosterRow]) -> list[Problem]:
    problems: list[Problem] = []
    phones: dict[str, int] = {}
    villages: dict[str, tuple[str | None, str, int]] = {}
    counties: dict[str, tuple[str, int]] = {}  # township -> (its county, the line that said so)
    for row in rows:
        if row.role is not Role.COUNTY and row.county:
            seen_county = counties.setdefault(row.township, (row.county, row.line))
            if seen_county[0] != row.county:
                problems.append(
                    Problem(
                        row.line,
                        "roster.county_conflict",
                        {"township": row.township, "other": seen_county[1]},
                    )
                )
        if row.phone in phones:
            problems.append(Problem(row.line, "roster.duplicate_phone", {"other": phones[row.phone]}))
        phones.setdefault(row.phone, row.line)
        for code, name in row.villages:
            seen = villages.get(code)
            if seen is None:
                villages[code] = (name, row.township, row.line)
                continue
            seen_name, seen_township, seen_line = seen
            if seen_township != row.township or (name and seen_name and name != seen_name):
                problems.append(
                    Problem(row.line, "roster.village_conflict", {"code": code, "other": seen_line})
                )
            elif name and not seen_name:
                villages[code] = (name, seen_township, seen_line)
    return problems


async def apply(uow: UnitOfWork, rows: list[RosterRow], at: datetime | None = None) -> ImportReport:
    """Write the checked rows: create what is new, update what changed, leave the rest alone.

    A person whose role changes is signed out of the console (`at`: when; now if not given)."""
    report = ImportReport()
    problems: list[Problem] = []
    townships: dict[str, int] = {}
    counties = {row.township: row.county for row in rows if row.role is not Role.COUNTY and row.county}
    for row in rows:
        if row.role is Role.COUNTY or row.township in townships:
            continue
        township = await uow.geography.township_by_name(row.township)
        if township is None:
            township = await uow.geography.add_township(row.township, counties.get(row.township))
        elif row.township in counties and township.county != counties[row.township]:
            await uow.geography.set_township_county(township.id, counties[row.township])
        townships[row.township] = township.id
    village_ids: dict[str, int] = {}
    for row in rows:
        for code, name in row.villages:
            village = await uow.geography.village_by_code(code)
            township_id = townships[row.township]
            if village is None:
                if name is None:
                    problems.append(Problem(row.line, "roster.unknown_village", {"code": code}))
                    continue
                village = await uow.geography.add_village(code, name, township_id)
                report.villages_created += 1
            elif name is not None and (village.name != name or village.township_id != township_id):
                await uow.geography.update_village(village.id, name, township_id)
            village_ids[code] = village.id
    if problems:
        raise RosterRejected(problems)
    now = at or datetime.now(UTC)
    for row in rows:
        person_township = townships.get(row.township)
        county = row.county if row.role is Role.COUNTY else None
        wanted_villages = tuple(sorted(village_ids[code] for code, _ in row.villages))
        person = await uow.persons.by_phone(row.phone)
        if person is None:
            person = await uow.persons.add(
                row.role, name=row.name, phone=row.phone, township_id=person_township, county=county
            )
            await uow.persons.set_villages(person.id, wanted_villages)
            report.created += 1
            continue
        was = (person.role, person.name, person.township_id, person.county)
        changed = was != (row.role, row.name, person_township, county)
        if changed:
            await uow.persons.update(
                person.id, role=row.role, name=row.name, township_id=person_township, county=county
            )
        if person.role is not row.role:
            # A role that changes ends the person's console sessions: what they may see changed.
            await uow.logins.end_for(person.id, now, "role")
        if tuple(sorted(person.village_ids)) != wanted_villages:
            await uow.persons.set_villages(person.id, wanted_villages)
            changed = True
        if changed:
            report.updated += 1
        else:
            report.unchanged += 1
    return report


@dataclass(frozen=True)
class PersonChange:
    """What a sheet's line does to the person of its phone: `was` None adds them; `changes` names
    what differs (role, name, township, county, villages); none: unchanged."""

    line: int
    name: str
    phone: str
    role: Role
    township: str  # "" for the county
    county: str | None
    villages: tuple[str, ...]  # codes
    was: Person | None
    was_township: str | None
    was_villages: tuple[str, ...]  # codes
    changes: tuple[str, ...]


@dataclass(frozen=True)
class VillageChange:
    """A village the sheet creates (`was` None) or renames or moves to another township."""

    line: int
    code: str
    name: str
    township: str
    was: Village | None
    was_township: str | None


@dataclass(frozen=True)
class Plan:
    """What `apply` would do with the same rows, computed without writing anything."""

    people: tuple[PersonChange, ...]
    villages: tuple[VillageChange, ...]
    townships: tuple[str, ...]  # created
    counties: tuple[tuple[str, str | None, str], ...]  # (township, its county now, its county after)
    problems: tuple[Problem, ...]  # what `apply` would refuse: a village named by code only, unknown

    @property
    def report(self) -> ImportReport:
        added = sum(1 for p in self.people if p.was is None)
        updated = sum(1 for p in self.people if p.was is not None and p.changes)
        created = sum(1 for v in self.villages if v.was is None)
        return ImportReport(added, updated, len(self.people) - added - updated, created)


async def plan(uow: UnitOfWork, rows: list[RosterRow]) -> Plan:
    """The changes `apply` would make with `rows`, in the same order and by the same rules; nothing
    is written."""
    names = {t.id: t.name for t in await uow.geography.townships()}
    counties = {row.township: row.county for row in rows if row.role is not Role.COUNTY and row.county}
    created: list[str] = []
    county_changes: list[tuple[str, str | None, str]] = []
    seen: set[str] = set()
    for row in rows:
        if row.role is Role.COUNTY or row.township in seen:
            continue
        seen.add(row.township)
        township = await uow.geography.township_by_name(row.township)
        if township is None:
            created.append(row.township)
        elif row.township in counties and township.county != counties[row.township]:
            county_changes.append((row.township, township.county, counties[row.township]))
    villages: dict[str, tuple[str, str, Village | None]] = {}  # code -> (name, township, as it is now)
    changes: list[VillageChange] = []
    problems: list[Problem] = []
    for row in rows:
        for code, name in row.villages:
            if code not in villages:
                found = await uow.geography.village_by_code(code)
                if found is not None:
                    villages[code] = (found.name, names.get(found.township_id, ""), found)
            now = villages.get(code)
            if now is None:
                if name is None:
                    problems.append(Problem(row.line, "roster.unknown_village", {"code": code}))
                    continue
                villages[code] = (name, row.township, None)
                changes.append(VillageChange(row.line, code, name, row.township, None, None))
            elif name is not None and (now[0] != name or now[1] != row.township):
                villages[code] = (name, row.township, now[2])
                if now[2] is not None:
                    was = names.get(now[2].township_id)
                    changes.append(VillageChange(row.line, code, name, row.township, now[2], was))
    people: list[PersonChange] = []
    for row in rows:
        codes = tuple(sorted(code for code, _ in row.villages))
        county = row.county if row.role is Role.COUNTY else None
        person = await uow.persons.by_phone(row.phone)
        if person is None:
            people.append(
                PersonChange(
                    row.line, row.name, row.phone, row.role, row.township, county, codes, None, None, (), ()
                )
            )
            continue
        was_township = names.get(person.township_id) if person.township_id is not None else None
        was_codes = tuple(sorted(v.code for v in await uow.geography.villages(person.village_ids)))
        differs = (
            ("role", person.role is not row.role),
            ("name", person.name != row.name),
            ("township", was_township != (row.township or None)),
            ("county", person.county != county),
            ("villages", was_codes != codes),
        )
        people.append(
            PersonChange(
                row.line, row.name, row.phone, row.role, row.township, county, codes, person,
                was_township, was_codes, tuple(what for what, yes in differs if yes),
            )
        )  # fmt: skip
    return Plan(tuple(people), tuple(changes), tuple(created), tuple(county_changes), tuple(problems))
