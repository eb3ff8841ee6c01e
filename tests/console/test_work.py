"""The township's work in the console: notices (x of y, 提醒), campaigns and their progress, the
problem ledger; every POST through the chat's own use cases, what is not the person's a 404."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select

from domain import buttons as b
from domain import notices
from domain.actor import actor_for
from domain.model import Channel, LedgerStatus, ReportDraft, ReportStep
from storage.tables import CampaignRow, LedgerItemRow, NoticeRow, OutboxRow
from tests.console.conftest import CHEN, LI, LIU, WANG, ZHANG, ZHAO, ZHOU, Desk

NOTICE = "请各村于12月1日前完成集中排查入户走访，并上报进度。"


async def post(desk: Desk, path: str, data: dict[str, Any] | list[tuple[str, str]]) -> Any:
    """A form posted with the session's CSRF token, not following the redirect."""
    token = await desk.csrf("/console/")
    fields = list(data.items()) if isinstance(data, dict) else list(data)
    return await desk.client.post(path, data=[("csrf", token), *fields], allow_redirects=False)


async def count(desk: Desk, table: Any) -> int:
    async with desk.uow() as uow:
        return int((await uow.session.execute(select(func.count()).select_from(table))).scalar() or 0)


async def village_id(desk: Desk, code: str) -> int:
    async with desk.uow() as uow:
        village = await uow.geography.village_by_code(code)
    assert village is not None
    return village.id


async def person_id(desk: Desk, address: str) -> int:
    async with desk.uow() as uow:
        person = await uow.persons.by_address(Channel.TELEGRAM, address)
    assert person is not None
    return person.id


async def send_notice(desk: Desk, body: str = NOTICE, **more: str) -> int:
    sent = await post(desk, "/console/notices", {"body": body, "audience": "cadres", "when": "now"} | more)
    assert sent.status == 303, await sent.text()
    assert sent.headers["Location"] == "/console/notices?done=sent"
    async with desk.uow() as uow:
        newest = (await uow.session.execute(select(func.max(NoticeRow.id)))).scalar()
    assert newest is not None
    return int(newest)


# --- notices ----------------------------------------------------------------------------------------


async def test_a_notice_from_the_web_reaches_the_cadres_as_one_from_chat(desk: Desk) -> None:
    await desk.sign_in(WANG)
    notice_id = await send_notice(desk)

    async with desk.uow() as uow:
        found = await uow.session.execute(
            select(OutboxRow.person_id, OutboxRow.key, OutboxRow.payload).where(
                OutboxRow.key.like(f"notice:{notice_id}:%")
            )
        )
        rows = found.all()
    cadres = {await person_id(desk, a) for a in (ZHANG, LI, ZHAO)}
    assert {r.person_id for r in rows} == cadres  # 刘洋 of 白水乡 gets none
    for row in rows:
        assert row.key == f"notice:{notice_id}:{row.person_id}"
        assert row.payload["template"] == "notice.message"
        assert row.payload["params"] == {"township": "青山镇", "text": NOTICE}
        assert [[data for data, _ in line] for line in row.payload["actions"]] == [
            [b.NoticeAck(notice_id).pack()]
        ]

    page = await desk.client.get("/console/notices?done=sent")
    text = await page.text()
    assert page.status == 200 and "通知已发出" in text and NOTICE in text
    assert "已收到 0 / 3" in text and "张伟、李娜、赵强" in text


async def test_a_notice_with_an_id_number_is_refused_beside_its_text_and_not_sent(desk: Desk) -> None:
    await desk.sign_in(WANG)
    body = "请王大山带身份证 110101199003071234 到乡政府"

    refused = await post(desk, "/console/notices", {"body": body, "audience": "cadres", "when": "now"})

    text = await refused.text()
    assert refused.status == 400 and "身份证号或电话号码" in text
    assert "110101199003071234" in text  # the text typed is kept in the form, to correct it
    assert await count(desk, NoticeRow) == 0
    async with desk.uow() as uow:
        queued = await uow.session.execute(select(OutboxRow.key).where(OutboxRow.key.like("notice%")))
        assert queued.all() == []


