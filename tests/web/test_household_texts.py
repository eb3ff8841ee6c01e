"""Households heard by text message, over HTTP (issue 14): the consent box of the web form (and of
a cadre's 代报 link), the phone bound for texts and the receipt queued on the sms channel; the
objection (异议) on the status page, proven again on its POST, recorded via the web."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from bot.webform.safety import objection_token
from domain import delivery
from domain.model import Channel, DeclarationStatus, Verdict
from qr.cadre_links import sign_cadre_link
from storage.tables import ChannelAccountRow, DeclarationRow, OutboxRow
from tests.web.conftest import SECRET, Site, answers
from tests.web.test_pages import declarations, form_path

S = DeclarationStatus
BOX = 'name="sms_consent"'
TOKEN = re.compile(r'name="token" value="([^"]+)"')
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
REASON = "家庭人均收入高于监测线"


@pytest.fixture
def texts() -> Iterator[None]:
    before = delivery.switch_on(Channel.SMS)
    try:
        yield
    finally:
        delivery.restore(before)


async def accounts(site: Site, person_id: int) -> list[tuple[str, str]]:
    async with site.uow() as uow:
        rows = await uow.session.scalars(
            select(ChannelAccountRow).where(ChannelAccountRow.person_id == person_id)
        )
        return [(r.channel, r.address) for r in rows]


async def outbox(site: Site, person_id: int) -> list[tuple[str, str]]:
    """(channel, catalog key) of what is queued for the person."""
    async with site.uow() as uow:
        rows = await uow.session.scalars(
            select(OutboxRow).where(OutboxRow.person_id == person_id).order_by(OutboxRow.id)
        )
        return [(r.channel, r.payload["template"]) for r in rows]


# --- the consent on the form ----------------------------------------------------------------------------


async def test_the_box_is_shown_only_while_texts_are_on(site: Site) -> None:
    path, _ = await form_path(site)
    assert BOX not in await (await site.client.get(path)).text()
    before = delivery.switch_on(Channel.SMS)
    try:
        body = await (await site.client.get(path)).text()
        assert BOX in body and "同意通过短信接收办理进展" in body and "只含受理号和办理状态" in body
        english = await (await site.client.get(path + "?lang=en")).text()
        assert "Send me text messages about my case&#39;s progress" in english
    finally:
        delivery.restore(before)


async def test_a_ticked_box_binds_the_phone_and_queues_the_receipt_by_text(site: Site, texts: None) -> None:
    path, token = await form_path(site)
    status, body = await site.post(path, {**answers(sms_consent="yes"), "csrf": token})
    assert status == 200, body

    [row] = await declarations(site)
    assert row.sms_consent_at is not None and row.consent_at is not None
    assert await accounts(site, row.declared_by) == [("sms", "13912345678")]
    assert await outbox(site, row.declared_by) == [("sms", "intake.submitted")]


async def test_an_unticked_box_binds_nothing(site: Site, texts: None) -> None:
    path, token = await form_path(site)
    status, body = await site.post(path, {**answers(), "csrf": token})
    assert status == 200, body
    [row] = await declarations(site)
    assert row.sms_consent_at is None
    assert await accounts(site, row.declared_by) == [] and await outbox(site, row.declared_by) == []


async def test_with_texts_off_a_ticked_box_means_nothing(site: Site) -> None:
    path, token = await form_path(site)
    status, body = await site.post(path, {**answers(sms_consent="yes"), "csrf": token})
    assert status == 200, body
    [row] = await declarations(site)
    assert row.sms_consent_at is None and await accounts(site, row.declared_by) == []


async def test_a_second_declaration_with_the_same_phone_keeps_hearing(site: Site, texts: None) -> None:
    path, token = await form_path(site)
    await site.post(path, {**answers(sms_consent="yes"), "csrf": token})
    site.clock.advance(days=31)
    other, other_token = await form_path(site, "QS02")
    status, body = await site.post(other, {**answers(sms_consent="yes", name="王小山"), "csrf": other_token})
    assert status == 200, body
    first, second = await declarations(site)
    assert second.declared_by == first.declared_by
    assert await outbox(site, first.declared_by) == [("sms", "intake.submitted"), ("sms", "intake.submitted")]


async def test_a_landline_with_the_box_ticked_is_explained_beside_the_box(site: Site, texts: None) -> None:
    path, token = await form_path(site)
    status, body = await site.post(path, {**answers(sms_consent="yes", phone="010-62345678"), "csrf": token})
    assert status == 400 and "短信只能发到手机号码" in body
    assert await declarations(site) == []


async def test_a_cadres_daibao_link_asks_whether_the_household_agreed(site: Site, texts: None) -> None:
    async with site.uow() as uow:
        zhang = await uow.persons.by_phone("+8613800000001")
    assert zhang is not None
    path = f"/d/{sign_cadre_link(SECRET, zhang.id, 'QS01', site.clock.now())}/form"
    csrf = await site.csrf(path)
    body = await (await site.client.get(path)).text()
    assert BOX in body and "户主同意接收短信通知" in body
    fields = {k: v for k, v in answers(sms_consent="yes").items() if k not in ("declarant", "relation")}
    status, body = await site.post(path, {**fields, "csrf": csrf})
    assert status == 200, body

    [row] = await declarations(site)
    assert row.filed_by_cadre == zhang.id and row.declared_by != zhang.id
    assert await accounts(site, row.declared_by) == [("sms", "13912345678")]
    assert await outbox(site, row.declared_by) == [("sms", "intake.submitted")]


# --- the objection on the status page --------------------------------------------------------------------


async def refused_case(site: Site) -> DeclarationRow:
    """A web declaration (texts agreed) the cadre found not eligible; the township's staff have a chat."""
    path, token = await form_path(site)
    await site.post(path, {**answers(sms_consent="yes"), "csrf": token})
    [row] = await declarations(site)
    async with site.uow() as uow:
        staff = await uow.persons.by_phone("+8613800000003")
        assert staff is not None
        await uow.persons.bind(staff.id, Channel.TELEGRAM, "3001", site.clock.now())
        moved = await uow.declarations.transition(
            row.id, expected=S.SUBMITTED, to=S.NOT_ELIGIBLE, at=site.clock.now(),
            verdict=Verdict.NOT_ELIGIBLE, reason=REASON,
        )  # fmt: skip
        assert moved
        await uow.commit()
    return row


