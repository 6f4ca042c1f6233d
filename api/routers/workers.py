"""``/workers``: the grid workers (网格员); phones for staff and above; roster changes for admins."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field

from api.deps import Admin, BodyDep, StateDep, Viewer
from api.models import Model, Worker, WorkerAssignment, plain, records
from api.routers._frames import problem_responses
from geo.errors import InputError, NotFound
from geo.people import roster as rosters
from geo.people.workers import parse_roster
from geo.usecases import staffing

router = APIRouter(prefix="/workers", tags=["workers"])
ERRORS = problem_responses(401, 403, 404, 409, 413, 422)


class RosterReplaced(Model):
    """The new roster, who left it, and the published grids it leaves without a worker."""

    workers: list[Worker]
    removed: list[str] = Field(description="worker ids no longer on the roster")
    released: int = Field(description="grid rows and open cases taken off removed workers")
    without_worker: list[dict[str, Any]] = Field(
        description="published grids without a worker (no_worker violations): POST /workers/assign"
    )


@router.get("", response_model=list[Worker], responses=ERRORS, summary="List the workers")
def list_workers(state: StateDep, principal: Viewer) -> list[Worker]:
    team = state.roster()
    try:
        per_worker = state.layer("grids")["worker_id"].value_counts()
    except NotFound:  # nothing published: nobody holds grids
        per_worker = {}
    rows = records(team)
    for row in rows:
        row["grids"] = int(per_worker.get(row["worker_id"], 0))
        if not principal.can("staff"):
            row["phone"] = None
    return [Worker(**row) for row in rows]


@router.put(
    "",
    response_model=RosterReplaced,
    responses=ERRORS,
    summary="Replace the roster (CSV: 工号,姓名,手机,社区)",
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
)
def put_workers(
    state: StateDep,
    principal: Admin,
    body: BodyDep,
    replace: Annotated[
        bool,
        Query(
            description="accept a roster that removes workers or leaves published grids without "
            "one (else 409 with the difference: removed, moved, grids_without_worker)"
        ),
    ] = False,
) -> RosterReplaced:
    """Replace the roster; removed workers leave every grid and open case in the same step."""
    if not body.strip():
        raise InputError(
            "send the roster as CSV text: 工号,姓名,手机,社区 (worker id, name, phone, community)",
            zh="请以 CSV 发送花名册：工号,姓名,手机,社区",
        )
    communities = state.layer("communities")["community"]
    roster = parse_roster(body, communities=communities)
    change = rosters.import_roster(state.store, roster, author=principal.name, replace=replace)
    return RosterReplaced(
        workers=[Worker(**{k: plain(v) for k, v in row.items()}) for row in records(roster)],
        removed=change.removed,
        released=change.released,
        without_worker=records(change.without_worker),
    )


@router.post(
    "/assign",
    response_model=WorkerAssignment,
    responses=ERRORS,
    summary="Give every grid without a worker one from its community",
)
def assign_workers(state: StateDep, principal: Admin) -> WorkerAssignment:
    assigned, missing = staffing.fill_workers(state.store, author=principal.name)
    return WorkerAssignment(
        assigned=assigned, without_worker=records(missing.reset_index(names="grid_code"))
    )
