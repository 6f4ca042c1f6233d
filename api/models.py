"""Pydantic models of every request and response body (what /docs shows)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from geo.grids.partition import GRID_STATUSES, MAX_GRID_SIZE
from geo.incidents.feeds import EARLIEST_TIME, LATEST_TIME
from geo.jsonvalue import json_value

# -- helpers -------------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A JSON-ready Python value (NaN/NA -> None, numpy -> Python, times -> ISO text): the one
    serialiser the CLI uses too, :func:`geo.jsonvalue.json_value`."""
    return json_value(value)


def records(frame: pd.DataFrame, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """Rows of ``frame`` (without geometry) as plain dicts."""
    keep = [c for c in (columns or frame.columns) if c in frame.columns and c != "geometry"]
    return [
        {k: plain(v) for k, v in zip(keep, row, strict=True)}
        for row in frame[keep].itertuples(index=False, name=None)
    ]


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


# -- checked input types ---------------------------------------------------------------------------
# Each refuses, with a message that names the problem, a value that would otherwise fail deep inside
# pandas, SQLite or the JSON encoder (a 500 and a reset connection): request bodies and queries only.


def valid_text(value: Any) -> Any:
    """Text that SQLite, the JSON encoder and every page can hold: no lone surrogates, no NUL."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                "is not valid Unicode text: it holds a lone surrogate (such as \\ud800)"
            ) from None
        if "\x00" in value:
            raise ValueError("holds a NUL character (\\u0000)")
    return value


#: a ``str`` (or ``str | int`` ...) field of a request: valid Unicode, checked before anything else
Text = Annotated[str, BeforeValidator(valid_text)]


def case_time(value: Any) -> Any:
    """A case time as valid text, refused when it is an ISO 8601 time outside 1900-2199.

    Other formats (``2026/1/31 08:30``, ``2026年1月31日``, epoch seconds) are read, and their range
    checked, by the same reader as ``gridmap incidents import``
    (:func:`geo.incidents.feeds.parse_timestamps`); this spares that reader's message for the
    common case and names the field.
    """
    value = valid_text(value)
    if not isinstance(value, str):
        return value
    try:
        stamp = datetime.fromisoformat(value.strip())
    except ValueError:
        return value
    if not EARLIEST_TIME.year <= stamp.year < LATEST_TIME.year:
        raise ValueError(
            f"{value.strip()[:40]!r} is outside the supported range of case times "
            f"({EARLIEST_TIME.year} to {LATEST_TIME.year - 1})"
        )
    return value


#: a case time from a request body: valid text in the supported range (see :func:`case_time`)
CaseTime = Annotated[str, BeforeValidator(case_time)]


def time_zone(value: Any) -> Any:
    """An IANA time zone name that the tz database knows (``Asia/Shanghai``, ``UTC``)."""
    value = valid_text(value)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(
            f"unknown time zone {str(value)[:60]!r}: use an IANA name such as Asia/Shanghai or UTC"
        ) from None
    return value


TimeZoneName = Annotated[str, BeforeValidator(time_zone)]

#: the statuses a grid is stored with (``GET /grids?status=``); anything else is refused
GridStatus = StrEnum("GridStatus", {status: status for status in GRID_STATUSES})


# -- errors and health -----------------------------------------------------------------------------


class Problem(Model):
    """An error (RFC 9457 problem+json): ``detail`` says what to do, ``detail_zh`` in Chinese."""

    type: str
    title: str
    status: int
    detail: str
    detail_zh: str | None = None
    hint: str | None = None
    errors: list[dict[str, Any]] | None = None
    allowed: list[str] | None = None


class Health(Model):
    status: Literal["ok"]
    project: str
    buildings: int
    communities: int
    grids: int
    published_plan: int | None
    version: str


# -- district ------------------------------------------------------------------------------------------


class Community(Model):
    community: str = Field(description="name of the community (社区)")
    number: int | None = Field(None, description="number used in grid codes")
    n_buildings: int | None = None
    households: int | None = None
    grids: int = Field(0, description="grids of the published plan")


class Occupancy(Model):
    """以房管人: counts from the household records, present where a project has records (never
    a personal field)."""

    residents: int | None = None
    rented_units: int | None = Field(None, description="units let (出租)")
    floating_residents: int | None = Field(None, description="residents of floating households")


class GridOccupancy(Occupancy):
    registered: int | None = Field(None, description="households 户籍")
    resident: int | None = Field(None, description="households 常住")
    floating: int | None = Field(None, description="households 流动")
    rented: int | None = Field(None, description="households 出租")
    vacant: int | None = Field(None, description="households 空置")
    floating_share: float | None = Field(None, description="floating residents / residents")
    contact_households: int | None = Field(None, description="联系户")
    visits_30d: int | None = Field(None, description="cadres' visits in the last 30 days")


class _GridFields(Model):
    grid_code: str = Field(description="15-digit grid code (网格编码)")
    community: str | None = None
    worker_id: str | None = None
    worker: str | None = Field(None, description="the responsible grid worker (网格员)")
    worker_phone: str | None = Field(None, description="only for staff and above")
    locked: bool | None = None
    n_buildings: int | None = None
    households: int | None = None
    area_m2: float | None = None
    diameter_m: float | None = None
    contiguous: bool | None = None
    status: str | None = None
    reason: str | None = None
    reason_zh: str | None = None


class _BuildingFields(Model):
    building_id: str
    grid_code: str | None = None
    community: str | None = None
    households: int | None = None
    name: str | None = None
    address: str | None = None
    lon: float | None = Field(None, description="a point inside the footprint (WGS84)")
    lat: float | None = None


class Grid(GridOccupancy, _GridFields):  # its own fields first, then the occupancy counts
    pass


class Building(Occupancy, _BuildingFields):
    pass


class GridDetail(Grid):
    buildings: list[Building] = []


class Worker(Model):
    worker_id: str
    name: str
    community: str
    phone: str | None = Field(None, description="only for staff and above")
    grids: int = 0


class WorkerAssignment(Model):
    assigned: int = Field(description="grids newly given a worker")
    without_worker: list[dict[str, Any]] = Field(description="grids still without one, and why")


class ListPage(Model):
    total: int = Field(description="items matching the filters")
    limit: int
    offset: int


class Grids(ListPage):
    items: list[Grid]


class Buildings(ListPage):
    items: list[Building]


class PartitionIn(Model):
    """Options of ``gridmap partition``."""

    model_config = ConfigDict(extra="forbid")

    min_size: int | None = Field(
        None, ge=1, le=MAX_GRID_SIZE, description="fewest buildings per grid"
    )
    max_size: int | None = Field(
        None, ge=1, le=MAX_GRID_SIZE, description="most buildings per grid"
    )
    max_households: int | None = Field(None, ge=1, le=1_000_000)
    communities: list[Text] | None = Field(
        None, max_length=1000, description="re-partition only these communities"
    )
    seed: int = Field(0, ge=0, le=2**31 - 1)
    publish: bool | None = Field(
        None, description="publish the new plan (default: only the district's first plan)"
    )


class PartitionResult(Model):
    plan_id: int
    published: bool
    summary: dict[str, Any]


# -- locate ------------------------------------------------------------------------------------------


class LocateResult(Model):
    """Like one row of ``gridmap locate``."""

    building_id: str | None = Field(None, description="the footprint containing the point")
    grid_code: str | None = Field(None, description="the grid containing (or nearest to) it")
    community: str | None = None
    worker: str | None = None
    distance_m: float | None = Field(None, description="to the nearest footprint (0: inside)")
    grid_distance_m: float | None = Field(None, description="to the grid (0: inside)")
    status: Literal["in_building", "in_grid", "outside", "invalid"]
    reason: str = Field("", description="why a point is invalid")
    id: str | None = Field(None, description="the id given with the point, if any")
    plan_id: int | None = None


class PointIn(Model):
    lon: float | str | None = Field(description="longitude (or x in metres for an EPSG crs)")
    lat: float | str | None = Field(description="latitude (or y)")
    id: Text | int | None = Field(None, description="your id, echoed back")


class LocateBatch(Model):
    crs: Text = Field("wgs84", max_length=40, description="wgs84, gcj02, bd09, cgcs2000, EPSG:n")
    points: list[PointIn]


class LocateBatchResult(Model):
    plan_id: int
    counts: dict[str, int]
    results: list[LocateResult]


# -- incidents -----------------------------------------------------------------------------------------


class IncidentIn(Model):
    """One case from another system (12345, 数字城管): checked like ``gridmap incidents import``."""

    model_config = ConfigDict(extra="forbid")

    id: Text | int = Field(description="the case id in its source system (idempotency key)")
    category: Text | None = Field(None, max_length=200, description="code or name (国标 or local)")
    reported_at: CaseTime | None = Field(
        None, max_length=60, description="time reported (ISO 8601, 1900 to 2199)"
    )
    description: Text | None = Field(None, max_length=10_000)
    address: Text | None = Field(None, max_length=500)
    lon: float | None = None
    lat: float | None = None


class IncidentBatch(Model):
    model_config = ConfigDict(extra="forbid")

    source: Text = Field(
        min_length=1, max_length=60, description="system name: 12345, 数字城管 ..."
    )
    crs: Text = Field("wgs84", max_length=40, description="wgs84, gcj02, bd09, cgcs2000, EPSG:n")
    incidents: list[IncidentIn] = Field(description="one or more cases")


class IncidentSingle(IncidentIn):
    """One case with its source (the same as a batch of one)."""

    source: Text = Field(
        min_length=1, max_length=60, description="system name: 12345, 数字城管 ..."
    )
    crs: Text = Field("wgs84", max_length=40)


class IncidentImport(Model):
    read: int = Field(description="cases in the request")
    added: int = Field(description="new cases stored")
    already_present: int = Field(description="cases stored before (same source and id)")
    summary: dict[str, Any] = Field(
        description="the import's counts (located, unknown categories...)"
    )


class Incident(Model):
    incident_id: str
    source: str | None = None
    source_id: str | None = None
    category_code: str | None = None
    category_name: str | None = None
    class_code: str | None = None
    category_known: bool | None = None
    category_raw: str | None = None
    status: str | None = None
    reported_at: str | None = None
    registered_at: str | None = None
    closed_at: str | None = None
    deadline: str | None = None
    description: str | None = None
    address: str | None = None
    lon: float | None = None
    lat: float | None = None
    located: bool | None = None
    unlocated_reason: str | None = None
    fallback_point: bool | None = None
    grid_code: str | None = None
    community: str | None = None
    worker_id: str | None = None
    worker: str | None = None
    overdue: bool | None = None


class IncidentEvent(Model):
    from_status: str | None = None
    to_status: str
    actor: str | None = None
    at: str | None = None
    note: str | None = None


class IncidentDetail(Incident):
    events: list[IncidentEvent] = []
    allowed_next: list[str] = []


class Incidents(ListPage):
    items: list[Incident]


class IncidentPatch(Model):
    model_config = ConfigDict(extra="forbid")

    status: Text = Field(
        max_length=20, description="next step: registered, dispatched, handled, verified, closed..."
    )
    note: Text = Field("", max_length=2_000)


class IncidentStatsRow(Model):
    key: str = Field(description="grid code, community or worker")
    reported: int
    registered: int
    closed: int
    closed_on_time: int
    registration_rate: float | None = None
    closure_rate: float | None = None
    on_time_rate: float | None = None
    overdue: int
    median_handling_hours: float | None = None
    by_class: dict[str, int] = Field(description="cases per catalogue class (06..10)")


class IncidentStats(Model):
    by: str
    since: str | None
    until: str | None
    rows: list[IncidentStatsRow]


# -- tokens ----------------------------------------------------------------------------------------------


class TokenIn(Model):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=100)
    role: Literal["viewer", "staff", "planner", "admin"]
    worker: Text | None = Field(
        None, max_length=100, description="bind a staff token to this grid worker (id or name)"
    )
    division: str | None = Field(
        None,
        max_length=12,
        description="a county, city or province code: the token's role holds in every street "
        "under it (PostGIS; made at the service's root by the database's own administrator)",
    )


class TokenCreated(Model):
    name: str
    role: str
    token: str = Field(description="shown this once; only its hash is kept")


class TokenInfo(Model):
    name: str
    role: str
    worker: str | None = None
    division: str | None = None
    created_at: str
    revoked_at: str | None = None


# -- OGC API - Features ------------------------------------------------------------------------------------


class Link(Model):
    href: str
    rel: str
    type: str | None = None
    title: str | None = None


class LandingPage(Model):
    title: str
    description: str
    links: list[Link]


class Conformance(Model):
    conformsTo: list[str]  # noqa: N815 - the OGC field name


class SpatialExtent(Model):
    bbox: list[list[float]]
    crs: str = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


class Extent(Model):
    spatial: SpatialExtent


class Collection(Model):
    id: str
    title: str
    description: str
    itemType: str = "feature"  # noqa: N815
    crs: list[str] = ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"]
    extent: Extent | None = None
    links: list[Link]


class Collections(Model):
    collections: list[Collection]
    links: list[Link]


class Feature(Model):
    type: Literal["Feature"] = "Feature"
    id: str | int
    geometry: dict[str, Any] | None
    properties: dict[str, Any]
    links: list[Link] | None = None


class FeatureCollection(Model):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[Feature]
    links: list[Link]
    numberMatched: int  # noqa: N815
    numberReturned: int  # noqa: N815
    timeStamp: str  # noqa: N815
