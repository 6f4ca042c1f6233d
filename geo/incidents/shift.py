"""Feeds in the wrong coordinate system: GCJ-02 or BD-09 points read as WGS84.

Most Chinese feeds carry Amap/Tencent (GCJ-02) or Baidu (BD-09) coordinates. Read as WGS84 they
land 300 m to 1 km off: still inside the district's box, so nothing looks wrong, but outside the
grids or in the wrong ones. Such a feed is recognised by where its points fall: when most of
them miss the district's grids (or cells) as given, and most hit them once read as GCJ-02 or
BD-09, the import stops and names the coordinate system the points look like.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pyproj
import shapely

from geo.crs import from_wgs84, parse_crs_name
from geo.incidents.feeds import FeedError, IncidentMapping, feed_coordinates
from geo.storage.store import Store

#: the systems a feed read as WGS84 may really be in, with how to say it
SUSPECTS = {"gcj02": "GCJ-02 (Amap, Tencent)", "bd09": "BD-09 (Baidu)"}
#: fewest located points to judge by
MIN_POINTS = 5


def district_areas(store: Store) -> tuple[np.ndarray, pyproj.CRS] | None:
    """The polygons a case should fall in (the published grids, else the cells) and their CRS."""
    for layer in ("grids", "cells"):
        if store.has_layer(layer):
            frame = store.read_layer(layer, columns=[])
            if not frame.empty:
                return np.asarray(frame.geometry.values, dtype=object), frame.crs
    return None


def count_inside(lon: np.ndarray, lat: np.ndarray, areas: tuple[np.ndarray, pyproj.CRS]) -> int:
    """How many of the WGS84 points fall inside one of the areas."""
    usable = np.isfinite(lon) & np.isfinite(lat)
    if not usable.any():
        return 0
    polygons, crs = areas
    x, y = from_wgs84(lon[usable], lat[usable], crs=crs)  # a cached transformer
    hits = shapely.STRtree(polygons).query(shapely.points(x, y), predicate="intersects")
    return int(np.unique(hits[0]).size)


def looks_shifted(
    records: pd.DataFrame, mapping: IncidentMapping, areas: tuple[np.ndarray, pyproj.CRS]
) -> tuple[str, int, int, int] | None:
    """The system a WGS84-read feed looks like it is really in, or None.

    Returns ``(crs, points, inside as given, inside as crs)`` when at most half of the located
    points fall inside the areas as given, and at least half (and twice as many) do as ``crs``.
    """
    lon, lat = feed_coordinates(records, mapping)
    usable = int((np.isfinite(lon) & np.isfinite(lat)).sum())
    if usable < MIN_POINTS:
        return None
    given = count_inside(lon, lat, areas)
    if given * 2 >= usable:
        return None
    best = None
    for crs in SUSPECTS:
        alt_lon, alt_lat = feed_coordinates(records, dataclasses.replace(mapping, crs=crs))
        inside = count_inside(alt_lon, alt_lat, areas)
        if (
            inside * 2 >= usable
            and inside >= 2 * max(given, 1)
            and (best is None or inside > best[3])
        ):
            best = (crs, usable, given, inside)
    return best


def refuse_shifted(
    store: Store,
    records: pd.DataFrame,
    mapping: IncidentMapping,
    *,
    areas: tuple[np.ndarray, pyproj.CRS] | None = None,
) -> None:
    """Refuse a feed read as WGS84 whose points look like GCJ-02 or BD-09 (see :func:`looks_shifted`).

    ``areas``: the published grids when the caller holds them (the locate index's polygons),
    else they are read (:func:`district_areas`) for feeds of :data:`MIN_POINTS` or more points.
    """
    if parse_crs_name(mapping.crs) != "wgs84" or len(records) < MIN_POINTS:
        return
    areas = areas if areas is not None else district_areas(store)
    if areas is None:
        return
    found = looks_shifted(records, mapping, areas)
    if found is None:
        return
    crs, points, given, inside = found
    raise FeedError(
        f"the points look like {SUSPECTS[crs]}, not WGS84: {given} of {points} fall inside the "
        f"district's grids as WGS84, {inside} when read as {crs}; nothing was stored",
        hint=f"import with --crs {crs} (API: crs={crs}), or --crs wgs84 if they really are WGS84",
        zh=f"坐标疑似 {SUSPECTS[crs]} 而非 WGS84：按 WGS84 有 {given}/{points} 个点落在网格内，"
        f"按 {crs} 有 {inside} 个；未导入任何案件，请加 --crs {crs}（确为 WGS84 请加 --crs wgs84）",
    )
