"""Turn the GeoDataFrames of geo/ into the small, safe JSON a map page embeds.

Every function returns plain lists aligned with its input rows; geometries are simplified in a
metric CRS, reprojected to WGS84 (or GCJ-02 over Amap tiles), rounded to 6 decimals and encoded
by :mod:`maps.encode`. Only the columns a popup shows are kept; phone numbers only on request.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from geo.crs import in_metres
from geo.errors import InputError
from geo.grids import boundaries
from geo.grids.adjacency import touching_pairs
from geo.incidents.stats import open_counts
from geo.people.counts import COLUMNS as OCCUPANCY_COLUMNS
from geo.people.workers import contact_column

from .encode import encode_lines, encode_points, encode_polygons

__all__ = [
    "MapInputError",
    "grid_colours",
    "prepare_buildings",
    "prepare_communities",
    "prepare_grids",
    "prepare_incidents",
    "prepare_roads",
    "to_display",
]


#: Classes of the roads reference layer, drawn in this order (see ``drawRoads`` in gridmap.js).
ROAD_CLASSES = ("water", "path", "rail", "minor", "major")


class MapInputError(InputError):
    """A layer given to a map lacks a column or a CRS the map needs."""


def _require(frame: gpd.GeoDataFrame, columns: tuple[str, ...], layer: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MapInputError(f"the {layer} layer has no column {', '.join(map(repr, missing))}")
    if frame.crs is None:
        raise MapInputError(f"the {layer} layer has no CRS; set one before mapping it")


def _text(series: pd.Series | None, n: int) -> list[str | None] | dict[str, list]:
    """Strings of a column, ``None`` for missing; repetitive ones as ``{"v": values, "i": codes}``.

    A community or grid code repeated on 50,000 buildings costs megabytes as plain strings; the
    page's script expands the dictionary form back to a list (``expandColumns``).
    """
    if series is None:
        return [None] * n
    values = series.astype(object).where(series.notna(), None)
    texts = [None if v is None else str(v) for v in values]
    codes, uniques = pd.factorize(pd.Series(texts, dtype=object), use_na_sentinel=True)
    if n >= 64 and len(uniques) * 3 <= n:
        return {"v": [str(u) for u in uniques], "i": codes.tolist()}
    return texts


def _int(series: pd.Series | None, n: int) -> list[int | None]:
    if series is None:
        return [None] * n
    values = pd.to_numeric(series, errors="coerce")
    return [None if pd.isna(v) else int(v) for v in values]


def to_display(geoms: gpd.GeoSeries, *, crs: str = "wgs84") -> gpd.GeoSeries:
    """``geoms`` in WGS84 lon/lat, or shifted to GCJ-02 for display over Amap tiles.

    Parameters
    ----------
    geoms : GeoSeries
        Any CRS.
    crs : {"wgs84", "gcj02"}
        The display datum.

    Examples
    --------
    >>> from shapely import Point
    >>> g = to_display(gpd.GeoSeries([Point(116.481499, 39.990475)], crs=4326), crs="gcj02")
    >>> round(float(g.x[0]), 6), round(float(g.y[0]), 6)
    (116.487586, 39.991754)
    """
    wgs = geoms.to_crs(4326)
    if crs == "wgs84":
        return wgs
    from geo.crs import from_wgs84  # only Amap maps need it

    def shift(coords: np.ndarray) -> np.ndarray:
        lon, lat = from_wgs84(coords[:, 0], coords[:, 1], crs=crs)
        return np.column_stack([lon, lat])

    return gpd.GeoSeries(shapely.transform(wgs.values, shift), index=wgs.index, crs=4326)


def grid_colours(grids: gpd.GeoDataFrame) -> pd.Series:
    """A colour index per grid such that grids sharing an edge or a corner differ.

    Greedy colouring of the adjacency graph in smallest-last order, which uses at most 6
    colours on a planar map.

    Returns
    -------
    Series of int, aligned to ``grids.index``.

    Examples
    --------
    >>> from shapely import box
    >>> row = gpd.GeoDataFrame(geometry=[box(i, 0, i + 1, 1) for i in range(3)], crs=3857)
    >>> grid_colours(row).tolist()
    [0, 1, 0]
    """
    n = len(grids)
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(map(tuple, touching_pairs(grids).tolist()))
    colours = nx.greedy_color(graph, strategy="smallest_last")
    return pd.Series([colours[i] for i in range(n)], index=grids.index, dtype="int64")


def _simplified_grids(grids: gpd.GeoDataFrame, tolerance: float) -> gpd.GeoSeries:
    metric = in_metres(grids)
    if tolerance <= 0:
        return metric.geometry
    return boundaries.simplified(metric, tolerance_m=tolerance).geometry


def _polygons_only(geoms: gpd.GeoSeries) -> gpd.GeoSeries:
    # Overlay results may carry stray lines or points; the map draws areas.
    keep = geoms.geom_type.isin(["Polygon", "MultiPolygon"]) & ~geoms.is_empty
    if keep.all():
        return geoms
    parts = geoms.copy()
    for i in geoms.index[~keep]:
        polys = [
            p for p in shapely.get_parts(geoms[i]) if p.geom_type == "Polygon" and not p.is_empty
        ]
        parts[i] = shapely.multipolygons(polys) if polys else None
    return parts


def prepare_grids(
    grids: gpd.GeoDataFrame,
    *,
    incidents: gpd.GeoDataFrame | None = None,
    crs: str = "wgs84",
    include_contacts: bool = False,
    tolerance: float = 1.0,
) -> dict[str, Any]:
    """Columns and encoded outlines of the grids, with colour index and label points.

    Open and overdue incident counts come from the ``open_incidents``/``overdue_incidents``
    columns, else are counted from ``incidents`` by ``grid_code``.
    """
    _require(grids, ("grid_code", "community", "geometry"), "grids")
    grids = grids[grids.geometry.notna() & ~grids.geometry.is_empty]
    n = len(grids)
    metric_geoms = _polygons_only(_simplified_grids(grids, tolerance))
    metric_frame = gpd.GeoDataFrame(geometry=metric_geoms, crs=metric_geoms.crs)
    colours = grid_colours(metric_frame)
    labels = to_display(metric_geoms.representative_point(), crs=crs)
    shown = to_display(metric_geoms, crs=crs)
    codes = grids["grid_code"].astype(str)
    open_counts, overdue_counts = _incident_counts(grids, incidents, codes)
    data: dict[str, Any] = {
        "geom": encode_polygons(shown),
        "label": encode_points(labels.x.to_numpy(), labels.y.to_numpy()),
        "code": codes.tolist(),
        "community": _text(grids["community"], n),
        "worker": _text(grids.get("worker"), n),
        "n_buildings": _int(grids.get("n_buildings"), n),
        "households": _int(grids.get("households"), n),
        "status": _text(grids.get("status"), n),
        "reason": _text(grids.get("reason"), n),
        "open": open_counts,
        "overdue": overdue_counts,
        "color": colours.tolist(),
        # where the map places codes first (the largest grid's): one that would overlap a code
        # placed before is left out at that zoom
        "label_order": np.argsort(-metric_geoms.area.to_numpy(), kind="stable").tolist(),
    }
    data.update(_occupancy(grids, n))
    if include_contacts:
        phone = contact_column(grids)
        if phone is not None:
            data["phone"] = _text(grids[phone], n)
    return data


def _incident_counts(
    grids: gpd.GeoDataFrame, incidents: gpd.GeoDataFrame | None, codes: pd.Series
) -> tuple[list[int | None], list[int | None]]:
    n = len(grids)
    if "open_incidents" in grids.columns or incidents is None or "grid_code" not in incidents:
        return _int(grids.get("open_incidents"), n), _int(grids.get("overdue_incidents"), n)
    counts = open_counts(incidents, codes)
    return counts["open"].tolist(), counts["overdue"].tolist()


def prepare_buildings(
    buildings: gpd.GeoDataFrame, *, crs: str = "wgs84", tolerance: float = 0.3
) -> dict[str, Any]:
    """Columns and encoded footprints of the buildings (no resident data)."""
    _require(buildings, ("geometry",), "buildings")
    buildings = buildings[buildings.geometry.notna() & ~buildings.geometry.is_empty]
    n = len(buildings)
    geoms = in_metres(buildings).geometry
    if tolerance > 0:
        geoms = geoms.simplify(tolerance, preserve_topology=True)
    data: dict[str, Any] = {"geom": encode_polygons(to_display(_polygons_only(geoms), crs=crs))}
    for column in ("building_id", "community", "grid_code", "name", "address"):
        if column in buildings.columns:
            data[column] = _text(buildings[column], n)
    if "households" in buildings.columns:
        data["households"] = _int(buildings["households"], n)
    data.update(_occupancy(buildings, n))
    return data


#: the occupancy counts (以房管人) a popup shows: geo's aggregates per grid or building
#: (geo.people.occupancy decides them), never a record of a household or a person
OCCUPANCY_COUNTS = tuple(c for c in OCCUPANCY_COLUMNS if c not in ("households", "floating_share"))


def _occupancy(frame: pd.DataFrame, n: int) -> dict[str, Any]:
    """The occupancy counts of ``frame``'s rows, and the floating share in whole percent."""
    if "residents" not in frame.columns:
        return {}
    data: dict[str, Any] = {c: _int(frame[c], n) for c in OCCUPANCY_COUNTS if c in frame.columns}
    if "floating_share" in frame.columns:
        share = pd.to_numeric(frame["floating_share"], errors="coerce") * 100
        data["floating_pct"] = [None if pd.isna(v) else round(float(v)) for v in share]
    return data


