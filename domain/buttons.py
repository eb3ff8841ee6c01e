"""Every inline button, as a small typed class with a short prefix (after aiogram's CallbackData).

A button only *names* an object: `pack()` writes its prefix and fields as Telegram's callback data
(at most 64 bytes) and `parse()` reads them back, checking the prefix, the number of fields, their
types and bounds. Whether the person who pressed it may act on what it names is decided by the use
case from the database, every time; nothing here is trusted beyond a lookup key.

    Acknowledge(task=12).pack()   -> "ack:12"
    parse("ack:12")               -> Acknowledge(task=12)
    parse("ack:1" + "0" * 30)     -> ButtonError (out of bounds)
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, fields
from datetime import date
from typing import Annotated, Any, ClassVar, Literal, Self, get_args, get_origin, get_type_hints

from domain.model import Audience, Verdict

MAX_BYTES = 64  # Telegram's limit on callback data
MAX_ID = 2**31 - 1  # the largest key a PostgreSQL integer column holds
SEPARATOR = ":"
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)
_DIGITS = re.compile(r"0|[1-9][0-9]{0,9}")  # ASCII only: int() would also take "٣" or " 3"
_PREFIX = re.compile(r"[a-z]{1,12}")


class ButtonError(ValueError):
    """Callback data that is not one of our buttons, or whose fields are out of bounds."""


@dataclass(frozen=True)
class Range:
    """The bounds of an integer field (both included)."""

    low: int
    high: int


@dataclass(frozen=True)
class Pattern:
    """What a text field may hold, as a regular expression matched whole."""

    regex: str


Id = Annotated[int, Range(1, MAX_ID)]
Code = Annotated[str, Pattern(r"[a-z][a-z_]{0,23}")]  # a risk type, a relation, an answer field

REGISTRY: dict[str, type[Button]] = {}


class Button:
    """A button's data. Subclasses are frozen dataclasses declared with a unique `prefix`."""

    prefix: ClassVar[str]
    label: ClassVar[str | None]  # the catalog key shown when the use case gives no label
    _spec: ClassVar[tuple[tuple[str, Any], ...] | None]

    def __init_subclass__(cls, *, prefix: str, label: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not _PREFIX.fullmatch(prefix) or prefix in REGISTRY:
            raise TypeError(f"button prefix {prefix!r} is malformed or taken")
        cls.prefix, cls.label, cls._spec = prefix, label, None
        REGISTRY[prefix] = cls

    @classmethod
    def spec(cls) -> tuple[tuple[str, Any], ...]:
        """The fields in order, each with its annotated type."""
        if cls._spec is None:
            hints = get_type_hints(cls, include_extras=True)
            cls._spec = tuple((f.name, hints[f.name]) for f in fields(cls))  # type: ignore[arg-type]
        return cls._spec

    def pack(self) -> str:
        """The callback data; a value out of bounds or data over 64 bytes is a bug, raised here."""
        parts = [self.prefix]
        for name, kind in self.spec():
            raw = _encode(getattr(self, name))
            _decode(kind, raw)  # the same checks parse() will make
            parts.append(raw)
        data = SEPARATOR.join(parts)
        if len(data.encode()) > MAX_BYTES:
            raise ValueError(f"{self.prefix}: callback data over {MAX_BYTES} bytes")
        return data

    @classmethod
    def unpack(cls, data: str) -> Self:
        """This button read back from its data; ButtonError when it is not one."""
        button = parse(data)
        if not isinstance(button, cls):
            raise ButtonError("another kind of button")
        return button


def parse(data: object) -> Button:
    """The button that `data` packs; ButtonError for anything else (never another exception)."""
    if not isinstance(data, str) or len(data.encode("utf-8", "replace")) > MAX_BYTES:
        raise ButtonError("not callback data")
    prefix, *parts = data.split(SEPARATOR)
    cls = REGISTRY.get(prefix)
    if cls is None:
        raise ButtonError("unknown prefix")
    spec = cls.spec()
    if len(parts) != len(spec):
        raise ButtonError("wrong number of fields")
    values = {name: _decode(kind, raw) for (name, kind), raw in zip(spec, parts, strict=True)}
    return cls(**values)


def _encode(value: object) -> str:
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, date):
        return value.strftime("%Y%m%d")
    if isinstance(value, bool):
        raise ValueError("buttons carry no booleans")
    return str(value)


