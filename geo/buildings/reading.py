"""Reading building footprints: any format GDAL reads, checked, repaired and put in a metric CRS.

The functions here never touch the project file; :mod:`geo.usecases.district` stores what they return.

Examples
--------
>>> from geo.buildings.reading import ReadOptions, read_buildings
>>> buildings, report = read_buildings("../shared/data/kunming_buildings.geojson",
...                                    ReadOptions(community_field="community"))  # doctest: +SKIP
>>> report.read, report.kept
(140, 140)
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely
from shapely.errors import GEOSException

from geo.buildings import plausible
from geo.buildings.sources import gdal_source, shapefile_encoding
from geo.chinese_text import decoded
from geo.crs import crs_hint, metric_crs_for, parse_crs_name, transformer
from geo.errors import CoordinateError, CRSError, InputError, NotFound

#: ids looked for, in order, when no --id-field is given
ID_FIELD_GUESSES = (
    "building_id",
    "id",
    "osm_id",
    "osm_way_id",
    "osm_index",
    "fid",
    "编号",
    "建筑编号",
)
NAME_FIELD_GUESSES = ("name", "名称", "建筑名称")
#: fields whose name says they hold each building's community, used when every feature has one
COMMUNITY_FIELD_GUESSES = ("community", "社区", "社区名称", "所属社区")
ADDRESS_FIELD_GUESSES = ("address", "addr", "地址", "门牌地址")
OSM_SUFFIXES = (".osm", ".pbf")
STREET_FIELD_GUESSES = ("addr_street", "addr:street", "street", "街道名", "路名")
HOUSENUMBER_FIELD_GUESSES = ("addr_housenumber", "addr:housenumber", "housenumber", "门牌号")
#: OSM tags kept from GDAL's other_tags, as columns
OSM_ADDRESS_TAGS = {
    "addr:street": "addr_street",
    "addr:housenumber": "addr_housenumber",
    "addr:city": "addr_city",
    "addr:district": "addr_district",
}
OSM_ATTRIBUTION = "© OpenStreetMap contributors (ODbL 1.0)"
#: footprints as text tables, with the geometry as WKT in one of the WKT_COLUMNS
TABLE_SUFFIXES = (".csv",)
WKT_COLUMNS = ("wkt", "geometry", "geom", "the_geom", "wkt_geom", "shape", "几何")

# columns gridmap owns in the buildings layer; a source field of the same name is kept as src_<name>
STANDARD_COLUMNS = ("building_id", "community", "households", "name", "address", "grid_code")
#: columns every feature table of the project file has besides the layer's fields
RESERVED_COLUMNS = ("fid", "geom")


@dataclass
class ReadReport:
    """What happened to the features of one file."""

    source: str
    source_crs: str
    read: int = 0
    kept: int = 0
    repaired: int = 0
    dropped_empty: int = 0
    dropped_non_polygon: int = 0
    dropped_unreadable: int = 0
    from_osm: bool = False
    #: source fields renamed because SQLite would take them for another column (NAME and name)
    renamed_fields: dict[str, str] = field(default_factory=dict)
    repaired_ids: list[str] = field(default_factory=list)
    dropped_ids: list[str] = field(default_factory=list)
    #: the credit line kept with the data (the given one, or OpenStreetMap's for OSM data)
    attribution: str = ""
    #: footprints made of parts far apart (kept, each as one building)
    scattered_ids: list[str] = field(default_factory=list)
    #: community names written differently that were read as one (community_names)
    merged_communities: list[list[str]] = field(default_factory=list)
    #: the field communities were taken from without --community-field (named like them)
    community_field_guessed: str | None = None
    #: the guessed id field whose values repeat, so that the buildings were numbered instead
    numbered_instead_of: str = ""
    #: footprints identical to an earlier one, and ones holding two or more others whole
    duplicate_ids: list[str] = field(default_factory=list)
    container_ids: list[str] = field(default_factory=list)
    #: the encoding the text was read in where the file does not say it (a Shapefile without
    #: .cpg, a GeoJSON saved as GBK): "GB18030" or "UTF-8"; empty where the file says it
    text_encoding: str = ""


def read_features(
    path: str | Path,
    *,
    layer: str | None = None,
    crs: str | None = None,
) -> tuple[gpd.GeoDataFrame, bool]:
    """Read a vector file through pyogrio; return the frame and whether it came from OSM.

    GeoJSON, Shapefile (also ``.zip``), GeoPackage (``layer``), FlatGeobuf and OSM PBF / XML
    (buildings from GDAL's ``multipolygons`` layer) are supported. ``crs`` is for files
    that carry none, or one their coordinates cannot be in (a GeoJSON of metres, read as
    longitude/latitude); a file whose own CRS fits its coordinates and a different ``crs`` is
    refused.
    """
    path = Path(path)
    if not path.exists():
        raise NotFound(f"no such file: {path}", zh=f"文件不存在：{path}")
    if path.suffix.lower() in TABLE_SUFFIXES:
        return _with_crs(_read_csv(path), path=path, crs=crs), False
    from_osm = path.suffix.lower() in OSM_SUFFIXES
    if from_osm and layer is None:
        layer = "multipolygons"
    _refuse_unreadable_parts(path)
    source = gdal_source(path)
    try:
        listed = pyogrio.list_layers(source)
    except pyogrio.errors.DataSourceError as error:
        raise InputError(
            f"{path.name} is not a readable vector file ({_first_line(error)})",
            zh=f"{path.name} 不是可读取的矢量文件",
        ) from None
    layers = [str(name) for name, _ in listed]
    shapes = [str(name) for name, kind in listed if kind is not None]
    if layer is None and len(layers) > 1 and len(shapes) == 1:
        layer = shapes[0]  # QGIS keeps its styles in a table beside the one layer of shapes
    if layer is not None and layer not in layers:
        raise InputError(
            f"{path.name} has no layer {layer!r}; its layers are: {', '.join(layers)}",
            zh=f"{path.name} 中没有图层 {layer}；现有图层：{', '.join(layers)}",
        )
    if layer is None and len(layers) > 1:
        raise InputError(
            f"{path.name} holds several layers ({', '.join(layers)}); choose one with --layer",
            zh=f"{path.name} 含多个图层（{', '.join(layers)}），请用 --layer 指定",
        )
    try:
        frame = _read_frame(path, layer, source)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as error:
        raise InputError(
            f"cannot read {path.name}: {_first_line(error)}", zh=f"无法读取 {path.name}"
        ) from None
    if not isinstance(frame, gpd.GeoDataFrame):
        raise InputError(
            f"{path.name} holds no geometry (a table without shapes); give a file of footprints",
            zh=f"{path.name} 中没有几何图形（只是表格）；请提供建筑轮廓文件",
        )
    frame = _with_crs(frame, path=path, crs=crs)
    from_osm = from_osm or any(str(c).lower().startswith("osm") for c in frame.columns)
    return frame, from_osm


def _refuse_unreadable_parts(path: Path) -> None:
    """Refuse, naming the fix, what GDAL reports in its own terms: a Shapefile without the
    ``.shx`` that comes with it, a GeoJSON saved as UTF-16 (Windows Notepad's "Unicode")."""
    suffix = path.suffix.lower()
    if suffix == ".shp" and not any(
        path.with_suffix(ext).exists() for ext in (".shx", ".SHX")
    ):  # fmt: skip
        raise InputError(
            f"{path.name} comes without {path.stem}.shx, the index every Shapefile has beside "
            "its .shp and .dbf: copy it too (or send the Shapefile zipped)",
            zh=f"{path.name} 缺少同名的 .shx 文件（Shapefile 的索引文件）：请一并拷贝（或打包成 zip）",
        )
    if suffix in (".geojson", ".json") and _first_bytes(path, 2) in (b"\xff\xfe", b"\xfe\xff"):
        raise InputError(
            f"{path.name} is saved as UTF-16; save it as UTF-8 (GeoJSON's encoding)",
            zh=f"{path.name} 是 UTF-16 编码；请另存为 UTF-8（GeoJSON 的编码）",
        )


def _first_bytes(path: Path, n: int) -> bytes:
    with path.open("rb") as file:
        return file.read(n)


def _with_crs(frame: gpd.GeoDataFrame, *, path: Path, crs: str | None) -> gpd.GeoDataFrame:
    """``frame`` with the CRS it declares or ``crs`` (for a file that declares none, or one its
    coordinates cannot be in)."""
    if crs is not None:
        given = parse_crs(crs)
        if frame.crs is not None and not frame.crs.equals(given) and _fits(frame, path.name):
            raise CRSError(
                f"{path.name} already declares {frame.crs.to_string()}; --crs is only for files "
                "without a CRS",
                zh=f"{path.name} 已声明坐标系 {frame.crs.to_string()}，--crs 仅用于无坐标系的文件",
            )
        frame = frame.set_crs(given, allow_override=True)
    if frame.crs is None:
        hint = _hint(frame)
        if hint is not None:
            raise CRSError(
                f"{path.name} carries no coordinate system; {hint[0]}",
                zh=f"{path.name} 没有坐标系信息；{hint[1]}",
            )
        raise CRSError(
            f"{path.name} carries no coordinate system; give it with --crs (e.g. --crs EPSG:4326 "
            "for longitude/latitude, --crs EPSG:4549 for CGCS2000 Gauss-Kruger 120E)",
            zh=f"{path.name} 没有坐标系信息，请用 --crs 指定（如 EPSG:4326、EPSG:4549）",
        )
    return frame


def _fits(frame: gpd.GeoDataFrame, name: str) -> bool:
    """Whether the frame's coordinates can be in the CRS it declares. One that cannot (a GeoJSON
    of Gauss-Kruger metres, which GDAL reads as longitude/latitude, as the format says) gives
    way to ``--crs``."""
    try:
        check_coordinates(frame, name=name)
    except CoordinateError:
        return False
    return True


def _hint(frame: gpd.GeoDataFrame) -> tuple[str, str] | None:
    """:func:`geo.crs.crs_hint` for the frame's footprints (None for no finite coordinates)."""
    bounds = frame.geometry.total_bounds
    return crs_hint(*bounds) if np.isfinite(bounds).all() else None


def _read_csv(path: Path) -> gpd.GeoDataFrame:
    """Footprints from a CSV (UTF-8, UTF-8 with BOM or GBK) with a WKT column; no CRS of its own.

    The geometry column is the first of :data:`WKT_COLUMNS` present (any case). A value GEOS
    cannot parse, even leniently, is left missing and counted (``frame.attrs["unreadable"]``).
    """
    found = decoded(path.read_bytes())
    if found is None:
        raise InputError(
            f"{path.name}: not UTF-8 or GBK text", zh=f"{path.name}：编码不是 UTF-8 或 GBK"
        )
    try:
        table = pd.read_csv(StringIO(found[0]), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as error:
        raise InputError(
            f"{path.name}: not a readable CSV ({_first_line(error)})",
            zh=f"{path.name}：不是可读取的 CSV 文件",
        ) from None
    lowered = {str(c).strip().lower(): c for c in table.columns}
    column = next((lowered[name] for name in WKT_COLUMNS if name in lowered), None)
    if column is None:
        columns = ", ".join(map(str, table.columns)) or "(none)"
        raise InputError(
            f"{path.name}: a CSV of footprints needs a WKT column named wkt, geometry or geom; "
            f"its columns are: {columns}",
            zh=f"{path.name}：CSV 需要 WKT 几何列（wkt、geometry 或 geom）；现有列：{columns}",
        )
    values = table[column].str.strip().replace("", None).to_numpy(dtype=object)
    present = np.array([value is not None for value in values], dtype=bool)
    geometry = shapely.from_wkt(values, on_invalid="fix")
    frame = gpd.GeoDataFrame(table.drop(columns=column), geometry=geometry, crs=None)
    frame.attrs["unreadable"] = np.flatnonzero(present & shapely.is_missing(geometry)).tolist()
    return frame


def _read_frame(path: Path, layer: str | None, source: str | Path) -> gpd.GeoDataFrame:
    """The layer of ``path`` (GDAL opens ``source``, :func:`gdal_source`) as a GeoDataFrame; a
    feature whose geometry GEOS refuses never stops the read.

    A clipped OSM extract holds closed ways whose nodes lie outside it: GDAL hands over rings of
    two points, and building the whole frame raises. Then the geometries are read as WKB and
    parsed one by one: repaired where GEOS can (``frame.attrs["fixed"]``, positions), left
    missing where it cannot (``frame.attrs["unreadable"]``).
    """
    encoding = shapefile_encoding(path)
    geojson = path.suffix.lower() in (".geojson", ".json")
    try:
        with np.errstate(invalid="ignore"):  # a NaN coordinate: counted below, not warned
            frame = pyogrio.read_dataframe(
                source, layer=layer, encoding=encoding, fid_as_index=geojson
            )
    except GEOSException:
        frame = None
    except UnicodeDecodeError:
        # GeoJSON is UTF-8 by definition, but Chinese offices save it as GBK too
        encoding = "GB18030"
        frame = pyogrio.read_dataframe(source, layer=layer, encoding=encoding, fid_as_index=geojson)
    if frame is None:
        frame = _read_leniently(source, layer, encoding)
    frame = _with_feature_ids(frame) if geojson else frame
    frame.attrs["text_encoding"] = encoding or ""
    return frame


def _with_feature_ids(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A GeoJSON read with its feature numbers as the index, numbered 0, 1, ... again; the
    features' own integer ``id`` members become an ``id`` field (GDAL takes them as feature
    numbers, so no field has them; string ids it keeps as a field itself)."""
    fids = frame.index.to_numpy()
    attrs = frame.attrs
    frame = frame.reset_index(drop=True)
    if "id" not in frame.columns and not (fids == np.arange(len(fids))).all():
        frame.insert(0, "id", fids)
    frame.attrs = attrs
    return frame


def _read_leniently(path: str | Path, layer: str | None, encoding: str | None) -> gpd.GeoDataFrame:
    """:func:`_read_frame`'s read when GEOS refuses a geometry: WKB parsed one by one."""
    attributes = pyogrio.read_dataframe(path, layer=layer, read_geometry=False, encoding=encoding)
    meta, _, wkb, _ = pyogrio.raw.read(path, layer=layer, columns=[])
    present = np.array([value is not None for value in wkb], dtype=bool)
    with np.errstate(invalid="ignore"):  # a NaN coordinate: the feature is counted, not warned
        strict = shapely.from_wkb(wkb, on_invalid="ignore")
        lenient = shapely.from_wkb(wkb, on_invalid="fix")
    broken = present & shapely.is_missing(strict)
    frame = gpd.GeoDataFrame(attributes, geometry=lenient, crs=meta["crs"])
    frame.attrs["fixed"] = np.flatnonzero(broken & ~shapely.is_missing(lenient)).tolist()
    frame.attrs["unreadable"] = np.flatnonzero(broken & shapely.is_missing(lenient)).tolist()
    return frame


def parse_crs(text: str) -> pyproj.CRS:
    """A CRS for a file: the names :func:`geo.crs.parse_crs_name` knows, or a WKT/PROJ string.

    GCJ-02 and BD-09 are offsets for points (see ``gridmap locate``), not a CRS a file can carry.
    """
    try:
        name = parse_crs_name(text)
    except CRSError:
        try:
            return pyproj.CRS.from_user_input(text.strip())
        except pyproj.exceptions.CRSError:
            raise CRSError(
                f"unknown coordinate system {text!r} (try EPSG:4326, EPSG:4490 or EPSG:4549)",
                zh=f"无法识别的坐标系 {text}",
            ) from None
    if name == "wgs84":
        return pyproj.CRS.from_epsg(4326)
    if isinstance(name, str):
        raise CRSError(
            f"{text!r} is an offset for points from Amap/Baidu, not a coordinate system for a file; "
            "give the file's real CRS (e.g. EPSG:4326)",
            zh=f"{text} 是高德/百度坐标的偏移，不是文件的坐标系；请给出真实坐标系（如 EPSG:4326）",
        )
    return name


def polygonal_parts(geometries: gpd.GeoSeries) -> tuple[gpd.GeoSeries, pd.Series, pd.Series]:
    """Repair footprints and keep their polygonal parts.

    Returns the repaired geometries (Polygon or MultiPolygon, aligned to the input; None where
    nothing polygonal is left), and two boolean Series: which were repaired, which were empty.
    A MultiPolygon stays one building.
    """
    values = np.asarray(geometries.values, dtype=object)
    empty = shapely.is_missing(values) | shapely.is_empty(values)
    invalid = ~empty & ~shapely.is_valid(values)
    repaired = values.copy()
    repaired[invalid] = shapely.make_valid(values[invalid])
    # make_valid may return a GeometryCollection of polygons and stray lines: keep the polygons
    collections = shapely.get_type_id(repaired) == 7
    for i in np.flatnonzero(collections):
        parts = [p for p in shapely.get_parts(repaired[i]) if shapely.get_type_id(p) in (3, 6)]
        repaired[i] = shapely.union_all(parts) if parts else None
    polygonal = np.isin(shapely.get_type_id(repaired), [3, 6])
    repaired[~polygonal | empty] = None  # an empty Polygon is still of polygon type
    repaired = shapely.force_2d(repaired)  # a CAD export's heights: footprints are flat
    index = geometries.index
    return (
        gpd.GeoSeries(repaired, index=index, crs=geometries.crs),
        pd.Series(invalid, index=index),
        pd.Series(empty, index=index),
    )


def check_coordinates(frame: gpd.GeoDataFrame, *, name: str) -> None:
    """Refuse coordinates that cannot be right for the frame's CRS (range, swapped lat/lon)."""
    geometries = frame.geometry[~frame.geometry.is_empty & ~frame.geometry.isna()]
    if geometries.empty:
        return
    minx, miny, maxx, maxy = geometries.total_bounds
    crs = frame.crs
    if crs.is_geographic:
        if (abs(miny) > 90 or abs(maxy) > 90) and max(abs(minx), abs(maxx)) <= 90:
            raise CoordinateError(
                f"{name}: latitude and longitude look swapped (y runs {miny:.4f}..{maxy:.4f}, beyond "
                "±90): write longitude first (x = lon, y = lat)",
                zh=f"{name}：经纬度顺序似乎颠倒（y 超出 ±90），应为经度在前、纬度在后",
            )
        if max(abs(minx), abs(maxx)) > 180 or max(abs(miny), abs(maxy)) > 90:
            hint = crs_hint(minx, miny, maxx, maxy) or (
                "are they metres in a projected CRS? then give the right --crs",
                "可能是投影坐标（米），请用 --crs 指定正确坐标系",
            )
            raise CoordinateError(
                f"{name}: coordinates {minx:.1f}..{maxx:.1f}, {miny:.1f}..{maxy:.1f} are out of the "
                f"range of {crs.to_string()} (longitude ±180, latitude ±90); {hint[0]}",
                zh=f"{name}：坐标超出经纬度范围；{hint[1]}",
            )
        if minx >= 15 and maxx <= 56 and miny >= 70 and maxy <= 140:
            raise CoordinateError(
                f"{name}: latitude and longitude look swapped (x {minx:.2f}..{maxx:.2f} reads like "
                "latitudes in China, y like longitudes)",
                zh=f"{name}：经纬度顺序似乎颠倒",
            )
        return
    _refuse_specks(geometries, crs, name)
    area = crs.area_of_use
    if area is None:
        return
    to_lonlat = transformer(crs, 4326)
    lon, lat = to_lonlat.transform(np.array([minx, maxx]), np.array([miny, maxy]))
    margin = 2.0
    inside = (
        np.isfinite(lon).all()
        and np.isfinite(lat).all()
        and area.west - margin <= lon.min()
        and lon.max() <= area.east + margin
        and area.south - margin <= lat.min()
        and lat.max() <= area.north + margin
    )
    if not inside:
        raise CoordinateError(
            f"{name}: coordinates ({minx:.0f}..{maxx:.0f}, {miny:.0f}..{maxy:.0f}) lie outside the "
            f"area of {crs.name} ({area.name}); is the coordinate system right? (x/y swapped, or "
            "another zone?)",
            zh=f"{name}：坐标不在 {crs.name} 的适用范围内，请检查坐标系或 x/y 顺序",
        )


def _refuse_specks(geometries: gpd.GeoSeries, crs: pyproj.CRS, name: str) -> None:
    """Refuse footprints a millimetre across in a metric CRS: degrees declared as metres."""
    bounds = shapely.bounds(geometries.values)
    width = float(np.median(np.hypot(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1])))
    if width >= 0.001:
        return
    hint = crs_hint(*geometries.total_bounds) or (
        "give the right --crs",
        "请用 --crs 指定正确坐标系",
    )
    raise CoordinateError(
        f"{name}: the footprints are {width * 1000:.3g} mm across in {crs.to_string()}, no "
        f"building is; {hint[0]}",
        zh=f"{name}：按 {crs.to_string()} 建筑轮廓仅约 {width * 1000:.3g} 毫米宽；{hint[1]}",
    )


def pick_field(
    frame: pd.DataFrame, requested: str | None, guesses: tuple[str, ...], *, what: str
) -> str | None:
    """The column for ``what``: the requested one (which must exist) or the first guess present."""
    columns = [str(c) for c in frame.columns if c != frame.geometry.name]
    if requested is not None:
        if requested not in columns:
            raise InputError(
                f"no field {requested!r} for {what}; the file's fields are: {', '.join(columns) or '(none)'}",
                zh=f"找不到字段 {requested}；文件中的字段：{', '.join(columns) or '（无）'}",
            )
        return requested
    lowered = {c.lower(): c for c in columns}
    return next((lowered[g.lower()] for g in guesses if g.lower() in lowered), None)


def community_names(values: pd.Series) -> pd.Series:
    """Community names as written, trimmed (missing where blank).

    Names that differ only in how their characters are written (full- or half-width, ① or 1,
    the same as NFKC folds them) are one community, named by its most frequent form: the
    official name stays as the office writes it (金色年华（一期）), and a stray half-width copy
    joins it. Whole numbers stored as floats (a code field read from a .dbf) lose their ``.0``.
    """
    if values.dtype.kind == "f" and (values.dropna() % 1 == 0).all():
        values = values.astype("Int64")
    written = _written(values)
    key = written.map(normalise_text)
    if key.isna().all():
        return key.astype(object)
    form = written.groupby(key).agg(lambda forms: forms.value_counts().index[0])
    names = key.map(form).astype(object)
    return names.where(names.notna(), None)


def merged_names(values: pd.Series) -> list[list[str]]:
    """The groups of differently written names :func:`community_names` reads as one."""
    written = _written(values).dropna()
    forms = written.groupby(written.map(normalise_text)).agg(lambda f: sorted(set(f)))
    return [group for group in forms if len(group) > 1]


def _written(values: pd.Series) -> pd.Series:
    """Each value as written, trimmed; None where missing or blank."""
    return values.astype(object).where(values.notna(), None).map(_trimmed)


def _trimmed(value: object) -> str | None:
    text = None if value is None or value is pd.NA else str(value).strip()
    return text or None


def normalise_text(value: object) -> str | None:
    """NFKC-normalised, trimmed text (full-width digits and letters become ASCII); None if blank."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    text = unicodedata.normalize("NFKC", str(value)).strip()
    return text or None


@dataclass(frozen=True)
class ReadOptions:
    """How to read a footprints file: what the caller knows that the file may not say.

    One set of options for :func:`read_buildings`, the import use case and ``gridmap import``, so
    that a new option is added in one place.
    """

    #: the layer to read (GeoPackage, OSM); None: the only one (OSM: ``multipolygons``)
    layer: str | None = None
    #: the source CRS, only for files that carry none (e.g. ``EPSG:4326``)
    crs: str | None = None
    #: the field holding building ids; None: the first of :data:`ID_FIELD_GUESSES`, else numbered
    id_field: str | None = None
    #: the field holding each building's community; None: no community field
    community_field: str | None = None
    #: the field holding each building's households; None: unknown
    households_field: str | None = None
    #: the district's metric CRS; None: chosen from the footprints' centre
    working_crs: pyproj.CRS | None = None
    #: the credit line to keep with the data; None: OpenStreetMap's for OSM data, else none
    attribution: str | None = None


def read_buildings(
    path: str | Path, options: ReadOptions | None = None
) -> tuple[gpd.GeoDataFrame, ReadReport]:
    """Footprints from a file as gridmap's buildings, in the district's metric CRS.

    Returns a GeoDataFrame with ``building_id`` (text, unique), ``community`` (text or missing),
    ``households`` (nullable integer), ``name``, ``address`` and the source's other fields, and a
    :class:`ReadReport`. Refuses (with a message naming the problem) a file without CRS, out of
    range or swapped coordinates, duplicate ids, unknown field names and an empty result.
    """
    options = options or ReadOptions()
    path = Path(path)
    raw, report = _read_raw(path, options)
    columns = _source_columns(raw, options)
    if options.community_field is None:
        columns["community_column"] = report.community_field_guessed = _guessed_community(raw)
    frame = _polygonal_features(raw, report, path, id_column=columns["id_column"])
    buildings = _standard_columns(frame, **columns)
    if columns["community_column"]:
        report.merged_communities = merged_names(frame[columns["community_column"]])
    if options.id_field is None and buildings["building_id"].duplicated().any():
        # a guessed field (ArcGIS's default Id is 0 everywhere) numbers the buildings instead
        report.numbered_instead_of = columns["id_column"] or ""
        buildings["building_id"] = [f"B{i:06d}" for i in range(1, len(buildings) + 1)]
    _refuse_duplicate_ids(buildings, path.name, columns["id_column"])
    buildings, report.renamed_fields = distinct_field_names(buildings)
    working_crs = options.working_crs
    if working_crs is None:
        lon, lat = _centre_lonlat(buildings)
        working_crs = metric_crs_for(lon, lat)
    report.kept = len(buildings)
    buildings = _valid_after_projection(buildings.to_crs(working_crs))
    apart = plausible.scattered(buildings.geometry.values)
    report.scattered_ids = buildings.loc[apart, "building_id"].tolist()
    return buildings, report


def _read_raw(path: Path, options: ReadOptions) -> tuple[gpd.GeoDataFrame, ReadReport]:
    """The file's features (OSM tags as columns, OSM ids made one) and a report on the source."""
    raw, from_osm = read_features(path, layer=options.layer, crs=options.crs)
    encoding = raw.attrs.get("text_encoding", "")
    raw = osm_tags(raw)
    report = ReadReport(
        source=str(path),
        source_crs=raw.crs.to_string(),
        read=len(raw),
        from_osm=from_osm,
        text_encoding=encoding,
    )
    guessed_osm = from_osm or (options.attribution is None and "openstreetmap" in str(path).lower())
    report.attribution = options.attribution or (OSM_ATTRIBUTION if guessed_osm else "")
    if options.id_field is None and {"osm_id", "osm_way_id"} <= set(raw.columns):
        # GDAL's multipolygons layer: closed ways carry osm_way_id, relations osm_id
        raw["osm_id"] = ("w" + raw["osm_way_id"].astype("string")).fillna(
            "r" + raw["osm_id"].astype("string")
        )
    return raw, report


def _source_columns(raw: gpd.GeoDataFrame, options: ReadOptions) -> dict[str, str | None]:
    """The source's columns for gridmap's standard ones (keyword arguments of _standard_columns)."""
    return {
        "id_column": pick_field(raw, options.id_field, ID_FIELD_GUESSES, what="building ids"),
        "community_column": pick_field(raw, options.community_field, (), what="communities"),
        "households_column": pick_field(raw, options.households_field, (), what="households"),
        "name_column": pick_field(raw, None, NAME_FIELD_GUESSES, what="names"),
        "address_column": pick_field(raw, None, ADDRESS_FIELD_GUESSES, what="addresses"),
    }


def _guessed_community(raw: gpd.GeoDataFrame) -> str | None:
    """A field named like communities (:data:`COMMUNITY_FIELD_GUESSES`) where every feature has
    one; a field with blanks is left for the user to fill and name (the import's note says so)."""
    column = pick_field(raw, None, COMMUNITY_FIELD_GUESSES, what="communities")
    if column is None or _written(raw[column]).isna().any():
        return None
    return column


def _polygonal_features(
    raw: gpd.GeoDataFrame, report: ReadReport, path: Path, *, id_column: str | None
) -> gpd.GeoDataFrame:
    """The features with polygonal footprints, repaired, counted in ``report``, coordinates checked."""
    raw = _without_non_finite(raw)
    with np.errstate(all="ignore"):  # repairing absurd coordinates (1e300) overflows: dropped
        geometry, repaired, empty = polygonal_parts(raw.geometry)
    _tally(report, raw, geometry, repaired=repaired, empty=empty, id_column=id_column)
    keep = ~geometry.isna()
    frame = gpd.GeoDataFrame(raw.drop(columns=raw.geometry.name), geometry=geometry, crs=raw.crs)[
        keep
    ]
    if frame.empty:
        raise InputError(
            f"{path.name}: no building footprints left ({report.read} features read, "
            f"{report.dropped_empty} empty, {report.dropped_non_polygon} not polygons, "
            f"{report.dropped_unreadable} unreadable)",
            zh=f"{path.name}：没有可用的建筑轮廓（读取 {report.read} 个要素，均为空或非面要素）",
        )
    _refuse_strays(frame, path.name, id_column)
    check_coordinates(frame, name=path.name)
    repeated, containers = plausible.duplicates_and_containers(frame.geometry.values)
    ids = _feature_ids(frame, id_column)
    report.duplicate_ids, report.container_ids = ids[repeated].tolist(), ids[containers].tolist()
    return frame


def _without_non_finite(raw: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``raw`` with the features holding a NaN or Infinity coordinate emptied and marked
    unreadable (counted and named with the other dropped features)."""
    bad = plausible.non_finite(raw.geometry.values)
    if not bad.any():
        return raw
    attrs = dict(raw.attrs)
    raw = raw.set_geometry(raw.geometry.where(~bad, None))
    raw.attrs = {
        **attrs,
        "unreadable": sorted({*attrs.get("unreadable", []), *np.flatnonzero(bad)}),
    }
    return raw


def _refuse_strays(frame: gpd.GeoDataFrame, name: str, id_column: str | None) -> None:
    """Refuse footprints no building can be (:func:`geo.buildings.plausible.strays`), by id."""
    stray = plausible.strays(frame.geometry.values)
    if stray.any():
        ids = ", ".join(_feature_ids(frame, id_column)[stray][:5])
        raise CoordinateError(
            f"{name}: {int(stray.sum())} footprints are far wider than the others or far away "
            f"from them ({ids}): a stray vertex, or coordinates of another system? fix or remove "
            "them",
            zh=f"{name}：{int(stray.sum())} 个建筑轮廓远大于其他轮廓或远离其他轮廓（{ids}），"
            "可能有错误顶点或坐标系不同，请修正或删除",
        )


def _feature_ids(frame: pd.DataFrame, id_column: str | None) -> np.ndarray:
    """Each feature's id as the log names it: its id field's text, else ``#`` and its number."""
    numbers = np.array([f"#{i + 1}" for i in frame.index], dtype=object)
    if not id_column:
        return numbers
    ids = _id_texts(frame[id_column])
    return np.where(ids.isna(), numbers, ids.to_numpy(dtype=object))


def _id_texts(values: pd.Series) -> pd.Series:
    """Ids as the project keeps them: NFKC text, trimmed, a whole number read as a float
    without its ``.0``; missing where blank."""
    return values.map(_id_text).astype(object)


def _id_text(value: object) -> str | None:
    text = normalise_text(value)
    return None if text is None else text.removesuffix(".0")


def _valid_after_projection(buildings: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``buildings`` with footprints the projection bent invalid (rings touching) made valid."""
    invalid = ~buildings.geometry.is_valid
    if invalid.any():
        repaired, _, _ = polygonal_parts(buildings.geometry[invalid])
        buildings.loc[invalid & repaired.reindex(buildings.index).notna(), "geometry"] = repaired
    return buildings


def _tally(
    report: ReadReport,
    raw: gpd.GeoDataFrame,
    geometry: gpd.GeoSeries,
    *,
    repaired: pd.Series,
    empty: pd.Series,
    id_column: str | None,
) -> None:
    """Count (and name, for the log) the features repaired and dropped, whatever the cause."""
    unreadable = np.zeros(len(raw), dtype=bool)
    unreadable[raw.attrs.get("unreadable", [])] = True
    fixed = np.zeros(len(raw), dtype=bool)
    fixed[raw.attrs.get("fixed", [])] = True
    kept = geometry.notna().to_numpy()
    was_repaired = (repaired.to_numpy() | fixed) & kept
    empty_only = empty.to_numpy() & ~unreadable
    report.repaired = int(was_repaired.sum())
    report.dropped_unreadable = int(unreadable.sum())
    report.dropped_empty = int(empty_only.sum())
    report.dropped_non_polygon = int((~kept & ~empty.to_numpy() & ~unreadable).sum())
    ids = _feature_ids(raw.reset_index(drop=True), id_column)
    report.repaired_ids = ids[was_repaired].tolist()
    report.dropped_ids = ids[~kept].tolist()


def _standard_columns(
    frame: gpd.GeoDataFrame,
    *,
    id_column: str | None,
    community_column: str | None,
    households_column: str | None,
    name_column: str | None,
    address_column: str | None,
) -> gpd.GeoDataFrame:
    source = frame.drop(columns=frame.geometry.name)
    renamed = {c: f"src_{c}" for c in source.columns if c in STANDARD_COLUMNS}
    if id_column is None:
        ids = pd.Series([f"B{i:06d}" for i in range(1, len(frame) + 1)], index=frame.index)
    else:
        ids = _id_texts(source[id_column])
        missing = ids.isna()
        if missing.any():
            raise InputError(
                f"{int(missing.sum())} features have no value in the id field {id_column!r}",
                zh=f"{int(missing.sum())} 个要素的编号字段 {id_column} 为空",
            )
        _refuse_rounded_ids(source[id_column], id_column)
    standard = pd.DataFrame(index=frame.index)
    standard["building_id"] = ids.astype(str)
    standard["community"] = (
        community_names(source[community_column])
        if community_column
        else pd.Series(None, index=frame.index, dtype=object)
    )
    if community_column and standard["community"].isna().all():
        raise InputError(
            f"the community field {community_column!r} is blank in every feature",
            zh=f"社区字段 {community_column} 在所有要素中均为空",
        )
    standard["households"] = (
        _households(source[households_column])
        if households_column
        else pd.Series(pd.NA, index=frame.index, dtype="Int64")
    )
    standard["name"] = source[name_column].map(normalise_text) if name_column else None
    standard["address"] = (
        source[address_column].map(normalise_text) if address_column else composed_address(source)
    )
    extra = source.rename(columns=renamed)
    return gpd.GeoDataFrame(
        pd.concat(
            [standard, extra.drop(columns=[c for c in extra.columns if c in standard.columns])],
            axis=1,
        ),
        geometry=frame.geometry,
        crs=frame.crs,
    ).reset_index(drop=True)


def _refuse_rounded_ids(values: pd.Series, column: str) -> None:
    """Refuse ids read as floating-point numbers too long to be exact (a .dbf's 19-digit
    numeric field): distinct ids would become one, or come out as 3.2058110400100102e+18."""
    if values.dtype.kind == "f" and (values.abs() >= 2**53).any():
        raise InputError(
            f"the ids in {column!r} have more digits than a number read from this file keeps "
            "exactly; store them as text in the file, or give another --id-field",
            zh=f"字段 {column} 中的编号位数过多，按数值读取会失真；请在文件中将其存为文本，"
            "或用 --id-field 指定其他字段",
        )


def distinct_field_names(frame: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, dict[str, str]]:
    """Rename fields whose names the project file could not hold beside the earlier ones.

    SQLite ignores ASCII case in column names, so a Shapefile's ``NAME`` beside gridmap's
    ``name`` (or ``KIND`` beside ``kind``), or a field called ``fid`` or ``geom``, would be one
    column twice. The later field gets the first free ``_2``, ``_3``... suffix (``NAME`` ->
    ``NAME_2``), always the same for the same file; returns the frame and ``{old: new}``.
    """
    fields = [str(c) for c in frame.columns if c != frame.geometry.name]
    every = {_sqlite_fold(c) for c in fields}
    taken = {_sqlite_fold(c) for c in RESERVED_COLUMNS}
    renamed: dict[str, str] = {}
    for name in fields:
        base = name if name.strip() else "field"  # a GeoJSON property may have no name at all
        new, suffix = base, 1
        while _sqlite_fold(new) in taken or (new != name and _sqlite_fold(new) in every):
            suffix += 1
            new = f"{base}_{suffix}"
        taken.add(_sqlite_fold(new))
        if new != name:
            renamed[name] = new
    return frame.rename(columns=renamed), renamed


def _sqlite_fold(name: str) -> str:
    # SQLite compares identifiers ignoring the case of ASCII letters only
    return "".join(ch.lower() if "A" <= ch <= "Z" else ch for ch in name)


def osm_tags(raw: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``raw`` with the OSM tags GDAL leaves in ``other_tags`` (addr:street, ...) as columns.

    GDAL's OSM driver gives ``name`` a column and packs the other tags into one hstore-like
    text (``"addr:street"=>"中山东一路","addr:housenumber"=>"20"``); the address tags become
    ``addr_street``, ``addr_housenumber``, ... unless the file already has such columns.
    """
    if "other_tags" not in raw.columns:
        return raw
    for tag, column in OSM_ADDRESS_TAGS.items():
        if column not in raw.columns:
            pattern = rf'"{re.escape(tag)}"=>"((?:[^"\\]|\\.)*)"'
            raw[column] = raw["other_tags"].astype("string").str.extract(pattern, expand=False)
    return raw


def composed_address(source: pd.DataFrame) -> pd.Series:
    """Street and house number as one Chinese address (中山东一路 + 20 -> 中山东一路20号)."""
    street = _first_column(source, STREET_FIELD_GUESSES)
    number = _first_column(source, HOUSENUMBER_FIELD_GUESSES)
    streets = [normalise_text(v) for v in source[street]] if street else [None] * len(source)
    numbers = [normalise_text(v) for v in source[number]] if number else [None] * len(source)
    addresses = [
        None if s is None else s + (n or "") + ("号" if n and n[-1].isdigit() else "")
        for s, n in zip(streets, numbers, strict=True)
    ]
    return pd.Series(addresses, index=source.index, dtype=object)


def _first_column(frame: pd.DataFrame, guesses: tuple[str, ...]) -> str | None:
    lowered = {str(c).lower(): c for c in frame.columns}
    return next((lowered[g.lower()] for g in guesses if g.lower() in lowered), None)


def _households(values: pd.Series) -> pd.Series:
    if values.dtype.kind not in "biuf":  # text: full-width digits count, a blank is unknown
        values = values.astype(object).where(values.notna(), None).map(normalise_text)
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values.notna() & (numbers.isna() | (numbers < 0) | (numbers % 1 != 0))
    if bad.any():
        examples = ", ".join(map(repr, values[bad].head(3).tolist()))
        raise InputError(
            f"households must be whole numbers >= 0; {int(bad.sum())} values are not (e.g. {examples})",
            zh=f"户数必须是非负整数；有 {int(bad.sum())} 个值不符合",
        )
    return numbers.astype("Int64")


def _refuse_duplicate_ids(buildings: pd.DataFrame, name: str, id_column: str | None) -> None:
    duplicated = buildings["building_id"][buildings["building_id"].duplicated(keep=False)]
    if not duplicated.empty:
        examples = ", ".join(sorted(set(duplicated))[:5])
        raise InputError(
            f"{name}: {duplicated.nunique()} ids occur more than once in {id_column!r} (e.g. {examples}); "
            "ids must be unique (choose another field with --id-field)",
            zh=f"{name}：编号字段 {id_column} 中有 {duplicated.nunique()} 个重复编号（如 {examples}）",
        )


def _centre_lonlat(frame: gpd.GeoDataFrame) -> tuple[float, float]:
    """The middle of the footprints' box in WGS84 (a stray footprint that would stretch the box
    is refused before: :func:`_refuse_strays`)."""
    minx, miny, maxx, maxy = frame.total_bounds
    to_lonlat = transformer(frame.crs, 4326)
    lon, lat = to_lonlat.transform((minx + maxx) / 2, (miny + maxy) / 2)
    return float(lon), float(lat)


def read_lines(
    path: str | Path, *, crs: pyproj.CRS, source_crs: str | None = None
) -> gpd.GeoDataFrame:
    """A roads file as lines in ``crs`` (the ``kind`` column is kept)."""
    frame, _ = read_features(path, crs=source_crs)
    check_coordinates(frame, name=Path(path).name)
    lines = frame[frame.geometry.geom_type.isin(["LineString", "MultiLineString"])]
    if lines.empty:
        raise InputError(f"{Path(path).name} holds no lines", zh=f"{Path(path).name} 中没有线要素")
    return lines.to_crs(crs)


def read_polygons(
    path: str | Path, *, crs: pyproj.CRS, source_crs: str | None = None
) -> gpd.GeoDataFrame:
    """A polygon file (community outlines) in ``crs``, repaired."""
    frame, _ = read_features(path, crs=source_crs)
    check_coordinates(frame, name=Path(path).name)
    geometry, _, _ = polygonal_parts(frame.geometry)
    frame = frame.set_geometry(geometry)[geometry.notna()]
    if frame.empty:
        raise InputError(
            f"{Path(path).name} holds no polygons", zh=f"{Path(path).name} 中没有面要素"
        )
    return frame.to_crs(crs)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
