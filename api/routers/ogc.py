"""``/ogc``: OGC API – Features (Part 1, core + GeoJSON) for QGIS, GDAL and ArcGIS.

Collections ``grids``, ``buildings`` and ``communities`` of the published plan (viewer), and
``incidents`` (staff), in WGS84 (CRS84) from the metric project layers. Items pages have
``bbox``, ``limit`` (at most the ``max_page`` setting), ``offset``, ``next``/``prev`` links and
``numberMatched``/``numberReturned``; phone numbers only for staff and above. Where the project
holds household records, buildings and grids carry their counts (以房管人: ``households``
recounted, ``residents``, ``rented_units``, ``floating_residents``, the grids' ``floating_share``
...), never a personal field (:func:`api.routers._frames.served_layer`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated

import geopandas as gpd
import pandas as pd
import shapely
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from starlette.datastructures import URL

from api.auth import Principal
from api.deps import BBoxDep, PageDep, StateDep, Viewer
from api.models import (
    Collection,
    Collections,
    Conformance,
    Extent,
    Feature,
    FeatureCollection,
    LandingPage,
    Link,
    SpatialExtent,
    plain,
)
from api.routers._frames import in_bbox, problem_responses, served_layer, with_contacts
from api.state import ProjectState
from geo.errors import Forbidden, NotFound
from geo.incidents import records as incident_records

router = APIRouter(prefix="/ogc", tags=["OGC API - Features"])
GEOJSON = "application/geo+json"
JSON = "application/json"
ERRORS = problem_responses(401, 403, 404, 422)
GEOJSON_RESPONSES = {**ERRORS, 200: {"content": {GEOJSON: {}}}}
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
PRIVATE = ("phone", "worker_phone")


@dataclass(frozen=True)
class CollectionInfo:
    id: str
    title: str
    description: str
    key: str  # the property that is the feature id
    role: str


COLLECTIONS = {
    c.id: c
    for c in (
        CollectionInfo("grids", "网格 Grids", "the published plan's grids", "grid_code", "viewer"),
        CollectionInfo(
            "buildings",
            "建筑 Buildings",
            "footprints with their grid code",
            "building_id",
            "viewer",
        ),
        CollectionInfo(
            "communities", "社区 Communities", "community outlines", "community", "viewer"
        ),
        CollectionInfo(
            "incidents",
            "事件 Incidents",
            "cases (12345, 数字城管) with status",
            "incident_id",
            "staff",
        ),
    )
}
F = Annotated[str | None, Query(max_length=20, description="ignored: GeoJSON/JSON only")]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


def _info(collection_id: str, principal: Principal) -> CollectionInfo:
    info = COLLECTIONS.get(collection_id)
    if info is None:
        raise NotFound(
            f"no collection {collection_id!r}; collections: {', '.join(COLLECTIONS)}",
            zh=f"没有数据集 {collection_id}",
        )
    if not principal.can(info.role):
        raise Forbidden(
            f"the collection {collection_id} needs the role {info.role} or above",
            zh=f"数据集 {collection_id} 需要 {info.role} 及以上角色",
        )
    return info


def _frame(
    state: ProjectState, info: CollectionInfo, principal: Principal, bbox=None
) -> gpd.GeoDataFrame:
    frame = served_layer(state, info.id)
    if bbox is not None:
        frame = frame.iloc[in_bbox(frame, bbox)]
    if info.id == "grids":
        frame = with_contacts(frame, state, principal)
    if not principal.can("staff"):
        frame = frame.drop(columns=[c for c in PRIVATE if c in frame.columns])
    return frame


def _window(
    state: ProjectState,
    info: CollectionInfo,
    principal: Principal,
    *,
    bbox=None,
    limit: int | None = None,
    offset: int = 0,
    key: str | None = None,
) -> tuple[int, gpd.GeoDataFrame]:
    """How many features match, and those of ``offset`` to ``offset + limit`` (``key``: only
    the feature with that id). Cases are read a page at a time by indexed SQL; the other
    collections are small and cached whole in WGS84."""
    if info.id == "incidents":
        wanted = incident_records.CaseFilter(bbox=bbox, incident_id=key)
        matched, cases = incident_records.incident_page(
            state.store, wanted, limit=limit, offset=offset
        )
        return matched, cases.reset_index(drop=True)
    frame = _frame(state, info, principal, bbox=bbox)
    if key is not None:
        frame = frame[frame[info.key].astype(str) == key]
    end = None if limit is None else offset + limit
    return len(frame), frame.iloc[offset:end]


def _bounds(state: ProjectState, info: CollectionInfo, principal: Principal):
    """The collection's WGS84 extent (None when empty or nothing is published yet)."""
    if info.id == "incidents":  # as recorded with the layer: no read of the cases
        return state.store.layer_extent("incidents") if state.store.has_layer("incidents") else None
    frame = _frame_or_none(state, info, principal)
    if frame is None or not len(frame) or frame.geometry.isna().all():
        return None
    return tuple(float(v) for v in frame.total_bounds)


