"""The ID key on the command line: required to run, `keys new`, `keys rotate`, and an export that
survives a row no key opens."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from openpyxl import load_workbook

from bot.cli import main
from bot.crypto import FernetProtector
from domain.export import COLUMNS
from domain.model import NewDeclaration, Role
from storage.db import create_engine, session_factory
from storage.uow import SqlUnitOfWorkFactory
from tests.bot.test_cli import ROOT, env  # noqa: F401 (the fixture)
from tests.support import ROSTER, SHANGHAI

OLD, NEW, LOST = "old-id-key-0123456789", "new-id-key-0123456789", "a-key-nobody-has-any-more"
AT = datetime(2026, 11, 16, 9, 0, tzinfo=SHANGHAI)
EXPORT = ["export", "cases", "--from", "2026-11-01", "--to", "2026-11-30", "-o"]


def seed(folder: Path, *sealed: tuple[str, str]) -> list[str]:
    """Declarations in 李家村 with these (key, ID number); returns their receipts."""

    async def go() -> list[str]:
        engine = create_engine(f"sqlite+aiosqlite:///{folder / 'cli.db'}")
        receipts = []
        try:
            async with SqlUnitOfWorkFactory(session_factory(engine))() as work:
                village = await work.geography.village_by_code("QS01")
                assert village is not None
                for n, (key, id_number) in enumerate(sealed):
                    protector = FernetProtector(key.encode())
                    farmer = await work.persons.add(Role.FARMER)
                    made = await work.declarations.add(
                        NewDeclaration(
                            village_id=village.id, declared_by=farmer.id, head_name="王大山",
                            phone=f"+86139123456{n:02d}", risk_types=("illness",), description="住院",
                            consent_version="2026-11", consent_at=AT, id_sealed=protector.seal(id_number),
                            id_fingerprint=protector.fingerprint(id_number),
                        ),
                        AT,
                    )  # fmt: skip
                    receipts.append(made.receipt)
                await work.commit()
        finally:
            await engine.dispose()
        return receipts

    assert main(["roster", "import", str(ROSTER)]) == 0
    return asyncio.run(go())


def exported(folder: Path) -> dict[str, object]:
    """Export November to a file; the ID-number cell of each receipt."""
    out = folder / "cases.xlsx"
    assert main([*EXPORT, str(out)]) == 0
    sheet = load_workbook(out).active
    assert sheet is not None
    _, *rows = list(sheet.iter_rows(values_only=True))
    receipt, id_number = COLUMNS.index("receipt"), COLUMNS.index("id_number")
    return {str(row[receipt]): row[id_number] for row in rows}


def test_run_with_a_token_but_no_id_key_says_what_to_set(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("ID_ENCRYPTION", "TELEGRAM"))}
    environment.update(
        PYTHONPATH=str(ROOT), TELEGRAM_BOT_TOKEN="1:x", QR_SECRET="cli-test-secret-0123456789",
        TELEGRAM_API_BASE_URL="http://127.0.0.1:9/bot", DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}",
    )  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("ID_ENCRYPTION_KEY is not set") and "keys new" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_keys_new_prints_a_fresh_fernet_key(env: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    assert main(["keys", "new"]) == 0
    printed = capsys.readouterr()
    [key] = printed.out.split()
    Fernet(key.encode())
    assert "ID_ENCRYPTION_KEY" in printed.err and key not in printed.err
    assert main(["keys", "new"]) == 0
    assert capsys.readouterr().out.strip() != key


def test_an_export_shows_a_row_no_key_opens_and_keeps_the_others(
    env: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ID_ENCRYPTION_KEY", NEW)
    monkeypatch.setenv("ID_ENCRYPTION_OLD_KEYS", OLD)
    good, lost, old = seed(
        env, (NEW, "11010519491231002X"), (LOST, "110105194912310037"), (OLD, "110105194912310045")
    )
    cells = exported(env)
    assert cells == {good: "11010519491231002X", lost: "无法解密", old: "110105194912310045"}
    monkeypatch.setenv("DEFAULT_LOCALE", "en")
    assert exported(env)[lost] == "cannot be decrypted"


def test_rotate_reseals_under_the_new_key_then_the_old_key_can_go(
    env: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first, second = seed(env, (OLD, "11010519491231002X"), (OLD, "110105194912310037"))
    monkeypatch.setenv("ID_ENCRYPTION_KEY", NEW)
    monkeypatch.setenv("ID_ENCRYPTION_OLD_KEYS", OLD)
    capsys.readouterr()
    assert main(["keys", "rotate", "--batch", "1"]) == 0
    out = capsys.readouterr().out
    assert "申报：2 条已改用当前密钥重新加密，0 条本来就是当前密钥，0 条无法解密" in out
    assert main(["keys", "rotate"]) == 0
    assert "申报：0 条已改用当前密钥重新加密，2 条本来就是当前密钥，0 条无法解密" in capsys.readouterr().out
    monkeypatch.delenv("ID_ENCRYPTION_OLD_KEYS")
    assert exported(env) == {first: "11010519491231002X", second: "110105194912310037"}
    for secret in (OLD, NEW, "11010519491231002X"):
        assert secret not in out


def test_rotate_names_the_receipts_no_key_opens_and_fails(
    env: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good, lost = seed(env, (OLD, "11010519491231002X"), (LOST, "110105194912310037"))
    monkeypatch.setenv("ID_ENCRYPTION_KEY", NEW)
    monkeypatch.setenv("ID_ENCRYPTION_OLD_KEYS", OLD)
    capsys.readouterr()
    assert main(["keys", "rotate"]) == 1
    printed = capsys.readouterr()
    assert "申报：1 条已改用当前密钥重新加密，0 条本来就是当前密钥，1 条无法解密" in printed.out
    assert lost in printed.err and good not in printed.err and "ID_ENCRYPTION_OLD_KEYS" in printed.err
