"""``/incidents`` and ``/stats/incidents``: cases from other systems, their workflow and figures.

Posted cases go through the same reader as ``gridmap incidents import`` (category matching,
time parsing, coordinate checks, fallback points), so the API accepts and refuses what the CLI
does; a case is identified by its source and id, and posting it again changes nothing.
"""

from __future__ import annotations

import functools
import tempfile
import weakref
from pathlib import Path as FilePath
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ConfigDict, Field

from api.deps import (
    BBoxDep,
    BodyDep,
    PageDep,
    Planner,
    Staff,
    StateDep,
    TimeRangeDep,
    check_batch,
    check_json_depth,
)
from api.models import (
    IncidentBatch,
    IncidentDetail,
    IncidentImport,
    IncidentIn,
    IncidentPatch,
    Incidents,
    IncidentSingle,
    IncidentStats,
    IncidentStatsRow,
    Model,
    TimeZoneName,
    plain,
    records,
)
from api.routers._frames import problem_responses
from api.state import ProjectState
from geo.errors import InputError
from geo.incidents import intake
from geo.incidents import records as incident_records
from geo.incidents.batcher import CaseWriter
from geo.incidents.cases import CaseImport
from geo.incidents.feeds import (
    IncidentMapping,
    parse_timestamps,
    read_feed_records,
    records_from_objects,
)
from geo.incidents.workflow import IllegalTransition, allowed_next
from geo.storage.store import Store
from geo.usecases import incidents as cases

router = APIRouter(tags=["incidents"])
ERRORS = problem_responses(401, 403, 404, 409, 413, 422)
#: how posted JSON fields map onto the feed reader's columns
POSTED = IncidentMapping(
    id_col="id",
    lon_col="lon",
    lat_col="lat",
    category_col="category",
    time_col="reported_at",
    description_col="description",
    address_col="address",
)
AllowUnlocated = Annotated[
    bool, Query(description="store cases even when none has usable coordinates")
]
#: a case id (``source:id``) in a path: slashes included (数字城管 ``2026/08/0001``), one length rule
CaseId = Annotated[str, Path(max_length=incident_records.MAX_ID_LENGTH)]


@router.post(
    "/incidents",
    response_model=IncidentImport,
    responses=ERRORS,
    summary="Add cases (one or a batch; idempotent by source and id)",
)
async def post_incidents(
    state: StateDep,
    principal: Staff,
    body: Annotated[IncidentBatch | IncidentSingle, Body()],
    allow_unlocated: AllowUnlocated = False,
) -> IncidentImport:
    # a crs the caller named is taken as given; without one, a batch whose points look like
    # GCJ-02 or BD-09 is refused (as the CLI does)
    crs_named = "crs" in body.model_fields_set
    if isinstance(body, IncidentSingle):
        case = IncidentIn(**body.model_dump(exclude={"source", "crs"}))
        batch = IncidentBatch(source=body.source, crs=body.crs, incidents=[case])
    else:
        batch = body
    check_batch(len(batch.incidents), state.settings, "cases")
    if not batch.incidents:
        raise InputError("no cases in 'incidents'", zh="incidents 为空")
    post = functools.partial(_post, state, batch, principal.name, allow_unlocated, crs_named)
    if len(batch.incidents) == 1:
        answer = await _post_one(state, batch, principal.name, allow_unlocated)
        if answer is not None:
            return answer
    return await run_in_threadpool(post)


#: the writer task of each store in this process (group commit, geo.incidents.batcher)
_WRITERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _writer(store: Store) -> CaseWriter:
    writer = _WRITERS.get(store)
    if writer is None:
        writer = _WRITERS[store] = CaseWriter(store)
    return writer


async def _post_one(
    state: ProjectState, batch: IncidentBatch, author: str, allow_unlocated: bool
) -> IncidentImport | None:
    """One case (a hotline pushing calls as they come) read and checked on the event loop, then
    stored by the process's writer task with the cases posted meanwhile (group commit): in a
    worker thread it would wait for the GIL at every SQLite call while the loop serves locates.
    None where the lean path does not apply (the caller takes the feed path)."""
    rows = _rows(batch)
    mapping = IncidentMapping(**{**POSTED.to_dict(), "crs": batch.crs})
    time = intake.read_time(rows[0]["reported_at"], tz=mapping.tz)
    if time is None:
        return None
    if time.problem:
        _refuse_times([(rows[0]["id"], time.problem)])
    prepared = intake.prepare_posted_case(
        state.store,
        rows[0],
        CaseImport(
            mapping=mapping, source=batch.source, author=author, allow_unlocated=allow_unlocated
        ),
        time=time,
        index=state.case_index(),  # the locate index /locate answers from, cached per plan
    )
    if prepared is None:
        return None
    # stored with the other cases waiting, in one transaction, by this process's writer task
    summary = await _writer(state.store).store_case(prepared)
    return None if summary is None else _answer(summary, read=1)


def _rows(batch: IncidentBatch) -> list[dict]:
    rows = [case.model_dump() for case in batch.incidents]
    received = pd.Timestamp.now("UTC").isoformat()
    for row in rows:
        row["id"] = str(row["id"])
        # a pushed case without a time was reported when it arrives
        row["reported_at"] = row["reported_at"] or received
    return rows


