"""The single-grid map: one grid with its buildings and incidents, neighbours for context."""

from __future__ import annotations

from typing import Any

import folium
import geopandas as gpd

from ._filters import in_grids, require_rows
from .base import MapOptions, build_map

__all__ = ["grid_map"]


def grid_map(
    grids: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame | None = None,
    communities: gpd.GeoDataFrame | None = None,
    incidents: gpd.GeoDataFrame | None = None,
    *,
    grid_code: str,
    **options: Any,
) -> folium.Map:
    """A map of one grid (a worker's area), framed on it; other keywords as :func:`maps.district_map`.

    The grids touching it are drawn too, so the worker sees where the area ends; buildings and
    incidents are those of the grid itself.

    Raises
    ------
    NotFound
        If no grid has ``grid_code``.

    Examples
    --------
    >>> m = grid_map(grids, buildings, incidents=incidents, grid_code="320508001001-001")  # doctest: +SKIP
    """
    target = require_rows(in_grids(grids, {str(grid_code)}), f"grid {grid_code!r}")
    touching = grids.iloc[grids.sindex.query(target.geometry.union_all(), predicate="intersects")]
    codes = {str(grid_code)}
    if communities is not None and "community" in communities.columns:
        communities = communities[communities["community"].isin(target["community"])]
    return build_map(
        grids=touching,
        buildings=in_grids(buildings, codes),
        communities=communities,
        incidents=in_grids(incidents, codes),
        options=MapOptions(**options),
        focus=target,
    )
