"""The district map: every grid, building, community and incident of a project."""

from __future__ import annotations

from typing import Any

import folium
import geopandas as gpd

from .base import MapOptions, build_map

__all__ = ["district_map"]


def district_map(
    grids: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame | None = None,
    communities: gpd.GeoDataFrame | None = None,
    incidents: gpd.GeoDataFrame | None = None,
    *,
    options: MapOptions | None = None,
    **keywords: Any,
) -> folium.Map:
    """A map of the whole district: grids coloured so neighbours differ, codes, buildings, incidents.

    Parameters
    ----------
    grids : GeoDataFrame
        ``grid_code``, ``community`` and optionally ``worker``, ``n_buildings``, ``households``,
        ``status``, ``reason``, ``open_incidents``, ``overdue_incidents``; any CRS.
    buildings, communities, incidents : GeoDataFrame, optional
        Building footprints, community outlines (``community``), incident points.
    options : MapOptions, optional
        What the map shows and how, all at once; else built from the keywords.
    **keywords
        The fields of :class:`maps.base.MapOptions`: ``lang`` ("zh" | "en", every label);
        ``basemap`` ("osm", "tianditu", "tianditu-vec", "tianditu-img", "amap" (overlays
        shifted to GCJ-02), "none"); ``offline`` (no tiles; pair with
        ``save_map(..., offline=True)``); ``include_contacts`` (workers' phones, personal data,
        off by default); ``attribution_osm`` (credit OpenStreetMap); ``tianditu_key``;
        ``features_url`` (a GeoJSON endpoint taking ``bbox`` that serves the buildings when there
        are more than ``max_buildings``, which are then not embedded); ``choropleth`` ("open",
        "overdue" or None: the per-grid case count as a hidden layer); ``title`` (lines, e.g.
        ``("碧溪新区 网格图", "方案 3 · 2026-12-04")``); ``roads`` (light lines where no tiles
        lie under the map); ``print_mode`` (a page for paper, :mod:`maps.printing`).

    Returns
    -------
    folium.Map

    Examples
    --------
    >>> m = district_map(grids, buildings, communities, incidents, lang="en")  # doctest: +SKIP
    >>> save_map(m, "district.html", offline=True)  # doctest: +SKIP
    """
    if options is None:
        options = MapOptions(**{**keywords, "title": tuple(keywords.get("title", ()))})
    return build_map(
        grids=grids,
        buildings=buildings,
        communities=communities,
        incidents=incidents,
        options=options,
    )
