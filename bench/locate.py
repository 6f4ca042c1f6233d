"""Benchmark geo.locate: batch throughput against geopandas.sjoin, and single-point latency.

Run: ``.venv/bin/python -m bench.locate`` (``--quick`` skips the 10^7 run).
Writes the ``locate`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gc
import platform
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from bench._report import write_section
from geo.locate import GridIndex

SUZHOU = Path(__file__).resolve().parents[2] / "shared" / "data" / "suzhou_gusu_buildings.geojson"
METRIC_EPSG = 4549


def suzhou_buildings(path: Path = SUZHOU) -> gpd.GeoDataFrame:
    """The Suzhou footprints in EPSG:4549 with a ``building_id`` and a square-block ``community``."""
    frame = gpd.read_file(path).to_crs(METRIC_EPSG)
    frame["building_id"] = [f"B{i:05d}" for i in range(len(frame))]
    return frame


def voronoi_grids(
    buildings: gpd.GeoDataFrame, *, block_m: float = 800.0, group: int = 5, clip_m: float = 20.0
) -> gpd.GeoDataFrame:
    """Stand-in grid polygons with the shape geo.boundaries produces.

    Voronoi cells of the buildings' representative points, clipped to their concave hull buffered
    by ``clip_m`` (courtyards and the moat stay outside); communities are ``block_m`` squares; within a community, buildings in Hilbert order
    are grouped by ``group`` and their cells unioned into one grid. Grids tile each community
    without overlap and leave the open spaces outside every grid. Sets ``buildings['community']``.
    """
    points = buildings.representative_point()
    x0, y0 = points.x.min(), points.y.min()
    column = ((points.x - x0) // block_m).astype(int)
    row = ((points.y - y0) // block_m).astype(int)
    buildings["community"] = [f"C{r:02d}{c:02d}" for r, c in zip(row, column, strict=True)]
    area = shapely.concave_hull(shapely.multipoints(points.array), ratio=0.02).buffer(clip_m)
    cells = shapely.voronoi_polygons(shapely.multipoints(points.array), extend_to=area)
    cells = shapely.get_parts(cells)
    # voronoi_polygons does not keep the input order: match each cell to its point.
    tree = shapely.STRtree(cells)
    point_index, cell_index = tree.query(points.array, predicate="intersects")
    first = np.unique(point_index, return_index=True)[1]
    own = np.empty(len(points), dtype=object)
    own[point_index[first]] = cells[cell_index[first]]
    frame = gpd.GeoDataFrame(
        {
            "community": buildings["community"].to_numpy(),
            "order": points.hilbert_distance().to_numpy(),
        },
        geometry=shapely.intersection(own, area),
        crs=buildings.crs,
    )
    frame = frame.sort_values(["community", "order"])
    frame["n"] = frame.groupby("community").cumcount() // group
    grids = frame.dissolve(["community", "n"]).reset_index()
    grids["grid_code"] = [f"{c}-{n + 1:03d}" for c, n in zip(grids["community"], grids["n"], strict=True)]
    grids["worker"] = [None if n % 7 == 3 else f"W{n % 40:02d}" for n in range(len(grids))]
    return grids[["grid_code", "community", "worker", "geometry"]]
