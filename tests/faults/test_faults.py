"""The service survives SIGKILL at random moments and random Bot API failures (short profile).

The real service runs as `python -m bot run` in a child process (tests/faults/harness.py); a few
farmers declare while it is killed 4 times and restarted at once, and then while a fifth of the
sends and edits fail with a 5xx, a tenth with a 429 and one in twenty time out after being
executed. The full profile is benchmarks/faults.py. Each test fails with the whole report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.faults.harness import Profile, Report, run_profile

DATABASES = ["sqlite", "postgresql"]


def verdict(report: Report) -> str:
    return "\n".join([*report.problems(), json.dumps(report.as_dict(), ensure_ascii=False)])


@pytest.mark.parametrize("database", DATABASES)
async def test_sigkill_loses_and_doubles_nothing(database: str, tmp_path: Path) -> None:
    report = await run_profile(Profile(farmers=6, kills=4, seed=11), tmp_path, database)
    assert report.kills >= 3, verdict(report)  # the kills came while farmers were declaring
    assert report.restarts == report.kills, verdict(report)
    assert not report.problems(), verdict(report)
    assert report.finished == report.farmers == report.declarations_stored, verdict(report)
    assert report.cadre_messages > 0, verdict(report)


@pytest.mark.parametrize("database", DATABASES)
async def test_random_bot_api_failures_deliver_everything_once(database: str, tmp_path: Path) -> None:
    report = await run_profile(
        # Patience covers one timed-out call: the client waits 5 s for it before trying again.
        Profile(farmers=4, kills=0, chaos=(0.2, 0.1, 0.05), seed=12, spread=2.0, patience=12.0),
        tmp_path,
        database,
    )
    assert sum(report.faulted.values()) > 0, verdict(report)  # chaos did fail calls
    assert not report.problems(), verdict(report)
    assert report.finished == report.farmers == report.declarations_stored, verdict(report)
