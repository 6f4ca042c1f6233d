"""Incidents in the project file: import (idempotent), assignment, workflow steps, statistics.

The ``incidents`` layer holds one WGS84 point per case (no geometry when unlocated) with its
category, status, times, description (untrusted text, stored as given) and its grid, community
and worker from the published plan; ``incident_events`` holds every workflow step.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import sqlalchemy as sa
from sqlalchemy import Connection

from geo.crs import parse_crs_name, to_wgs84
from geo.errors import Conflict, InputError, NotFound
from geo.incidents.assign import assign_to_grids, assign_with_index
from geo.incidents.catalogue import load_catalogue
from geo.incidents.feeds import (
    FEED_COLUMNS,
    FeedError,
    IncidentMapping,
    describe_mapping,
    normalise_records,
    read_feed_records,
    recognise_columns,
    summarise_import,
)
from geo.incidents.shift import refuse_shifted
from geo.incidents.stats import incident_stats
from geo.incidents.workflow import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    STATUSES,
    deadlines,
    is_overdue,
    transition,
)
from geo.locate import kept as locate_index
from geo.locate.engine import GridIndex
from geo.storage.store import (
    Store,
    ensure_lookup_indexes,
    ensure_unique_keys,
    incident_events,
    now_iso,
    stored_time,
)

LAYER = "incidents"
#: columns of the incidents layer, in order
COLUMNS = (
    "incident_id",
    "source",
    "source_id",
    "category_code",
    "category_name",
    "class_code",
    "category_known",
    "category_raw",
    "status",
    "reported_at",
    "registered_at",
    "closed_at",
    "deadline",
    "description",
    "address",
    "lon",
    "lat",
    "located",
    "unlocated_reason",
    "fallback_point",
    "grid_code",
    "community",
    "worker_id",
    "worker",
    "imported_at",
)
TIMES = ("reported_at", "registered_at", "closed_at", "deadline")
#: the longest case id (``source:id``): refused on the way in, so every stored case can be addressed
#: again (``GET``/``PATCH /incidents/{id}``, OGC items, ``gridmap incidents update``)
MAX_ID_LENGTH = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_case_id(incident_id: str) -> str:
    """The id if it follows the one rule for case ids: 1 to 200 characters, no control characters.

    Slashes are allowed: 数字城管 numbers cases ``2026/08/0001``.
    """
    if not incident_id or len(incident_id) > MAX_ID_LENGTH or _CONTROL.search(incident_id):
        shown = incident_id[:40] + ("…" if len(incident_id) > 40 else "")
        raise InputError(
            f"case id {shown!r} ({len(incident_id)} characters) is not a valid id: "
            f"ids (source:id) have 1 to {MAX_ID_LENGTH} characters and no control characters",
            zh=f"案件编号 {shown} 无效：编号（来源:编号）须为 1 到 {MAX_ID_LENGTH} 个字符，且不含控制字符",
        )
    return incident_id


def check_case_ids(ids: pd.Series) -> None:
    """:func:`check_case_id` for every id of a feed: one bad id refuses the whole feed."""
    bad = ids[(ids.str.len() > MAX_ID_LENGTH) | ids.str.contains(_CONTROL)]
    if len(bad):
        check_case_id(str(bad.iloc[0]))


def catalogue(store: Store) -> pd.DataFrame:
    """The project's category catalogue: its own (``gridmap incidents categories load``) or the national one."""
    own = store.get_setting("catalogue_csv")
    if own:
        path = Path(own)
        if path.exists():
            stat = path.stat()
            return _catalogue_read(str(path), stat.st_mtime_ns, stat.st_size).copy()
    return _catalogue_read(None, 0, 0).copy()


@functools.lru_cache(maxsize=8)
def _catalogue_read(path: str | None, mtime_ns: int, size: int) -> pd.DataFrame:
    """A catalogue CSV read once per version of the file (every posted case needs it)."""
    return load_catalogue(path) if path is not None else load_catalogue()


def load_project_catalogue(store: Store, path: str | Path, *, author: str = "") -> int:
    """Check a city's catalogue CSV and make it the project's (its path is recorded)."""
    table = load_catalogue(path)
    with store.transaction() as conn:
        store.set_setting(conn, "catalogue_csv", str(Path(path).resolve()))
        store.log(conn, "catalogue load", actor=author, path=str(path), categories=len(table))
    return len(table)


