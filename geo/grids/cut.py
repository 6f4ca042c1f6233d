"""Cut ordered buildings into consecutive runs of allowed sizes with the least spread.

Step 2 of :mod:`geo.grids.partition`: once the buildings of a unit are ordered along a space-filling
curve, neighbours on the curve are mostly neighbours on the ground, so cutting the sequence into
runs of ``lo..hi`` buildings gives grids of the right size that are nearly compact already. The
cut is exact by dynamic programming: ``best[j][b]`` is the least spread (sum of squared distances
to each run's centre) of ``j`` runs covering the first ``b`` buildings; a run's spread comes from
prefix sums in constant time. Compiled with numba.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["cut_runs"]


@numba.njit(cache=True)
def _cut_chunk(xy: np.ndarray, k: int, lo: int, hi: int, out: np.ndarray, first_run: int) -> None:
    """Cut the ``n`` points of ``xy`` into exactly ``k`` runs of ``lo..hi``; run ids into ``out``."""
    n = len(xy)
    mx, my = 0.0, 0.0
    for i in range(n):
        mx += xy[i, 0]
        my += xy[i, 1]
    mx /= max(n, 1)
    my /= max(n, 1)
    sx, sy, sq = np.zeros(n + 1), np.zeros(n + 1), np.zeros(n + 1)
    for i in range(n):
        x, y = xy[i, 0] - mx, xy[i, 1] - my  # centred: the sums stay precise
        sx[i + 1] = sx[i] + x
        sy[i + 1] = sy[i] + y
        sq[i + 1] = sq[i] + x * x + y * y
    best = np.full((k + 1, n + 1), np.inf)
    size = np.zeros((k + 1, n + 1), dtype=np.int64)
    best[0, 0] = 0.0
    for j in range(1, k + 1):
        # only ends from which the remaining k - j runs can still cover the rest
        first = max(j * lo, n - (k - j) * hi)
        last = min(j * hi, n - (k - j) * lo)
        for b in range(first, last + 1):
            for s in range(lo, hi + 1):
                a = b - s
                if a < 0 or best[j - 1, a] == np.inf:
                    continue
                dx, dy = sx[b] - sx[a], sy[b] - sy[a]
                total = best[j - 1, a] + sq[b] - sq[a] - (dx * dx + dy * dy) / s
                if total < best[j, b]:
                    best[j, b] = total
                    size[j, b] = s
    b = n
    for j in range(k, 0, -1):
        s = size[j, b]
        out[b - s : b] = first_run + j - 1
        b -= s


@numba.njit(cache=True)
def _cut_all(xy, start, n_c, k_c, bounds, first_run, out) -> None:
    for c in range(len(n_c)):
        part = xy[start[c] : start[c] + n_c[c]]
        _cut_chunk(
            part,
            k_c[c],
            bounds[c, 0],
            bounds[c, 1],
            out[start[c] : start[c] + n_c[c]],
            first_run[c],
        )


def cut_runs(
    xy: np.ndarray, n_c: np.ndarray, k_c: np.ndarray, bounds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Run id of every point and the chunk of every run.

    Parameters
    ----------
    xy : (n, 2) float array
        The points in curve order, chunk after chunk.
    n_c, k_c : int arrays
        Points and runs of every chunk (``n_c`` sums to ``n``; every chunk must be feasible:
        ``k * lo <= n <= k * hi``).
    bounds : (c, 2) int array
        Allowed run sizes ``lo, hi`` of every chunk.

    Returns
    -------
    run : (n,) int array
        Run ids ``0..sum(k_c)-1``, chunk by chunk, in curve order.
    chunk_of_run : (sum(k_c),) int array

    Examples
    --------
    >>> xy = np.array([[0, 0], [1, 0], [2, 0], [3, 0], [10, 0], [11, 0], [12, 0], [13, 0], [14, 0.0]])
    >>> run, chunk = cut_runs(xy, np.array([9]), np.array([2]), np.array([[4, 5]]))
    >>> run.tolist()
    [0, 0, 0, 0, 1, 1, 1, 1, 1]
    """
    n_c = np.asarray(n_c, dtype=np.int64)
    k_c = np.asarray(k_c, dtype=np.int64)
    bounds = np.asarray(bounds, dtype=np.int64).reshape(-1, 2)
    bad = (k_c * bounds[:, 0] > n_c) | (k_c * bounds[:, 1] < n_c) | (k_c < 1)
    if bad.any():
        c = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"chunk {c}: {n_c[c]} points cannot be cut into {k_c[c]} runs of "
            f"{bounds[c, 0]}..{bounds[c, 1]}"
        )
    start = np.concatenate([[0], np.cumsum(n_c)[:-1]]).astype(np.int64)
    first_run = np.concatenate([[0], np.cumsum(k_c)[:-1]]).astype(np.int64)
    run = np.empty(len(xy), dtype=np.int64)
    _cut_all(
        np.ascontiguousarray(xy, dtype=np.float64),
        start,
        n_c,
        k_c,
        bounds,
        first_run,
        run,
    )
    return run, np.repeat(np.arange(len(n_c)), k_c)
