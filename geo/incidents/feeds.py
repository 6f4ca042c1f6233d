"""Reading incident feeds (12345 hotline, 数字城管, 311 ...) into one normalised table.

A feed is a CSV (UTF-8, UTF-8 with BOM, or GBK/GB18030), an Excel .xlsx (first sheet), a GeoJSON
of points, or a JSON list of objects (bare or under ``"records"``). An :class:`IncidentMapping`
names the feed's columns once; :func:`read_incident_feed` returns one row per record with
:data:`FEED_COLUMNS`. Nothing is dropped: rows without usable coordinates stay with
``located=False`` and the reason, unknown categories go to 其他 with the raw text, unparseable
times become NaT with ``time_problem``.
Descriptions are untrusted text and are kept exactly as given (escape them where shown).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from geo.chinese_text import ENCODINGS
from geo.crs import to_wgs84
from geo.errors import InputError
from geo.exchange.xlsx import is_xlsx, read_xlsx
from geo.incidents.catalogue import load_catalogue, load_legacy_map, match_category
from geo.reference import shipped_mapping, shipped_mapping_names

FEED_COLUMNS = [
    "source",
    "source_id",
    "duplicate",
    "category_code",
    "category_known",
    "category_raw",
    "reported_at",
    "time_problem",
    "description",
    "address",
    "lon",
    "lat",
    "located",
    "unlocated_reason",
    "fallback_point",
]
_TZ_SUFFIX = re.compile(r"(?:z|[+-]\d{2}:?\d{2})$", re.IGNORECASE)
_ZH_DATE = str.maketrans({"年": "-", "月": "-", "日": " ", "时": ":", "分": ":", "秒": " "})
#: the case times gridmap holds: far inside pandas' nanosecond range (1677-2262), so that offsets,
#: deadlines and time zones never overflow; a time outside is refused as "time out of range"
EARLIEST_TIME = pd.Timestamp("1900-01-01", tz="UTC")
LATEST_TIME = pd.Timestamp("2200-01-01", tz="UTC")
_OUT_OF_RANGE = f"time out of range ({EARLIEST_TIME.year} to {LATEST_TIME.year - 1})"


#: ISO 8601 dates and date-times as time bounds (``since``, ``until``) take them (calendar validity by datetime)
_ISO_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"
)


def parse_iso_time(value: str | None, name: str) -> pd.Timestamp | None:
    """A strict ISO 8601 date or date-time from 1900 to 2199; naive values are Beijing time (UTC+8).

    Words (``yesterday``, ``now``), other orders (``01/31/2026``) and impossible dates
    (``2026-13-01``) are refused, so that a bound means one thing.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text) if _ISO_TIME.fullmatch(text) else None
    except ValueError:
        moment = None
    if moment is None:
        raise InputError(
            f"{name} must be an ISO 8601 date or date-time (2026-01-31 or 2026-01-31T08:00+08:00), "
            f"not {text[:60]!r}",
            zh=f"{name} 应为 ISO 8601 日期或时间，如 2026-01-31",
        )
    if not EARLIEST_TIME.year <= moment.year < LATEST_TIME.year:
        raise InputError(
            f"{name} {text[:40]!r} is outside the supported range "
            f"({EARLIEST_TIME.year} to {LATEST_TIME.year - 1})",
            zh=f"{name} 超出支持的时间范围（{EARLIEST_TIME.year} 至 {LATEST_TIME.year - 1} 年）",
        )
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("Asia/Shanghai") if stamp.tzinfo is None else stamp


class FeedError(InputError):
    """An incident feed or its column mapping cannot be read."""


