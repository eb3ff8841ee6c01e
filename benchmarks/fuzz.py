"""The fuzz tests' full profile: 10,000 examples, and one JSON line saying what they found.

    .venv/bin/python benchmarks/fuzz.py [--examples 10000] [-k EXPRESSION]

Runs tests/fuzz with pytest in this process (FUZZ_EXAMPLES=--examples; 10,000 is the profile
fuzz-full) on SQLite, and PostgreSQL too when TEST_DATABASE_URL is set. Pytest's own report goes to
stderr; the last line printed is one JSON object: examples (run, including Hypothesis shrinking a
failure), exceptions (distinct failures, by type and the line of our code that raised), seconds,
examples and exceptions by kind, the failures with one example each, failed tests, and how many
different messages were queued (how deep the fuzzing got). Exits 1 when anything failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class FailedTests:
    """A pytest plugin that keeps the ids of the tests that failed."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.failed:
            self.failed.append(f"{report.nodeid} ({report.when})")


def main(examples: int, keyword: str | None) -> tuple[dict[str, object], int]:
    import pytest

    os.environ["FUZZ_EXAMPLES"] = str(examples)
    plugin = FailedTests()
    args = [str(ROOT / "tests" / "fuzz"), "-q", "-p", "no:cacheprovider", f"--rootdir={ROOT}"]
    if keyword:
        args += ["-k", keyword]
    started = time.monotonic()
    with contextlib.redirect_stdout(sys.stderr):
        code = pytest.main(args, plugins=[plugin])
    seconds = time.monotonic() - started
    from tests.fuzz.world import STATS  # the module pytest ran, with what it counted

    result: dict[str, object] = {
        "benchmark": "fuzz",
        "examples": sum(STATS.examples.values()),
        "exceptions": len(STATS.failures),
        "seconds": round(seconds, 1),
        "examples_by_kind": dict(sorted(STATS.examples.items())),
        "exceptions_by_kind": dict(sorted(STATS.failures_by_kind.items())),
        "failures": {where: STATS.samples.get(where, "") for where in sorted(STATS.failures)},
        "failed_tests": plugin.failed,
        "templates_queued": len(STATS.templates),
        "toasts": len(STATS.toasts),
        "pytest_exit": int(code),
    }
    return result, int(code)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("-k", dest="keyword", default=None, help="only the fuzz tests matching (pytest -k)")
    options = parser.parse_args()
    result, code = main(options.examples, options.keyword)
    print(json.dumps(result, ensure_ascii=False))
    sys.exit(1 if code != 0 or result["exceptions"] or result["failed_tests"] else 0)
