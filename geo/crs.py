"""Coordinate systems a Chinese district office meets, and checks on incoming coordinates.

``wgs84`` (GPS, EPSG:4326), ``gcj02`` (Amap, Tencent: the state-mandated obfuscation, about
500 m off), ``bd09`` (Baidu: GCJ-02 plus another shift, about 1 km off), ``cgcs2000``
(EPSG:4490, the national datum) and any ``EPSG:n`` (projected ones take x, y in metres).

GCJ-02 and BD-09 have no EPSG code and PROJ does not know them. The maintained package
``prcoords-typed`` needs Python >= 3.14 and the older ``prcoords`` converts one point at a time,
so the published formulas (public domain, after Artoria2e5/PRCoords) are written here with
numpy: arrays in, arrays out, ten million points in about a second.

Examples
--------
>>> lon, lat = to_wgs84(116.487586, 39.991754, crs="gcj02")
>>> round(float(lon), 5), round(float(lat), 5)
(116.4815, 39.99047)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pandas as pd
import pyproj
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info

from geo.errors import CoordinateError, CRSError

if TYPE_CHECKING:
    import geopandas as gpd

    GeoFrame = TypeVar("GeoFrame", gpd.GeoDataFrame, gpd.GeoSeries)

__all__ = [
    "REASONS_ZH",
    "assert_lonlat",
    "check_lonlat",
    "coordinate_error",
    "from_wgs84",
    "in_metres",
    "metric_crs_for",
    "parse_crs_name",
    "to_wgs84",
]

# Krasovsky 1940 ellipsoid, which GCJ-02 uses to turn its metre offsets into degrees.
_GCJ_A = 6378245.0
_GCJ_EE = 0.00669342162296594323
# Baidu's constant shift on top of GCJ-02, in degrees.
_BD_DLON = 0.0065
_BD_DLAT = 0.0060
# GCJ-02 only applies inside this box (the published "in China" test); outside it equals WGS84.
_CHINA = (72.004, 0.8293, 137.8347, 55.8271)
# Fixed-point inversion stops below this change (degrees, about 0.01 mm).
_INVERSE_TOL = 1e-10
_INVERSE_MAX_ITER = 20

_ALIASES = {
    "wgs84": "wgs84",
    "wgs-84": "wgs84",
    "wgs 84": "wgs84",
    "gps": "wgs84",
    "epsg:4326": "wgs84",
    "4326": "wgs84",
    "gcj02": "gcj02",
    "gcj-02": "gcj02",
    "gcj": "gcj02",
    "amap": "gcj02",
    "bd09": "bd09",
    "bd-09": "bd09",
    "bd09ll": "bd09",
    "baidu": "bd09",
    "cgcs2000": "EPSG:4490",
    "cgcs-2000": "EPSG:4490",
}
_NAMES = ("wgs84", "gcj02", "bd09", "cgcs2000", "EPSG:n")


def parse_crs_name(text: str | int | pyproj.CRS) -> str | pyproj.CRS:
    """Resolve a coordinate system name to ``"wgs84"``, ``"gcj02"``, ``"bd09"`` or a CRS.

    Parameters
    ----------
    text : str, int or pyproj.CRS
        ``wgs84``, ``gcj02``, ``bd09``, ``cgcs2000`` (case and dashes ignored), ``EPSG:n``,
        a bare EPSG number, or a ``pyproj.CRS``.

    Returns
    -------
    str or pyproj.CRS
        One of the three names (EPSG:4326 becomes ``"wgs84"``), else the ``pyproj.CRS``.

    Raises
    ------
    CRSError
        The name is empty or unknown.

    Examples
    --------
    >>> parse_crs_name("GCJ-02")
    'gcj02'
    >>> parse_crs_name("EPSG:4549").name
    'CGCS2000 / 3-degree Gauss-Kruger CM 120E'
    """
    if isinstance(text, pyproj.CRS):
        return "wgs84" if _epsg_of(text.srs) == 4326 else text
    key = str(text).strip().lower()
    if not key:
        raise CRSError("no coordinate system given", hint=f"use one of {', '.join(_NAMES)}")
    alias = _ALIASES.get(key, key)
    if alias in ("wgs84", "gcj02", "bd09"):
        return alias
    if alias.isdigit():
        alias = f"EPSG:{alias}"
    if not alias.lower().startswith("epsg:"):
        raise CRSError(
            f"unknown coordinate system {text!r}", hint=f"use one of {', '.join(_NAMES)}"
        )
    try:
        crs = _crs_from_code(alias.upper())
    except pyproj.exceptions.CRSError as error:
        raise CRSError(f"unknown coordinate system {text!r}: {error}") from None
    return "wgs84" if crs.to_epsg() == 4326 else crs


@functools.lru_cache(maxsize=64)
def _crs_from_code(code: str) -> pyproj.CRS:
    return pyproj.CRS.from_user_input(code)


def transformer(
    source: pyproj.CRS | int | str, target: pyproj.CRS | int | str
) -> pyproj.Transformer:
    """The always-xy transformer from ``source`` to ``target``, made once per process.

    Making one searches the PROJ database for the operation (30-90 ms for CGCS2000
    Gauss-Kruger), and each street of a province run needs the same few again; pyproj's
    transformers are thread-safe. Even hashing a CRS writes its WKT (tens of microseconds):
    single-point locates key the cache by the CRSs' definition strings.
    """
    return _transformer_between(_definition(source), _definition(target))


def _definition(crs: pyproj.CRS | int | str) -> str:
    if isinstance(crs, pyproj.CRS):
        return crs.srs
    return f"EPSG:{crs}" if isinstance(crs, int) else str(crs)


@functools.lru_cache(maxsize=64)
def _transformer_between(source: str, target: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(source, target, always_xy=True)


@functools.lru_cache(maxsize=64)
def _epsg_of(definition: str) -> int | None:
    return pyproj.CRS.from_user_input(definition).to_epsg()


_WGS84 = pyproj.CRS.from_epsg(4326)


def to_wgs84(lon, lat, *, crs: str | int | pyproj.CRS = "wgs84") -> tuple[np.ndarray, np.ndarray]:
    """Convert coordinates in ``crs`` to WGS84 longitude and latitude.

    Parameters
    ----------
    lon, lat : float or array_like
        Longitude and latitude in degrees, or x and y in metres for a projected ``crs``.
    crs : str, int or pyproj.CRS, default "wgs84"
        See :func:`parse_crs_name`.

    Returns
    -------
    tuple of numpy.ndarray
        WGS84 longitude and latitude (float64, same shape as the input).

    Examples
    --------
    >>> lon, lat = to_wgs84(116.49412, 39.997716, crs="bd09")
    >>> round(float(lon), 4), round(float(lat), 4)
    (116.4815, 39.9905)
    """
    x = np.asarray(lon, dtype="float64")
    y = np.asarray(lat, dtype="float64")
    name = parse_crs_name(crs)
    # Compare names only as strings: CRS == str parses the string into a CRS (slow).
    if isinstance(name, pyproj.CRS):
        out_x, out_y = transformer(name, _WGS84).transform(x, y)
        return np.asarray(out_x, dtype="float64"), np.asarray(out_y, dtype="float64")
    if name == "gcj02":
        return _gcj_to_wgs(x, y)
    if name == "bd09":
        return _gcj_to_wgs(*_bd_to_gcj(x, y))
    return x.copy(), y.copy()


def from_wgs84(lon, lat, *, crs: str | int | pyproj.CRS) -> tuple[np.ndarray, np.ndarray]:
    """Convert WGS84 longitude and latitude to ``crs`` (the inverse of :func:`to_wgs84`).

    The maps use it to draw overlays in GCJ-02 over Amap tiles.

    Examples
    --------
    >>> lon, lat = from_wgs84(116.481499, 39.990475, crs="gcj02")
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.487586, 39.991754)
    """
    x = np.asarray(lon, dtype="float64")
    y = np.asarray(lat, dtype="float64")
    name = parse_crs_name(crs)
    # Compare names only as strings: CRS == str parses the string into a CRS (slow).
    if isinstance(name, pyproj.CRS):
        out_x, out_y = transformer(_WGS84, name).transform(x, y)
        return np.asarray(out_x, dtype="float64"), np.asarray(out_y, dtype="float64")
    if name == "gcj02":
        return _wgs_to_gcj(x, y)
    if name == "bd09":
        return _gcj_to_bd(*_wgs_to_gcj(x, y))
    return x.copy(), y.copy()


def _in_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    west, south, east, north = _CHINA
    return (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)


def _wgs_to_gcj(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = lon - 105.0, lat - 35.0
    # The published distortion polynomials, in metres along latitude and longitude.
    d_lat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))) + (
        2.0 * np.sin(x * 6.0 * np.pi)
        + 2.0 * np.sin(x * 2.0 * np.pi)
        + 2.0 * np.sin(y * np.pi)
        + 4.0 * np.sin(y / 3.0 * np.pi)
        + 16.0 * np.sin(y / 12.0 * np.pi)
        + 32.0 * np.sin(y / 30.0 * np.pi)
    ) * 20.0 / 3.0
    d_lon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))) + (
        2.0 * np.sin(x * 6.0 * np.pi)
        + 2.0 * np.sin(x * 2.0 * np.pi)
        + 2.0 * np.sin(x * np.pi)
        + 4.0 * np.sin(x / 3.0 * np.pi)
        + 15.0 * np.sin(x / 12.0 * np.pi)
        + 30.0 * np.sin(x / 30.0 * np.pi)
    ) * 20.0 / 3.0
    rad_lat = np.radians(lat)
    magic = 1.0 - _GCJ_EE * np.sin(rad_lat) ** 2
    lat_deg_len = np.radians(_GCJ_A * (1.0 - _GCJ_EE) / magic**1.5)
    lon_deg_len = np.radians(_GCJ_A * np.cos(rad_lat) / np.sqrt(magic))
    inside = _in_china(lon, lat)
    return (
        np.where(inside, lon + d_lon / lon_deg_len, lon),
        np.where(inside, lat + d_lat / lat_deg_len, lat),
    )


def _invert(forward, target_x: np.ndarray, target_y: np.ndarray):
    # The obfuscations have no closed-form inverse; they are smooth and small, so the
    # fixed point x <- x - (f(x) - target) converges to 1e-10 degrees in a few steps.
    x, y = target_x.copy(), target_y.copy()
    for _ in range(_INVERSE_MAX_ITER):
        fx, fy = forward(x, y)
        dx, dy = fx - target_x, fy - target_y
        x, y = x - dx, y - dy
        finite = np.isfinite(dx) & np.isfinite(dy)
        if not finite.any() or max(np.abs(dx[finite]).max(), np.abs(dy[finite]).max()) < (
            _INVERSE_TOL
        ):
            break
    return x, y


def _gcj_to_wgs(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _invert(_wgs_to_gcj, lon, lat)


def _gcj_to_bd(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r = np.hypot(lon, lat) + 0.00002 * np.sin(np.radians(lat) * 3000.0)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(np.radians(lon) * 3000.0)
    return r * np.cos(theta) + _BD_DLON, r * np.sin(theta) + _BD_DLAT


def _bd_to_gcj(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _invert(_gcj_to_bd, lon, lat)


def metric_crs_for(lon, lat) -> pyproj.CRS:
    """The metric working CRS for a district around these WGS84 coordinates.

    Inside China's range: the CGCS2000 3-degree Gauss-Kruger zone whose central meridian is
    nearest (EPSG:4534 CM 75E to EPSG:4554 CM 135E; Suzhou and Changshu get EPSG:4549, CM 120E).
    Elsewhere: the WGS84 UTM zone.

    Parameters
    ----------
    lon, lat : float or array_like
        WGS84 coordinates of the district (their median decides).

    Examples
    --------
    >>> metric_crs_for(120.78, 31.66).to_epsg()
    4549
    >>> metric_crs_for(-71.06, 42.36).to_epsg()
    32619
    """
    x = np.asarray(lon, dtype="float64").ravel()
    y = np.asarray(lat, dtype="float64").ravel()
    keep = np.isfinite(x) & np.isfinite(y)
    if not keep.any():
        raise CoordinateError("no valid coordinates to choose a metric coordinate system from")
    cx, cy = float(np.median(x[keep])), float(np.median(y[keep]))
    if not (-180 <= cx <= 180 and -90 <= cy <= 90):
        raise CoordinateError(f"coordinates out of range: lon={cx}, lat={cy}")
    meridian = 3 * round(cx / 3)
    if 75 <= meridian <= 135 and 0 <= cy <= 56:
        return pyproj.CRS.from_epsg(4534 + (meridian - 75) // 3)
    return _utm_crs(cx, cy)


def crs_hint(minx: float, miny: float, maxx: float, maxy: float) -> tuple[str, str] | None:
    """What coordinates in this box most likely are, for a file that does not say its CRS (or
    says a wrong one): a hint naming the ``--crs`` to give, in English and Chinese; None where
    the box fits none of the systems a Chinese office meets.

    CAD and survey drawings often come without a .prj, in CGCS2000 Gauss-Kruger metres whose
    easting starts with the zone number (40,512,345 m: 3-degree zone 40), which names the EPSG
    code; without the zone number only the central meridian is unknown.

    Examples
    --------
    >>> crs_hint(40_512_000, 3_504_000, 40_520_000, 3_510_000)[0]
    'they look like CGCS2000 3-degree Gauss-Kruger zone 40 (120°E): give --crs EPSG:4528'
    >>> crs_hint(120.7, 31.6, 120.8, 31.7)[0]
    'they look like longitude/latitude: give --crs EPSG:4326 (WGS84) or EPSG:4490 (CGCS2000)'
    """
    if -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90:
        return (
            "they look like longitude/latitude: give --crs EPSG:4326 (WGS84) or EPSG:4490 "
            "(CGCS2000)",
            "坐标像是经纬度：请用 --crs EPSG:4326（WGS84）或 EPSG:4490（CGCS2000）",
        )
    if not (0 < miny <= maxy < 6_500_000):  # northings of China, in metres
        return None
    zone = _zone_number(minx, maxx)
    if zone is not None:
        width, code, meridian = (
            (3, 4488 + zone, 3 * zone) if zone >= 25 else (6, 4478 + zone, 6 * zone - 3)
        )
        return (
            f"they look like CGCS2000 {width}-degree Gauss-Kruger zone {zone} ({meridian}°E): "
            f"give --crs EPSG:{code}",
            f"坐标像是 CGCS2000 {width}度带高斯-克吕格投影第 {zone} 带（中央经线 {meridian}°E）："
            f"请用 --crs EPSG:{code}",
        )
    if 100_000 <= minx <= maxx <= 900_000:
        return (
            "they look like CGCS2000 3-degree Gauss-Kruger metres without a zone number: give "
            "--crs with your central meridian's code (EPSG:4549 for 120°E, as in Suzhou and "
            "Changshu; EPSG:4534 to EPSG:4554 for 75°E to 135°E)",
            "坐标像是不带带号的 CGCS2000 3度带高斯-克吕格投影（米）：请按中央经线用 --crs 指定"
            "（120°E 如苏州、常熟为 EPSG:4549；75°E 至 135°E 为 EPSG:4534 至 EPSG:4554）",
        )
    return None


def _zone_number(minx: float, maxx: float) -> int | None:
    """The Gauss-Kruger zone an easting with its zone number in front names (3-degree zones 25
    to 45, 6-degree zones 13 to 23, as China uses them); None for any other easting."""
    zone, west = divmod(minx, 1_000_000)
    if zone != maxx // 1_000_000 or not (west >= 100_000 and maxx % 1_000_000 <= 900_000):
        return None
    return int(zone) if 25 <= zone <= 45 or 13 <= zone <= 23 else None


def _utm_crs(lon: float, lat: float) -> pyproj.CRS:
    # pyproj's UTM query on the district's point, which is what GeoDataFrame.estimate_utm_crs()
    # runs (without importing geopandas here, on the start-up path of locate).
    point = AreaOfInterest(lon, lat, lon, lat)
    found = query_utm_crs_info(datum_name="WGS 84", area_of_interest=point)
    return pyproj.CRS.from_epsg(found[0].code)


def in_metres(frame: GeoFrame) -> GeoFrame:
    """``frame`` in a metric CRS: as it is when projected (a project's layers are stored in its
    working CRS), else in the UTM zone geopandas' ``estimate_utm_crs()`` picks for it.

    For measuring and simplifying in metres (the maps); the display datum is chosen later.
    """
    return frame if frame.crs.is_projected else frame.to_crs(frame.estimate_utm_crs())


MISSING = "missing coordinate"
NOT_A_NUMBER = "coordinate is not a number"
OUT_OF_RANGE = "out of range (longitude must be within ±180, latitude within ±90)"
SWAPPED = "latitude and longitude look swapped"
FAR_AWAY = "far outside the district"

#: The Chinese twin of every reason :func:`check_lonlat` gives.
REASONS_ZH = {
    "": "",
    MISSING: "缺少坐标",
    NOT_A_NUMBER: "坐标不是数字",
    OUT_OF_RANGE: "坐标超出范围（经度应在 ±180 之间，纬度应在 ±90 之间）",
    SWAPPED: "经纬度疑似颠倒",
    FAR_AWAY: "远离辖区",
}

_GEOD = pyproj.Geod(ellps="WGS84")


def _as_numbers(values) -> tuple[np.ndarray, np.ndarray]:
    """Numbers as float64 plus a mask of entries that were given but are not numbers."""
    array = np.asarray(values)
    if array.dtype.kind in "fiub":
        return array.astype("float64").ravel(), np.zeros(array.size, dtype=bool)
    series = pd.Series(np.asarray(values, dtype=object).ravel())
    numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    unread = np.flatnonzero(np.isnan(numbers))  # usually few: look at their text only
    text = series.iloc[unread]
    given = text.notna().to_numpy() & (text.astype(str).str.strip() != "").to_numpy()
    not_a_number = np.zeros(numbers.size, dtype=bool)
    not_a_number[unread[given]] = True
    return numbers, not_a_number


def _km_outside(lon: np.ndarray, lat: np.ndarray, bounds: Sequence[float]) -> np.ndarray:
    """Geodesic distance in km from each point to the nearest point of a lon/lat box."""
    west, south, east, north = bounds
    near_lon = np.clip(lon, west, east)
    near_lat = np.clip(lat, south, north)
    usable = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    out = np.where(usable, 0.0, np.inf)
    usable &= (near_lon != lon) | (near_lat != lat)  # inside the box: 0, no geodesic needed
    if usable.any():
        _, _, metres = _GEOD.inv(lon[usable], lat[usable], near_lon[usable], near_lat[usable])
        out[usable] = np.asarray(metres) / 1000.0
    return out


def check_lonlat(
    lon,
    lat,
    *,
    district_bounds: Sequence[float] | None = None,
    max_distance_km: float = 50.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Find coordinates that cannot be right, with the reason in plain English.

    Checks, in order: missing, not a number, lat/lon swapped, out of range, and (with
    ``district_bounds``) more than ``max_distance_km`` from the district's box. A pair counts
    as swapped when the given order is out of range but the swapped one is not (|lat| > 90,
    |lon| <= 90), or when the given order is far from the district and the swapped order is not.

    Parameters
    ----------
    lon, lat : array_like
        Longitude and latitude in degrees; strings and None are allowed (CSV columns).
    district_bounds : (west, south, east, north), optional
        The district's box in WGS84 degrees.
    max_distance_km : float, default 50
        Farther than this from the box is "far outside the district".

    Returns
    -------
    ok : numpy.ndarray of bool
    reason : numpy.ndarray of str
        ``""`` where ok; :data:`REASONS_ZH` maps each reason to Chinese.

    Examples
    --------
    >>> ok, reason = check_lonlat([120.6, 31.3, None], [31.3, 120.6, 31.3])
    >>> ok.tolist(), reason.tolist()
    ([True, False, False], ['', 'latitude and longitude look swapped', 'missing coordinate'])
    """
    x, x_bad = _as_numbers(lon)
    y, y_bad = _as_numbers(lat)
    if x.shape != y.shape:
        raise CoordinateError(f"{x.size} longitudes but {y.size} latitudes")
    reason = np.full(x.shape, "", dtype=object)
    reason[x_bad | y_bad] = NOT_A_NUMBER
    reason[(np.isnan(x) | np.isnan(y)) & (reason == "")] = MISSING

    def in_range(a, b):
        return (np.abs(a) <= 180) & (np.abs(b) <= 90)

    given_ok = in_range(x, y)
    swapped_ok = in_range(y, x)
    todo = reason == ""
    reason[todo & ~given_ok & swapped_ok] = SWAPPED
    reason[todo & ~given_ok & ~swapped_ok] = OUT_OF_RANGE
    if district_bounds is not None:
        far = np.flatnonzero(reason == "")
        far = far[_km_outside(x[far], y[far], district_bounds) > max_distance_km]
        swapped = _km_outside(y[far], x[far], district_bounds) <= max_distance_km
        reason[far] = np.where(swapped, SWAPPED, FAR_AWAY)
    return reason == "", reason.astype(str)


