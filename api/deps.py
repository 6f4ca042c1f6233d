"""Reusable request parsing (``Depends``): the project, the caller's role, pages, bbox, times, bodies.

The dependencies are ``async def`` although they never await: FastAPI runs a plain ``def``
dependency in its thread pool, a hand-off that cost more than the whole of ``GET /locate``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import pandas as pd
from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import ROLES, Principal, outranks
from api.settings import Settings
from api.state import ProjectState
from geo.errors import Forbidden, InputError, TooLarge, Unauthorized
from geo.incidents.feeds import parse_iso_time
from geo.storage.store import Store

_bearer = HTTPBearer(auto_error=False, description="a token from 'gridmap token create'")

PUBLIC = Principal(name="public", role="viewer")


#: the request scope's key for the street a ``/divisions/{code}/...`` request is about: the
#: division middleware (:mod:`api.routers.divisions`) puts the street's state there
DIVISION_STATE = "gridmap.division"
#: and the ``(token, principal)`` it let in, looked up once per request
VERIFIED = "gridmap.principal"


def project_of(request: Request) -> ProjectState:
    """The project a request is about: its street's under ``/divisions/{code}/``, else the app's."""
    return request.scope.get(DIVISION_STATE) or request.app.state.project


async def root_path(request: Request) -> str:
    """Where the request's API is mounted: ``/divisions/{code}`` for a street, else ``""``
    (pages put it before the API paths their scripts call)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


RootPathDep = Annotated[str, Depends(root_path)]


async def get_state(request: Request) -> ProjectState:
    return project_of(request)


async def get_settings(request: Request) -> Settings:
    return project_of(request).settings


async def get_store(request: Request) -> Store:
    return project_of(request).store


StateDep = Annotated[ProjectState, Depends(get_state)]
StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


class RoleGuard:
    """Requires a bearer token of at least ``role``; ``public`` routes skip it when the
    ``public_maps`` setting is on (as a viewer without contacts)."""

    def __init__(self, role: str, *, public: bool = False) -> None:
        if role not in ROLES:
            raise ValueError(role)
        self.role = role
        self.public = public

    async def __call__(
        self,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        state = project_of(request)
        if credentials is None:
            if self.public and state.settings.public_maps:
                return PUBLIC
            raise Unauthorized(
                "this route needs a bearer token (Authorization: Bearer <token>); "
                "an administrator creates one with 'gridmap token create'",
                zh="需要访问令牌（Authorization: Bearer <令牌>），请管理员用 gridmap token create 创建",
            )
        principal = _principal(request, state, credentials.credentials)
        if not outranks(principal.role, self.role):
            raise Forbidden(
                f"the token {principal.name!r} has the role {principal.role}; "
                f"this route needs {self.role} or above",
                zh=f"令牌角色为 {principal.role}，此操作需要 {self.role} 及以上",
            )
        return principal


def _principal(request: Request, state: ProjectState, token: str) -> Principal:
    """The caller behind ``token``: the division middleware's lookup of this request, if any."""
    verified = request.scope.get(VERIFIED)
    if verified is not None and verified[0] == token:
        return verified[1]
    return state.principal(token)


class PageGuard(RoleGuard):
    """A :class:`RoleGuard` for HTML pages, which also take the token as ``?token=``: a browser
    navigating to a page cannot send a header (the page's script then keeps the token in local
    storage and sends it as a bearer header on its own requests)."""

    async def __call__(  # type: ignore[override]
        self,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        token: Annotated[
            str | None, Query(max_length=200, description="token, for pages opened in a browser")
        ] = None,
    ) -> Principal:
        if credentials is None and token:
            credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)
        return await super().__call__(request, credentials)


viewer = RoleGuard("viewer")
staff = RoleGuard("staff")
planner = RoleGuard("planner")
admin = RoleGuard("admin")
public_maps = PageGuard("viewer", public=True)
page_viewer = PageGuard("viewer")
page_planner = PageGuard("planner")

Viewer = Annotated[Principal, Depends(viewer)]
Staff = Annotated[Principal, Depends(staff)]
Planner = Annotated[Principal, Depends(planner)]
Admin = Annotated[Principal, Depends(admin)]
MapReader = Annotated[Principal, Depends(public_maps)]
PageViewer = Annotated[Principal, Depends(page_viewer)]
PagePlanner = Annotated[Principal, Depends(page_planner)]


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


async def page(
    request: Request,
    limit: Annotated[
        int | None, Query(ge=1, le=1_000_000, description="items per page (capped by settings)")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000, description="items to skip")] = 0,
) -> Page:
    settings = project_of(request).settings
    return Page(limit=min(limit or settings.default_page, settings.max_page), offset=offset)


