"""One posted case stored without the feed machinery: the lean path of ``POST /incidents``.

Why: a feed import normalises, assigns and writes whole tables through pandas, which costs
about 40 ms however few its rows; a hotline pushes cases one by one, beside the locate load.
This path takes one case as plain values (precompiled patterns, the cached catalogue match,
the scalar deadline, the cached locate index, one ``INSERT ... ON CONFLICT DO NOTHING`` in one
transaction) and stores exactly the row the feed path stores for the same case
(tests/test_incident_intake.py compares every column). Where it cannot promise that (no
published index, a case without its own id, a time in another form than ISO 8601, a project
without the incidents layer yet) it answers None and the caller takes the feed path.

What does not change from case to case is read once per batch of cases (group commit,
:mod:`geo.incidents.batcher`), inside its transaction: the catalogue setting and the district's
box (:class:`Lookups`; a case posted meanwhile is read against the last batch's and read again
by its own batch where they changed), and the grids' community and worker, by the ``grids``
layer's index on grid_code (one query for the batch; the points are placed by the plan's
cached locate index, the rule ``/locate`` answers by).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import re
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from geo.crs import from_wgs84, to_wgs84
from geo.errors import InputError
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
from geo.storage.store import (
    Store,
    _index_exists,
    ensure_lookup_indexes,
    incident_events,
    now_iso,
    stored_time,
)

#: the time forms read here, which the feed reader reads to the same moment: ISO 8601 without
#: an offset (the mapping's zone), with ``Z`` or with a full ``+hh:mm``/``+hhmm`` offset
_LEAN_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
)
_INCIDENTS = sa.table(records.LAYER, sa.column("geom"), *map(sa.column, COLUMNS))
_GRIDS = sa.table(
    "grids", *map(sa.column, ("fid", "grid_code", "community", "worker_id", "worker"))
)
#: posts in one process queue here for the write lock, woken as soon as it is free: waiting in
#: SQLite's busy handler instead sleeps in growing steps (up to 100 ms) and made the p99 of ten
#: concurrent posters 750 ms where their p50 was 50 ms
_WRITING = threading.Lock()
#: one statement per SQL dialect, compiled once: the cases whose ids are not stored (the UNIQUE
#: index decides, whoever else writes meanwhile), answering the ids it added
_INSERTS = {
    name: insert(_INCIDENTS)
    .on_conflict_do_nothing(index_elements=["incident_id"])
    .returning(_INCIDENTS.c.incident_id)
    for name, insert in (("sqlite", sqlite_insert), ("postgresql", postgresql_insert))
}
_EVENT = sa.insert(incident_events)
_UNIQUE_INDEX = f"{records.LAYER}_incident_id_unique"


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


def district_bounds(
    store: Store, conn: sa.Connection | None = None
) -> tuple[float, float, float, float] | None:
    """:func:`geo.incidents.records.district_bounds` in two look-ups (its box cached per
    extent), inside ``conn`` when given."""
    with store.reading(conn) as c:
        extent = store.layer_extent("buildings", c)
        if extent is None:
            return None
        srs = store.layer_crs("buildings", c).srs
    return records.wgs84_box(srs, tuple(extent))


@dataclass(frozen=True)
class Lookups:
    """What a posted case is read against, from the project: the setting naming its own
    catalogue CSV (None: the national one) and the district's WGS84 box (None: no buildings)."""

    catalogue: str | None
    bounds: tuple[float, float, float, float] | None


def read_lookups(store: Store, conn: sa.Connection | None = None) -> Lookups:
    """The project's :class:`Lookups`, read in one connection (``conn`` when given)."""
    with store.reading(conn) as c:
        own = store.get_setting(records.CATALOGUE_SETTING, conn=c)
        return Lookups(catalogue=own, bounds=district_bounds(store, c))


