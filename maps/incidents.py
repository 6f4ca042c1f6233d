"""The incident map: cases clustered by class, as a heatmap and as counts per grid."""

from __future__ import annotations

from typing import Any

import folium
import geopandas as gpd

from .base import MapOptions, build_map

__all__ = ["incidents_map"]


def incidents_map(
    incidents: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame | None = None,
    communities: gpd.GeoDataFrame | None = None,
    *,
    choropleth: str = "open",
    **options: Any,
) -> folium.Map:
    """A map of incidents with the per-grid choropleth and the heatmap shown.

    Parameters
    ----------
    incidents : GeoDataFrame
        Points with ``incident_id``, ``category_code``, ``category_name``, ``class_code``,
        ``status``, ``reported_at``, ``deadline``, ``overdue``, ``description``, ``address``,
        ``grid_code``.
    grids, communities : GeoDataFrame, optional
        For the choropleth and the outlines.
    choropleth : {"open", "overdue"}
        Which count colours the grids.
    **options
        As :func:`maps.district_map` (``lang``, ``basemap``, ``offline``...).

    Examples
    --------
    >>> m = incidents_map(incidents, grids, choropleth="overdue")  # doctest: +SKIP
    """
    show = {"choropleth": True, "heatmap": False, "grids": False} | options.pop("show", {})
    return build_map(
        grids=grids,
        communities=communities,
        incidents=incidents,
        options=MapOptions(choropleth=choropleth, show=show, **options),
    )