PageDep = Annotated[Page, Depends(page)]


async def parse_bbox(
    bbox: Annotated[
        str | None,
        Query(
            description="min lon, min lat, max lon, max lat (WGS84), e.g. 102.70,25.03,102.72,25.05",
            max_length=200,
        ),
    ] = None,
) -> tuple[float, float, float, float] | None:
    if bbox is None or not bbox.strip():
        return None
    try:
        numbers = [float(part) for part in bbox.split(",")]
    except ValueError:
        raise InputError(
            f"bbox must be 4 numbers separated by commas, not {bbox[:80]!r}",
            zh="bbox 应为逗号分隔的 4 个数字：最小经度,最小纬度,最大经度,最大纬度",
        ) from None
    if len(numbers) == 6:  # OGC allows a 3D box: drop the heights
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4 or not all(math.isfinite(n) for n in numbers):
        raise InputError(
            f"bbox must be 4 finite numbers, got {len(numbers)}",
            zh="bbox 应为 4 个有限数字",
        )
    west, south, east, north = numbers
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= north <= 90):
        raise InputError(
            f"bbox {bbox[:80]} is not a longitude/latitude box (lon -180..180, lat -90..90, "
            "south <= north)",
            zh="bbox 超出经纬度范围",
        )
    if west > east:
        raise InputError(
            "bbox crosses the antimeridian (west > east); no district does",
            zh="bbox 的西边界大于东边界",
        )
    return west, south, east, north


BBoxDep = Annotated[tuple[float, float, float, float] | None, Depends(parse_bbox)]


def parse_time(value: str | None, name: str) -> pd.Timestamp | None:
    """``since``/``until``: see :func:`geo.incidents.feeds.parse_iso_time` (strict ISO 8601)."""
    return parse_iso_time(value, name)


@dataclass(frozen=True)
class TimeRange:
    since: pd.Timestamp | None
    until: pd.Timestamp | None


async def time_range(
    since: Annotated[
        str | None, Query(max_length=40, description="from this time (ISO 8601, Beijing time)")
    ] = None,
    until: Annotated[
        str | None, Query(max_length=40, description="before this time (ISO 8601)")
    ] = None,
) -> TimeRange:
    start, end = parse_time(since, "since"), parse_time(until, "until")
    if start is not None and end is not None and start > end:
        raise InputError(f"since {since} is after until {until}", zh="开始时间晚于结束时间")
    return TimeRange(start, end)


TimeRangeDep = Annotated[TimeRange, Depends(time_range)]


async def bounded_body(request: Request) -> bytes:
    """The request body, refused with 413 above ``max_body_bytes`` (before reading it all)."""
    limit = project_of(request).settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(
            f"the body has {int(declared):,} bytes; the limit is {limit:,}: send smaller batches",
            zh=f"请求体过大（上限 {limit:,} 字节），请分批发送",
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(
                f"the body is over the limit of {limit:,} bytes: send smaller batches",
                zh=f"请求体过大（上限 {limit:,} 字节），请分批发送",
            )
        chunks.append(chunk)
    return b"".join(chunks)


BodyDep = Annotated[bytes, Depends(bounded_body)]
#: deepest nesting of a JSON body: a GeoJSON feed needs 6 levels; Python's parser recurses per level
MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def check_json_depth(body: bytes, *, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse a JSON body nested deeper than ``limit`` before a recursive parser meets it.

    Counts brackets outside strings in one vectorised pass (a 5 MB body in milliseconds).
    """
    codes = np.frombuffer(_JSON_STRING.sub(b'""', body), dtype=np.uint8)
    opening = (codes == ord("[")) | (codes == ord("{"))
    closing = (codes == ord("]")) | (codes == ord("}"))
    depth = np.cumsum(opening.astype(np.int32) - closing.astype(np.int32))
    deepest = int(depth.max()) if depth.size else 0
    if deepest > limit:
        raise InputError(
            f"the JSON body is nested {deepest:,} levels deep; at most {limit} are accepted",
            zh=f"JSON 嵌套过深（{deepest:,} 层，上限 {limit} 层）",
        )


def check_batch(count: int, settings: Settings, what: str) -> None:
    if count > settings.max_batch:
        raise TooLarge(
            f"{count:,} {what} in one request; the limit is {settings.max_batch:,}",
            zh=f"单次最多 {settings.max_batch:,} 条，本次 {count:,} 条",
        )
