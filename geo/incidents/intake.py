"""One posted case stored without the feed machinery: the lean path of ``POST /incidents``.

Why: a feed import normalises, assigns and writes whole tables through pandas, which costs
about 40 ms however few its rows; a hotline pushes cases one by one, beside the locate load.
This path takes one case as plain values (precompiled patterns, the cached catalogue match,
the scalar deadline, the cached locate index, one ``INSERT ... ON CONFLICT DO NOTHING`` in one
transaction) and stores exactly the row the feed path stores for the same case
(tests/test_incident_intake.py compares every column). Where it cannot promise that (no
published index, a case without its own id, a time in another form than ISO 8601, a project
without the incidents layer yet) it answers None and the caller takes the feed path.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import re
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import shapely
import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from geo.crs import from_wgs84, to_wgs84
from geo.incidents import records
from geo.incidents.assign import grids_at
from geo.incidents.cases import COLUMNS, CaseImport, refuse_unplaceable
from geo.incidents.catalogue import load_legacy_map, match_category, parse_time_limit
from geo.incidents.feeds import (
    _OUT_OF_RANGE,
    EARLIEST_TIME,
    LATEST_TIME,
    IncidentMapping,
    describe_mapping,
)
from geo.incidents.workflow import WorkCalendar, _clock_offset, deadline
from geo.locate.engine import GridIndex
from geo.storage import gpkg
from geo.storage.store import Store, incident_events, now_iso, stored_time

#: the time forms read here, which the feed reader reads to the same moment: ISO 8601 without
#: an offset (the mapping's zone), with ``Z`` or with a full ``+hh:mm``/``+hhmm`` offset
_LEAN_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
)
_INCIDENTS = sa.table(records.LAYER, sa.column("geom"), *map(sa.column, COLUMNS))
#: posts in one process queue here for the write lock, woken as soon as it is free: waiting in
#: SQLite's busy handler instead sleeps in growing steps (up to 100 ms) and made the p99 of ten
#: concurrent posters 750 ms where their p50 was 50 ms
_WRITING = threading.Lock()
#: one statement, compiled once: the case unless its id is stored (the UNIQUE index decides)
_INSERT = sqlite_insert(_INCIDENTS).on_conflict_do_nothing(index_elements=["incident_id"])
_EVENT = sa.insert(incident_events)
#: what the lean path needs of the file: the layer, its UNIQUE index, WGS84 (and the grids)
_LAYOUT = (
    "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'incidents'), "
    "EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'incidents_incident_id_unique'), "
    "EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'grids'), "
    "(SELECT srs_id FROM gpkg_geometry_columns WHERE table_name = 'incidents')"
)


@dataclass(frozen=True)
class CaseTime:
    """A posted time as the feed reader reads it: the UTC moment (None) and the problem (None)."""

    moment: pd.Timestamp | None
    problem: str | None


def read_time(text: str, *, tz: str = "Asia/Shanghai") -> CaseTime | None:
    """The feed reader's reading of one ISO 8601 time (:func:`geo.incidents.feeds.parse_timestamps`),
    without a Series; None for any other form, or a date it cannot take (the caller asks the
    feed reader, whose answer stands)."""
    text = text.strip()
    if _LEAN_TIME.fullmatch(text) is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        stamp = pd.Timestamp(moment).tz_convert("UTC")
        return CaseTime(stamp, None) if _in_range(stamp) else CaseTime(None, _OUT_OF_RANGE)
    naive = pd.Timestamp(moment)
    if not _in_range(naive.tz_localize("UTC")):
        return CaseTime(None, _OUT_OF_RANGE)
    local = naive.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    if pd.isna(local):
        return CaseTime(None, f"time does not exist in {tz}")
    return CaseTime(local.tz_convert("UTC"), None)


def _in_range(stamp: pd.Timestamp) -> bool:
    return bool(EARLIEST_TIME <= stamp < LATEST_TIME)


@functools.cache
def _legacy() -> pd.DataFrame:
    return load_legacy_map()


@functools.lru_cache(maxsize=4096)
def _category(key: tuple, value: str | None, extra: tuple) -> tuple[str, bool]:
    """:func:`match_category` of one value against the catalogue ``key`` names (cached)."""
    table = records.cached_catalogue(*key)
    found = match_category(
        pd.Series([value], dtype=object), table, legacy=_legacy(), extra=dict(extra)
    )
    return str(found["code"].iloc[0]), bool(found["known"].iloc[0])


@functools.lru_cache(maxsize=8)
def _names(key: tuple) -> dict[str, tuple[str, str, str]]:
    """code -> (name_zh, class_code as the feed path stores it, time limit)."""
    table = records.cached_catalogue(*key)
    return {
        code: (name, str(klass), limit)
        for code, name, klass, limit in zip(
            table["code"], table["name_zh"], table["class_code"], table["time_limit"], strict=True
        )
    }


def district_bounds(store: Store) -> tuple[float, float, float, float] | None:
    """:func:`geo.incidents.records.district_bounds` in one query (its box cached per extent)."""
    with store.reading() as conn:
        row = conn.exec_driver_sql(
            "SELECT c.min_x, c.min_y, c.max_x, c.max_y, g.srs_id FROM gpkg_contents c "
            "JOIN gpkg_geometry_columns g ON g.table_name = c.table_name "
            "WHERE c.table_name = 'buildings'"
        ).first()
    if row is None or row[0] is None:
        return None
    return _box(int(row[4]), tuple(row[:4]))


@functools.lru_cache(maxsize=16)
def _box(srs_id: int, extent: tuple[float, ...]) -> tuple[float, float, float, float]:
    return records.wgs84_box(pyproj.CRS.from_epsg(srs_id).srs, extent)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _place(
    lon: Any, lat: Any, *, crs: str, bounds: tuple[float, float, float, float] | None
) -> tuple[float | None, float | None, str | None]:
    """One case's WGS84 lon/lat and the reason it is unusable, as the feed reader decides."""
    missing = [v is None or (isinstance(v, float) and math.isnan(v)) for v in (lon, lat)]
    if any(missing):
        return None, None, "no coordinates"
    lon, lat = float(lon), float(lat)
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return None, None, "not numbers"
    if lon == 0 and lat == 0:
        return None, None, "coordinates are 0,0"
    x, y = to_wgs84(np.array([lon]), np.array([lat]), crs=crs)
    lon, lat = float(x[0]), float(y[0])
    if not (math.isfinite(lon) and math.isfinite(lat)) or abs(lon) > 180 or abs(lat) > 90:
        swapped = abs(lat) <= 180 and abs(lon) <= 90
        return None, None, "coordinates out of range" + (" (lon/lat swapped?)" if swapped else "")
    if bounds is not None:
        west, south, east, north = bounds
        if not (west <= lon <= east and south <= lat <= north):
            looks_swapped = west <= lat <= east and south <= lon <= north
            return (
                None,
                None,
                "outside the district" + (" (lon/lat swapped?)" if looks_swapped else ""),
            )
    return lon, lat, None