#: the :class:`Lookups` each store's last batch read inside its transaction: cases posted
#: meanwhile are read against them, and their batch reads them again (see _checked_again)
_LOOKUPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _fresh_lookups(store: Store) -> Lookups:
    lookups = _LOOKUPS[store] = read_lookups(store)
    return lookups


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
    #: what it was read against (None: not checked again when stored)
    lookups: Lookups | None = None
    #: the posted values, its import and its time: to read it again against newer lookups
    inputs: tuple[dict[str, Any], CaseImport, CaseTime] | None = None


def store_prepared(store: Store, prepared: PreparedCase, *, wait: bool = True) -> dict | None:
    """Store a :class:`PreparedCase` (see :func:`add_posted_case`); without ``wait`` it may be
    tried again after :class:`WriterBusy`."""
    (outcome,) = store_prepared_cases(store, [prepared], wait=wait)
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


#: what storing one case of a group comes to: its summary, None (no lean path here), or the
#: error that case alone raised (:class:`WriterBusy` where it may be tried again)
Outcome = dict[str, Any] | None | BaseException


def store_prepared_cases(
    store: Store, cases: Sequence[PreparedCase], *, wait: bool = True
) -> list[Outcome]:
    """Store many posted cases in one transaction (group commit), each answered as
    :func:`store_prepared` answers it alone: a case whose id is stored already, or comes earlier
    in ``cases``, is ``already_present``. Where the group's transaction fails, every case is
    tried alone, so a failing case answers its own error and the others are stored.

    Raises
    ------
    WriterBusy
        Without ``wait``, when another writer holds the store (nothing was written).
    """
    if not cases:
        return []
    if not _WRITING.acquire(blocking=wait):
        raise WriterBusy
    try:
        try:
            return _transaction(store, cases, wait=wait)
        except WriterBusy:
            raise
        except Exception:
            _FIT.discard(store)
            if len(cases) == 1:
                raise
        return [_alone(store, case, wait=wait) for case in cases]
    finally:
        _WRITING.release()


def _alone(store: Store, case: PreparedCase, *, wait: bool) -> Outcome:
    """One case of a failed group in a transaction of its own: its answer or its error."""
    try:
        return _transaction(store, [case], wait=wait)[0]
    except Exception as error:  # handed to that case's caller, which raises it
        return error


def prepare_posted_case(
    store: Store,
    case: dict[str, Any],
    how: CaseImport,
    *,
    time: CaseTime,
    index: GridIndex | None,
) -> PreparedCase | None:
    """The first half of :func:`add_posted_case`: the case read, checked (refusals raised here)
    and its row made; None where the lean path does not apply.

    It is read against the lookups the store's last batch read (:data:`_LOOKUPS`; read here
    the first time), not three queries per case: its batch reads them again inside its
    transaction and reads the case again where they changed. A refusal is not taken on their
    word: the case is read again against lookups read now before it is refused.
    """
    mapping = how.mapping
    source_id = str(case.get(mapping.id_col or "")).strip() if mapping.id_col else ""
    if index is None or not source_id or case.get(mapping.id_col) is None:
        return None
    known = _LOOKUPS.get(store)
    try:
        return _prepare(case, how, time=time, index=index, lookups=known or _fresh_lookups(store))
    except InputError:
        if known is None:
            raise
    return _prepare(case, how, time=time, index=index, lookups=_fresh_lookups(store))


