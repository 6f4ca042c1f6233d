"""Group each community's buildings into grids of ``min_size`` to ``max_size`` neighbours.

The engine, in four steps; no grid ever crosses a community:

1. **units**: the community's adjacency graph (:func:`geo.adjacency.building_adjacency`) is split
   into connected pieces; a piece whose count cannot form grids of the allowed sizes is joined to
   its nearest piece, so only the grid bridging them can be non-contiguous.
2. **cut**: the buildings of each unit are ordered along a Hilbert curve (rotated by ``seed``) and
   the sequence is cut into runs of allowed sizes by dynamic programming, minimising the sum of
   squared distances to each run's centre. The DP is vectorised across all units at once.
3. **improve**: rounds of single-building moves and two-building swaps between neighbouring grids,
   evaluated for all grids at once with closed-form spread deltas and a batched reachability
   test on the tiny grid graphs. A move is taken when it lowers, in this order, the number of
   disconnected pieces, the households above the cap, and the spread.
4. **polish**: every pair of neighbouring grids is re-split exhaustively (all splits of their
   8-10 buildings into two valid grids, batched by size), keeping the split with the fewest pieces,
   then the least excess and spread; this also mends grids the moves could not make contiguous.

Steps 2-4 run ``restarts`` times with the curve turned by a different angle (drawn from ``seed``);
each community keeps its best run. Every round works on all communities at once, so the cost is
a bounded number of numpy passes rather than a Python loop per building or per community.

:func:`grid_report` computes the per-grid facts (size, households, diameter, contiguity, status
and reason in English and Chinese) for any labelling, so the plan editor can validate edits.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.spatial import cKDTree

from geo.adjacency import (
    building_adjacency,
    centroid_coordinates,
    community_components,
    edge_list,
)
from geo.errors import InputError

__all__ = [
    "PartitionInputError",
    "PartitionResult",
    "grid_report",
    "is_feasible_count",
    "partition_buildings",
    "partition_summary",
]

#: most grids cut by one dynamic programme; longer units are cut in consecutive chunks
_CHUNK_GRIDS = 64
#: most rounds of the vectorised improvement
_MAX_ROUNDS = 60
#: splits per grid pair checked for contiguity when the pair is contiguous already
_TOP_SPLITS = 6
#: largest district that gets several restarts by default
_RESTART_LIMIT = 100_000
#: weight of one household above the cap against one square metre of spread
_EXCESS_WEIGHT = 1e9
_STATUSES = ("ok", "undersized", "oversized", "non_contiguous", "households_over_cap")


class PartitionInputError(InputError):
    """The buildings or the options cannot be partitioned (columns, sizes, locked grids)."""


@dataclass(frozen=True)
class PartitionResult:
    """Each building's grid and the facts of every grid.

    Attributes
    ----------
    labels : Series
        Grid key of every building, aligned to the input index (``"<community>/<nnn>"``).
    grids : DataFrame
        One row per grid, as returned by :func:`grid_report`.
    summary : dict
        District figures, as returned by :func:`partition_summary`.
    """

    labels: pd.Series
    grids: pd.DataFrame
    summary: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- sizes


def is_feasible_count(n: int, min_size: int, max_size: int) -> bool:
    """Whether ``n`` buildings split into grids that all hold ``min_size..max_size``.

    Examples
    --------
    >>> [n for n in range(1, 13) if not is_feasible_count(n, 4, 5)]
    [1, 2, 3, 6, 7, 11]
    """
    if n <= 0:
        return n == 0
    return math.ceil(n / max_size) * min_size <= n


def _least_bad_sizes(n: int, min_size: int, max_size: int) -> list[int]:
    """Grid sizes for ``n`` buildings: valid if possible, else the smallest total violation.

    Ties are broken towards fewer grids (fewer workers).
    """
    best: tuple[int, int] | None = None
    sizes: list[int] = [n]
    for k in range(1, max(1, n // max(1, min_size)) + 2):
        if k > n:
            break
        q, r = divmod(n, k)
        parts = [q + 1] * r + [q] * (k - r)
        violation = sum(max(0, min_size - s) + max(0, s - max_size) for s in parts)
        if best is None or (violation, k) < best:
            best, sizes = (violation, k), parts
    return sizes


def _grid_count(n: int, min_size: int, max_size: int) -> int:
    """Number of grids for a feasible count: the one nearest the middle size."""
    k_lo, k_hi = math.ceil(n / max_size), n // min_size
    return int(np.clip(round(n / ((min_size + max_size) / 2)), k_lo, k_hi))


# --------------------------------------------------------------------------- validation


def _check_options(min_size: int, max_size: int, max_households: int | None) -> None:
    if min_size < 1 or max_size < min_size:
        raise PartitionInputError(
            f"grid sizes must satisfy 1 <= min_size <= max_size, got {min_size}..{max_size}"
        )
    if max_households is not None and max_households < 1:
        raise PartitionInputError(f"max_households must be positive, got {max_households}")


def _check_buildings(buildings: gpd.GeoDataFrame) -> None:
    if len(buildings) == 0:
        raise PartitionInputError("no buildings to partition")
    if "community" not in buildings.columns:
        raise PartitionInputError("buildings have no 'community' column")
    if buildings["community"].isna().any():
        n = int(buildings["community"].isna().sum())
        raise PartitionInputError(f"{n} buildings have no community")
    if not buildings.index.is_unique:
        raise PartitionInputError("the buildings' index has duplicate labels")


def _households(buildings: gpd.GeoDataFrame) -> np.ndarray | None:
    if "households" not in buildings.columns or buildings["households"].isna().all():
        return None
    return pd.to_numeric(buildings["households"]).fillna(0).to_numpy(dtype=np.float64)


# --------------------------------------------------------------------------- small graphs


def _component_count(adj: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Connected pieces of many tiny graphs at once.

    ``adj`` is ``(c, w, w)`` boolean, ``valid`` ``(c, w)`` marks real nodes. Reachability comes
    from Warshall's closure of ``adj | I``; a piece of ``s`` nodes contributes ``s * 1/s``.
    """
    w = adj.shape[-1]
    r = (adj & valid[:, :, None] & valid[:, None, :]) | (np.eye(w, dtype=bool) & valid[:, :, None])
    for k in range(w):  # Warshall's transitive closure, all graphs at once
        r |= r[:, :, k, None] & r[:, None, k, :]
    size = r.sum(axis=2)
    return np.rint(np.where(valid, 1.0 / np.maximum(size, 1.0), 0.0).sum(axis=1)).astype(np.int64)


