"""Benchmark what a user waits for before any work starts: the CLI's start-up, in a fresh process.

Each command runs as the user types it (a new process, imports included), several times; the
median counts. The peers are tools GIS people script every day and that start at once: ``git``
and, where GDAL's utilities are installed, ``ogrinfo``.

Run: ``.venv/bin/python bench/startup.py`` (``--runs N``). Writes the ``startup`` section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]  # run as a script (make bench) as well as with -m

from bench._report import write_section  # noqa: E402

GRIDMAP = Path(sys.executable).with_name("gridmap")


def _time(argv: list[str], *, runs: int, cwd: Path, db: Path) -> float:
    """The median wall time of ``argv`` in a fresh process (seconds); raises if it fails."""
    env = {**os.environ, "GRIDMAP_DB": str(db)}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _demo(folder: Path) -> Path:
    subprocess.run([str(GRIDMAP), "demo", "--out", str(folder)], check=True, capture_output=True)
    return folder / "gridmap.gpkg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gridmap-startup-"))
    db = _demo(work / "demo")
    rows = [
        ("gridmap --help", [str(GRIDMAP), "--help"], 0.3),
        ("gridmap --version", [str(GRIDMAP), "--version"], 0.3),
        ("gridmap partition --help", [str(GRIDMAP), "partition", "--help"], 0.3),
        ("gridmap locate LON LAT", [str(GRIDMAP), "locate", "120.78", "31.66"], 1.0),
        ("git --version (peer)", ["git", "--version"], None),
    ]
    if shutil.which("ogrinfo"):
        rows.append(("ogrinfo --version (peer)", ["ogrinfo", "--version"], None))
    lines = [
        f"Command: `python bench/startup.py --runs {args.runs}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.python_version()})",
        "",
        "| what the user runs | median wall s | target s | met |",
        "|---|---|---|---|",
    ]
    for label, argv, target in rows:
        seconds = _time(argv, runs=args.runs, cwd=work, db=db)
        met = "" if target is None else ("yes" if seconds < target else "no")
        lines.append(f"| `{label}` | {seconds:.3f} | {target or ''} | {met} |")
    load = os.getloadavg()[0]
    lines += [
        "",
        f"- Each a fresh process, {args.runs} runs, median; load average {load:.1f} on 2 cores.",
    ]
    print("\n".join(lines))
    write_section("startup", "\n".join(lines))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
