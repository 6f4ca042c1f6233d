"""Four writers in three streets of one PostGIS database for 60 s, every write accounted for
(issue #18 §5): the driver is tests/writers.py (its docstring says what runs), which the test
runs for 20 s; this script runs it longer and writes the ``concurrency`` section of
docs/benchmarks.md.

Run: ``.venv/bin/python bench/concurrency.py --seconds 60`` (starts its own throw-away cluster).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import pgcluster  # noqa: E402
import writers  # noqa: E402

from bench._report import write_section  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    source = ROOT.parent / "shared" / "data" / "kunming_buildings.geojson"
    source = Path(os.environ.get("GRIDMAP_SHARED_DATA", source.parent)) / source.name
    load = os.getloadavg()
    with pgcluster.throwaway_cluster() as url:
        tally = writers.run(
            pgcluster.fresh_database(url), source, seconds=args.seconds, workers=args.workers
        )
    facts = writers.summary(tally, args.seconds)
    rows = "\n".join(f"| {k} | {v} |" for k, v in facts.items())
    problems = "\n".join(f"- {p}" for p in tally.problems) or "- none"
    write_section(
        "concurrency",
        f"Command: `python bench/concurrency.py --seconds {args.seconds:g} --workers "
        f"{args.workers}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, 2 cores; "
        f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after).\n\n"
        "`gridmap serve --workers 4` on one PostGIS database of three streets (Kunming's "
        "140 footprints in each): the CLI re-imports and re-partitions street A, two planners "
        "race edits on one draft in B in lock-step rounds, cases arrive in C (every tenth id a "
        "repeat), and readers locate in C and list grids in B, all at once. Then the database "
        "is read back: B's revision and history equal the edits answered 200, every "
        "acknowledged case of C is stored once, A has one published plan.\n\n"
        f"| what | figure |\n|---|---:|\n{rows}\n\nProblems found:\n{problems}",
    )
    print(facts)
    if tally.problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
