"""The landing page, the web form, the status page and 代报 links, through aiohttp's test client."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import FormData
from sqlalchemy import func, select

from bot.webform.safety import MAX_BODY, MAX_PHOTO
from domain.model import Channel, Role
from qr.cadre_links import sign_cadre_link
from storage.tables import AttachmentRow, DeclarationRow, OutboxRow, QrScanRow, UploadRow
from tests.web.conftest import SECRET, Site, answers

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 2000
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


async def count(site: Site, model: Any) -> int:
    async with site.uow() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(model)) or 0)


async def declarations(site: Site) -> list[DeclarationRow]:
    async with site.uow() as uow:
        found = list(await uow.session.scalars(select(DeclarationRow).order_by(DeclarationRow.id)))
        uow.session.expunge_all()  # keep them readable after the unit of work rolls back
        return found


async def form_path(site: Site, code: str = "QS01") -> tuple[str, str]:
    path = f"/q/{site.payload(code)}/form"
    return path, await site.csrf(path)


def assert_safe_headers(response: Any) -> None:
    for name, expected in HEADERS.items():
        assert response.headers[name] == expected
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")


# --- the landing page ---------------------------------------------------------------------------


async def test_landing_names_the_village_offers_telegram_and_the_form_and_counts_the_scan(site: Site) -> None:
    payload = site.payload(batch="B2611")
    response = await site.client.get(f"/q/{payload}")
    body = await response.text()
    assert response.status == 200
    assert "李家村" in body and "青山镇" in body
    assert f'href="https://t.me/fanghui_test_bot?start={payload}"' in body
    assert "在 Telegram 中打开" in body and "没有 Telegram？在网页上填写" in body
    assert f'href="/q/{payload}/form"' in body and "12317" in body
    assert "<script" not in body and "http://" not in body  # no script, no external asset
    assert len(body.encode()) < 6_000
    assert_safe_headers(response)
    await site.client.get(f"/q/{payload}")
    assert (await site.client.head(f"/q/{payload}")).status == 200  # a link preview: not a scan
    async with site.uow() as uow:
        rows = list(await uow.session.scalars(select(QrScanRow)))
        uow.session.expunge_all()
    assert [(r.village_code, r.batch, r.channel, r.count) for r in rows] == [("QS01", "B2611", "web", 2)]


async def test_landing_refuses_forged_malformed_expired_and_unknown_codes_politely(site: Site) -> None:
    good = site.payload()
    forged = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    expired = site.payload(valid_until=site.clock.now().date() - timedelta(days=1))
    cases = {
        forged: (404, "无法识别"),
        "nonsense": (404, "无法识别"),
        "v<script>": (404, "无法识别"),
        expired: (410, "已过期"),
        site.payload("ZZ99"): (404, "暂未开通"),
    }
    for payload, (status, phrase) in cases.items():
        for path in (f"/q/{payload}", f"/q/{payload}/form"):
            response = await site.client.get(path)
            body = await response.text()
            assert response.status == status, (path, body)
            assert phrase in body and "12317" in body and "Traceback" not in body
            assert "<script>" not in body
            assert_safe_headers(response)
    assert await count(site, QrScanRow) == 0


# --- the form -----------------------------------------------------------------------------------


async def test_the_form_redirects_to_its_receipt_page_so_a_reload_never_posts_again(site: Site) -> None:
    path, token = await form_path(site)
    form = FormData()
    for name, value in {**answers(), "csrf": token}.items():
        for one in value if isinstance(value, list) else [value]:
            form.add_field(name, str(one))
    posted = await site.client.post(path, data=form, allow_redirects=False)
    assert posted.status == 303
    where = posted.headers["Location"]
    assert where.startswith("/r/")
    [row] = await declarations(site)
    for _ in range(2):  # a reload shows the same receipt and files nothing new
        page = await site.client.get(where)
        body = await page.text()
        assert page.status == 200 and row.receipt in body and "李家村" in body
        assert "王大山" not in body and "13912345678" not in body  # the number and the village only
        assert_safe_headers(page)
    assert len(await declarations(site)) == 1
    forged = where[:-1] + ("0" if not where.endswith("0") else "1")
    for wrong in (forged, f"/r/{row.receipt}", "/r/nonsense"):
        refused = await site.client.get(wrong)
        assert refused.status == 404 and row.receipt not in await refused.text()


async def test_a_web_declaration_takes_the_chat_route_to_the_village(site: Site) -> None:
    async with site.uow() as uow:  # the township's staff have opened the bot; nobody else has
        township_staff = await uow.persons.by_phone("+8613800000003")
        assert township_staff is not None
        await uow.persons.bind(township_staff.id, Channel.TELEGRAM, "3001", site.clock.now())
        await uow.commit()
    path, token = await form_path(site)
    response = await site.client.get(path)
    assert "知情同意" in await response.text()  # the chat's own consent text and version
    assert_safe_headers(response)
    status, body = await site.post(path, {**answers(), "csrf": token}, photos=[JPEG, JPEG])
    assert status == 200, body
    [row] = await declarations(site)
    assert row.receipt in body and "回执编号" in body
    assert row.head_name == "王大山" and row.phone == "+8613912345678" and row.consent_version == "2026-11"
    assert row.risk_types == ["illness"] and row.followups == {"illness.cost": 30000}
    assert row.via == "web"  # the console's 渠道
    async with site.uow() as uow:
        declarant = await uow.persons.get(row.declared_by)
        task = await uow.tasks.for_declaration(row.id)
        events = [e.kind for e in await uow.events.for_declaration(row.id)]
        attachments = list(await uow.session.scalars(select(AttachmentRow)))
        outbox = list(await uow.session.scalars(select(OutboxRow)))
        uow.session.expunge_all()
    assert declarant is not None and declarant.role is Role.FARMER
    assert task is not None and events == ["submitted", "assigned"]
    assert [a.ref.startswith("upload:") for a in attachments] == [True, True]
    assert await count(site, UploadRow) == 2
    # No cadre of QS01 has bound a chat in this roster: the township staff get the case, as in chat;
    # the declarant, who has no chat, gets nothing queued (the page shows the receipt).
    templates = [(o.person_id, o.payload["template"]) for o in outbox]
    staff = {p for p, _ in templates}
    assert staff == {township_staff.id}
    per_recipient = ["case.new_township", "case.attachment", "case.attachment"]
    assert [t for _, t in templates] == per_recipient * len(staff)
    # The two photos go with the case, as files the sender uploads from the stored bytes.
    media = [o.payload["media"] for o in outbox if o.payload.get("media")]
    assert [m["file_id"] for m in media] == [a.ref for a in attachments] * len(staff)
    assert row.declared_by not in staff


async def test_wrong_answers_are_explained_beside_each_field_and_kept(site: Site) -> None:
    path, token = await form_path(site)
    fields = answers(consent="", phone="12345", household="40", risks=[], fu_illness_cost="")
    status, body = await site.post(path, {**fields, "csrf": token})
    assert status == 400
    assert 'id="err-consent"' in body and 'id="err-phone"' in body
    assert 'id="err-household"' in body and 'id="err-risks"' in body
    assert "电话号码格式不对" in body  # the chat's validation text
    assert 'value="王大山"' in body and "老伴住院做手术" in body and 'value="12345"' in body
    assert await declarations(site) == []


async def test_a_chosen_risk_needs_its_follow_up_and_a_bad_id_number_is_refused(site: Site) -> None:
    path, token = await form_path(site)
    fields = answers(risks=["illness", "disaster"], fu_disaster_when="明年", id_number="110105194912310021")
    status, body = await site.post(path, {**fields, "csrf": token})
    assert status == 400
    assert 'id="err-fu_disaster_when"' in body and 'id="err-fu_disaster_damage"' in body
    assert 'id="err-id_number"' in body and 'id="err-fu_illness_cost"' not in body
    assert await declarations(site) == []


async def test_a_form_without_its_csrf_token_is_refused_politely(site: Site) -> None:
    path, token = await form_path(site)
    status, body = await site.post(path, answers())
    assert status == 403 and "页面已过期" in body and "12317" in body
    status, _ = await site.post(path, {**answers(), "csrf": token + "x"})
    assert status == 403
    # The token of another form (another village) does not fit this one.
    _, other = await form_path(site, "QS02")
    status, _ = await site.post(path, {**answers(), "csrf": other})
    assert status == 403
    site.client.session.cookie_jar.clear()  # a token without its cookie
    status, _ = await site.post(path, {**answers(), "csrf": token})
    assert status == 403
    assert await declarations(site) == []


async def test_an_oversized_field_is_refused_and_nothing_stored(site: Site) -> None:
    path, token = await form_path(site)
    for name, raw in (("description", "很长" * 3000), ("name", "王" * 5000), ("fu_illness_cost", "9" * 9000)):
        status, body = await site.post(path, {**answers(**{name: raw}), "csrf": token})
        assert status == 400, name
        assert f'id="err-{name}"' in body
    assert await declarations(site) == [] and await count(site, UploadRow) == 0


async def test_an_oversized_upload_is_refused_and_nothing_stored(site: Site) -> None:
    path, token = await form_path(site)
    big = JPEG + b"\x00" * MAX_PHOTO
    status, body = await site.post(path, {**answers(), "csrf": token}, photos=[JPEG, big])
    assert status == 400 and 'id="err-photos"' in body and "3MB" in body
    status, body = await site.post(path, {**answers(), "csrf": token}, photos=[b"MZ\x90\x00 not a photo"])
    assert status == 400 and "只能上传照片" in body
    # A body larger than any honest form is refused before it is read.
    response = await site.client.post(
        path, data=b"x" * (MAX_BODY + 1), headers={"Content-Type": "multipart/form-data; boundary=x"}
    )
    assert response.status == 413 and "内容太大" in await response.text()
    assert await declarations(site) == [] and await count(site, UploadRow) == 0


async def test_a_flood_from_one_address_meets_a_polite_429(site: Site) -> None:
    path, token = await form_path(site)
    for n in range(5):
        status, body = await site.post(path, {**answers(phone=f"1391234560{n}"), "csrf": token})
        assert status == 200, body
    status, body = await site.post(path, {**answers(phone="13912345699"), "csrf": token})
    assert status == 429 and "太频繁" in body and "12317" in body
    assert len(await declarations(site)) == 5
    site.clock.advance(hours=1, minutes=1)
    status, _ = await site.post(path, {**answers(phone="13912345699"), "csrf": token})
    assert status == 200


async def test_a_phone_number_may_declare_three_times_a_day(site: Site) -> None:
    for _ in range(3):
        assert await site.public.counters.allow(per_phone="+8613912345678")
    path, token = await form_path(site)
    status, body = await site.post(path, {**answers(), "csrf": token})
    assert status == 429 and "太频繁" in body
    assert await declarations(site) == []


async def test_a_repeat_declaration_of_the_same_household_is_not_stored_twice(site: Site) -> None:
    path, token = await form_path(site)
    status, _ = await site.post(path, {**answers(id_number="11010519491231002X"), "csrf": token})
    assert status == 200
    # The same phone number, from the other village's code: still the same household.
    other, other_token = await form_path(site, "QS02")
    status, body = await site.post(other, {**answers(name="王小山"), "csrf": other_token})
    assert status == 409 and "已有一份正在办理的申报" in body
    [row] = await declarations(site)
    assert row.receipt not in body  # a phone number alone never reveals a receipt
    # The same ID number with another phone number.
    status, _ = await site.post(
        path, {**answers(phone="13700000000", id_number="11010519491231002x"), "csrf": token}
    )
    assert status == 409
    assert len(await declarations(site)) == 1


# --- the status page ------------------------------------------------------------------------------


async def test_the_status_page_shows_a_declaration_only_for_its_receipt_and_phone(site: Site) -> None:
    path, token = await form_path(site)
    await site.post(path, {**answers(id_number="11010519491231002X"), "csrf": token})
    [row] = await declarations(site)
    status_token = await site.csrf("/status")
    response = await site.client.post(
        "/status", data={"receipt": row.receipt, "phone": "139 1234 5678", "csrf": status_token}
    )
    body = await response.text()
    assert response.status == 200 and "已提交，等待村干部签收" in body and row.receipt in body
    assert "李家村" in body and "1101**********002X" in body and "11010519491231002X" not in body
    assert_safe_headers(response)
    wrong = [
        {"receipt": row.receipt, "phone": "13900000000"},
        {"receipt": str(int(row.receipt) + 1), "phone": "13912345678"},
        {"receipt": row.receipt, "phone": "not a phone"},
        {"receipt": "", "phone": ""},
    ]
    for attempt in wrong:
        response = await site.client.post("/status", data={**attempt, "csrf": status_token})
        body = await response.text()
        assert response.status == 200 and "没有找到" in body
        assert "李家村" not in body and "王大山" not in body and "1101" not in body
    response = await site.client.post("/status", data={"receipt": row.receipt, "phone": "13912345678"})
    assert response.status == 403


# --- 代报 links ----------------------------------------------------------------------------------


async def cadre(site: Site, phone: str) -> int:
    async with site.uow() as uow:
        person = await uow.persons.by_phone(phone)
    assert person is not None
    return person.id


async def test_a_cadre_link_files_for_their_own_village_only_and_expires(site: Site) -> None:
    zhang = await cadre(site, "+8613800000001")  # 张伟: QS01 only
    token = sign_cadre_link(SECRET, zhang, "QS01", site.clock.now())
    path = f"/d/{token}/form"
    response = await site.client.get(path)
    body = await response.text()
    assert response.status == 200 and "代报" in body and "李家村" in body
    assert 'name="declarant"' not in body  # the cadre files; nobody is asked who declares
    csrf = await site.csrf(path)
    fields = {k: v for k, v in answers().items() if k not in ("declarant", "relation")}
    status, body = await site.post(path, {**fields, "csrf": csrf})
    assert status == 200, body
    [row] = await declarations(site)
    assert row.filed_by_cadre == zhang and row.declared_by == zhang
    assert row.via == "web"  # the cadre's 代报 on the form, whether or not he has a chat
    # Not one of his villages; a forged token; an expired one.
    status = (
        await site.client.get(f"/d/{sign_cadre_link(SECRET, zhang, 'QS02', site.clock.now())}/form")
    ).status
    assert status == 403
    assert (await site.client.get(f"/d/{token[:-2]}xx/form")).status == 404
    farmer_like = sign_cadre_link(SECRET, 999_999, "QS01", site.clock.now())
    assert (await site.client.get(f"/d/{farmer_like}/form")).status == 403
    site.clock.advance(hours=2, minutes=1)
    response = await site.client.get(path)
    assert response.status == 410 and "已过期" in await response.text()
    status, _ = await site.post(path, {**fields, "phone": "13700000001", "csrf": csrf})
    assert status == 410
    assert len(await declarations(site)) == 1