def import_incidents(
    store: Store,
    path: str | Path,
    *,
    mapping: IncidentMapping,
    source: str,
    author: str = "",
    allow_unlocated: bool = False,
    check_crs: bool = True,
    update: bool = False,
) -> dict[str, Any]:
    """Read a feed file and add its new cases; re-importing the same file changes nothing.

    Columns the mapping leaves unnamed are taken from the feed's usual headers
    (:func:`geo.incidents.feeds.recognise_columns`); ``summary["mapping"]`` says which were used.
    Returns the feed's counts (read, located, unlocated, unknown_category, fallback_point, ...)
    plus ``added``, ``updated`` and ``already_present``. Refused, with nothing stored: a feed in
    which no case has usable coordinates (:func:`refuse_unplaceable`) unless ``allow_unlocated``,
    and with ``check_crs`` one read as WGS84 whose points look like GCJ-02 or BD-09
    (:func:`geo.incidents.shift.refuse_shifted`). With ``update``, cases already stored whose
    content changed (place, category, time, text) take the feed's values; their workflow stays.
    """
    return import_records(
        store,
        read_feed_records(path),
        mapping=mapping,
        source=source,
        author=author,
        allow_unlocated=allow_unlocated,
        check_crs=check_crs,
        update=update,
    )


def import_records(
    store: Store,
    records: pd.DataFrame,
    *,
    mapping: IncidentMapping,
    source: str,
    author: str = "",
    allow_unlocated: bool = False,
    check_crs: bool = True,
    update: bool = False,
    index: GridIndex | None = None,
) -> dict[str, Any]:
    """:func:`import_incidents` for records already in memory (cases pushed to the API).

    ``index``: the published plan's locate index when the caller holds it (the service caches
    it), else it is loaded from the project file (:func:`geo.locate.kept.grid_index`).
    """
    mapping = recognise_columns(records, mapping)
    cat = catalogue(store)
    feed = normalise_records(
        records, mapping=mapping, source=source, catalogue=cat, bounds=_district_bounds(store)
    )
    summary = {**summarise_import(feed), "mapping": describe_mapping(mapping)}
    if index is None:
        index = _published_index(store)
    if check_crs:
        areas = (index.grids.geoms, index.crs) if index is not None else None
        refuse_shifted(store, records, mapping, areas=areas)
    if not allow_unlocated:
        refuse_unplaceable(summary)
    added, updated = store_cases(
        store, feed, catalogue_table=cat, author=author, update=update, index=index
    )
    return {
        **summary,
        "added": added,
        "updated": updated,
        "already_present": int(len(feed) - added - updated - feed["duplicate"].sum()),
    }


def refuse_unplaceable(summary: dict[str, Any]) -> None:
    """Refuse a feed in which no case has usable coordinates: its mapping is wrong, or it is not
    this district's, and storing it would only add cases no grid or worker ever sees."""
    if not summary["read"] or summary["located"]:
        return
    reasons = ", ".join(f"{k}: {v}" for k, v in summary["unlocated_reasons"].items())
    times = summary["bad_time"]
    when = f"; {times} without a readable time" if times else ""
    read_with = f"; columns read: {summary['mapping']}" if summary.get("mapping") else ""
    raise FeedError(
        f"none of the {summary['read']} cases has usable coordinates ({reasons}){when}; "
        f"nothing was stored{read_with}",
        hint="check the coordinate columns and --crs, or store them unlocated with "
        "--allow-unlocated (API: allow_unlocated=true)",
        zh=f"{summary['read']} 条案件均无可用坐标（{reasons}），未导入任何案件；"
        "请检查坐标列和坐标系，或用 --allow-unlocated 导入为未定位案件",
    )


def add_cases(
    store: Store,
    feed: pd.DataFrame,
    *,
    catalogue_table: pd.DataFrame | None = None,
    author: str = "",
) -> int:
    """Store normalised feed rows (:data:`FEED_COLUMNS`) not stored yet; return how many were added."""
    return store_cases(store, feed, catalogue_table=catalogue_table, author=author)[0]


def store_cases(
    store: Store,
    feed: pd.DataFrame,
    *,
    catalogue_table: pd.DataFrame | None = None,
    author: str = "",
    update: bool = False,
    index: GridIndex | None = None,
) -> tuple[int, int]:
    """Add the feed's new cases and, with ``update``, rewrite stored ones whose content changed
    (:func:`_replace_changed`), in one transaction; returns (added, updated). Cases are assigned
    by ``index``, the published plan's locate index (loaded when not given)."""
    missing = [c for c in FEED_COLUMNS if c not in feed.columns]
    if missing:
        raise InputError(f"incident rows lack the columns {', '.join(missing)}")
    cat = catalogue_table if catalogue_table is not None else catalogue(store)
    feed = feed[~feed["duplicate"].astype(bool)].copy()
    feed["incident_id"] = feed["source"].astype(str) + ":" + feed["source_id"].astype(str)
    check_case_ids(feed["incident_id"])
    # a first look spares the assignment of cases already stored; the decision is taken below
    known = feed["incident_id"].isin(stored_ids(store, feed["incident_id"]))
    fresh, again = feed[~known], feed[known] if update else feed.iloc[:0]
    if fresh.empty and again.empty:
        return 0, 0
    if index is None:
        index = _published_index(store)
    cases = _cases(store, fresh, cat, index=index) if not fresh.empty else None
    revised = _cases(store, again, cat, index=index) if not again.empty else None
    with store.transaction() as conn:
        added = _append_new(store, conn, cases, author=author) if cases is not None else 0
        updated = (
            _replace_changed(store, conn, revised, author=author) if revised is not None else 0
        )
    return added, updated


