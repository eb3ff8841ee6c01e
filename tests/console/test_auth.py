"""Signing in to the console: a one-time link from /web, a session on the server, and its ends."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from domain import roster, validation
from domain.actor import actor_for
from domain.model import Channel, Role
from domain.office import logins
from tests.console.conftest import CSRF, LI, ROSTER, WANG, ZHOU, Desk, roster_rows


async def test_a_link_signs_in_once_and_the_session_opens_the_console(desk: Desk) -> None:
    path = await desk.link(WANG)
    shown = await desk.client.get(path)
    assert shown.status == 200
    text = await shown.text()
    assert "王芳" in text and "乡镇工作人员" in text  # whom it signs in, before anything is used
    token = CSRF.search(text)
    assert token is not None

    done = await desk.client.post(path, data={"csrf": token[1]}, allow_redirects=False)

    assert done.status == 303 and done.headers["Location"] == "/console/"
    cookie = done.headers["Set-Cookie"]
    assert "fh_console=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Path=/console" in cookie
    home = await desk.client.get("/console/")
    assert home.status == 200 and "王芳" in await home.text()
    again = await desk.client.post(path, data={"csrf": token[1]}, allow_redirects=False)
    assert again.status == 410 and "已经用过" in await again.text()


async def test_a_link_past_ten_minutes_forged_or_for_no_one_is_refused(desk: Desk) -> None:
    path = await desk.link(WANG)
    desk.clock.advance(minutes=11)
    expired = await desk.client.get(path)
    assert expired.status == 410 and "已过期" in await expired.text()

    forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert (await desk.client.get(forged)).status == 404
    assert (await desk.client.get("/console/login/not-a-link")).status == 404
    assert (await desk.client.get("/console/")).status == 401  # nobody signed in


async def test_a_household_gets_no_link(desk: Desk) -> None:
    async with desk.uow() as uow:
        actor = await actor_for(uow, desk.clock, Channel.TELEGRAM, "9001")
        outcome = await logins.offer(uow, desk.clock, actor, public_url="https://x.org", link=lambda t: t)
        await uow.commit()
    assert not outcome.done
    async with desk.uow() as uow:
        rows = (await uow.session.execute(text("SELECT count(*) FROM login_links"))).scalar()
    assert rows == 0


async def test_a_post_without_its_csrf_token_is_refused(desk: Desk) -> None:
    await desk.sign_in(WANG)
    refused = await desk.client.post("/console/logout", data={}, allow_redirects=False)
    assert refused.status == 403
    assert (await desk.client.get("/console/")).status == 200  # still signed in


async def test_signing_out_ends_the_session(desk: Desk) -> None:
    await desk.sign_in(LI)
    token = await desk.csrf()
    out = await desk.client.post("/console/logout", data={"csrf": token}, allow_redirects=False)
    assert out.status == 303
    assert (await desk.client.get("/console/")).status == 401


async def test_thirty_idle_minutes_or_twelve_hours_end_a_session(desk: Desk) -> None:
    await desk.sign_in(WANG)
    desk.clock.advance(minutes=29)
    assert (await desk.client.get("/console/")).status == 200
    desk.clock.advance(minutes=29)  # 29 minutes since the last page: still alive
    assert (await desk.client.get("/console/")).status == 200
    desk.clock.advance(minutes=31)
    assert (await desk.client.get("/console/")).status == 401

    await desk.sign_in(WANG)
    signed_in_at = desk.clock.now()
    while desk.clock.now() - signed_in_at < timedelta(hours=11, minutes=30):  # busy all along
        desk.clock.advance(minutes=29)
        assert (await desk.client.get("/console/")).status == 200
    desk.clock.advance(minutes=29)  # past 12 hours since signing in, however busy
    assert (await desk.client.get("/console/")).status == 401


async def test_a_role_changed_in_the_roster_ends_the_session(desk: Desk) -> None:
    await desk.sign_in(LI)
    assert (await desk.client.get("/console/")).status == 200
    changed = ROSTER.replace("李家村;王家村,李娜,13800000002,cadre", ",李娜,13800000002,township").replace(
        "青山县,青山镇,QS01;QS02", "青山县,青山镇,"
    )
    async with desk.uow() as uow:
        await roster.apply(uow, roster_rows(changed), desk.clock.now())
        await uow.commit()
        li = await uow.persons.by_phone(validation.phone("13800000002"))
    assert li is not None and li.role is Role.TOWNSHIP
    assert (await desk.client.get("/console/")).status == 401


async def test_the_console_has_the_security_headers(desk: Desk) -> None:
    await desk.sign_in(ZHOU)
    response = await desk.client.get("/console/")
    assert response.status == 200 and "周明" in await response.text()
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"


async def test_the_roster_names_counties(desk: Desk) -> None:
    async with desk.uow() as uow:
        zhou = await uow.persons.by_phone(validation.phone("13800000007"))
        townships = {t.name: t.county for t in await uow.geography.townships()}
    assert zhou is not None and zhou.role is Role.COUNTY
    assert (zhou.county, zhou.township_id) == ("青山县", None)
    assert townships == {"青山镇": "青山县", "白水乡": "白水县"}


async def test_the_console_speaks_the_language_the_person_chose_in_chat(desk: Desk) -> None:
    path = await desk.link(WANG)
    english_browser = {"Accept-Language": "en-US,en;q=0.9"}
    # No language chosen: the bot's default (Chinese), whatever the browser says.
    assert "登录" in await (await desk.client.get(path, headers=english_browser)).text()
    async with desk.uow() as uow:
        person = await uow.persons.by_address(Channel.TELEGRAM, WANG)
        assert person is not None
        await uow.persons.set_locale(person.id, "en")
        await uow.commit()
    assert "Sign in" in await (await desk.client.get(path)).text()
    # Asked for in the address, the page's own switch wins.
    assert "登录" in await (await desk.client.get(path + "?lang=zh_Hans")).text()
