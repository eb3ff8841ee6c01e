"""The sandbox as `make run` starts it without a token, in the test's event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.sandbox.runtime import Sandbox
from bot.settings import load


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    settings = load(web_port=0, _env_file=None)
    async with Sandbox(settings, var_dir=tmp_path / "var", poll_timeout=1) as running:
        yield running