def _append_new(store: Store, conn: Connection, cases: gpd.GeoDataFrame, *, author: str) -> int:
    # inside the write lock: an API post or import that committed meanwhile is seen here, and
    # the UNIQUE index on incident_id refuses any copy that would still slip through
    cases = cases[~cases["incident_id"].isin(stored_ids(store, cases["incident_id"], conn=conn))]
    if cases.empty:
        return 0
    store.write_layer(conn, LAYER, cases, mode="append", description="12345 / 数字城管 cases")
    ensure_unique_keys(conn)
    ensure_lookup_indexes(conn)
    conn.execute(
        sa.insert(incident_events),
        [
            {
                "incident_id": i,
                "from_status": None,
                "to_status": "reported",
                "actor": author,
                "at": t,
                "note": "imported",
            }
            for i, t in zip(cases["incident_id"], _iso_times(cases["reported_at"]), strict=True)
        ],
    )
    store.log(conn, "incidents import", actor=author, added=len(cases))
    return len(cases)


#: what a re-import with ``--update`` may change: the feed's own facts, not the workflow
CONTENT = (
    "category_code",
    "category_raw",
    "reported_at",
    "description",
    "address",
    "lon",
    "lat",
    "located",
    "unlocated_reason",
    "fallback_point",
)
#: what a case keeps when its content is updated or relocated: the case loop and its times
WORKFLOW = ("status", "registered_at", "closed_at", "deadline", "imported_at")


def _replace_changed(
    store: Store, conn: Connection, revised: gpd.GeoDataFrame, *, author: str
) -> int:
    """Rewrite the stored cases whose :data:`CONTENT` differs from ``revised`` (their grid and
    worker follow the new place; :data:`WORKFLOW` stays); logged. Returns how many changed."""
    stored = store.read_layer(
        LAYER, where={"incident_id": revised["incident_id"].tolist()}, conn=conn
    )
    stored = stored.set_index("incident_id", drop=False)
    revised = revised.set_index("incident_id", drop=False)
    revised = revised[revised.index.isin(stored.index)]
    old = stored.loc[revised.index]
    changed = (_comparable(old) != _comparable(revised)).any(axis=1)
    if not changed.any():
        return 0
    new = revised[changed].copy()
    for column in WORKFLOW:
        new[column] = old.loc[changed, column]
    _rewrite(store, conn, new)
    ids = new.index.tolist()
    store.log(conn, "incidents update", actor=author, updated=len(ids), ids=ids[:500])
    return len(ids)


def _comparable(cases: pd.DataFrame) -> pd.DataFrame:
    """The :data:`CONTENT` of cases as text, so that stored and fresh rows compare equal."""
    out = pd.DataFrame(index=cases.index)
    for column in CONTENT:
        values = cases[column]
        if column in ("lon", "lat"):
            values = pd.to_numeric(values, errors="coerce").round(7)
        elif column == "reported_at":
            values = pd.to_datetime(values, utc=True, format="ISO8601")
        elif column in ("located", "fallback_point"):
            values = values.fillna(False).astype(bool)
        out[column] = ["" if pd.isna(v) else str(v) for v in values]
    return out


def _rewrite(store: Store, conn: Connection, cases: gpd.GeoDataFrame) -> None:
    """Replace stored cases by these rows (same ids; a point moves, so the row is written anew)."""
    conn.exec_driver_sql(
        f'DELETE FROM "{LAYER}" WHERE incident_id = ?', [(i,) for i in cases["incident_id"]]
    )
    frame = gpd.GeoDataFrame(
        cases[list(COLUMNS)].reset_index(drop=True), geometry=list(cases.geometry), crs=4326
    )
    store.write_layer(conn, LAYER, frame, mode="append", description="12345 / 数字城管 cases")


