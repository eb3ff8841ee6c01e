"""Templates as data: which template the provider registered for each kind of text, checked at start.

Chinese SMS providers send only templates registered (and approved) beforehand, so a township
writes a TOML file (SMS_TEMPLATES) naming, for each message kind of `domain.sms.SmsKind`, the code
of its registered template, which of our parameters it takes and its text as registered:

    provider = "aliyun"                       # or "tencent": whose template codes these are

    [received]
    code = "SMS_480000001"                    # Tencent: the template id, "1234567"
    params = ["receipt", "state"]             # our parameters (domain.sms.Param), in order
    names = { receipt = "no" }                # Aliyun only: a variable named otherwise than ours
    text = "您的防返贫监测申报（受理号${receipt}）${state}。查询进展：https://example.gov.cn/status"

Aliyun fills `${name}` by name (our parameter's name unless `names` says otherwise); Tencent fills
`{1}`, `{2}`... by position, in the order of `params`. The signature is not in this file (it is a
setting, SMS_SIGN_NAME). Both providers want a link as fixed text in the template rather than a
parameter, so the status page's address is best written in the text (`link` exists for a provider
that allows it).

`load_templates` refuses, in one line, a file that would fail later: a kind the service sends
with no template, an unknown kind or parameter, a parameter the messages of a kind do not carry,
the other provider's codes or placeholders, a text that does not match its parameters, a text that
could exceed the provider's length with every parameter at its longest. `Templates.render` turns a
`domain.sms.SmsText` into the template code and the provider's parameters, each within the
provider's per-parameter length and never an ID number.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from babel.dates import format_skeleton

from domain import personal_data
from domain.sms import CADRE_KINDS, KINDS, Param, SmsKind, SmsText
from locales import FALLBACK, catalog_for
from locales.render import BABEL_LOCALES, value

PROVIDERS = ("aliyun", "tencent")
# What a template code looks like with each provider (Aliyun SMS_123456789, Tencent 1234567).
CODES = {"aliyun": re.compile(r"SMS_\d{1,20}"), "tencent": re.compile(r"\d{1,20}")}
ALIYUN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,24}")  # a variable's name in an Aliyun template
ALIYUN_PLACEHOLDER = re.compile(r"\$\{([^{}]*)\}")
TENCENT_PLACEHOLDER = re.compile(r"\{([0-9]+)\}")
TABLE_KEYS = frozenset({"code", "params", "names", "text"})

# The longest value of each parameter, for the length check at start.
RECEIPT_CHARS = 14  # YYYYMMDD and a 6-digit serial (domain.cases.moves.receipt_number)
VILLAGE_CHARS = 100  # villages.name (storage); clipped to the provider's per-parameter limit anyway
SIGN_CHARS = 12  # the longest signature the providers register, when the setting is not given
SIGN = "【{}】"  # how the provider puts the signature before the text (it counts in the length)
CLIP = "…"
# A value never carries a long number: an ID number has 15 or 18 digits, a receipt 14.
LONG_DIGITS = re.compile(r"\d{15,}")
# Ours (storage's receipt_number): the day YYYYMMDD, then the case's number, 6 digits or more.
RECEIPT = re.compile(r"20\d\d(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])\d{6,12}")
STATUS_PATH = "/status?r="

# What the messages of each kind carry besides the receipt and the link (every message of KINDS
# names its receipt; the link is built from it), by catalog key: see where each is queued
# (cases/submission.py, cases/visit.py, deadlines.py). The state comes from KINDS.
CARRIED: dict[str, frozenset[Param]] = {
    "intake.submitted": frozenset({Param.VILLAGE}),
    "farmer.visited": frozenset({Param.DATE}),
    "case.new": frozenset({Param.VILLAGE}),
    "deadline.reminder": frozenset({Param.DATE, Param.VILLAGE}),
    "deadline.warning": frozenset({Param.DATE, Param.VILLAGE}),
}


def available() -> dict[SmsKind, frozenset[Param]]:
    """The parameters every message of a kind can give its template."""
    out: dict[SmsKind, frozenset[Param]] = {}
    for key, (kind, state) in KINDS.items():
        params = {Param.RECEIPT, Param.LINK} | CARRIED.get(key, frozenset())
        if state is not None:
            params.add(Param.STATE)
        out[kind] = out[kind] & params if kind in out else frozenset(params)
    return out


AVAILABLE = available()


class TemplateError(Exception):
    """The template file is missing, unreadable or wrong; the message is one line saying what to mend."""


Fail = Callable[[str], TemplateError]


class RenderError(ValueError):
    """A text cannot be given to its template (a value missing, too long or unsafe): not sent."""


class Limits(Protocol):
    """What `load_templates` asks of the provider (bot.sms.port.Provider has it)."""

    @property
    def name(self) -> str: ...
    @property
    def max_param_chars(self) -> int: ...
    @property
    def max_text_chars(self) -> int: ...


@dataclass(frozen=True)
class Template:
    """One registered template: its code, our parameters in order and the provider's names for them."""

    kind: SmsKind
    code: str
    params: tuple[Param, ...]
    names: tuple[str, ...]  # the provider's parameter names (Aliyun's variables; Tencent "1", "2"...)
    text: str  # as registered, with the provider's placeholders

    def fill(self, values: Mapping[str, str], provider: str) -> str:
        """The text with `values` (by the provider's names) in place of its placeholders."""
        if provider == "aliyun":
            return ALIYUN_PLACEHOLDER.sub(lambda m: values.get(m[1], m[0]), self.text)
        return TENCENT_PLACEHOLDER.sub(lambda m: values.get(m[1], m[0]), self.text)