def _decode(kind: Any, raw: str) -> Any:
    """One field's value, checked against its type and bounds."""
    base, bounds = kind, None
    if get_origin(kind) is Annotated:
        base, bounds = get_args(kind)[0], get_args(kind)[1]
    if get_origin(base) is Literal:
        if raw not in get_args(base):
            raise ButtonError("not one of the choices")
        return raw
    if isinstance(base, type) and issubclass(base, enum.Enum):
        try:
            return base(raw)
        except ValueError:
            raise ButtonError("not one of the choices") from None
    if base is int:
        if not _DIGITS.fullmatch(raw):
            raise ButtonError("not a number")
        number = int(raw)
        if not isinstance(bounds, Range) or not bounds.low <= number <= bounds.high:
            raise ButtonError("number out of bounds")
        return number
    if base is date:
        if not re.fullmatch(r"[0-9]{8}", raw):
            raise ButtonError("not a date")
        try:
            day = date(int(raw[:4]), int(raw[4:6]), int(raw[6:]))
        except ValueError:
            raise ButtonError("not a date") from None
        if not FIRST_DAY <= day <= LAST_DAY:
            raise ButtonError("date out of bounds")
        return day
    if base is str:
        if not isinstance(bounds, Pattern) or not re.fullmatch(bounds.regex, raw):
            raise ButtonError("text out of bounds")
        return raw
    raise TypeError(f"a button field of type {kind!r} is not supported")


# --- the declaration (intake) ----------------------------------------------------------------------
# `conv` is the conversation the button was offered in; it must be the presser's open one.


@dataclass(frozen=True)
class Consent(Button, prefix="consent"):
    conv: Id
    answer: Literal["yes", "no"]


@dataclass(frozen=True)
class TextsConsent(Button, prefix="smsok"):
    """代报: the household agreed (or not) to hear of its case by text message."""

    conv: Id
    answer: Literal["yes", "no"]


@dataclass(frozen=True)
class ChooseTownship(Button, prefix="town"):
    conv: Id
    township: Id


@dataclass(frozen=True)
class ChooseVillage(Button, prefix="vil"):
    conv: Id
    village: Id


@dataclass(frozen=True)
class ChooseDeclarant(Button, prefix="decl"):
    conv: Id
    who: Literal["self", "family"]


@dataclass(frozen=True)
class ChooseRelation(Button, prefix="rel"):
    conv: Id
    relation: Code


@dataclass(frozen=True)
class SkipId(Button, prefix="skip"):
    conv: Id


@dataclass(frozen=True)
class HouseholdSize(Button, prefix="hh"):
    conv: Id
    size: Annotated[int, Range(1, 6)]


@dataclass(frozen=True)
class ToggleRisk(Button, prefix="risk"):
    conv: Id
    code: Code


@dataclass(frozen=True)
class RisksDone(Button, prefix="risks"):
    conv: Id


@dataclass(frozen=True)
class PhotosDone(Button, prefix="photos"):
    conv: Id


@dataclass(frozen=True)
class Confirm(Button, prefix="confirm", label="action.confirm"):
    conv: Id


@dataclass(frozen=True)
class EditAnswer(Button, prefix="edit"):
    conv: Id
    field: Code


@dataclass(frozen=True)
class AddToExisting(Button, prefix="dupadd", label="action.add_to_existing"):
    """补充到这份申报: the declaration offered in this conversation (stored on it when offered)."""

    conv: Id
    declaration: Id


@dataclass(frozen=True)
class Back(Button, prefix="back", label="action.back"):
    conv: Id


@dataclass(frozen=True)
class Switch(Button, prefix="switch"):
    """Drop the open conversation `conv` for the one waiting on it, or keep it."""

    conv: Id
    answer: Literal["drop", "keep"]


@dataclass(frozen=True)
class Cancel(Button, prefix="cancel", label="action.cancel"):
    """Drop the open conversation: a declaration, a visit, a reason, an objection, adding information."""

    conv: Id


# --- the case after submission ---------------------------------------------------------------------

