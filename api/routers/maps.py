"""``/maps/*.html``: the district, a community or a grid as an interactive page (like ``gridmap map``).

Viewers and above; with the ``public_maps`` setting the maps are served without a token, never
with phone numbers. Pages are cached per project fingerprint and options.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse

from api.deps import MapReader, StateDep, TimeRangeDep
from api.routers._frames import problem_responses
from api.state import ProjectState
from api.static import ASSETS_URL
from geo.errors import Forbidden
from maps.project import MapRequest, project_map
from maps.render import render_html

router = APIRouter(prefix="/maps", tags=["maps"])
FEATURES_URL = "/ogc/collections/buildings/items"
ERRORS = {200: {"content": {"text/html": {}}}, **problem_responses(401, 403, 404, 422)}
Basemap = Annotated[
    Literal["osm", "tianditu", "tianditu-vec", "tianditu-img", "amap", "none"],
    Query(description="background tiles"),
]
Lang = Annotated[Literal["zh", "en"], Query(description="labels")]
Offline = Annotated[bool, Query(description="inline every script: the page works without internet")]
Contacts = Annotated[bool, Query(description="show workers' phone numbers (staff and above)")]


async def map_request(
    principal: MapReader,
    times: TimeRangeDep,
    basemap: Basemap = "osm",
    lang: Lang = "zh",
    offline: Offline = False,
    include_contacts: Contacts = False,
) -> MapRequest:
    """The query options the three map pages share, as a district-wide request."""
    if include_contacts and not principal.can("staff"):
        raise Forbidden(
            "phone numbers on maps need the role staff or above",
            zh="地图显示电话需要 staff 及以上角色",
        )
    return MapRequest(
        since=times.since,
        until=times.until,
        basemap=basemap,
        lang=lang,
        offline=offline,
        include_contacts=include_contacts,
    )


MapRequestDep = Annotated[MapRequest, Depends(map_request)]


def _page(state: ProjectState, request: MapRequest) -> HTMLResponse:
    buildings = state.cached("count:buildings", lambda: state.store.count("buildings"))
    if buildings > state.settings.max_embedded_buildings and not request.offline:
        # a city-sized district: the page fetches the footprints in view from the OGC API
        request = replace(
            request,
            features_url=FEATURES_URL,
            max_buildings=state.settings.max_embedded_buildings,
        )
    html = state.cached(
        f"map:{request!r}",
        lambda: render_html(
            project_map(state.store, request), offline=request.offline, assets_url=ASSETS_URL
        ),
    )
    return HTMLResponse(html)


@router.get("/district.html", response_class=HTMLResponse, responses=ERRORS, summary="District map")
def district(state: StateDep, request: MapRequestDep) -> HTMLResponse:
    return _page(state, request)


@router.get(
    "/communities/{community}.html",
    response_class=HTMLResponse,
    responses=ERRORS,
    summary="Community map",
)
def community(
    state: StateDep, request: MapRequestDep, community: str = Path(max_length=200)
) -> HTMLResponse:
    return _page(state, replace(request, community=community))


@router.get(
    "/grids/{grid_code}.html", response_class=HTMLResponse, responses=ERRORS, summary="Grid map"
)
def grid(
    state: StateDep, request: MapRequestDep, grid_code: str = Path(max_length=40)
) -> HTMLResponse:
    return _page(state, replace(request, grid=grid_code))