def relocate_cases(
    store: Store, *, crs: str, source: str | None = None, author: str = ""
) -> dict[str, int]:
    """Read the stored coordinates of located cases (of ``source``, or all) as ``crs`` instead of
    WGS84: for a feed imported without ``--crs gcj02``. Each case moves to its true place and its
    grid, community and worker follow; a point that lands outside the district becomes unlocated.
    One transaction, logged; relocating the same cases a second time is refused (it would move
    them twice). Cases stored without coordinates cannot move: re-import their feed with
    ``--crs`` and ``--update``.
    """
    if parse_crs_name(crs) == "wgs84":
        raise InputError(
            "relocate needs the coordinates' real system (--crs gcj02 or bd09)",
            zh="请用 --crs 指明坐标的实际坐标系（如 gcj02）",
        )
    scope = {"source": source} if source else None
    with store.transaction() as conn:
        _refuse_second_relocation(store, conn, source)
        cases = (
            store.read_layer(LAYER, where=scope, conn=conn)
            if store.has_layer(LAYER, conn)
            else None
        )
        if cases is None or cases.empty:
            raise NotFound(
                f"no cases{f' of source {source!r}' if source else ''} to relocate",
                zh="没有可重新定位的案件",
            )
        located = cases[cases["located"].fillna(False).astype(bool)].copy()
        moved = _moved_cases(store, located, crs=crs)
        if not moved.empty:
            _rewrite(store, conn, moved)
        outside = int((~moved["located"].astype(bool)).sum()) if not moved.empty else 0
        counts = {
            "relocated": len(moved),
            "now_outside": outside,
            "without_coordinates": len(cases) - len(located),
        }
        store.log(conn, "incidents relocate", actor=author, crs=str(crs), source=source, **counts)
    return counts


def _refuse_second_relocation(store: Store, conn: Connection, source: str | None) -> None:
    log = store.read_table("audit_log", where={"action": "incidents relocate"}, conn=conn)
    for details in log["details"] if not log.empty else []:
        earlier = json.loads(details).get("source")
        if earlier is None or source is None or earlier == source:
            raise Conflict(
                f"the cases{f' of source {source!r}' if source else ''} were relocated before; "
                "relocating again would move them twice",
                zh="这些案件已重新定位过，再次定位会重复偏移",
            )


def _moved_cases(store: Store, located: gpd.GeoDataFrame, *, crs: str) -> gpd.GeoDataFrame:
    """The located cases with their coordinates read as ``crs``, checked against the district
    and assigned to the grids again."""
    if located.empty:
        return located
    lon, lat = to_wgs84(located["lon"].to_numpy(float), located["lat"].to_numpy(float), crs=crs)
    located["lon"], located["lat"] = lon, lat
    bounds = _district_bounds(store)
    if bounds is not None:
        west, south, east, north = bounds
        outside = ~((lon >= west) & (lon <= east) & (lat >= south) & (lat <= north))
        located.loc[outside, "located"] = False
        located.loc[outside, "unlocated_reason"] = "outside the district"
        located.loc[outside, ["lon", "lat"]] = np.nan
    assigned = _assignment(store, located)
    for column in ("grid_code", "community", "worker_id", "worker"):
        located[column] = assigned[column]
    inside = located["located"].astype(bool).to_numpy()
    points = gpd.points_from_xy(located["lon"], located["lat"])
    return located.set_geometry(
        list(np.where(inside, np.asarray(points, dtype=object), None)), crs=4326
    )


def list_ids(store: Store, *, conn: Connection | None = None) -> list[str]:
    """Every stored case id (read inside ``conn`` when given)."""
    with store.reading(conn) as c:
        if not store.has_layer(LAYER, c):
            return []
        return [row[0] for row in c.exec_driver_sql(f'SELECT incident_id FROM "{LAYER}"')]


def stored_ids(store: Store, ids: pd.Series, *, conn: Connection | None = None) -> set[str]:
    """Which of ``ids`` are stored already (read inside ``conn`` when given): looked up by the
    unique index on ``incident_id``, so a post costs the same however many cases are stored."""
    wanted = list(dict.fromkeys(ids.astype(str)))
    found: set[str] = set()
    with store.reading(conn) as c:
        if not wanted or not store.has_layer(LAYER, c):
            return found
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = c.exec_driver_sql(
                f'SELECT incident_id FROM "{LAYER}" WHERE incident_id IN ({marks})', tuple(chunk)
            )
            found.update(row[0] for row in rows)
    return found


def _cases(
    store: Store, feed: pd.DataFrame, cat: pd.DataFrame, *, index: GridIndex | None = None
) -> gpd.GeoDataFrame:
    names = cat.set_index("code")
    cases = pd.DataFrame({c: feed[c] for c in FEED_COLUMNS if c in feed.columns})
    cases.insert(0, "incident_id", feed["incident_id"])
    cases["category_name"] = feed["category_code"].map(names["name_zh"])
    cases["class_code"] = feed["category_code"].map(names["class_code"]).astype(str)
    cases["status"] = "reported"
    cases["registered_at"] = pd.NaT
    cases["closed_at"] = pd.NaT
    for column in ("registered_at", "closed_at"):
        cases[column] = pd.to_datetime(cases[column], utc=True)
    cases["reported_at"] = pd.to_datetime(cases["reported_at"], utc=True)
    has_time = cases["reported_at"].notna()
    cases["deadline"] = pd.Series(pd.NaT, index=cases.index, dtype="datetime64[ns, UTC]")
    if has_time.any():
        cases.loc[has_time, "deadline"] = deadlines(cases[has_time], cat)
    assigned = _assignment(store, cases, index=index)
    for column in ("grid_code", "community", "worker_id", "worker"):
        cases[column] = assigned[column]
    cases["imported_at"] = now_iso()
    for column in (
        "description",
        "address",
        "category_raw",
        "unlocated_reason",
        "grid_code",
        "community",
        "worker_id",
        "worker",
    ):
        cases[column] = cases[column].astype(object).where(cases[column].notna(), None)
    for column in ("located", "fallback_point", "category_known"):
        cases[column] = cases[column].astype("boolean")
    located = cases["located"].fillna(False).to_numpy(bool)
    geometry = gpd.points_from_xy(cases["lon"], cases["lat"])
    geometry = np.where(located, np.asarray(geometry, dtype=object), None)
    return gpd.GeoDataFrame(cases[list(COLUMNS)], geometry=list(geometry), crs=4326)


