"""The HTML of the public pages: small, no script, one inline style sheet, Simplified Chinese.

Every text comes from the catalogs (the web namespace, and the chat's own texts where the
question is the same); everything a person typed is escaped.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from html import escape
from typing import Any

from domain import intake, risk_types
from domain.model import HOTLINE
from locales import gettext
from locales.render import value

LANG = "zh_Hans"
STYLE = (
    "body{font:17px/1.5 sans-serif;margin:0;padding:12px;max-width:36em;color:#222;background:#fff}"
    "h1{font-size:1.3em;margin:.3em 0}h2{font-size:1.1em;margin:1em 0 .3em}"
    ".big{display:block;text-align:center;padding:14px;margin:14px 0;border-radius:8px;"
    "background:#1a73e8;color:#fff;text-decoration:none;font-size:1.15em;border:0;width:100%;box-sizing:border-box}"
    ".alt{background:#eee;color:#222}label{display:block;margin:.6em 0 .2em;font-weight:bold}"
    "input[type=text],input[type=tel],input[type=number],textarea,select"
    "{width:100%;box-sizing:border-box;font-size:1em;padding:8px;border:1px solid #999;border-radius:6px}"
    ".opt{font-weight:normal;margin:.3em 0}.err{color:#b00020;margin:.2em 0}"
    ".box{border:1px solid #ccc;border-radius:8px;padding:10px;margin:10px 0;background:#fafafa}"
    ".fu{margin:0 0 .5em 1.6em}.muted{color:#666;font-size:.9em}dt{font-weight:bold}dd{margin:0 0 .5em}"
)
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()


def t(key: str, **params: Any) -> str:
    """A catalog text with its parameters, escaped for HTML."""
    return escape(gettext(LANG, key).format(**{k: value(v, LANG) for k, v in params.items()}))


def page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="zh-Hans"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>{body}"
        f'<p class="muted">{t("web.hotline", hotline=HOTLINE)}</p></body></html>'
    )


def landing(village: str, township: str, deep_link: str | None, form_url: str) -> str:
    place = f"{village}（{township}）" if township else village
    telegram = (
        f'<a class="big" href="{escape(deep_link)}">{t("web.open_telegram")}</a>'
        f'<p class="muted">{t("web.telegram_hint")}</p>'
        if deep_link
        else ""
    )
    body = (
        f"<h1>{escape(place)}</h1><p>{t('web.landing_intro')}</p>{telegram}"
        f'<a class="big alt" href="{escape(form_url)}">{t("web.open_form")}</a>'
        f'<p><a href="/status">{t("web.status_link")}</a></p>'
    )
    return page(gettext(LANG, "web.landing_title").format(village=village), body)


def message(title_key: str, text_key: str, **params: Any) -> str:
    """A page that only says something (a refusal, an error), with the hotline."""
    return page(
        gettext(LANG, title_key), f"<h1>{t(title_key)}</h1><p>{t(text_key, hotline=HOTLINE, **params)}</p>"
    )


@dataclass
class FormView:
    """What the form shows: the values entered, the problems found, the page's CSRF token."""

    action: str
    village: str
    csrf: str
    cadre: bool = False
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    photo_error: tuple[str, dict[str, Any]] | None = None


def _error(view: FormView, name: str) -> str:
    problem = view.errors.get(name)
    if problem is None:
        return ""
    key, params = problem
    return f'<p class="err" id="err-{name}">{t(key, **params)}</p>'


def _input(
    view: FormView, name: str, label: str, *, kind: str = "text", size: int = 30, extra: str = ""
) -> str:
    current = escape(str(view.values.get(name, "")))
    return (
        f'<label for="{name}">{label}</label>{_error(view, name)}'
        f'<input type="{kind}" id="{name}" name="{name}" value="{current}" maxlength="{size}" {extra}>'
    )