async def test_a_notice_for_later_is_bounded_and_scheduled(desk: Desk) -> None:
    await desk.sign_in(WANG)
    now = desk.clock.now()
    form = {"body": NOTICE, "audience": "cadres", "when": "later"}

    past = await post(
        desk, "/console/notices", form | {"send_at": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")}
    )
    far = await post(desk, "/console/notices", form | {"send_at": "9999-12-31T09:00"})
    missing = await post(desk, "/console/notices", form | {"send_at": ""})
    later = await post(
        desk, "/console/notices", form | {"send_at": (now + timedelta(days=1)).strftime("%Y-%m-%dT09:00")}
    )

    assert past.status == 400 and "已经过去" in await past.text()
    assert far.status == 400 and "太远" in await far.text()
    assert missing.status == 400 and "时间格式不对" in await missing.text()
    assert later.status == 303 and later.headers["Location"] == "/console/notices?done=scheduled"
    listed = await (await desk.client.get("/console/notices")).text()
    tomorrow = (now + timedelta(days=1)).strftime("%Y-%m-%d 09:00")
    assert f"定时 {tomorrow} 发送" in listed


async def test_another_townships_staff_and_cadres_never_see_a_notice(desk: Desk) -> None:
    await desk.sign_in(WANG)
    notice_id = await send_notice(desk)
    assert (await desk.client.get(f"/console/notices/{notice_id}")).status == 200

    await desk.sign_in(CHEN)  # staff of 白水乡
    listed = await desk.client.get("/console/notices")
    assert listed.status == 200 and NOTICE not in await listed.text()
    assert (await desk.client.get(f"/console/notices/{notice_id}")).status == 404
    assert (await desk.client.get("/console/notices/999999")).status == 404
    assert (await post(desk, f"/console/notices/{notice_id}/remind", {})).status == 404
    # A village of another township named in the form is as if it did not exist.
    theirs = await post(
        desk,
        "/console/notices",
        {
            "body": NOTICE,
            "audience": "villages",
            "when": "now",
            "village": str(await village_id(desk, "QS01")),
        },
    )
    assert theirs.status == 404

    await desk.sign_in(ZHANG)  # a cadre: no notices section at all
    assert (await desk.client.get("/console/notices")).status == 404
    assert (await desk.client.get(f"/console/notices/{notice_id}")).status == 404


async def test_x_of_y_who_has_not_confirmed_and_remind_once_an_hour(desk: Desk) -> None:
    await desk.sign_in(WANG)
    notice_id = await send_notice(desk)
    async with desk.uow() as uow:
        zhang = await actor_for(uow, desk.clock, Channel.TELEGRAM, ZHANG)
        await notices.acknowledge(uow, desk.clock, zhang, notice_id)
        await uow.commit()

    shown = await (await desk.client.get(f"/console/notices/{notice_id}")).text()
    assert "已收到 1 / 3" in shown
    assert re.search(r"李娜</td><td class=\"late\">未确认", shown) and "赵强" in shown

    reminded = await post(desk, f"/console/notices/{notice_id}/remind", {})
    assert reminded.status == 303
    assert reminded.headers["Location"] == f"/console/notices/{notice_id}?done=reminded&n=2"
    said = await (await desk.client.get(reminded.headers["Location"])).text()
    assert "已提醒 2 人" in said
    async with desk.uow() as uow:
        keys = (
            (await uow.session.execute(select(OutboxRow.key).where(OutboxRow.key.like("notice-remind:%"))))
            .scalars()
            .all()
        )
    assert len(keys) == 2  # 李娜 and 赵强, not 张伟

    again = await post(desk, f"/console/notices/{notice_id}/remind", {"back": "list"})
    assert again.headers["Location"] == "/console/notices?done=wait&n=60"
    assert "60 分钟内只提醒一次" in await (await desk.client.get(again.headers["Location"])).text()
    desk.clock.advance(minutes=61)
    await desk.sign_in(WANG)  # the session has ended in the meantime
    assert (await post(desk, f"/console/notices/{notice_id}/remind", {})).headers["Location"].endswith("n=2")


async def test_a_post_without_its_csrf_token_is_refused_and_changes_nothing(desk: Desk) -> None:
    await desk.sign_in(WANG)
    form = {"body": NOTICE, "audience": "cadres", "when": "now"}

    refused = await desk.client.post("/console/notices", data=form, allow_redirects=False)
    forged = await desk.client.post("/console/notices", data=form | {"csrf": "0" * 32}, allow_redirects=False)

    assert refused.status == 403 and forged.status == 403
    assert await count(desk, NoticeRow) == 0
    await desk.sign_in(ZHANG)
    item = {"village": str(await village_id(desk, "QS01")), "what": "危房", "measure": "改造"}
    assert (await desk.client.post("/console/ledger", data=item, allow_redirects=False)).status == 403
    assert await count(desk, LedgerItemRow) == 0


# --- campaigns and their reports ------------------------------------------------------------------


def campaign_form(**changes: Any) -> list[tuple[str, str]]:
    fields: dict[str, Any] = {
        "name": "2026年集中排查",
        "village": ["QS01", "QS02"],
        "rhythm": "dates",
        "dates": "2026-11-25;2026-12-10",
        "phase_name": ["动员部署", "入户排查", ""],
        "phase_deadline": ["2026-12-05", "2026-12-20", ""],
        "reminders": "",
    } | changes
    return [(k, x) for k, v in fields.items() for x in (v if isinstance(v, list) else [v])]


async def test_a_campaign_with_a_bad_date_is_refused_beside_its_field(desk: Desk) -> None:
    await desk.sign_in(WANG)
    form = await desk.client.get("/console/campaigns/new")
    assert form.status == 200 and "李家村" in await form.text() and "白水村" not in await form.text()

    refused = await post(
        desk, "/console/campaigns/new", campaign_form(phase_deadline=["2026-13-40", "2026-12-20"])
    )

    text = await refused.text()
    assert refused.status == 400 and "活动没有创建" in text
    # The problem stands right after the first phase's date field, which keeps what was typed.
    first = text.index('id="phase_deadline_0"')
    assert text.index("日期“2026-13-40”不对", first) < text.index('id="phase_name_1"')
    assert 'value="2026-13-40"' in text and 'value="2026年集中排查"' in text
    assert await count(desk, CampaignRow) == 0


async def test_a_campaign_of_another_townships_villages_or_for_a_cadre_is_a_404(desk: Desk) -> None:
    await desk.sign_in(WANG)
    assert (await post(desk, "/console/campaigns/new", campaign_form(village=["QS01", "BS01"]))).status == 404
    await desk.sign_in(ZHANG)
    assert (await desk.client.get("/console/campaigns")).status == 404
    assert (await post(desk, "/console/campaigns/new", campaign_form())).status == 404
    assert await count(desk, CampaignRow) == 0


async def test_a_good_campaign_is_created_and_its_progress_shows_who_has_reported(desk: Desk) -> None:
    await desk.sign_in(WANG)

    created = await post(desk, "/console/campaigns/new", campaign_form())

    assert created.status == 303, await created.text()
    path = created.headers["Location"].split("?")[0]
    campaign_id = int(path.rsplit("/", 1)[1])
    assert created.headers["Location"] == f"/console/campaigns/{campaign_id}?done=created"
    async with desk.uow() as uow:
        told = (
            (await uow.session.execute(select(OutboxRow.key).where(OutboxRow.key.like("campaign-new:%"))))
            .scalars()
            .all()
        )
        qs01 = await uow.geography.village_by_code("QS01")
        zhang = await uow.persons.by_address(Channel.TELEGRAM, ZHANG)
        assert qs01 is not None and zhang is not None
        # 张伟's report for 11-25 (asked at once: the campaign was made less than two days before it).
        draft = ReportDraft(zhang.id, campaign_id, date(2026, 11, 25), qs01.id, ReportStep.NOTE, {})
        answers = {
            "visited": 12,
            "new_risks": 1,
            "problems_found": 3,
            "problems_closed": 2,
            "note": "已走访完",
        }
        await uow.campaigns.save_report(draft, answers, desk.clock.now())
        await uow.commit()
    assert len(told) == 2  # 张伟 and 李娜 (of 李家村 and 王家村), once each

    shown = await desk.client.get(f"/console/campaigns/{campaign_id}?done=created")
    text = await shown.text()
    assert shown.status == 200 and "活动已创建" in text
    assert "动员部署" in text and "2026-12-20" in text
    assert "截至 2026-11-25 的进度：已报 1 / 2 个村" in text
    assert "<td>12</td><td>1</td><td>3</td><td>2</td><td>已走访完</td>" in text
    assert re.search(r"还没有报送：</strong>\s*<ul>\s*<li>王家村（李娜）</li>", text)
    listed = await (await desk.client.get("/console/campaigns")).text()
    assert f'href="/console/campaigns/{campaign_id}"' in listed

    await desk.sign_in(CHEN)  # staff of 白水乡
    assert (await desk.client.get(f"/console/campaigns/{campaign_id}")).status == 404
    assert "2026年集中排查" not in await (await desk.client.get("/console/campaigns")).text()


# --- the problem ledger ------------------------------------------------------------------------------


def item(village: int, **changes: str) -> dict[str, str]:
    return {
        "village": str(village),
        "what": "王家老屋墙体开裂，属危房",
        "measure": "协调住建部门纳入危房改造",
        "deadline": "2026-12-20",
        "responsible": "张伟",
    } | changes


async def test_a_cadre_adds_to_their_villages_ledger_and_closes_it_others_get_a_404(desk: Desk) -> None:
    qs01, qs03 = await village_id(desk, "QS01"), await village_id(desk, "QS03")
    await desk.sign_in(ZHANG)

    added = await post(desk, "/console/ledger", item(qs01))
    not_theirs = await post(desk, "/console/ledger", item(qs03))
    too_far = await post(desk, "/console/ledger", item(qs01, deadline="2099-01-01", responsible=""))

    assert added.status == 303 and added.headers["Location"].startswith("/console/ledger?done=added&n=")
    item_id = int(added.headers["Location"].rsplit("=", 1)[1])
    assert not_theirs.status == 404
    refused = await too_far.text()
    assert too_far.status == 400 and "整改时限太远了" in refused and "内容不能为空" in refused
    assert await count(desk, LedgerItemRow) == 1
    page = await (await desk.client.get(added.headers["Location"])).text()
    assert f"已记入问题台账（#{item_id}）" in page and "王家老屋墙体开裂" in page
    assert f'action="/console/ledger/{item_id}/close"' in page

    for other in (ZHAO, LIU):  # 陈家村's cadre (same township), 白水村's
        await desk.sign_in(other)
        assert "王家老屋墙体开裂" not in await (await desk.client.get("/console/ledger")).text()
        assert (await post(desk, f"/console/ledger/{item_id}/close", {})).status == 404
    await desk.sign_in(CHEN)
    assert "王家老屋墙体开裂" not in await (await desk.client.get("/console/ledger")).text()
    await desk.sign_in(ZHOU)  # the county has no ledger section
    assert (await desk.client.get("/console/ledger")).status == 404

    await desk.sign_in(WANG)  # staff see the township's ledger, and add to it; closing is the cadres'
    staff_page = await (await desk.client.get("/console/ledger")).text()
    assert "王家老屋墙体开裂" in staff_page and f"/console/ledger/{item_id}/close" not in staff_page
    assert (await post(desk, "/console/ledger", item(qs03, what="饮水管道破损"))).status == 303
    assert (await post(desk, f"/console/ledger/{item_id}/close", {})).status == 404

    await desk.sign_in(ZHANG)
    closed = await post(desk, f"/console/ledger/{item_id}/close", {})
    again = await post(desk, f"/console/ledger/{item_id}/close", {})
    assert closed.headers["Location"] == "/console/ledger?done=closed"
    assert again.headers["Location"] == "/console/ledger?done=already"
    async with desk.uow() as uow:
        found = await uow.ledger.get(item_id)
    assert found is not None and found.status is LedgerStatus.CLOSED
    assert "已销号" in await (await desk.client.get("/console/ledger?done=closed")).text()


async def test_the_ledger_lists_overdue_items_first(desk: Desk) -> None:
    qs01 = await village_id(desk, "QS01")
    await desk.sign_in(LI)
    for what, deadline in (
        ("后到期的问题", "2026-12-20"),
        ("先到期的问题", "2026-11-25"),
        ("中间的问题", "2026-12-01"),
    ):
        assert (await post(desk, "/console/ledger", item(qs01, what=what, deadline=deadline))).status == 303
    desk.clock.advance(days=5)  # 11-28: the 11-25 item is overdue
    await desk.sign_in(LI)

    text = await (await desk.client.get("/console/ledger")).text()

    order = [text.index(w) for w in ("先到期的问题", "中间的问题", "后到期的问题")]
    assert order == sorted(order)
    assert "未销号 3 个，其中超期 1 个" in text and "已超期" in text
