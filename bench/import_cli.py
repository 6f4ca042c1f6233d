"""Benchmark ``gridmap import`` as the user runs it, against momepy's tessellation alone (issue #16).

What the user waits for is the whole command in a fresh process: start-up, reading, communities,
the cells stage and writing the project file. The peer is what a GIS analyst would reach for to
get one cell per building: ``momepy.morphological_tessellation`` on the same footprints (read
and projected first, untimed), in its own fresh process, timed alone. The cells stage of gridmap
is also timed alone in a fresh process (buildings per second, wall and CPU), since issue #16 sets
its target as a rate.

Inputs: Suzhou Gusu (8,242 OSM footprints) and six side-by-side copies of it (49,452), both as
GeoJSON in WGS84 like a user's download. On a shared machine the CPU seconds are the steadier
figure; the load average is recorded with them.

Run: ``.venv/bin/python bench/import_cli.py`` (``--runs N``, ``--inputs suzhou tiled-6``).
Writes the ``import`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]  # run as a script as well as with -m

from bench._report import write_section  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "suzhou_gusu_buildings.geojson"
GRIDMAP = Path(sys.executable).with_name("gridmap")
METRIC = 4549

# Each snippet runs in a fresh interpreter and prints {"wall": s, "cpu": s, "n": buildings}.
MOMEPY = """
import json, sys, time, geopandas as gpd, momepy
b = gpd.read_file(sys.argv[1]).to_crs({metric})
b = b[b.geom_type.isin(["Polygon", "MultiPolygon"])].reset_index(drop=True)
w, c = time.perf_counter(), time.process_time()
cells = momepy.morphological_tessellation(b, clip=momepy.buffered_limit(b, 50), segment=2.0,
                                          simplify=False)
print(json.dumps({{"wall": time.perf_counter() - w, "cpu": time.process_time() - c,
                  "n": len(cells)}}))
"""
CELLS = """
import json, sys, time
sys.path.insert(0, {root!r})
from geo.grids import boundaries
from geo.buildings import reading as io
from geo.buildings.communities import assign_communities
b, _ = io.read_buildings(sys.argv[1])
found = assign_communities(b)
b["community"] = found.community
w, c = time.perf_counter(), time.process_time()
cells = boundaries.building_cells(b, communities=found.outlines)
print(json.dumps({{"wall": time.perf_counter() - w, "cpu": time.process_time() - c,
                  "n": len(cells)}}))
"""


def write_inputs(folder: Path, names: list[str]) -> dict[str, Path]:
    """The inputs as GeoJSON files in WGS84: Suzhou as downloaded, ``tiled-K`` as K copies."""
    suzhou = gpd.read_file(DATA).to_crs(METRIC)
    paths = {}
    for name in names:
        copies = int(name.split("-", 1)[1]) if name.startswith("tiled-") else 1
        width = suzhou.total_bounds[2] - suzhou.total_bounds[0] + 100.0
        parts = [suzhou.translate(xoff=i * width) for i in range(copies)]
        frame = gpd.GeoDataFrame(geometry=pd.concat(parts, ignore_index=True), crs=METRIC)
        paths[name] = folder / f"{name}.geojson"
        frame.to_crs(4326).to_file(paths[name], driver="GeoJSON")
    return paths


def time_import(path: Path, folder: Path) -> tuple[float, float]:
    """Wall and CPU seconds of ``gridmap import PATH`` in a fresh process (a new project file)."""
    db = folder / f"import-{time.monotonic_ns()}.gpkg"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [str(GRIDMAP), "import", str(path), "--db", str(db)],
        check=True,
        capture_output=True,
        env={**os.environ, "GRIDMAP_LANG": "en"},
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    db.unlink()
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def time_snippet(code: str, path: Path) -> dict:
    """What a snippet prints about its own timed part, run in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(name: str, path: Path, folder: Path, *, runs: int) -> dict:
    """The medians over ``runs`` of the import, gridmap's cells stage and momepy's tessellation."""
    imports = [time_import(path, folder) for _ in range(runs)]
    cells = [time_snippet(CELLS.format(root=str(ROOT)), path) for _ in range(runs)]
    peer = [time_snippet(MOMEPY.format(metric=METRIC), path) for _ in range(runs)]
    return {
        "name": name,
        "n": cells[0]["n"],
        "import_wall": statistics.median(w for w, _ in imports),
        "import_cpu": statistics.median(c for _, c in imports),
        "cells_wall": statistics.median(c["wall"] for c in cells),
        "cells_cpu": statistics.median(c["cpu"] for c in cells),
        "momepy_wall": statistics.median(p["wall"] for p in peer),
        "momepy_cpu": statistics.median(p["cpu"] for p in peer),
    }


