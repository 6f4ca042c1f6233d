"""``/grids``: the published plan's grids, their workers and buildings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import BBoxDep, PageDep, StateDep, Viewer
from api.models import Building, GridDetail, Grids, Problem, records
from api.routers._frames import in_bbox, with_contacts
from api.routers.buildings import building_records
from geo.errors import NotFound

router = APIRouter(prefix="/grids", tags=["grids"])
ERRORS = {
    401: {"model": Problem},
    403: {"model": Problem},
    404: {"model": Problem},
    422: {"model": Problem},
}
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
        str | None, Query(max_length=40, description="ok, too_small, too_large, not_contiguous")
    ] = None,
) -> Grids:
    grids = state.layer("grids")
    chosen = grids.iloc[in_bbox(grids, bbox)]
    for column, value in (("community", community), ("worker_id", worker), ("status", status)):
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
    grids = state.layer("grids")
    found = grids[grids["grid_code"] == grid_code]
    if found.empty:
        raise NotFound(f"no grid {grid_code!r} in the published plan", zh=f"没有网格 {grid_code}")
    row = records(with_contacts(found, state, principal))[0]
    buildings = state.layer("buildings")
    members = buildings[buildings["grid_code"] == grid_code]
    return GridDetail(**row, buildings=[Building(**b) for b in building_records(members)])