@dataclass(frozen=True)
class Templates:
    provider: str  # "aliyun" | "tencent"
    by_kind: Mapping[SmsKind, Template]
    max_param_chars: int
    source: str = ""  # the file, for messages

    @property
    def needs_link(self) -> bool:
        """Whether a template takes the status page's link (then PUBLIC_URL is required)."""
        return any(Param.LINK in t.params for t in self.by_kind.values())

    def by_code(self, code: str) -> Template | None:
        return next((t for t in self.by_kind.values() if t.code == code), None)

    def shown(self, code: str, values: Mapping[str, str], sign_name: str) -> str:
        """A text as the phone shows it: the signature and the filled template (sandbox, emulator)."""
        template = self.by_code(code)
        if template is None:
            raise RenderError(f"no template with the code {code}")
        return SIGN.format(sign_name) + template.fill(values, self.provider)

    def render(
        self, text: SmsText, *, public_url: str | None, locale_catalog: str = FALLBACK
    ) -> tuple[str, dict[str, str]]:
        """The template code and the provider's parameters for `text` (in the template's order),
        each at most `max_param_chars`; RenderError when one cannot be given safely."""
        template = self.by_kind.get(text.kind)
        if template is None:
            raise RenderError(f"no SMS template for {text.kind.value}")
        catalog = catalog_for(locale_catalog)
        out: dict[str, str] = {}
        for param, name in zip(template.params, template.names, strict=True):
            rendered = self._value(param, text, public_url, catalog)
            if param is not Param.RECEIPT:  # our own number (date + sequence), 15 digits past 999,999 cases
                _refuse_unsafe(param, rendered)
            if len(rendered) > self.max_param_chars:  # only the receipt or the link can get here
                raise RenderError(
                    f"{text.kind.value}: the {param.value} is {len(rendered)} characters, "
                    f"over the provider's {self.max_param_chars}"
                )
            out[name] = rendered
        return template.code, out

    def _value(self, param: Param, text: SmsText, public_url: str | None, catalog: str) -> str:
        raw = text.values.get(param)
        if param is Param.LINK:
            receipt = text.values.get(Param.RECEIPT)
            if not public_url or not isinstance(receipt, str) or not receipt:
                raise RenderError(f"{text.kind.value}: the link needs PUBLIC_URL and the receipt")
            return link(public_url, receipt)
        if not isinstance(raw, str) or not raw:
            raise RenderError(f"{text.kind.value}: the text carries no {param.value}")
        if param is Param.RECEIPT:
            if not RECEIPT.fullmatch(raw):
                raise RenderError(
                    f"{text.kind.value}: not a receipt number; not sent (it could hold an ID number)"
                )
            return raw  # never clipped: a receipt cut short would point at another case
        if param is Param.STATE:
            return clip(value({"$t": raw}, catalog), self.max_param_chars)
        if param is Param.DATE:
            try:
                return short_date(date.fromisoformat(raw[:10]), catalog)
            except ValueError:
                raise RenderError(f"{text.kind.value}: not a date: {raw!r}") from None
        return clip(raw, self.max_param_chars)  # the village


def link(public_url: str, receipt: str) -> str:
    return f"{public_url.rstrip('/')}{STATUS_PATH}{quote(receipt, safe='')}"


