"""``/workers``: the grid workers (网格员); phones for staff and above; roster changes for admins."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Admin, BodyDep, StateDep, Viewer
from api.models import Worker, WorkerAssignment, plain, records
from api.routers._frames import problem_responses
from geo import plans
from geo.errors import InputError, NotFound
from geo.workers import parse_roster

router = APIRouter(prefix="/workers", tags=["workers"])
ERRORS = problem_responses(401, 403, 404, 413, 422)


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
    response_model=list[Worker],
    responses=ERRORS,
    summary="Replace the roster (CSV: 工号,姓名,手机,社区)",
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
)
def put_workers(state: StateDep, principal: Admin, body: BodyDep) -> list[Worker]:
    if not body.strip():
        raise InputError(
            "send the roster as CSV text: 工号,姓名,手机,社区 (worker id, name, phone, community)",
            zh="请以 CSV 发送花名册：工号,姓名,手机,社区",
        )
    communities = state.layer("communities")["community"]
    roster = parse_roster(body, communities=communities)
    plans.import_roster(state.store, roster, author=principal.name)
    return [Worker(**{k: plain(v) for k, v in row.items()}) for row in records(roster)]


@router.post(
    "/assign",
    response_model=WorkerAssignment,
    responses=ERRORS,
    summary="Give every grid without a worker one from its community",
)
def assign_workers(state: StateDep, principal: Admin) -> WorkerAssignment:
    assigned, missing = plans.fill_workers(state.store, author=principal.name)
    return WorkerAssignment(
        assigned=assigned, without_worker=records(missing.reset_index(names="grid_code"))
    )
