"""The ID-number key: its own required setting, old keys that still open, fingerprints across keys."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from bot.crypto import FernetProtector, new_key, protector_for
from bot.settings import ConfigError, Settings
from domain.ports import Fingerprint, Unreadable

ID = "11010519491231002X"
OLD, NEW, OTHER = b"old-id-key-0123456789", b"new-id-key-0123456789", b"someone-elses-key-0123"


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, telegram_bot_token="1:T", qr_secret="q" * 20, **values)  # type: ignore[arg-type]


def test_the_id_key_is_its_own_setting_and_required() -> None:
    with pytest.raises(ConfigError, match="ID_ENCRYPTION_KEY is not set") as missing:
        settings().id_key()  # QR_SECRET alone is no longer a key for ID numbers
    assert "\n" not in str(missing.value) and "keys new" in str(missing.value)
    with pytest.raises(ConfigError, match="ID_ENCRYPTION_KEY"):
        settings(id_encryption_key="   ").id_key()
    with pytest.raises(ConfigError, match="shorter than 16"):
        settings(id_encryption_key="short").id_key()
    with pytest.raises(ConfigError, match="must not be QR_SECRET"):
        settings(id_encryption_key="q" * 20).id_key()
    assert settings(id_encryption_key=NEW.decode()).id_key() == NEW
    with pytest.raises(ConfigError, match="ID_ENCRYPTION_KEY is not set"):
        protector_for(settings())


def test_old_keys_are_a_comma_separated_list_and_never_echoed() -> None:
    chosen = settings(
        id_encryption_key=NEW.decode(), id_encryption_old_keys=f" {OLD.decode()} ,, {OTHER.decode()}"
    )
    assert chosen.id_old_keys() == (OLD, OTHER)
    assert settings(id_encryption_key=NEW.decode()).id_old_keys() == ()
    assert OLD.decode() not in repr(chosen) and OLD.decode() not in str(chosen.model_dump())
    with pytest.raises(ConfigError, match="key 2 is shorter") as short:
        settings(
            id_encryption_key=NEW.decode(), id_encryption_old_keys=f"{OLD.decode()},tiny-secret"
        ).id_old_keys()
    assert "tiny-secret" not in str(short.value)


def test_keys_new_makes_a_fernet_key_that_serves_as_id_encryption_key() -> None:
    key = new_key()
    Fernet(key.encode())  # a valid Fernet key: 32 random bytes, URL-safe base64
    assert key != new_key()
    protector = protector_for(settings(id_encryption_key=key))
    assert protector.unseal(protector.seal(ID)) == ID


def test_old_keys_open_what_they_sealed_and_new_seals_use_the_current_key() -> None:
    before = FernetProtector(OLD).seal(ID)
    rotated = FernetProtector(NEW, [OLD])
    assert rotated.unseal(before) == ID
    fresh = rotated.seal(ID)
    assert FernetProtector(NEW).unseal(fresh) == ID  # readable without the old key
    with pytest.raises(Unreadable):
        FernetProtector(OLD).unseal(fresh)


@pytest.mark.parametrize("token", [FernetProtector(OTHER).seal(ID), "not a token", "密文", ""])
def test_a_value_no_key_opens_is_unreadable_not_a_crypto_error(token: str) -> None:
    with pytest.raises(Unreadable):
        FernetProtector(NEW, [OLD]).unseal(token)
    with pytest.raises(Unreadable):
        FernetProtector(NEW, [OLD]).reseal(token)


def test_a_fingerprint_names_the_value_under_every_key() -> None:
    under_old = FernetProtector(OLD).fingerprint(ID)
    under_new = FernetProtector(NEW).fingerprint(ID)
    assert under_old != under_new  # each key has its own fingerprint key
    both = FernetProtector(NEW, [OLD]).fingerprint(ID)
    assert isinstance(both, Fingerprint) and both == under_new
    assert both.variants() == (under_new, under_old)
    assert FernetProtector(NEW, [OLD]).fingerprint("110105194912310037") not in (under_old, under_new)


def test_reseal_brings_a_value_under_the_current_key() -> None:
    protector = FernetProtector(NEW, [OLD])
    old = protector.reseal(FernetProtector(OLD).seal(ID))
    assert not old.was_current and FernetProtector(NEW).unseal(old.token) == ID
    assert old.fingerprint == FernetProtector(NEW).fingerprint(ID)
    token = protector.seal(ID)
    current = protector.reseal(token)
    assert current.was_current and current.token == token
