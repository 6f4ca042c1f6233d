"""Benchmark: cells, grid polygons and codes on Suzhou's footprints (8,242) and a 6x tiling (~49,000).

Run: ``.venv/bin/python bench/boundaries.py`` (writes the "boundaries" section of docs/benchmarks.md).
Communities are 500 m squares; grids are runs of 4-5 buildings along the Hilbert curve.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._report import write_section  # noqa: E402
from geo.grids import boundaries, codes  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "suzhou_gusu_buildings.geojson"


def tiled(buildings: gpd.GeoDataFrame, copies: int) -> gpd.GeoDataFrame:
    """``copies`` side-by-side copies of the district (a bigger city with the same texture)."""
    width = buildings.total_bounds[2] - buildings.total_bounds[0] + 100.0
    parts = [buildings.translate(xoff=i * width) for i in range(copies)]
    return gpd.GeoDataFrame(geometry=pd.concat(parts, ignore_index=True), crs=buildings.crs)


def setup(buildings: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, pd.Series]:
    xy = shapely.get_coordinates(buildings.representative_point().values)
    buildings = buildings.assign(community=[f"{int(x // 500)}-{int(y // 500)}" for x, y in xy])
    squares = gpd.GeoDataFrame(
        {"community": sorted(buildings["community"].unique())},
        geometry=[
            shapely.box(int(a) * 500, int(b) * 500, int(a) * 500 + 500, int(b) * 500 + 500)
            for a, b in (name.split("-") for name in sorted(buildings["community"].unique()))
        ],
        crs=buildings.crs,
    )
    labels = pd.Series(index=buildings.index, dtype=object)
    for name, part in buildings.groupby("community"):
        order = part.geometry.hilbert_distance().sort_values().index.to_numpy()
        for number, chunk in enumerate(np.array_split(order, max(1, round(len(order) / 4.5)))):
            labels[chunk] = f"{name}/{number}"
    return buildings, squares, labels


def timed(func, *args, **kwargs) -> tuple[object, str]:
    """``func``'s result and its wall / CPU seconds (CPU of all threads: the pool's too)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = func(*args, **kwargs)
    return result, f"{time.perf_counter() - wall:.1f} / {time.process_time() - cpu:.1f} s"


def run(buildings: gpd.GeoDataFrame) -> dict[str, object]:
    buildings, squares, labels = setup(buildings)
    timings: dict[str, object] = {"buildings": len(buildings)}
    cells, timings["cells (polygons) wall / CPU"] = timed(
        boundaries.building_cells, buildings, communities=squares
    )
    _, timings["cells (buffer) wall / CPU"] = timed(boundaries.building_cells, buildings)
    start = time.perf_counter()
    grids = boundaries.grid_polygons(cells, labels, community=buildings["community"])
    timings["grid polygons"] = time.perf_counter() - start
    members = {key: frozenset(group.index) for key, group in labels.groupby(labels)}
    start = time.perf_counter()
    codes.assign_grid_codes(
        grids,
        members,
        division_code="320508004",
        community_numbers=codes.community_numbers(sorted(grids["community"].unique())),
    )
    timings["codes"] = time.perf_counter() - start
    timings["valid"] = bool(shapely.coverage_is_valid(cells.values)) and bool(
        cells.contains(buildings.representative_point()).all()
    )
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 6], help="district sizes")
    args = parser.parse_args()
    suzhou = gpd.read_file(DATA).to_crs(4549)
    load = os.getloadavg()[0]
    rows = [run(suzhou if copies == 1 else tiled(suzhou, copies)) for copies in args.copies]
    table = pd.DataFrame(rows)
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    for row in rows:
        lines.append(
            "| "
            + " | ".join(f"{v:.1f} s" if isinstance(v, float) else str(v) for v in row.values())
            + " |"
        )
    text = (
        f"Command: `.venv/bin/python bench/boundaries.py --copies {' '.join(map(str, args.copies))}`"
        " (Suzhou footprints, and side-by-side copies; communities are 500 m squares, either as"
        " polygons or as buffer limits; wall / CPU seconds, CPU of all threads; 2 cores shared, load average"
        f" {load:.1f} before and {os.getloadavg()[0]:.1f} after). `valid`: the cells form one valid"
        " coverage and hold every building's point.\n\n" + "\n".join(lines)
    )
    write_section("boundaries", text)
    print(text)


if __name__ == "__main__":
    main()
