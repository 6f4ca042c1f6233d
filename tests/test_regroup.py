"""The pair re-split search: a true local optimum, sizes kept, the same on any number of cores."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from footprints import read_metric, square_communities
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse
from scipy.sparse import csgraph

from geo.grids import regroup
from geo.grids.adjacency import building_adjacency, centroid_coordinates
from geo.grids.cut import cut_runs
from geo.grids.partition import partition_buildings
from geo.grids.regroup import grid_pieces, regroup_pairs


def kunming_compound(shared_data, name_index: int):
    buildings = read_metric(shared_data / "kunming_buildings.geojson")
    names = buildings["community"].value_counts().index
    return buildings[buildings["community"] == names[name_index]].reset_index(drop=True)


def pieces(graph: sparse.csr_array, members: np.ndarray) -> int:
    return csgraph.connected_components(graph[members][:, members], directed=False)[0]


def spread(xy: np.ndarray) -> float:
    return float(((xy - xy.mean(axis=0)) ** 2).sum())


def first_cut(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grids of 4-5 along the x axis: a poor but valid start (``len(xy)`` must allow 4-5)."""
    n = len(xy)
    k = -(-n // 5)
    order = np.argsort(xy[:, 0], kind="stable")
    run, _ = cut_runs(xy[order], np.array([n]), np.array([k]), np.array([[4, 5]]))
    grid = np.empty(n, dtype=np.int64)
    grid[order] = run
    return grid, np.tile([4, 5], (k, 1))


@pytest.fixture(scope="module")
def compound(shared_data):
    """The largest Kunming compound: real footprints, one community."""
    buildings = kunming_compound(shared_data, 0)
    assert len(buildings) >= 20
    return buildings


def test_no_pair_of_neighbouring_grids_can_be_split_better(compound):
    xy = centroid_coordinates(compound)
    xy = xy - xy.mean(axis=0)
    graph = sparse.csr_array(building_adjacency(compound))
    grid, bounds = first_cut(xy)
    k = len(bounds)
    moves = regroup_pairs(xy, grid, bounds, np.zeros(k, dtype=np.int64), graph)
    assert moves > 0
    counts = np.bincount(grid, minlength=k)
    assert len(counts) == k
    assert counts.min() >= 4
    assert counts.max() <= 5
    # brute force over every neighbouring pair: no split has fewer pieces, or as few and less spread
    rows, cols = graph.nonzero()
    touching = {
        (min(a, b), max(a, b)) for a, b in zip(grid[rows], grid[cols], strict=True) if a != b
    }
    for a, b in touching:
        nodes = np.flatnonzero((grid == a) | (grid == b))
        now_pieces = pieces(graph, np.flatnonzero(grid == a)) + pieces(
            graph, np.flatnonzero(grid == b)
        )
        now = spread(xy[grid == a]) + spread(xy[grid == b])
        for size in (4, 5):
            for first in itertools.combinations(nodes, size):
                second = np.setdiff1d(nodes, first)
                if not 4 <= len(second) <= 5:
                    continue
                first = np.array(first)
                split_pieces = pieces(graph, first) + pieces(graph, second)
                split = spread(xy[first]) + spread(xy[second])
                assert split_pieces >= now_pieces
                if split_pieces == now_pieces:
                    assert split >= now - 1e-6 * (1 + now)


def test_diameters_pass_keeps_grids_whole_and_shrinks_them(compound):
    xy = centroid_coordinates(compound)
    xy = xy - xy.mean(axis=0)
    graph = sparse.csr_array(building_adjacency(compound))
    grid, bounds = first_cut(xy)
    unit = np.zeros(len(bounds), dtype=np.int64)
    regroup_pairs(xy, grid, bounds, unit, graph)

    def diameters(labels):
        out = []
        for g in np.unique(labels):
            p = xy[labels == g]
            out.append(np.sqrt(((p[:, None] - p[None]) ** 2).sum(-1)).max())
        return np.array(out)

    before = diameters(grid)
    whole_before = grid_pieces(grid, len(bounds), np.zeros(len(xy), int), graph)[0]
    regroup_pairs(xy, grid, bounds, unit, graph, by_diameter=True)
    assert diameters(grid).sum() <= before.sum() + 1e-9
    whole_after = grid_pieces(grid, len(bounds), np.zeros(len(xy), int), graph)[0]
    assert whole_after.sum() <= whole_before.sum()


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(8, 60).filter(lambda n: n not in (11,)))
def test_locked_buildings_never_move_and_sizes_stay_in_bounds(seed, n):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 200, (n, 2))
    # a path through the points plus random chords
    src = np.r_[np.arange(n - 1), np.arange(n)]
    dst = np.r_[np.arange(1, n), rng.integers(0, n, n)]
    graph = sparse.csr_array((np.ones(len(src)), (src, dst)), shape=(n, n))
    graph = sparse.csr_array(((graph + graph.T) > 0).astype(float))
    grid, bounds = first_cut(xy)
    locked = rng.random(n) < 0.2
    grid[locked] = -1
    before = np.bincount(grid[grid >= 0], minlength=len(bounds))
    regroup_pairs(xy, grid, bounds, np.zeros(len(bounds), dtype=np.int64), graph)
    assert (grid[locked] == -1).all()
    assert (grid[~locked] >= 0).all()
    after = np.bincount(grid[grid >= 0], minlength=len(bounds))
    # grids whose size was already in 4-5 stay there; none shrinks below its start or 4
    assert after.sum() == before.sum()
    assert ((after >= np.minimum(before, 4)) & (after <= np.maximum(before, 5))).all()


