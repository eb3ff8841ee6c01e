"""Protection of ID numbers at rest: Fernet encryption and a keyed fingerprint to find repeats.

Keys rotate. ID_ENCRYPTION_KEY seals; the keys in ID_ENCRYPTION_OLD_KEYS still open what they
sealed (cryptography's MultiFernet). Each key has its own fingerprint key, derived from it, and a
fingerprint names the value under every key, so repeats keep matching until `python -m bot keys
rotate` has re-sealed the stored values and recomputed their fingerprints under the current key;
then the old keys can go, and with them everything an old key could reveal.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from domain.ports import Fingerprint, Unreadable

if TYPE_CHECKING:
    from bot.settings import Settings


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)


def new_key() -> str:
    """A fresh random key for ID_ENCRYPTION_KEY (a Fernet key: 32 random bytes, URL-safe base64)."""
    return Fernet.generate_key().decode("ascii")


class _Key:
    """One secret's two keys, each derived for its purpose."""

    def __init__(self, secret: bytes) -> None:
        self.fernet = Fernet(base64.urlsafe_b64encode(_derive(secret, b"fanghui id-number encryption")))
        self._mac_key = _derive(secret, b"fanghui id-number fingerprint")

    def fingerprint(self, value: str) -> str:
        return hmac.new(self._mac_key, value.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Resealed:
    """A stored value brought under the current key."""

    token: str  # sealed under the current key (the same token when it already was)
    fingerprint: str  # under the current key
    was_current: bool


class FernetProtector:
    """Implements domain.ports.Protector: seals under `key`, opens under `key` and `old_keys`."""

    def __init__(self, key: bytes, old_keys: Sequence[bytes] = ()) -> None:
        self._current = _Key(key)
        self._old = [_Key(old) for old in dict.fromkeys(old_keys) if old != key]
        # MultiFernet encrypts with the first and tries each in turn to decrypt.
        self._fernet = MultiFernet([self._current.fernet, *(old.fernet for old in self._old)])

    def seal(self, value: str) -> str:
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def unseal(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise Unreadable from None

    def fingerprint(self, value: str) -> Fingerprint:
        return Fingerprint(
            self._current.fingerprint(value), tuple(old.fingerprint(value) for old in self._old)
        )

    def reseal(self, token: str) -> Resealed:
        """`token` sealed under the current key, with its value's current fingerprint; `Unreadable`
        when no key opens it."""
        try:
            raw = token.encode("ascii")
            try:
                value, was_current = self._current.fernet.decrypt(raw), True
            except InvalidToken:
                value, was_current = self._fernet.decrypt(raw), False
            text = value.decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise Unreadable from None
        sealed = token if was_current else self._current.fernet.encrypt(value).decode("ascii")
        return Resealed(sealed, self._current.fingerprint(text), was_current)


def protector_for(settings: Settings) -> FernetProtector:
    """The protector of ID_ENCRYPTION_KEY and ID_ENCRYPTION_OLD_KEYS, or a ConfigError."""
    return FernetProtector(settings.id_key(), settings.id_old_keys())
