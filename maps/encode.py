"""Compact geometry encoding for the page: integer micro-degrees, delta-coded.

A map needs 6 decimals (about 0.1 m); JSON of full doubles spends 17 digits per number. Here
coordinates become integers in 1e-6 degrees, each stored as the difference from the previous
one (neighbouring vertices differ by a few units), rings lose their repeated closing vertex
(Leaflet closes polygons itself), and the structure travels as counts. The page's script
(``assets/gridmap.js``, ``decodePolygons``/``decodePoints``) reverses it.
"""

from __future__ import annotations

import numpy as np
import shapely
from geopandas import GeoSeries

from geo.errors import InputError

__all__ = ["encode_lines", "encode_points", "encode_polygons"]

SCALE = 1_000_000


def _deltas(coords: np.ndarray) -> list[int]:
    fixed = np.rint(np.asarray(coords, dtype="float64") * SCALE).astype("int64")
    flat = fixed.reshape(-1)
    if flat.size == 0:
        return []
    # x and y interleaved: difference with the value two places back (same axis).
    out = np.empty_like(flat)
    out[:2] = flat[:2]
    out[2:] = flat[2:] - flat[:-2]
    return out.tolist()


def encode_polygons(geoms: GeoSeries) -> dict[str, list[int] | None]:
    """Encode (multi)polygons in WGS84 as ``{"c", "r", "p", "g"}`` for ``decodePolygons``.

    ``c`` is the flat list of delta-coded ``x, y`` integers; ``r`` the vertex count of each ring;
    ``p`` the ring count of each polygon and ``g`` the polygon count of each geometry (``None``
    when all are 1).

    Parameters
    ----------
    geoms : GeoSeries
        Polygons or multipolygons, lon/lat order, no empties.

    Returns
    -------
    dict

    Examples
    --------
    >>> from shapely import box
    >>> encode_polygons(GeoSeries([box(120.0, 31.0, 120.000002, 31.000001)]))
    {'c': [120000002, 31000000, 0, 1, -2, 0, 0, -1], 'r': [4], 'p': None, 'g': None}
    """
    values = np.asarray(geoms.values if isinstance(geoms, GeoSeries) else geoms, dtype=object)
    if len(values) == 0:
        return {"c": [], "r": [], "p": None, "g": None}
    types = shapely.get_type_id(values)
    if not np.isin(types, (3, 6)).all() or shapely.is_empty(values).any():
        raise InputError("map layers need non-empty polygon or multipolygon geometries")
    # Mixed polygons and multipolygons come back as multipolygons (three offset levels).
    _, coords, offsets = shapely.to_ragged_array(values)
    ring_offsets = offsets[0]
    # Drop each ring's closing vertex.
    keep = np.ones(len(coords), dtype=bool)
    keep[ring_offsets[1:] - 1] = False
    ring_sizes = np.diff(ring_offsets) - 1
    polygon_sizes = np.diff(offsets[1])
    geometry_sizes = np.diff(offsets[2]) if len(offsets) > 2 else np.ones(len(values), dtype=int)
    return {
        "c": _deltas(coords[keep]),
        "r": ring_sizes.tolist(),
        "p": None if (polygon_sizes == 1).all() else polygon_sizes.tolist(),
        "g": None if (geometry_sizes == 1).all() else geometry_sizes.tolist(),
    }


def encode_points(lon: np.ndarray, lat: np.ndarray) -> dict[str, list[int]]:
    """Encode points as ``{"c": [...]}`` for ``decodePoints``.

    Examples
    --------
    >>> encode_points(np.array([120.5, 120.500001]), np.array([31.25, 31.25]))
    {'c': [120500000, 31250000, 1, 0]}
    """
    return {"c": _deltas(np.column_stack([lon, lat]))}


def encode_lines(geoms: GeoSeries) -> dict[str, list[int]]:
    """Encode (multi)lines in WGS84 as ``{"c", "r"}``: every part's vertices, ``r`` per part.

    The page draws them as one reference layer (roads), so parts are not grouped by feature.

    Examples
    --------
    >>> from shapely import LineString
    >>> encode_lines(GeoSeries([LineString([(120.0, 31.0), (120.000001, 31.0)])]))
    {'c': [120000000, 31000000, 1, 0], 'r': [2]}
    """
    values = np.asarray(geoms.values if isinstance(geoms, GeoSeries) else geoms, dtype=object)
    parts = shapely.get_parts(values[~shapely.is_empty(values)])
    parts = parts[shapely.get_type_id(parts) == 1]
    if len(parts) == 0:
        return {"c": [], "r": []}
    counts = shapely.get_num_coordinates(parts)
    coords = shapely.get_coordinates(parts)
    return {"c": _deltas(coords), "r": counts.tolist()}
