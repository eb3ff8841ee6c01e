"""The sandbox's own secrets: private from the moment they exist, and never production's ID key."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.crypto import FernetProtector
from bot.sandbox.runtime import id_key_file, sandbox_settings, secret_file
from bot.settings import load
from botapi import BotAPIEmulator

PRODUCTION_KEY = "production-id-key-0123456789"
PRODUCTION_OLD = "production-old-id-key-0123456789"


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most machines have, under which a plain write makes a file world-readable."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def no_chmod(monkeypatch: pytest.MonkeyPatch) -> None:
    """No narrowing after the fact: the mode a file is created with is the mode it keeps."""
    monkeypatch.setattr(Path, "chmod", lambda self, mode, **kwargs: None)
    monkeypatch.setattr(os, "chmod", lambda path, mode, **kwargs: None)
    monkeypatch.setattr(os, "fchmod", lambda fd, mode: None)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


SECRET_FILES = [(secret_file, "sandbox-qr-secret"), (id_key_file, "sandbox-id-key")]


@pytest.mark.parametrize(("make", "name"), SECRET_FILES)
def test_each_secret_file_is_created_readable_by_its_owner_only(
    tmp_path: Path, usual_umask: None, no_chmod: None, make: Callable[[Path], bytes], name: str
) -> None:
    var = tmp_path / "var"
    first = make(var)
    assert mode(var / name) == 0o600
    assert len(first) >= 32 and make(var) == first  # made once, then kept


def test_an_old_secret_file_left_readable_by_others_is_narrowed(tmp_path: Path) -> None:
    path = tmp_path / "sandbox-qr-secret"
    path.write_text("an-older-sandbox-secret-0123456789", "ascii")
    path.chmod(0o644)
    assert secret_file(tmp_path) == b"an-older-sandbox-secret-0123456789"
    assert mode(path) == 0o600


def test_the_sandbox_never_carries_the_production_id_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ID_ENCRYPTION_KEY", PRODUCTION_KEY)
    monkeypatch.setenv("ID_ENCRYPTION_OLD_KEYS", PRODUCTION_OLD)
    production = load(_env_file=None)
    assert production.id_key() == PRODUCTION_KEY.encode()  # the environment did reach the settings
    var = tmp_path / "var"
    chosen = sandbox_settings(production, BotAPIEmulator(), var, web_port=0)
    assert chosen.id_key() not in (PRODUCTION_KEY.encode(), PRODUCTION_OLD.encode())
    assert chosen.id_old_keys() == ()
    assert chosen.id_key() == (var / "sandbox-id-key").read_bytes().strip()
    assert mode(var / "sandbox-id-key") == 0o600
    assert chosen.id_key() != chosen.secret()
    # What the sandbox seals, production's key cannot open, and the sandbox's key stays across starts.
    again = sandbox_settings(production, BotAPIEmulator(), var, web_port=0)
    sealed = FernetProtector(chosen.id_key()).seal("11010519491231002X")
    assert FernetProtector(again.id_key()).unseal(sealed) == "11010519491231002X"
    assert PRODUCTION_KEY not in repr(chosen)
