"""What api/ and the CLI do with cases: import a feed, move cases along the case loop, relocate
them, load a catalogue, count them; each a use case of one store transaction.

Why: every step lives in :mod:`geo.incidents` (feeds read, rows made in
:mod:`~geo.incidents.cases`, kept by :mod:`~geo.incidents.records`); a use case only checks its
input, calls those steps in order and opens the one transaction that writes, so the API and
the CLI take in and refuse the same cases.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from geo.crs import parse_crs_name
from geo.errors import InputError, NotFound
from geo.incidents import cases as rows
from geo.incidents import records as stored
from geo.incidents.cases import CaseImport, StepContext
from geo.incidents.catalogue import load_catalogue
from geo.incidents.feeds import (
    IncidentMapping,
    describe_mapping,
    normalise_records,
    read_feed_records,
    recognise_columns,
    summarise_import,
)
from geo.incidents.shift import refuse_shifted
from geo.incidents.stats import incident_stats
from geo.locate.engine import GridIndex
from geo.storage.store import Store, now_iso


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
    which no case has usable coordinates (:func:`geo.incidents.cases.refuse_unplaceable`) unless
    ``allow_unlocated``, and with ``check_crs`` one read as WGS84 whose points look like GCJ-02
    or BD-09 (:func:`geo.incidents.shift.refuse_shifted`). With ``update``, cases already stored
    whose content changed (place, category, time, text) take the feed's values; their workflow
    stays.
    """
    how = CaseImport(
        mapping=mapping,
        source=source,
        author=author,
        allow_unlocated=allow_unlocated,
        check_crs=check_crs,
        update=update,
    )
    return import_records(store, read_feed_records(path), how)


def import_records(
    store: Store, records: pd.DataFrame, how: CaseImport, *, index: GridIndex | None = None
) -> dict[str, Any]:
    """:func:`import_incidents` for records already in memory (cases pushed to the API).

    ``index``: the published plan's locate index when the caller holds it (the service caches
    it), else it is loaded from the project file (:func:`geo.locate.kept.grid_index`).
    """
    mapping = recognise_columns(records, how.mapping)
    cat = stored.catalogue(store)
    feed = normalise_records(
        records,
        mapping=mapping,
        source=how.source,
        catalogue=cat,
        bounds=stored.district_bounds(store),
    )
    summary = {**summarise_import(feed), "mapping": describe_mapping(mapping)}
    if index is None:
        index = stored.published_index(store)
    if how.check_crs:
        areas = (index.grids.geoms, index.crs) if index is not None else None
        refuse_shifted(store, records, mapping, areas=areas)
    if not how.allow_unlocated:
        rows.refuse_unplaceable(summary)
    added, updated = _store_cases(store, feed, cat, how=how, index=index)
    return {
        **summary,
        "added": added,
        "updated": updated,
        "already_present": int(len(feed) - added - updated - feed["duplicate"].sum()),
    }


def _store_cases(
    store: Store,
    feed: pd.DataFrame,
    catalogue: pd.DataFrame,
    *,
    how: CaseImport,
    index: GridIndex | None,
) -> tuple[int, int]:
    """Add the feed's new cases and, with ``how.update``, rewrite stored ones whose content
    changed, in one transaction; returns (added, updated). Cases are assigned by ``index``, the
    published plan's locate index (loaded when not given)."""
    feed = rows.feed_cases(feed)
    stored.check_case_ids(feed["incident_id"])
    # a first look spares the assignment of cases already stored; the decision is taken below
    known = feed["incident_id"].isin(stored.stored_ids(store, feed["incident_id"]))
    fresh, again = feed[~known], feed[known] if how.update else feed.iloc[:0]
    if fresh.empty and again.empty:
        return 0, 0
    if index is None:
        index = stored.published_index(store)
    cases = _new_rows(store, fresh, catalogue, index=index) if not fresh.empty else None
    revised = _new_rows(store, again, catalogue, index=index) if not again.empty else None
    with store.transaction() as conn:
        added = (
            stored.append_cases(store, conn, cases, author=how.author) if cases is not None else 0
        )
        updated = (
            _replace_changed(store, conn, revised, author=how.author) if revised is not None else 0
        )
    return added, updated


def _new_rows(
    store: Store, feed: pd.DataFrame, catalogue: pd.DataFrame, *, index: GridIndex | None
) -> gpd.GeoDataFrame:
    """The layer rows of these feed cases, assigned to the published grids."""
    assigned = stored.assignment(store, feed, index=index)
    return rows.new_rows(feed, catalogue, assigned, imported_at=now_iso())


