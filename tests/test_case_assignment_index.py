"""Cases assigned by the plan's locate index land in the grids the ``sjoin`` gave them (issue #16).

Case intake used to read the whole published grids layer and ``sjoin`` every batch; it now asks
the plan's :class:`~geo.locate.engine.GridIndex`, the one ``/locate`` answers from. These tests hold the
two to the same answers on the shared data (Kunming staffed, Suzhou's 8,242 footprints): grid,
community and worker of every case, for random points, points inside buildings, and points
exactly on grid vertices and shared edges (where the lowest grid code wins), through both of
the index's paths (the STRtree for small batches, the cell tables for large ones).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo.crs import to_wgs84
from geo.incidents.assign import (
    assign_to_grids,
    assign_with_index,
    grids_at,
    joined_grids,
)
from geo.locate import kept as locate_index
from geo.plans import publish as publishing
from geo.storage.store import open_store


@pytest.fixture(params=["kunming", "suzhou"])
def district(request):
    """A published plan's grids (metric, ``worker`` holding the worker id as the store passes
    it) and its kept locate index, with and without cell tables."""
    db = request.getfixturevalue("api_db" if request.param == "kunming" else "suzhou_project_base")
    store = open_store(db)
    grids = publishing.published_grids(store)
    tree_index = locate_index.grid_index(store)
    cell_index = locate_index.grid_index(store, cells=True)
    yield store, grids, tree_index, cell_index
    store.engine.dispose()


def edge_points(grids: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Every vertex of every grid (shared ones repeated), then the midpoint of every edge (on
    the edge up to rounding: the two rules must agree on which side it fell)."""
    rings = shapely.get_rings(shapely.get_parts(grids.geometry.array))
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    same = ring[:-1] == ring[1:]
    middle = (coords[:-1][same] + coords[1:][same]) / 2
    both = np.vstack([coords, middle])
    return both[:, 0], both[:, 1]


def random_points(grids: gpd.GeoDataFrame, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform over the grids' box and 200 m around it (many points fall outside every grid)."""
    rng = np.random.default_rng(seed)
    west, south, east, north = grids.total_bounds
    return rng.uniform(west - 200, east + 200, n), rng.uniform(south - 200, north + 200, n)


def sjoin_positions(grids: gpd.GeoDataFrame, codes: np.ndarray, x, y) -> np.ndarray:
    """Position in ``codes`` of the grid the ``sjoin`` rule picks for each metric point, -1 for none."""
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs=grids.crs)
    joined = joined_grids(points, grids)
    found = np.full(len(points), -1, dtype=np.int64)
    found[joined.index.to_numpy()] = pd.Index(codes).get_indexer(joined["grid_code"])
    return found


def test_points_on_shared_edges_and_vertices_go_to_the_grid_the_sjoin_chose(district):
    _, grids, tree_index, cell_index = district
    ex, ey = edge_points(grids)
    rx, ry = random_points(grids, 25_000, seed=16)
    x, y = np.concatenate([ex, rx]), np.concatenate([ey, ry])
    expected = sjoin_positions(grids, tree_index.grid_codes, x, y)
    vertices = len(shapely.get_coordinates(grids.geometry.array))
    assert (expected[:vertices] >= 0).all()  # every vertex lies in a grid: the rule decides which
    hits, _ = shapely.STRtree(grids.geometry.array).query(
        shapely.points(ex[:vertices], ey[:vertices]), predicate="intersects"
    )
    assert (np.bincount(hits) > 1).sum() > vertices // 4  # many lie on two grids or more
    # each small batch through the STRtree, the whole lot through the cell tables
    by_tree = np.concatenate(
        [grids_at(tree_index, x[i : i + 5_000], y[i : i + 5_000]) for i in range(0, x.size, 5_000)]
    )
    assert x.size >= 20_000
    assert cell_index.has_cells
    assert (by_tree == expected).all()
    assert (grids_at(cell_index, x, y) == expected).all()
    assert (cell_index.grid_codes == tree_index.grid_codes).all()


def cases_near_edges(store, grids: gpd.GeoDataFrame, n: int) -> pd.DataFrame:
    """WGS84 cases: grid vertices and edge midpoints, building centres and random points, with
    some unlocated, some fallback points and some without coordinates (none of them assigned)."""
    ex, ey = edge_points(grids)
    rx, ry = random_points(grids, n, seed=7)
    inside = store.read_layer("buildings").representative_point()
    x = np.concatenate([ex, rx, inside.x.to_numpy()])
    y = np.concatenate([ey, ry, inside.y.to_numpy()])
    lon, lat = to_wgs84(x, y, crs=grids.crs)
    rng = np.random.default_rng(3)
    cases = pd.DataFrame(
        {
            "lon": lon,
            "lat": lat,
            "located": rng.random(lon.size) > 0.02,
            "fallback_point": rng.random(lon.size) < 0.02,
        },
        index=pd.RangeIndex(lon.size) * 3 + 11,  # not 0..n-1: rows keep their labels
    )
    cases.loc[cases.index[::97], ["lon", "lat"]] = np.nan
    return cases


def test_cases_get_the_grid_community_and_worker_the_sjoin_gave_them(district):
    store, grids, tree_index, cell_index = district
    cases = cases_near_edges(store, grids, 30_000)
    expected = assign_to_grids(cases, grids.assign(worker=grids["worker"]))
    assert expected["grid_code"].notna().sum() > len(cases) // 4
    small = cases.iloc[:4_000]
    pd.testing.assert_frame_equal(assign_with_index(small, tree_index), expected.loc[small.index])
    pd.testing.assert_frame_equal(assign_with_index(cases, cell_index), expected)
    pd.testing.assert_frame_equal(assign_with_index(cases, tree_index), expected)


def test_no_usable_case_is_assigned_by_the_index(district):
    _, _, tree_index, _ = district
    cases = pd.DataFrame({"lon": [np.nan, 120.0], "lat": [31.0, np.nan]})
    found = assign_with_index(cases, tree_index)
    assert found.isna().all().all()
    assert list(found.columns) == ["grid_code", "community", "worker"]