@dataclass(frozen=True)
class IncidentMapping:
    """Which column of a feed holds what; ``None`` means the feed has no such column.

    ``crs`` is the coordinates' system (``wgs84``, ``gcj02``, ``bd09``, ``cgcs2000`` or an EPSG
    code, converted by :func:`geo.crs.to_wgs84`); ``tz`` the zone of naive timestamps;
    ``category_map`` maps a feed's own category values to catalogue codes.

    Examples
    --------
    >>> IncidentMapping(lon_col="x", lat_col="y").tz
    'Asia/Shanghai'
    """

    id_col: str | None = None
    lon_col: str | None = None
    lat_col: str | None = None
    category_col: str | None = None
    time_col: str | None = None
    description_col: str | None = None
    address_col: str | None = None
    crs: str = "wgs84"
    tz: str = "Asia/Shanghai"
    category_map: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:  # an unknown zone would fail only when the first naive time is read
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise FeedError(
                f"unknown time zone {str(self.tz)[:60]!r}: use an IANA name such as "
                "Asia/Shanghai or UTC",
                zh=f"未知时区 {str(self.tz)[:60]}，请使用 IANA 名称，如 Asia/Shanghai",
            ) from None

    @classmethod
    def from_file(cls, path: str | Path) -> IncidentMapping:
        """Load a mapping saved as JSON (keys are the field names).

        A ``path`` that is no file but the name of a mapping shipped with gridmap
        (``"boston311"``, see ``data/incident_mappings``) loads that one.
        """
        path = Path(path)
        if not path.exists():
            path = shipped_mapping(str(path)) or path
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, json.JSONDecodeError) as exc:
            raise FeedError(
                f"cannot read the column mapping {path}: {exc}",
                hint=f"a JSON file, or a shipped mapping: {', '.join(shipped_mapping_names())}",
            ) from exc
        if not isinstance(data, dict):
            raise FeedError(f"column mapping {path.name} must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FeedError(
                f"column mapping {path.name} has unknown key(s) {', '.join(unknown)}",
                hint=f"known keys: {', '.join(sorted(known))}",
            )
        return cls(**data)

    def to_dict(self) -> dict:
        """The mapping as a JSON-ready dict (what :meth:`from_file` reads)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def mapping_from_options(mapping_file: str | Path | None, **columns: Any) -> IncidentMapping:
    """A column mapping from a saved file, with any column given on the command line on top."""
    base = IncidentMapping.from_file(mapping_file) if mapping_file else IncidentMapping()
    given = {k: v for k, v in columns.items() if v is not None}
    return IncidentMapping(**{**base.to_dict(), **given}) if given else base


def read_incident_feed(
    path: str | Path,
    *,
    mapping: IncidentMapping,
    source: str,
    catalogue: pd.DataFrame | None = None,
    bounds: tuple[float, float, float, float] | None = None,
    min_repeats: int = 5,
    min_share: float = 0.05,
) -> pd.DataFrame:
    """Read a CSV, GeoJSON or JSON feed into the normalised incident table.

    Parameters
    ----------
    path : str or Path
        ``.csv``/``.txt``, ``.geojson`` or ``.json``.
    mapping : IncidentMapping
        The feed's columns. In a GeoJSON the point geometry gives the coordinates.
    source : str
        The feed's name (``"12345"``, ``"数字城管"``, ``"boston311"``): ids are unique per source.
    catalogue : DataFrame, optional
        From :func:`geo.incidents.catalogue.load_catalogue`; the shipped one by default.
    bounds : (min_lon, min_lat, max_lon, max_lat), optional
        WGS84 box of the district; points outside are unlocated ("outside the district").
    min_repeats, min_share
        Fallback-point thresholds, see :func:`flag_fallback_points`.

    Returns
    -------
    DataFrame
        :data:`FEED_COLUMNS`, one row per record in file order. ``reported_at`` is UTC.

    Examples
    --------
    >>> m = IncidentMapping.from_file("boston311")  # shipped: data/incident_mappings
    >>> df = read_incident_feed("../shared/data/boston311_100.csv", mapping=m, source="311")
    >>> int(df["fallback_point"].sum())
    19
    """
    return normalise_records(
        read_feed_records(path),
        mapping=mapping,
        source=source,
        catalogue=catalogue,
        bounds=bounds,
        min_repeats=min_repeats,
        min_share=min_share,
    )


def records_from_objects(rows: list[dict]) -> pd.DataFrame:
    """Records from a list of JSON-like objects (a feed pushed to the API), as a JSON file reads."""
    return pd.DataFrame.from_records(rows).astype(object) if rows else pd.DataFrame()


def normalise_records(
    records: pd.DataFrame,
    *,
    mapping: IncidentMapping,
    source: str,
    catalogue: pd.DataFrame | None = None,
    bounds: tuple[float, float, float, float] | None = None,
    min_repeats: int = 5,
    min_share: float = 0.05,
) -> pd.DataFrame:
    """The normalised incident table (:data:`FEED_COLUMNS`) of raw records; see
    :func:`read_incident_feed`, which reads them from a file first."""
    out = pd.DataFrame(index=records.index)
    out["source"] = source
    out["source_id"] = _source_ids(records, mapping.id_col)
    out["duplicate"] = out["source_id"].duplicated()
    catalogue = load_catalogue() if catalogue is None else catalogue
    categories = match_category(
        _text(_column(records, mapping.category_col)),
        catalogue,
        legacy=load_legacy_map(),
        extra=mapping.category_map,
    )
    out["category_code"] = categories["code"]
    out["category_known"] = categories["known"]
    out["category_raw"] = categories["raw"]
    out["reported_at"], out["time_problem"] = parse_timestamps(
        _column(records, mapping.time_col), tz=mapping.tz
    )
    out["description"] = _text(_column(records, mapping.description_col))
    out["address"] = _text(_column(records, mapping.address_col))
    lon, lat, reason = _coordinates(records, mapping, bounds=bounds)
    usable = reason.isna()
    fallback = pd.Series(False, index=records.index)
    fallback[usable] = flag_fallback_points(
        lon[usable], lat[usable], min_repeats=min_repeats, min_share=min_share
    )
    reason = reason.mask(fallback, "geocoder fallback point")
    out["lon"], out["lat"] = lon, lat
    out["located"] = reason.isna()
    out["unlocated_reason"] = reason
    out["fallback_point"] = fallback
    return out[FEED_COLUMNS].reset_index(drop=True)


def read_feed_records(path: str | Path) -> pd.DataFrame:
    """The feed's records as a DataFrame of raw values (CSV cells stay text)."""
    path = Path(path)
    if not path.exists():
        raise FeedError(f"feed file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in {".csv", ".txt"}:
        return _csv_records(path)
    if is_xlsx(path):
        return read_xlsx(path)
    if suffix not in {".json", ".geojson"}:
        raise FeedError(f"{path.name}: feeds are .csv, .xlsx, .geojson or .json")
    return _json_records(path)


def _csv_records(path: Path) -> pd.DataFrame:
    """A CSV feed's cells as text, read as UTF-8 (with or without BOM) or else GBK."""
    for encoding in ENCODINGS:
        try:
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)
        except UnicodeDecodeError:
            continue
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise FeedError(f"{path.name} is not a readable CSV: {exc}") from exc
    raise FeedError(f"{path.name} is neither UTF-8 nor GBK text")