def prepare_communities(communities: gpd.GeoDataFrame, *, crs: str = "wgs84") -> dict[str, Any]:
    """Names, encoded outlines and label points of the communities."""
    _require(communities, ("community", "geometry"), "communities")
    communities = communities[communities.geometry.notna() & ~communities.geometry.is_empty]
    # Where the name is written: a point inside each outline (centroids can fall outside).
    inside = to_display(in_metres(communities).geometry.representative_point(), crs=crs)
    return {
        "geom": encode_polygons(to_display(_polygons_only(communities.geometry), crs=crs)),
        "name": _text(communities["community"], len(communities)),
        "label": encode_points(inside.x.to_numpy(), inside.y.to_numpy()),
    }


def prepare_roads(
    roads: gpd.GeoDataFrame, *, crs: str = "wgs84", tolerance: float = 2.0
) -> dict[str, Any]:
    """Road centre lines by class, simplified by ``tolerance`` metres, for a reference layer.

    Classes come from the ``kind`` column where the source has one (OSM-style ``major_road``,
    ``path``, ``rail``, ``ferry``...): major roads are drawn wider, paths thinner, and ferries and
    waterways in blue, which is where the river is when no tiles show it.
    """
    if roads.crs is None:
        raise MapInputError("the roads layer has no CRS; set one before mapping it")
    roads = roads[roads.geometry.notna() & ~roads.geometry.is_empty]
    simplified = in_metres(roads).geometry.simplify(tolerance)
    kinds = roads["kind"].astype(str).str.lower() if "kind" in roads.columns else None
    classes = pd.Series("minor", index=roads.index)
    if kinds is not None:
        classes[kinds.str.contains("major|primary|trunk|motorway|secondary")] = "major"
        classes[kinds.str.contains("path|footway|track|cycle")] = "path"
        classes[kinds.str.contains("rail")] = "rail"
        classes[kinds.str.contains("ferry|water|river|canal|stream")] = "water"
    shown = to_display(simplified, crs=crs)
    return {
        name: encode_lines(shown[classes == name])
        for name in ROAD_CLASSES
        if (classes == name).any()
    }