STEP_ACTIONS = ("visit", "green", "publicize", "close_notice", "approve", "enter", "uphold", "reopen")
StepAction = Literal["visit", "green", "publicize", "close_notice", "approve", "enter", "uphold", "reopen"]


@dataclass(frozen=True)
class Acknowledge(Button, prefix="ack", label="action.ack"):
    task: Id


@dataclass(frozen=True)
class Step(Button, prefix="step"):
    task: Id
    action: StepAction


@dataclass(frozen=True)
class ChooseVerdict(Button, prefix="verdict"):
    task: Id
    verdict: Verdict


@dataclass(frozen=True)
class VisitDay(Button, prefix="vday"):
    conv: Id
    days_ago: Annotated[int, Range(0, 1)]


@dataclass(frozen=True)
class VisitDone(Button, prefix="vdone"):
    conv: Id


@dataclass(frozen=True)
class OfferHandOver(Button, prefix="hand"):
    task: Id


@dataclass(frozen=True)
class HandTo(Button, prefix="handto"):
    task: Id
    colleague: Id


@dataclass(frozen=True)
class Object(Button, prefix="obj"):
    declaration: Id


@dataclass(frozen=True)
class OpenTask(Button, prefix="open"):
    task: Id


# --- the household's own declarations ----------------------------------------------------------------


@dataclass(frozen=True)
class AddInfo(Button, prefix="addinfo"):
    declaration: Id


@dataclass(frozen=True)
class AddDone(Button, prefix="adddone", label="action.add_done"):
    conv: Id


@dataclass(frozen=True)
class Withdraw(Button, prefix="withdraw"):
    declaration: Id


@dataclass(frozen=True)
class WithdrawYes(Button, prefix="withdrawyes"):
    declaration: Id


@dataclass(frozen=True)
class ChooseLanguage(Button, prefix="lang"):
    locale: Literal["zh_Hans", "en"]


# --- notices -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoticeAck(Button, prefix="nack"):
    notice: Id


@dataclass(frozen=True)
class NoticeStatus(Button, prefix="nstat"):
    notice: Id


@dataclass(frozen=True)
class NoticeRemind(Button, prefix="nrem"):
    notice: Id


# A notice being written is its writer's conversation: these buttons name it (`conv`).


@dataclass(frozen=True)
class NoticeSend(Button, prefix="ndsend"):
    conv: Id


@dataclass(frozen=True)
class NoticeAudience(Button, prefix="ndaud"):
    conv: Id
    audience: Audience


@dataclass(frozen=True)
class NoticeVillage(Button, prefix="ndvil"):
    conv: Id
    village: Id


@dataclass(frozen=True)
class NoticeVillagesDone(Button, prefix="ndvild"):
    conv: Id


@dataclass(frozen=True)
class NoticeWhen(Button, prefix="ndwhen"):
    conv: Id
    when: Literal["now", "later"]


# --- campaigns, reports, the problem ledger -----------------------------------------------------------


@dataclass(frozen=True)
class CampaignVillage(Button, prefix="cvil"):
    """A village of the campaign being defined in chat, or *all / *next."""

    conv: Id
    code: Annotated[str, Pattern(r"[A-Za-z0-9]{1,16}|\*all|\*next")]


@dataclass(frozen=True)
class CampaignRhythm(Button, prefix="crhy"):
    conv: Id
    kind: Annotated[str, Pattern(r"[a-z][a-z-]{0,23}")]


@dataclass(frozen=True)
class CampaignDefaultReminders(Button, prefix="crem"):
    conv: Id


@dataclass(frozen=True)
class CampaignConfirm(Button, prefix="ccfm"):
    conv: Id
    answer: Literal["yes", "no"]


@dataclass(frozen=True)
class PhaseDone(Button, prefix="cdone"):
    phase: Id
    village: Id


@dataclass(frozen=True)
class FillReport(Button, prefix="rfill"):
    campaign: Id
    period: date
    village: Id


@dataclass(frozen=True)
class LedgerVillage(Button, prefix="ldvil"):
    conv: Id
    village: Id


@dataclass(frozen=True)
class LedgerClose(Button, prefix="lclose"):
    item: Id