def _assignment(
    store: Store, cases: pd.DataFrame, *, index: GridIndex | None = None
) -> pd.DataFrame:
    """Grid, community and worker of each case from the published grids (None without).

    The grid is the one the published plan's locate index gives (``index``, or the one kept in
    the project file), so a case lands where ``/locate`` says its point lies; community, worker
    id and name are that grid's row of the ``grids`` layer.
    """
    columns = ["grid_code", "community", "worker_id", "worker"]
    empty = pd.DataFrame(None, index=cases.index, columns=columns, dtype=object)
    if not store.has_layer("grids"):
        return empty
    if index is None:
        index = _published_index(store)
    if index is None:  # grids without a published plan (an older project): the sjoin
        grids = store.read_layer("grids", columns=columns)
        if grids.empty:
            return empty
        found = assign_to_grids(cases, grids)[["grid_code"]]
    else:
        found = assign_with_index(cases, index)[["grid_code"]]
    codes = found["grid_code"].dropna().unique().tolist()
    rows: list = []
    with store.reading() as conn:
        for start in range(0, len(codes), 500):  # only the grids the cases landed in
            chunk = codes[start : start + 500]
            rows += conn.exec_driver_sql(
                f"SELECT {', '.join(columns)} FROM grids "
                f"WHERE grid_code IN ({', '.join('?' * len(chunk))})",
                tuple(chunk),
            ).fetchall()
    facts = pd.DataFrame([tuple(row) for row in rows], columns=columns).set_index("grid_code")
    for column in columns[1:]:
        found[column] = found["grid_code"].map(facts[column])
    return found.astype(object).where(found.notna(), None)


def _published_index(store: Store) -> GridIndex | None:
    """The published plan's locate index as kept in the project file (built when it is not kept
    for this plan revision), None without a published plan. It never writes: it may run inside
    the caller's transaction (relocate), where keeping the index would wait for the caller."""
    key = locate_index._plan_key(store, None)
    if key is None or not key.published:
        return None
    kept = locate_index._kept(store, key, cells=False)
    return kept if kept is not None else locate_index.build_index(store, key.plan_id)


def reassign_open_cases(store: Store, conn: Any, *, actor: str = "") -> int:
    """After a plan is published: give open cases the grid and worker of the new grids, logged."""
    if not store.has_layer(LAYER, conn):
        return 0
    cases = store.read_layer(LAYER, conn=conn)
    open_cases = cases[
        cases["status"].isin(OPEN_STATUSES) & cases["located"].fillna(False).astype(bool)
    ]
    if open_cases.empty:
        return 0
    grids = store.read_layer(
        "grids", columns=["grid_code", "community", "worker_id", "worker"], conn=conn
    )
    found = assign_to_grids(open_cases, grids.assign(worker=grids["worker_id"])).rename(
        columns={"worker": "worker_id"}
    )
    found["worker"] = found["grid_code"].map(grids.set_index("grid_code")["worker"])
    before = open_cases[["grid_code", "worker_id"]].astype(object)
    changed = (before["grid_code"].astype(str) != found["grid_code"].astype(str)) | (
        before["worker_id"].astype(str) != found["worker_id"].astype(str)
    )
    if not changed.any():
        return 0
    update = found[changed].astype(object).where(found[changed].notna(), None)
    update["incident_id"] = open_cases.loc[changed, "incident_id"]
    store.update_rows(
        conn,
        LAYER,
        update[["grid_code", "community", "worker_id", "worker", "incident_id"]],
        key=["incident_id"],
    )
    moves = [
        {"incident_id": i, "from": b, "to": a}
        for i, b, a in zip(
            update["incident_id"],
            before.loc[changed, "grid_code"],
            update["grid_code"],
            strict=True,
        )
    ]
    store.log(conn, "incidents reassigned", actor=actor, count=len(moves), moves=moves[:500])
    return len(moves)