def _collection(info: CollectionInfo, base: str, bounds: tuple[float, ...] | None) -> Collection:
    extent = None if bounds is None else Extent(spatial=SpatialExtent(bbox=[list(bounds)]))
    url = f"{base}/collections/{info.id}"
    return Collection(
        id=info.id,
        title=info.title,
        description=info.description,
        extent=extent,
        links=[
            Link(href=url, rel="self", type=JSON, title="this collection"),
            Link(href=f"{url}/items", rel="items", type=GEOJSON, title="the features"),
        ],
    )


@router.get("", response_model=LandingPage, summary="OGC API landing page", responses=ERRORS)
def landing(request: Request, _: Viewer, f: F = None) -> LandingPage:
    base = _base(request)
    root = str(request.base_url).rstrip("/")
    return LandingPage(
        title="gridmap OGC API - Features",
        description="grids, buildings, communities and incidents of the published plan (WGS84)",
        links=[
            Link(href=base, rel="self", type=JSON, title="this document"),
            Link(
                href=f"{root}/openapi.json",
                rel="service-desc",
                type="application/vnd.oai.openapi+json;version=3.0",
                title="the API definition",
            ),
            Link(href=f"{root}/docs", rel="service-doc", type="text/html", title="the API docs"),
            Link(href=f"{base}/conformance", rel="conformance", type=JSON, title="conformance"),
            Link(href=f"{base}/collections", rel="data", type=JSON, title="the collections"),
        ],
    )


@router.get(
    "/conformance", response_model=Conformance, summary="Conformance classes", responses=ERRORS
)
def conformance(_: Viewer, f: F = None) -> Conformance:
    return Conformance(conformsTo=CONFORMANCE)


@router.get("/collections", response_model=Collections, summary="The collections", responses=ERRORS)
def collections(request: Request, state: StateDep, principal: Viewer, f: F = None) -> Collections:
    base = _base(request)
    items = []
    for info in COLLECTIONS.values():
        if principal.can(info.role):
            items.append(_collection(info, base, _bounds(state, info, principal)))
    return Collections(
        collections=items,
        links=[Link(href=f"{base}/collections", rel="self", type=JSON, title="this document")],
    )


def _frame_or_none(state: ProjectState, info: CollectionInfo, principal: Principal):
    try:
        return _frame(state, info, principal)
    except NotFound:  # nothing published yet: the collection exists, empty
        return None


@router.get(
    "/collections/{collection_id}",
    response_model=Collection,
    summary="One collection",
    responses=ERRORS,
)
def collection(
    request: Request,
    state: StateDep,
    principal: Viewer,
    collection_id: str = Path(max_length=40),
    f: F = None,
) -> Collection:
    info = _info(collection_id, principal)
    return _collection(info, _base(request), _bounds(state, info, principal))


def _features(frame: gpd.GeoDataFrame, info: CollectionInfo) -> list[str]:
    """Each row as GeoJSON Feature text: the geometries by shapely and the properties by
    pandas' JSON writer, each vectorised (a page of 1,000 buildings took 25 ms row by row)."""
    if not len(frame):
        return []
    geometries = shapely.to_geojson(frame.geometry.array, indent=None)
    table = pd.DataFrame(frame, copy=False)  # plain pandas: a GeoDataFrame's [] costs more
    columns = [c for c in table.columns if c != frame.geometry.name]
    properties = _json_lines(_plain_columns(table[columns]))
    identifiers = [json.dumps(key, ensure_ascii=False) for key in table[info.key].astype(str)]
    return [
        f'{{"type":"Feature","id":{identifier},"geometry":{shape or "null"},"properties":{values}}}'
        for identifier, shape, values in zip(identifiers, geometries, properties, strict=True)
    ]


