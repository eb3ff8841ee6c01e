"""Pages from Jinja2 templates (aiohttp-jinja2, autoescaped): the public pages and the console.

Every text comes from the catalogs through `t(key, **params)`, in the page's language: `?lang=`
(remembered in a cookie), else the cookie, else the language the signed-in person chose in chat
(the console), else the browser's Accept-Language, else Chinese.
What a person typed is escaped by the template engine; nothing is marked safe that came from a
person. Styles are a file under /static/ (the pages' CSP allows no inline style or script).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from locales import AVAILABLE, FALLBACK, catalog_for, gettext
from locales.render import value

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")
LANG_COOKIE = "fh_lang"
LANG_KEY: web.RequestKey[str] = web.RequestKey("language", str)
PREFERRED_KEY: web.RequestKey[str] = web.RequestKey("preferred_language", str)
HTML_LANG = {"zh_Hans": "zh-Hans", "en": "en"}


def language_of(request: web.Request) -> str:
    """The page's language (a catalog name): asked for, remembered, or the browser's."""
    if LANG_KEY in request:
        return request[LANG_KEY]
    asked = request.query.get("lang") or request.cookies.get(LANG_COOKIE)
    if asked in AVAILABLE:
        chosen = asked
    elif request.get(PREFERRED_KEY) in AVAILABLE:
        chosen = request[PREFERRED_KEY]
    else:
        chosen = FALLBACK
        for part in request.headers.get("Accept-Language", "").split(",")[:8]:
            code = part.split(";")[0].strip()
            if code:
                chosen = catalog_for(code[:20], FALLBACK)
                break
    request[LANG_KEY] = chosen
    return chosen


def prefer(request: web.Request, locale: str | None) -> None:
    """The language of the person the page is for (their chat's), when the address and the
    cookie ask for none: a staff member's console speaks as their bot does."""
    if locale:
        request[PREFERRED_KEY] = catalog_for(locale, FALLBACK)


def translator(language: str) -> Callable[..., str]:
    """`t(key, **params)`: a catalog text in `language`, its parameters rendered there too."""

    def t(key: str, **params: Any) -> str:
        return gettext(language, key).format(**{k: value(v, language) for k, v in params.items()})

    return t


def _context(request: web.Request) -> dict[str, Any]:
    """What every page's template has: its language and the texts in it. Made when the page is
    rendered, not when the request arrives (as aiohttp-jinja2's context processors would): by then
    the console knows who is signed in and which language they chose."""
    language = language_of(request)
    return {
        "lang": language,
        "html_lang": HTML_LANG.get(language, "zh-Hans"),
        "t": translator(language),
        "shown": lambda raw: value(raw, language),
        "path": request.path,
        "other_lang": "en" if language == "zh_Hans" else "zh_Hans",
    }


def setup(app: web.Application) -> None:
    """Templates and the static files (styles, the console's images) on `app`; once."""
    if aiohttp_jinja2.APP_KEY in app:
        return
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html"], default=True),
        undefined=jinja2.StrictUndefined,
    )
    app.router.add_static("/static/", STATIC, append_version=True)


def render(request: web.Request, name: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
    """A page from its template; a language asked for in the address is remembered."""
    response = aiohttp_jinja2.render_template(name, request, {**_context(request), **context}, status=status)
    asked = request.query.get("lang")
    if asked in AVAILABLE and request.cookies.get(LANG_COOKIE) != asked:
        response.set_cookie(LANG_COOKIE, asked, max_age=365 * 24 * 3600, httponly=True, samesite="Lax")
    return response
