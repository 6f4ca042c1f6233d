"""Small helpers the routers share: error responses, bbox selection and worker contacts on cached WGS84 layers."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from api.auth import Principal
from api.models import Problem
from api.state import ProjectState


def problem_responses(*statuses: int) -> dict[int, dict]:
    """OpenAPI ``responses`` saying that each of ``statuses`` answers a problem+json body."""
    return {status: {"model": Problem} for status in statuses}


def in_bbox(frame: gpd.GeoDataFrame, bbox: tuple[float, float, float, float] | None) -> np.ndarray:
    """Positions of the rows whose geometry meets ``bbox`` (all rows without one), in order."""
    if bbox is None:
        return np.arange(len(frame))
    hits = frame.sindex.query(shapely.box(*bbox), predicate="intersects")
    return np.sort(hits)


def with_contacts(grids: pd.DataFrame, state: ProjectState, principal: Principal) -> pd.DataFrame:
    """Add ``worker_phone`` for staff and above; viewers never see phone numbers."""
    if not principal.can("staff") or "worker_id" not in grids.columns:
        return grids
    team = state.roster()
    phones = team.set_index("worker_id")["phone"] if not team.empty else pd.Series(dtype=object)
    return grids.assign(worker_phone=grids["worker_id"].map(phones))
