"""The district map: every grid, building, community and incident of a project."""

from __future__ import annotations

import folium
import geopandas as gpd

from .base import MAX_EMBEDDED_BUILDINGS, MapOptions, build_map

__all__ = ["district_map"]


def district_map(
    grids: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame | None = None,
    communities: gpd.GeoDataFrame | None = None,
    incidents: gpd.GeoDataFrame | None = None,
    *,
    lang: str = "zh",
    basemap: str = "osm",
    offline: bool = False,
    include_contacts: bool = False,
    attribution_osm: bool = True,
    tianditu_key: str | None = None,
    features_url: str | None = None,
    max_buildings: int = MAX_EMBEDDED_BUILDINGS,
    choropleth: str | None = "open",
    title: tuple[str, ...] = (),
    roads: gpd.GeoDataFrame | None = None,
    print_mode: bool = False,
) -> folium.Map:
    """A map of the whole district: grids coloured so neighbours differ, codes, buildings, incidents.

    Parameters
    ----------
    grids : GeoDataFrame
        ``grid_code``, ``community`` and optionally ``worker``, ``n_buildings``, ``households``,
        ``status``, ``reason``, ``open_incidents``, ``overdue_incidents``; any CRS.
    buildings, communities, incidents : GeoDataFrame, optional
        Building footprints, community outlines (``community``), incident points.
    lang : {"zh", "en"}
        Language of every label.
    basemap : {"osm", "tianditu", "tianditu-vec", "tianditu-img", "amap", "none"}
        Tiles under the layers; ``"amap"`` shifts overlays to GCJ-02.
    offline : bool
        No tiles; pair with ``save_map(..., offline=True)`` for a self-contained file.
    include_contacts : bool
        Show worker phone numbers (personal data; off by default).
    attribution_osm : bool
        Credit OpenStreetMap for the data (the real footprints come from OSM).
    tianditu_key : str, optional
        Tianditu token, needed for the Tianditu basemaps.
    features_url : str, optional
        GeoJSON endpoint taking ``bbox`` that serves buildings when there are more than
        ``max_buildings`` (they are then not embedded).
    max_buildings : int
        Largest number of buildings embedded in the page.
    choropleth : {"open", "overdue", None}
        The per-grid incident count shown as a (hidden by default) choropleth layer.
    title : tuple of str
        Lines of the map's title, e.g. ``("碧溪新区 网格图", "方案 3 · 2026-12-04")``.
    roads : GeoDataFrame, optional
        Road lines, drawn as a light reference layer when the map has no tiles.
    print_mode : bool
        A page for paper (see :mod:`maps.printing`).

    Returns
    -------
    folium.Map

    Examples
    --------
    >>> m = district_map(grids, buildings, communities, incidents, lang="en")  # doctest: +SKIP
    >>> save_map(m, "district.html", offline=True)  # doctest: +SKIP
    """
    options = MapOptions(
        lang=lang,
        basemap=basemap,
        offline=offline,
        include_contacts=include_contacts,
        attribution_osm=attribution_osm,
        tianditu_key=tianditu_key,
        features_url=features_url,
        max_buildings=max_buildings,
        choropleth=choropleth,
        title=tuple(title),
        roads=roads,
        print_mode=print_mode,
    )
    return build_map(
        grids=grids,
        buildings=buildings,
        communities=communities,
        incidents=incidents,
        options=options,
    )
