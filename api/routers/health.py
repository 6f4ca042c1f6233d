"""``/health``: is the service up and what project does it serve (no token needed)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter

from api.deps import StateDep
from api.models import Health

router = APIRouter(tags=["health"])


def _version() -> str:
    try:
        return version("gridmap")
    except PackageNotFoundError:  # running from a checkout without installing
        return "0"


@router.get("/health", response_model=Health, summary="Service status")
def health(state: StateDep) -> Health:
    store = state.store
    plan = state.fingerprint()["plan"]
    return Health(
        status="ok",
        project=state.settings.db.name,
        buildings=store.count("buildings"),
        communities=store.count("communities"),
        grids=store.count("grids"),
        published_plan=int(plan[0]) if plan else None,
        version=_version(),
    )