class _EdgeSet:
    """Membership test for undirected edges by position pairs, vectorised."""

    def __init__(self, edges: np.ndarray, n: int) -> None:
        self.n = np.int64(max(n, 1))
        keys = np.concatenate(
            [edges[:, 0] * self.n + edges[:, 1], edges[:, 1] * self.n + edges[:, 0]]
        )
        self.keys = np.sort(keys)

    def contains(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        key = a.astype(np.int64) * self.n + b.astype(np.int64)
        pos = np.searchsorted(self.keys, key)
        pos = np.minimum(pos, len(self.keys) - 1)
        found = self.keys[pos] == key if len(self.keys) else np.zeros(key.shape, dtype=bool)
        return found & (a >= 0) & (b >= 0)


# --------------------------------------------------------------------------- step 1: units


def _merge_small_pieces(
    xy: np.ndarray, members: np.ndarray, piece: np.ndarray, min_size: int, max_size: int
) -> np.ndarray:
    """Join pieces of infeasible size to their nearest piece until every unit is feasible."""
    unit = piece.copy()
    tree = cKDTree(xy[members])
    while True:
        sizes = pd.Series(unit).value_counts()
        bad = [u for u, s in sizes.items() if not is_feasible_count(int(s), min_size, max_size)]
        if not bad or len(sizes) == 1:
            return unit
        worst = min(bad, key=lambda u: (sizes[u], u))
        inside = np.flatnonzero(unit == worst)
        k = min(len(members), len(inside) + 8)
        while True:
            dist, idx = tree.query(xy[members[inside]], k=k)
            other = unit[idx] != worst
            if other.any() or k >= len(members):
                break
            k = min(len(members), 2 * k)
        dist = np.where(other, dist, np.inf)
        target = unit[idx.ravel()[np.argmin(dist)]]
        unit[unit == worst] = target


def _units(
    xy: np.ndarray,
    community: np.ndarray,
    free: np.ndarray,
    adjacency: sparse.sparray,
    min_size: int,
    max_size: int,
) -> np.ndarray:
    """Unit id of every free building (``-1`` for locked ones); units never cross communities."""
    labels = community.astype(np.int64).copy()
    labels[~free] = -1 - np.arange(int((~free).sum()))
    piece = community_components(adjacency, labels)
    piece = np.where(free, piece, -1)
    unit = piece.copy()
    frame = pd.DataFrame({"community": community[free], "piece": piece[free]})
    counts = frame.groupby("piece").size()
    infeasible_pieces = counts.index[
        [not is_feasible_count(int(s), min_size, max_size) for s in counts.to_numpy()]
    ]
    pieces_per_comm = frame.groupby("community")["piece"].nunique()
    flagged = frame.loc[frame["piece"].isin(infeasible_pieces), "community"].unique()
    for comm in np.sort(flagged):
        if pieces_per_comm[comm] < 2:
            continue
        members = np.flatnonzero(free & (community == comm))
        merged = _merge_small_pieces(xy, members, piece[members], min_size, max_size)
        unit[members] = merged
    return unit


# --------------------------------------------------------------------------- step 2: cut


def _hilbert_rank(xy: np.ndarray, seed: int, restart: int = 0) -> np.ndarray:
    """Position on a Hilbert curve, the plane turned by an angle drawn from ``(seed, restart)``."""
    if seed or restart:
        angle = np.random.default_rng([seed, restart]).uniform(0, 2 * np.pi)
        c, s = np.cos(angle), np.sin(angle)
        xy = xy @ np.array([[c, -s], [s, c]])
    points = gpd.GeoSeries(gpd.points_from_xy(xy[:, 0], xy[:, 1]))
    return points.hilbert_distance().to_numpy()


def _plan_chunks(
    unit_sizes: np.ndarray, min_size: int, max_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split every unit into chunks: returns per chunk (unit, n, k, lo, hi)."""
    rows = []
    for u, n in enumerate(unit_sizes.tolist()):
        if is_feasible_count(n, min_size, max_size):
            k = _grid_count(n, min_size, max_size)
            q, r = divmod(n, k)
            sizes = np.array([q + 1] * r + [q] * (k - r))
            lo, hi = min_size, max_size
        else:
            sizes = np.array(_least_bad_sizes(n, min_size, max_size))
            lo, hi = int(sizes.min()), int(sizes.max())
        for start in range(0, len(sizes), _CHUNK_GRIDS):
            part = sizes[start : start + _CHUNK_GRIDS]
            rows.append((u, int(part.sum()), len(part), lo, hi))
    table = np.array(rows, dtype=np.int64).reshape(-1, 5)
    return table[:, 0], table[:, 1], table[:, 2], table[:, 3:5]


def _cut_runs(
    xy: np.ndarray, n_c: np.ndarray, k_c: np.ndarray, bounds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Run ids of the concatenated chunks (exactly ``k_c`` runs each) and each run's chunk.

    Dynamic programming over the number of runs, vectorised across all chunks: ``dp[j][b]`` is
    the least spread of ``j`` runs ending at slot ``b``. Chunks are processed longest-``k`` first so
    that the chunks still active in round ``j`` form a prefix of the slot array.
    """
    n_chunks = len(n_c)
    order = np.argsort(-k_c, kind="stable")
    start_pos = np.concatenate([[0], np.cumsum(n_c)])[:-1]
    # slot layout in processing order: chunk c holds n_c + 1 boundary slots
    n_sorted = n_c[order]
    slot0 = np.concatenate([[0], np.cumsum(n_sorted + 1)])[:-1]
    total = int((n_sorted + 1).sum())
    chunk_of_slot = np.repeat(np.arange(n_chunks), n_sorted + 1)
    local = np.arange(total) - slot0[chunk_of_slot]
    pos = start_pos[order][chunk_of_slot] + local - 1  # point before the slot
    pts = xy[np.clip(pos, 0, len(xy) - 1)]
    # centre per chunk for precision, then prefix sums restarted at each chunk
    mean = np.zeros((n_chunks, 2))
    for d in range(2):
        mean[:, d] = np.bincount(chunk_of_slot, np.where(local > 0, pts[:, d], 0), n_chunks)
    mean /= np.maximum(n_sorted, 1)[:, None]
    pts = np.where((local > 0)[:, None], pts - mean[chunk_of_slot], 0.0)
    vals = np.column_stack([pts, (pts**2).sum(axis=1)])
    cum = np.cumsum(vals, axis=0)
    cum -= cum[slot0[chunk_of_slot]]
    lo, hi = bounds[order, 0], bounds[order, 1]
    sizes = np.arange(int(lo.min()), int(hi.max()) + 1)
    k_sorted = k_c[order]
    active_end = np.concatenate([[0], np.cumsum(n_sorted + 1)])
    # cost[s][a]: spread of the run of s points starting at slot a (inf where it leaves the chunk)
    cost = {}
    for s in sizes.tolist():
        a = np.arange(total - s)
        d = cum[a + s] - cum[a]
        c = chunk_of_slot[a]
        ok = (local[a] + s <= n_sorted[c]) & (s >= lo[c]) & (s <= hi[c])
        cost[s] = np.where(ok, d[:, 2] - (d[:, 0] ** 2 + d[:, 1] ** 2) / s, np.inf)
    dp = np.where(local == 0, 0.0, np.inf)
    choices = []
    for j in range(1, int(k_sorted.max()) + 1):
        end = int(active_end[np.searchsorted(-k_sorted, -j, side="right")])
        new = np.full(total, np.inf)
        pick = np.zeros(total, dtype=np.int8)
        for s in sizes.tolist():
            if end <= s:
                continue
            trial = dp[: end - s] + cost[s][: end - s]
            better = trial < new[s:end]
            new[s:end] = np.where(better, trial, new[s:end])
            pick[s:end] = np.where(better, s, pick[s:end])
        dp = new
        choices.append(pick)
    # backtrack all chunks together
    choice = np.stack(choices) if choices else np.zeros((0, total), dtype=np.int8)
    cur_b = slot0 + n_sorted
    cur_j = k_sorted.copy()
    cut_slots = []
    while (cur_j > 0).any():
        act = np.flatnonzero(cur_j > 0)
        s = choice[cur_j[act] - 1, cur_b[act]].astype(np.int64)
        if (s == 0).any():
            raise AssertionError("partition DP found no valid cut")  # cannot happen: sizes feasible
        cur_b[act] -= s
        cur_j[act] -= 1
        cut_slots.append(cur_b[act])
    starts = np.zeros(total, dtype=bool)
    if cut_slots:
        starts[np.concatenate(cut_slots)] = True
    # slot b (local >= 1) is the point at local index b-1; a run starts at slot a covers point a
    point_slots = np.flatnonzero(local > 0)
    run = np.cumsum(starts[point_slots - 1]) - 1
    out = np.empty(len(xy), dtype=np.int64)
    out[pos[point_slots]] = run
    return out, np.repeat(order, k_sorted)


def _initial_grids(
    xy: np.ndarray,
    unit: np.ndarray,
    free: np.ndarray,
    hilbert: np.ndarray,
    min_size: int,
    max_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Grid id (``-1`` for locked) and per-grid size bounds ``(g, 2)`` from the Hilbert cut."""
    grid = np.full(len(xy), -1, dtype=np.int64)
    idx = np.flatnonzero(free)
    if len(idx) == 0:
        return grid, np.empty((0, 2), dtype=np.int64)
    ucode, uid = pd.factorize(unit[idx], sort=True)
    order = idx[np.lexsort((hilbert[idx], ucode))]
    sizes = np.bincount(ucode, minlength=len(uid))
    _, n_c, k_c, bounds = _plan_chunks(sizes, min_size, max_size)
    run, chunk_of_run = _cut_runs(xy[order], n_c, k_c, bounds)
    grid[order] = run
    return grid, bounds[chunk_of_run]


# --------------------------------------------------------------------------- step 3: improve


@dataclass
class _State:
    """Working state of the improvement: labels and per-grid sums on centred coordinates."""

    xy: np.ndarray
    grid: np.ndarray
    bounds: np.ndarray
    households: np.ndarray | None
    cap: float | None
    edges: np.ndarray
    edge_set: _EdgeSet
    indptr: np.ndarray
    indices: np.ndarray

    def _sums(self, nodes: np.ndarray, sign: float = 1.0) -> list[np.ndarray | None]:
        g = len(self.bounds)
        lab, xy = self.grid[nodes], self.xy[nodes]
        hh = self.households
        return [
            sign * np.bincount(lab, minlength=g).astype(np.float64),
            sign * np.bincount(lab, xy[:, 0], g),
            sign * np.bincount(lab, xy[:, 1], g),
            sign * np.bincount(lab, (xy**2).sum(axis=1), g),
            sign * np.bincount(lab, hh[nodes], g) if hh is not None else None,
        ]

    def stats(self) -> tuple[np.ndarray, ...]:
        """Per grid: count, sum of x, sum of y, sum of squared norms, households (cached)."""
        if getattr(self, "_stats", None) is None:
            self._stats = self._sums(np.flatnonzero(self.grid >= 0))
        return tuple(self._stats)

    def move(self, nodes: np.ndarray, to: np.ndarray) -> None:
        """Give ``nodes`` the grids ``to``, keeping the cached sums current."""
        self.stats()
        gone = self._sums(nodes, -1.0)
        self.grid[nodes] = to
        came = self._sums(nodes)
        self._stats = [
            None if s is None else s + d + c
            for s, d, c in zip(self._stats, gone, came, strict=True)
        ]

    def incident(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Directed edges ``(src, dst)`` leaving ``nodes``."""
        start, stop = self.indptr[nodes], self.indptr[nodes + 1]
        count = stop - start
        src = np.repeat(nodes, count)
        offset = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        return src, self.indices[np.repeat(start, count) + offset]

    def members(self, width: int, only: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(g, width)`` member positions (``-1`` padding) and the slot of every building.

        With ``only`` (a mask of grids) the other rows stay empty, which keeps late rounds cheap.
        """
        g = len(self.bounds)
        ok = self.grid >= 0
        if only is not None:
            ok[ok] = only[self.grid[ok]]
        ok = np.flatnonzero(ok)
        order = ok[np.argsort(self.grid[ok], kind="stable")]
        lab = self.grid[order]
        first = np.searchsorted(lab, np.arange(g))
        slot = np.arange(len(order)) - first[lab]
        table = np.full((g, width), -1, dtype=np.int64)
        table[lab, slot] = order
        slot_of = np.full(len(self.grid), -1, dtype=np.int64)
        slot_of[order] = slot
        return table, slot_of


def _sse(n: np.ndarray, sx: np.ndarray, sy: np.ndarray, q: np.ndarray) -> np.ndarray:
    return np.where(n > 0, q - (sx**2 + sy**2) / np.maximum(n, 1), 0.0)


def _excess(hh: np.ndarray | None, cap: float | None) -> np.ndarray | float:
    if hh is None or cap is None:
        return 0.0
    return np.maximum(hh - cap, 0.0)


def _candidates(state: _State, dirty: np.ndarray | None) -> dict[str, np.ndarray]:
    """Moves ``u -> grid b`` (``v = -1``) and swaps ``u <-> v`` between neighbouring grids.

    ``u`` must touch grid ``b`` and, for a swap, ``v`` (in ``b``) must touch ``u``'s grid ``a``.
    With ``dirty``, only pairs of grids of which one changed last round are listed.
    """
    lab = state.grid
    if dirty is None:
        src = np.concatenate([state.edges[:, 0], state.edges[:, 1]])
        dst = np.concatenate([state.edges[:, 1], state.edges[:, 0]])
    else:
        # every edge touching a changed grid, in both directions
        src, dst = state.incident(np.flatnonzero((lab >= 0) & dirty[lab]))
        src, dst = np.concatenate([src, dst]), np.concatenate([dst, src])
    la, lb = lab[src], lab[dst]
    cross = (la != lb) & (la >= 0) & (lb >= 0)
    g = np.int64(len(state.bounds))
    key = src[cross] * g + lb[cross]
    key = np.sort(key)
    key = key[np.concatenate([[True], key[1:] != key[:-1]])] if len(key) else key
    u, b = key // g, key % g
    a = lab[u]
    # swaps: join rows (u in a, touching b) with rows (v in b, touching a) on the grid pair
    pair = np.where(a < b, a * g + b, b * g + a)
    side, other = np.flatnonzero(a < b), np.flatnonzero(a > b)
    other = other[np.argsort(pair[other], kind="stable")]
    lo = np.searchsorted(pair[other], pair[side], side="left")
    hi = np.searchsorted(pair[other], pair[side], side="right")
    count = hi - lo
    s_idx = np.repeat(side, count)
    o_idx = other[
        np.repeat(lo, count)
        + np.arange(int(count.sum()))
        - np.repeat(np.cumsum(count) - count, count)
    ]
    none = np.full(len(u), -1, dtype=np.int64)
    return {
        "u": np.concatenate([u, u[s_idx]]),
        "a": np.concatenate([a, a[s_idx]]),
        "b": np.concatenate([b, b[s_idx]]),
        "v": np.concatenate([none, u[o_idx]]),
    }


def _select(cand: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, np.ndarray]:
    return {name: values[keep] for name, values in cand.items()}


def _evaluate(state: _State, cand: dict[str, np.ndarray], stats):
    """Size check and the deltas of households above the cap and of spread for each candidate."""
    n, sx, sy, q, hh = stats
    u, a, b, v = cand["u"], cand["a"], cand["b"], cand["v"]
    swap = v >= 0
    lo, hi = state.bounds[:, 0], state.bounds[:, 1]
    size_ok = swap | ((n[a] > lo[a]) & (n[b] < hi[b]))
    xu, xv = state.xy[u], np.where(swap[:, None], state.xy[np.maximum(v, 0)], 0.0)
    qu, qv = (xu**2).sum(axis=1), (xv**2).sum(axis=1)
    dn = np.where(swap, 0.0, 1.0)
    na, nb = n[a] - dn, n[b] + dn
    sxa, sya, qa = sx[a] - xu[:, 0] + xv[:, 0], sy[a] - xu[:, 1] + xv[:, 1], q[a] - qu + qv
    sxb, syb, qb = sx[b] + xu[:, 0] - xv[:, 0], sy[b] + xu[:, 1] - xv[:, 1], q[b] + qu - qv
    d_sse = _sse(na, sxa, sya, qa) + _sse(nb, sxb, syb, qb) - _sse(n[a], sx[a], sy[a], q[a])
    d_sse -= _sse(n[b], sx[b], sy[b], q[b])
    d_ex = np.zeros(len(u))
    if hh is not None and state.cap is not None:
        hu = state.households[u]
        hv = np.where(swap, state.households[np.maximum(v, 0)], 0.0)
        d_ex = _excess(hh[a] - hu + hv, state.cap) + _excess(hh[b] + hu - hv, state.cap)
        d_ex = d_ex - _excess(hh[a], state.cap) - _excess(hh[b], state.cap)
    return size_ok, d_sse, d_ex


def _pieces_after(
    state: _State, cand: dict[str, np.ndarray], table: np.ndarray, slot: np.ndarray, adj
):
    """Pieces of grids ``a`` and ``b`` after each candidate."""
    u, a, b, v = cand["u"], cand["a"], cand["b"], cand["v"]
    swap = v >= 0
    rows = np.arange(len(u))
    mem_a = table[a]
    mem_a[rows, slot[u]] = np.where(swap, v, -1)
    mem_b = table[b]
    free_slot = (mem_b >= 0).sum(axis=1)
    put = np.where(swap, slot[np.maximum(v, 0)], np.minimum(free_slot, table.shape[1] - 1))
    mem_b[rows, put] = u
    out = []
    for mem, grid, changed, newcomer in ((mem_a, a, slot[u], v), (mem_b, b, put, u)):
        sub = adj[grid]
        link = state.edge_set.contains(np.repeat(newcomer, mem.shape[1]), mem.ravel())
        link = link.reshape(mem.shape)
        sub[rows, changed, :] = link
        sub[rows, :, changed] = link
        out.append(_component_count(sub, mem >= 0))
    return out[0], out[1]


def _grid_adjacency(state: _State, table: np.ndarray, slot: np.ndarray) -> np.ndarray:
    """``(g, w, w)`` adjacency inside every grid listed in ``table`` (by slot)."""
    g, w = table.shape
    adj = np.zeros((g, w, w), dtype=bool)
    src, dst = state.incident(np.flatnonzero(slot >= 0))
    inner = (slot[dst] >= 0) & (state.grid[src] == state.grid[dst])
    src, dst = src[inner], dst[inner]
    adj[state.grid[src], slot[src], slot[dst]] = True
    return adj


def _improve_round(state: _State, dirty: np.ndarray | None) -> np.ndarray | None:
    """One round of moves; returns the grids to look at next round, or None when done."""
    cand = _candidates(state, dirty)
    if len(cand["u"]) == 0:
        return None
    stats = state.stats()
    size_ok, d_sse, d_ex = _evaluate(state, cand, stats)
    width = int(state.bounds[:, 1].max()) + 1
    a, b = cand["a"], cand["b"]
    involved = np.zeros(len(state.bounds), dtype=bool)
    involved[a] = True
    involved[b] = True
    table, slot = state.members(width, involved)
    adj = _grid_adjacency(state, table, slot)
    pieces = np.zeros(len(state.bounds), dtype=np.int64)
    pieces[involved] = _component_count(adj[involved], table[involved] >= 0)
    scale = 1e-9 * (1.0 + np.abs(stats[3][a]) + np.abs(stats[3][b]))
    hopeful = size_ok & ((d_sse < -scale) | (d_ex < 0) | (pieces[a] > 1) | (pieces[b] > 1))
    cand, d_sse, d_ex, scale = _select(cand, hopeful), d_sse[hopeful], d_ex[hopeful], scale[hopeful]
    if len(cand["u"]) == 0:
        return None
    pa, pb = _pieces_after(state, cand, table, slot, adj)
    a, b = cand["a"], cand["b"]
    d_pieces = pa + pb - pieces[a] - pieces[b]
    better = (d_pieces < 0) | ((d_pieces == 0) & ((d_ex < 0) | ((d_ex == 0) & (d_sse < -scale))))
    if not better.any():
        return None
    cand = _select(cand, better)
    a, b, u, v = cand["a"], cand["b"], cand["u"], cand["v"]
    # each grid takes part in at most one change per round: the best one touching it
    rank = np.empty(len(u), dtype=np.int64)
    rank[np.lexsort((v, u, d_sse[better], d_ex[better], d_pieces[better]))] = np.arange(len(u))
    best = np.full(len(state.bounds), np.iinfo(np.int64).max)
    np.minimum.at(best, a, rank)
    np.minimum.at(best, b, rank)
    take = (best[a] == rank) & (best[b] == rank)
    swapped = take & (v >= 0)
    state.move(np.concatenate([u[take], v[swapped]]), np.concatenate([b[take], a[swapped]]))
    dirty = np.zeros(len(state.bounds), dtype=bool)
    dirty[a] = True
    dirty[b] = True
    return dirty


def _improve(state: _State) -> None:
    dirty = None
    for _ in range(_MAX_ROUNDS):
        dirty = _improve_round(state, dirty)
        if dirty is None:
            return


# --------------------------------------------------------------------------- step 4: repair


@cache
def _splits(m: int, lo: int, hi: int) -> np.ndarray:
    """All ways to split ``m`` nodes into two groups of ``lo..hi`` (mask of the first group)."""
    rows = []
    for s in range(lo, hi + 1):
        if lo <= m - s <= hi:
            for combo in itertools.combinations(range(m), s):
                if 0 in combo:  # the two groups are interchangeable
                    mask = np.zeros(m, dtype=bool)
                    mask[list(combo)] = True
                    rows.append(mask)
    return np.array(rows, dtype=bool).reshape(-1, m)


def _grid_pairs(state: _State, dirty: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Neighbouring grids ``(a, b)`` with ``a < b`` and equal size bounds (one of them dirty)."""
    lab = state.grid
    if dirty is None:
        src, dst = state.edges[:, 0], state.edges[:, 1]
    else:
        src, dst = state.incident(np.flatnonzero((lab >= 0) & dirty[lab]))
    la, lb = lab[src], lab[dst]
    ok = (la >= 0) & (lb >= 0) & (la != lb)
    g = np.int64(len(state.bounds))
    key = np.sort(np.minimum(la[ok], lb[ok]) * g + np.maximum(la[ok], lb[ok]))
    key = key[np.concatenate([[True], key[1:] != key[:-1]])] if len(key) else key
    a, b = key // g, key % g
    same = (state.bounds[a] == state.bounds[b]).all(axis=1)
    return a[same], b[same]


def _split_scores(state: _State, nodes: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Households excess (scaled) plus spread of every split ``masks`` of every node set."""
    pts = state.xy[nodes]
    pts = pts - pts.mean(axis=1, keepdims=True)
    q = (pts**2).sum(axis=-1)
    weight = masks.astype(np.float64)
    n1 = weight.sum(axis=-1)
    n2 = nodes.shape[1] - n1
    if masks.ndim == 2:  # the same masks for every node set
        s1 = np.einsum("sm,pmd->psd", weight, pts)
        q1 = q @ weight.T
    else:
        s1 = np.einsum("psm,pmd->psd", weight, pts)
        q1 = np.einsum("psm,pm->ps", weight, q)
    s2 = pts.sum(axis=1)[:, None, :] - s1
    q2 = q.sum(axis=1)[:, None] - q1
    score = q1 - (s1**2).sum(-1) / n1 + q2 - (s2**2).sum(-1) / n2
    if state.households is not None and state.cap is not None:
        h = state.households[nodes]
        h1 = h @ weight.T if masks.ndim == 2 else np.einsum("psm,pm->ps", weight, h)
        h2 = h.sum(axis=1)[:, None] - h1
        # households above the cap outrank any spread (a lexicographic order folded into one key)
        score = score + _EXCESS_WEIGHT * (_excess(h1, state.cap) + _excess(h2, state.cap))
    return score


def _best_splits(state: _State, nodes: np.ndarray, current: np.ndarray, pieces_now: np.ndarray):
    """For pairs of grids with the same member count: the best split and whether it is better."""
    m = nodes.shape[1]
    lo, hi = state.bounds[state.grid[nodes[0, 0]]]
    masks = _splits(m, int(lo), int(hi))
    now = _split_scores(state, nodes, current[:, None, :])[:, 0]
    scores = _split_scores(state, nodes, masks)
    tol = 1e-9 * (1.0 + np.abs(now))
    broken = pieces_now > 2
    top = min(_TOP_SPLITS, len(masks))
    # intact pairs: only the few best splits by spread can win; broken pairs: every split
    pick = np.argpartition(scores, top - 1, axis=1)[:, :top] if top < len(masks) else None
    out_mask = current.copy()
    gain = np.zeros(len(nodes), dtype=bool)
    key_pieces = pieces_now.copy()
    key_score = now.copy()
    for rows, choice in ((np.flatnonzero(~broken), pick), (np.flatnonzero(broken), None)):
        if len(rows) == 0:
            continue
        idx = (
            np.broadcast_to(np.arange(len(masks)), (len(rows), len(masks)))
            if choice is None
            else choice[rows]
        )
        hopeful = (scores[rows[:, None], idx] < (now - tol)[rows, None]) | broken[rows, None]
        keep = np.flatnonzero(hopeful.any(axis=1))
        if len(keep) == 0:
            continue
        rows, idx = rows[keep], idx[keep]
        sub = nodes[rows]
        link = state.edge_set.contains(
            np.repeat(sub, m, axis=1).ravel(), np.tile(sub, (1, m)).ravel()
        )
        link = link.reshape(len(rows), 1, m, m)
        cand = masks[idx]  # (r, k, m)
        adj = np.broadcast_to(link, (len(rows), cand.shape[1], m, m)).reshape(-1, m, m)
        flat = cand.reshape(-1, m)
        pieces = (_component_count(adj, flat) + _component_count(adj, ~flat)).reshape(
            cand.shape[:2]
        )
        score = scores[rows[:, None], idx]
        better = (pieces < pieces_now[rows, None]) | (
            (pieces == pieces_now[rows, None]) & (score < (now - tol)[rows, None])
        )
        # lexicographic per row: fewest pieces, then lowest score
        fewest = pieces.min(axis=1, keepdims=True)
        first = np.argmin(np.where(pieces == fewest, score, np.inf), axis=1)
        r = np.arange(len(rows))
        ok = better[r, first]
        gain[rows[ok]] = True
        out_mask[rows[ok]] = cand[r[ok], first[ok]]
        key_pieces[rows[ok]] = pieces[r[ok], first[ok]]
        key_score[rows[ok]] = score[r[ok], first[ok]]
    return gain, out_mask, key_pieces - pieces_now, key_score - now


def _pair_round(state: _State, dirty: np.ndarray | None) -> np.ndarray | None:
    """Re-split pairs of neighbouring grids optimally; returns the changed grids or None."""
    a, b = _grid_pairs(state, dirty)
    if len(a) == 0:
        return None
    g_count = len(state.bounds)
    width = int(state.bounds[:, 1].max()) + 1
    involved = np.zeros(g_count, dtype=bool)
    involved[a] = True
    involved[b] = True
    table, slot = state.members(width, involved)
    pieces = np.zeros(g_count, dtype=np.int64)
    pieces[involved] = _component_count(
        _grid_adjacency(state, table, slot)[involved], table[involved] >= 0
    )
    m = (table >= 0).sum(axis=1)[a] + (table >= 0).sum(axis=1)[b]
    lo, hi = state.bounds[a, 0], state.bounds[a, 1]
    found = []
    for mm, low, high in sorted(set(zip(m.tolist(), lo.tolist(), hi.tolist(), strict=True))):
        masks = _splits(mm, low, high)
        if len(masks) == 0:
            continue
        sel = np.flatnonzero((m == mm) & (lo == low) & (hi == high))
        step = max(1, 2_000_000 // len(masks))
        for start in range(0, len(sel), step):
            s = sel[start : start + step]
            nodes = -np.sort(-np.concatenate([table[a[s]], table[b[s]]], axis=1), axis=1)[:, :mm]
            current = state.grid[nodes] == a[s, None]
            gain, mask, d_pieces, d_score = _best_splits(
                state, nodes, current, pieces[a[s]] + pieces[b[s]]
            )
            for i in np.flatnonzero(gain).tolist():
                found.append(
                    (d_pieces[i], d_score[i], int(a[s[i]]), int(b[s[i]]), nodes[i], mask[i])
                )
    if not found:
        return None
    d_p = np.array([f[0] for f in found])
    d_s = np.array([f[1] for f in found])
    pa = np.array([f[2] for f in found])
    pb = np.array([f[3] for f in found])
    rank = np.empty(len(found), dtype=np.int64)
    rank[np.lexsort((pb, pa, d_s, d_p))] = np.arange(len(found))
    best = np.full(g_count, np.iinfo(np.int64).max)
    np.minimum.at(best, pa, rank)
    np.minimum.at(best, pb, rank)
    take = np.flatnonzero((best[pa] == rank) & (best[pb] == rank))
    nodes = np.concatenate([found[i][4] for i in take])
    to = np.concatenate([np.where(found[i][5], found[i][2], found[i][3]) for i in take])
    state.move(nodes, to)
    dirty = np.zeros(g_count, dtype=bool)
    dirty[pa[take]] = True
    dirty[pb[take]] = True
    return dirty


def _polish(state: _State) -> None:
    """Pair re-splits until no pair of neighbouring grids can be split better."""
    dirty = None
    for _ in range(_MAX_ROUNDS):
        dirty = _pair_round(state, dirty)
        if dirty is None:
            return


# --------------------------------------------------------------------------- keys and report


def _grid_keys(
    grid: np.ndarray, community_names: np.ndarray, hilbert: np.ndarray, taken: set[str]
) -> np.ndarray:
    """``"<community>/<nnn>"`` per grid id, numbered along the Hilbert curve, skipping ``taken``."""
    ok = np.flatnonzero(grid >= 0)
    frame = pd.DataFrame({"grid": grid[ok], "community": community_names[ok], "h": hilbert[ok]})
    first = frame.groupby("grid").agg(community=("community", "first"), h=("h", "min"))
    first = first.sort_values(["community", "h"], kind="stable")
    keys = np.empty(int(grid.max()) + 1 if len(ok) else 0, dtype=object)
    for comm, block in first.groupby("community", sort=False):
        number, out = 0, []
        for _ in range(len(block)):
            number += 1
            while f"{comm}/{number:03d}" in taken:
                number += 1
            out.append(f"{comm}/{number:03d}")
        keys[block.index.to_numpy()] = out
    return keys


def _diameters(xy: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Largest centroid-to-centroid distance in each group (0 for single buildings)."""
    order = np.argsort(codes, kind="stable")
    size = np.bincount(codes, minlength=n_groups)
    first = np.concatenate([[0], np.cumsum(size)])[:-1]
    out = np.zeros(n_groups)
    for s in np.unique(size[(size > 1) & (size <= 32)]).tolist():
        groups = np.flatnonzero(size == s)
        pts = xy[order[first[groups][:, None] + np.arange(s)]]
        out[groups] = np.sqrt(((pts[:, :, None] - pts[:, None]) ** 2).sum(axis=-1)).max(axis=(1, 2))
    for g in np.flatnonzero(size > 32).tolist():
        pts = xy[order[first[g] : first[g] + size[g]]]
        corners = shapely.get_coordinates(shapely.convex_hull(shapely.multipoints(pts)))
        out[g] = np.sqrt(((corners[:, None] - corners[None]) ** 2).sum(-1)).max()
    return out


def _reasons(row: pd.Series, min_size: int, max_size: int, cap: float | None) -> tuple[str, str]:
    n, cn = int(row["n_buildings"]), int(row["community_buildings"])
    comm = row["community"]
    status = row["status"]
    if status == "undersized" and not is_feasible_count(cn, min_size, max_size) and cn < min_size:
        return (
            f"community {comm} has {cn} building{'s' if cn != 1 else ''}, fewer than {min_size}: too few for a regular grid",
            f"社区仅有 {cn} 栋楼，不足 {min_size} 栋，无法组成规范网格",
        )
    if status in ("undersized", "oversized") and not is_feasible_count(cn, min_size, max_size):
        return (
            f"community {comm} has {cn} buildings, which cannot be split into grids of "
            f"{min_size} to {max_size}; this grid has {n}",
            f"社区共 {cn} 栋楼，无法全部分成每格 {min_size}–{max_size} 栋的网格，本网格 {n} 栋",
        )
    if status == "undersized":
        return (
            f"grid has {n} buildings, fewer than the minimum of {min_size}",
            f"网格仅有 {n} 栋楼，少于下限 {min_size} 栋",
        )
    if status == "oversized":
        return (
            f"grid has {n} buildings, more than the maximum of {max_size}",
            f"网格有 {n} 栋楼，超过上限 {max_size} 栋",
        )
    if status == "non_contiguous":
        pieces = int(row["pieces"])
        if row["forced"]:
            return (
                f"grid's buildings lie in {pieces} separate groups: part of the community is cut off "
                f"from the rest (open space, water or a major road) and holds too few buildings for a "
                f"grid of its own, so this grid bridges the gap",
                f"网格内楼栋分成 {pieces} 片：社区有一小片楼栋与其余部分隔开（空地、水面或主干道），"
                f"楼栋数不足以单独成格，由本网格跨越连接",
            )
        return (
            f"grid's buildings lie in {pieces} separate groups that are not neighbours",
            f"网格内楼栋分成 {pieces} 片，彼此不相邻",
        )
    if status == "households_over_cap":
        return (
            f"grid has {int(row['households'])} households, above the cap of {int(cap or 0)}",
            f"网格共 {int(row['households'])} 户，超过上限 {int(cap or 0)} 户",
        )
    return "", ""


def grid_report(
    buildings: gpd.GeoDataFrame,
    labels: pd.Series,
    *,
    adjacency: sparse.sparray | None = None,
    min_size: int = 4,
    max_size: int = 5,
    max_households: int | None = None,
) -> pd.DataFrame:
    """The facts of every grid of any labelling (a fresh partition or a planner's edit).

    Parameters
    ----------
    buildings : GeoDataFrame
        Footprints in a metric CRS with ``community`` (and optionally ``households``).
    labels : Series
        Grid key per building, aligned to ``buildings.index``; missing keys raise.
    adjacency : sparse matrix, optional
        The graph to judge contiguity on; built with :func:`building_adjacency` if omitted.
    min_size, max_size, max_households
        The rules to check.

    Returns
    -------
    DataFrame
        One row per grid: ``grid_key``, ``community``, ``n_buildings``, ``households`` (nullable),
        ``diameter_m``, ``contiguous``, ``pieces``, ``status`` (``ok``, ``undersized``,
        ``oversized``, ``non_contiguous``, ``households_over_cap``), ``reason``, ``reason_zh``.
        A grid spanning two communities raises :class:`PartitionInputError`.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> squares = [shapely.box(10 * i, 0, 10 * i + 8, 8) for i in range(5)]
    >>> gdf = gpd.GeoDataFrame({"community": ["a"] * 5}, geometry=squares, crs=3857)
    >>> report = grid_report(gdf, pd.Series(["a/001"] * 5, index=gdf.index))
    >>> report[["grid_key", "n_buildings", "contiguous", "status"]].values.tolist()
    [['a/001', 5, True, 'ok']]
    """
    _check_options(min_size, max_size, max_households)
    _check_buildings(buildings)
    labels = labels.reindex(buildings.index)
    if labels.isna().any():
        raise PartitionInputError(f"{int(labels.isna().sum())} buildings have no grid")
    xy = centroid_coordinates(buildings)
    if adjacency is None:
        adjacency = building_adjacency(buildings, min_size=min_size)
    codes, keys = pd.factorize(labels.astype(str), sort=True)
    community = buildings["community"].astype(str).to_numpy()
    frame = pd.DataFrame({"g": codes, "community": community})
    per_grid = frame.groupby("g")["community"].agg(["first", "nunique"])
    if (per_grid["nunique"] > 1).any():
        bad = keys[per_grid.index[per_grid["nunique"] > 1][0]]
        raise PartitionInputError(f"grid {bad!r} spans more than one community")
    n_grids = len(keys)
    size = np.bincount(codes, minlength=n_grids)
    grid_piece = community_components(adjacency, codes)
    pieces = frame.assign(p=grid_piece).groupby("g")["p"].nunique().to_numpy()
    comm_piece = community_components(adjacency, community)
    forced = frame.assign(p=comm_piece).groupby("g")["p"].nunique().to_numpy() > 1
    hh = _households(buildings)
    households = (
        pd.array(np.bincount(codes, hh, n_grids).round().astype(np.int64), dtype="Int64")
        if hh is not None
        else pd.array([pd.NA] * n_grids, dtype="Int64")
    )
    report = pd.DataFrame(
        {
            "grid_key": np.asarray(keys, dtype=object),
            "community": per_grid["first"].to_numpy(),
            "n_buildings": size,
            "households": households,
            "diameter_m": _diameters(xy, codes, n_grids).round(1),
            "contiguous": pieces == 1,
            "pieces": pieces,
            "forced": forced,
        }
    )
    report["community_buildings"] = report["community"].map(pd.Series(community).value_counts())
    status = np.select(
        [
            size < min_size,
            size > max_size,
            pieces > 1,
            (max_households is not None)
            & (report["households"].fillna(0).to_numpy() > (max_households or 0)),
        ],
        ["undersized", "oversized", "non_contiguous", "households_over_cap"],
        default="ok",
    )
    report["status"] = status
    text = [("", "")] * len(report)
    for i in np.flatnonzero(status != "ok").tolist():
        text[i] = _reasons(report.iloc[i], min_size, max_size, max_households)
    report["reason"] = [t[0] for t in text]
    report["reason_zh"] = [t[1] for t in text]
    return report.drop(columns=["forced", "community_buildings"])


def partition_summary(grids: pd.DataFrame, *, min_size: int = 4, max_size: int = 5) -> dict:
    """District figures of a grid report: counts, shares, diameters, flagged communities.

    Examples
    --------
    >>> grids = pd.DataFrame({"community": ["a", "b"], "n_buildings": [5, 3],
    ...     "contiguous": [True, True], "diameter_m": [40.0, 20.0],
    ...     "status": ["ok", "undersized"], "reason": ["", "too few"], "reason_zh": ["", "太少"]})
    >>> partition_summary(grids)["share_in_range"]
    0.5
    """
    n = len(grids)
    in_range = grids["n_buildings"].between(min_size, max_size)
    flagged = grids[grids["status"] != "ok"]
    by_comm = [
        {
            "community": comm,
            "statuses": sorted(block["status"].unique().tolist()),
            "grids": len(block),
            "reason": block["reason"].iloc[0],
            "reason_zh": block["reason_zh"].iloc[0],
        }
        for comm, block in flagged.groupby("community", sort=True)
    ]
    diam = grids["diameter_m"].to_numpy(dtype=float)
    return {
        "buildings": int(grids["n_buildings"].sum()),
        "grids": n,
        "share_in_range": float(in_range.mean()) if n else 1.0,
        "share_contiguous": float(grids["contiguous"].mean()) if n else 1.0,
        "mean_diameter_m": float(diam.mean()) if n else 0.0,
        "p95_diameter_m": float(np.percentile(diam, 95)) if n else 0.0,
        "max_diameter_m": float(diam.max()) if n else 0.0,
        "flagged_communities": by_comm,
    }


# --------------------------------------------------------------------------- entry point


def _locked_labels(buildings: gpd.GeoDataFrame, locked: pd.Series | None) -> pd.Series:
    if locked is None:
        return pd.Series(pd.NA, index=buildings.index, dtype=object)
    missing = locked.index.difference(buildings.index)
    if len(missing):
        raise PartitionInputError(
            f"locked grids name {len(missing)} unknown buildings (first: {missing[0]!r})"
        )
    out = locked.reindex(buildings.index).astype(object)
    known = out.dropna()
    spans = buildings.loc[known.index, "community"].groupby(known.to_numpy()).nunique()
    if (spans > 1).any():
        raise PartitionInputError(
            f"locked grid {spans.index[spans > 1][0]!r} spans more than one community"
        )
    return out


def partition_buildings(
    buildings: gpd.GeoDataFrame,
    *,
    min_size: int = 4,
    max_size: int = 5,
    max_households: int | None = None,
    seed: int = 0,
    locked: pd.Series | None = None,
    roads: gpd.GeoDataFrame | None = None,
    adjacency: sparse.sparray | None = None,
    restarts: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PartitionResult:
    """Group each community's buildings into contiguous, compact grids of ``min_size..max_size``.

    Parameters
    ----------
    buildings : GeoDataFrame
        Footprints in a metric CRS with a ``community`` column; ``households`` (nullable) is used
        for the cap when present.
    min_size, max_size : int
        Allowed grid sizes. A community whose count cannot be split so gets the least-bad grids,
        flagged ``undersized``/``oversized`` with a reason.
    max_households : int, optional
        Households cap per grid; grids still above it are flagged ``households_over_cap``.
    seed : int
        Rotates the space-filling curve: the same input and seed give the same grids.
    locked : Series, optional
        Building index -> grid key of grids the planner locked; they are kept exactly and the rest
        of their community is partitioned around them.
    roads : GeoDataFrame, optional
        Road lines (``kind`` column); grids avoid crossing major roads where the block allows.
    adjacency : sparse matrix, optional
        A precomputed :func:`building_adjacency` graph (by position).
    restarts : int, optional
        Runs with the curve turned differently; each community keeps its best run. By default
        4 up to 100,000 buildings, else 1.
    progress : callable, optional
        Called as ``progress(done, total)`` after each run (the engine works on all communities
        at once, so progress counts runs, not communities).

    Returns
    -------
    PartitionResult

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> squares = [shapely.box(10 * i, 10 * j, 10 * i + 8, 10 * j + 8) for i in range(3) for j in range(3)]
    >>> gdf = gpd.GeoDataFrame({"community": ["a"] * 9}, geometry=squares, crs=3857)
    >>> result = partition_buildings(gdf)
    >>> sorted(result.grids["n_buildings"].tolist()), result.summary["share_contiguous"]
    ([4, 5], 1.0)
    """
    _check_options(min_size, max_size, max_households)
    _check_buildings(buildings)
    tick = progress or (lambda done, total: None)
    xy = centroid_coordinates(buildings)
    if adjacency is None:
        adjacency = building_adjacency(buildings, roads=roads, min_size=min_size)
    names = buildings["community"].astype(str).to_numpy()
    community, _ = pd.factorize(names, sort=True)
    locked_keys = _locked_labels(buildings, locked)
    free = locked_keys.isna().to_numpy()
    # centre each community so the spread sums stay precise in large projected coordinates
    local_xy = xy - pd.DataFrame(xy).groupby(community).transform("mean").to_numpy()
    unit = _units(local_xy, community, free, adjacency, min_size, max_size)
    shared = _shared_state(local_xy, adjacency, buildings, max_households)
    runs = restarts if restarts is not None else (4 if len(xy) <= _RESTART_LIMIT else 1)
    tick(0, runs + 1)
    grid, score = None, None
    for restart in range(max(1, runs)):
        hilbert = _hilbert_rank(xy, seed, restart)
        grid0, bounds = _initial_grids(local_xy, unit, free, hilbert, min_size, max_size)
        state = _State(grid=grid0, bounds=bounds, **shared)
        if len(state.bounds):
            _improve(state)
            _polish(state)
        run_score = _community_scores(state, community)
        if grid is None:
            grid, score = state.grid.copy(), run_score
        else:
            # community by community, keep the run with fewer pieces, less excess, less spread
            wins = _lexically_smaller(run_score, score)
            take = wins[community] & free
            grid[take] = state.grid[take] + int(grid.max()) + 1
            score = np.where(wins[:, None], run_score, score)
        tick(restart + 1, runs + 1)
    grid[free] = pd.factorize(grid[free], sort=True)[0]
    taken = set(locked_keys.dropna().astype(str))
    keys = _grid_keys(grid, names, _hilbert_rank(xy, seed), taken)
    labels = locked_keys.copy()
    labels[free] = keys[grid[free]]
    labels = labels.astype(str).rename("grid_key")
    grids = grid_report(
        buildings,
        labels,
        adjacency=adjacency,
        min_size=min_size,
        max_size=max_size,
        max_households=max_households,
    )
    tick(runs + 1, runs + 1)
    return PartitionResult(
        labels=labels,
        grids=grids,
        summary=partition_summary(grids, min_size=min_size, max_size=max_size),
    )


def _shared_state(local_xy, adjacency, buildings, max_households) -> dict:
    """The parts of :class:`_State` that do not change between restarts."""
    edges = edge_list(adjacency)
    csr = sparse.csr_array(adjacency)
    csr.sort_indices()
    return {
        "xy": local_xy,
        "households": _households(buildings),
        "cap": float(max_households) if max_households is not None else None,
        "edges": edges,
        "edge_set": _EdgeSet(edges, len(local_xy)),
        "indptr": csr.indptr.astype(np.int64),
        "indices": csr.indices.astype(np.int64),
    }


def _community_scores(state: _State, community: np.ndarray) -> np.ndarray:
    """Per community: grid pieces beyond one each, households above the cap, spread."""
    n_comm = int(community.max()) + 1 if len(community) else 0
    out = np.zeros((n_comm, 3))
    if not len(state.bounds):
        return out
    width = int(state.bounds[:, 1].max()) + 1
    table, slot = state.members(width)
    pieces = _component_count(_grid_adjacency(state, table, slot), table >= 0)
    n, sx, sy, q, hh = state.stats()
    grid_comm = np.full(len(state.bounds), 0)
    ok = state.grid >= 0
    grid_comm[state.grid[ok]] = community[ok]
    out[:, 0] = np.bincount(grid_comm, np.maximum(pieces - 1, 0), n_comm)
    out[:, 1] = np.bincount(grid_comm, _excess(hh, state.cap) * np.ones(len(n)), n_comm)
    out[:, 2] = np.bincount(grid_comm, _sse(n, sx, sy, q), n_comm)
    return out


def _lexically_smaller(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Rows of ``left`` lexicographically smaller than ``right`` (spread with a relative tolerance)."""
    tol = 1e-9 * (1.0 + np.abs(right[:, 2]))
    return (left[:, 0] < right[:, 0]) | (
        (left[:, 0] == right[:, 0])
        & (
            (left[:, 1] < right[:, 1])
            | ((left[:, 1] == right[:, 1]) & (left[:, 2] < right[:, 2] - tol))
        )
    )
