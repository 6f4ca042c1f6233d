"""``/buildings``: footprints with their community and grid in the published plan."""

from __future__ import annotations

from typing import Annotated, Any

import geopandas as gpd
from fastapi import APIRouter, Path, Query

from api.deps import BBoxDep, PageDep, StateDep, Viewer
from api.models import Building, Buildings, records
from api.routers._frames import in_bbox, problem_responses, served_layer
from geo.errors import NotFound
from geo.locate.engine import find_by_address
from geo.people.occupancy import BUILDING_FACTS

router = APIRouter(prefix="/buildings", tags=["buildings"])
ERRORS = problem_responses(401, 403, 404, 422)
COLUMNS = [
    "building_id",
    "grid_code",
    "community",
    "households",
    "name",
    "address",
    *BUILDING_FACTS[1:],  # residents, rented units, floating residents: where records exist
]


def building_records(frame: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    """Rows as :class:`Building` dicts with a point inside each footprint."""
    rows = records(frame, COLUMNS)
    points = frame.geometry.representative_point()
    for row, x, y in zip(rows, points.x, points.y, strict=True):
        row["lon"], row["lat"] = round(float(x), 7), round(float(y), 7)
    return rows


@router.get("", response_model=Buildings, responses=ERRORS, summary="List buildings")
def list_buildings(
    state: StateDep,
    _: Viewer,
    page: PageDep,
    bbox: BBoxDep,
    community: Annotated[str | None, Query(max_length=200)] = None,
    grid: Annotated[str | None, Query(max_length=40, description="grid code")] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="find by name or address (fuzzy)")
    ] = None,
) -> Buildings:
    buildings = served_layer(state, "buildings")
    chosen = buildings.iloc[in_bbox(buildings, bbox)]
    if community is not None:
        chosen = chosen[chosen["community"] == community]
    if grid is not None:
        chosen = chosen[chosen["grid_code"] == grid]
    if q is not None and q.strip() and len(chosen):  # no buildings left: nothing to search
        found = find_by_address(chosen, q, limit=page.offset + page.limit)
        rank = dict(zip(found["building_id"], range(len(found)), strict=True))
        chosen = chosen[chosen["building_id"].isin(rank)]
        chosen = chosen.iloc[chosen["building_id"].map(rank).argsort()]
    window = chosen.iloc[page.offset : page.offset + page.limit]
    return Buildings(
        total=len(chosen), limit=page.limit, offset=page.offset, items=building_records(window)
    )


@router.get("/{building_id}", response_model=Building, responses=ERRORS, summary="One building")
def get_building(state: StateDep, _: Viewer, building_id: str = Path(max_length=100)) -> Building:
    buildings = served_layer(state, "buildings")
    found = buildings[buildings["building_id"] == building_id]
    if found.empty:
        raise NotFound(f"no building {building_id!r}", zh=f"没有建筑 {building_id}")
    return Building(**building_records(found)[0])