def _answer(summary: dict, *, read: int) -> IncidentImport:
    return IncidentImport(
        read=read,
        added=int(summary["added"]),
        already_present=int(summary["already_present"]),
        summary={k: plain(v) for k, v in summary.items()},
    )


def _post(
    state: ProjectState, batch: IncidentBatch, author: str, allow_unlocated: bool, crs_named: bool
) -> IncidentImport:
    """Store the posted cases through the feed reader (a batch, or a case the lean path leaves)."""
    rows = _rows(batch)
    _check_times(rows)
    # the same normalisation as a feed file, without the file
    how = CaseImport(
        mapping=IncidentMapping(**{**POSTED.to_dict(), "crs": batch.crs}),
        source=batch.source,
        author=author,
        allow_unlocated=allow_unlocated,
        check_crs=not crs_named,
    )
    summary = cases.import_records(
        state.store,
        records_from_objects(rows),
        how,
        index=state.case_index(),  # the locate index /locate answers from, cached per plan
    )
    return _answer(summary, read=len(rows))


class FeedQuery(Model):
    """The query of ``POST /incidents/import``: the feed's name and columns, as the CLI's options."""

    source: str = Field(min_length=1, max_length=60, description="feed name: 12345...")
    id_col: str | None = Field(None, max_length=100, description="the feed's column")
    lon_col: str | None = Field(None, max_length=100, description="the feed's column")
    lat_col: str | None = Field(None, max_length=100, description="the feed's column")
    category_col: str | None = Field(None, max_length=100, description="the feed's column")
    time_col: str | None = Field(None, max_length=100, description="the feed's column")
    description_col: str | None = Field(None, max_length=100, description="the feed's column")
    address_col: str | None = Field(None, max_length=100, description="the feed's column")
    crs: str | None = Field(
        None,
        max_length=40,
        description="wgs84, gcj02, bd09, cgcs2000, EPSG:n; without it WGS84 is assumed and "
        "a feed whose points look like GCJ-02 or BD-09 is refused",
    )
    tz: TimeZoneName = Field(
        "Asia/Shanghai", max_length=60, description="IANA zone of times without one"
    )
    allow_unlocated: bool = Field(
        False, description="store cases even when none has usable coordinates"
    )
    update: bool = Field(
        False, description="rewrite stored cases whose place, category, time or text changed"
    )

    def case_import(self, author: str) -> CaseImport:
        """The import these options ask for (the crs is checked unless the caller named one)."""
        mapping = IncidentMapping(
            id_col=self.id_col,
            lon_col=self.lon_col,
            lat_col=self.lat_col,
            category_col=self.category_col,
            time_col=self.time_col,
            description_col=self.description_col,
            address_col=self.address_col,
            crs=self.crs or "wgs84",
            tz=self.tz,
        )
        return CaseImport(
            mapping=mapping,
            source=self.source,
            author=author,
            allow_unlocated=self.allow_unlocated,
            check_crs=self.crs is None,
            update=self.update,
        )


@router.post(
    "/incidents/import",
    response_model=IncidentImport,
    responses=ERRORS,
    summary="Import a feed file (CSV, GeoJSON, JSON) like 'gridmap incidents import'",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/geo+json": {"schema": {"type": "object"}},
            },
        }
    },
)
def import_feed(
    request: Request,
    state: StateDep,
    principal: Planner,
    body: BodyDep,
    options: Annotated[FeedQuery, Query()],
) -> IncidentImport:
    """The body is the feed file; the query names its columns (as the CLI options do); columns
    it does not name are taken from the usual headers (lon/lng/经度, lat/纬度, id/案件编号 ...)."""
    kind = request.headers.get("content-type", "text/csv").split(";")[0].strip().lower()
    suffix = {"application/geo+json": ".geojson", "application/json": ".json"}.get(kind, ".csv")
    if suffix != ".csv":
        check_json_depth(body)
    how = options.case_import(principal.name)
    with tempfile.TemporaryDirectory(prefix="gridmap-feed-") as folder:
        path = FilePath(folder) / f"feed{suffix}"
        path.write_bytes(body)
        summary = cases.import_records(state.store, read_feed_records(path), how)
    return IncidentImport(
        read=int(summary.get("read", summary["added"] + summary["already_present"])),
        added=int(summary["added"]),
        already_present=int(summary["already_present"]),
        summary={k: plain(v) for k, v in summary.items()},
    )


class Relocation(Model):
    """Which stored cases to read as which coordinate system."""

    model_config = ConfigDict(extra="forbid")
    crs: str = Field(max_length=40, description="the stored coordinates' real system: gcj02, bd09")
    source: str | None = Field(None, max_length=60, description="only this feed's cases")


class Relocated(Model):
    relocated: int = Field(description="located cases moved to their true place and grid")
    now_outside: int = Field(description="of those, now outside the district (unlocated)")
    without_coordinates: int = Field(
        description="cases stored without coordinates: re-import their feed with crs and update"
    )


