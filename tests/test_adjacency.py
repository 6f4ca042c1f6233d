"""The trimmed building adjacency graph on real footprints."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from footprints import read_metric, square_communities
from scipy.sparse import csgraph

from geo.errors import CRSError, InputError
from geo.grids.adjacency import building_adjacency, community_components, edge_list


@pytest.fixture(scope="module")
def kunming(shared_data) -> gpd.GeoDataFrame:
    return read_metric(shared_data / "kunming_buildings.geojson")


@pytest.fixture(scope="module")
def suzhou(shared_data) -> gpd.GeoDataFrame:
    """Suzhou Gusu footprints with communities from a 500 m square grid of centroids."""
    return square_communities(read_metric(shared_data / "suzhou_gusu_buildings.geojson"))


def test_kunming_compounds_are_each_one_connected_piece(kunming):
    graph = building_adjacency(kunming)
    assert (graph != graph.T).nnz == 0
    comp = community_components(graph)
    pieces = kunming.assign(comp=comp).groupby("community")["comp"].nunique()
    assert (pieces == 1).all()
    # no edge joins two compounds
    e = edge_list(graph)
    names = kunming["community"].to_numpy()
    assert (names[e[:, 0]] == names[e[:, 1]]).all()


def test_suzhou_graph_drops_the_long_delaunay_edges(suzhou):
    xy = shapely.get_coordinates(suzhou.geometry.centroid.array)

    def lengths(graph):
        e = edge_list(graph)
        return np.hypot(*(xy[e[:, 0]] - xy[e[:, 1]]).T)

    trimmed = lengths(building_adjacency(suzhou))
    raw = lengths(building_adjacency(suzhou, alpha=np.inf, beta=np.inf))
    # old-town buildings are tens of metres apart; the long slivers of the raw triangulation go
    assert np.median(trimmed) < 30
    assert np.quantile(trimmed, 0.99) < 0.6 * np.quantile(raw, 0.99)
    assert trimmed.max() < raw.max()
    # but the dense fabric stays connected: most buildings sit in pieces big enough for a grid
    comp = community_components(building_adjacency(suzhou))
    sizes = np.bincount(comp)
    assert (sizes[comp] >= 4).mean() > 0.98


def test_isolated_hamlet_is_not_a_neighbour():
    village = [
        shapely.box(x, y, x + 10, y + 8) for x in range(0, 200, 20) for y in range(0, 200, 20)
    ]
    hamlet = [shapely.box(600, 600, 610, 608), shapely.box(620, 600, 630, 608)]
    gdf = gpd.GeoDataFrame({"community": ["v"] * 102}, geometry=village + hamlet, crs=32651)
    comp = community_components(building_adjacency(gdf))
    assert comp[-1] == comp[-2]
    assert comp[-1] != comp[0]
    assert len(np.unique(comp[:-2])) == 1


def test_edges_crossing_major_roads_are_cut_unless_a_small_piece_is_left(shared_data):
    buildings = gpd.read_file(shared_data / "shanghai_bund_buildings.geojson")
    crs = buildings.estimate_utm_crs()
    buildings = buildings.to_crs(crs).assign(community="bund")
    roads = gpd.read_file(shared_data / "shanghai_bund_roads.geojson").to_crs(crs)
    plain = building_adjacency(buildings)
    cut = building_adjacency(buildings, roads=roads, min_size=4)
    assert cut.nnz < plain.nnz
    xy = shapely.get_coordinates(buildings.geometry.centroid.array)
    e = edge_list(cut)
    segments = shapely.linestrings(np.stack([xy[e[:, 0]], xy[e[:, 1]]], axis=1))
    major = roads[roads["kind"] == "major_road"].geometry.union_all()
    crossing = shapely.intersects(segments, major)
    # every crossing edge that survived keeps a piece of fewer than 4 buildings attached
    kept = e[~crossing]
    graph = cut.copy()
    graph[e[crossing, 0], e[crossing, 1]] = 0
    graph[e[crossing, 1], e[crossing, 0]] = 0
    graph.eliminate_zeros()
    _, comp = csgraph.connected_components(graph)
    small = np.bincount(comp)[comp] < 4
    assert (small[e[crossing, 0]] | small[e[crossing, 1]]).all()
    assert len(kept) > 0.5 * len(e)


def test_geographic_crs_is_refused(kunming):
    with pytest.raises(CRSError, match="metric CRS"):
        building_adjacency(kunming.to_crs(4326))


def test_missing_community_is_refused(kunming):
    broken = kunming.copy()
    broken.loc[broken.index[0], "community"] = None
    with pytest.raises(InputError, match="community"):
        building_adjacency(broken)
