"""Benchmark the batch locate a user runs: ``gridmap locate --input 1M.csv --output out.csv``.

The whole command in a fresh process (start-up, loading the kept index, reading, locating and
writing the CSV), against the pipeline a GIS user would script instead, also in a fresh process:
geopandas ``read_csv`` + ``sjoin`` with the buildings and the grids + ``to_csv``, reading the
layers from the same project file. Both run on the same points in the same run, several times;
the medians and their ratio are reported, wall and CPU (the machine's 2 cores are shared, so
CPU seconds are the steadier figure). The first run on a plan builds and keeps its cell tables:
it is timed apart.

Run: ``.venv/bin/python bench/locate_cli.py`` (``--points N``, ``--runs N``). Writes the
``locate_cli`` section of docs/benchmarks.md.
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

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench._report import timed_process, write_section  # noqa: E402

GRIDMAP = Path(sys.executable).with_name("gridmap")
SUZHOU = ROOT.parent / "shared" / "data" / "suzhou_gusu_buildings.geojson"

#: the peer: what a user would script with geopandas, start-up included
PEER = """
import sys
import geopandas as gpd
import pandas as pd

db, source, target = sys.argv[1:4]
buildings = gpd.read_file(db, layer="buildings", columns=["building_id"])
grids = gpd.read_file(db, layer="grids", columns=["grid_code", "community", "worker"])
frame = pd.read_csv(source)
points = gpd.GeoDataFrame(
    frame, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs=4326
).to_crs(buildings.crs)
hit = gpd.sjoin(points, buildings, how="left", predicate="intersects")
hit = hit[~hit.index.duplicated()].drop(columns="index_right")
hit = gpd.sjoin(hit, grids, how="left", predicate="intersects")
hit = hit[~hit.index.duplicated()].drop(columns=["index_right", "geometry"])
hit.to_csv(target, index=False)
"""


def _project(folder: Path) -> Path:
    """The Suzhou footprints imported and partitioned (a published plan) by the CLI."""
    db = folder / "suzhou.gpkg"
    for argv in (["import", str(SUZHOU)], ["partition"]):
        subprocess.run([str(GRIDMAP), *argv, "--db", str(db)], check=True, capture_output=True)
    return db


def _points(db: Path, path: Path, n: int) -> None:
    """``n`` uniform random points over the district's box, with an id and a note column."""
    from geo.storage.store import open_store

    west, south, east, north = open_store(db).read_layer("grids").to_crs(4326).total_bounds
    rng = np.random.default_rng(16)
    pd.DataFrame(
        {
            "id": [f"P{i:07d}" for i in range(n)],
            "lon": np.round(rng.uniform(west, east, n), 6),
            "lat": np.round(rng.uniform(south, north, n), 6),
            "note": rng.choice(["巡查", "12345 热线", "井盖缺失, 北侧"], n),
        }
    ).to_csv(path, index=False)


def _run(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one fresh process (English messages)."""
    return timed_process(argv, env={**os.environ, "GRIDMAP_LANG": "en"})


def _verdict(ratio: float) -> str:
    if ratio >= 3:
        return f"met ({ratio:.1f}x in CPU time)."
    return f"not met: {ratio:.1f}x in CPU time, {3 / ratio:.1f}x short."


def _medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gridmap-locate-cli-"))
    db = _project(work)
    source = work / "points.csv"
    _points(db, source, args.points)
    ours = [str(GRIDMAP), "locate", "--input", str(source), "--output", str(work / "ours.csv")]
    ours += ["--db", str(db)]
    peer = [sys.executable, "-c", PEER, str(db), str(source), str(work / "peer.csv")]
    first = _run(ours)  # builds and keeps the plan's cell tables
    gridmap, geopandas = [], []
    for _ in range(args.runs):  # alternated, so both meet the same load
        gridmap.append(_run(ours))
        geopandas.append(_run(peer))
    (ours_wall, ours_cpu), (peer_wall, peer_cpu) = _medians(gridmap), _medians(geopandas)
    load = os.getloadavg()
    lines = [
        f"Command: `python bench/locate_cli.py --points {args.points} --runs {args.runs}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{platform.python_version()})",
        "",
        f"Suzhou footprints imported and partitioned by the CLI; {args.points:,} uniform random "
        "points over the district (`id`, `lon`, `lat`, `note`). Each run a fresh process, start-up "
        f"included; median of {args.runs}, the two alternated.",
        "",
        "| what runs | wall s | CPU s | gridmap faster (wall) | (CPU) |",
        "|---|---:|---:|---:|---:|",
        f"| `gridmap locate --input points.csv --output out.csv` | {ours_wall:.2f} | "
        f"{ours_cpu:.2f} | {peer_wall / ours_wall:.1f}x | {peer_cpu / ours_cpu:.1f}x |",
        f"| geopandas `read_csv` + `sjoin` (buildings, grids) + `to_csv` | {peer_wall:.2f} | "
        f"{peer_cpu:.2f} | | |",
        f"| the plan's first `gridmap locate --input` (builds and keeps the cell tables) | "
        f"{first[0]:.2f} | {first[1]:.2f} | | |",
        "",
        "- gridmap also gives every point the nearest grid and its distance when it is in none, "
        "the distance to the nearest building, a status and the reason a coordinate is refused; "
        "the peer only joins containment.",
        f"- Load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on 2 cores shared with other "
        "jobs when the run ended: wall times are inflated by it, CPU times much less.",
        f"- Target (issue #16): 3x the peer end to end; {_verdict(peer_cpu / ours_cpu)} Before: "
        "28-39 s (start-up 8 s, the cell tables rebuilt every run 19 s, pandas `to_csv` 13.5 s). "
        "Now the index and its cell tables are loaded from the project file (0.3-0.5 s of the "
        "total), the CSV goes through pyarrow, start-up imports only what locating needs, the "
        "kept tables are packed with zstd, the CSV's column names come from its first megabyte, "
        "and (2026-12-05) each chunk is written on a thread of its own while the next is "
        "located (pyarrow writes without the GIL: 1.87-1.90 s -> 1.65-1.75 s wall, alternated, "
        "the same CPU); the output file is byte-identical. What remains is the work the peer "
        "does not do (the nearest grid and building for every point, about 1.2 s a million), "
        "imports (pandas, sqlalchemy, pyarrow, typer: 0.5-0.7 s of CPU), unpacking the cell "
        "tables (0.1-0.2 s) and projecting the points (0.15 s).",
    ]
    print("\n".join(lines))
    write_section("locate_cli", "\n".join(lines))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