def add_posted_case(
    store: Store,
    case: dict[str, Any],
    how: CaseImport,
    *,
    time: CaseTime,
    index: GridIndex | None,
    wait: bool = True,
) -> dict[str, Any] | None:
    """Store one posted case (raw values under ``how.mapping``'s columns, its time read by
    :func:`read_time`) as :func:`geo.usecases.incidents.import_records` stores a feed of it, and
    answer the same summary; None where this path cannot promise that (see the module).
    ``wait=False`` (a caller on an event loop): :class:`WriterBusy` instead of waiting for
    another writer. ``how.check_crs`` and ``how.update`` do not apply to one case."""
    prepared = prepare_posted_case(store, case, how, time=time, index=index)
    return None if prepared is None else store_prepared(store, prepared, wait=wait)


@dataclass(frozen=True)
class PreparedCase:
    """A posted case read and checked, ready to store: its row, the summary, how to assign it."""

    row: dict[str, Any]
    summary: dict[str, Any]
    index: GridIndex
    author: str
    reported: pd.Timestamp | None


def store_prepared(store: Store, prepared: PreparedCase, *, wait: bool = True) -> dict | None:
    """Store a :class:`PreparedCase` (see :func:`add_posted_case`); without ``wait`` it may be
    tried again after :class:`WriterBusy`."""
    added = _insert(
        store,
        dict(prepared.row),
        index=prepared.index,
        author=prepared.author,
        reported=prepared.reported,
        wait=wait,
    )
    if added is None:
        return None
    return {**prepared.summary, "added": added, "updated": 0, "already_present": 1 - added}