def _replace_changed(store: Store, conn: Any, revised: gpd.GeoDataFrame, *, author: str) -> int:
    """Rewrite the stored cases whose content differs from ``revised`` (their grid and worker
    follow the new place; the workflow stays); logged. Returns how many changed."""
    old = stored.read_cases(store, conn, {"incident_id": revised["incident_id"].tolist()})
    new = rows.changed_rows(
        old.set_index("incident_id", drop=False), revised.set_index("incident_id", drop=False)
    )
    if new.empty:
        return 0
    stored.rewrite(store, conn, new)
    ids = new.index.tolist()
    store.log(conn, "incidents update", actor=author, updated=len(ids), ids=ids[:500])
    return len(ids)


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
    with store.transaction() as conn:
        stored.refuse_second_relocation(store, conn, source)
        cases = stored.read_cases(store, conn, {"source": source} if source else None)
        if cases is None or cases.empty:
            raise NotFound(
                f"no cases{f' of source {source!r}' if source else ''} to relocate",
                zh="没有可重新定位的案件",
            )
        located = cases[cases["located"].fillna(False).astype(bool)].copy()
        moved = _moved_cases(store, located, crs=crs)
        if not moved.empty:
            stored.rewrite(store, conn, moved)
        counts = {
            "relocated": len(moved),
            "now_outside": int((~moved["located"].astype(bool)).sum()) if not moved.empty else 0,
            "without_coordinates": len(cases) - len(located),
        }
        store.log(conn, "incidents relocate", actor=author, crs=str(crs), source=source, **counts)
    return counts


def _moved_cases(store: Store, located: gpd.GeoDataFrame, *, crs: str) -> gpd.GeoDataFrame:
    """The located cases with their coordinates read as ``crs``, checked against the district
    and assigned to the grids again."""
    if located.empty:
        return located
    moved = rows.read_as(located, crs=crs, bounds=stored.district_bounds(store))
    assigned = stored.assignment(store, moved)
    for column in rows.ASSIGNED:
        moved[column] = assigned[column]
    return moved.set_geometry(rows.points_of(moved), crs=4326)


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
    stored.check_case_id(incident_id)
    step = pd.DataFrame(
        [{"incident_id": incident_id, "status": status, "actor": actor, "note": note, "at": at}]
    )
    advance_cases(store, step)
    return stored.get_incident(store, incident_id)


def advance_cases(store: Store, steps: pd.DataFrame) -> int:
    """Apply many workflow steps (``incident_id``, ``status``, ``actor``, ``note``, ``at``) at once.

    Steps are applied per case in the order given, each checked against the case loop; one
    illegal step refuses the whole batch, which is one transaction. Returns the steps applied.
    """
    rows.check_statuses(steps["status"])
    now = pd.Timestamp.now("UTC")
    with store.transaction() as conn:
        ids = list(dict.fromkeys(steps["incident_id"]))
        state = _case_state(store, conn, ids)
        registers = bool((steps["status"] == "registered").any())
        context = StepContext(
            now=now,
            last_event=stored.last_event_times(conn, ids),
            catalogue=stored.catalogue(store) if registers else None,
        )
        events = rows.apply_steps(state, steps, context)
        stored.write_steps(store, conn, rows.step_rows(state), events)
    return len(events)


def _case_state(store: Store, conn: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The stored rows of these cases by id; an unknown id is refused."""
    found = stored.read_cases(store, conn, {"incident_id": ids})
    known = set() if found is None else set(found["incident_id"])
    missing = [i for i in ids if i not in known]
    if missing:
        raise NotFound(f"no incident {missing[0]!r}", zh=f"没有案件 {missing[0]}")
    by_id = found.set_index("incident_id")
    return {i: by_id.loc[i].to_dict() for i in ids}


def incident_statistics(
    store: Store, *, by: str = "grid", since: Any = None, until: Any = None
) -> pd.DataFrame:
    """Per grid, community or worker: counts, 立案率, 结案率, 按期结案率, overdue, handling time."""
    if by not in ("grid", "community", "worker"):
        raise InputError(
            f"--by must be grid, community or worker, not {by!r}",
            zh="--by 只能是 grid、community 或 worker",
        )
    cases, events = stored.stats_tables(store, stored.CaseFilter(since=since, until=until))
    return incident_stats(
        cases, events, by=by, since=since, until=until, catalogue=stored.catalogue(store)
    )
