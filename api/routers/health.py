"""``/health``: is the service up; with a token, also what project it serves.

Load balancers and ``tests/api_support.uvicorn_server`` ask without a token and learn only that
the service answers: the project's name, size and plan are for callers with a token (any role),
so an anonymous visitor cannot tell what district a server holds (issue #13, item 15).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import StateDep
from api.models import Health, Model
from geo.usecases.projectfiles import project_label

router = APIRouter(tags=["health"])
_bearer = HTTPBearer(auto_error=False, description="optional: a token shows the project's facts")


class Alive(Model):
    """The answer without a token: the service is up, nothing more."""

    status: Literal["ok"]


def _version() -> str:
    try:
        return version("gridmap")
    except PackageNotFoundError:  # running from a checkout without installing
        return "0"


@router.get("/health", response_model=Health | Alive, summary="Service status")
def health(
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Health | Alive:
    if credentials is None:
        return Alive(status="ok")
    state.principal(credentials.credentials)  # an unknown or revoked token answers 401
    store = state.store
    plan = state.fingerprint(("plan",))["plan"]
    return Health(
        status="ok",
        project=project_label(state.settings.db),
        buildings=store.count("buildings"),
        communities=store.count("communities"),
        grids=store.count("grids"),
        published_plan=int(plan[0]) if plan else None,
        version=_version(),
    )
