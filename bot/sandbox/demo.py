"""The demo township of the sandbox: read from `demo.toml`, loaded through the real use cases."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from domain import people, roster
from domain.model import Channel
from domain.ports import Clock, UnitOfWorkFactory

DEMO_FILE = Path(__file__).with_name("demo.toml")

# What a pane of the sandbox page is called, by its person's role.
LABELS = {"farmer": "农户", "cadre": "村干部", "township": "乡镇", "county": "县级"}
# The panes the training tour and the tests rely on.
REQUIRED = ("farmer", "cadre", "staff")
PHONE = re.compile(r"1[3-9]\d{9}")


@dataclass(frozen=True)
class Persona:
    """A demo person and the sandbox chat they use."""

    chat_id: int
    name: str
    phone: str  # as on the roster: 11 digits, no country code
    role: str  # "farmer", "cadre", "township" or "county"
    villages: tuple[str, ...] = ()
    pane: str | None = None  # the slug of the person's pane ("farmer", "cadre", "staff", ...)

    @property
    def label(self) -> str:
        return LABELS[self.role]


@dataclass(frozen=True)
class Household:
    """A demo household without Telegram: it declares on the web form and hears back by text."""

    name: str
    phone: str  # a mainland mobile: 11 digits, no country code
    village: str  # its village's code


@dataclass(frozen=True)
class Demo:
    township: str
    county: str | None
    villages: dict[str, str]  # code -> name
    people: tuple[Persona, ...]  # the roster people (cadres, staff, the county)
    farmer: Persona
    texted: Household  # the household of the phone pane

    @property
    def panes(self) -> tuple[Persona, ...]:
        """The people shown on the page, in the order of its switch: the farmer first."""
        return (self.farmer, *(p for p in self.people if p.pane))

    def pane(self, slug: str) -> Persona | None:
        return next((p for p in self.panes if p.pane == slug), None)

    @property
    def farmer_village(self) -> tuple[str, str]:
        """(code, name) of the village whose QR code the farmer scans."""
        code = self.farmer.villages[0]
        return code, self.villages[code]

    def roster_rows(self) -> list[tuple[int, list[str]]]:
        """The roster as a sheet would give it (header first), for `domain.roster.parse`."""
        rows: list[tuple[int, list[str]]] = [(1, [*roster.COLUMNS, "county"])]
        for line, person in enumerate(self.people, start=2):
            codes = ";".join(person.villages)
            names = ";".join(self.villages[c] for c in person.villages)
            township = "" if person.role == "county" else self.township
            fields = [township, codes, names, person.name, person.phone, person.role, self.county or ""]
            rows.append((line, fields))
        return rows


def read_demo(path: Path = DEMO_FILE) -> Demo:
    """The demo township described by a TOML file."""
    data = tomllib.loads(path.read_text("utf-8"))
    villages = {str(v["code"]): str(v["name"]) for v in data["villages"]}
    persons = tuple(
        Persona(
            chat_id=int(p["chat_id"]),
            name=str(p["name"]),
            phone=str(p["phone"]),
            role=str(p["role"]),
            villages=tuple(str(c) for c in p.get("villages", ())),
            pane=p.get("pane"),
        )
        for p in data["people"]
    )
    f = data["farmer"]
    farmer = Persona(
        chat_id=int(f["chat_id"]),
        name=str(f["name"]),
        phone=str(f["phone"]),
        role="farmer",
        villages=(str(f["village"]),),
        pane="farmer",
    )
    t = data["texted"]
    texted = Household(name=str(t["name"]), phone=str(t["phone"]), village=str(t["village"]))
    county = str(data["county"]) if data.get("county") else None
    demo = Demo(
        township=str(data["township"]),
        county=county,
        villages=villages,
        people=persons,
        farmer=farmer,
        texted=texted,
    )
    missing = [slug for slug in REQUIRED if demo.pane(slug) is None]
    slugs = [p.pane for p in demo.panes]
    phones = [p.phone for p in (farmer, *persons)]
    if missing or len(set(slugs)) != len(slugs) or farmer.villages[0] not in villages:
        raise ValueError(
            f"{path}: the panes {REQUIRED} each need a person ({missing} missing), no two people one"
            " pane, and the farmer a known village"
        )
    if texted.village not in villages or texted.phone in phones or not PHONE.fullmatch(texted.phone):
        raise ValueError(
            f"{path}: [texted] needs a known village and a mobile number (11 digits) of its own"
            " (on the farmer's number the web form would take it for his declaration again)"
        )
    return demo


async def load(uow: UnitOfWorkFactory, clock: Clock, demo: Demo) -> int:
    """Import the demo roster and bind each roster person to their sandbox chat by invite.

    Both steps are the ones a township uses (roster import, a one-time invite opened in the
    chat), and both leave alone what is already there, so this runs on every start. Returns
    how many people were bound now.
    """
    rows = roster.parse(demo.roster_rows())
    async with uow() as work:
        await roster.apply(work, rows)
        await work.commit()
    bound = 0
    for person in demo.people:
        address = str(person.chat_id)
        async with uow() as work:
            if await work.persons.by_address(Channel.TELEGRAM, address) is not None:
                continue
            invite = await people.issue_invite(work, clock, person.phone)
            await work.commit()
        async with uow() as work:
            await people.redeem_invite(work, clock, Channel.TELEGRAM, address, invite.token)
            await work.commit()
        bound += 1
    return bound
