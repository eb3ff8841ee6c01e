"""Message catalogs (gettext, built with babel) and the choice of a person's language."""

from __future__ import annotations

import io
import logging
from functools import cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

HERE = Path(__file__).resolve().parent
DOMAIN = "messages"
AVAILABLE = ("zh_Hans", "en")
FALLBACK = "zh_Hans"

log = logging.getLogger(__name__)


def parse_locale(code: str | None) -> Locale | None:
    """A babel Locale from "zh-Hans", "zh_Hans_CN", "en-US"...; None when it makes no sense."""
    if not code:
        return None
    try:
        return Locale.parse(code.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return None


def catalog_for(code: str | None, default: str = FALLBACK) -> str:
    """The catalog to use for a locale code, falling back to `default` (then Chinese)."""
    for candidate in (code, default):
        locale = parse_locale(candidate)
        if locale is None:
            continue
        if locale.language == "zh":
            if locale.script in (None, "Hans") and locale.territory in (None, "CN", "SG"):
                return "zh_Hans"
            continue
        if locale.language in AVAILABLE:
            return locale.language
    return FALLBACK


@cache
def translations(catalog: str) -> Translations:
    """The compiled catalog; compiled from the .po in memory when the .mo was not built."""
    folder = HERE / catalog / "LC_MESSAGES"
    mo = folder / f"{DOMAIN}.mo"
    if mo.exists():
        with mo.open("rb") as handle:
            return Translations(handle, domain=DOMAIN)
    log.warning("%s not compiled; reading %s.po (run `make locales`)", mo, DOMAIN)
    with (folder / f"{DOMAIN}.po").open("rb") as handle:
        compiled = io.BytesIO()
        write_mo(compiled, read_po(handle, locale=catalog))
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def gettext(catalog: str, key: str) -> str:
    """The text for `key` in `catalog`; a key missing from the catalog comes back as itself."""
    return translations(catalog).gettext(key)


def _(key: str) -> str:
    """Mark a catalog key for extraction where it is used later (by the renderer)."""
    return key
