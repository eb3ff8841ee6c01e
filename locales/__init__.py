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


def _load(po: Path) -> Translations:
    mo = po.with_suffix(".mo")
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        with mo.open("rb") as handle:
            return Translations(handle, domain=DOMAIN)
    log.warning("%s not compiled; reading the .po (run `make locales`)", po)
    with po.open("rb") as handle:
        compiled = io.BytesIO()
        write_mo(compiled, read_po(handle, locale=po.parent.parent.name))
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def catalog_files(catalog: str) -> list[Path]:
    """The .po files of a language: messages.po first, then one per feature (same key space)."""
    folder = HERE / catalog / "LC_MESSAGES"
    return sorted(folder.glob("*.po"), key=lambda p: (p.stem != DOMAIN, p.name))


@cache
def translations(catalog: str) -> Translations:
    """All compiled catalogs of a language merged; compiled in memory when the .mo was not built."""
    files = catalog_files(catalog)
    merged = _load(files[0])
    for po in files[1:]:
        merged.merge(_load(po))
    return merged


def gettext(catalog: str, key: str) -> str:
    """The text for `key` in `catalog`; a key missing from the catalog comes back as itself."""
    return translations(catalog).gettext(key)


def _(key: str) -> str:
    """Mark a catalog key for extraction where it is used later (by the renderer)."""
    return key
