"""Group each community's buildings into grids of ``min_size`` to ``max_size`` neighbours.

The engine, in four steps; no grid ever crosses a community:

1. **units**: the community's adjacency graph (:func:`geo.grids.adjacency.building_adjacency`) is split
   into connected pieces; a piece whose count cannot form grids of the allowed sizes is joined to
   its nearest piece, so only the grid bridging them can be non-contiguous.
2. **cut**: the buildings of each unit are ordered along a Hilbert curve (turned by ``seed``) and
   the sequence is cut into runs of allowed sizes by dynamic programming, minimising the sum of
   squared distances to each run's centre (:mod:`geo.grids.cut`).
3. **regroup by spread**: every pair of neighbouring grids is re-split as well as it can be split
   (all splits of their 8-10 buildings into two grids of allowed sizes), until no pair improves:
   fewer disconnected pieces first, then fewer households above the cap, then less spread
   (:mod:`geo.grids.regroup`).
4. **regroup by diameter**: the same search again, judging splits by the sum of the two grids'
   diameters, the measure the report gives planners.

A community left with a grid broken where its own graph is whole gets a few more runs of steps
2-4 with the curve turned; it keeps its best run. ``restarts`` runs the whole district several
times the same way. Steps 2-4 are compiled with numba and share the units out to the cores.

:func:`grid_report` computes the per-grid facts (size, households, diameter, contiguity, status
and reason in English and Chinese) for any labelling, so the plan editor can validate edits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.spatial import cKDTree

from geo.defaults import MAX_GRID_SIZE  # also the CLI's --max bound
from geo.errors import InputError
from geo.grids.adjacency import (
    building_adjacency,
    centroid_coordinates,
    community_components,
)
from geo.grids.cut import cut_runs
from geo.grids.regroup import grid_pieces, regroup_pairs

__all__ = [
    "PartitionInputError",
    "PartitionResult",
    "grid_report",
    "is_feasible_count",
    "partition_buildings",
    "partition_summary",
    "unavoidable_flags",
]

#: most grids cut by one dynamic programme; longer units are cut in consecutive chunks
_CHUNK_GRIDS = 64
#: extra runs for the communities left with a grid broken where their graph is whole
_MENDING_TURNS = 8
#: a grid's status: ``ok``, else its first flag in this order
_STATUSES = ("ok", "undersized", "oversized", "non_contiguous", "households_over_cap")
#: the statuses a grid can be stored with (the API's ``/grids?status=`` takes these)
GRID_STATUSES = _STATUSES


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
    if max_size > MAX_GRID_SIZE:
        raise PartitionInputError(
            f"max_size {max_size} is above {MAX_GRID_SIZE}: a grid is a few neighbouring "
            "buildings one worker looks after"
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


# --------------------------------------------------------------------------- step 1: units


def _merge_small_pieces(
    xy: np.ndarray, members: np.ndarray, piece: np.ndarray, min_size: int, max_size: int
) -> np.ndarray:
    """Join pieces of infeasible size to their nearest piece until every unit is feasible."""
    unit = piece.copy()
    tree = cKDTree(xy[members])
    while True:
        ids, counts = np.unique(unit, return_counts=True)
        sizes = dict(zip(ids.tolist(), counts.tolist(), strict=True))
        bad = [u for u, s in sizes.items() if not is_feasible_count(s, min_size, max_size)]
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
) -> tuple[np.ndarray, np.ndarray]:
    """Unit and piece of every free building (``-1`` for locked ones).

    A piece is a connected piece of the community's graph; a unit is a piece, or pieces joined
    because some could not form grids on their own. Units never cross communities.
    """
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
    by_community = np.argsort(community, kind="stable")
    bounds = np.searchsorted(community[by_community], np.arange(community.max() + 2))
    for comm in np.sort(flagged):
        if pieces_per_comm[comm] < 2:
            continue
        members = by_community[bounds[comm] : bounds[comm + 1]]
        members = members[free[members]]
        merged = _merge_small_pieces(xy, members, piece[members], min_size, max_size)
        unit[members] = merged
    return unit, piece


# --------------------------------------------------------------------------- step 2: cut


def _hilbert_rank(
    footprints: gpd.GeoSeries | None, xy: np.ndarray, seed: int, restart: int = 0
) -> np.ndarray:
    """Position on a Hilbert curve, the plane turned by an angle drawn from ``(seed, restart)``."""
    if footprints is not None and not (seed or restart):
        return footprints.hilbert_distance().to_numpy()  # no turn: no points to build
    angle = np.random.default_rng([seed, restart]).uniform(0, 2 * np.pi)
    c, s = np.cos(angle), np.sin(angle)
    turned = xy @ np.array([[c, -s], [s, c]])
    return gpd.GeoSeries(shapely.points(turned)).hilbert_distance().to_numpy()


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
    run, chunk_of_run = cut_runs(xy[order], n_c, k_c, bounds)
    grid[order] = run
    return grid, bounds[chunk_of_run]


# --------------------------------------------------------------------------- keys and report


def _grid_keys(
    grid: np.ndarray, community_names: np.ndarray, hilbert: np.ndarray, taken: set[str]
) -> np.ndarray:
    """``"<community>/<nnn>"`` per grid id, numbered along the Hilbert curve, skipping ``taken``."""
    ok = np.flatnonzero(grid >= 0)
    n_grids = int(grid.max()) + 1 if len(ok) else 0
    # each grid's community and its first position on the curve
    first_h = np.full(n_grids, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_h, grid[ok], hilbert[ok].astype(np.int64))
    comm = np.empty(n_grids, dtype=object)
    comm[grid[ok]] = community_names[ok]
    order = np.lexsort((first_h, comm.astype(str)))
    keys = np.empty(n_grids, dtype=object)
    number, previous = 0, None
    for g in order.tolist():
        c = comm[g]
        number = number + 1 if c == previous else 1
        previous = c
        while taken and f"{c}/{number:03d}" in taken:
            number += 1
        keys[g] = f"{c}/{number:03d}"
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


def _reasons(row: dict, min_size: int, max_size: int, cap: float | None) -> tuple[str, str]:
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
                f"grid's buildings lie in {pieces} separate groups: {FORCED_BRIDGE} "
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


#: the words of a forced bridge's reason (a cut-off hamlet too small for a grid of its own)
FORCED_BRIDGE = "part of the community is cut off"
_SIZE_FLAGS = ("undersized", "oversized")


def unavoidable_flags(grids: pd.DataFrame, *, min_size: int = 4, max_size: int = 5) -> np.ndarray:
    """Which flagged grids no plan of their community could avoid (True), from a grid report or
    a plan's stored grids (``community``, ``n_buildings``, ``status``, ``reason``).

    Unavoidable: one size flag in a community whose count cannot make grids of ``min_size`` to
    ``max_size`` (1-3, 6, 7, 11 buildings: one odd grid is the least-bad), and a forced bridge
    (:data:`FORCED_BRIDGE`). A second odd grid in such a community, and every other flag, could
    be avoided: publishing those needs a reason, these do not.

    Examples
    --------
    >>> grids = pd.DataFrame({"community": ["a", "b", "b"], "n_buildings": [6, 3, 3],
    ...     "status": ["oversized", "undersized", "undersized"], "reason": ["", "", ""]})
    >>> unavoidable_flags(grids).tolist()
    [True, True, False]
    """
    status = grids["status"].astype(str)
    total = grids.groupby("community")["n_buildings"].transform("sum").astype(int)
    infeasible = np.array(
        [not is_feasible_count(int(n), min_size, max_size) for n in total], dtype=bool
    )
    odd = status.isin(_SIZE_FLAGS).to_numpy() & infeasible
    first_odd = ~pd.Series(odd).groupby(grids["community"].to_numpy()).cumsum().gt(1).to_numpy()
    bridge = (status == "non_contiguous").to_numpy() & grids["reason"].fillna("").astype(
        str
    ).str.contains(FORCED_BRIDGE, regex=False).to_numpy()
    return (odd & first_odd) | bridge


def grid_report(
    buildings: gpd.GeoDataFrame,
    labels: pd.Series,
    *,
    adjacency: sparse.sparray | None = None,
    min_size: int = 4,
    max_size: int = 5,
    max_households: int | None = None,
    centroids: np.ndarray | None = None,
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
    centroids : (n, 2) array, optional
        :func:`geo.grids.adjacency.centroid_coordinates` of ``buildings`` when the caller has them.

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
    xy = centroid_coordinates(buildings) if centroids is None else centroids
    if adjacency is None:
        adjacency = building_adjacency(buildings, min_size=min_size, centroids=xy)
    rules = (min_size, max_size, max_households)
    facts = _grid_facts(buildings, labels, adjacency, rules)
    return _report_frame(facts, xy, rules)


@dataclass(frozen=True)
class _GridFacts:
    """Per building its grid's code; per grid what :func:`grid_report` reports."""

    codes: np.ndarray
    keys: np.ndarray
    community: np.ndarray
    size: np.ndarray
    community_buildings: np.ndarray
    households: np.ndarray | None
    pieces: np.ndarray
    forced: np.ndarray
    status: np.ndarray