def _json_records(path: Path) -> pd.DataFrame:
    """A GeoJSON FeatureCollection, a list of objects or ``{"records": [...]}`` as records."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedError(f"{path.name} is not valid UTF-8 JSON: {exc}") from exc
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        return _geojson_records(data, path)
    rows = data.get("records") if isinstance(data, dict) else data
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise FeedError(f'{path.name}: expected a list of objects or {{"records": [...]}}')
    return records_from_objects(rows)


def _geojson_records(data: dict, path: Path) -> pd.DataFrame:
    rows = []
    for feature in data.get("features") or []:
        row = dict(feature.get("properties") or {})
        geometry = feature.get("geometry") or {}
        coords = geometry.get("coordinates")
        if geometry.get("type") == "Point" and isinstance(coords, list) and len(coords) >= 2:
            row["__lon"], row["__lat"] = coords[0], coords[1]
        elif geometry:
            row["__geometry_problem"] = f"geometry is a {geometry.get('type')}, not a point"
        rows.append(row)
    if not rows and data.get("features") is None:
        raise FeedError(f"{path.name}: a FeatureCollection without features")
    return pd.DataFrame.from_records(rows).astype(object) if rows else pd.DataFrame()


def _column(records: pd.DataFrame, name: str | None) -> pd.Series:
    if name is None or (records.empty and name not in records.columns):
        return pd.Series([None] * len(records), index=records.index, dtype=object)
    if name not in records.columns:
        raise FeedError(
            f"the feed has no column {name!r}",
            hint=f"columns: {', '.join(map(str, records.columns[:30]))}",
        )
    return records[name].astype(object).where(records[name].notna(), None)


def _text(values: pd.Series) -> pd.Series:
    """Text as given; a JSON number or object becomes its JSON text (``{"a": 1}``, ``6001``)."""

    def one(value: object) -> str | None:
        if value is None or isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False, default=str)

    # built as a list: Series.map would infer pandas' str dtype and turn None into NaN
    return pd.Series([one(v) for v in values], index=values.index, dtype=object)


def _blank(values: pd.Series) -> pd.Series:
    return values.isna() | values.astype(str).str.strip().eq("")


def _source_ids(records: pd.DataFrame, id_col: str | None) -> pd.Series:
    """The feed's id as text, or a stable hash of the whole record when it has none."""
    ids = _column(records, id_col).astype(str).str.strip()
    missing = _blank(_column(records, id_col))
    if missing.any():
        raw = records.loc[missing].astype(str)
        hashed = [
            "h:"
            + hashlib.sha1(
                json.dumps(row, ensure_ascii=False, sort_keys=True).encode("utf-8")
            ).hexdigest()[:16]
            for row in raw.to_dict("records")
        ]
        ids[missing] = hashed
    return ids


