"""The declaration being filled in: every answer, typed, shared by the chat and the web form.

In chat it is the data of the person's intake conversation (JSON, one key an answer, a key absent
until answered); the web form builds one from the form. Either way `submission.submit` takes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from domain import risk_types, validation
from domain.messages import day, money, risk_label, risk_labels, text

CONSENT_VERSION = "2026-11"
MAX_PHOTOS = 5
RELATIONS = ("spouse", "child", "parent", "sibling", "other")


@dataclass(frozen=True)
class Voice:
    """A voice note given as the description: the channel's file reference and its length."""

    ref: str
    duration: int = 0


@dataclass(frozen=True)
class Draft:
    """Every answer of a declaration so far; None (or empty) until answered."""

    # Where: the village (from the QR code, or chosen), and for 代报 the cadre and their villages.
    village_id: int | None = None
    village_name: str | None = None
    township_id: int | None = None
    one_township: bool = False  # the service knows one township: its question is skipped
    filed_by_cadre: int | None = None
    cadre_villages: tuple[int, ...] = ()
    # The answers, in the order they are asked.
    consent_version: str | None = None
    consent_at: str | None = None  # ISO time of the 知情同意
    name: str | None = None
    declarant: str | None = None  # "self" or "family"
    relation: str | None = None  # a RELATIONS code, or the relation typed
    phone: str | None = None
    # Text messages about the case at that phone: the household agreed (ISO time), separately
    # from the 知情同意; `texts_answered` once asked (代报 in chat) or the web form was sent.
    sms_consent_at: str | None = None
    texts_answered: bool = False
    id_answered: bool = False  # the ID number was given or skipped
    id_sealed: str | None = None
    id_fingerprint: str | None = None
    id_masked: str | None = None
    household: int | None = None
    risks: tuple[str, ...] = ()
    risks_done: bool = False
    followups: Mapping[str, Any] = field(default_factory=dict)  # "illness.cost" -> the answer
    description: str | None = None
    voice: Voice | None = None
    description_done: bool = False
    photos: tuple[str, ...] = ()
    photos_done: bool = False
    # The conversation's own bookkeeping.
    history: tuple[str, ...] = ()  # the steps Back returns to ("followup:<key>" for a follow-up)
    editing: bool = False  # one answer is being changed from the summary
    offered: int | None = None  # the open declaration this household was offered to add to
    extra: Mapping[str, Any] = field(default_factory=dict)  # the router's keys ("$start"...)

    def with_(self, **changes: Any) -> Draft:
        """This draft with `changes` (field names) made."""
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The conversation's data: the fields that are set (a key absent until answered)."""
        data: dict[str, Any] = dict(self.extra)
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if value is None or value is False or value == () or (f.name == "followups" and not value):
                continue
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Voice):
                value = {"ref": value.ref, "duration": value.duration}
            elif f.name == "followups":
                value = dict(value)
            elif f.name == "id_fingerprint":
                value = str(value)
            data[f.name] = value
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Draft:
        """The draft a conversation's data holds (keys it does not know are kept in `extra`)."""
        known = {f.name for f in fields(cls)} - {"extra"}
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name not in known:
                continue
            if value is None:
                continue
            if name in ("risks", "photos", "history"):
                value = tuple(str(v) for v in value)
            elif name == "cadre_villages":
                value = tuple(int(v) for v in value)
            elif name == "voice":
                value = Voice(str(value["ref"]), int(value.get("duration") or 0))
            elif name == "followups":
                value = dict(value)
            values[name] = value
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(**values, extra=extra)


def pending_followups(draft: Draft) -> list[str]:
    """Follow-up questions ("illness.cost") the chosen risk types still need answered."""
    pending = []
    for code in draft.risks:
        risk = risk_types.by_code(code)
        for question in risk.followups if risk else ():
            key = f"{code}.{question}"
            if key not in draft.followups:
                pending.append(key)
    return pending


def summary_params(draft: Draft) -> dict[str, Any]:
    """Every answer, ready to show (the ID number masked): the summary, and the cadre's new case."""
    if draft.filed_by_cadre:
        declarant: Any = {"$t": "declarant.cadre"}
    elif draft.declarant == "family":
        declarant = {"$t": "declarant.family", "$with": {"relation": _relation_value(draft)}}
    else:
        declarant = text("declarant.self")
    kinds: dict[str, Callable[[Any], Any]] = {"amount": money, "date": day}
    lines = []
    for code in draft.risks:
        risk = risk_types.by_code(code)
        for question in risk.followups if risk else ():
            answer = draft.followups.get(f"{code}.{question}")
            if answer is None:
                continue
            shown = kinds.get(risk_types.FOLLOWUPS[question], lambda v: v)(answer)
            lines.append({"$t": f"summary.{question}", "$with": {"risk": risk_label(code), "value": shown}})
    voice = draft.voice
    return {
        "village": draft.village_name or "",
        "name": draft.name or "",
        "declarant": declarant,
        "phone": _phone(draft),
        "id_number": draft.id_masked or text("summary.id_none"),
        "household": draft.household if draft.household is not None else "",
        "risks": risk_labels(list(draft.risks)),
        "followups": {"$lines": lines} if lines else "",
        "description": draft.description
        or ({"$t": "summary.voice", "$with": {"seconds": voice.duration or 0}} if voice else ""),
        "photos": len(draft.photos),
    }


def _phone(draft: Draft) -> Any:
    """The phone number as written in China, and that the household agreed to text messages."""
    shown = validation.display_phone(draft.phone) if draft.phone else ""
    if shown and draft.sms_consent_at:
        return {"$t": "summary.phone_texts", "$with": {"phone": shown}}
    return shown


def _relation_value(draft: Draft) -> Any:
    relation = draft.relation or ""
    return text(f"relation.{relation}") if relation in RELATIONS else relation
