"""The console's cases through HTTP: the list (scope, filters, search, sort, bounded inputs), one
case (answers, files, history), its steps by the chat's own use cases, and the ID number."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import select, text

from domain import validation
from domain.actor import actor_for
from domain.cases import acknowledge
from domain.intake import CONSENT_VERSION, Draft, submit
from domain.model import Channel, Declaration, DeclarationStatus
from storage.tables import DeclarationRow, TaskRow
from tests.console.conftest import CHEN, LI, LIU, WANG, ZHANG, ZHAO, ZHOU, Desk

RECEIPTS = re.compile(r'href="/console/cases/(\d+)"')
ID_NUMBER = "110101199003074514"


def listed(page: str) -> list[str]:
    """The receipts a list page links to, in order."""
    return RECEIPTS.findall(page)


async def get(desk: Desk, path: str) -> tuple[int, str]:
    response = await desk.client.get(path)
    return response.status, await response.text()


async def page_of(desk: Desk, path: str) -> str:
    """A page that must be there."""
    status, page = await get(desk, path)
    assert status == 200, page
    return page


async def post(desk: Desk, path: str, data: dict[str, str]) -> Any:
    return await desk.client.post(path, data={"csrf": await desk.csrf(), **data}, allow_redirects=False)


async def rows(desk: Desk, sql: str, **params: Any) -> list[Any]:
    async with desk.uow() as uow:
        return list(await uow.session.execute(text(sql), params))


async def status_of(desk: Desk, receipt: str) -> DeclarationStatus:
    async with desk.uow() as uow:
        found = await uow.declarations.by_receipt(receipt)
    assert found is not None
    return found.status


async def outbox_to(desk: Desk, address: str) -> list[dict[str, Any]]:
    """The payloads queued for the person of a chat, oldest first."""
    async with desk.uow() as uow:
        person = await uow.persons.by_address(Channel.TELEGRAM, address)
    assert person is not None
    found = await rows(desk, "SELECT payload FROM outbox WHERE person_id = :p ORDER BY id", p=person.id)
    return [p if isinstance(p, dict) else json.loads(p) for (p,) in found]


async def declare_with(desk: Desk, village: str, phone: str, address: str, **answers: Any) -> Declaration:
    """A declaration with more answers than desk.declare gives (an ID number, photos, a voice note)."""
    async with desk.uow() as uow:
        actor = await actor_for(uow, desk.clock, Channel.TELEGRAM, address)
        found = await uow.geography.village_by_code(village)
        assert found is not None
        draft = Draft(
            village_id=found.id, village_name=found.name, consent_version=CONSENT_VERSION,
            consent_at=desk.clock.now().isoformat(), name="李小河", declarant="self", phone=phone,
            id_answered=True, household=3, risks=("disaster", "housing"), risks_done=True,
            description="房子被洪水冲坏了", description_done=True, photos_done=True,
        ).with_(**answers)  # fmt: skip
        declaration = await submit(uow, desk.clock, desk.rules, actor, draft)
        await uow.commit()
    return declaration


async def test_each_person_lists_the_cases_of_their_scope_only(desk: Desk) -> None:
    own = await desk.declare(village="QS01", phone="+8613900000001", address="9001")
    other_village = await desk.declare(village="QS02", phone="+8613900000002", address="9002")
    third_village = await desk.declare(village="QS03", phone="+8613900000003", address="9003")
    other_county = await desk.declare(village="BS01", phone="+8613900000004", address="9004")

    seen = {}
    for who in (ZHANG, LI, ZHAO, WANG, LIU, CHEN, ZHOU):
        await desk.sign_in(who)
        page = await page_of(desk, "/console/cases")
        seen[who] = set(listed(page))
    assert seen[ZHANG] == {own.receipt}  # a cadre: their village
    assert seen[LI] == {own.receipt, other_village.receipt}  # a cadre of two villages
    assert seen[ZHAO] == {third_village.receipt}
    assert seen[WANG] == {own.receipt, other_village.receipt, third_village.receipt}  # the township
    assert seen[LIU] == seen[CHEN] == {other_county.receipt}  # the other county's
    assert seen[ZHOU] == {own.receipt, other_village.receipt, third_village.receipt}  # the county's

    # One case: the same 404 for what is outside the scope as for what does not exist.
    for who, receipt in (
        (LIU, own.receipt),
        (CHEN, own.receipt),
        (ZHAO, own.receipt),
        (ZHOU, other_county.receipt),
    ):
        await desk.sign_in(who)
        assert (await get(desk, f"/console/cases/{receipt}"))[0] == 404
        assert (await get(desk, f"/console/cases/{receipt}/files/1"))[0] == 404
        refused = await post(desk, f"/console/cases/{receipt}", {"do": "ack"})
        assert refused.status == 404
    missing_status, missing = await get(desk, "/console/cases/20991231999999")
    assert missing_status == 404 and "不在您的工作范围内" in missing
    assert await status_of(desk, own.receipt) is DeclarationStatus.SUBMITTED


async def test_filters_search_and_sorting(desk: Desk) -> None:
    first = await desk.declare(village="QS01", phone="+8613900000001", address="9001")
    desk.clock.advance(days=3)
    second = await declare_with(desk, "QS02", "+8613900000002", "9002")
    desk.clock.advance(days=3)
    third = await desk.declare(village="QS01", phone="+8613900000003", address="9003")
    await desk.sign_in(WANG)

    async def receipts(query: str) -> list[str]:
        page = await page_of(desk, "/console/cases" + query)
        return listed(page)

    assert await receipts("") == [third.receipt, second.receipt, first.receipt]  # the newest first
    assert await receipts("?sort=date&way=asc") == [first.receipt, second.receipt, third.receipt]
    assert await receipts("?village=QS02") == [second.receipt]
    assert await receipts("?risk=disaster") == [second.receipt]
    assert await receipts("?risk=housing") == [second.receipt]  # any of its risk types
    assert await receipts(f"?q={second.receipt}") == [second.receipt]
    assert await receipts(f"?q={second.receipt[:12]}") == [second.receipt]  # its first digits
    assert await receipts("?q=李小") == [second.receipt]  # part of the name
    assert await receipts("?q=王大山&sort=date&way=asc") == [first.receipt, third.receipt]
    assert await receipts("?since=2099-01-01") == []
    assert set(await receipts(f"?until={desk.clock.now().date().isoformat()}")) == {
        first.receipt, second.receipt, third.receipt,
    }  # fmt: skip
    assert await receipts("?came_by=web") == []  # every declarant here has a chat
    assert await receipts("?filed=daibao") == []

    # Staff do not acknowledge a case that went to the village's cadres: told so, nothing changes.
    assert (await post(desk, f"/console/cases/{first.receipt}", {"do": "ack"})).status == 303
    page = await page_of(desk, f"/console/cases/{first.receipt}")
    assert "box err" in page and await status_of(desk, first.receipt) is DeclarationStatus.SUBMITTED
    await desk.sign_in(ZHANG)
    assert (await post(desk, f"/console/cases/{first.receipt}", {"do": "ack"})).status == 303
    await desk.sign_in(WANG)
    assert await receipts("?state=acknowledged") == [first.receipt]
    assert await receipts("?state=submitted&sort=date&way=asc") == [second.receipt, third.receipt]
    assert (await receipts("?sort=state&way=asc"))[0] == first.receipt  # "acknowledged" < "submitted"
    by_village = await receipts("?sort=village&way=asc")
    assert await receipts("?sort=village&way=desc") == by_village[::-1]
    assert second.receipt in (by_village[0], by_village[-1])  # the one case of 王家村 apart
    by_due = select(DeclarationRow.receipt).join(TaskRow, TaskRow.declaration_id == DeclarationRow.id)
    async with desk.uow() as uow:
        due = list(await uow.session.scalars(by_due.order_by(TaskRow.due_at, DeclarationRow.id)))
        late = set(await uow.session.scalars(by_due.where(TaskRow.due_at < desk.clock.now())))
    assert await receipts("?sort=due&way=asc") == due
    assert await receipts("?sort=due&way=desc") == due[::-1]
    assert set(await receipts("?overdue=1")) == late != {first.receipt, second.receipt, third.receipt}
    desk.clock.advance(days=30)
    await desk.sign_in(WANG)  # the session ended while the days passed
    assert set(await receipts("?overdue=1")) == {first.receipt, second.receipt, third.receipt}


async def test_unknown_and_unbounded_values_are_answered_politely(desk: Desk) -> None:
    only = await desk.declare(village="QS01")
    await desk.sign_in(WANG)
    for query in (
        "?page=99999999999",
        "?page=-3",
        "?sort=drop%20table%20declarations&way=sideways",
        "?state=deleted&risk=%27%3B--&village=%3Cscript%3E&came_by=fax&filed=99999999999999999",
        "?since=2026-13-45&until=yesterday",
        "?q=" + "很" * 500,
        "?q=%25%5F%00",
        "?overdue=maybe&lang=klingon",
    ):
        page = await page_of(desk, "/console/cases" + query)
        assert "<script>" not in page
    page = await page_of(desk, "/console/cases?page=99999999999")
    assert listed(page) == [only.receipt]  # past the last page: the last page
    for path in (
        "/console/cases/12ab",
        "/console/cases/" + "9" * 30,
        f"/console/cases/{only.receipt}/files/x",
    ):
        assert (await get(desk, path))[0] == 404


async def test_acknowledging_on_the_web_tells_the_household_as_the_chat_does(desk: Desk) -> None:
    on_web = await desk.declare(village="QS01", phone="+8613900000001", address="9001")
    in_chat = await desk.declare(village="QS01", phone="+8613900000002", address="9002")
    await desk.sign_in(ZHANG)
    page = await page_of(desk, f"/console/cases/{on_web.receipt}")
    assert "签收" in page and "王大山" in page and "老伴住院" in page

    done = await post(desk, f"/console/cases/{on_web.receipt}", {"do": "ack"})
    assert done.status == 303 and done.headers["Location"] == f"/console/cases/{on_web.receipt}"
    page = await page_of(desk, done.headers["Location"])
    assert 'class="flash"' in page
    assert '<span class="pill">网页</span>' in page  # the history says it was done on the web
    assert 'class="flash"' not in (await get(desk, f"/console/cases/{on_web.receipt}"))[1]  # said once
    async with desk.uow() as uow:
        actor = await actor_for(uow, desk.clock, Channel.TELEGRAM, ZHANG)
        task = await uow.tasks.for_declaration(in_chat.id)
        assert task is not None
        await acknowledge(uow, desk.clock, desk.rules, actor, task.id)
        await uow.commit()

    web_told, chat_told = (await outbox_to(desk, "9001"))[-1], (await outbox_to(desk, "9002"))[-1]
    assert web_told["template"] == chat_told["template"] == "farmer.acknowledged"
    assert web_told["params"] == {**chat_told["params"], "receipt": on_web.receipt}
    assert web_told["params"]["name"] == "张伟"
    events = await rows(
        desk, "SELECT data FROM case_events WHERE declaration_id = :d AND kind = 'acknowledge'", d=on_web.id
    )
    data = events[0][0] if isinstance(events[0][0], dict) else json.loads(events[0][0])
    assert data.get("via") == "web"
    chat_events = await rows(
        desk, "SELECT data FROM case_events WHERE declaration_id = :d AND kind = 'acknowledge'", d=in_chat.id
    )
    chat_data = chat_events[0][0] if isinstance(chat_events[0][0], dict) else json.loads(chat_events[0][0])
    assert "via" not in chat_data


async def test_a_forged_post_without_the_csrf_token_is_refused(desk: Desk) -> None:
    declaration = await desk.declare(village="QS01")
    await desk.sign_in(ZHANG)
    forged = await desk.client.post(f"/console/cases/{declaration.receipt}", data={"do": "ack"})
    assert forged.status == 403
    wrong = await desk.client.post(
        f"/console/cases/{declaration.receipt}", data={"do": "ack", "csrf": "0" * 32}, allow_redirects=False
    )
    assert wrong.status == 403
    assert await status_of(desk, declaration.receipt) is DeclarationStatus.SUBMITTED


async def test_the_steps_of_a_case_on_the_web(desk: Desk) -> None:
    declaration = await desk.declare(village="QS01", address="9001")
    path = f"/console/cases/{declaration.receipt}"
    await desk.sign_in(ZHANG)
    assert (await post(desk, path, {"do": "ack"})).status == 303
    page = await page_of(desk, path)
    assert 'name="notes"' in page and 'name="colleague"' in page and "李娜" in page  # visit, hand over

    async with desk.uow() as uow:
        li = await uow.persons.by_address(Channel.TELEGRAM, LI)
    assert li is not None
    assert (await post(desk, path, {"do": "hand", "colleague": str(li.id)})).status == 303
    assert (await outbox_to(desk, LI))[-1]["template"] == "case.handed_to_you"
    page = await page_of(desk, path)
    assert 'name="notes"' not in page  # no longer theirs

    await desk.sign_in(LI)
    bad = await post(desk, path, {"do": "visit", "date": "明年", "notes": "看过了"})
    assert bad.status == 303
    page = await page_of(desk, path)
    assert "box err" in page and await status_of(desk, declaration.receipt) is DeclarationStatus.ACKNOWLEDGED
    today = desk.clock.now().date().isoformat()
    assert (
        await post(desk, path, {"do": "visit", "date": today, "notes": "住院属实，花费较大"})
    ).status == 303
    assert await status_of(desk, declaration.receipt) is DeclarationStatus.VISITED
    assert (await outbox_to(desk, "9001"))[-1]["template"] == "farmer.visited"

    page = await page_of(desk, path)
    assert 'name="reason"' in page and 'value="unstable"' in page
    too_short = await post(desk, path, {"do": "reject", "reason": "否"})
    assert too_short.status == 303 and await status_of(desk, declaration.receipt) is DeclarationStatus.VISITED
    assert (await post(desk, path, {"do": "reject", "reason": "家庭年收入高于监测线"})).status == 303
    assert await status_of(desk, declaration.receipt) is DeclarationStatus.NOT_ELIGIBLE
    told = (await outbox_to(desk, "9001"))[-1]
    assert told["template"] == "farmer.verdict_not_eligible"
    assert told["params"]["reason"] == "家庭年收入高于监测线"
    page = await page_of(desk, path)
    assert "家庭年收入高于监测线" in page and "入户核实" in page  # the verdict and the history
    assert (await post(desk, path, {"do": "nonsense"})).status == 303


async def test_the_full_id_number_is_shown_to_township_staff_once_and_recorded(desk: Desk) -> None:
    sealed = desk.deps.protector.seal(ID_NUMBER)
    declaration = await declare_with(
        desk, "QS01", "+8613900000009", "9009", id_sealed=sealed, id_masked=validation.mask_id(ID_NUMBER)
    )
    path = f"/console/cases/{declaration.receipt}"
    for who in (ZHANG, ZHOU):  # a cadre, the county: masked, and no way to see more
        await desk.sign_in(who)
        page = await page_of(desk, path)
        assert "1101**********4514" in page and ID_NUMBER not in page
        assert "/reveal" not in page
        refused = await post(desk, path + "/reveal", {})
        assert refused.status == 403 and ID_NUMBER not in await refused.text()
    assert await rows(desk, "SELECT id FROM case_events WHERE kind = 'id_revealed'") == []

    await desk.sign_in(WANG)
    page = await page_of(desk, path)
    assert "/reveal" in page and ID_NUMBER not in page
    shown = await post(desk, path + "/reveal", {})
    assert shown.status == 200 and ID_NUMBER in await shown.text()
    async with desk.uow() as uow:
        wang = await uow.persons.by_address(Channel.TELEGRAM, WANG)
    assert wang is not None
    recorded = await rows(desk, "SELECT actor_id, at FROM case_events WHERE kind = 'id_revealed'")
    assert [r[0] for r in recorded] == [wang.id]
    page = await page_of(desk, path)
    assert ID_NUMBER not in page and "1101**********4514" in page  # once
    assert "查看了完整身份证号" in page and "王芳" in page  # in the history: who, when

    await desk.sign_in(CHEN)  # staff of another township: not even there
    assert (await post(desk, path + "/reveal", {})).status == 404


async def test_photos_and_voice_notes(desk: Desk) -> None:
    async with desk.uow() as uow:
        upload = await uow.uploads.add("image/png", b"\x89PNG-a-photo", desk.clock.now())
        await uow.commit()
    declaration = await declare_with(
        desk, "QS01", "+8613900000009", "9009", photos=(f"upload:{upload}", "AgACAgIAAxkBAAIBchat-photo")
    )
    path = f"/console/cases/{declaration.receipt}"
    await desk.sign_in(ZHANG)
    page = await page_of(desk, path)
    assert f'src="{path}/files/1"' in page
    assert f'src="{path}/files/2"' not in page and "无法显示" in page  # no Bot API in tests
    served = await desk.client.get(f"{path}/files/1")
    assert served.status == 200 and served.content_type == "image/png"
    assert await served.read() == b"\x89PNG-a-photo"
    assert (await desk.client.get(f"{path}/files/2")).status == 404
    assert (await desk.client.get(f"{path}/files/3")).status == 404

    fetched: list[str] = []

    async def telegram_file(file_id: str) -> bytes | None:
        fetched.append(file_id)
        return b"jpeg-bytes"

    desk.deps.telegram_file = telegram_file
    page = await page_of(desk, path)
    assert f'src="{path}/files/2"' in page
    served = await desk.client.get(f"{path}/files/2")
    assert (
        served.status == 200 and served.content_type == "image/jpeg" and await served.read() == b"jpeg-bytes"
    )
    assert fetched == ["AgACAgIAAxkBAAIBchat-photo"]

    english = await page_of(desk, f"{path}?lang=en")
    assert "Photos and voice notes" in english and "What was declared" in english and "Photo 2" in english

    await desk.sign_in(LIU)
    assert (await desk.client.get(f"{path}/files/1")).status == 404
