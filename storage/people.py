"""Repositories of the people: townships and villages, persons and their addresses, invites."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from domain import delivery
from domain.model import Channel, Invite, Person, Role, Township, Village
from storage import statements
from storage.base import Repo, rowcount, utcnow
from storage.outbox import KNOWN_ADDRESSES, KNOWN_PERSONS, PEOPLE_WRITES, Address, people_pending
from storage.tables import (
    CadreVillageRow,
    ChannelAccountRow,
    InviteRow,
    PersonRow,
    TownshipRow,
    VillageRow,
)


class GeographyRepository(Repo):
    async def township_by_name(self, name: str) -> Township | None:
        row = await self.session.scalar(select(TownshipRow).where(TownshipRow.name == name))
        return Township(row.id, row.name, row.county) if row else None

    async def add_township(self, name: str, county: str | None = None) -> Township:
        row = TownshipRow(name=name, county=county)
        self.session.add(row)
        await self.session.flush()
        return Township(row.id, row.name, row.county)

    async def set_township_county(self, township_id: int, county: str | None) -> None:
        await self.session.execute(
            update(TownshipRow).where(TownshipRow.id == township_id).values(county=county)
        )

    async def townships(self) -> list[Township]:
        rows = await self.session.scalars(select(TownshipRow).order_by(TownshipRow.id))
        return [Township(row.id, row.name, row.county) for row in rows]

    async def townships_of_county(self, county: str) -> list[Township]:
        rows = await self.session.scalars(
            select(TownshipRow).where(TownshipRow.county == county).order_by(TownshipRow.id)
        )
        return [Township(row.id, row.name, row.county) for row in rows]

    async def villages_in(self, township_id: int) -> list[Village]:
        result = await self.session.execute(
            statements.VILLAGE_ROWS.where(statements.VILLAGES.c.township_id == township_id).order_by(
                statements.VILLAGES.c.code
            )
        )
        return [self._village(found) for found in result.all()]

    async def all_villages(self) -> list[Village]:
        result = await self.session.execute(statements.VILLAGE_ROWS.order_by(statements.VILLAGES.c.code))
        return [self._village(found) for found in result.all()]

    @staticmethod
    def _village(row: Any) -> Village:
        """From a row of statements.VILLAGE_ROWS."""
        return Village(row.id, row.code, row.name, row.township_id, row.township_name)

    @staticmethod
    def village_of(row: VillageRow, township_name: str) -> Village:
        """From a VillageRow and its township's name (an ORM query's)."""
        return Village(row.id, row.code, row.name, row.township_id, township_name)

    async def village_by_code(self, code: str) -> Village | None:
        found = (await self.session.execute(statements.VILLAGE_BY_CODE, {"code": code})).first()
        return self._village(found) if found else None

    async def village(self, village_id: int) -> Village | None:
        found = (await self.session.execute(statements.VILLAGE_BY_ID, {"village_id": village_id})).first()
        return self._village(found) if found else None

    async def villages(self, village_ids: tuple[int, ...]) -> list[Village]:
        if not village_ids:
            return []
        result = await self.session.execute(
            statements.VILLAGE_ROWS.where(statements.VILLAGES.c.id.in_(village_ids)).order_by(
                statements.VILLAGES.c.code
            )
        )
        return [self._village(found) for found in result.all()]

    async def add_village(self, code: str, name: str, township_id: int) -> Village:
        row = VillageRow(code=code, name=name, township_id=township_id)
        self.session.add(row)
        await self.session.flush()
        village = await self.village(row.id)
        assert village is not None
        return village

    async def update_village(self, village_id: int, name: str, township_id: int) -> None:
        await self.session.execute(
            update(VillageRow).where(VillageRow.id == village_id).values(name=name, township_id=township_id)
        )


class PersonRepository(Repo):
    async def _to_person(self, row: Any) -> Person:
        role = Role(row.role)
        # Villages are a cadre's (or staff's) assignment; a household's person has none to read.
        village_ids = (
            ()
            if role is Role.FARMER
            else await self.session.scalars(statements.VILLAGES_OF, {"person_id": row.id})
        )
        return Person(
            id=row.id,
            role=role,
            name=row.name,
            phone=row.phone,
            township_id=row.township_id,
            locale=row.locale,
            village_ids=tuple(sorted(village_ids)),
            county=row.county,
        )

    async def _one(self, query: Any) -> Person | None:
        row = await self.session.scalar(query)
        return await self._to_person(row) if row else None

    async def get(self, person_id: int) -> Person | None:
        return await self._one(select(PersonRow).where(PersonRow.id == person_id))

    async def by_phone(self, phone: str) -> Person | None:
        return await self._one(select(PersonRow).where(PersonRow.phone == phone))

    async def by_address(self, channel: Channel, address: str) -> Person | None:
        info = self.session.sync_session.info
        writes = info.get(PEOPLE_WRITES, 0)
        known = info.setdefault(KNOWN_PERSONS, {})
        key = (channel.value, address)
        hit = known.get(key)
        if hit is not None and hit[0] == writes and not people_pending(self.session):
            return hit[1]
        row = (
            await self.session.execute(
                statements.PERSON_BY_ADDRESS, {"channel": channel.value, "address": address}
            )
        ).first()
        person = await self._to_person(row) if row else None
        known[key] = (info.get(PEOPLE_WRITES, 0), person)
        if person is not None:  # the outbox needs no second look to address a reply to this chat
            info.setdefault(KNOWN_ADDRESSES, {})[(person.id, channel.value)] = (
                info.get(PEOPLE_WRITES, 0),
                Address(person.locale, address),
            )
        return person

    async def add(
        self,
        role: Role,
        *,
        name: str | None = None,
        phone: str | None = None,
        township_id: int | None = None,
        locale: str | None = None,
        county: str | None = None,
    ) -> Person:
        row = PersonRow(
            role=role.value,
            name=name,
            phone=phone,
            township_id=township_id,
            locale=locale[:16] if locale else None,
            created_at=utcnow(),
            county=county,
        )
        self.session.add(row)
        await self.session.flush()
        return await self._to_person(row)

    async def update(
        self,
        person_id: int,
        *,
        role: Role,
        name: str | None,
        township_id: int | None,
        county: str | None = None,
    ) -> None:
        await self.session.execute(
            update(PersonRow)
            .where(PersonRow.id == person_id)
            .values(role=role.value, name=name, township_id=township_id, county=county)
        )

    async def of_county(self, county: str) -> list[Person]:
        return await self._many(
            select(PersonRow).where(PersonRow.county == county, PersonRow.role == Role.COUNTY.value)
        )

    async def set_villages(self, person_id: int, village_ids: tuple[int, ...]) -> None:
        await self.session.execute(delete(CadreVillageRow).where(CadreVillageRow.person_id == person_id))
        for village_id in village_ids:
            self.session.add(CadreVillageRow(person_id=person_id, village_id=village_id))
        await self.session.flush()

    async def set_locale(self, person_id: int, locale: str | None) -> None:
        await self.session.execute(update(PersonRow).where(PersonRow.id == person_id).values(locale=locale))

    async def bind(self, person_id: int, channel: Channel, address: str, at: datetime) -> None:
        """Point the address at this person, taking it from whoever had it before."""
        await self.session.execute(
            delete(ChannelAccountRow).where(
                ChannelAccountRow.channel == channel.value,
                (ChannelAccountRow.address == address) | (ChannelAccountRow.person_id == person_id),
            )
        )
        self.session.add(
            ChannelAccountRow(person_id=person_id, channel=channel.value, address=address, bound_at=at)
        )
        await self.session.flush()

    async def address_of(self, person_id: int, channel: Channel) -> str | None:
        return await self.session.scalar(
            select(ChannelAccountRow.address).where(
                ChannelAccountRow.person_id == person_id, ChannelAccountRow.channel == channel.value
            )
        )

    async def _many(self, query: Any) -> list[Person]:
        rows = (await self.session.scalars(query.order_by(PersonRow.id))).all()
        return [await self._to_person(row) for row in rows]

    async def cadres_of_village(self, village_id: int) -> list[Person]:
        return await self._many(
            select(PersonRow)
            .join(CadreVillageRow, CadreVillageRow.person_id == PersonRow.id)
            .where(CadreVillageRow.village_id == village_id, PersonRow.role == Role.CADRE.value)
        )

    async def staff_of_township(self, township_id: int) -> list[Person]:
        return await self._many(
            select(PersonRow).where(
                PersonRow.township_id == township_id, PersonRow.role == Role.TOWNSHIP.value
            )
        )

    async def reachable(self, person_ids: list[int]) -> set[int]:
        if not person_ids:
            return set()
        found = await self.session.scalars(
            select(ChannelAccountRow.person_id).where(
                ChannelAccountRow.person_id.in_(person_ids),
                ChannelAccountRow.channel.in_([c.value for c in delivery.CHANNELS]),
            )
        )
        return set(found)


class InviteRepository(Repo):
    @staticmethod
    def _invite(row: InviteRow) -> Invite:
        return Invite(row.id, row.person_id, row.expires_at, row.used_at)

    async def add(self, person_id: int, token_hash: str, expires_at: datetime) -> Invite:
        row = InviteRow(
            person_id=person_id, token_hash=token_hash, created_at=utcnow(), expires_at=expires_at
        )
        self.session.add(row)
        await self.session.flush()
        return self._invite(row)

    async def by_hash(self, token_hash: str) -> Invite | None:
        row = await self.session.scalar(select(InviteRow).where(InviteRow.token_hash == token_hash))
        return self._invite(row) if row else None

    async def use(self, invite_id: int, at: datetime) -> bool:
        result = await self.session.execute(
            update(InviteRow).where(InviteRow.id == invite_id, InviteRow.used_at.is_(None)).values(used_at=at)
        )
        return rowcount(result) == 1

    async def revoke(self, person_id: int, at: datetime) -> int:
        result = await self.session.execute(
            update(InviteRow)
            .where(InviteRow.person_id == person_id, InviteRow.used_at.is_(None))
            .values(used_at=at)
        )
        return rowcount(result)
