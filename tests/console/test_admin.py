"""The console's roster (upload, preview, apply), invites, flyers, exports and undelivered messages,
through the web app on the real database."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import FormData
from openpyxl import load_workbook
from sqlalchemy import text

from bot.console import admin_files, roster_upload
from bot.web import STORE
from domain import validation
from domain.actor import actor_for
from domain.intake import CONSENT_VERSION, Draft, submit
from domain.model import Channel, Role
from tests.console.conftest import CHEN, LIU, ROSTER, WANG, ZHANG, ZHOU, Desk

FONT = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
KEPT = re.compile(r'name="kept" value="([^"]+)"')
ID_NUMBER = "11010519491231002X"
QINGSHAN = [line for line in ROSTER.splitlines() if "青山镇" in line or line.startswith("county,")]
# 青山镇's sheet as its staff keep it, with changes: 张伟 renamed, 赵强 becomes staff, 孙丽 added
# with a new village.
CHANGED = "\n".join(
    [
        *[
            line.replace("张伟", "张炜").replace(
                ",QS03,陈家村,赵强,13800000005,cadre", ",,,赵强,13800000005,township"
            )
            for line in QINGSHAN
        ],
        "青山县,青山镇,QS04,新村,孙丽,13800000008,cadre",
    ]
)
BAD_LINE = "青山县,青山镇,QS01,李家村,错号,12345,cadre"


async def upload(desk: Desk, sheet: str | bytes, name: str = "roster.csv") -> tuple[int, str]:
    form = FormData()
    form.add_field("csrf", await desk.csrf("/console/roster"))
    data = sheet.encode("utf-8") if isinstance(sheet, str) else sheet
    form.add_field("sheet", data, filename=name, content_type="application/octet-stream")
    response = await desk.client.post("/console/roster/preview", data=form)
    return response.status, await response.text()


async def confirm(desk: Desk, kept: str) -> tuple[int, str]:
    token = await desk.csrf("/console/roster")
    response = await desk.client.post("/console/roster/apply", data={"csrf": token, "kept": kept})
    return response.status, await response.text()


async def person(desk: Desk, phone: str) -> tuple[str | None, Role] | None:
    async with desk.uow() as uow:
        found = await uow.persons.by_phone(validation.phone(phone))
    return (found.name, found.role) if found else None


async def test_an_upload_shows_the_changes_and_the_bad_line_and_writes_nothing(desk: Desk) -> None:
    await desk.sign_in(WANG)
    status, page = await upload(desk, CHANGED + "\n" + BAD_LINE + "\n")

    assert status == 422
    assert "张炜" in page and "孙丽" in page and "新村" in page  # renamed, added, a village created
    assert "乡镇工作人员" in page  # 赵强's new role
    bad = len(QINGSHAN) + 2  # the header, 青山镇's lines, 孙丽, then the bad one
    assert re.search(rf"<td>{bad}</td>\s*<td class=\"err\">", page)  # the bad line, by its number
    assert KEPT.search(page) is None  # nothing to confirm while a line is bad
    assert await person(desk, "13800000008") is None
    assert await person(desk, "13800000001") == ("张伟", Role.CADRE)


async def test_a_clean_upload_is_written_only_once_confirmed(desk: Desk) -> None:
    await desk.sign_in(WANG)
    status, page = await upload(desk, CHANGED)
    assert status == 200, page
    kept = KEPT.search(page)
    assert kept is not None
    assert await person(desk, "13800000008") is None  # the preview wrote nothing

    status, done = await confirm(desk, kept[1])

    assert status == 200 and "已写入" in done, done
    assert await person(desk, "13800000008") == ("孙丽", Role.CADRE)
    assert await person(desk, "13800000001") == ("张炜", Role.CADRE)
    assert await person(desk, "13800000005") == ("赵强", Role.TOWNSHIP)
    again = await upload(desk, CHANGED)
    assert again[0] == 200 and "没有要改的" in again[1]


async def test_an_xlsx_with_a_chinese_header_is_read(desk: Desk) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["县", "乡镇", "村代码", "村", "姓名", "手机", "角色"])
    sheet.append(["青山县", "青山镇", "QS01", "李家村", "孙丽", 13800000008, "村干部"])
    out = io.BytesIO()
    book.save(out)
    await desk.sign_in(WANG)
    status, page = await upload(desk, out.getvalue(), "名册.xlsx")
    assert status == 200 and "孙丽" in page and KEPT.search(page)


async def test_a_sheet_touching_another_township_is_refused_beside_the_line(desk: Desk) -> None:
    await desk.sign_in(WANG)
    sheet = "\n".join([*QINGSHAN, "白水县,白水乡,BS01,白水村,钱七,13800000010,cadre"])
    status, page = await upload(desk, sheet)
    assert status == 422 and KEPT.search(page) is None
    line = len(QINGSHAN) + 1
    assert re.search(rf"<td>{line}</td>\s*<td class=\"err\">这一行属于“白水乡”", page), page

    status, page = await upload(desk, "\n".join([*QINGSHAN, "青山县,青山镇,,,刘洋,13800000004,township"]))
    assert status == 422 and "其他乡镇或县级人员" in page  # 白水乡's cadre, not to be taken over
    assert await person(desk, "13800000010") is None
    assert await person(desk, "13800000004") == ("刘洋", Role.CADRE)


async def test_a_forged_altered_or_borrowed_kept_upload_is_refused(desk: Desk) -> None:
    await desk.sign_in(WANG)
    _, page = await upload(desk, CHANGED)
    kept = KEPT.search(page)
    assert kept is not None
    body, mac = kept[1].split(".")

    altered = body[:-6] + ("AAAAAA" if not body.endswith("AAAAAA") else "BBBBBB") + "." + mac
    assert (await confirm(desk, altered))[0] == 400
    assert (await confirm(desk, body + "." + "A" * len(mac)))[0] == 400
    assert (await confirm(desk, "nonsense"))[0] == 400
    await desk.sign_in(WANG)
    assert (await confirm(desk, kept[1]))[0] == 400  # another session's

    _, page = await upload(desk, CHANGED)
    kept = KEPT.search(page)
    assert kept is not None
    desk.clock.advance(minutes=20)
    assert (await desk.client.get("/console/roster")).status == 200  # the session stays alive
    desk.clock.advance(minutes=15)
    status, text = await confirm(desk, kept[1])
    assert status == 400 and "30 分钟" in text  # kept longer than half an hour
    assert await person(desk, "13800000008") is None


async def test_a_post_without_the_csrf_token_is_refused(desk: Desk) -> None:
    await desk.sign_in(WANG)
    form = FormData()
    form.add_field("sheet", CHANGED.encode(), filename="roster.csv")
    response = await desk.client.post("/console/roster/preview", data=form)
    assert response.status == 403
    refused = await desk.client.post("/console/roster/invites", data={"person": "1"})
    assert refused.status == 403


async def test_the_roster_is_the_township_staff_s_only(desk: Desk) -> None:
    for address in (ZHANG, ZHOU):
        await desk.sign_in(address)
        assert (await desk.client.get("/console/roster")).status == 404
        assert (await desk.client.get("/console/roster/invites")).status == 404
    await desk.sign_in(ZHANG)
    assert (await desk.client.get("/console/files")).status == 404


async def test_invite_links_and_their_qr_codes(desk: Desk) -> None:
    desk.deps.bot_username = lambda: "fanghui_test_bot"
    await desk.sign_in(WANG)
    listed = await desk.client.get("/console/roster/invites")
    page = await listed.text()
    assert listed.status == 200 and "张伟" in page and "王芳" in page and "刘洋" not in page
    zhang = await person_id(desk, "13800000001")
    liu = await person_id(desk, "13800000004")  # 白水乡's: ignored

    token = await desk.csrf("/console/roster/invites")
    made = await desk.client.post(
        "/console/roster/invites", data=[("csrf", token), ("person", str(zhang)), ("person", str(liu))]
    )

    page = await made.text()
    assert made.status == 200
    links = re.findall(r"https://t\.me/fanghui_test_bot\?start=i_([A-Za-z0-9_-]+)", page)
    assert len(set(links)) == 1
    image = await desk.client.get(f"/console/roster/invites/{links[0]}.png")
    assert image.status == 200 and image.content_type == "image/png"
    assert (await image.read()).startswith(b"\x89PNG")
    assert (await desk.client.get("/console/roster/invites/notatoken.png")).status == 404

    everyone = await desk.client.post("/console/roster/invites", data={"csrf": token, "all": "1"})
    assert "都已绑定" in await everyone.text()  # everyone of the desk's roster has a chat
    assert (
        await desk.client.post("/console/roster/invites", data={"csrf": token, "person": "x"})
    ).status == 400

    await desk.sign_in(CHEN)  # 白水乡's staff: not their invite
    assert (await desk.client.get(f"/console/roster/invites/{links[0]}.png")).status == 404


async def person_id(desk: Desk, phone: str) -> int:
    async with desk.uow() as uow:
        found = await uow.persons.by_phone(validation.phone(phone))
    assert found is not None
    return found.id


async def test_a_flyer_only_for_a_village_in_scope(desk: Desk) -> None:
    desk.deps.bot_username = lambda: "fanghui_test_bot"
    desk.deps.extra[admin_files.FLYER_FONT] = FONT
    await desk.sign_in(WANG)
    page = await (await desk.client.get("/console/files")).text()
    assert "李家村" in page and "白水村" not in page

    pdf = await desk.client.get("/console/files/flyers/QS01.pdf")
    assert pdf.status == 200 and pdf.content_type == "application/pdf"
    assert (await pdf.read()).startswith(b"%PDF")
    english = await desk.client.get("/console/files/flyers/QS01.pdf?lang=en")
    assert english.status == 200 and (await english.read()).startswith(b"%PDF")

    assert (await desk.client.get("/console/files/flyers/BS01.pdf")).status == 404  # 白水村: not theirs
    assert (await desk.client.get("/console/files/flyers/QS99.pdf")).status == 404  # no such village
    assert (await desk.client.get("/console/files/flyers/QS01.pdf?lang=fr")).status == 400
    assert (await desk.client.get("/console/files/flyers/QS01.pdf?until=1999-01-01")).status == 400
    assert (await desk.client.get("/console/files/flyers/QS01.pdf?until=9999-01-01")).status == 400


async def test_the_zip_holds_one_flyer_per_village_in_scope(desk: Desk) -> None:
    desk.deps.bot_username = lambda: "fanghui_test_bot"
    desk.deps.extra[admin_files.FLYER_FONT] = FONT
    for address in (WANG, ZHOU):  # 青山镇's staff, 青山县 (whose one township is 青山镇)
        await desk.sign_in(address)
        response = await desk.client.get("/console/files/flyers.zip")
        assert response.status == 200 and response.content_type == "application/zip"
        with zipfile.ZipFile(io.BytesIO(await response.read())) as archive:
            assert archive.namelist() == ["QS01.pdf", "QS02.pdf", "QS03.pdf"]
            assert all(archive.read(name).startswith(b"%PDF") for name in archive.namelist())
    await desk.sign_in(CHEN)
    response = await desk.client.get("/console/files/flyers.zip")
    with zipfile.ZipFile(io.BytesIO(await response.read())) as archive:
        assert archive.namelist() == ["BS01.pdf"]


async def declare_with_id(desk: Desk, village: str = "QS01") -> None:
    """A household's declaration with its ID number, as the chat's confirm submits it."""
    async with desk.uow() as uow:
        actor = await actor_for(uow, desk.clock, Channel.TELEGRAM, "9001")
        found = await uow.geography.village_by_code(village)
        assert found is not None
        draft = Draft(
            village_id=found.id, village_name=found.name, consent_version=CONSENT_VERSION,
            consent_at=desk.clock.now().isoformat(), name="王大山", declarant="self", phone="+8613912345678",
            id_answered=True, id_sealed=desk.deps.protector.seal(ID_NUMBER),
            id_masked=validation.mask_id(ID_NUMBER), household=4, risks=("illness",), risks_done=True,
            followups={"illness.cost": 5000}, description="老伴住院", description_done=True, photos_done=True,
        )  # fmt: skip
        await submit(uow, desk.clock, desk.rules, actor, draft)
        await uow.commit()


def cells(data: bytes) -> list[str]:
    sheet = load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
    return [str(value) for row in sheet.iter_rows(values_only=True) for value in row if value is not None]


async def test_the_cases_export_has_full_ids_for_township_staff_and_masked_for_the_county(desk: Desk) -> None:
    await declare_with_id(desk)
    today = desk.clock.now().date().isoformat()

    await desk.sign_in(WANG)
    staff = await desk.client.get(f"/console/files/cases.xlsx?from={today}&to={today}")
    assert staff.status == 200 and "spreadsheetml" in staff.content_type
    found = cells(await staff.read())
    assert ID_NUMBER in found and "王大山" in found

    await desk.sign_in(ZHOU)
    county = await desk.client.get(f"/console/files/cases.xlsx?from={today}")
    found = cells(await county.read())
    assert ID_NUMBER not in found and validation.mask_id(ID_NUMBER) in found and "王大山" in found

    await desk.sign_in(CHEN)  # 白水乡: none of 青山镇's
    assert "王大山" not in cells(await (await desk.client.get("/console/files/cases.xlsx")).read())
    assert (await desk.client.get("/console/files/cases.xlsx?from=2026-02-30")).status == 400
    assert (await desk.client.get("/console/files/cases.xlsx?to=2026-01-01")).status == 400
    await desk.sign_in(ZHANG)
    assert (await desk.client.get("/console/files/cases.xlsx")).status == 404


async def test_the_ledger_and_reports_of_a_township_in_scope_only(desk: Desk) -> None:
    async with desk.uow() as uow:
        townships = {t.name: t.id for t in await uow.geography.townships()}
    await desk.sign_in(ZHOU)
    ledger = await desk.client.get(f"/console/files/ledger.xlsx?township={townships['青山镇']}")
    assert ledger.status == 200 and (await ledger.read()).startswith(b"PK")
    assert (await desk.client.get(f"/console/files/ledger.xlsx?township={townships['白水乡']}")).status == 404
    assert (await desk.client.get("/console/files/ledger.xlsx?township=99999999999")).status == 404
    assert (
        await desk.client.get(f"/console/files/reports.xlsx?township={townships['青山镇']}")
    ).status == 404


async def test_failed_messages_are_listed_for_the_person_s_townships(desk: Desk) -> None:
    await desk.declare()  # 张伟 and 李娜 are told of the new case
    zhang = await person_id(desk, "13800000001")
    async with desk.uow() as uow:
        ids = (await uow.session.execute(text(f"SELECT id FROM outbox WHERE person_id = {zhang}"))).scalars()
        message_id = next(iter(ids))
    await desk.client.app[STORE].failed(message_id, 5, "forbidden: bot was blocked by the user")

    for address in (WANG, ZHOU):
        await desk.sign_in(address)
        page = await (await desk.client.get("/console/files/failed")).text()
        assert "张伟" in page and "青山镇" in page
    await desk.sign_in(CHEN)
    page = await (await desk.client.get("/console/files/failed")).text()
    assert "张伟" not in page and "没有发送失败的消息" in page
    await desk.sign_in(LIU)  # a cadre
    assert (await desk.client.get("/console/files/failed")).status == 404


async def test_the_pages_read_in_english(desk: Desk) -> None:
    await desk.sign_in(WANG)
    for path, words in (
        ("/console/roster?lang=en", "Check (writes nothing)"),
        ("/console/roster/invites?lang=en", "Make links for those ticked"),
        ("/console/files?lang=en", "Flyers and exports"),
    ):
        response = await desk.client.get(path)
        assert response.status == 200 and words in await response.text()


def test_an_upload_is_bounded_in_size_lines_and_cells() -> None:
    def refused(data: bytes) -> str:
        try:
            roster_upload.read(data)
        except roster_upload.Refused as exc:
            return exc.key
        raise AssertionError("read")

    header = "township,village_code,village,name,phone,role\n"
    assert refused(b"") == "console.roster_no_file"
    assert refused(b"x" * (roster_upload.MAX_BYTES + 1)) == "console.roster_too_big"
    many = header + "青山镇,,,王芳,13800000003,township\n" * roster_upload.MAX_LINES
    assert refused(many.encode()) == "console.roster_too_long"
    assert (
        refused((header + "青山镇,,," + "长" * 201 + ",1,township\n").encode())
        == "console.roster_cell_too_long"
    )
    assert refused(header.encode("utf-16")) == "console.roster_not_unicode"
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/sharedStrings.xml", b"0" * (roster_upload.MAX_UNPACKED + 1))
    assert len(bomb.getvalue()) < roster_upload.MAX_BYTES
    assert refused(bomb.getvalue()) == "console.roster_too_big"
    assert refused(b"PK\x03\x04 not a zip") == "console.roster_unreadable"
    assert roster_upload.read((header + "\n\n").encode()) == [(1, header.strip().split(","))]


def test_a_kept_upload_is_this_session_s_and_person_s_only() -> None:
    now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    lines: roster_upload.Lines = [(1, ["township", "name"]), (2, ["青山镇", "王芳"])]
    kept = roster_upload.keep(b"secret", "session", 7, lines, "shown", now)
    assert roster_upload.unkeep(b"secret", "session", 7, kept, now) == (lines, "shown")
    assert roster_upload.unkeep(b"secret", "other session", 7, kept, now) is None
    assert roster_upload.unkeep(b"secret", "session", 8, kept, now) is None
    assert roster_upload.unkeep(b"other secret", "session", 7, kept, now) is None
    assert roster_upload.unkeep(b"secret", "session", 7, kept, now + timedelta(minutes=31)) is None
