"""``/grids``: the published plan's grids, their workers and buildings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import BBoxDep, PageDep, Planner, StateDep, Viewer
from api.models import (
    Building,
    GridDetail,
    Grids,
    GridStatus,
    PartitionIn,
    PartitionResult,
    Problem,
    plain,
    records,
)
from api.routers._frames import in_bbox, problem_responses, served_layer, with_contacts
from api.routers.buildings import building_records
from geo.errors import InputError, NotFound
from geo.usecases.partition import PartitionOptions, partition_project

router = APIRouter(prefix="/grids", tags=["grids"])
ERRORS = problem_responses(401, 403, 404, 422)
Text = Annotated[str | None, Query(max_length=200)]


@router.get("", response_model=Grids, responses=ERRORS, summary="List the published grids")
def list_grids(
    state: StateDep,
    principal: Viewer,
    page: PageDep,
    bbox: BBoxDep,
    community: Text = None,
    worker: Annotated[str | None, Query(max_length=200, description="worker id")] = None,
    status: Annotated[
        GridStatus | None, Query(description="the stored status: ok, undersized, oversized ...")
    ] = None,
) -> Grids:
    grids = served_layer(state, "grids")
    chosen = grids.iloc[in_bbox(grids, bbox)]
    wanted = (("community", community), ("worker_id", worker), ("status", status and status.value))
    for column, value in wanted:
        if value is not None:
            chosen = chosen[chosen[column] == value]
    window = with_contacts(chosen.iloc[page.offset : page.offset + page.limit], state, principal)
    return Grids(
        total=len(chosen),
        limit=page.limit,
        offset=page.offset,
        items=records(window),
    )


@router.get("/{grid_code}", response_model=GridDetail, responses=ERRORS, summary="One grid")
def get_grid(
    state: StateDep, principal: Viewer, grid_code: str = Path(max_length=40)
) -> GridDetail:
    grids = served_layer(state, "grids")
    found = grids[grids["grid_code"] == grid_code]
    if found.empty:
        raise NotFound(f"no grid {grid_code!r} in the published plan", zh=f"没有网格 {grid_code}")
    row = records(with_contacts(found, state, principal))[0]
    buildings = served_layer(state, "buildings")
    members = buildings[buildings["grid_code"] == grid_code]
    return GridDetail(**row, buildings=[Building(**b) for b in building_records(members)])


@router.post(
    "/partition",
    response_model=PartitionResult,
    responses={**ERRORS, 409: {"model": Problem}},
    summary="Partition the district (or some communities) into a new plan",
)
def partition(state: StateDep, principal: Planner, options: PartitionIn) -> PartitionResult:
    """Like ``gridmap partition``: a new plan version, published when asked (or the first)."""
    if (
        options.min_size is not None
        and options.max_size is not None
        and options.min_size > options.max_size
    ):
        raise InputError(
            f"min_size {options.min_size} is above max_size {options.max_size}",
            zh="最少建筑数不能大于最多建筑数",
        )
    outcome = partition_project(
        state.store,
        options=PartitionOptions(
            min_size=options.min_size,
            max_size=options.max_size,
            max_households=options.max_households,
            communities=options.communities,
            seed=options.seed,
        ),
        publish=options.publish,
        author=principal.name,
    )
    return PartitionResult(
        plan_id=outcome.plan_id,
        published=outcome.published,
        summary=plain(outcome.summary),
    )
