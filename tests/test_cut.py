"""The dynamic-programming cut: exact against brute force, chunk by chunk."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.grids.cut import cut_runs


def spread(points: np.ndarray) -> float:
    return float(((points - points.mean(axis=0)) ** 2).sum())


def best_by_brute_force(xy: np.ndarray, k: int, lo: int, hi: int) -> float:
    """Least total spread over every way to cut ``xy`` into ``k`` consecutive runs of lo..hi."""
    best = np.inf
    for sizes in itertools.product(range(lo, hi + 1), repeat=k):
        if sum(sizes) != len(xy):
            continue
        ends = np.cumsum(sizes)
        best = min(best, sum(spread(xy[e - s : e]) for s, e in zip(sizes, ends, strict=True)))
    return best


@settings(max_examples=40, deadline=None)
@given(
    k=st.integers(1, 5),
    sizes=st.sampled_from([(4, 5), (3, 3), (2, 6)]),
    seed=st.integers(0, 1000),
    data=st.data(),
)
def test_cut_is_the_least_spread_of_all_cuts(k, sizes, seed, data):
    lo, hi = sizes
    n = data.draw(st.integers(k * lo, k * hi))
    xy = np.random.default_rng(seed).normal(0, 50, (n, 2)) + 3.5e6  # projected coordinates
    run, chunk = cut_runs(xy, np.array([n]), np.array([k]), np.array([[lo, hi]]))
    counts = np.bincount(run, minlength=k)
    assert len(counts) == k
    assert counts.min() >= lo
    assert counts.max() <= hi
    assert (np.diff(run) >= 0).all()  # runs are consecutive
    assert chunk.tolist() == [0] * k
    found = sum(spread(xy[run == r]) for r in range(k))
    assert np.isclose(found, best_by_brute_force(xy, k, lo, hi), rtol=1e-9, atol=1e-6)


def test_chunks_are_cut_separately_and_numbered_in_order():
    rng = np.random.default_rng(7)
    n_c, k_c = np.array([9, 13, 4]), np.array([2, 3, 1])
    xy = rng.normal(0, 30, (int(n_c.sum()), 2))
    bounds = np.array([[4, 5], [4, 5], [4, 4]])
    run, chunk = cut_runs(xy, n_c, k_c, bounds)
    assert chunk.tolist() == [0, 0, 1, 1, 1, 2]
    starts = np.concatenate([[0], np.cumsum(n_c)])
    for c in range(3):
        part = run[starts[c] : starts[c + 1]]
        assert set(part.tolist()) == set(np.flatnonzero(chunk == c).tolist())


def test_an_impossible_chunk_is_refused():
    with pytest.raises(ValueError, match=r"11 points cannot be cut into 2 runs of 4\.\.5"):
        cut_runs(np.zeros((11, 2)), np.array([11]), np.array([2]), np.array([[4, 5]]))
