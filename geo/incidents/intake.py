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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from geo import gpkg
from geo.crs import from_wgs84, to_wgs84
from geo.incidents import store as feed_store
from geo.incidents.assign import grids_at
from geo.incidents.catalogue import load_legacy_map, match_category
from geo.incidents.feeds import (
    _OUT_OF_RANGE,
    EARLIEST_TIME,
    LATEST_TIME,
    IncidentMapping,
    describe_mapping,
)
from geo.incidents.workflow import deadline
from geo.locate import GridIndex
from geo.store import Store, incident_events, now_iso

#: the time forms read here, which the feed reader reads to the same moment: ISO 8601 without
#: an offset (the mapping's zone), with ``Z`` or with a full ``+hh:mm``/``+hhmm`` offset
_LEAN_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
)
_INCIDENTS = sa.table(feed_store.LAYER, sa.column("geom"), *map(sa.column, feed_store.COLUMNS))
_NEEDED = ("grids", "incidents", "incidents_incident_id_unique")


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
    table = feed_store._catalogue_read(*key)
    found = match_category(
        pd.Series([value], dtype=object), table, legacy=_legacy(), extra=dict(extra)
    )
    return str(found["code"].iloc[0]), bool(found["known"].iloc[0])


@functools.lru_cache(maxsize=8)
def _names(key: tuple) -> dict[str, tuple[str, str, str]]:
    """code -> (name_zh, class_code as the feed path stores it, time limit)."""
    table = feed_store._catalogue_read(*key)
    return {
        code: (name, str(klass), limit)
        for code, name, klass, limit in zip(
            table["code"], table["name_zh"], table["class_code"], table["time_limit"], strict=True
        )
    }


def _catalogue_key(store: Store) -> tuple:
    """What :func:`geo.incidents.store.catalogue` reads: the project's own CSV (by version) or the
    national one."""
    own = store.get_setting("catalogue_csv")
    if own:
        path = Path(own)
        if path.exists():
            stat = path.stat()
            return (str(path), stat.st_mtime_ns, stat.st_size)
    return (None, 0, 0)


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
    *,
    source: str,
    mapping: IncidentMapping,
    time: CaseTime,
    index: GridIndex | None,
    author: str = "",
    allow_unlocated: bool = False,
) -> dict[str, Any] | None:
    """Store one posted case (raw values under ``mapping``'s columns, its time read by
    :func:`read_time`) as :func:`geo.incidents.store.import_records` stores a feed of it, and
    answer the same summary; None where this path cannot promise that (see the module)."""
    source_id = str(case.get(mapping.id_col or "")).strip() if mapping.id_col else ""
    if index is None or not source_id or case.get(mapping.id_col) is None:
        return None
    key = _catalogue_key(store)
    raw_category = _text(case.get(mapping.category_col)) if mapping.category_col else None
    code, known = _category(key, raw_category, tuple(sorted(mapping.category_map.items())))
    lon, lat, reason = _place(
        case.get(mapping.lon_col) if mapping.lon_col else None,
        case.get(mapping.lat_col) if mapping.lat_col else None,
        crs=mapping.crs,
        bounds=feed_store._district_bounds(store),
    )
    summary = {
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
    if not allow_unlocated:
        feed_store.refuse_unplaceable(summary)
    incident_id = feed_store.check_case_id(f"{source}:{source_id}")
    name, class_code, limit = _names(key)[code]
    row = {
        "incident_id": incident_id,
        "source": source,
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
        "deadline": _stored(deadline(time.moment, None, limit)) if time.moment else None,
        "description": _text(case.get(mapping.description_col))
        if mapping.description_col
        else None,
        "address": _text(case.get(mapping.address_col)) if mapping.address_col else None,
        "lon": lon,
        "lat": lat,
        "located": reason is None,
        "unlocated_reason": reason,
        "fallback_point": False,
        "imported_at": now_iso(),
    }
    added = _insert(store, row, index=index, author=author, reported=time.moment)
    if added is None:
        return None
    return {**summary, "added": added, "updated": 0, "already_present": 1 - added}


def _stored(moment: pd.Timestamp | None) -> str | None:
    """A time as the project file stores it (UTC, milliseconds, ``Z``)."""
    if moment is None or pd.isna(moment):
        return None
    return moment.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _insert(
    store: Store,
    row: dict[str, Any],
    *,
    index: GridIndex,
    author: str,
    reported: pd.Timestamp | None,
) -> int | None:
    """Insert the case unless its id is stored (the UNIQUE index decides), with its creation
    event and log line, in one transaction; 1 added, 0 already there, None: no lean path here."""
    with store.transaction() as conn:
        present = {
            name
            for (name,) in conn.execute(
                sa.text("SELECT name FROM sqlite_master WHERE name IN :names").bindparams(
                    sa.bindparam("names", expanding=True)
                ),
                {"names": list(_NEEDED)},
            )
        }
        srs = conn.exec_driver_sql(
            "SELECT srs_id FROM gpkg_geometry_columns WHERE table_name = ?", (feed_store.LAYER,)
        ).scalar()
        if (
            "incidents" not in present
            or "incidents_incident_id_unique" not in present
            or srs != 4326
        ):
            return None
        row.update(_grid_of(conn, row, index) if "grids" in present else _NO_GRID)
        point = shapely.Point(row["lon"], row["lat"]) if row["located"] else None
        row["geom"] = gpkg.encode_geometries([point], srs_id=4326)[0]
        statement = (
            sqlite_insert(_INCIDENTS)
            .values(row)
            .on_conflict_do_nothing(index_elements=["incident_id"])
        )
        if conn.execute(statement).rowcount != 1:
            return 0
        at = now_iso() if reported is None else pd.Timestamp(reported).isoformat()
        conn.execute(
            sa.insert(incident_events).values(
                incident_id=row["incident_id"],
                from_status=None,
                to_status="reported",
                actor=author,
                at=at,
                note="imported",
            )
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
        {"x": lon, "y": lat, "t": feed_store.LAYER},
    )