def _plain_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns JSON cannot take as they are (times, Python objects) as :func:`plain` values;
    numbers, booleans and text stay for the writer (a missing value becomes null)."""
    loose = [c for c in frame.columns if _loose(frame[c])]
    if not loose:
        return frame
    return frame.assign(**{c: frame[c].map(plain).astype(object) for c in loose})


def _loose(column: pd.Series) -> bool:
    """Times, and Python objects other than text (text and None the writer takes)."""
    if isinstance(column.dtype, pd.DatetimeTZDtype) or column.dtype.kind in "Mm":
        return True
    return column.dtype.kind == "O" and pd.api.types.infer_dtype(column, skipna=True) not in (
        "string",
        "empty",
    )


def _json_lines(data: pd.DataFrame) -> list[str]:
    """One JSON value per row (JSON escapes a newline inside text, so the lines are the rows)."""
    text = data.to_json(orient="records", lines=True, force_ascii=False, double_precision=15)
    return text.rstrip("\n").split("\n")


def _page_link(url: URL, offset: int, limit: int, rel: str, title: str) -> Link:
    href = str(url.include_query_params(offset=offset, limit=limit))
    return Link(href=href, rel=rel, type=GEOJSON, title=title)


@router.get(
    "/collections/{collection_id}/items",
    response_model=FeatureCollection,
    response_class=Response,
    responses=GEOJSON_RESPONSES,
    summary="Features of a collection (GeoJSON)",
)
def items(
    request: Request,
    state: StateDep,
    principal: Viewer,
    page: PageDep,
    bbox: BBoxDep,
    collection_id: str = Path(max_length=40),
    f: F = None,
) -> Response:
    info = _info(collection_id, principal)
    matched, window = _window(
        state, info, principal, bbox=bbox, limit=page.limit, offset=page.offset
    )
    url = request.url
    links = [Link(href=str(url), rel="self", type=GEOJSON, title="this page")]
    if page.offset + len(window) < matched:
        links.append(_page_link(url, page.offset + page.limit, page.limit, "next", "next page"))
    if page.offset > 0:
        previous = max(page.offset - page.limit, 0)
        links.append(_page_link(url, previous, page.limit, "prev", "previous page"))
    body = (
        '{"type":"FeatureCollection","features":['
        + ",".join(_features(window, info))
        + '],"links":'
        + json.dumps([link.model_dump(exclude_none=True) for link in links], ensure_ascii=False)
        + f',"numberMatched":{matched},"numberReturned":{len(window)},'
        + f'"timeStamp":"{pd.Timestamp.now("UTC").isoformat(timespec="seconds")}"'
        + "}"
    )
    return Response(body, media_type=GEOJSON)


@router.get(
    "/collections/{collection_id}/items/{feature_id:path}",
    response_model=Feature,
    response_class=Response,
    responses=GEOJSON_RESPONSES,
    summary="One feature (GeoJSON)",
)
def item(
    request: Request,
    state: StateDep,
    principal: Viewer,
    collection_id: str = Path(max_length=40),
    feature_id: str = Path(max_length=incident_records.MAX_ID_LENGTH),  # the one id rule
    f: F = None,
) -> Response:
    info = _info(collection_id, principal)
    _, found = _window(state, info, principal, key=feature_id, limit=1)
    if found.empty:
        raise NotFound(
            f"no feature {feature_id!r} in {collection_id}",
            zh=f"{collection_id} 中没有要素 {feature_id}",
        )
    feature = json.loads(_features(found.iloc[:1], info)[0])
    collection_url = f"{_base(request)}/collections/{info.id}"
    feature["links"] = [
        {"href": str(request.url), "rel": "self", "type": GEOJSON},
        {"href": collection_url, "rel": "collection", "type": JSON},
    ]
    return Response(json.dumps(feature, ensure_ascii=False), media_type=GEOJSON)