def report(rows: list[dict], *, runs: int, load: tuple[float, float]) -> str:
    lines = [
        "Command: `.venv/bin/python bench/import_cli.py"
        f" --runs {runs}` (medians of {runs}; {os.cpu_count()} cores shared with other jobs,"
        f" load average {load[0]:.1f} before and {load[1]:.1f} after the run).",
        "",
        "`gridmap import FILE --db NEW.gpkg` in a fresh process (start-up included) against"
        " `momepy.morphological_tessellation` alone (segment 2 m, clip: 50 m buffered limit; its"
        " own process, reading untimed), and gridmap's cells stage alone (`building_cells`, in a"
        " fresh process after reading and communities).",
        "",
        "| input | buildings | import wall / CPU (s) | momepy tessellation wall (s)"
        " | import / momepy (wall) | cells stage wall / CPU (s) | cells: buildings/s wall (CPU) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['n']:,} | {r['import_wall']:.1f} / {r['import_cpu']:.1f}"
            f" | {r['momepy_wall']:.1f} | {r['import_wall'] / r['momepy_wall']:.2f}"
            f" | {r['cells_wall']:.1f} / {r['cells_cpu']:.1f}"
            f" | {r['n'] / r['cells_wall']:,.0f} ({r['n'] / r['cells_cpu']:,.0f}) |"
        )
    lines += ["", *targets(rows)]
    return "\n".join(lines)


def targets(rows: list[dict]) -> list[str]:
    """Issue #16's import row: whether its targets are met on Suzhou, and by how much not."""
    suzhou = next((r for r in rows if r["name"] == "suzhou"), None)
    if suzhou is None:
        return []
    rate = suzhou["n"] / suzhou["cells_wall"]
    cpu_rate = suzhou["n"] / suzhou["cells_cpu"]
    return [
        f"- Target cells >= 10,000 buildings/s on 2 cores: {'met' if rate >= 10_000 else 'not met'}"
        f" ({rate:,.0f}/s wall, {cpu_rate:,.0f}/s per CPU second: "
        f"{10_000 / (2 * cpu_rate):.1f}x short even if both cores did nothing else).",
        f"- Target 8,000-building import < 5 s: {'met' if suzhou['import_wall'] < 5 else 'not met'}"
        f" ({suzhou['import_wall']:.1f} s wall, {suzhou['import_cpu']:.1f} s CPU).",
        "- What changed: without community polygons or roads (an import like this one), the"
        " cells come from one Voronoi diagram of the whole district (shrunk footprints sampled"
        " every 2 m, each building's point a site), one grouped coverage union per building and"
        " a clip to the 50 m buffer around all buildings: the limits of the communities are the"
        " unions of their cells, so neighbouring communities share their edges by construction"
        " and neither their own coarse Voronoi (~1.5 s CPU) nor the district-wide coverage clean"
        " (~1.3 s) runs. The clean still runs when GEOS's diagram is not exact (degenerate sites)."
        " The vectorised GEOS steps (shrinking, validity, unions, clips) are cut into one slice per"
        " core on the worker pool; the buffer's union runs beside the diagram. Cells differ from"
        " before only near community borders (median cell unchanged; community areas within"
        " 0.7 %); the grids' labels do not depend on cells. Before this change, measured in the"
        " same hour at load 10-12: cells stage 7.6 s CPU, import 10.3 s CPU (59 s wall).",
        "- Where the rest goes (Suzhou, CPU): the one Voronoi diagram of ~300,000 samples"
        " (~1.5 s, on one core: GEOS cannot split it), the grouped unions (~0.7 s), two coverage"
        " validity checks (~0.3 s each), and start-up (~1-2 s: geopandas, sqlalchemy). 10,000"
        " buildings/s needs the stage under 0.8 s wall: not reachable with one diagram this size;"
        " left: cutting the diagram into tiles whose shared edges are then noded (not tried),"
        " coarser sampling (changes cells).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--inputs", nargs="+", default=["suzhou", "tiled-6"])
    parser.add_argument("--no-write", action="store_true", help="print, do not touch the docs")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_inputs(folder, args.inputs)
        rows = []
        for name, path in paths.items():
            rows.append(measure(name, path, folder, runs=args.runs))
            print(json.dumps(rows[-1]), flush=True)
    text = report(rows, runs=args.runs, load=(load_before, os.getloadavg()[0]))
    print(text)
    if not args.no_write:
        write_section("import", text)


if __name__ == "__main__":
    main()
