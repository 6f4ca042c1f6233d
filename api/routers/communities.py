"""``/communities``: the district's communities (社区) with their counts."""

from __future__ import annotations

from fastapi import APIRouter, Path

from api.deps import StateDep, Viewer
from api.models import Community, records
from api.routers._frames import problem_responses
from geo.errors import NotFound

router = APIRouter(prefix="/communities", tags=["communities"])
ERRORS = problem_responses(401, 403, 404)


def _all(state) -> list[Community]:
    communities = state.layer("communities")
    try:
        per_grid = state.layer("grids")["community"].value_counts()
    except NotFound:
        per_grid = {}
    return [
        Community(**row, grids=int(per_grid.get(row["community"], 0)))
        for row in records(communities)
    ]


@router.get("", response_model=list[Community], responses=ERRORS, summary="List communities")
def list_communities(state: StateDep, _: Viewer) -> list[Community]:
    return _all(state)


@router.get(
    # ":path": names may hold "/" (a 村/居 pair, 一村/二村), sent as %2F or a plain slash
    "/{community:path}",
    response_model=Community,
    responses=ERRORS,
    summary="One community by name",
)
def get_community(state: StateDep, _: Viewer, community: str = Path(max_length=200)) -> Community:
    for item in _all(state):
        if item.community == community:
            return item
    raise NotFound(
        f"no community {community!r}; GET /communities lists them", zh=f"没有社区 {community}"
    )
