"""Real footprints made ready for the geo tests and benches: metric, with stand-in communities and grids.

Shared by ``tests/test_adjacency.py``, ``tests/test_partition.py``, ``tests/test_locate.py`` and
``bench/locate.py`` (which imports it as ``tests.footprints``) so that the numbers they report
come from the same recipe.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely


def read_metric(path: Path) -> gpd.GeoDataFrame:
    """The footprints in ``path`` projected to their UTM zone."""
    frame = gpd.read_file(path)
    return frame.to_crs(frame.estimate_utm_crs())


def square_communities(buildings: gpd.GeoDataFrame, *, size_m: float = 500.0) -> gpd.GeoDataFrame:
    """``buildings`` with a ``community`` for each ``size_m`` square their centroid falls in."""
    c = buildings.geometry.centroid
    square = (
        np.floor(c.x / size_m).astype(int).astype(str)
        + "_"
        + np.floor(c.y / size_m).astype(int).astype(str)
    )
    return buildings.assign(community=square)


def voronoi_grids(
    buildings: gpd.GeoDataFrame, *, block_m: float = 800.0, group: int = 5, clip_m: float = 20.0
) -> gpd.GeoDataFrame:
    """Stand-in grid polygons with the shape geo.grids.boundaries produces.

    Voronoi cells of the buildings' representative points, clipped to their concave hull
    buffered by ``clip_m`` (courtyards and the moat stay outside); communities are ``block_m``
    squares; within a community, buildings in Hilbert order are grouped by ``group`` and their
    cells unioned into one grid. Grids tile each community without overlap and leave the open
    spaces outside every grid. Sets ``buildings['community']``.
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
    grids["grid_code"] = [
        f"{c}-{n + 1:03d}" for c, n in zip(grids["community"], grids["n"], strict=True)
    ]
    grids["worker"] = [None if n % 7 == 3 else f"W{n % 40:02d}" for n in range(len(grids))]
    return grids[["grid_code", "community", "worker", "geometry"]]
