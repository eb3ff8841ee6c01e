"""`python -m bot qr scans`: the scans of the printed codes, per village and batch."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.cli import main
from domain.web_intake import record_scan
from storage.db import create_engine, session_factory
from storage.uow import SqlUnitOfWorkFactory
from tests.support import ROSTER, FakeClock


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    for name in ("TELEGRAM_BOT_TOKEN", "QR_SECRET", "BOT_USERNAME", "DATABASE_URL", "DEFAULT_LOCALE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("QR_SECRET", "cli-test-secret-0123456789")
    monkeypatch.setenv("ID_ENCRYPTION_KEY", "cli-test-id-key-0123456789")
    return tmp_path


async def scan(path: Path, *scans: tuple[str, str | None, str]) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    clock = FakeClock()
    try:
        for code, batch, channel in scans:
            async with SqlUnitOfWorkFactory(session_factory(engine))() as uow:
                await record_scan(uow, clock, code, batch, channel)
                await uow.commit()
            clock.advance(days=1)
    finally:
        await engine.dispose()


def test_qr_scans_prints_web_and_telegram_per_village_and_batch(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["roster", "import", str(ROSTER)]) == 0
    assert main(["qr", "scans"]) == 0
    assert "还没有扫码记录" in capsys.readouterr().out
    asyncio.run(
        scan(
            env / "cli.db",
            ("QS01", "B1", "web"),
            ("QS01", "B1", "web"),  # the next day: another row, the same total
            ("QS01", "B1", "telegram"),
            ("QS01", None, "telegram"),
            ("QS02", "B1", "web"),
            ("ZZ99", "B1", "web"),  # no such village: not counted
        )
    )
    assert main(["qr", "scans"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("村代码")
    assert lines[1:] == [
        "QS01\t李家村\t-\t0\t1\t1",
        "QS01\t李家村\tB1\t2\t1\t3",
        "QS02\t王家村\tB1\t1\t0\t1",
    ]
