"""Small helpers the routers share: error responses, bbox selection, worker contacts and the
layers as served (with the household records' counts) on cached WGS84 layers."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from api.auth import Principal
from api.models import Problem
from api.state import PLAN, ProjectState
from geo.usecases import service

#: what a served layer depends on: its plan layer's, and the household records (以房管人)
SERVED = (*PLAN, "households")


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


def served_layer(state: ProjectState, name: str) -> gpd.GeoDataFrame:
    """``grids``, ``buildings`` or ``communities`` of the published plan as served to clients.

    Buildings and grids carry the household records' counts where the project holds records
    (:func:`geo.usecases.service.with_occupancy`): ``households`` recounted from them,
    ``residents``, ``rented_units``, ``floating_residents`` (and the grids' other occupancy
    columns, ``floating_share`` among them), never a personal field. Cached apart from
    :meth:`ProjectState.layer` and rebuilt when the records change, so that the layer the other
    routers share is not rebuilt with them and never pays for the household join.
    """
    frame = state.layer(name)
    if name not in service.OCCUPIED:
        return frame
    # read before the cache's build, which holds the build lock a nested cached() would wait for
    buildings = served_layer(state, "buildings") if name == "grids" else None
    # the key names the frames it is made from: a plan published between reading them and
    # caching this cannot leave the new plan served with the old plan's rows
    return state.cached(
        f"served-{name}:{id(frame)}:{id(buildings)}",
        lambda: service.with_occupancy(state.store, name, frame, buildings=buildings),
        depends=SERVED,
        keep=1,
    )