async def status_page(site: Site, receipt: str, phone: str = "13912345678") -> str:
    token = await site.csrf("/status")
    response = await site.client.post("/status", data={"receipt": receipt, "phone": phone, "csrf": token})
    assert response.status == 200
    return await response.text()


def number(row: DeclarationRow) -> str:
    assert row.receipt is not None
    return row.receipt


def objection_form(body: str) -> dict[str, str]:
    """The objection form's hidden fields (its CSRF token, the signed receipt and phone)."""
    form = body[body.index('action="/status/objection"') :]
    csrf, token = CSRF.search(form), TOKEN.search(form)
    assert csrf and token
    return {"csrf": csrf[1], "token": token[1]}


async def object_to(site: Site, fields: dict[str, Any]) -> tuple[int, str]:
    response = await site.client.post("/status/objection", data=fields)
    return response.status, await response.text()


async def test_the_objection_is_offered_only_when_the_case_may_be_objected_to(
    site: Site, texts: None
) -> None:
    path, token = await form_path(site)
    await site.post(path, {**answers(sms_consent="yes"), "csrf": token})
    [row] = await declarations(site)
    body = await status_page(site, number(row))
    assert "/status/objection" not in body and "提出异议" not in body and "不纳入的理由" not in body


async def test_an_objection_on_the_status_page_is_proven_again_and_recorded_via_the_web(
    site: Site, texts: None
) -> None:
    row = await refused_case(site)
    body = await status_page(site, number(row))
    assert "提出异议（申请复核）" in body and "不纳入的理由" in body and REASON in body
    assert "13912345678" not in body  # the form carries a signed token, not the number
    fields = objection_form(body)

    # A token signed for another phone, a token altered, or none: refused, nothing recorded.
    other = objection_token(SECRET, number(row), "+8613900000000", site.clock.now())
    status, page = await object_to(site, {**fields, "token": other, "objection": "我家确实困难"})
    assert status == 403 and "回执编号与电话号码不符" in page
    altered = fields["token"].replace(number(row), str(int(number(row)) + 1))
    assert (await object_to(site, {**fields, "token": altered, "objection": "我家确实困难"}))[0] == 403
    assert (await object_to(site, {**fields, "token": "", "objection": "我家确实困难"}))[0] == 410
    # Without the page's CSRF token: refused.
    assert (await object_to(site, {"token": fields["token"], "objection": "我家确实困难"}))[0] == 403
    # A reason too short is explained beside the field, what was typed kept.
    status, page = await object_to(site, {**fields, "objection": "不"})
    assert status == 400 and "请写明您的异议" in page and ">不</textarea>" in page
    [still] = await declarations(site)
    assert still.status == S.NOT_ELIGIBLE.value

    status, page = await object_to(site, {**fields, "objection": "我家确实困难，收入没有那么高"})

    assert status == 200 and "异议已提交" in page and number(row) in page
    [objected] = await declarations(site)
    assert objected.status == S.OBJECTED.value
    async with site.uow() as uow:
        events = await uow.events.for_declaration(row.id)
        staff = await uow.persons.by_phone("+8613800000003")
    assert staff is not None
    (event,) = [e for e in events if e.kind == "object"]
    assert event.actor_id == row.declared_by and event.data["via"] == "web"
    assert event.data["objection"] == "我家确实困难，收入没有那么高"
    assert ("telegram", "case.objection") in await outbox(site, staff.id)

    # A second objection: a polite page, nothing more recorded; the page offers it no more.
    status, page = await object_to(site, {**fields, "objection": "我还是不同意这个结果"})
    assert status == 409 and "不能再提出异议" in page
    async with site.uow() as uow:
        assert [e.kind for e in await uow.events.for_declaration(row.id)].count("object") == 1
    again = await status_page(site, number(row))
    assert "/status/objection" not in again and REASON in again


async def test_an_objection_form_expires(site: Site, texts: None) -> None:
    row = await refused_case(site)
    fields = objection_form(await status_page(site, number(row)))
    site.clock.advance(minutes=31)
    status, page = await object_to(site, {**fields, "objection": "我家确实困难，收入没有那么高"})
    assert status == 410 and "页面已过期" in page
    [still] = await declarations(site)
    assert still.status == S.NOT_ELIGIBLE.value


async def test_the_objection_page_in_english_and_its_address_opened(site: Site, texts: None) -> None:
    row = await refused_case(site)
    token = await site.csrf("/status")
    response = await site.client.post(
        "/status?lang=en", data={"receipt": number(row), "phone": "13912345678", "csrf": token}
    )
    body = await response.text()
    assert "Object (ask for a review)" in body and "Why it was not included" in body
    opened = await site.client.get("/status/objection", allow_redirects=False)
    assert opened.status == 303 and opened.headers["Location"] == "/status"
