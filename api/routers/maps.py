"""``/maps/*.html``: the district, a community or a grid as an interactive page (like ``gridmap map``).

Viewers and above; with the ``public_maps`` setting the maps are served without a token, never
with phone numbers. Pages are cached per project fingerprint and options.

Maps show whole days (Beijing time): ``since`` is moved back to the start of its day and
``until`` on to the end of its day, and at most :data:`MAP_PAGES` variants stay cached, so that
a client sending a new ``since`` to the second cannot force a new render at will nor push the
locate index out of the cache.

A district too large to embed its buildings has the page fetch the footprints in view from
``/maps/buildings.geojson``: guarded like the page itself (so public mode covers everything the
public page reads) and holding only the columns an embedded map shows, never contacts.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Annotated, Literal

import geopandas as gpd
import pandas as pd
import shapely
from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse, Response

from api.deps import BBoxDep, MapReader, PageDep, RootPathDep, StateDep, TimeRangeDep
from api.mapping import project_map
from api.models import plain
from api.routers._frames import in_bbox, problem_responses
from api.state import ProjectState
from api.static import ASSETS_URL
from geo.errors import Forbidden, InputError, NotFound
from geo.people import occupancy
from geo.people.occupancy import BUILDING_FACTS
from maps.project import MapRequest
from maps.render import render_html
from maps.tiles import is_url, read_tile

router = APIRouter(prefix="/maps", tags=["maps"])
FEATURES_URL = "/maps/buildings.geojson"
#: what a map shows of a building (as embedded by maps.prepare); source fields stay out
BUILDING_COLUMNS = (
    "building_id",
    "community",
    "households",
    "grid_code",
    "name",
    "address",
    *BUILDING_FACTS[1:],  # residents, rented units, floating residents: counts (一户一档)
)
ERRORS = {200: {"content": {"text/html": {}}}, **problem_responses(401, 403, 404, 422)}
GEOJSON_ERRORS = {200: {"content": {"application/geo+json": {}}}, **problem_responses(401, 422)}
Basemap = Annotated[
    Literal["osm", "tianditu", "tianditu-vec", "tianditu-img", "amap", "tiles", "none"],
    Query(description="background tiles (tiles: the project's basemap_tiles setting)"),
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
        since=_whole_day(times.since, end=False),
        until=_whole_day(times.until, end=True),
        basemap=basemap,
        lang=lang,
        offline=offline,
        include_contacts=include_contacts,
        include_case_text=principal.can("staff"),  # as GET /incidents: staff and above
        served=True,
    )


MapRequestDep = Annotated[MapRequest, Depends(map_request)]
#: map pages kept in the cache (each variant of options is one)
MAP_PAGES = 16


def _whole_day(moment: pd.Timestamp | None, *, end: bool) -> pd.Timestamp | None:
    """The Beijing midnight starting ``moment``'s day, or (``end``) ending it."""
    if moment is None:
        return None
    local = moment.tz_convert("Asia/Shanghai")
    day = local.normalize()
    return day + pd.Timedelta(days=1) if end and day != local else day


def _page(state: ProjectState, request: MapRequest, root: str) -> HTMLResponse:
    buildings = state.cached("count:buildings", lambda: state.store.count("buildings"))
    if buildings > state.settings.max_embedded_buildings and not request.offline:
        # a city-sized district: the page fetches the footprints in view from the OGC API
        request = replace(
            request,
            features_url=root + FEATURES_URL,  # under /divisions/{code}/ too
            max_buildings=state.settings.max_embedded_buildings,
        )
    html = state.cached(
        f"map:{request!r}",
        lambda: render_html(
            project_map(state.store, request), offline=request.offline, assets_url=ASSETS_URL
        ),
        keep=MAP_PAGES,
    )
    return HTMLResponse(html)


@router.get("/district.html", response_class=HTMLResponse, responses=ERRORS, summary="District map")
def district(state: StateDep, request: MapRequestDep, root: RootPathDep) -> HTMLResponse:
    return _page(state, request, root)


@router.get(
    "/communities/{community:path}.html",
    response_class=HTMLResponse,
    responses=ERRORS,
    summary="Community map",
)
def community(
    state: StateDep,
    request: MapRequestDep,
    root: RootPathDep,
    community: str = Path(max_length=200),
) -> HTMLResponse:
    return _page(state, replace(request, community=community), root)


@router.get(
    "/grids/{grid_code}.html", response_class=HTMLResponse, responses=ERRORS, summary="Grid map"
)
def grid(
    state: StateDep, request: MapRequestDep, root: RootPathDep, grid_code: str = Path(max_length=40)
) -> HTMLResponse:
    return _page(state, replace(request, grid=grid_code), root)


@router.get(
    "/tiles/{z}/{x}/{y}",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, **problem_responses(401, 404, 422)},
    summary="The project's own basemap tiles (setting basemap_tiles: a tile folder or MBTiles)",
)
def tile(
    state: StateDep,
    _: MapReader,
    z: Annotated[int, Path(ge=0, le=24)],
    x: Annotated[int, Path(ge=0)],
    y: Annotated[int, Path(ge=0)],
) -> Response:
    """One tile of the intranet basemap; tiles hold no personal data, so browsers may keep them."""
    source = str(state.store.get_setting("basemap_tiles", "") or "")
    if not source or is_url(source):
        raise NotFound(
            "this project serves no tiles (setting basemap_tiles is not a folder or .mbtiles)",
            zh="本项目没有本地瓦片（basemap_tiles 设置不是瓦片目录或 .mbtiles 文件）",
        )
    if x >= 1 << z or y >= 1 << z:
        raise InputError(f"no tile {z}/{x}/{y}", zh=f"没有瓦片 {z}/{x}/{y}")
    found = read_tile(source, z, x, y)
    if found is None:
        raise NotFound(f"no tile {z}/{x}/{y}", zh=f"没有瓦片 {z}/{x}/{y}")
    data, media = found
    return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=86400"})


@router.get(
    "/buildings.geojson",
    response_class=Response,
    responses=GEOJSON_ERRORS,
    summary="Footprints in a box, for the map pages of large districts",
)
def buildings_in_view(state: StateDep, _: MapReader, bbox: BBoxDep, page: PageDep) -> Response:
    """Up to ``limit`` footprints meeting ``bbox`` (WGS84), with what a map shows of them."""
    if bbox is None:
        raise InputError(
            "bbox is required: min lon, min lat, max lon, max lat",
            zh="需要 bbox：最小经度,最小纬度,最大经度,最大纬度",
        )
    frame = state.layer("buildings")
    frame = frame.iloc[in_bbox(frame, bbox)[: page.limit]]
    facts = state.cached(
        "occupancy:buildings",
        lambda: occupancy.building_occupancy(state.store),
        depends=("households",),
    )
    frame = occupancy.with_building_facts(frame, facts)
    return Response(_feature_collection(frame), media_type="application/geo+json")


def _feature_collection(frame: gpd.GeoDataFrame) -> str:
    columns = [c for c in BUILDING_COLUMNS if c in frame.columns]
    geometries = shapely.to_geojson(frame.geometry.array, indent=None)
    features = []
    for geometry, row in zip(
        geometries, frame[columns].itertuples(index=False, name=None), strict=True
    ):
        properties = json.dumps(
            {c: plain(v) for c, v in zip(columns, row, strict=True)},
            ensure_ascii=False,
            default=str,
        )
        shape = geometry if geometry is not None else "null"
        features.append(f'{{"type":"Feature","geometry":{shape},"properties":{properties}}}')
    return '{"type":"FeatureCollection","features":[' + ",".join(features) + "]}"
