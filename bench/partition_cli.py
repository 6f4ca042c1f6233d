"""Benchmark ``gridmap partition`` as a user runs it, against k-means-constrained's labelling.

The in-process engine is fast (bench/partition.py); a user meets the whole command: a fresh
process, its start-up, reading the project, the adjacency graph, the partition, codes, grid
polygons, writing the plan and publishing it. This times that command on a synthetic town of
36,000 buildings in 30 communities (1,200 each, as issue #16 measured it) and, in the same run,
k-means-constrained (``n_init=1``) labelling the same buildings into as many grids per
community as gridmap made: the peer's labelling alone, without reading or writing anything.

Usage::

    .venv/bin/python -m bench.partition_cli                 # builds the town (the import is slow)
    .venv/bin/python -m bench.partition_cli --keep /tmp/town  # keeps/reuses the imported project

Writes the ``partition_cli`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from bench._report import timed_process, write_section
from bench.partition import run_kmeans_constrained
from geo.storage.store import open_store
from geo.usecases import district as project

ROOT = Path(__file__).resolve().parents[1]
COMMUNITIES, PER_COMMUNITY = 30, 1_200
#: seconds one gridmap partition may take before the benchmark gives up
TIMEOUT_S = 600


def town(*, communities: int = COMMUNITIES, per: int = PER_COMMUNITY, seed: int = 0):
    """``communities`` blocks of ``per`` jittered 12 x 8 m houses on a 20 m lattice (40 x 40 sites,
    a quarter left empty), each block rotated, 100 m of open ground between blocks."""
    rng = np.random.default_rng(seed)
    sites, spacing = 40, 20.0
    lattice = np.stack(np.meshgrid(np.arange(sites), np.arange(sites)), axis=-1).reshape(-1, 2)
    lattice = lattice * spacing
    columns = int(np.ceil(np.sqrt(communities)))
    xs, ys, names = [], [], []
    for block in range(communities):
        picked = np.sort(rng.choice(len(lattice), size=per, replace=False))
        points = lattice[picked] + rng.normal(0, 2.0, (per, 2))
        angle = rng.uniform(0, np.pi / 6)
        turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        offset = np.array([block % columns, block // columns]) * (sites * spacing + 100)
        points = points @ turn + offset + 500_000
        xs.append(points[:, 0])
        ys.append(points[:, 1])
        names.append(np.full(per, f"社区{block:02d}"))
    x, y, name = map(np.concatenate, (xs, ys, names))
    return gpd.GeoDataFrame(
        {"building_id": np.char.add("b", np.arange(len(x)).astype(str)), "community": name},
        geometry=shapely.box(x - 6, y - 4, x + 6, y + 4),
        crs=32651,
    )


def imported_town(folder: Path) -> Path:
    """The town imported into a project file in ``folder`` (reused when already there)."""
    db = folder / "town.gpkg"
    if db.exists():
        return db
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "town_buildings.gpkg"
    town().to_file(source)
    partial = folder / "town.partial.gpkg"
    partial.unlink(missing_ok=True)
    store = open_store(partial, create=True)
    project.import_buildings(
        store, source, options=project.ReadOptions(community_field="community")
    )
    store.engine.dispose()
    partial.rename(db)
    return db


def run_command(db: Path, work: Path) -> tuple[float, float]:
    """(wall s, CPU s) of ``gridmap partition`` in a fresh process on a copy of ``db``."""
    copy = work / "run.gpkg"
    shutil.copyfile(db, copy)
    command = [sys.executable, "-m", "api", "partition", "--db", str(copy)]
    return timed_process(command, cwd=ROOT, timeout=TIMEOUT_S)


def grids_per_community(db: Path) -> pd.Series:
    """How many grids gridmap made in each community (the published plan)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT community, count(*) FROM grids GROUP BY community").fetchall()
    return pd.Series(dict(rows))


