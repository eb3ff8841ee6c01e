"""The public pages as templates: in Chinese or English (asked for, remembered, or the browser's),
a link to the other language on every page, what a person typed always escaped, styles from the
site's own style sheet under a CSP without 'unsafe-inline', and the catalog keys the templates name."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2
import pytest
from jinja2 import nodes

from bot.templating import LANG_COOKIE, TEMPLATES
from bot.webform import pages
from bot.webform.safety import MAX_BODY, receipt_token
from domain import web_intake
from locales.catalog import KEY
from tests.web.conftest import SECRET, Site, answers
from tests.web.test_pages import declarations, form_path

ENGLISH = {"Accept-Language": "en-US,en;q=0.9"}
CHINESE = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
SCRIPT = "<script>alert(1)</script>"


def is_english(body: str) -> bool:
    return '<html lang="en">' in body and "Questions? Call 12317" in body and "咨询电话" not in body


def is_chinese(body: str) -> bool:
    return '<html lang="zh-Hans">' in body and "咨询电话：12317" in body and "Questions?" not in body


async def get(site: Site, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
    response = await site.client.get(path, headers=headers or {})
    return response.status, await response.text(), response


# --- the language -------------------------------------------------------------------------------


async def test_a_page_is_in_english_when_the_address_asks_for_it(site: Site) -> None:
    status, body, response = await get(site, f"/q/{site.payload()}?lang=en", CHINESE)
    assert status == 200 and is_english(body)
    assert "Open in Telegram" in body and "No Telegram? Fill in the form on the web" in body
    assert "李家村 (青山镇)" in body  # the names stay as the roster has them
    assert response.cookies[LANG_COOKIE].value == "en"
    status, body, _ = await get(site, f"/q/{site.payload()}?lang=zh_Hans", ENGLISH)
    assert status == 200 and is_chinese(body) and "在 Telegram 中打开" in body


async def test_a_page_is_in_the_browsers_language_when_nothing_is_asked(site: Site) -> None:
    _, english, response = await get(site, "/status", ENGLISH)
    assert is_english(english) and "Receipt number" in english
    assert LANG_COOKIE not in response.cookies  # only a language asked for is remembered
    _, chinese, _ = await get(site, "/status", CHINESE)
    assert is_chinese(chinese) and "查询申报进度" in chinese
    _, unknown, _ = await get(site, "/status", {"Accept-Language": "fr-FR"})
    assert is_chinese(unknown)
    _, none, _ = await get(site, "/status")
    assert is_chinese(none)


async def test_the_language_asked_for_is_remembered_by_a_cookie(site: Site) -> None:
    await get(site, "/status?lang=en")
    path, _ = await form_path(site)
    _, body, _ = await get(site, path, CHINESE)  # the cookie wins over the browser
    assert is_english(body) and "Submit the declaration" in body
    await get(site, "/status?lang=zh_Hans", ENGLISH)
    _, body, _ = await get(site, path, ENGLISH)
    assert is_chinese(body) and "提交申报" in body
    _, body, _ = await get(site, "/status?lang=klingon", ENGLISH)  # not a language: not remembered
    assert is_english(body)
    _, body, _ = await get(site, path, ENGLISH)
    assert is_chinese(body)


async def test_every_page_links_to_itself_in_the_other_language(site: Site) -> None:
    payload = site.payload()
    path, token = await form_path(site)
    await site.post(path, {**answers(), "csrf": token})
    [row] = await declarations(site)
    cadre_path = "/d/nonsense/form"
    status_token = await site.csrf("/status")
    looked_up = await site.client.post(
        "/status", data={"receipt": row.receipt, "phone": "13912345678", "csrf": status_token}
    )
    status_page = await looked_up.text()
    assert str(row.receipt) in status_page
    bodies = [status_page]
    for where in (f"/q/{payload}", path, "/status", cadre_path, "/q/nonsense", "/q/no/such/page"):
        for language, headers in (("zh", CHINESE), ("en", ENGLISH)):
            _, body, _ = await get(site, where, headers)
            bodies.append(body)
            expected = 'href="?lang=en"' if language == "zh" else 'href="?lang=zh_Hans"'
            assert expected in body, (where, language)
    switch = re.compile(r'<p class="lang"><a href="\?lang=(en|zh_Hans)" hreflang="[^"]+" lang="[^"]+">')
    assert all(switch.search(body) for body in bodies)


async def test_the_switch_link_brings_the_same_page_in_the_other_language(site: Site) -> None:
    payload = site.payload()
    _, chinese, _ = await get(site, f"/q/{payload}", CHINESE)
    assert is_chinese(chinese)
    link = re.search(r'<p class="lang"><a href="([^"]+)"', chinese)
    assert link is not None
    status, english, _ = await get(site, f"/q/{payload}{link[1]}", CHINESE)
    assert status == 200 and is_english(english) and "Open in Telegram" in english


async def test_a_form_with_mistakes_comes_back_in_english(site: Site) -> None:
    path, token = await form_path(site)
    await get(site, path + "?lang=en")
    fields = answers(consent="", phone="12345", risks=["illness", "disaster"], fu_disaster_when="")
    status, body = await site.post(path, {**fields, "csrf": token})
    assert status == 400 and is_english(body)
    assert "A few answers need changing" in body
    assert 'id="err-phone"' in body and "That phone number does not look right" in body  # the chat's text
    assert 'id="err-consent"' in body and "I have read this and agree" in body
    assert "[Consent]" in body and "version 2026-11" in body  # the chat's consent, in English
    assert "Natural disaster" in body and "因病" not in body  # risk types by their English labels
    assert 'id="err-fu_disaster_when"' in body and "&#34;Natural disaster&#34;: on what day" in body
    assert 'value="王大山"' in body and "老伴住院做手术" in body  # what was typed is kept
    assert await declarations(site) == []


async def test_refusals_and_failures_are_in_the_pages_language(site: Site) -> None:
    path, _ = await form_path(site)
    status, body = await site.post(path, answers())  # no CSRF token
    assert status == 403 and is_chinese(body) and "页面已过期" in body
    await get(site, "/status?lang=en")
    status, body = await site.post(path, answers())
    assert status == 403 and is_english(body) and "The page has expired" in body
    status, body, _ = await get(site, "/q/nonsense")
    assert status == 404 and is_english(body) and "this QR code cannot be read" in body
    status, body, _ = await get(site, "/status/no/such/page")  # a 404 made by the middleware
    assert status == 404 and is_english(body) and "There is no such page" in body
    response = await site.client.post(
        path, data=b"x" * (MAX_BODY + 1), headers={"Content-Type": "multipart/form-data; boundary=x"}
    )
    assert response.status == 413 and is_english(await response.text())


async def test_a_failure_is_a_polite_page_in_the_pages_language_even_if_its_page_fails(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database is gone")

    monkeypatch.setattr(web_intake, "receipt_of", broken)
    token = receipt_token(SECRET, "20261123000001")
    status, body, response = await get(site, f"/r/{token}?lang=en")
    assert status == 500 and is_english(body) and "Something went wrong" in body
    assert "database" not in body and "Traceback" not in body
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
    monkeypatch.setattr(pages, "message", broken)  # not even the page of the failure can be made
    status, body, response = await get(site, f"/r/{token}")
    assert status == 500 and response.content_type == "text/plain"
    assert body.startswith("Sorry, something went wrong") and "12317" in body


async def test_the_status_page_is_in_english_dates_and_states_included(site: Site) -> None:
    path, token = await form_path(site)
    await site.post(path, {**answers(), "csrf": token})
    [row] = await declarations(site)
    status_token = await site.csrf("/status?lang=en")
    response = await site.client.post(
        "/status", data={"receipt": row.receipt, "phone": "13912345678", "csrf": status_token}
    )
    body = await response.text()
    assert response.status == 200 and is_english(body) and str(row.receipt) in body
    assert "Declared on" in body and "November" in body and "Illness" in body
    assert "已提交" not in body and "李家村" in body


# --- what a person typed --------------------------------------------------------------------------


async def test_every_page_escapes_what_a_person_typed(site: Site) -> None:
    path, token = await form_path(site)
    typed = answers(
        name=f'王{SCRIPT}"><b>',
        phone="12345",
        description=f"</textarea>{SCRIPT}",
        relation_text=f'"{SCRIPT}',
        fu_illness_cost=f"'{SCRIPT}",
    )
    for language in ("zh_Hans", "en"):
        await get(site, f"/status?lang={language}")
        status, body = await site.post(path, {**typed, "csrf": token})
        assert status == 400 and 'id="err-phone"' in body
        assert "<script" not in body and "<b>" not in body and "</textarea><" not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
        assert 'value="王&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;b&gt;"' in body
        status_token = await site.csrf("/status")
        response = await site.client.post(
            "/status", data={"receipt": '1"><script>x()</script>', "phone": "1", "csrf": status_token}
        )
        body = await response.text()
        assert response.status == 200 and 'value="1&#34;&gt;&lt;script&gt;x()&lt;/script&gt;"' in body
        assert "<script" not in body
        for where in (f"/q/v{SCRIPT}", f"/q/v{SCRIPT}/form", f"/d/{SCRIPT}/form", f"/r/1-{SCRIPT}"):
            response = await site.client.get(where.replace("<", "%3C").replace(">", "%3E"))
            body = await response.text()
            assert response.status in (404, 410) and "<script" not in body and "alert(1)" not in body
    # Nothing was filed from the pages above; a declaration filed with such a description and
    # looked up shows only its receipt, village and state.
    status, _ = await site.post(path, {**answers(description=f"住院{SCRIPT}"), "csrf": token})
    assert status == 200
    [row] = await declarations(site)
    status_token = await site.csrf("/status")
    response = await site.client.post(
        "/status", data={"receipt": row.receipt, "phone": "13912345678", "csrf": status_token}
    )
    assert "<script" not in await response.text()


# --- styles and the CSP -----------------------------------------------------------------------------


async def test_styles_come_from_the_sites_style_sheet_and_the_csp_allows_nothing_inline(site: Site) -> None:
    path, _ = await form_path(site)
    for where in (f"/q/{site.payload()}", path, "/status", "/q/nonsense", "/status/missing"):
        response = await site.client.get(where)
        body = await response.text()
        csp = response.headers["Content-Security-Policy"]
        assert "'unsafe-inline'" not in csp and "sha256-" not in csp and "style-src 'self'" in csp
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "<style" not in body and " style=" not in body and "<script" not in body
        sheet = re.search(r'<link rel="stylesheet" href="(/static/site\.css\?v=[^"]+)">', body)
        assert sheet, where
        href = sheet[1]
    styles = await site.client.get(href.replace("&amp;", "&"))
    assert styles.status == 200 and styles.content_type == "text/css"
    assert ".big{" in await styles.text() and ".lines{" in await styles.text()


# --- the catalog keys the templates name ------------------------------------------------------------


def keys_in_templates(folder: Path) -> set[str]:
    """Every catalog key written as a literal in a `t(...)` call of the templates in `folder`."""
    env = jinja2.Environment()
    found: set[str] = set()
    for template in folder.glob("*.html"):
        tree = env.parse(template.read_text("utf-8"))
        for call in tree.find_all(nodes.Call):
            if not (isinstance(call.node, nodes.Name) and call.node.name == "t" and call.args):
                continue
            key = call.args[0]  # a literal, or literals chosen between: t("a.b" if x else "a.c")
            literals = [key] if isinstance(key, nodes.Const) else list(key.find_all(nodes.Const))
            found |= {c.value for c in literals if isinstance(c.value, str) and KEY.match(c.value)}
    return found


def test_the_keys_the_templates_name_are_listed_for_the_catalog_checker() -> None:
    in_templates = keys_in_templates(TEMPLATES / "public")
    assert "web.landing_intro" in in_templates and "intake.consent" in in_templates
    assert in_templates == set(pages.IN_TEMPLATES)
