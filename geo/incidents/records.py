"""The ``incidents`` layer and the ``incident_events`` table in the project file: reading,
writing, and the SQL that does both.

The ``incidents`` layer holds one WGS84 point per case (no geometry when unlocated) with its
category, status, times, description (untrusted text, stored as given) and its grid, community
and worker from the published plan; ``incident_events`` holds every workflow step.

Why a module of its own: the use cases (:mod:`geo.usecases.incidents`) decide what happens to
cases and open the transaction; the rows themselves are made in :mod:`geo.incidents.cases`.
What remains here is how they are kept: the indexed look-ups and pages, the appends and
rewrites, and the steps that run inside a caller's transaction (:func:`reassign_open_cases`,
which a plan's publication runs).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyproj
import sqlalchemy as sa
from sqlalchemy import Connection

from geo.crs import transformer
from geo.errors import Conflict, InputError, NotFound
from geo.incidents.assign import assign_to_grids, assign_with_index
from geo.incidents.cases import ASSIGNED, COLUMNS, utc
from geo.incidents.catalogue import load_catalogue
from geo.incidents.workflow import OPEN_STATUSES, is_overdue
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
_DESCRIPTION = "12345 / 数字城管 cases"
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


def catalogue_key(store: Store, conn: Connection | None = None) -> tuple[str | None, int, int]:
    """Which catalogue the project uses: its own CSV (path and version) or the national one
    (its setting read inside ``conn`` when given)."""
    return catalogue_key_of(store.get_setting(CATALOGUE_SETTING, conn=conn))


#: the setting naming the project's own catalogue CSV
CATALOGUE_SETTING = "catalogue_csv"


def catalogue_key_of(own: str | None) -> tuple[str | None, int, int]:
    """:func:`catalogue_key` for the setting's value ``own``: the file's version is looked up
    each time, so a CSV changed in place is read again."""
    if own:
        path = Path(own)
        if path.exists():
            stat = path.stat()
            return (str(path), stat.st_mtime_ns, stat.st_size)
    return (None, 0, 0)


def catalogue(store: Store) -> pd.DataFrame:
    """The project's category catalogue: its own (``gridmap incidents categories load``) or the national one."""
    return cached_catalogue(*catalogue_key(store)).copy()


@functools.lru_cache(maxsize=8)
def cached_catalogue(path: str | None, mtime_ns: int, size: int) -> pd.DataFrame:
    """A catalogue CSV read once per version of the file (every posted case needs it); shared,
    so callers copy it before changing it."""
    return load_catalogue(path) if path is not None else load_catalogue()


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
        column = sa.column("incident_id")
        for start in range(0, len(wanted), 500):
            query = sa.select(column).select_from(sa.table(LAYER))
            rows = c.execute(query.where(column.in_(wanted[start : start + 500])))
            found.update(row[0] for row in rows)
    return found


def read_cases(
    store: Store, conn: Connection, where: dict[str, Any] | None = None
) -> gpd.GeoDataFrame | None:
    """The stored cases ``where`` selects, read inside ``conn``; None without the layer."""
    if not store.has_layer(LAYER, conn):
        return None
    return store.read_layer(LAYER, where=where, conn=conn)


def append_cases(store: Store, conn: Connection, cases: gpd.GeoDataFrame, *, author: str) -> int:
    """Append the cases not stored yet, each with its creation event; logged. Returns how many."""
    # inside the write lock: an API post or import that committed meanwhile is seen here, and
    # the UNIQUE index on incident_id refuses any copy that would still slip through
    cases = cases[~cases["incident_id"].isin(stored_ids(store, cases["incident_id"], conn=conn))]
    if cases.empty:
        return 0
    store.write_layer(conn, LAYER, cases, mode="append", description=_DESCRIPTION)
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


def _iso_times(values: pd.Series) -> list[str]:
    """Event times: the case's own, or the time it reached us where the feed had none."""
    arrived = now_iso()
    return [arrived if pd.isna(v) else pd.Timestamp(v).isoformat() for v in values]


def rewrite(store: Store, conn: Connection, cases: gpd.GeoDataFrame) -> None:
    """Replace stored cases by these rows (same ids; a point moves, so the row is written anew)."""
    ids = [str(i) for i in cases["incident_id"]]
    for start in range(0, len(ids), 500):  # bounded IN lists (SQLite's bind-variable limit)
        store.delete_rows(conn, LAYER, {"incident_id": ids[start : start + 500]})
    frame = gpd.GeoDataFrame(
        cases[list(COLUMNS)].reset_index(drop=True), geometry=list(cases.geometry), crs=4326
    )
    store.write_layer(conn, LAYER, frame, mode="append", description=_DESCRIPTION)


def last_event_times(conn: Connection, ids: list[str]) -> dict[str, pd.Timestamp]:
    """The time of each case's latest event (cases without events left out)."""
    query = (
        sa.select(incident_events.c.incident_id, sa.func.max(incident_events.c.at))
        .where(incident_events.c.incident_id.in_(ids))
        .group_by(incident_events.c.incident_id)
    )
    return {i: utc(pd.Timestamp(t)) for i, t in conn.execute(query) if t is not None}