def prepare_posted_case(
    store: Store,
    case: dict[str, Any],
    how: CaseImport,
    *,
    time: CaseTime,
    index: GridIndex | None,
) -> PreparedCase | None:
    """The first half of :func:`add_posted_case`: the case read, checked (refusals raised here)
    and its row made; None where the lean path does not apply."""
    mapping = how.mapping
    source_id = str(case.get(mapping.id_col or "")).strip() if mapping.id_col else ""
    if index is None or not source_id or case.get(mapping.id_col) is None:
        return None
    key = records.catalogue_key(store)
    raw_category = _value(case, mapping.category_col)
    code, known = _category(key, raw_category, tuple(sorted(mapping.category_map.items())))
    lon, lat, reason = _place(
        case.get(mapping.lon_col) if mapping.lon_col else None,
        case.get(mapping.lat_col) if mapping.lat_col else None,
        crs=mapping.crs,
        bounds=district_bounds(store),
    )
    summary = _summary(reason=reason, known=known, time=time, mapping=mapping)
    if not how.allow_unlocated:
        refuse_unplaceable(summary)
    name, class_code, limit = _names(key)[code]
    row = {
        "incident_id": records.check_case_id(f"{how.source}:{source_id}"),
        "source": how.source,
        "source_id": source_id,
        "category_code": code,
        "category_name": name,
        "class_code": class_code,
        "category_known": known,
        "category_raw": raw_category,
        "status": "reported",
        "reported_at": _stored(time.moment),
        "registered_at": None,
        "closed_at": None,
        "deadline": _stored(case_deadline(time.moment, limit)) if time.moment else None,
        "description": _value(case, mapping.description_col),
        "address": _value(case, mapping.address_col),
        "lon": lon,
        "lat": lat,
        "located": reason is None,
        "unlocated_reason": reason,
        "fallback_point": False,
        "imported_at": now_iso(),
    }
    return PreparedCase(row, summary, index, how.author, time.moment)


def _value(case: dict[str, Any], column: str | None) -> str | None:
    """The text of a case's column as the feed path stores it (None when the column is unnamed)."""
    return _text(case.get(column)) if column else None


def _summary(
    *, reason: str | None, known: bool, time: CaseTime, mapping: IncidentMapping
) -> dict[str, Any]:
    """:func:`geo.incidents.feeds.summarise_import` of a feed of this one case."""
    return {
        "read": 1,
        "located": int(reason is None),
        "unlocated": int(reason is not None),
        "unknown_category": int(not known),
        "fallback_point": 0,  # a point is a fallback only when five records or more share it
        "duplicate_id": 0,
        "bad_time": int(time.moment is None),
        "unlocated_reasons": {} if reason is None else {reason: 1},
        "mapping": describe_mapping(mapping),
    }


def _stored(moment: pd.Timestamp | None) -> str | None:
    """A time as the project file stores it (:func:`geo.storage.store.stored_time`)."""
    return None if moment is None or pd.isna(moment) else stored_time(moment)


def _insert(
    store: Store,
    row: dict[str, Any],
    *,
    index: GridIndex,
    author: str,
    reported: pd.Timestamp | None,
    wait: bool,
) -> int | None:
    """Insert the case unless its id is stored (the UNIQUE index decides), with its creation
    event and log line, in one transaction; 1 added, 0 already there, None: no lean path here.
    Without ``wait``, :class:`WriterBusy` when another writer holds the file."""
    if not _WRITING.acquire(blocking=wait):
        raise WriterBusy
    try:
        with store.transaction(wait=wait) as conn:
            return _write(store, conn, row, index=index, author=author, reported=reported)
    except sa.exc.OperationalError as error:
        if wait or "locked" not in str(error.orig):
            raise
        raise WriterBusy from None
    finally:
        _WRITING.release()


class WriterBusy(Exception):
    """Another writer holds the project file (raised only to callers that would not wait)."""


