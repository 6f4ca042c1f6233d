"""The FastAPI application: one router per resource, errors in one place, settings from the env.

``create_app(settings)`` builds it; ``gridmap serve`` runs it with uvicorn
(``uvicorn --factory api.app:create_app`` reads ``GRIDMAP_*`` from the environment).
"""

from __future__ import annotations

import gc
import importlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors, static
from api.routers import (
    buildings,
    communities,
    grids,
    health,
    households,
    incidents,
    locate,
    maps,
    ogc,
    tokens,
    workers,
)
from api.settings import Settings
from api.state import DivisionStates, ProjectState, one_look_per_request
from geo.defaults import is_server_url
from geo.errors import NotFound

log = logging.getLogger("gridmap.api")

ROUTERS = (
    health,
    ogc,
    communities,
    grids,
    buildings,
    workers,
    locate,
    incidents,
    maps,
    tokens,
    households,
)
#: routers other work adds; included when their module exists
OPTIONAL_ROUTERS = ("api.routers.plans",)
DESCRIPTION = """社区网格化管理 Community grid management: grids, buildings, incidents, locate, maps.

Send `Authorization: Bearer <token>` (from `gridmap token create --role ROLE --name NAME`).
Roles: **viewer** (maps, grids, OGC reads without phone numbers) < **staff** (+ locate,
incidents, phone numbers) < **planner** (+ imports, partitions, plan edits) < **admin**
(+ tokens, workers). Errors are `application/problem+json` with `detail` (and `detail_zh`).
QGIS/GDAL: add `/ogc` as an OGC API – Features (WFS 3) connection. A PostGIS database of many
streets serves each at `/divisions/{code}/` (its OGC API at `/divisions/{code}/ogc`) to the tokens
of the street and of the county, city or province above it; `GET /divisions` lists them.
"""


class _HttpOnly:
    """A middleware that acts on HTTP requests (:meth:`http`) and passes anything else on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class BodyLimit(_HttpOnly):
    """Refuse request bodies above ``limit`` bytes with 413, before the route reads them."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        super().__init__(app)
        self.limit = limit

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, send, int(declared))
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _BodyTooLargeError
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLargeError:
            await self._refuse(scope, send, received)

    async def _refuse(self, scope: Scope, send: Send, size: int) -> None:
        response = errors.problem(
            413,
            f"the request body ({size:,} bytes or more) is above the limit of {self.limit:,} "
            "bytes: send smaller batches",
            zh=f"请求体过大（上限 {self.limit:,} 字节），请分批发送",
            kind="too-large",
        )
        await response(scope, _no_receive, send)


class _BodyTooLargeError(Exception):
    pass


async def _no_receive() -> Message:  # pragma: no cover - a problem response reads nothing
    return {"type": "http.disconnect"}


#: on every answer: no page of gridmap may be framed (the editor's publish button could be
#: clickjacked), no type sniffing, no path or ?token= sent to other sites in a Referer
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


class OneLook(_HttpOnly):
    """Each request looks for other connections' commits once per project
    (:func:`api.state.one_look_per_request`)."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        with one_look_per_request():
            await self.app(scope, receive, send)


class Hardening(_HttpOnly):
    """Security headers on every answer, ``Cache-Control: no-store`` unless a route chose a
    policy (answers carry tokens' data and workers' phones: no browser or proxy may keep them),
    and ``HEAD`` answered as ``GET`` without the body (pages are checked with ``curl -I``).

    The vendored scripts under ``/static`` choose their own (``api.static``: revalidated by ETag).
    """

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        head = scope["method"] == "HEAD"

        async def hardened(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("Cache-Control", "no-store")
            elif message["type"] == "http.response.body" and head:
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"} if head else scope, receive, hardened)


def _lifespan(
    state: ProjectState, streets: DivisionStates | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """What the service does when it starts and stops."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:  # build the locate index before the first request needs it
            state.locator()
        except NotFound:
            log.warning("no published plan yet: /locate answers 404 until one is published")
        # the first edit then costs what later edits cost: the district and the drafts loaded,
        # in a worker thread like the requests' (PROJ sets itself up once per thread), and
        # every route's request models built (FastAPI builds them on the first request)
        await anyio.to_thread.run_sync(state.warm_editor)
        _build_routes(app)
        # the libraries and the index are long-lived: keep the collector from walking them
        # again and again (full collections showed up as 100+ ms stalls in the p99)
        gc.collect()
        gc.freeze()
        yield
        if streets is not None:
            streets.close()
        state.close()
        if state.above is not None:
            state.above.close()

    return lifespan


def _include_routers(app: FastAPI) -> None:
    for module in ROUTERS:
        app.include_router(module.router)
    for name in OPTIONAL_ROUTERS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:  # the module exists but is broken: say so
                raise
            continue
        app.include_router(module.router)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The gridmap service for the project file in ``settings.db`` (from the env when None).

    A PostGIS database of many streets is served whole when ``settings.division`` is None: the
    database's own project as before, and each street under ``/divisions/{code}/``
    (:mod:`api.routers.divisions`); with ``settings.division``, that one street alone.
    """
    settings = settings or Settings()
    state = _project(settings)
    streets = _streets_of(state)
    app = FastAPI(
        title="gridmap",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=_lifespan(state, streets),
        docs_url=None,  # FastAPI's own docs pages load from a CDN: api.static serves /docs
        redoc_url=None,
    )
    app.state.project = state
    errors.install(app)
    static.install(app)
    _include_routers(app)
    if streets is not None:
        from api.routers import divisions

        app.state.divisions = streets
        app.include_router(divisions.router)
        app.add_middleware(divisions.DivisionScope, streets=streets)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(Hardening)
    app.add_middleware(OneLook)  # outermost: the division scope checks tokens too
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _project(settings: Settings) -> ProjectState:
    """The app's project. A street of a PostGIS database served alone also takes the tokens of
    the divisions above it (a county's viewer), which the database's own project keeps."""
    if settings.division is None or not is_server_url(settings.db):
        return ProjectState(settings)
    own = ProjectState(settings.model_copy(update={"division": None}))
    return ProjectState(settings, above=own)


def _streets_of(state: ProjectState) -> DivisionStates | None:
    """The streets of a PostGIS database served whole (no ``division`` set); else None."""
    if state.division is not None or not is_server_url(state.settings.db):
        return None
    return DivisionStates(state)


def _build_routes(app: FastAPI) -> None:
    """Match a path no route serves against every route once: FastAPI builds a router's request
    models when a request first reaches it (a third of a second for this app's 44 routes)."""
    scope = {"type": "http", "method": "GET", "path": "/.no-route", "root_path": "", "headers": []}
    for route in app.router.routes:
        route.matches({**scope, "query_string": b""})


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated schema plus the models of bodies that routes parse themselves."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in locate.EXTRA_SCHEMAS:
        generated = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in generated.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components.setdefault(model.__name__, generated)
    app.openapi_schema = schema
    return schema