def write_steps(
    store: Store, conn: Connection, update: pd.DataFrame, events: list[dict[str, Any]]
) -> None:
    """The cases' new status and times (by ``incident_id``) and the events of the steps."""
    store.update_rows(conn, LAYER, update, key=["incident_id"])
    conn.execute(sa.insert(incident_events), events)


def refuse_second_relocation(store: Store, conn: Connection, source: str | None) -> None:
    """Refuse to relocate cases (of ``source``, or all) that the audit log says were relocated."""
    log = store.read_table("audit_log", where={"action": "incidents relocate"}, conn=conn)
    for details in log["details"] if not log.empty else []:
        earlier = json.loads(details).get("source")
        if earlier is None or source is None or earlier == source:
            raise Conflict(
                f"the cases{f' of source {source!r}' if source else ''} were relocated before; "
                "relocating again would move them twice",
                zh="这些案件已重新定位过，再次定位会重复偏移",
            )


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
                params[name] = stored_time(utc(value))
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
            # no limit: one larger than any layer (SQLite's -1 is an error on PostgreSQL)
            window = {"limit": 2**62 if limit is None else limit, "offset": offset}
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
    """Every workflow event, ``at`` as UTC times."""
    events = store.read_table(incident_events)
    events["at"] = pd.to_datetime(events["at"], utc=True, format="ISO8601")
    return events


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


def stats_tables(store: Store, filters: CaseFilter) -> tuple[pd.DataFrame, pd.DataFrame]:
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


def district_bounds(store: Store) -> tuple[float, float, float, float] | None:
    """The district's WGS84 box with a margin of about 5 km, for refusing far-away points."""
    extent = store.layer_extent("buildings") if store.has_layer("buildings") else None
    if extent is None:
        return None
    return wgs84_box(pyproj.CRS(store.layer_crs("buildings")).srs, tuple(extent))


@functools.lru_cache(maxsize=16)
def wgs84_box(srs: str, extent: tuple[float, ...]) -> tuple[float, float, float, float]:
    """:func:`district_bounds` for one extent (the transformer is :func:`geo.crs.transformer`'s,
    made once per process)."""
    minx, miny, maxx, maxy = transformer(srs, 4326).transform_bounds(*extent)
    return (minx - 0.05, miny - 0.05, maxx + 0.05, maxy + 0.05)


def assignment(
    store: Store, cases: pd.DataFrame, *, index: GridIndex | None = None
) -> pd.DataFrame:
    """Grid, community and worker of each case from the published grids (None without).

    The grid is the one the published plan's locate index gives (``index``, or the one kept in
    the project file), so a case lands where ``/locate`` says its point lies; community, worker
    id and name are that grid's row of the ``grids`` layer.
    """
    columns = list(ASSIGNED)
    empty = pd.DataFrame(None, index=cases.index, columns=columns, dtype=object)
    if not store.has_layer("grids"):
        return empty
    if index is None:
        index = published_index(store)
    if index is None:  # grids without a published plan (an older project): the sjoin
        grids = store.read_layer("grids", columns=columns)
        if grids.empty:
            return empty
        found = assign_to_grids(cases, grids)[["grid_code"]]
    else:
        found = assign_with_index(cases, index)[["grid_code"]]
    facts = _grid_facts(store, found["grid_code"].dropna().unique().tolist())
    for column in columns[1:]:
        found[column] = found["grid_code"].map(facts[column])
    return found.astype(object).where(found.notna(), None)


def _grid_facts(store: Store, codes: list[str]) -> pd.DataFrame:
    """Community, worker id and worker of these grids (only those the cases landed in)."""
    columns = list(ASSIGNED)
    rows: list = []
    with store.reading() as conn:
        fields = [sa.column(c) for c in columns]
        for start in range(0, len(codes), 500):
            query = sa.select(*fields).select_from(sa.table("grids"))
            rows += conn.execute(query.where(fields[0].in_(codes[start : start + 500]))).fetchall()
    return pd.DataFrame([tuple(row) for row in rows], columns=columns).set_index("grid_code")


def published_index(store: Store) -> GridIndex | None:
    """The published plan's locate index as kept in the project file (built when it is not kept
    for this plan revision), None without a published plan. It never writes: it may run inside
    the caller's transaction (relocate), where keeping the index would wait for the caller."""
    key = locate_index._plan_key(store, None)
    if key is None or not key.published:
        return None
    kept = locate_index._kept(store, key, cells=False)
    return kept if kept is not None else locate_index.build_index(store, key.plan_id)


def reassign_open_cases(store: Store, conn: Any, *, actor: str = "") -> int:
    """After a plan is published: give open cases the grid and worker of the new grids, logged.

    A step of the publication, inside its transaction ``conn`` (not a use case of its own).
    """
    open_cases = _open_located(store, conn)
    if open_cases is None:
        return 0
    grids = store.read_layer("grids", columns=list(ASSIGNED), conn=conn)
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
    store.update_rows(conn, LAYER, update[[*ASSIGNED, "incident_id"]], key=["incident_id"])
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


def _open_located(store: Store, conn: Any) -> gpd.GeoDataFrame | None:
    """The open cases that have a place (None when there are none)."""
    if not store.has_layer(LAYER, conn):
        return None
    cases = store.read_layer(LAYER, conn=conn)
    open_cases = cases[
        cases["status"].isin(OPEN_STATUSES) & cases["located"].fillna(False).astype(bool)
    ]
    return None if open_cases.empty else open_cases