def _times(series: pd.Series | None, n: int) -> list[str | None]:
    if series is None:
        return [None] * n
    stamps = pd.to_datetime(series, errors="coerce")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("Asia/Shanghai")
    return [None if pd.isna(s) else s.strftime("%Y-%m-%d %H:%M") for s in stamps]


def prepare_incidents(
    incidents: gpd.GeoDataFrame, *, crs: str = "wgs84"
) -> tuple[dict[str, Any], list[list[float]]]:
    """Incident columns and ``[lat, lon, row]`` marker rows (unlocated incidents left out)."""
    _require(incidents, ("geometry",), "incidents")
    located = incidents[incidents.geometry.notna() & ~incidents.geometry.is_empty]
    located = located[located.geometry.geom_type == "Point"]
    n = len(located)
    points = to_display(located.geometry, crs=crs)
    lat = np.round(points.y.to_numpy(), 6)
    lon = np.round(points.x.to_numpy(), 6)
    classes = located.get("class_code")
    if classes is not None:
        # "6" from a spreadsheet is class "06"; normalise before _text may dictionary-encode it
        text = classes.astype("string")
        classes = text.where(~text.str.isdigit().fillna(False), text.str.zfill(2))
    overdue = located.get("overdue")
    data = {
        "id": _text(located.get("incident_id"), n),
        "cat": _text(located.get("category_code"), n),
        "cat_name": _text(located.get("category_name"), n),
        "cls": _text(classes, n),
        "status": _text(located.get("status"), n),
        "reported": _times(located.get("reported_at"), n),
        "deadline": _times(located.get("deadline"), n),
        "overdue": [False] * n if overdue is None else overdue.fillna(False).astype(bool).tolist(),
        "desc": _text(located.get("description"), n),
        "address": _text(located.get("address"), n),
        "grid": _text(located.get("grid_code"), n),
    }
    rows = [[float(a), float(b), i] for i, (a, b) in enumerate(zip(lat, lon, strict=True))]
    return data, rows