def _prepare(
    case: dict[str, Any], how: CaseImport, *, time: CaseTime, index: GridIndex, lookups: Lookups
) -> PreparedCase:
    """:func:`prepare_posted_case` against ``lookups``."""
    mapping = how.mapping
    source_id = str(case.get(mapping.id_col)).strip()
    key = records.catalogue_key_of(lookups.catalogue)
    raw_category = _value(case, mapping.category_col)
    code, known = _category(key, raw_category, tuple(sorted(mapping.category_map.items())))
    lon, lat, reason = _place(
        case.get(mapping.lon_col) if mapping.lon_col else None,
        case.get(mapping.lat_col) if mapping.lat_col else None,
        crs=mapping.crs,
        bounds=lookups.bounds,
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
    return PreparedCase(
        row, summary, index, how.author, time.moment, lookups=lookups, inputs=(case, how, time)
    )


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


def _transaction(store: Store, cases: Sequence[PreparedCase], *, wait: bool) -> list[Outcome]:
    """The cases' answers: each checked again against the project's lookups, then their rows,
    grids, creation events and log lines written in one transaction."""
    has_grids = _lean_layout(store)
    if has_grids is None:
        return [None] * len(cases)
    try:
        with store.transaction(wait=wait) as conn:
            return _store_group(store, conn, cases, has_grids=has_grids)
    except sa.exc.OperationalError as error:
        if wait or "locked" not in str(error.orig):
            raise
        raise WriterBusy from None


def _store_group(
    store: Store, conn: sa.Connection, cases: Sequence[PreparedCase], *, has_grids: bool
) -> list[Outcome]:
    """:func:`_transaction`'s work inside ``conn``: a case the lookups read now refuse answers
    its refusal, the others are stored (placed in their grids first, with the rule the feed
    path assigns its cases by) and answered."""
    outcomes: list[Outcome] = [None] * len(cases)
    ready = _checked_again(store, conn, cases, outcomes)
    if not ready:
        return outcomes
    group = [case for _, case in ready]
    rows = _rows(store, group)
    codes = _grid_codes(rows, [case.index for case in group]) if has_grids else {}
    if codes:
        _grid_facts(conn, store, rows, codes, group[-1].index)
    added = _write(store, conn, group, rows)
    for (at, case), new in zip(ready, added, strict=True):
        outcomes[at] = {**case.summary, "added": new, "updated": 0, "already_present": 1 - new}
    return outcomes


def _checked_again(
    store: Store, conn: sa.Connection, cases: Sequence[PreparedCase], outcomes: list[Outcome]
) -> list[tuple[int, PreparedCase]]:
    """The project's lookups read inside ``conn`` (kept for the cases posted next); each case
    read against others (a catalogue loaded, buildings imported since) read again. Returns
    the cases to store with their positions; a refusal goes to ``outcomes``."""
    current = _LOOKUPS[store] = read_lookups(store, conn)
    ready = []
    for at, case in enumerate(cases):
        if case.lookups is None or case.lookups == current or case.inputs is None:
            ready.append((at, case))
            continue
        posted, how, time = case.inputs
        try:
            ready.append((at, _prepare(posted, how, time=time, index=case.index, lookups=current)))
        except InputError as error:
            outcomes[at] = error
    return ready


class WriterBusy(Exception):
    """Another writer holds the project file (raised only to callers that would not wait)."""


def _rows(store: Store, cases: Sequence[PreparedCase]) -> list[dict[str, Any]]:
    """The cases' layer rows, not yet in a grid, geometry encoded for the store."""
    rows = [{**case.row, **_NO_GRID} for case in cases]
    points = [shapely.Point(r["lon"], r["lat"]) if r["located"] else None for r in rows]
    for row, geom in zip(rows, store.geometry_values(points, srs_id=4326), strict=True):
        row["geom"] = geom
    return rows


def _write(
    store: Store, conn: sa.Connection, cases: Sequence[PreparedCase], rows: list[dict[str, Any]]
) -> list[int]:
    """:func:`_transaction`'s statements: 1 for each case added, 0 for one already there (or
    earlier in ``cases``)."""
    first: dict[str, int] = {}
    for at, row in enumerate(rows):
        first.setdefault(row["incident_id"], at)
    inserted = set(
        conn.execute(_INSERTS[conn.dialect.name], [rows[at] for at in first.values()]).scalars()
    )
    added = [
        int(first[r["incident_id"]] == at and r["incident_id"] in inserted)
        for at, r in enumerate(rows)
    ]
    if inserted:
        _record_added(
            store, conn, [(c, r) for c, r, new in zip(cases, rows, added, strict=True) if new]
        )
    return added


#: stores whose layout the lean path has found fit (with grids): checked once, not per batch;
#: forgotten when a group fails, so the cases tried alone check it again
_FIT: weakref.WeakSet = weakref.WeakSet()


def _lean_layout(store: Store) -> bool | None:
    """Whether the store has the ``grids`` layer, None where the lean path cannot write: no
    ``incidents`` layer yet, no UNIQUE index on its ids, or a layer not in WGS84."""
    if store in _FIT:
        return True
    with store.reading() as conn:
        if not store.has_layer(records.LAYER, conn) or not _index_exists(conn, _UNIQUE_INDEX):
            return None
        if store.layer_crs(records.LAYER, conn).to_epsg() != 4326:
            return None
        has_grids = store.has_layer("grids", conn)
    if has_grids:
        _FIT.add(store)
    return has_grids


def _record_added(
    store: Store, conn: sa.Connection, added: list[tuple[PreparedCase, dict[str, Any]]]
) -> None:
    """The added cases' creation events, one log line per author, the layer's extent grown."""
    events = [
        {
            "incident_id": row["incident_id"],
            "from_status": None,
            "to_status": "reported",
            "actor": case.author,
            "at": now_iso() if case.reported is None else pd.Timestamp(case.reported).isoformat(),
            "note": "imported",
        }
        for case, row in added
    ]
    conn.execute(_EVENT, events)
    authors: dict[str, int] = {}
    for case, _ in added:
        authors[case.author] = authors.get(case.author, 0) + 1
    for author, count in authors.items():
        store.log(conn, "incidents import", actor=author, added=count)
    located = [(row["lon"], row["lat"]) for _, row in added if row["located"]]
    if located:
        lons, lats = zip(*located, strict=True)
        store.widen_extent(conn, records.LAYER, (min(lons), min(lats), max(lons), max(lats)))


_NO_GRID = {"grid_code": None, "community": None, "worker_id": None, "worker": None}


def _grid_codes(rows: list[dict[str, Any]], indexes: list[GridIndex]) -> dict[int, str]:
    """The grid code its locate index gives each located row (by position; rows in no grid
    left out): one look-up per index for all its rows, the rule of :func:`grids_at`."""
    placed: dict[int, list[int]] = {}  # id of an index -> positions of its rows
    for at, (row, index) in enumerate(zip(rows, indexes, strict=True)):
        if row["located"] and not row["fallback_point"]:
            placed.setdefault(id(index), []).append(at)
    codes: dict[int, str] = {}
    for positions in placed.values():
        index = indexes[positions[0]]
        lons = np.array([rows[at]["lon"] for at in positions], dtype=float)
        lats = np.array([rows[at]["lat"] for at in positions], dtype=float)
        found = grids_at(index, *from_wgs84(lons, lats, crs=index.crs))
        for at, grid in zip(positions, found.tolist(), strict=True):
            if grid >= 0:
                codes[at] = str(index.grid_codes[grid])
    return codes


#: the locate index of each store for which the lookup indexes were last made sure of: the
#: ``grids`` layer is written anew when a plan is published, without its index on grid_code
_INDEXED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _grid_facts(
    conn: sa.Connection,
    store: Store,
    rows: list[dict[str, Any]],
    codes: dict[int, str],
    index: GridIndex,
) -> None:
    """Give the rows at ``codes`` their grid with that grid's community and worker from the
    ``grids`` layer (its first row of the code, as the feed path's assignment reads them), by
    the layer's index on grid_code, made inside ``conn`` once per plan's locate index."""
    if _INDEXED.get(store) is not index:
        ensure_lookup_indexes(conn)
        _INDEXED[store] = index
    facts: dict[str, tuple] = {}
    query = (
        sa.select(_GRIDS.c.grid_code, _GRIDS.c.community, _GRIDS.c.worker_id, _GRIDS.c.worker)
        .where(_GRIDS.c.grid_code.in_(sorted(set(codes.values()))))
        .order_by(_GRIDS.c.fid)
    )
    for code, *grid in conn.execute(query):
        facts.setdefault(code, tuple(grid))
    for at, code in codes.items():
        community, worker_id, worker = facts.get(code, (None, None, None))
        rows[at].update(grid_code=code, community=community, worker_id=worker_id, worker=worker)


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
