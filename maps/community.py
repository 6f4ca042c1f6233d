"""The community map: one community's grids, buildings and incidents."""

from __future__ import annotations

from typing import Any

import folium
import geopandas as gpd

from ._filters import in_community, in_grids, require_rows
from .base import MapOptions, build_map

__all__ = ["community_map"]


def community_map(
    grids: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame | None = None,
    communities: gpd.GeoDataFrame | None = None,
    incidents: gpd.GeoDataFrame | None = None,
    *,
    community: str,
    **options: Any,
) -> folium.Map:
    """A map of one community; other keywords as :func:`maps.district_map`.

    Incidents are those of the community's grids (by ``grid_code``), or by their ``community``
    column when they have no grid.

    Raises
    ------
    NotFound
        If no grid belongs to ``community``.

    Examples
    --------
    >>> m = community_map(grids, buildings, community="滨江苑")  # doctest: +SKIP
    """
    own = require_rows(in_community(grids, community), f"grid in community {community!r}")
    codes = set(own["grid_code"].astype(str))
    if incidents is not None and "grid_code" in incidents.columns:
        incidents = in_grids(incidents, codes)
    else:
        incidents = in_community(incidents, community)
    return build_map(
        grids=own,
        buildings=in_community(buildings, community),
        communities=in_community(communities, community),
        incidents=incidents,
        options=MapOptions(**options),
    )