def form(view: FormView) -> str:
    v = view.values
    consent_key = "intake.consent_cadre" if view.cadre else "intake.consent"
    consent = t(consent_key, version=intake.CONSENT_VERSION, hotline=HOTLINE).replace("\n", "<br>")
    checked = " checked" if v.get("consent") == "yes" else ""
    parts = [
        f"<h1>{t('web.form_title', village=view.village)}</h1>",
        f'<p class="muted">{t("web.form_cadre" if view.cadre else "web.form_intro")}</p>',
    ]
    if view.errors or view.photo_error:
        parts.append(f'<p class="err" role="alert">{t("web.form_has_errors")}</p>')
    parts += [
        f'<form method="post" action="{escape(view.action)}" enctype="multipart/form-data">',
        f'<input type="hidden" name="csrf" value="{escape(view.csrf)}">',
        f'<div class="box">{consent}{_error(view, "consent")}'
        f'<label class="opt"><input type="checkbox" name="consent" value="yes"{checked}> '
        f"{t('web.consent_yes')}</label></div>",
        _input(view, "name", t("web.name"), size=30, extra="required"),
    ]
    if not view.cadre:
        declarant = v.get("declarant")
        relation = v.get("relation", "")
        options = "".join(
            f'<option value="{r}"{" selected" if relation == r else ""}>{t(f"relation.{r}")}</option>'
            for r in intake.RELATIONS
        )
        parts.append(
            f"<label>{t('web.declarant')}</label>{_error(view, 'declarant')}"
            f'<label class="opt"><input type="radio" name="declarant" value="self"'
            f"{' checked' if declarant == 'self' else ''}> {t('declarant.self_button')}</label>"
            f'<label class="opt"><input type="radio" name="declarant" value="family"'
            f"{' checked' if declarant == 'family' else ''}> {t('declarant.family_button')}</label>"
            f'<div class="fu"><label for="relation">{t("web.relation")}</label>'
            f'<select id="relation" name="relation">{options}</select>'
            f"{_input(view, 'relation_text', t('web.relation_other'), size=20)}</div>"
        )
    parts += [
        _input(view, "phone", t("web.phone"), kind="tel", size=20, extra='required autocomplete="tel"'),
        _input(view, "id_number", t("web.id_number"), size=18),
        _input(
            view, "household", t("web.household"), kind="number", size=2, extra='min="1" max="30" required'
        ),
        f"<label>{t('web.risks', max=risk_types.MAX_CHOSEN)}</label>{_error(view, 'risks')}",
    ]
    chosen = set(v.get("risks", []))
    for risk in risk_types.risk_types():
        on = " checked" if risk.code in chosen else ""
        parts.append(
            f'<label class="opt"><input type="checkbox" name="risks" value="{risk.code}"{on}> '
            f"{escape(risk.label(LANG))}</label>"
        )
        for question in risk.followups:
            name = f"fu_{risk.code}_{question}"
            label = t(f"followup.{question}", risk={"$risk": risk.code})
            parts.append(f'<div class="fu">{_input(view, name, label, size=200)}</div>')
    description = escape(str(v.get("description", "")))
    photo_problem = ""
    if view.photo_error:
        key, params = view.photo_error
        photo_problem = f'<p class="err" id="err-photos">{t(key, **params)}</p>'
    parts += [
        f'<label for="description">{t("web.description")}</label>{_error(view, "description")}'
        '<textarea id="description" name="description" rows="5" maxlength="1000" required>'
        f"{description}</textarea>",
        f'<label for="photos">{t("web.photos", max=intake.MAX_PHOTOS)}</label>{photo_problem}'
        f'<input type="file" id="photos" name="photos" accept="image/*" multiple>',
        f'<p class="muted">{t("web.photos_hint")}</p>',
        f'<button class="big" type="submit">{t("web.submit")}</button></form>',
    ]
    return page(gettext(LANG, "web.form_title").format(village=view.village), "".join(parts))


def receipt(receipt_number: str, village: str) -> str:
    body = (
        f"<h1>{t('web.submitted_title')}</h1>"
        f'<p>{t("web.receipt_is")}</p><p class="big alt" id="receipt">{escape(receipt_number)}</p>'
        f"<p>{t('web.submitted', village=village, hotline=HOTLINE)}</p>"
        f'<p><a href="/status">{t("web.status_link")}</a></p>'
    )
    return page(gettext(LANG, "web.submitted_title"), body)


def status_form(csrf: str, *, receipt: str = "", not_found: bool = False) -> str:
    problem = (
        f'<p class="err" role="alert">{t("web.status_not_found", hotline=HOTLINE)}</p>' if not_found else ""
    )
    body = (
        f"<h1>{t('web.status_title')}</h1>{problem}"
        '<form method="post" action="/status">'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
        f'<label for="receipt">{t("web.receipt")}</label>'
        '<input type="text" id="receipt" name="receipt" inputmode="numeric" maxlength="20" '
        f'value="{escape(receipt)}" required>'
        f'<label for="phone">{t("web.phone")}</label>'
        '<input type="tel" id="phone" name="phone" maxlength="20" required>'
        f'<button class="big" type="submit">{t("web.status_submit")}</button></form>'
    )
    return page(gettext(LANG, "web.status_title"), body)


def status(rows: list[tuple[str, str]]) -> str:
    """One declaration's details: (label key, value already as text)."""
    items = "".join(f"<dt>{t(label)}</dt><dd>{escape(shown)}</dd>" for label, shown in rows)
    body = (
        f"<h1>{t('web.status_title')}</h1><dl>{items}</dl>"
        f'<p><a href="/status">{t("web.status_again")}</a></p>'
    )
    return page(gettext(LANG, "web.status_title"), body)