def get_incident(store: Store, incident_id: str) -> dict[str, Any]:
    """One case with its events and whether it is overdue now."""
    check_case_id(incident_id)
    if not store.has_layer(LAYER):
        raise NotFound(f"no incident {incident_id!r}", zh=f"没有案件 {incident_id}")
    found = store.read_layer(LAYER, where={"incident_id": incident_id})
    if found.empty:
        raise NotFound(f"no incident {incident_id!r}", zh=f"没有案件 {incident_id}")
    record = found.drop(columns="geometry").iloc[0].to_dict()
    record["overdue"] = bool(is_overdue(found, now=pd.Timestamp.now("UTC")).iloc[0])
    record["events"] = store.read_table(
        incident_events, where={"incident_id": incident_id}
    ).to_dict("records")
    return record


def update_incident(
    store: Store,
    incident_id: str,
    *,
    status: str,
    actor: str = "",
    note: str = "",
    at: pd.Timestamp | None = None,
) -> dict[str, Any]:
    """One step of the case loop (上报→立案→派遣→处置→核查→结案, 退回); illegal steps are refused.

    ``at`` records a step taken earlier (from another system's log); it defaults to now and may
    be neither in the future nor before the case's previous step.
    """
    check_case_id(incident_id)
    step = pd.DataFrame(
        [{"incident_id": incident_id, "status": status, "actor": actor, "note": note, "at": at}]
    )
    advance_cases(store, step)
    return get_incident(store, incident_id)


def advance_cases(store: Store, steps: pd.DataFrame) -> int:
    """Apply many workflow steps (``incident_id``, ``status``, ``actor``, ``note``, ``at``) at once.

    Steps are applied per case in the order given, each checked against the case loop; one
    illegal step refuses the whole batch, which is one transaction. Returns the steps applied.
    """
    unknown = sorted(set(steps["status"]) - set(STATUSES))
    if unknown:
        raise InputError(
            f"unknown status {', '.join(unknown)}; statuses: {', '.join(STATUSES)}",
            zh=f"未知状态 {', '.join(unknown)}",
        )
    now = pd.Timestamp.now("UTC")
    with store.transaction() as conn:
        ids = list(dict.fromkeys(steps["incident_id"]))
        found = (
            store.read_layer(LAYER, where={"incident_id": ids}, conn=conn)
            if store.has_layer(LAYER, conn)
            else None
        )
        known = set() if found is None else set(found["incident_id"])
        missing = [i for i in ids if i not in known]
        if missing:
            raise NotFound(f"no incident {missing[0]!r}", zh=f"没有案件 {missing[0]}")
        cases_by_id = found.set_index("incident_id")
        last_event = _last_event_times(conn, ids)
        state = {i: cases_by_id.loc[i].to_dict() for i in ids}
        events = []
        for step in steps.to_dict("records"):
            case = state[step["incident_id"]]
            at = now if step.get("at") is None or pd.isna(step.get("at")) else _utc(step["at"])
            previous = last_event.get(step["incident_id"])
            if at > now + pd.Timedelta(minutes=5) or (previous is not None and at < previous):
                raise InputError(
                    f"step {step['status']} of {step['incident_id']} at {at.isoformat()} is in the future "
                    "or before the case's previous step",
                    zh=f"案件 {step['incident_id']} 的流程时间不合理（晚于现在或早于上一步）",
                )
            transition(str(case["status"]), step["status"])
            events.append(
                {
                    "incident_id": step["incident_id"],
                    "from_status": case["status"],
                    "to_status": step["status"],
                    "actor": step.get("actor") or "",
                    "at": at.isoformat(),
                    "note": step.get("note") or "",
                }
            )
            case["status"] = step["status"]
            if step["status"] == "registered" and pd.isna(case["registered_at"]):
                case["registered_at"] = at
                case["deadline"] = deadlines(
                    pd.DataFrame([{**case, "registered_at": at}]), catalogue(store)
                ).iloc[0]
            if step["status"] in FINAL_STATUSES:
                case["closed_at"] = at
            last_event[step["incident_id"]] = at
        update = pd.DataFrame(
            [
                {
                    "status": case["status"],
                    "registered_at": case["registered_at"],
                    "closed_at": case["closed_at"],
                    "deadline": case["deadline"],
                    "incident_id": incident_id,
                }
                for incident_id, case in state.items()
            ]
        )
        for column in ("registered_at", "closed_at", "deadline"):
            update[column] = pd.to_datetime(update[column], utc=True)
        store.update_rows(conn, LAYER, update, key=["incident_id"])
        conn.execute(sa.insert(incident_events), events)
    return len(events)


def _last_event_times(conn: Any, ids: list[str]) -> dict[str, pd.Timestamp]:
    query = (
        sa.select(incident_events.c.incident_id, sa.func.max(incident_events.c.at))
        .where(incident_events.c.incident_id.in_(ids))
        .group_by(incident_events.c.incident_id)
    )
    return {i: _utc(pd.Timestamp(t)) for i, t in conn.execute(query) if t is not None}


