"""``/maps/*.html``: the district, a community or a grid as an interactive page (like ``gridmap map``).

Viewers and above; with the ``public_maps`` setting the maps are served without a token, never
with phone numbers. Pages are cached per project fingerprint and options.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse

from api.auth import Principal
from api.deps import MapReader, StateDep, TimeRangeDep
from api.models import Problem
from api.state import ProjectState
from geo.errors import Forbidden
from maps.project import MapRequest, project_map
from maps.render import render_html

router = APIRouter(prefix="/maps", tags=["maps"])
ERRORS = {
    200: {"content": {"text/html": {}}},
    401: {"model": Problem},
    403: {"model": Problem},
    404: {"model": Problem},
    422: {"model": Problem},
}
Basemap = Annotated[
    Literal["osm", "tianditu", "tianditu-vec", "tianditu-img", "amap", "none"],
    Query(description="background tiles"),
]
Lang = Annotated[Literal["zh", "en"], Query(description="labels")]
Offline = Annotated[bool, Query(description="inline every script: the page works without internet")]
Contacts = Annotated[bool, Query(description="show workers' phone numbers (staff and above)")]


def _page(
    state: ProjectState,
    principal: Principal,
    *,
    community: str | None = None,
    grid: str | None = None,
    times,
    basemap: str,
    lang: str,
    offline: bool,
    include_contacts: bool,
) -> HTMLResponse:
    if include_contacts and not principal.can("staff"):
        raise Forbidden(
            "phone numbers on maps need the role staff or above",
            zh="地图显示电话需要 staff 及以上角色",
        )
    request = MapRequest(
        community=community,
        grid=grid,
        since=times.since,
        until=times.until,
        basemap=basemap,
        lang=lang,
        offline=offline,
        include_contacts=include_contacts,
    )
    key = f"map:{request!r}"
    html = state.cached(
        key, lambda: render_html(project_map(state.store, request), offline=offline)
    )
    return HTMLResponse(html)


@router.get("/district.html", response_class=HTMLResponse, responses=ERRORS, summary="District map")
def district(
    state: StateDep,
    principal: MapReader,
    times: TimeRangeDep,
    basemap: Basemap = "osm",
    lang: Lang = "zh",
    offline: Offline = False,
    include_contacts: Contacts = False,
) -> HTMLResponse:
    return _page(
        state,
        principal,
        times=times,
        basemap=basemap,
        lang=lang,
        offline=offline,
        include_contacts=include_contacts,
    )


@router.get(
    "/communities/{community}.html",
    response_class=HTMLResponse,
    responses=ERRORS,
    summary="Community map",
)
def community(
    state: StateDep,
    principal: MapReader,
    times: TimeRangeDep,
    community: str = Path(max_length=200),
    basemap: Basemap = "osm",
    lang: Lang = "zh",
    offline: Offline = False,
    include_contacts: Contacts = False,
) -> HTMLResponse:
    return _page(
        state,
        principal,
        community=community,
        times=times,
        basemap=basemap,
        lang=lang,
        offline=offline,
        include_contacts=include_contacts,
    )


@router.get(
    "/grids/{grid_code}.html", response_class=HTMLResponse, responses=ERRORS, summary="Grid map"
)
def grid(
    state: StateDep,
    principal: MapReader,
    times: TimeRangeDep,
    grid_code: str = Path(max_length=40),
    basemap: Basemap = "osm",
    lang: Lang = "zh",
    offline: Offline = False,
    include_contacts: Contacts = False,
) -> HTMLResponse:
    return _page(
        state,
        principal,
        grid=grid_code,
        times=times,
        basemap=basemap,
        lang=lang,
        offline=offline,
        include_contacts=include_contacts,
    )