def _grid_facts(
    buildings: gpd.GeoDataFrame,
    labels: pd.Series,
    adjacency: sparse.sparray,
    rules: tuple[int, int, int | None],
) -> _GridFacts:
    """Size, households, pieces and status of every grid of ``labels``."""
    min_size, max_size, max_households = rules
    codes, keys = pd.factorize(labels.astype(str), sort=True)
    comm_code, comm_names = pd.factorize(buildings["community"].astype(str), sort=True)
    n_grids = len(keys)
    comm_of_grid = _community_of_grids(codes, keys, comm_code, len(comm_names))
    size = np.bincount(codes, minlength=n_grids)
    pieces, community_pieces = grid_pieces(
        codes, n_grids, community_components(adjacency, comm_code), adjacency
    )
    hh = _households(buildings)
    grid_households = np.bincount(codes, hh, n_grids).round() if hh is not None else None
    over_cap = (
        grid_households > max_households
        if grid_households is not None and max_households is not None
        else np.zeros(n_grids, dtype=bool)
    )
    ok, *flags = _STATUSES
    status = np.select([size < min_size, size > max_size, pieces > 1, over_cap], flags, default=ok)
    return _GridFacts(
        codes=codes,
        keys=np.asarray(keys, dtype=object),
        community=np.asarray(comm_names, dtype=object)[comm_of_grid],
        size=size,
        community_buildings=np.bincount(comm_code)[comm_of_grid],
        households=grid_households,
        pieces=pieces,
        forced=community_pieces > 1,
        status=status,
    )


