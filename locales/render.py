"""An outgoing message as text in the reader's language: catalog lookup, parameters, the parts a
message is built of. Used by the sender (Telegram), the web pages and the catalog checker; a
channel's own presentation (Telegram's keyboards) is the front end's (handlers/keyboards.py)."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from babel.dates import format_date
from babel.numbers import format_currency

from domain import risk_types
from domain.messages import Action, Outgoing
from locales import gettext

log = logging.getLogger(__name__)

BABEL_LOCALES = {"zh_Hans": "zh_Hans_CN", "en": "en"}
LIST_SEPARATORS = {"zh_Hans": "、", "en": ", "}


class _Missing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        log.error("catalog text wants {%s}, which the message does not carry", key)
        return "{" + key + "}"


def value(raw: Any, catalog: str) -> str:
    """A parameter as text in `catalog`'s language.

    Plain values are shown as they are (user text is never parsed as a template). Marked values:
    {"$t": key, "$with": params} a catalog text, {"$risk": code, "$checked": bool} a risk type,
    {"$risks": [codes]}, {"$money": yuan}, {"$date": iso}, {"$lines": [values]}, {"$plain": text}.
    """
    if not isinstance(raw, dict):
        return str(raw)
    if "$t" in raw:
        params = _Missing({k: value(v, catalog) for k, v in (raw.get("$with") or {}).items()})
        return gettext(catalog, raw["$t"]).format_map(params)
    if "$risk" in raw:
        risk = risk_types.by_code(raw["$risk"])
        label = risk.label(catalog) if risk else str(raw["$risk"])
        return ("✅ " + label) if raw.get("$checked") else label
    if "$risks" in raw:
        return LIST_SEPARATORS.get(catalog, ", ").join(
            value({"$risk": code}, catalog) for code in raw["$risks"]
        )
    if "$money" in raw:
        return format_currency(
            raw["$money"],
            "CNY",
            format="¤#,##0",
            locale=BABEL_LOCALES.get(catalog, catalog),
            currency_digits=False,
        )
    if "$date" in raw:
        return format_date(
            date.fromisoformat(raw["$date"]), format="long", locale=BABEL_LOCALES.get(catalog, catalog)
        )
    if "$join" in raw:
        return LIST_SEPARATORS.get(catalog, ", ").join(value(part, catalog) for part in raw["$join"])
    if "$lines" in raw:
        return "\n".join(value(line, catalog) for line in raw["$lines"])
    if "$plain" in raw:
        return str(raw["$plain"])
    return str(raw)


def text_of(message: Outgoing, catalog: str) -> str:
    params = _Missing({name: value(raw, catalog) for name, raw in message.params.items()})
    # A line that is only an optional part with nothing to show is left out, not left blank.
    template = "\n".join(
        line
        for line in gettext(catalog, message.template).split("\n")
        if not (line.startswith("{") and line.endswith("}") and params.get(line[1:-1], None) == "")
    )
    body = template.format_map(params)
    if message.lead:
        lead = value({"$t": message.lead, "$with": message.lead_params}, catalog)
        body = f"{lead}\n\n{body}"
    return body


def label_of(action: Action, catalog: str) -> str:
    """A button's label in `catalog`'s language."""
    label = action.label_or_default
    if isinstance(label, dict):
        return value(label, catalog)
    return gettext(catalog, label)