def parse_timestamps(raw: pd.Series, *, tz: str = "Asia/Shanghai") -> tuple[pd.Series, pd.Series]:
    """Parse feed timestamps to UTC; naive times are taken in ``tz``.

    Handles ISO 8601 (with or without offset), ``2022-01-21 13:47:00``, ``2022/1/21 13:47``,
    ``2022年1月21日 13:47``, and epoch seconds or milliseconds (numbers of 9-10 or 12-13 digits).

    Returns
    -------
    (Series, Series)
        ``datetime64[ns, UTC]`` (NaT where unusable) and the problem (``"missing time"``,
        ``"unparseable time"``, ``"time does not exist in <tz>"``) or None.

    Examples
    --------
    >>> ts, problem = parse_timestamps(pd.Series(["2022年1月21日 13:47", "soon"]))
    >>> str(ts[0]), problem[1]
    ('2022-01-21 05:47:00+00:00', 'unparseable time')
    """
    text = raw.astype(object).where(raw.notna(), "").astype(str).str.strip()
    result = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]")
    problem = pd.Series(None, index=raw.index, dtype=object)
    blank = text.eq("")
    problem[blank] = "missing time"
    numeric = text.str.fullmatch(r"\d{9,13}(\.\d+)?")
    if numeric.any():
        number = text[numeric].astype(float)
        unit_ms = number >= 1e11  # 12-13 digits: milliseconds since 1970
        seconds = number.where(~unit_ms, number / 1000.0)
        _put_in_range(result, problem, pd.to_datetime(seconds, unit="s", utc=True, errors="coerce"))
    rest = ~blank & ~numeric
    cleaned = text[rest].str.translate(_ZH_DATE).str.replace(r"\s+", " ", regex=True).str.strip()
    cleaned = cleaned.str.replace(r"[:\s]+$", "", regex=True)
    aware = cleaned.str.contains(_TZ_SUFFIX)
    if aware.any():
        parsed = pd.to_datetime(cleaned[aware], format="mixed", utc=True, errors="coerce")
        _put_in_range(result, problem, parsed)
    naive_index = aware[~aware].index
    if len(naive_index):
        parsed = pd.to_datetime(cleaned[naive_index], format="mixed", errors="coerce")
        parsed = parsed.where(_in_range(parsed.dt.tz_localize("UTC")) | parsed.isna())
        _flag_out_of_range(problem, parsed, cleaned[naive_index])
        local = parsed.astype("datetime64[ns]").dt.tz_localize(
            tz, ambiguous="NaT", nonexistent="NaT"
        )
        problem[naive_index[parsed.notna() & local.isna()]] = f"time does not exist in {tz}"
        result[naive_index] = local.dt.tz_convert("UTC")
    problem[result.isna() & problem.isna()] = "unparseable time"
    return result, problem.astype(object).where(problem.notna(), None)


