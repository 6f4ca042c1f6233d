"""Which grid, community and worker answer for each incident (上面千条线，基层一张网).

Cases are assigned by the plan's :class:`~geo.locate.engine.GridIndex` (:func:`assign_with_index`), the
index ``/locate`` and ``gridmap locate`` answer from, so one rule decides a point's grid
everywhere: inside a grid's polygon or on its edge, the lowest ``grid_code`` where grids share an
edge. The index is built once per plan and kept (:mod:`geo.locate.kept`; the service caches it),
so a posted case costs a tree query instead of reading the whole grids layer for an ``sjoin``.
:func:`assign_to_grids` (the ``sjoin``) stays for grid polygons that have no index: it gives the
same answers, and the tests hold the two to it on the shared data.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.crs import from_wgs84
from geo.errors import InputError
from geo.locate.engine import GridIndex

ASSIGN_COLUMNS = ["grid_code", "community", "worker"]


def assign_to_grids(incidents_lonlat: pd.DataFrame, grids_metric: gpd.GeoDataFrame) -> pd.DataFrame:
    """Give each located incident the grid it lies in, with that grid's community and worker.

    Parameters
    ----------
    incidents_lonlat : DataFrame
        WGS84 ``lon``/``lat``; rows with ``located`` False or ``fallback_point`` True (when those
        columns exist) or without coordinates are not assigned.
    grids_metric : GeoDataFrame
        Grid polygons in a metric CRS with ``grid_code``, ``community``, ``worker``.

    Returns
    -------
    DataFrame
        Aligned to ``incidents_lonlat``: ``grid_code``, ``community``, ``worker`` (None where
        unassigned: not located, a fallback point, or outside every grid). A point on the shared
        edge of two grids goes to the smaller ``grid_code``, so the answer is repeatable.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> grids = gpd.GeoDataFrame({"grid_code": ["A"], "community": ["c"], "worker": ["w"]},
    ...                          geometry=[box(0, 0, 1e6, 1e7)], crs=32651)
    >>> assign_to_grids(pd.DataFrame({"lon": [120.6], "lat": [31.3]}), grids)["grid_code"].tolist()
    ['A']
    """
    missing = [c for c in [*ASSIGN_COLUMNS, "geometry"] if c not in grids_metric.columns]
    if missing:
        raise InputError(f"grids lack the column(s) {', '.join(missing)}")
    if grids_metric.crs is None or not grids_metric.crs.is_projected:
        raise InputError("grids must be in a metric (projected) CRS")
    usable = _usable(incidents_lonlat)
    result = pd.DataFrame(index=incidents_lonlat.index, columns=ASSIGN_COLUMNS, dtype=object)
    if not usable.any():
        return result
    subset = incidents_lonlat.loc[usable]
    points = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy(subset["lon"], subset["lat"]),
        index=subset.index,
        crs="EPSG:4326",
    ).to_crs(grids_metric.crs)
    joined = joined_grids(points, grids_metric)
    result.loc[joined.index, ASSIGN_COLUMNS] = joined[ASSIGN_COLUMNS].to_numpy()
    return result.astype(object).where(result.notna(), None)


def joined_grids(points: gpd.GeoDataFrame, grids_metric: gpd.GeoDataFrame) -> pd.DataFrame:
    """The ``sjoin`` rule: each point (in the grids' CRS) with the lowest ``grid_code`` of the
    grids it intersects, indexed like ``points`` (points in no grid left out)."""
    grids = grids_metric[[*ASSIGN_COLUMNS, "geometry"]].sort_values("grid_code")
    joined = gpd.sjoin(points, grids, how="inner", predicate="intersects")
    joined = joined.sort_values("grid_code", kind="stable")
    return joined[~joined.index.duplicated(keep="first")]


def grids_at(index: GridIndex, x, y) -> np.ndarray:
    """Position in ``index.grid_codes`` of the grid holding each point (index CRS), -1 outside
    every grid: the :class:`GridIndex` rule, which is :func:`joined_grids`'s."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    layer = index.grids
    if layer.cells is None:  # the STRtree, however many points: a case import builds no cells
        with layer.lock:
            grid, distance = layer.lookup_tree(x, y)
    else:
        grid, distance = layer.lookup(x, y, nearest_polygon=False)
    inside = (distance == 0) & (grid >= 0) & (grid < len(index.grid_codes))
    return np.where(inside, grid, -1)


def assign_with_index(incidents_lonlat: pd.DataFrame, index: GridIndex) -> pd.DataFrame:
    """:func:`assign_to_grids` answered by a plan's :class:`GridIndex`: the same rows, rule
    and result (``grid_code``, ``community`` and the index's ``worker``, None where a case is
    not located, is a fallback point or lies outside every grid).

    Examples
    --------
    >>> from shapely.geometry import box
    >>> grids = gpd.GeoDataFrame({"grid_code": ["A"], "community": ["c"], "worker": ["w"]},
    ...                          geometry=[box(0, 0, 1e6, 1e7)], crs=32651)
    >>> homes = gpd.GeoDataFrame({"building_id": ["b"]}, geometry=[box(0, 0, 1, 1)], crs=32651)
    >>> index = GridIndex.build(homes, grids)
    >>> assign_with_index(pd.DataFrame({"lon": [120.6], "lat": [31.3]}), index)["worker"].tolist()
    ['w']
    """
    usable = _usable(incidents_lonlat)
    result = pd.DataFrame(index=incidents_lonlat.index, columns=ASSIGN_COLUMNS, dtype=object)
    if not usable.any():
        return result
    subset = incidents_lonlat.loc[usable]
    x, y = from_wgs84(subset["lon"].to_numpy(float), subset["lat"].to_numpy(float), crs=index.crs)
    grid = grids_at(index, x, y)
    inside = grid >= 0
    chosen = grid[inside]
    rows = subset.index[inside]
    result.loc[rows, "grid_code"] = index.grid_codes[chosen]
    result.loc[rows, "community"] = index.communities[chosen]
    result.loc[rows, "worker"] = index.workers[chosen]
    return result.astype(object).where(result.notna(), None)


def _usable(incidents_lonlat: pd.DataFrame) -> pd.Series:
    """Rows with both coordinates, located (when said) and not a fallback point (when said)."""
    usable = incidents_lonlat["lon"].notna() & incidents_lonlat["lat"].notna()
    for flag, wanted in (("located", True), ("fallback_point", False)):
        if flag in incidents_lonlat.columns:
            usable &= incidents_lonlat[flag].fillna(not wanted).astype(bool) == wanted
    return usable


def reassign_open(
    incidents: pd.DataFrame,
    grids_metric: gpd.GeoDataFrame,
    *,
    open_mask: pd.Series,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Re-assign open incidents to a newly published plan's grids and list what changed.

    Parameters
    ----------
    incidents : DataFrame
        With ``lon``, ``lat`` and the current ``grid_code``, ``community``, ``worker``.
    grids_metric : GeoDataFrame
        The published plan's grids.
    open_mask : Series of bool
        Which incidents are still open (closed cases keep the grid they were handled in).

    Returns
    -------
    (DataFrame, DataFrame)
        The incidents with updated assignment columns, and the change log: one row per
        incident whose grid or worker changed, ``old_*`` and ``new_*`` columns.
    """
    updated = incidents.copy()
    fresh = assign_to_grids(incidents.loc[open_mask], grids_metric)
    old = incidents.loc[open_mask, ASSIGN_COLUMNS].astype(object)
    old = old.where(old.notna(), None)
    changed = ~(_same(fresh["grid_code"], old["grid_code"]) & _same(fresh["worker"], old["worker"]))
    updated.loc[fresh.index, ASSIGN_COLUMNS] = fresh.to_numpy()
    log = pd.concat(
        [old.loc[changed].add_prefix("old_"), fresh.loc[changed].add_prefix("new_")], axis=1
    )
    return updated, log


def _same(a: pd.Series, b: pd.Series) -> pd.Series:
    """Element-wise equality where two missing values count as equal."""
    return (a == b) | (a.isna() & b.isna())