def _write(
    store: Store,
    conn: sa.Connection,
    row: dict[str, Any],
    *,
    index: GridIndex,
    author: str,
    reported: pd.Timestamp | None,
) -> int | None:
    """:func:`_insert`'s transaction."""
    layer, unique, grids, srs = conn.exec_driver_sql(_LAYOUT).one()
    if not (layer and unique) or srs != 4326:
        return None
    row.update(_grid_of(conn, row, index) if grids else _NO_GRID)
    point = shapely.Point(row["lon"], row["lat"]) if row["located"] else None
    row["geom"] = gpkg.encode_geometries([point], srs_id=4326)[0]
    if conn.execute(_INSERT, row).rowcount != 1:
        return 0
    at = now_iso() if reported is None else pd.Timestamp(reported).isoformat()
    conn.execute(
        _EVENT,
        {
            "incident_id": row["incident_id"],
            "from_status": None,
            "to_status": "reported",
            "actor": author,
            "at": at,
            "note": "imported",
        },
    )
    store.log(conn, "incidents import", actor=author, added=1)
    if point is not None:
        _grow_extent(conn, row["lon"], row["lat"])
    return 1


_NO_GRID = {"grid_code": None, "community": None, "worker_id": None, "worker": None}


def _grid_of(conn: sa.Connection, row: dict[str, Any], index: GridIndex) -> dict[str, Any]:
    """The grid the locate index puts the case in, with that grid's community and worker from
    the ``grids`` layer (as the feed path's assignment reads them)."""
    if not row["located"] or row["fallback_point"]:
        return _NO_GRID
    x, y = from_wgs84(np.array([row["lon"]]), np.array([row["lat"]]), crs=index.crs)
    found = grids_at(index, x, y)[0]
    if found < 0:
        return _NO_GRID
    code = str(index.grid_codes[found])
    facts = conn.exec_driver_sql(
        "SELECT community, worker_id, worker FROM grids WHERE grid_code = ? LIMIT 1", (code,)
    ).first()
    community, worker_id, worker = facts if facts is not None else (None, None, None)
    return {"grid_code": code, "community": community, "worker_id": worker_id, "worker": worker}


def _grow_extent(conn: sa.Connection, lon: float, lat: float) -> None:
    """Widen the layer's recorded extent by the point (as a feed append does)."""
    conn.execute(
        sa.text(
            "UPDATE gpkg_contents SET min_x = min(coalesce(min_x, :x), :x), "
            "min_y = min(coalesce(min_y, :y), :y), max_x = max(coalesce(max_x, :x), :x), "
            "max_y = max(coalesce(max_y, :y), :y), "
            "last_change = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE table_name = :t"
        ),
        {"x": lon, "y": lat, "t": records.LAYER},
    )


#: the calendar deadlines are counted in (:func:`geo.incidents.workflow.deadline`'s default)
_CALENDAR = WorkCalendar()
_CLOCKS = tuple((_clock_offset(a).value, _clock_offset(b).value) for a, b in _CALENDAR.periods)


def case_deadline(reported: pd.Timestamp, time_limit: str) -> pd.Timestamp:
    """:func:`geo.incidents.workflow.deadline` of an unregistered case, walking the working
    periods from its day instead of laying out weeks of them (the same moment: the same
    periods, localised as pandas localises them, and the same rule where a need ends)."""
    value, unit = parse_time_limit(time_limit)
    if unit == "d" or _CALENDAR.holidays or _CALENDAR.workdays:
        return deadline(reported, None, time_limit)
    hours = value * _CALENDAR.hours_per_day if unit == "wd" else value
    need = pd.Timedelta(hours=hours).value if math.isfinite(hours) else -1
    start = reported.tz_convert("UTC")
    if need <= 0:
        return deadline(reported, None, time_limit)
    at = start.value
    day = start.tz_convert(_CALENDAR.tz).tz_localize(None).normalize()
    for _ in range(366):  # a year of days; longer limits take the vectorised path
        if day.day_of_week in _CALENDAR.weekdays:
            for begin_offset, end_offset in _CLOCKS:
                begin = (day + pd.Timedelta(begin_offset)).tz_localize(_CALENDAR.tz).value
                end = (day + pd.Timedelta(end_offset)).tz_localize(_CALENDAR.tz).value
                if end <= at:
                    continue  # over before the start
                need += max(at - begin, 0)
                if need <= end - begin:
                    return pd.Timestamp(begin + need, tz="UTC")
                need -= end - begin
                at = end
        day += pd.Timedelta(days=1)
    return deadline(reported, None, time_limit)