def coordinate_error(lon, lat, reason: str) -> CoordinateError:
    """The error for one coordinate that :func:`check_lonlat` refused, in English and Chinese.

    Examples
    --------
    >>> str(coordinate_error(31.3, 120.6, SWAPPED))
    'lon=31.3, lat=120.6: latitude and longitude look swapped / 经纬度疑似颠倒 (did you mean lon=120.6, lat=31.3?)'
    """
    hint = f"did you mean lon={lat}, lat={lon}?" if reason == SWAPPED else None
    return CoordinateError(f"lon={lon}, lat={lat}: {reason} / {REASONS_ZH[reason]}", hint=hint)


def assert_lonlat(
    lon,
    lat,
    *,
    district_bounds: Sequence[float] | None = None,
    max_distance_km: float = 50.0,
) -> tuple[float, float]:
    """Check one coordinate pair and return it as floats, or raise :class:`CoordinateError`.

    Examples
    --------
    >>> assert_lonlat("120.6", 31.3)
    (120.6, 31.3)
    """
    ok, reason = check_lonlat(
        [lon], [lat], district_bounds=district_bounds, max_distance_km=max_distance_km
    )
    if not ok[0]:
        raise coordinate_error(lon, lat, str(reason[0]))
    return float(lon), float(lat)
