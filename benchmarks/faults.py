"""The fault suite's full profile: the real service (`python -m bot run`, a child process) killed
with SIGKILL ~50 times at random (seeded) moments while 200 farmers declare and their receipts and
cadre messages go out, restarted at once each time; then the same farmers against random Bot API
failures (emu.chaos(0.2, 0.1, 0.05)) and no kills. See tests/faults/harness.py for what is counted.

    .venv/bin/python benchmarks/faults.py [--farmers 200] [--kills 50] [--seed 1]
                                          [--database sqlite|postgresql] [--skip-chaos]
                                          [--skip-kills]

PostgreSQL needs TEST_DATABASE_URL (a fresh schema is made and dropped). The last line printed is
one JSON object: {"kills": {...report...}, "chaos": {...report...}, "problems": [...]}; the exit
status is 1 when a check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.faults.harness import Profile, run_profile


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--farmers", type=int, default=200)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--skip-chaos", action="store_true", help="only the kills")
    parser.add_argument("--skip-kills", action="store_true", help="only the Bot API failures")
    args = parser.parse_args()
    # The child's uptime between kills averages 7 s; the farmers' arrivals spread over the time
    # the kills take, so every kill comes while some are declaring.
    uptime = (3.0, 11.0)
    spread = args.kills * (sum(uptime) / 2 + 2.5) * 0.8
    kills = Profile(
        farmers=args.farmers,
        kills=args.kills,
        seed=args.seed,
        spread=spread,
        uptime=uptime,
        deadline=600.0,
    )
    out: dict[str, object] = {}
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="faults-") as tmp:
        if not args.skip_kills:
            report = asyncio.run(run_profile(kills, Path(tmp) / "kills", args.database))
            out["kills"] = report.as_dict()
            problems += [f"kills: {p}" for p in report.problems()]
            print("kills:", json.dumps(report.as_dict(), ensure_ascii=False), file=sys.stderr)
        if not args.skip_chaos:
            chaos = Profile(
                farmers=args.farmers,
                kills=0,
                chaos=(0.2, 0.1, 0.05),
                seed=args.seed,
                # About 8 farmers at once: with the retries, within the 30 calls a second.
                spread=args.farmers * 1.2,
                patience=12.0,
                deadline=600.0,
            )
            report = asyncio.run(run_profile(chaos, Path(tmp) / "chaos", args.database))
            out["chaos"] = report.as_dict()
            problems += [f"chaos: {p}" for p in report.problems()]
    out["problems"] = problems
    print(json.dumps(out, ensure_ascii=False))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