@dataclass(frozen=True)
class CaseFilter:
    """Which cases to read: every given filter must hold (``None`` or ``""``: no filter).

    ``category`` matches a category code or a class code (06..10); ``since``/``until`` bound
    ``reported_at`` (naive times are Beijing time); ``bbox`` (WGS84 west, south, east, north)
    keeps located cases inside it. Applied as SQL, so that the layer's indexes serve them.
    """

    grid: str | None = None
    community: str | None = None
    worker: str | None = None
    status: str | None = None
    category: str | None = None
    incident_id: str | None = None
    since: Any = None
    until: Any = None
    bbox: tuple[float, float, float, float] | None = None

    def sql(self) -> tuple[str, dict[str, Any]]:
        """A ``WHERE`` clause (or ``""``) and its bound values; column names are fixed here."""
        parts, params = [], {}
        for column, value in (
            ("grid_code", self.grid),
            ("community", self.community),
            ("worker_id", self.worker),
            ("status", self.status),
            ("incident_id", self.incident_id),
        ):
            if value:
                parts.append(f'"{column}" = :{column}')
                params[column] = value
        if self.category:
            parts.append('("category_code" = :category OR "class_code" = :category)')
            params["category"] = self.category
        for name, operator, value in (("since", ">=", self.since), ("until", "<", self.until)):
            if value is not None:
                parts.append(f'"reported_at" {operator} :{name}')
                params[name] = _stored_time(value)
        if self.bbox is not None:
            parts.append(
                '"located" AND "lon" BETWEEN :west AND :east AND "lat" BETWEEN :south AND :north'
            )
            params.update(zip(("west", "south", "east", "north"), self.bbox, strict=True))
        return (" WHERE " + " AND ".join(parts) if parts else ""), params


def list_incidents(store: Store, **filters: Any) -> gpd.GeoDataFrame:
    """The cases matching every filter of :class:`CaseFilter`, with ``overdue`` computed now."""
    return incident_page(store, CaseFilter(**filters))[1]


def incident_page(
    store: Store, filters: CaseFilter, *, limit: int | None = None, offset: int = 0
) -> tuple[int, gpd.GeoDataFrame]:
    """How many cases match ``filters``, and those of ``offset`` to ``offset + limit`` (in order
    of storage) with ``overdue`` computed now; ``limit=None``: all of them.

    The count and the page are indexed SQL queries in one read transaction: a page costs
    what its rows cost, not what the whole layer does.
    """
    clause, params = filters.sql()
    with store.reading() as conn:
        if not store.has_layer(LAYER, conn):
            empty = gpd.GeoDataFrame({c: [] for c in (*COLUMNS, "overdue")}, geometry=[], crs=4326)
            return 0, empty
        total = conn.execute(sa.text(f'SELECT count(*) FROM "{LAYER}"{clause}'), params).scalar()
        if limit is None and not offset and not clause:
            cases = store.read_layer(LAYER, conn=conn)
        else:
            query = sa.text(
                f'SELECT fid FROM "{LAYER}"{clause} ORDER BY fid LIMIT :limit OFFSET :offset'
            )
            window = {"limit": -1 if limit is None else limit, "offset": offset}  # -1: no limit
            fids = conn.execute(query, {**params, **window}).scalars()
            cases = _read_rows(store, conn, list(fids))
    cases = cases.copy()
    cases["overdue"] = is_overdue(cases, now=pd.Timestamp.now("UTC")).astype(bool)
    return int(total), cases


#: rows read per ``fid IN (...)`` query (SQLite binds at most 32,766 values in one statement)
_ROWS_PER_READ = 5_000


def _read_rows(store: Store, conn: Connection, fids: list[int]) -> gpd.GeoDataFrame:
    """The cases with these ``fid`` values, in ``fid`` order."""
    parts = [
        store.read_layer(LAYER, where={"fid": fids[i : i + _ROWS_PER_READ]}, conn=conn)
        for i in range(0, max(len(fids), 1), _ROWS_PER_READ)
    ]
    return parts[0] if len(parts) == 1 else pd.concat(parts)


def _stored_time(moment: Any) -> str:
    """A time as the layer stores it (UTC, milliseconds, ``Z``), so that text compares as time."""
    return stored_time(_utc(moment))


#: what a caller wrote about a case: 12345 descriptions and addresses can name residents, so
#: only those who may read the cases themselves (staff and above) see them on a map
CASE_TEXT_COLUMNS = ("description", "address")


def incidents_for_map(
    store: Store, *, since: Any = None, until: Any = None, with_text: bool = True
) -> gpd.GeoDataFrame | None:
    """Located, non-fallback cases for a map (None when the project has none).

    ``with_text=False`` blanks :data:`CASE_TEXT_COLUMNS`: category, status and times remain.
    """
    if not store.has_layer(LAYER):
        return None
    cases = list_incidents(store, since=since, until=until)
    cases = cases[
        cases["located"].fillna(False).astype(bool)
        & ~cases["fallback_point"].fillna(False).astype(bool)
    ]
    if not with_text:
        cases = cases.assign(**dict.fromkeys(CASE_TEXT_COLUMNS, None))
    return cases if not cases.empty else None