def short_date(day: date, catalog: str) -> str:
    """A day without its year in `catalog`'s language: 12月9日, Dec 9."""
    return format_skeleton("MMMd", day, locale=BABEL_LOCALES.get(catalog, catalog))


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending with … when cut."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[: limit - 1] + CLIP if limit > 1 else text[:limit]


def _refuse_unsafe(param: Param, text: str) -> None:
    """A parameter never carries an ID number or any number of 15 digits or more."""
    normalised = unicodedata.normalize("NFKC", text)
    if LONG_DIGITS.search(normalised) or any(
        found.kind is personal_data.Kind.ID_NUMBER for found in personal_data.find(text)
    ):
        raise RenderError(f"the {param.value} looks like it holds an ID number: not sent")


def load_templates(
    path: str | Path,
    provider: Limits,
    *,
    cadres: bool,
    sign_name: str | None = None,
    public_url: str | None = None,
    catalog: str = FALLBACK,
) -> Templates:
    """The template file at `path`, checked against the kinds the service sends (every kind; the
    cadres' kinds too when `cadres`), the messages' parameters and `provider`'s limits.

    The length check counts the signature (`sign_name`, or the longest the providers register),
    the link with `public_url` (without it, a link at the per-parameter limit: the wiring must
    refuse `needs_link` without PUBLIC_URL) and the state in `catalog`'s language."""
    path = Path(path)
    where = f"SMS templates file {path}"
    catalog = catalog_for(catalog)

    def fail(problem: str) -> TemplateError:
        return TemplateError(f"{where}: {problem}")

    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise fail(f"cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise fail("not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise fail(f"not TOML: {exc}") from None

    named = data.get("provider")
    if named not in PROVIDERS:
        raise fail(
            f'provider = "aliyun" or "tencent" is needed (whose template codes these are), not {named!r}'
        )
    if named != provider.name:
        raise fail(
            f'provider = "{named}", but the configured provider is {provider.name} '
            "(template codes belong to the provider they were registered with)"
        )
    if "sign_name" in data:
        raise fail("sign_name is a setting (SMS_SIGN_NAME), not part of this file")
    known = {kind.value for kind in SmsKind}
    stray = [key for key, item in data.items() if key != "provider" and not isinstance(item, dict)]
    if stray:
        raise fail(f"unknown setting {', '.join(stray)} (the file holds provider and one table per kind)")
    unknown = [key for key in data if key != "provider" and key not in known]
    if unknown:
        raise fail(
            f"unknown message kind {', '.join(f'[{k}]' for k in unknown)} (kinds: {', '.join(sorted(known))})"
        )
    wanted = [kind for kind in SmsKind if cadres or kind not in CADRE_KINDS]
    missing = [kind.value for kind in wanted if kind.value not in data]
    if missing:
        raise fail(
            f"no template for {', '.join(missing)} "
            "(each message kind needs the code of a template registered with the provider)"
        )

    sign = SIGN_CHARS if sign_name is None else len(sign_name.strip())
    by_kind: dict[SmsKind, Template] = {}
    for kind in SmsKind:
        if kind.value in data:
            template = _template(kind, data[kind.value], named, fail)
            longest = (
                _longest_text(template, provider, public_url, catalog, fail) + len(SIGN.format("")) + sign
            )
            if longest > provider.max_text_chars:
                raise fail(
                    f"[{kind.value}] text can reach {longest} characters with the signature, over "
                    f"{provider.name}'s {provider.max_text_chars} (register a shorter text)"
                )
            by_kind[kind] = template
    return Templates(named, by_kind, provider.max_param_chars, str(path))


def _template(kind: SmsKind, table: dict[str, Any], provider: str, fail: Fail) -> Template:
    at = f"[{kind.value}]"
    extra = sorted(set(table) - TABLE_KEYS)
    if extra:
        raise fail(
            f"{at} unknown key {', '.join(extra)} (a template has code, params, text and, for Aliyun, names)"
        )
    code = table.get("code")
    if isinstance(code, int) and provider == "tencent":
        code = str(code)
    if not isinstance(code, str) or not CODES[provider].fullmatch(code.strip()):
        shape = "SMS_ and digits" if provider == "aliyun" else "digits"
        raise fail(f"{at} code {code!r} is not a {provider} template code ({shape})")
    text = table.get("text")
    if not isinstance(text, str) or not text.strip():
        raise fail(f"{at} text is needed: the template's content as registered")
    if "【" in text or "】" in text:
        raise fail(f"{at} text holds 【】: the provider adds the signature itself")
    raw = table.get("params", [])
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise fail(f'{at} params is a list of parameter names, e.g. ["receipt", "state"]')
    choices = ", ".join(p.value for p in Param)
    params: list[Param] = []
    for name in raw:
        if name not in {p.value for p in Param}:
            raise fail(f"{at} unknown parameter {name!r} (parameters: {choices})")
        param = Param(name)
        if param in params:
            raise fail(f"{at} parameter {name} is listed twice")
        if param not in AVAILABLE[kind]:
            can = ", ".join(p.value for p in Param if p in AVAILABLE[kind])
            raise fail(f"{at} takes {name}, which a {kind.value} message does not carry (it can take {can})")
        params.append(param)
    names = _names(at, params, table.get("names"), provider, fail)
    found = _placeholders(at, text, provider, fail)
    expected = set(names)
    if found != expected:
        raise fail(
            f"{at} text has {_show(provider, sorted(found)) or 'no placeholder'} but params give "
            f"{_show(provider, names) or 'none'} "
            "(the text must be the template as registered, one placeholder a parameter)"
        )
    return Template(kind, code.strip(), tuple(params), tuple(names), text)


def _names(at: str, params: list[Param], mapping: Any, provider: str, fail: Fail) -> list[str]:
    if provider == "tencent":
        if mapping is not None:
            raise fail(
                f"{at} names is for Aliyun; a Tencent template takes its parameters in order "
                "({1}, {2}...)"
            )
        return [str(i) for i in range(1, len(params) + 1)]
    mapping = mapping or {}
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise fail(f'{at} names maps our parameter to the template\'s variable, e.g. {{ receipt = "no" }}')
    strange = [k for k in mapping if k not in {p.value for p in params}]
    if strange:
        raise fail(f"{at} names renames {', '.join(strange)}, which params does not list")
    names = [mapping.get(p.value, p.value) for p in params]
    bad = [n for n in names if not ALIYUN_NAME.fullmatch(n)]
    if bad:
        raise fail(f"{at} {bad[0]!r} is not an Aliyun variable name (a letter, then letters, digits or _)")
    if len(set(names)) != len(names):
        raise fail(f"{at} two parameters have the same variable name")
    return names


def _placeholders(at: str, text: str, provider: str, fail: Fail) -> set[str]:
    pattern = ALIYUN_PLACEHOLDER if provider == "aliyun" else TENCENT_PLACEHOLDER
    found = set(pattern.findall(text))
    rest = pattern.sub("", text)
    if "{" in rest or "}" in rest:
        mine, other = ("${name}", "Tencent's {1}") if provider == "aliyun" else ("{1}", "Aliyun's ${name}")
        raise fail(f"{at} text has a brace that is not a {provider} placeholder ({mine}, not {other})")
    return found


def _show(provider: str, names: Iterable[str]) -> str:
    """Placeholders as the provider writes them: ${receipt}, ${state}; {1}, {2}."""
    if provider == "aliyun":
        return ", ".join("${" + n + "}" for n in names)
    return ", ".join("{" + n + "}" for n in sorted(names, key=int))


def _longest_text(
    template: Template, provider: Limits, public_url: str | None, catalog: str, fail: Fail
) -> int:
    """The text's length with every parameter at its longest possible value."""
    limit = provider.max_param_chars
    at = f"[{template.kind.value}]"
    longest: dict[str, str] = {}
    for param, name in zip(template.params, template.names, strict=True):
        if param is Param.RECEIPT:
            size = RECEIPT_CHARS
            if size > limit:
                raise fail(
                    f"{at} the receipt is {size} characters; "
                    f"{provider.name} takes at most {limit} a parameter"
                )
        elif param is Param.LINK:
            size = len(link(public_url, "9" * RECEIPT_CHARS)) if public_url else limit
            if size > limit:
                raise fail(
                    f"{at} the link {public_url}{STATUS_PATH}… is {size} characters; {provider.name} takes "
                    f"at most {limit} a parameter (write the status page's address in the text instead)"
                )
        elif param is Param.STATE:
            states = [state for kind, state in KINDS.values() if kind is template.kind and state]
            size = min(limit, max(len(value({"$t": s}, catalog)) for s in states))
        elif param is Param.DATE:
            size = max(len(short_date(date(2024, month, 28), catalog)) for month in range(1, 13))
            if size > limit:
                raise fail(
                    f"{at} a date is {size} characters; {provider.name} takes at most {limit} a parameter"
                )
        else:
            size = min(limit, VILLAGE_CHARS)
        longest[name] = "x" * size
    return len(template.fill(longest, provider.name))