def _community_of_grids(
    codes: np.ndarray, keys: pd.Index, comm_code: np.ndarray, n_communities: int
) -> np.ndarray:
    """The community code of every grid; a grid spanning two communities raises."""
    n_grids = len(keys)
    lowest = np.full(n_grids, n_communities, dtype=np.int64)
    highest = np.full(n_grids, -1, dtype=np.int64)
    np.minimum.at(lowest, codes, comm_code)
    np.maximum.at(highest, codes, comm_code)
    if (lowest != highest).any():
        bad = keys[np.flatnonzero(lowest != highest)[0]]
        raise PartitionInputError(f"grid {bad!r} spans more than one community")
    return lowest


def _report_frame(
    facts: _GridFacts, xy: np.ndarray, rules: tuple[int, int, int | None]
) -> pd.DataFrame:
    """The grid report's rows, with the reasons of the flagged grids."""
    n_grids = len(facts.keys)
    hh = facts.households
    rows = {
        "community": facts.community,
        "n_buildings": facts.size,
        "community_buildings": facts.community_buildings,
        "households": hh if hh is not None else np.zeros(n_grids),
        "pieces": facts.pieces,
        "forced": facts.forced,
        "status": facts.status,
    }
    reason, reason_zh = [""] * n_grids, [""] * n_grids
    for i in np.flatnonzero(facts.status != _STATUSES[0]).tolist():  # flagged grids are few
        row = {name: values[i] for name, values in rows.items()}
        reason[i], reason_zh[i] = _reasons(row, *rules)
    return pd.DataFrame(
        {
            "grid_key": facts.keys,
            "community": facts.community,
            "n_buildings": facts.size,
            "households": pd.array(
                hh.astype(np.int64) if hh is not None else [pd.NA] * n_grids, dtype="Int64"
            ),
            "diameter_m": _diameters(xy, facts.codes, n_grids).round(1),
            "contiguous": facts.pieces == 1,
            "pieces": facts.pieces,
            "status": facts.status,
            "reason": reason,
            "reason_zh": reason_zh,
        }
    )


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
    status = grids["status"].to_numpy(dtype=object)
    flagged = np.flatnonzero(status != "ok")
    columns = [
        grids[c].to_numpy(dtype=object)[flagged] for c in ("community", "reason", "reason_zh")
    ]
    by_comm: dict[str, dict] = {}
    for comm, status_, reason, reason_zh in zip(
        columns[0], status[flagged], columns[1], columns[2], strict=True
    ):  # flagged grids are few
        entry = by_comm.setdefault(
            comm,
            {
                "community": comm,
                "statuses": set(),
                "grids": 0,
                "reason": reason,
                "reason_zh": reason_zh,
            },
        )
        entry["statuses"].add(status_)
        entry["grids"] += 1
    for entry in by_comm.values():
        entry["statuses"] = sorted(entry["statuses"])
    diam = grids["diameter_m"].to_numpy(dtype=float)
    return {
        "buildings": int(grids["n_buildings"].sum()),
        "grids": n,
        "share_in_range": float(in_range.mean()) if n else 1.0,
        "share_contiguous": float(grids["contiguous"].mean()) if n else 1.0,
        "mean_diameter_m": float(diam.mean()) if n else 0.0,
        "p95_diameter_m": float(np.percentile(diam, 95)) if n else 0.0,
        "max_diameter_m": float(diam.max()) if n else 0.0,
        "flagged_communities": [by_comm[comm] for comm in sorted(by_comm)],
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


def partition_buildings(  # noqa: PLR0913 (keyword-only options of the public engine, as sjoin has)
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
        Footprints in a metric CRS with ``community``; ``households`` (nullable) feeds the cap.
    min_size, max_size : int
        Allowed grid sizes. A community whose count cannot be split so gets the least-bad grids,
        flagged ``undersized``/``oversized`` with a reason.
    max_households : int, optional
        Households cap per grid; grids still above it are flagged ``households_over_cap``.
    seed : int
        Rotates the space-filling curve: the same input and seed give the same grids.
    locked : Series, optional
        Building index -> key of grids the planner locked; kept exactly, the rest of their
        community is partitioned around them.
    roads : GeoDataFrame, optional
        Road lines (``kind`` column); grids avoid crossing major roads where the block allows.
    adjacency : sparse matrix, optional
        A precomputed :func:`building_adjacency` graph (by position).
    restarts : int, optional
        Runs with the curve turned differently; each community keeps its best run. One by
        default: more lower the mean diameter by 1-2 % per doubling (``docs/benchmarks.md``).
    progress : callable, optional
        Called as ``progress(done, total)`` after each run (runs, not communities).

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
    rules = (min_size, max_size, max_households)
    canon = _Canonical.of(buildings, seed)
    graph = canon.adjacency(adjacency, roads=roads, min_size=min_size)
    locked_keys = _locked_labels(canon.buildings, locked)
    free = locked_keys.isna().to_numpy()
    engine = _Engine.of(canon, graph, _households(canon.buildings), rules=rules, seed=seed)
    runs = max(1, restarts or 1)
    grid = _best_grids(engine, free, canon.curve, runs=runs, tick=progress or _silent)
    labels = canon.labels(grid, locked_keys, free)
    return _result(canon, labels, graph, rules, buildings.index)


def _result(
    canon: _Canonical,
    labels: pd.Series,
    graph: sparse.csr_array,
    rules: tuple[int, int, int | None],
    input_index: pd.Index,
) -> PartitionResult:
    """The labels in the input's order, with the grid report and the summary."""
    min_size, max_size, max_households = rules
    grids = grid_report(
        canon.buildings,
        labels,
        adjacency=graph,
        min_size=min_size,
        max_size=max_size,
        max_households=max_households,
        centroids=canon.xy,
    )
    summary = partition_summary(grids, min_size=min_size, max_size=max_size)
    return PartitionResult(labels=labels.reindex(input_index), grids=grids, summary=summary)


def _silent(done: int, total: int) -> None:
    """No progress report."""


@dataclass(frozen=True)
class _Canonical:
    """The buildings in one canonical order (community, curve, position), with their centroids,
    curve positions and community codes: the grids do not depend on the input's row order, and
    buildings near each other on the ground sit near each other in memory."""

    buildings: gpd.GeoDataFrame
    xy: np.ndarray
    curve: np.ndarray
    community: np.ndarray
    order: np.ndarray

    @classmethod
    def of(cls, buildings: gpd.GeoDataFrame, seed: int) -> _Canonical:
        xy = centroid_coordinates(buildings)
        curve = _hilbert_rank(buildings.geometry, xy, seed)
        community = pd.factorize(buildings["community"].astype(str), sort=True)[0]
        order = np.lexsort((xy[:, 1], xy[:, 0], curve, community))
        return cls(buildings.iloc[order], xy[order], curve[order], community[order], order)

    def adjacency(
        self, given: sparse.sparray | None, *, roads: gpd.GeoDataFrame | None, min_size: int
    ) -> sparse.csr_array:
        """``given`` in this order, else the building adjacency built with ``roads``."""
        if given is None:
            return building_adjacency(
                self.buildings, roads=roads, min_size=min_size, centroids=self.xy
            )
        return sparse.csr_array(given)[self.order][:, self.order]

    def labels(self, grid: np.ndarray, locked_keys: pd.Series, free: np.ndarray) -> pd.Series:
        """Grid key of every building: the locked ones' own, new keys for the ``free`` ones."""
        taken = set(locked_keys.dropna().astype(str))
        names = self.buildings["community"].astype(str).to_numpy()
        keys = _grid_keys(grid, names, self.curve, taken)
        values = locked_keys.to_numpy(dtype=object, copy=True)
        values[free] = keys[grid[free]]
        return pd.Series(values, index=self.buildings.index, name="grid_key").astype(str)


def _best_grids(
    engine: _Engine,
    free: np.ndarray,
    curve: np.ndarray,
    *,
    runs: int,
    tick: Callable[[int, int], None],
) -> np.ndarray:
    """Grid id ``0..g-1`` of every free building (``-1`` locked): steps 1 to 4, ``runs`` times.

    Each community keeps its best run. A community left with a grid broken where its own graph
    is whole gets up to ``_MENDING_TURNS`` more runs of its own, with the curve turned again.
    """
    community = engine.community
    min_size, max_size = engine.min_size, engine.max_size
    engine.unit, engine.piece = _units(
        engine.xy, community, free, engine.adjacency, min_size, max_size
    )
    tick(0, runs + 1)
    grid = engine.run(free, curve)
    contested = free if runs > 1 else free & engine.needless_communities(grid)[community]
    if not contested.any():
        return _renumbered(grid, free, tick, runs)  # one run, every grid as whole as it can be
    score = engine.scores(grid, contested)
    for turn in range(1, runs + _MENDING_TURNS):
        active = free if turn < runs else free & (score[community, 0] > 0)
        if not active.any():
            break
        run_grid = engine.run(active, engine.turned_curve(active, turn))
        run_score = engine.scores(run_grid, active)
        # community by community, keep the run with fewer needless pieces, less excess, less
        # diameter
        ran = np.zeros(len(score), dtype=bool)
        ran[community[active]] = True  # the others' run_score rows are empty, not better
        wins = ran & _lexically_smaller(run_score, score)
        take = wins[community] & active
        grid[take] = run_grid[take] + int(grid.max()) + 1
        score = np.where(wins[:, None], run_score, score)
        tick(min(turn, runs - 1) + 1, runs + 1)
    return _renumbered(grid, free, tick, runs)


def _renumbered(grid: np.ndarray, free: np.ndarray, tick, runs: int) -> np.ndarray:
    """Grid ids ``0..g-1`` in order of their old ids (several runs leave gaps)."""
    grid[free] = pd.factorize(grid[free], sort=True)[0]
    tick(runs + 1, runs + 1)
    return grid


@dataclass
class _Engine:
    """The inputs shared by every run of steps 2-4 (step 1's units and pieces included)."""

    xy: np.ndarray
    community: np.ndarray
    adjacency: sparse.csr_array
    households: np.ndarray | None
    max_households: int | None
    min_size: int
    max_size: int
    seed: int
    unit: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    piece: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    @classmethod
    def of(
        cls,
        canon: _Canonical,
        adjacency: sparse.csr_array,
        households: np.ndarray | None,
        *,
        rules: tuple[int, int, int | None],
        seed: int,
    ) -> _Engine:
        """The engine of the buildings in canonical order, each community centred so the
        spread sums stay precise in large projected coordinates."""
        xy, community = canon.xy, canon.community
        min_size, max_size, max_households = rules
        return cls(
            xy=xy - pd.DataFrame(xy).groupby(community).transform("mean").to_numpy(),
            community=community,
            adjacency=sparse.csr_array(adjacency),
            households=households,
            max_households=max_households,
            min_size=min_size,
            max_size=max_size,
            seed=seed,
        )

    def turned_curve(self, active: np.ndarray, turn: int) -> np.ndarray:
        """Curve positions of the ``active`` buildings, the plane turned anew (0 elsewhere)."""
        out = np.zeros(len(active), dtype=np.int64)
        out[active] = _hilbert_rank(None, self.xy[active], self.seed, turn)
        return out

    def run(self, active: np.ndarray, curve: np.ndarray) -> np.ndarray:
        """Grid ids of the ``active`` buildings (``-1`` elsewhere): cut, regroup, mend, refine."""
        grid, bounds = _initial_grids(
            self.xy, self.unit, active, curve, self.min_size, self.max_size
        )
        if len(bounds):
            unit_of_grid = np.zeros(len(bounds), dtype=np.int64)
            unit_of_grid[grid[active]] = self.unit[active]
            caps = {"households": self.households, "cap": self.max_households}
            args = (self.xy, grid, bounds, unit_of_grid, self.adjacency)
            # the spread first (smooth, settles the shapes), then the diameters the report shows
            regroup_pairs(*args, **caps)
            regroup_pairs(*args, by_diameter=True, **caps)
        return grid

    def needless_communities(self, grid: np.ndarray) -> np.ndarray:
        """Per community: whether a grid has pieces beyond those of the community itself."""
        ok = np.flatnonzero(grid >= 0)
        n_grids = int(grid[ok].max()) + 1 if len(ok) else 0
        pieces, own = grid_pieces(grid, n_grids, self.piece, self.adjacency)
        needless = pieces - own
        per_comm = np.zeros(int(self.community.max()) + 1, dtype=np.int64)
        np.add.at(per_comm, self.community[ok], needless[grid[ok]])
        return per_comm > 0

    def scores(self, grid: np.ndarray, within: np.ndarray) -> np.ndarray:
        """Per community (of the buildings ``within``): needless grid pieces, households above
        the cap, sum of diameters; a grid's pieces are needless where its buildings lie in fewer
        pieces of the community.
        """
        n_comm = int(self.community.max()) + 1
        out = np.zeros((n_comm, 3))
        ok = np.flatnonzero((grid >= 0) & within)
        if not len(ok):
            return out
        lab = pd.factorize(grid[ok], sort=True)[0]
        n_grids = int(lab.max()) + 1
        sub = np.full(len(grid), -1, dtype=np.int64)
        sub[ok] = lab
        excess = np.zeros(n_grids)
        if self.households is not None and self.max_households is not None:
            hh = np.bincount(lab, self.households[ok], n_grids)
            excess = np.maximum(hh - self.max_households, 0.0)
        grid_comm = np.zeros(n_grids, dtype=np.int64)
        grid_comm[lab] = self.community[ok]
        pieces, own = grid_pieces(sub, n_grids, self.piece, self.adjacency)
        out[:, 0] = np.bincount(grid_comm, pieces - own, n_comm)
        out[:, 1] = np.bincount(grid_comm, excess, n_comm)
        out[:, 2] = np.bincount(grid_comm, _diameters(self.xy[ok], lab, n_grids), n_comm)
        return out


def _lexically_smaller(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Rows of ``left`` lexicographically smaller than ``right`` (diameters with a tolerance)."""
    tol = 1e-9 * (1.0 + np.abs(right[:, 2]))
    return (left[:, 0] < right[:, 0]) | (
        (left[:, 0] == right[:, 0])
        & (
            (left[:, 1] < right[:, 1])
            | ((left[:, 1] == right[:, 1]) & (left[:, 2] < right[:, 2] - tol))
        )
    )
