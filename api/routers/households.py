"""``/households``: 一户一档 over HTTP, privacy first (issue #20).

The routes only translate: who calls (the token's role and, for staff, the grid worker it is
bound to) becomes a :class:`geo.people.access.Viewer`, and :mod:`geo.people` decides what that
viewer may see. A staff token bound to a worker reads the households of that worker's grids; an
unbound staff token, a planner and a viewer see counts only (``/households/occupancy``); an
admin reads all. A household outside the caller's grids answers exactly as a household that does
not exist (404), so no answer says that it exists.

Searches are ``POST`` with a JSON body: names, ID numbers and phones never travel in a URL,
where access logs and proxies would keep them. Every household a read returns is one audit row
with the ``purpose``; answers are masked unless ``unmask`` (itself audited). The household key
comes from ``GRIDMAP_HOUSEHOLD_KEY`` or ``GRIDMAP_HOUSEHOLD_KEY_FILE`` in the service's
environment, never from the project file.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import Field

from api.auth import Principal
from api.deps import Admin, Staff, StoreDep, Viewer
from api.models import Model, Text, records
from api.routers._frames import problem_responses
from geo.errors import InputError, NotFound
from geo.people import access, occupancy, privacy, visits
from geo.storage.store import Store

router = APIRouter(prefix="/households", tags=["households"])
ERRORS = problem_responses(401, 403, 404, 409, 422)

HouseholdId = Annotated[str, Path(min_length=1, max_length=200, description="户编号 household id")]
Purpose = Annotated[
    str,
    Query(
        min_length=1, max_length=500, description="查询目的 why you read (written to the audit log)"
    ),
]
Unmask = Annotated[bool, Query(description="show names, ID numbers and phones unmasked (audited)")]


async def household_viewer(principal: Staff) -> access.Viewer:
    """The caller as :mod:`geo.people.access` sees them (staff: the worker their token names)."""
    return _as_viewer(principal)


async def counts_viewer(principal: Viewer) -> access.Viewer:
    return _as_viewer(principal)


def _as_viewer(principal: Principal) -> access.Viewer:
    return access.Viewer.of_token(principal.role, principal.name, principal.worker)


async def household_keys() -> privacy.Keyring:
    """The household key from the service's environment (a clear 422 when it has none)."""
    return privacy.load_keyring()


ReaderDep = Annotated[access.Viewer, Depends(household_viewer)]
CountsDep = Annotated[access.Viewer, Depends(counts_viewer)]
KeysDep = Annotated[privacy.Keyring, Depends(household_keys)]


# -- answers -----------------------------------------------------------------------------------------


class Resident(Model):
    name: str
    id_number: str
    phone: str
    relation: str
    tags: str


class Visit(Model):
    visited_on: str
    cadre: str
    asked: str
    done: str
    follow_up: str


class Household(Model):
    """One household with where it is and who answers for it; personal fields masked by default."""

    household_id: str
    building_id: str
    unit: str
    room: str
    household_type: str
    size: int
    tags: str
    head: str
    phone: str
    cadre: str | None = None
    grid_code: str | None = None
    community: str | None = None
    worker: str | None = None
    lon: float | None = Field(None, description="a WGS84 point inside the household's building")
    lat: float | None = None
    residents: list[Resident] = Field(default_factory=list)
    visits: list[Visit] = Field(default_factory=list)


class FindRequest(Model):
    """What to look for (any combination narrows it) and why."""

    purpose: Text = Field(min_length=1, max_length=500, description="查询目的, audited")
    name: Text = Field("", max_length=50)
    phone: Text = Field("", max_length=30)
    id_number: Text = Field("", max_length=30)
    id_tail: Text = Field("", max_length=18, description="the last digits (at least 4)")
    address: Text = Field("", max_length=200, description="小区 + 楼号 (+ 单元 + 室)")
    household_id: Text = Field("", max_length=200)
    unmask: bool = False
    limit: int = Field(20, ge=1, le=200)


class VisitRequest(Model):
    cadre: Text = Field(min_length=1, max_length=100)
    visited_on: dt.date = Field(default_factory=dt.date.today)
    asked: Text = Field("", max_length=2000)
    done: Text = Field("", max_length=2000)
    follow_up: Text = Field("", max_length=2000)


class VisitRecorded(Model):
    visit_id: int
    household_id: str


class AssignRequest(Model):
    household_ids: list[Annotated[Text, Field(min_length=1, max_length=200)]] = Field(
        min_length=1, max_length=200
    )
    cadre: Text = Field(min_length=1, max_length=100)


class Assigned(Model):
    cadre: str
    households: list[str]
    holds: int = Field(description="households the cadre now answers for")
    warning: str = Field("", description="set beyond 3 households per cadre")


class DueHousehold(Model):
    cadre: str
    household_id: str
    building_id: str
    grid_code: str | None = None
    community: str | None = None
    last_visit: str | None = None
    days_since: int | None = None


class Purged(Model):
    household_id: str
    removed: dict[str, int] = Field(description="rows removed per table")


class Occupancy(Model):
    """以房管人 per grid or building: counts only, no personal field."""

    grid_code: str | None = None
    building_id: str | None = None
    community: str | None = None
    households: int = 0
    registered: int = 0
    resident: int = 0
    floating: int = 0
    rented: int = 0
    vacant: int = 0
    residents: int = 0
    rented_units: int = 0
    floating_residents: int = 0
    floating_share: float | None = None
    contact_households: int = 0
    visits_30d: int = 0