@router.post(
    "/incidents/relocate",
    response_model=Relocated,
    responses=ERRORS,
    summary="Read stored case coordinates as GCJ-02/BD-09 (a feed imported as WGS84 by mistake)",
)
def relocate(state: StateDep, principal: Planner, body: Relocation) -> Relocated:
    """Like ``gridmap incidents relocate``: the cases move to their true grids and workers, in one
    logged transaction; the same cases a second time are refused (409)."""
    counts = cases.relocate_cases(
        state.store, crs=body.crs, source=body.source, author=principal.name
    )
    return Relocated(**counts)


def _check_times(rows: list[dict]) -> None:
    """Refuse cases whose time cannot be read (the stored case loop needs one)."""
    _, problems = parse_timestamps(pd.Series([row["reported_at"] for row in rows], dtype=object))
    _refuse_times(
        [(row["id"], problem) for row, problem in zip(rows, problems, strict=True) if problem]
    )


def _refuse_times(bad: list[tuple[str, str]]) -> None:
    if bad:
        listed = ", ".join(f"{case_id} ({problem})" for case_id, problem in bad[:10])
        raise InputError(
            f"{len(bad)} case(s) have a reported_at that cannot be read: {listed}",
            hint="use ISO 8601, e.g. 2026-01-31T08:30:00+08:00",
            zh=f"{len(bad)} 条案件的上报时间无法识别",
        )


class CaseQuery(Model):
    """The filters of ``GET /incidents`` besides the page, the box and the time range."""

    grid: str | None = Field(None, max_length=200)
    community: str | None = Field(None, max_length=200)
    worker: str | None = Field(None, max_length=200, description="worker id")
    status: str | None = Field(None, max_length=20)
    category: str | None = Field(
        None, max_length=20, description="category code or class code (06..10)"
    )


@router.get("/incidents", response_model=Incidents, responses=ERRORS, summary="List cases")
def list_incidents(
    state: StateDep,
    _: Staff,
    page: PageDep,
    bbox: BBoxDep,
    times: TimeRangeDep,
    query: Annotated[CaseQuery, Query()],
) -> Incidents:
    wanted = incident_records.CaseFilter(
        **query.model_dump(), since=times.since, until=times.until, bbox=bbox
    )
    # one indexed count and one page of rows: the cost of a page, not of the whole layer
    total, window = incident_records.incident_page(
        state.store, wanted, limit=page.limit, offset=page.offset
    )
    return Incidents(total=total, limit=page.limit, offset=page.offset, items=records(window))


def _detail(record: dict) -> IncidentDetail:
    plain_record = {k: plain(v) for k, v in record.items() if k != "events"}
    events = [{k: plain(v) for k, v in e.items()} for e in record.get("events", [])]
    status = plain_record.get("status")
    nexts = list(allowed_next(status)) if status else []
    return IncidentDetail(**plain_record, events=events, allowed_next=nexts)


@router.get(
    "/incidents/{incident_id:path}",
    response_model=IncidentDetail,
    responses=ERRORS,
    summary="One case with its history",
)
def get_incident(state: StateDep, _: Staff, incident_id: CaseId) -> IncidentDetail:
    return _detail(incident_records.get_incident(state.store, incident_id))


class _Refused(IllegalTransition):
    """An illegal step, with the allowed next steps in the problem body."""


@router.patch(
    "/incidents/{incident_id:path}",
    response_model=IncidentDetail,
    responses=ERRORS,
    summary="Move a case one step (立案, 派遣, 处置, 核查, 结案, 退回)",
)
def patch_incident(
    state: StateDep,
    principal: Staff,
    change: IncidentPatch,
    incident_id: CaseId,
) -> IncidentDetail:
    try:
        record = cases.update_incident(
            state.store, incident_id, status=change.status, actor=principal.name, note=change.note
        )
    except IllegalTransition as error:
        current = incident_records.get_incident(state.store, incident_id)["status"]
        refused = _Refused(error.message, hint=error.hint, zh=error.zh)
        refused.problem_extra = {"allowed": list(allowed_next(current)), "current": current}
        raise refused from None
    return _detail(record)


@router.get(
    "/stats/incidents",
    response_model=IncidentStats,
    responses=ERRORS,
    summary="Case figures per grid, community or worker",
)
def incident_stats(
    state: StateDep,
    _: Staff,
    times: TimeRangeDep,
    by: Annotated[str, Query(pattern="^(grid|community|worker)$")] = "grid",
) -> IncidentStats:
    table = cases.incident_statistics(state.store, by=by, since=times.since, until=times.until)
    classes = [c for c in table.columns if c.startswith("class_")]
    rows = []
    for key, row in table.iterrows():
        values = {k: plain(v) for k, v in row.items() if k not in classes}
        rows.append(
            IncidentStatsRow(
                key=str(key),
                **values,
                by_class={c.removeprefix("class_"): int(row[c]) for c in classes},
            )
        )
    return IncidentStats(
        by=by,
        since=None if times.since is None else times.since.isoformat(),
        until=None if times.until is None else times.until.isoformat(),
        rows=rows,
    )
