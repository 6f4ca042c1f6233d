"""The partition engine: properties on random districts, facts on real footprints."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from footprints import read_metric, square_communities
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo.errors import CRSError
from geo.grids.adjacency import building_adjacency, community_components
from geo.grids.partition import (
    PartitionInputError,
    grid_report,
    is_feasible_count,
    partition_buildings,
)

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def kunming(shared_data) -> gpd.GeoDataFrame:
    return read_metric(shared_data / "kunming_buildings.geojson")


@pytest.fixture(scope="module")
def suzhou(shared_data) -> gpd.GeoDataFrame:
    """Suzhou Gusu footprints with communities from a 500 m square grid of centroids."""
    return square_communities(read_metric(shared_data / "suzhou_gusu_buildings.geojson"))


@pytest.fixture(scope="module")
def kunming_result(kunming):
    return partition_buildings(kunming)


@pytest.fixture(scope="module")
def suzhou_result(suzhou):
    return partition_buildings(suzhou)


def district(seed: int, sizes: list[int], households: bool = False) -> gpd.GeoDataFrame:
    """Communities of ``sizes`` buildings on jittered lattices with empty sites, 1 km apart."""
    rng = np.random.default_rng(seed)
    frames = []
    for i, n in enumerate(sizes):
        side = int(np.ceil(np.sqrt(n / 0.7)))
        sites = np.stack(np.meshgrid(np.arange(side), np.arange(side)), -1).reshape(-1, 2)
        pick = np.sort(rng.choice(len(sites), n, replace=False))
        xy = sites[pick] * 18.0 + rng.normal(0, 2.5, (n, 2)) + [1000.0 * i, 0.0]
        frame = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "community": f"社区{i}"})
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    geom = shapely.box(table.x - 5, table.y - 4, table.x + 5, table.y + 4)
    gdf = gpd.GeoDataFrame(
        {
            "building_id": [f"b{i}" for i in range(len(table))],
            "community": table["community"],
            "households": pd.array(
                rng.integers(1, 40, len(table)) if households else [pd.NA] * len(table),
                dtype="Int64",
            ),
        },
        geometry=geom,
        crs=32651,
    )
    return gdf.set_index(pd.Index([f"idx{i}" for i in range(len(gdf))]))


def check_invariants(gdf: gpd.GeoDataFrame, result, min_size: int = 4, max_size: int = 5) -> None:
    labels = result.labels
    # every building exactly once, aligned to the input
    assert labels.index.equals(gdf.index)
    assert labels.notna().all()
    # no grid across communities, keys unique district-wide
    assert (pd.Series(gdf["community"].to_numpy()).groupby(labels.to_numpy()).nunique() == 1).all()
    grids = result.grids.set_index("grid_key")
    assert set(grids.index) == set(labels)
    assert (labels.value_counts().sort_index() == grids["n_buildings"].sort_index()).all()
    counts = gdf["community"].value_counts()
    for comm, block in grids.groupby("community"):
        feasible = is_feasible_count(int(counts[comm]), min_size, max_size)
        in_range = block["n_buildings"].between(min_size, max_size)
        if feasible:
            assert in_range.all(), comm
        else:
            assert (block.loc[~in_range, "status"].isin(["undersized", "oversized"])).all()
            assert (~in_range).any()
    flagged = grids[grids["status"] != "ok"]
    assert (flagged["reason"].str.len() > 0).all()
    assert (flagged["reason_zh"].str.len() > 0).all()
    assert (grids.loc[~grids["contiguous"], "status"] != "ok").all()


# --------------------------------------------------------------------------- sizes


def test_feasible_counts_for_four_to_five():
    assert [n for n in range(1, 30) if not is_feasible_count(n, 4, 5)] == [1, 2, 3, 6, 7, 11]
    assert is_feasible_count(12, 3, 3)
    assert not is_feasible_count(13, 3, 3)


# --------------------------------------------------------------------------- properties

community_sizes = st.lists(st.integers(min_value=1, max_value=45), min_size=1, max_size=4)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=community_sizes, seed=st.integers(0, 10_000))
def test_random_districts_keep_every_rule(sizes, seed):
    gdf = district(seed, sizes)
    result = partition_buildings(gdf, seed=seed)
    check_invariants(gdf, result)
    # where a community's own graph is one piece and its count is feasible, grids are contiguous
    graph = building_adjacency(gdf)
    pieces = pd.Series(community_components(graph)).groupby(gdf["community"].to_numpy()).nunique()
    counts = gdf["community"].value_counts()
    whole = [c for c in pieces.index if pieces[c] == 1 and is_feasible_count(int(counts[c]), 4, 5)]
    grids = result.grids
    assert grids.loc[grids["community"].isin(whole), "contiguous"].all()


@settings(max_examples=10, deadline=None)
@given(sizes=community_sizes, seed=st.integers(0, 10_000))
def test_same_input_and_seed_give_the_same_grids(sizes, seed):
    gdf = district(seed, sizes)
    first = partition_buildings(gdf, seed=seed)
    second = partition_buildings(gdf.iloc[::-1].copy(), seed=seed).labels.reindex(gdf.index)
    assert first.labels.equals(partition_buildings(gdf, seed=seed).labels)
    # the row order of the input does not matter either: the same buildings end up together
    pairs_a = pd.Series(gdf.index).groupby(first.labels.to_numpy()).apply(frozenset)
    pairs_b = pd.Series(gdf.index).groupby(second.to_numpy()).apply(frozenset)
    assert set(pairs_a) == set(pairs_b)


@settings(max_examples=10, deadline=None)
@given(sizes=st.lists(st.integers(8, 40), min_size=1, max_size=3), seed=st.integers(0, 10_000))
def test_locked_grids_are_kept_and_the_rest_fits_around_them(sizes, seed):
    gdf = district(seed, sizes)
    first = partition_buildings(gdf, seed=0)
    keep = first.grids.groupby("community")["grid_key"].first()
    locked = first.labels[first.labels.isin(keep)]
    second = partition_buildings(gdf, seed=seed + 1, locked=locked)
    assert second.labels[locked.index].equals(locked)
    check_invariants(gdf, second)
    assert second.labels.nunique() == len(second.grids)


def test_households_cap_lowers_the_excess_and_flags_what_remains():
    gdf = district(3, [30, 20], households=True)
    free = partition_buildings(gdf).grids
    capped = partition_buildings(gdf, max_households=90)
    check_invariants(gdf, capped)
    grids = capped.grids

    def excess(frame):
        return float((frame["households"].astype(float) - 90).clip(lower=0).sum())

    # the district holds more households than 90 per grid, so some grids stay above: fewer than before
    assert excess(grids) < excess(free)
    over = grids["households"] > 90
    assert over.any()
    assert (grids.loc[over, "status"] == "households_over_cap").all()
    assert (grids.loc[~over, "status"] == "ok").all()
    assert grids.loc[over, "reason"].str.contains("above the cap of 90").all()
    assert (partition_buildings(gdf, max_households=400).grids["status"] == "ok").all()


# --------------------------------------------------------------------------- real data


def test_kunming_small_compounds_are_flagged_and_the_rest_fit(kunming, kunming_result):
    check_invariants(kunming, kunming_result)
    grids = kunming_result.grids
    sizes = kunming["community"].value_counts()
    odd = set(sizes.index[sizes.isin([2, 3, 6])])
    assert set(grids.loc[grids["status"] != "ok", "community"]) == odd
    ok = grids[~grids["community"].isin(odd)]
    assert ok["n_buildings"].between(4, 5).all()
    assert ok["contiguous"].all()
    two = grids[grids["community"] == sizes.index[sizes == 2][0]].iloc[0]
    assert two["status"] == "undersized"
    assert two["reason_zh"] == "社区仅有 2 栋楼，不足 4 栋，无法组成规范网格"
    assert "fewer than 4" in two["reason"]
    six = grids[grids["community"].isin(sizes.index[sizes == 6])]
    assert (six["status"] == "oversized").all()
    flagged = {f["community"] for f in kunming_result.summary["flagged_communities"]}
    assert flagged == odd


def test_kunming_grids_are_compact(kunming_result):
    grids = kunming_result.grids
    ok = grids[grids["status"] == "ok"]
    # a grid of 4-5 neighbouring buildings spans a couple of hundred metres at most in these compounds
    assert ok["diameter_m"].max() < 300
    assert kunming_result.summary["grids"] == len(grids) == 33


def test_suzhou_grids_are_in_range_and_contiguous(suzhou, suzhou_result):
    check_invariants(suzhou, suzhou_result)
    summary = suzhou_result.summary
    assert summary["buildings"] == 8242
    counts = suzhou["community"].value_counts()
    feasible = counts.index[[is_feasible_count(int(n), 4, 5) for n in counts]]
    grids = suzhou_result.grids
    assert grids.loc[grids["community"].isin(feasible), "n_buildings"].between(4, 5).all()
    assert summary["share_in_range"] > 0.99
    assert summary["share_contiguous"] > 0.98
    assert summary["mean_diameter_m"] < 60
    # every non-contiguous grid bridges a piece of its community cut off by open space, too small
    # for a grid of its own: nowhere could the graph have allowed a contiguous grid instead
    broken = grids[grids["status"] == "non_contiguous"]
    assert broken["reason"].str.contains("bridges").all()
    assert broken["reason_zh"].str.contains("跨越连接").all()


def test_threads_may_partition_at_the_same_time(suzhou, suzhou_result):
    # the API partitions on a thread pool; numba's parallel kernels must take turns, not abort
    with ThreadPoolExecutor(max_workers=3) as pool:
        runs = list(pool.map(lambda _: partition_buildings(suzhou).labels, range(3)))
    for labels in runs:
        assert labels.equals(suzhou_result.labels)


def test_grid_report_validates_a_planners_edit(kunming, kunming_result):
    labels = kunming_result.labels.copy()
    big = kunming_result.grids.query("n_buildings == 5 and status == 'ok'").iloc[0]
    donor = labels[labels == big["grid_key"]].index[:2]
    labels[donor] = big["grid_key"] + "-new"
    report = grid_report(kunming, labels).set_index("grid_key")
    assert report.loc[big["grid_key"], "status"] == "undersized"
    assert report.loc[big["grid_key"] + "-new", "status"] == "undersized"
    assert (
        report.loc[big["grid_key"], "reason"] == "grid has 3 buildings, fewer than the minimum of 4"
    )
    assert report.loc[big["grid_key"], "reason_zh"] == "网格仅有 3 栋楼，少于下限 4 栋"


def test_grid_report_refuses_a_grid_across_communities(kunming, kunming_result):
    labels = kunming_result.labels.copy()
    labels[:] = "one"
    with pytest.raises(PartitionInputError, match="more than one community"):
        grid_report(kunming, labels)


def test_grids_cross_fewer_major_roads_when_roads_are_given(shared_data):
    buildings = gpd.read_file(shared_data / "shanghai_bund_buildings.geojson")
    crs = buildings.estimate_utm_crs()
    buildings = buildings.to_crs(crs)
    c = buildings.geometry.centroid
    buildings["community"] = (
        np.floor(c.x / 600).astype(int).astype(str)
        + "_"
        + np.floor(c.y / 600).astype(int).astype(str)
    )
    roads = gpd.read_file(shared_data / "shanghai_bund_roads.geojson").to_crs(crs)
    major = roads.loc[roads["kind"] == "major_road"].geometry.union_all()

    def crossing(labels: pd.Series) -> int:
        hulls = c.groupby(labels.to_numpy()).agg(
            lambda p: shapely.convex_hull(shapely.multipoints(p.array))
        )
        return int(shapely.intersects(np.asarray(hulls.to_numpy()), major).sum())

    plain = partition_buildings(buildings)
    cut = partition_buildings(buildings, roads=roads)
    check_invariants(buildings, cut)
    assert crossing(cut.labels) < crossing(plain.labels)


# --------------------------------------------------------------------------- errors


def test_bad_input_raises_named_errors(kunming):
    with pytest.raises(PartitionInputError, match="no buildings"):
        partition_buildings(kunming.iloc[:0])
    with pytest.raises(PartitionInputError, match="'community'"):
        partition_buildings(kunming.drop(columns="community"))
    with pytest.raises(CRSError):
        partition_buildings(kunming.to_crs(4326))
    with pytest.raises(PartitionInputError, match="min_size"):
        partition_buildings(kunming, min_size=6, max_size=5)
    with pytest.raises(PartitionInputError, match="max_size 31 is above 30"):
        partition_buildings(kunming, max_size=31)
    two = kunming.groupby("community").head(1).index[:2]
    with pytest.raises(PartitionInputError, match="spans more than one community"):
        partition_buildings(kunming, locked=pd.Series("x/001", index=two))
