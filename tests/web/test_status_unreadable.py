"""The status page of a declaration whose ID number no key opens: it says so, and nothing breaks."""

from __future__ import annotations

from bot.crypto import FernetProtector
from domain.model import NewDeclaration, Role
from tests.web.conftest import Site

ID = "11010519491231002X"


async def declared(site: Site, phone: str, sealed: str | None) -> str:
    async with site.uow() as work:
        village = await work.geography.village_by_code("QS01")
        farmer = await work.persons.add(Role.FARMER)
        assert village is not None
        made = await work.declarations.add(
            NewDeclaration(
                village_id=village.id, declared_by=farmer.id, head_name="王大山", phone=phone,
                risk_types=("illness",), description="住院", consent_version="2026-11",
                consent_at=site.clock.now(), id_sealed=sealed,
            ),
            site.clock.now(),
        )  # fmt: skip
        await work.commit()
    return made.receipt


async def test_one_unreadable_id_among_good_ones_shows_a_marker_not_a_500(site: Site) -> None:
    good = await declared(site, "+8613912345678", site.protector.seal(ID))
    lost = await declared(site, "+8613912345679", FernetProtector(b"a-key-nobody-has-any-more").seal(ID))
    garbage = await declared(site, "+8613912345670", "not a sealed value")
    token = await site.csrf("/status")
    pages = {}
    for receipt, phone in ((good, "13912345678"), (lost, "13912345679"), (garbage, "13912345670")):
        response = await site.client.post("/status", data={"receipt": receipt, "phone": phone, "csrf": token})
        pages[receipt] = (response.status, await response.text())
    assert pages[good][0] == 200 and "1101**********002X" in pages[good][1]
    assert "无法解密" not in pages[good][1]
    for receipt in (lost, garbage):
        status, body = pages[receipt]
        assert status == 200 and receipt in body and "李家村" in body
        assert "无法解密" in body and ID not in body and "1101" not in body
