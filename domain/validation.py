"""Validators for what people type. Each returns the clean value or raises `Invalid`."""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import date, timedelta

import phonenumbers

MAX_DESCRIPTION = 1000
MAX_NAME = 30
MAX_REASON = 500


class Invalid(ValueError):
    """The input was refused; `key` is the catalog key of the polite explanation."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


def phone(raw: str) -> str:
    """A mainland China phone number (mobile or fixed line) in E.164 form."""
    cleaned = "".join(ch for ch in unicodedata.normalize("NFKC", raw) if not ch.isspace())
    cleaned = cleaned.replace("-", "").replace("(", "").replace(")", "")
    if not cleaned or len(cleaned) > 20:
        raise Invalid("validate.phone")
    try:
        number = phonenumbers.parse(cleaned, "CN")
    except phonenumbers.NumberParseException as exc:
        raise Invalid("validate.phone") from exc
    if number.country_code != 86 or not phonenumbers.is_valid_number(number):
        raise Invalid("validate.phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_mobile(e164: str) -> bool:
    """Whether a stored number (E.164) is a mainland mobile: the only kind a text message reaches."""
    try:
        number = phonenumbers.parse(e164, "CN")
    except phonenumbers.NumberParseException:
        return False
    kinds = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
    return number.country_code == 86 and phonenumbers.number_type(number) in kinds


def display_phone(e164: str) -> str:
    """A stored number as people write it in China (no +86)."""
    number = phonenumbers.parse(e164, "CN")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL).replace(" ", "")


def _letters(value: str) -> int:
    return sum(1 for ch in value if unicodedata.category(ch).startswith("L"))


def person_name(raw: str) -> str:
    """A person's name: letters (Chinese or other), a middle dot, spaces; at most 30 characters."""
    value = " ".join(unicodedata.normalize("NFKC", raw).split())
    if not value or len(value) > MAX_NAME:
        raise Invalid("validate.name", limit=MAX_NAME)
    allowed = {"·", "•", "-", " ", "'", "."}
    if _letters(value) == 0 or any(
        not (unicodedata.category(ch).startswith("L") or ch in allowed) for ch in value
    ):
        raise Invalid("validate.name", limit=MAX_NAME)
    return value.replace("•", "·")


def free_text(raw: str, *, limit: int, key: str, minimum: int = 2) -> str:
    """Free text of at least `minimum` meaningful characters and at most `limit`."""
    value = raw.strip()
    if len(value) > limit:
        raise Invalid(key, limit=limit, length=len(value))
    meaningful = sum(1 for ch in value if unicodedata.category(ch)[0] in "LN")
    if meaningful < minimum:
        raise Invalid(key, limit=limit, length=len(value))
    return value


def description(raw: str) -> str:
    return free_text(raw, limit=MAX_DESCRIPTION, key="validate.description")


def reason(raw: str) -> str:
    return free_text(raw, limit=MAX_REASON, key="validate.reason")


def id_number(raw: str) -> str:
    """A mainland resident ID number (18 characters, checksum valid), upper-case X."""
    from stdnum.cn import ric
    from stdnum.exceptions import ValidationError

    value = "".join(unicodedata.normalize("NFKC", raw).split()).upper()
    if len(value) != 18:
        raise Invalid("validate.id_number")
    try:
        return str(ric.validate(value))
    except ValidationError as exc:
        raise Invalid("validate.id_number") from exc


def mask_id(value: str) -> str:
    """First 4 and last 4 characters, the rest hidden."""
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


CHINESE_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
CHINESE_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10_000}


def _chinese_number(text: str) -> int | None:
    """三万五千 -> 35000, 十二 -> 12; None when it is not a Chinese numeral."""
    if not text or any(ch not in CHINESE_DIGITS and ch not in CHINESE_UNITS for ch in text):
        return None
    total, section, digit = 0, 0, None
    for ch in text:
        if ch in CHINESE_DIGITS:
            digit = CHINESE_DIGITS[ch]
            continue
        unit = CHINESE_UNITS[ch]
        if unit == 10_000:
            total += (section + (digit or 0)) * unit
            section, digit = 0, None
        else:
            section += (1 if digit is None else digit) * unit
            digit = None
    return total + section + (digit or 0)


def _number_with_units(raw: str) -> float | None:
    """ "3万", "3.5万元", "30,000", "三万", "２万" -> a number; None when there is none."""
    text = unicodedata.normalize("NFKC", raw).strip().replace(",", "").replace("，", "").replace(" ", "")
    for suffix in ("人民币", "大约", "大概", "左右", "块钱", "口人", "元", "块", "多", "口", "人", "约"):
        text = text.replace(suffix, "")
    if not text:
        return None
    multiplier = 1.0
    if text.endswith("万") and not _chinese_number(text):
        multiplier, text = 10_000.0, text[:-1]
    elif text.endswith("千") and not _chinese_number(text):
        multiplier, text = 1_000.0, text[:-1]
    try:
        number = float(text) * multiplier
    except ValueError:
        pass
    else:
        # float() also reads "nan" and "inf", which are no amount anybody writes.
        return number if math.isfinite(number) else None
    chinese = _chinese_number(text)
    return float(chinese) * multiplier if chinese is not None else None


MAX_AMOUNT = 100_000_000


def amount(raw: str) -> int:
    """An amount of money in yuan, as farmers write it: 30000, 3万, 3.5万元, 三万."""
    value = _number_with_units(raw)
    if value is None or value < 0 or value > MAX_AMOUNT:
        raise Invalid("validate.amount")
    return round(value)


MAX_HOUSEHOLD = 30


def household_size(raw: str) -> int:
    """How many people live in the household: 1 to 30 ("4", "4口", "四口人")."""
    value = _number_with_units(raw)
    if value is None or value != int(value) or not 1 <= value <= MAX_HOUSEHOLD:
        raise Invalid("validate.household", limit=MAX_HOUSEHOLD)
    return int(value)


def past_date(raw: str, today: date) -> date:
    """A day not in the future: 2026-07-10, 2026年7月10日, 7月10日, 7/10, 今天, 昨天, 前天."""
    text = unicodedata.normalize("NFKC", raw).strip().replace(" ", "")
    relative = {"今天": 0, "今日": 0, "昨天": 1, "昨日": 1, "前天": 2, "today": 0, "yesterday": 1}
    if text.lower() in relative:
        return today - timedelta(days=relative[text.lower()])
    match = re.fullmatch(r"(?:(\d{4})[-/.年])?(\d{1,2})[-/.月](\d{1,2})[日号]?", text)
    if not match:
        raise Invalid("validate.date")
    year = int(match[1]) if match[1] else today.year
    try:
        found = date(year, int(match[2]), int(match[3]))
    except ValueError:
        raise Invalid("validate.date") from None
    if not match[1] and found > today:
        try:
            found = found.replace(year=year - 1)  # "12月30日" said in January means last year
        except ValueError:  # "2月29日" said early in a leap year: last year had none
            raise Invalid("validate.date") from None
    if found > today or found < today - timedelta(days=3 * 366):
        raise Invalid("validate.date")
    return found


def years_after(day: date, years: int) -> date:
    """The same day `years` later (28 February for 29 February); date.max rather than past it."""
    if day.year + years > date.max.year:
        return date.max
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February into a common year
        return day.replace(year=day.year + years, day=28)


def short_text(raw: str, *, limit: int = 20) -> str:
    """A few words, such as a relationship typed instead of chosen."""
    return free_text(raw, limit=limit, key="validate.short_text", minimum=1)