# -- routes ------------------------------------------------------------------------------------------


@router.post(
    "/find",
    response_model=list[Household],
    responses=ERRORS,
    summary="Find households by name, phone, ID number (or its last digits) or address",
)
def find_households(
    store: StoreDep, viewer: ReaderDep, keys: KeysDep, request: FindRequest
) -> list[Household]:
    """Within the caller's grids; masked unless ``unmask``; one audit row per household."""
    query = access.Query(
        name=request.name,
        phone=request.phone,
        id_number=request.id_number,
        id_tail=request.id_tail,
        address=request.address,
        household_id=request.household_id,
    )
    found = access.find(
        store,
        keys,
        viewer,
        query,
        purpose=request.purpose,
        unmask=request.unmask,
        limit=request.limit,
    )
    return [Household(**answer) for answer in found]


@router.get(
    "/occupancy",
    response_model=list[Occupancy],
    responses=ERRORS,
    summary="以房管人: households by type, rented units, floating share per grid or building",
)
def household_occupancy(
    store: StoreDep,
    viewer: CountsDep,
    level: Annotated[Literal["grid", "building"], Query()] = "grid",
) -> list[Occupancy]:
    """Counts every role may read: nothing is decrypted to make them."""
    frame = (
        occupancy.grid_occupancy(store) if level == "grid" else occupancy.building_occupancy(store)
    )
    return [Occupancy(**row) for row in records(frame.reset_index())]


@router.get(
    "/due",
    response_model=list[DueHousehold],
    responses=ERRORS,
    summary="Per cadre, the contact households not visited within `days`",
)
def households_due(
    store: StoreDep,
    viewer: ReaderDep,
    days: Annotated[int, Query(ge=1, le=3650)] = 30,
) -> list[DueHousehold]:
    return [DueHousehold(**row) for row in records(visits.due(store, viewer, days=days))]


@router.post(
    "/cadres",
    response_model=Assigned,
    responses=ERRORS,
    summary="Make a cadre answer for households (联系户; warns beyond 3 per cadre)",
)
def assign_cadre(store: StoreDep, viewer: ReaderDep, request: AssignRequest) -> Assigned:
    done = visits.assign(store, viewer, list(request.household_ids), request.cadre)
    return Assigned(**vars(done))


@router.get(
    "/{household_id}",
    response_model=Household,
    responses=ERRORS,
    summary="One household with its residents and visits (audited)",
)
def household_detail(
    store: StoreDep,
    viewer: ReaderDep,
    keys: KeysDep,
    household_id: HouseholdId,
    purpose: Purpose,
    unmask: Unmask = False,
) -> Household:
    return Household(**_one(store, keys, viewer, household_id, purpose=purpose, unmask=unmask))


@router.get(
    "/{household_id}/visits",
    response_model=list[Visit],
    responses=ERRORS,
    summary="A household's visits, newest first (their notes are personal: audited)",
)
def list_visits(
    store: StoreDep, viewer: ReaderDep, keys: KeysDep, household_id: HouseholdId, purpose: Purpose
) -> list[Visit]:
    answer = _one(store, keys, viewer, household_id, purpose=purpose, unmask=False)
    return [Visit(**visit) for visit in answer["visits"]]


@router.post(
    "/{household_id}/visits",
    response_model=VisitRecorded,
    status_code=201,
    responses=ERRORS,
    summary="Record a home visit (notes are encrypted like names)",
)
def record_visit(
    store: StoreDep,
    viewer: ReaderDep,
    keys: KeysDep,
    household_id: HouseholdId,
    request: VisitRequest,
) -> VisitRecorded:
    visit_id = visits.record_visit(
        store,
        keys,
        viewer,
        household_id,
        cadre=request.cadre,
        visited_on=request.visited_on,
        notes=(request.asked, request.done, request.follow_up),
    )
    return VisitRecorded(visit_id=visit_id, household_id=household_id)


@router.delete(
    "/{household_id}",
    response_model=Purged,
    responses=ERRORS,
    summary="Purge a household and its residents everywhere (admin; moved away)",
)
def purge_household(
    store: StoreDep,
    principal: Admin,
    household_id: HouseholdId,
    reason: Annotated[str, Query(min_length=1, max_length=500, description="why (audited)")],
) -> Purged:
    removed = access.purge(store, _as_viewer(principal), household_id, reason=reason)
    return Purged(household_id=household_id, removed=removed)


def _one(
    store: Store,
    keys: privacy.Keyring,
    viewer: access.Viewer,
    household_id: str,
    *,
    purpose: str,
    unmask: bool,
) -> dict[str, Any]:
    """The household ``household_id`` within ``viewer``'s scope (404 outside it, as if absent)."""
    if not household_id.strip():
        raise InputError("give a household id", zh="请给出户编号")
    query = access.Query(household_id=household_id)
    found = access.find(store, keys, viewer, query, purpose=purpose, unmask=unmask, limit=1)
    if not found:
        raise NotFound(
            f"no household {household_id} in your scope", zh=f"您的范围内没有住户 {household_id}"
        )
    return found[0]