def test_the_grids_are_the_same_on_any_number_of_cores(shared_data, monkeypatch):
    suzhou = square_communities(read_metric(shared_data / "suzhou_gusu_buildings.geojson"))
    runs = []
    for cores in (1, 2, 5):
        monkeypatch.setattr(regroup, "cores", lambda cores=cores: cores)
        runs.append(partition_buildings(suzhou).labels)
    assert runs[0].equals(runs[1])
    assert runs[0].equals(runs[2])
    assert runs[0].nunique() > 1500


def test_grid_pieces_agree_with_scipy_on_real_footprints(shared_data):
    suzhou = square_communities(read_metric(shared_data / "suzhou_gusu_buildings.geojson"))
    graph = sparse.csr_array(building_adjacency(suzhou))
    # a deliberately rough labelling: squares of 60 m, so many grids fall apart
    xy = centroid_coordinates(suzhou)
    grid = pd.factorize(pd.Series(list(map(tuple, np.floor(xy / 60.0).astype(int)))))[0]
    community = pd.factorize(suzhou["community"])[0]
    pieces, own = grid_pieces(grid, grid.max() + 1, community, graph)
    rows, cols = graph.nonzero()
    keep = grid[rows] == grid[cols]
    inside = sparse.csr_array(
        (np.ones(int(keep.sum())), (rows[keep], cols[keep])), shape=graph.shape
    )
    comp = csgraph.connected_components(inside, directed=False)[1]
    expected = pd.Series(comp).groupby(grid).nunique().to_numpy()
    assert (pieces == expected).all()
    assert (pieces > 1).sum() > 50
    assert (own == pd.Series(community).groupby(grid).nunique().to_numpy()).all()


def test_revolving_door_walks_every_first_side_one_swap_at_a_time():
    from math import comb

    for m in range(2, regroup._MAX_EXHAUSTIVE + 1):
        for n in range(1, m + 1):
            start, stop = regroup._DOOR_AT[m, n], regroup._DOOR_AT[m, n + 1]
            masks = regroup._DOOR_MASK[start:stop]
            assert len(masks) == len(set(masks.tolist())) == comb(m - 1, n - 1)
            assert all(mask & 1 and bin(mask).count("1") == n for mask in masks.tolist())
            assert all(mask < 1 << m for mask in masks.tolist())
            for k in range(start + 1, stop):
                came, went = regroup._DOOR_IN[k], regroup._DOOR_OUT[k]
                assert regroup._DOOR_MASK[k] == (regroup._DOOR_MASK[k - 1] & ~(1 << went)) | (
                    1 << came
                )


@pytest.mark.parametrize("width", [2, 5, 7, 8, 12, 30])
def test_the_split_buffers_hold_every_split_of_any_pair_a_thread_meets(width):
    # with grids of up to 8, pairs of 16 only try moves, but pairs of 9-14 still list all their
    # splits: sizing the buffers for the largest pair alone once overran them (max_size >= 8)
    work = regroup._work_buffers(width)
    biggest = min(2 * width, regroup._MAX_PAIR)
    for m in range(2, biggest + 1):
        splits = 1 << (m - 1) if m <= regroup._MAX_EXHAUSTIVE else m * (m + 1) // 2
        assert len(work.masks) >= splits
        assert len(work.scores) >= splits