def _in_range(stamps: pd.Series) -> pd.Series:
    """Which UTC times (any resolution) lie in the range gridmap holds (NaT: False)."""
    return stamps.notna() & (stamps >= EARLIEST_TIME) & (stamps < LATEST_TIME)


def _put_in_range(result: pd.Series, problem: pd.Series, parsed: pd.Series) -> None:
    """Write the parsed UTC times that lie in range into ``result``; flag the others."""
    inside = _in_range(parsed)
    problem[parsed.index[parsed.notna() & ~inside]] = _OUT_OF_RANGE
    result[parsed.index[inside]] = parsed[inside].astype("datetime64[ns, UTC]")


def _flag_out_of_range(problem: pd.Series, parsed: pd.Series, text: pd.Series) -> None:
    """Flag naive times read as a date but dropped by :func:`_in_range`."""
    again = pd.to_datetime(text[parsed.isna()], format="mixed", errors="coerce")
    problem[again.index[again.notna()]] = _OUT_OF_RANGE


def _coordinates(
    records: pd.DataFrame, mapping: IncidentMapping, *, bounds
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """WGS84 lon/lat (NaN where unusable) and the reason a row is unusable (None if fine)."""
    index = records.index
    reason = pd.Series(None, index=index, dtype=object)
    if "__lon" in records.columns:
        raw_lon, raw_lat = records["__lon"], records["__lat"]
        if mapping.lon_col and mapping.lat_col:  # GeoJSON without geometry: the properties
            raw_lon = raw_lon.where(raw_lon.notna(), _column(records, mapping.lon_col))
            raw_lat = raw_lat.where(raw_lat.notna(), _column(records, mapping.lat_col))
    elif mapping.lon_col and mapping.lat_col:
        raw_lon = _column(records, mapping.lon_col)
        raw_lat = _column(records, mapping.lat_col)
    else:
        raw_lon = raw_lat = pd.Series(None, index=index, dtype=object)
    if "__geometry_problem" in records.columns:
        reason = reason.fillna(records["__geometry_problem"].where(raw_lon.isna(), None))
    lon = pd.to_numeric(raw_lon, errors="coerce").astype("float64")
    lat = pd.to_numeric(raw_lat, errors="coerce").astype("float64")
    missing = _blank(raw_lon) | _blank(raw_lat)
    not_numbers = ~missing & (lon.isna() | lat.isna() | ~np.isfinite(lon) | ~np.isfinite(lat))
    reason[missing & reason.isna()] = "no coordinates"
    reason[not_numbers] = "not numbers"
    ok = reason.isna()
    reason[ok & lon.eq(0) & lat.eq(0)] = "coordinates are 0,0"
    ok = reason.isna()
    if ok.any():
        lon[ok], lat[ok] = to_wgs84(lon[ok].to_numpy(), lat[ok].to_numpy(), crs=mapping.crs)
    finite = np.isfinite(lon) & np.isfinite(lat)
    out_of_range = ok & (~finite | (lon.abs() > 180) | (lat.abs() > 90))
    swapped = out_of_range & (lat.abs() <= 180) & (lon.abs() <= 90)
    reason[out_of_range] = "coordinates out of range"
    reason[swapped] = "coordinates out of range (lon/lat swapped?)"
    if bounds is not None:
        min_lon, min_lat, max_lon, max_lat = bounds
        inside = lon.between(min_lon, max_lon) & lat.between(min_lat, max_lat)
        looks_swapped = lat.between(min_lon, max_lon) & lon.between(min_lat, max_lat)
        outside = reason.isna() & ~inside
        reason[outside] = "outside the district"
        reason[outside & looks_swapped] = "outside the district (lon/lat swapped?)"
    # Unusable numbers are not kept as coordinates: a store would write them as points.
    usable = reason.isna()
    return lon.where(usable), lat.where(usable), reason.astype(object).where(~usable, None)


def flag_fallback_points(
    lon: pd.Series,
    lat: pd.Series,
    *,
    min_repeats: int = 5,
    min_share: float = 0.05,
    decimals: int = 6,
) -> pd.Series:
    """Flag coordinates repeated so often they must be a geocoder's fallback (a city centre).

    A coordinate (rounded to ``decimals``, about 0.1 m at 6) is a fallback point when at least
    ``min_repeats`` records **and** at least ``min_share`` of the records given sit on it. Real
    places repeat too (a shop reported twice), hence both thresholds; a very busy real address
    in a small file can still be flagged, so the flag means "check", not "wrong".

    Returns
    -------
    Series of bool
        Aligned to ``lon``.

    Examples
    --------
    >>> lon = pd.Series([120.6] * 5 + [120.61, 120.62])
    >>> lat = pd.Series([31.3] * 5 + [31.31, 31.32])
    >>> flag_fallback_points(lon, lat).tolist()
    [True, True, True, True, True, False, False]
    """
    if len(lon) == 0:
        return pd.Series(False, index=lon.index, dtype=bool)
    key = pd.DataFrame({"x": lon.round(decimals), "y": lat.round(decimals)}, index=lon.index)
    counts = key.groupby(["x", "y"], dropna=True)["x"].transform("size")
    threshold = max(min_repeats, min_share * len(lon))
    return counts.ge(threshold).fillna(False).astype(bool)


def summarise_import(df: pd.DataFrame) -> dict:
    """Counts of an imported feed: read, located, unlocated (with reasons), unknown category,
    fallback points, duplicate ids and unusable times.

    Examples
    --------
    >>> summarise_import(pd.DataFrame(columns=FEED_COLUMNS))["read"]
    0
    """
    reasons = df["unlocated_reason"].dropna().value_counts()
    return {
        "read": len(df),
        "located": int(df["located"].sum()),
        "unlocated": int((~df["located"].astype(bool)).sum()),
        "unknown_category": int((~df["category_known"].astype(bool)).sum()),
        "fallback_point": int(df["fallback_point"].sum()),
        "duplicate_id": int(df["duplicate"].sum()),
        "bad_time": int(df["reported_at"].isna().sum()),
        "unlocated_reasons": {str(k): int(v) for k, v in reasons.items()},
    }


#: the usual headers of each column, in order of preference, compared by :func:`_header_key`
#: (Chinese and English; 311 and 12345 exports): a feed with these needs no column options
USUAL_HEADERS: dict[str, tuple[str, ...]] = {
    "lon_col": ("lon", "lng", "longitude", "long", "经度", "x", "xcoord", "x坐标", "经度坐标"),
    "lat_col": ("lat", "latitude", "纬度", "y", "ycoord", "y坐标", "纬度坐标"),
    "id_col": (
        "id",
        "caseid",
        "caseno",
        "casenumber",
        "caseenquiryid",
        "incidentid",
        "ticketid",
        "servicerequestid",
        "案件编号",
        "案件号",
        "工单编号",
        "工单号",
        "事件编号",
        "编号",
    ),
    "time_col": (
        "reportedat",
        "reporttime",
        "time",
        "opendt",
        "opentime",
        "createdat",
        "createtime",
        "requesteddatetime",
        "datetime",
        "timestamp",
        "date",
        "上报时间",
        "受理时间",
        "发生时间",
        "创建时间",
        "登记时间",
        "时间",
        "日期",
    ),
    "category_col": (
        "category",
        "type",
        "casetype",
        "servicename",
        "问题类型",
        "事件类型",
        "案件类型",
        "问题分类",
        "类别",
        "分类",
        "小类",
        "类型",
    ),
    "description_col": (
        "description",
        "desc",
        "details",
        "detail",
        "content",
        "casetitle",
        "title",
        "问题描述",
        "事件描述",
        "案件描述",
        "诉求内容",
        "描述",
        "内容",
    ),
    "address_col": (
        "address",
        "location",
        "addr",
        "streetaddress",
        "地址",
        "事发地址",
        "发生地址",
        "详细地址",
        "位置",
        "地点",
    ),
}


def _header_key(name: object) -> str:
    """A header as compared: lower case, without spaces, ``_``, ``-``, ``.`` or brackets."""
    return re.sub(r"[\s_\-.()（）]+", "", str(name)).lower()


def recognise_columns(records: pd.DataFrame, mapping: IncidentMapping) -> IncidentMapping:
    """The mapping with each column it leaves unnamed taken from the feed's usual headers.

    Columns the mapping names are kept as given; a header serves one column at most. In a
    GeoJSON the point geometry gives the coordinates, so ``lon``/``lat`` headers are not needed.

    Examples
    --------
    >>> feed = pd.DataFrame(columns=["案件编号", "经度", "纬度", "上报时间", "Case Title"])
    >>> m = recognise_columns(feed, IncidentMapping())
    >>> m.id_col, m.lon_col, m.lat_col, m.time_col, m.description_col, m.category_col
    ('案件编号', '经度', '纬度', '上报时间', 'Case Title', None)
    """
    given = mapping.to_dict()
    taken = {v for k, v in given.items() if k.endswith("_col") and v}
    by_key: dict[str, str] = {}
    for column in records.columns:
        if not str(column).startswith("__") and column not in taken:
            by_key.setdefault(_header_key(column), str(column))
    found = {}
    for role, headers in USUAL_HEADERS.items():
        if given[role]:
            continue
        match = next((by_key[h] for h in headers if h in by_key), None)
        if match is not None:
            found[role] = match
            by_key = {k: v for k, v in by_key.items() if v != match}
    if "__lon" in records.columns:  # GeoJSON: the geometry is the location
        found = {k: v for k, v in found.items() if k not in ("lon_col", "lat_col")}
    if bool(found.get("lon_col") or given["lon_col"]) != bool(
        found.get("lat_col") or given["lat_col"]
    ):
        found.pop("lon_col", None)
        found.pop("lat_col", None)
    return IncidentMapping(**{**given, **found}) if found else mapping


def describe_mapping(mapping: IncidentMapping) -> str:
    """The columns a feed was read with, as one line (``id=case_enquiry_id, lon=longitude, ...``)."""
    names = [
        f"{role.removesuffix('_col')}={getattr(mapping, role)}"
        for role in (
            "id_col",
            "lon_col",
            "lat_col",
            "time_col",
            "category_col",
            "description_col",
            "address_col",
        )
        if getattr(mapping, role)
    ]
    return ", ".join([*names, f"crs={mapping.crs}", f"tz={mapping.tz}"])


def feed_coordinates(
    records: pd.DataFrame, mapping: IncidentMapping
) -> tuple[np.ndarray, np.ndarray]:
    """The WGS84 lon/lat of every record read with ``mapping`` (NaN where unusable), without the
    district's box: what :func:`normalise_records` would place before it checks the district."""
    lon, lat, _ = _coordinates(records, mapping, bounds=None)
    return lon.to_numpy(dtype="float64"), lat.to_numpy(dtype="float64")
