"""``/divisions``: a province's streets from one service, each only to the tokens that cover it.

A PostGIS database of many streets (issue #18) is served whole: ``/divisions/{code}/...`` is the
full API of the street ``code`` (its OGC API at ``/divisions/{code}/ogc``, its maps, cases,
plans ...), answered by the same routes as the unprefixed API with the street's own project
(:class:`api.state.DivisionStates`). :class:`DivisionScope` decides before any route runs: the
request must carry a token of the street, or a token of the database's own project whose
division covers it (a county's viewer, a province's admin); the route's guard then checks the
token's role as everywhere.

Anything else (no token, a token of another street or county, a code no street has) is one and
the same 404, byte for byte: a street's existence is itself not told to those outside it.
``GET /divisions`` lists the streets a token covers.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from api import errors
from api.auth import Principal
from api.deps import DIVISION_STATE, VERIFIED
from api.models import Model
from api.routers._frames import problem_responses
from api.state import DivisionStates, ProjectState
from geo.errors import NotFound, Unauthorized

PREFIX = "/divisions"
router = APIRouter(tags=["divisions"])
_bearer = HTTPBearer(auto_error=False, description="a token of a street, county, city or province")


class DivisionLink(Model):
    """A street the token covers, and where its API is."""

    code: str
    name: str
    href: str
    ogc: str


@router.get(
    PREFIX,
    response_model=list[DivisionLink],
    responses=problem_responses(401, 404),
    summary="The streets this token reads",
)
def list_divisions(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> list[DivisionLink]:
    """The streets (code, name, links) a token covers; 401 without a token or with an unknown."""
    streets = _streets(request)
    if credentials is None:
        raise Unauthorized(
            "this route needs a bearer token (Authorization: Bearer <token>)",
            zh="需要访问令牌（Authorization: Bearer <令牌>）",
        )
    names = streets.registered()
    root = str(request.base_url).rstrip("/")
    return [
        DivisionLink(
            code=code,
            name=names.get(code, ""),
            href=f"{root}{PREFIX}/{code}/",
            ogc=f"{root}{PREFIX}/{code}/ogc",
        )
        for code in streets.covered(credentials.credentials)
    ]


def _streets(request: Request) -> DivisionStates:
    streets: DivisionStates | None = getattr(request.app.state, "divisions", None)
    if streets is None or DIVISION_STATE in request.scope:  # not a province, or in a street
        raise NotFound(f"no such route: GET {request.url.path}; see /docs", zh="没有此路径")
    return streets


def hidden() -> JSONResponse:
    """The one answer to a street the caller may not see, or that does not exist."""
    return errors.problem(
        404,
        "no such division here, or not one this token reads",
        zh="没有此区划，或此令牌无权访问",
        kind="division-not-found",
    )


class DivisionScope:
    """Serve ``/divisions/{code}/...`` as the street's own API, to the tokens that cover it.

    The request goes on with its path unchanged and the prefix as its ``root_path`` (so the
    routes match the rest and the links they build carry the prefix), and the street's state
    under :data:`api.deps.DIVISION_STATE`.
    """

    def __init__(self, app: ASGIApp, streets: DivisionStates) -> None:
        self.app = app
        self.streets = streets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        prefix = scope.get("root_path", "") + PREFIX + "/"
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(prefix):
            await self.app(scope, receive, send)
            return
        code, _, rest = path[len(prefix) :].partition("/")
        token = _token(scope)
        if self.streets.open_state(code) is not None:  # a cached lookup, as the guards do
            found = self._state(code, token)
        else:  # opening a street's store takes a while: not in the event loop
            found = await anyio.to_thread.run_sync(self._state, code, token)
        if found is None:
            await hidden()(scope, receive, send)
            return
        state, principal = found
        root_path = prefix + code
        inner = {
            **scope,
            "path": f"{root_path}/{rest}",  # /divisions/{code} alone is the street's landing page
            "root_path": root_path,
            "app_root_path": root_path,
            DIVISION_STATE: state,
            VERIFIED: (token, principal),  # the route's guard need not look it up again
        }
        await self.app(inner, receive, send)

    def _state(self, code: str, token: str | None) -> tuple[ProjectState, Principal] | None:
        """The street's state and the caller if ``token`` reads the street ``code``; else None."""
        if token is None or len(code) != 9 or not code.isdigit():
            return None
        if not self.streets.is_registered(code):
            return None
        try:
            # a street is opened for the tokens that may enter it only: nobody outside it
            # makes the service open its store (or tell by the time taken that it exists)
            if self.streets.open_state(code) is None and not self.streets.admits(code, token):
                return None
            state = self.streets.state(code)
            return state, state.principal(token)
        except (Unauthorized, NotFound):  # NotFound: the street was dropped since
            return None


def _token(scope: Scope) -> str | None:
    """The bearer token of the request, or its ``?token=`` (pages opened in a browser)."""
    for name, value in scope.get("headers") or []:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    tokens = query.get("token")
    return tokens[0] if tokens and tokens[0] else None