def run_peer(db: Path, grids: pd.Series) -> tuple[float, float]:
    """(wall s, CPU s) of k-means-constrained labelling the project's buildings."""
    buildings = open_store(db).read_layer("buildings", columns=["community"])
    start, cpu = time.perf_counter(), time.process_time()
    run_kmeans_constrained(buildings, grids, n_init=1)
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="folder keeping the imported town between runs")
    parser.add_argument("--runs", type=int, default=3, help="gridmap partition runs (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db = imported_town(args.keep or work)
        runs = [run_command(db, work) for _ in range(args.runs)]
        grids = grids_per_community(work / "run.gpkg")
        peer = run_peer(db, grids)
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] for r in runs)
    load = os.getloadavg()[0]
    print(f"gridmap partition {wall:.2f} s wall {cpu:.2f} s CPU; peer {peer[0]:.1f} s")
    command = "`.venv/bin/python -m bench.partition_cli" + (" --keep DIR`" if args.keep else "`")
    write_section("partition_cli", report(command, runs, wall, cpu, peer, int(grids.sum()), load))


def report(command, runs, wall, cpu, peer, n_grids, load) -> str:
    each = ", ".join(f"{r[0]:.2f}" for r in runs)
    ratio_wall, ratio_cpu = peer[0] / wall, peer[1] / cpu
    met = "met" if ratio_wall >= 10 else f"not met ({ratio_wall:.1f}x of 10x)"
    return "\n".join(
        [
            f"Command: {command} ({platform.machine()}, Python {platform.python_version()}, "
            f"2 cores shared with other jobs: load average {load:.1f} at the end of the run).",
            "",
            f"A synthetic town of {COMMUNITIES * PER_COMMUNITY:,} buildings in {COMMUNITIES} "
            f"communities of {PER_COMMUNITY:,} (`bench.partition_cli.town`), imported once. "
            "gridmap: `gridmap partition --db COPY` in a fresh process, start-up, reading the "
            "project, graph, partition, grid report, codes, grid polygons, writing and "
            "publishing the plan (the locate index kept), median of "
            f"{len(runs)} runs ({each} s). Peer: k-means-constrained `n_init=1` labelling the "
            "same buildings' centroids into as many grids per community as gridmap made, "
            "in-process, its labelling alone (no reading, no writing, no polygons).",
            "",
            "| what | grids | wall s | CPU s | peer / gridmap |",
            "|---|---:|---:|---:|---:|",
            f"| `gridmap partition` (whole command) | {n_grids:,} | {wall:.2f} | {cpu:.2f} | |",
            f"| k-means-constrained n_init=1 (labelling only) | {n_grids:,} | {peer[0]:.1f} | "
            f"{peer[1]:.1f} | {ratio_wall:.1f}x wall, {ratio_cpu:.1f}x CPU |",
            "",
            f"Issue #16's target, the whole command at least 10x faster than the peer's "
            f"labelling: {met}. The issue measured 13.8 s against the peer's 60 s (4.4x) on a "
            f"busier machine; here the peer's labelling takes {peer[0]:.1f} s "
            f"({peer[1]:.1f} s of CPU: its solver uses both cores), so 10x needs the whole "
            f"command under {peer[0] / 10:.1f} s, and its start-up alone (imports of geopandas, "
            "numba, scipy, sqlalchemy, pyproj) takes about 0.8-1.2 s of CPU. The command's own "
            "CPU went from 6.5 s to 4.2 s in an earlier pass (store reads as plain tuples, one "
            "sort to group buildings by grid, assignments through one prepared statement, "
            "centroids once), then down by another 0.6-0.9 s (the code before and after, "
            "alternated, two runs each at load 10.7: 6.1-6.2 s against 5.0-5.5 s of CPU): "
            "publishing keeps the locate index of the frames the partition holds instead of "
            "reading back the two layers it has just written (0.25 s), the index's WGS84 box "
            "comes from its vertices (the same transformer on the same coordinates, without "
            "rebuilding 8,000 polygons in degrees: 0.15 s), and kept indexes are packed with zstd "
            "instead of zlib (0.15 s). Left as they are, in files other helpers own: start-up, "
            "reading the buildings and cells (0.5 s), the partition itself (0.5 s), the grid "
            "polygons (one GEOS coverage union per grid, 0.4 s), writing the plan (0.5 s) and "
            "publishing's copy of the grids layer, which reads back the grids just written "
            "(0.2 s).",
        ]
    )


if __name__ == "__main__":
    main()
