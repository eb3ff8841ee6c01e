"""The public pages: each a template under bot/templates/public/ (extending base.html: the
language switch, the hotline, the one style sheet), filled in the page's language.

Every text comes from the catalogs (the web namespace, and the chat's own texts where the
question is the same), in the language `bot.templating.language_of` chooses; everything a
person typed is escaped by the template engine. No inline style or script: the CSP allows none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot import templating
from domain import intake, risk_types, validation
from domain.model import HOTLINE

# The catalog keys the templates name. The catalog checker (python -m locales.catalog) finds keys
# in Python only, so they are named here too; tests/web/test_templates.py keeps the two lists equal.
IN_TEMPLATES = (
    "declarant.family_button",
    "declarant.self_button",
    "intake.consent",
    "intake.consent_cadre",
    "language.en",
    "language.zh",
    "web.consent_yes",
    "web.objection_by_cadre",
    "web.objection_intro",
    "web.objection_reason",
    "web.objection_submit",
    "web.objection_title",
    "web.declarant",
    "web.description",
    "web.form_cadre",
    "web.form_has_errors",
    "web.form_intro",
    "web.form_title",
    "web.hotline",
    "web.household",
    "web.id_number",
    "web.landing_intro",
    "web.landing_title",
    "web.name",
    "web.open_form",
    "web.open_telegram",
    "web.phone",
    "web.photos",
    "web.photos_hint",
    "web.place",
    "web.receipt",
    "web.receipt_is",
    "web.relation",
    "web.relation_other",
    "web.risks",
    "web.status_again",
    "web.status_link",
    "web.status_not_found",
    "web.status_submit",
    "web.status_title",
    "web.sms_consent",
    "web.sms_consent_cadre",
    "web.submit",
    "web.submitted",
    "web.submitted_title",
    "web.telegram_hint",
    "web.verdict_reason",
)


def page(request: web.Request, name: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
    """The public page `name` (public/NAME.html) in the request's language."""
    return templating.render(request, f"public/{name}.html", {"hotline": HOTLINE, **context}, status=status)


def message(request: web.Request, status: int, title_key: str, text_key: str, **params: Any) -> web.Response:
    """A page that only says something (a refusal, an error), with the hotline."""
    context = {"title_key": title_key, "text_key": text_key, "params": params}
    return page(request, "message", context, status=status)


def landing(
    request: web.Request, village: str, township: str, deep_link: str | None, form_url: str
) -> web.Response:
    """A printed code's page: the village, Telegram (when the bot is known) or the web form."""
    context = {"village": village, "township": township, "deep_link": deep_link, "form_url": form_url}
    return page(request, "landing", context)


@dataclass
class FormView:
    """What the form shows: the values entered, the problems found, the page's CSRF token."""

    action: str
    village: str
    csrf: str
    cadre: bool = False
    texts: bool = False  # text messages can be sent: the form asks for their consent
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    photo_error: tuple[str, dict[str, Any]] | None = None


def form(request: web.Request, view: FormView, *, status: int = 200) -> web.Response:
    """The declaration form, with what was entered and what is wrong with it."""
    context = {
        "action": view.action,
        "village": view.village,
        "csrf": view.csrf,
        "cadre": view.cadre,
        "texts": view.texts,
        "values": view.values,
        "errors": view.errors,
        "photo_error": view.photo_error,
        "chosen": set(view.values.get("risks", [])),
        "consent_version": intake.CONSENT_VERSION,
        "relations": intake.RELATIONS,
        "risks": risk_types.risk_types(),
        "max_risks": risk_types.MAX_CHOSEN,
        "max_photos": intake.MAX_PHOTOS,
    }
    return page(request, "form", context, status=status)


def receipt(request: web.Request, receipt_number: str, village: str) -> web.Response:
    return page(request, "receipt", {"receipt": receipt_number, "village": village})


def status_form(
    request: web.Request, csrf: str, *, receipt: str = "", not_found: bool = False
) -> web.Response:
    return page(request, "status_form", {"csrf": csrf, "receipt": receipt, "not_found": not_found})


@dataclass
class ObjectionForm:
    """The status page's objection form: its CSRF token, the signed receipt and phone it is for,
    what was typed and what is wrong with it."""

    csrf: str
    token: str
    typed: str = ""
    problem: tuple[str, dict[str, Any]] | None = None
    limit: int = validation.MAX_REASON


@dataclass
class StatusView:
    """One declaration's details: (label key, value: text, or a parameter shown in the page's
    language, as a message's: {"$date": ...}, {"$t": key}, {"$risks": [...]}); the reason of 不纳入;
    the objection ("cadre": the household objects through its cadre) and its form when offered."""

    rows: list[tuple[str, Any]]
    reason: str | None = None
    objection: str | None = None
    form: ObjectionForm | None = None


def status(request: web.Request, view: StatusView, *, status: int = 200) -> web.Response:
    context = {"rows": view.rows, "reason": view.reason, "objection": view.objection, "form": view.form}
    return page(request, "status", context, status=status)