def events_table(store: Store) -> pd.DataFrame:
    events = store.read_table(incident_events)
    events["at"] = pd.to_datetime(events["at"], utc=True, format="ISO8601")
    return events


def incident_statistics(
    store: Store, *, by: str = "grid", since: Any = None, until: Any = None
) -> pd.DataFrame:
    """Per grid, community or worker: counts, 立案率, 结案率, 按期结案率, overdue, handling time."""
    if by not in ("grid", "community", "worker"):
        raise InputError(
            f"--by must be grid, community or worker, not {by!r}",
            zh="--by 只能是 grid、community 或 worker",
        )
    cases, events = _stats_tables(store, CaseFilter(since=since, until=until))
    return incident_stats(
        cases, events, by=by, since=since, until=until, catalogue=catalogue(store)
    )


#: what the statistics read of a case: no geometry, no free text
_STATS_COLUMNS = (
    "incident_id",
    "category_code",
    "reported_at",
    "deadline",
    "grid_code",
    "community",
    "worker",
)
_EVENT_COLUMNS = ("incident_id", "from_status", "to_status", "actor", "at")


def _stats_tables(store: Store, filters: CaseFilter) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The cases ``filters`` select (the columns statistics need) and those cases' events."""
    if not store.has_layer(LAYER):
        return pd.DataFrame(columns=list(_STATS_COLUMNS)), pd.DataFrame(columns=_EVENT_COLUMNS)
    clause, params = filters.sql()
    names = ", ".join(f'"{c}"' for c in _STATS_COLUMNS)
    chosen = f'SELECT "incident_id" FROM "{LAYER}"{clause}'
    with store.reading() as conn:
        cases = conn.execute(sa.text(f'SELECT {names} FROM "{LAYER}"{clause}'), params)
        cases = _columns(cases, _STATS_COLUMNS)
        events = conn.execute(
            sa.text(
                f"SELECT {', '.join(_EVENT_COLUMNS)} FROM incident_events "
                f"WHERE incident_id IN ({chosen})"
            ),
            params,
        )
        events = _columns(events, _EVENT_COLUMNS)
    for column in ("reported_at", "deadline"):
        cases[column] = pd.to_datetime(cases[column], utc=True, format="ISO8601")
    events["at"] = pd.to_datetime(events["at"], utc=True, format="ISO8601")
    return cases, events


def _columns(result: Any, names: tuple[str, ...]) -> pd.DataFrame:
    """A query's rows as a DataFrame, from the driver's plain tuples (SQLAlchemy's row objects
    cost twice as much to turn into columns)."""
    return pd.DataFrame(result.cursor.fetchall(), columns=list(names), dtype=object)


def _district_bounds(store: Store) -> tuple[float, float, float, float] | None:
    """The district's WGS84 box with a margin of about 5 km, for refusing far-away points."""
    extent = store.layer_extent("buildings") if store.has_layer("buildings") else None
    if extent is None:
        return None
    return _wgs84_box(pyproj.CRS(store.layer_crs("buildings")).srs, tuple(extent))


@functools.lru_cache(maxsize=16)
def _wgs84_box(srs: str, extent: tuple[float, ...]) -> tuple[float, float, float, float]:
    """:func:`_district_bounds` for one extent (a Transformer costs 90 ms to make: once)."""
    minx, miny, maxx, maxy = pyproj.Transformer.from_crs(
        srs, 4326, always_xy=True
    ).transform_bounds(*extent)
    return (minx - 0.05, miny - 0.05, maxx + 0.05, maxy + 0.05)


def _iso_times(values: pd.Series) -> list[str]:
    """Event times: the case's own, or the time it reached us where the feed had none."""
    arrived = now_iso()
    return [arrived if pd.isna(v) else pd.Timestamp(v).isoformat() for v in values]


def mapping_from_options(mapping_file: str | Path | None, **columns: Any) -> IncidentMapping:
    """A column mapping from a saved file, with any column given on the command line on top."""
    base = IncidentMapping.from_file(mapping_file) if mapping_file else IncidentMapping()
    given = {k: v for k, v in columns.items() if v is not None}
    return IncidentMapping(**{**base.to_dict(), **given}) if given else base


def _utc(moment: Any) -> pd.Timestamp:
    """A time bound as UTC; naive times are taken as Asia/Shanghai (the users' clock)."""
    stamp = pd.Timestamp(moment)
    return (
        stamp.tz_localize("Asia/Shanghai").tz_convert("UTC")
        if stamp.tzinfo is None
        else stamp.tz_convert("UTC")
    )
