"""Validators for what people type. Each returns the clean value or raises `Invalid`."""

from __future__ import annotations

import unicodedata

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
