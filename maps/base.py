"""The one map builder behind district, community, grid, incident and diff maps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import branca.colormap as cm
import folium
import geopandas as gpd
import numpy as np
from folium import plugins

from .basemaps import add_basemap, display_crs
from .elements import Legend, MapData, PageRuntime, Ready
from .escape import escape_html
from .i18n import INCIDENT_CLASSES, language, strings
from .offline import plugin_css, plugin_js
from .prepare import (
    MapInputError,
    prepare_buildings,
    prepare_communities,
    prepare_grids,
    prepare_incidents,
    to_display,
)

__all__ = ["MAX_EMBEDDED_BUILDINGS", "MapOptions", "build_map"]

#: Above this many buildings the page stops embedding them (loaded by bbox if a URL is given).
MAX_EMBEDDED_BUILDINGS = 100_000

# Grid fill colours; the colouring needs at most 6, two more absorb unusual adjacency.
PALETTE = ["#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69", "#fccde5"]
CHOROPLETH_STEPS = [0, 1, 2, 3, 5, 10, 20, 50, 100, 200, 500]


@dataclass
class MapOptions:
    """What a map shows and how; the public functions fill it from their keywords."""

    lang: str = "zh"
    basemap: str = "osm"
    offline: bool = False
    include_contacts: bool = False
    attribution_osm: bool = True
    tianditu_key: str | None = None
    features_url: str | None = None
    max_buildings: int = MAX_EMBEDDED_BUILDINGS
    choropleth: str | None = "open"
    label_zoom: int = 16
    show: dict[str, bool] = field(default_factory=dict)
    tolerance: float = 1.0


def _group(m: folium.Map, name: str, *, show: bool) -> folium.FeatureGroup:
    # Leaflet's layer control writes layer names as HTML: escape even our own strings.
    return folium.FeatureGroup(
        name=escape_html(name), show=show, overlay=True, control=True
    ).add_to(m)


def _with_assets(element: Any, plugin: str) -> Any:
    # Point the plugin at the pinned npm build (the one vendored for offline pages).
    element.default_js = plugin_js(plugin)
    element.default_css = plugin_css(plugin)
    return element


def _bins(values: list[int | None]) -> list[int]:
    top = max([v or 0 for v in values] + [1])
    steps = [s for s in CHOROPLETH_STEPS if s <= top]
    return steps if len(steps) > 1 else [0, 1]


def _bounds(*layers: gpd.GeoDataFrame | None) -> list[list[float]] | None:
    boxes = [
        layer.to_crs(4326).total_bounds for layer in layers if layer is not None and len(layer)
    ]
    boxes = [b for b in boxes if np.isfinite(b).all()]
    if not boxes:
        return None
    b = np.array(boxes)
    return [
        [float(b[:, 1].min()), float(b[:, 0].min())],
        [float(b[:, 3].max()), float(b[:, 2].max())],
    ]


def build_map(
    *,
    grids: gpd.GeoDataFrame | None,
    buildings: gpd.GeoDataFrame | None = None,
    communities: gpd.GeoDataFrame | None = None,
    incidents: gpd.GeoDataFrame | None = None,
    options: MapOptions,
    changed: list[bool] | None = None,
    before: gpd.GeoDataFrame | None = None,
    focus: gpd.GeoDataFrame | None = None,
) -> folium.Map:
    """Assemble a map: base map, data layers, controls, legend. See :func:`maps.district_map`."""
    t = strings(options.lang)
    lang = language(options.lang)
    basemap = "none" if options.offline else options.basemap
    crs = display_crs(basemap)
    show = {
        "grids": True,
        "labels": True,
        "buildings": True,
        "communities": True,
        "incidents": True,
        "heatmap": False,
        "choropleth": False,
        "before": True,
    } | options.show

    m = folium.Map(
        location=[0, 0],
        zoom_start=2,
        tiles=None,
        prefer_canvas=True,
        control_scale=True,
        maxZoom=20,  # markercluster needs the map's own maxZoom (there may be no tile layer)
    )
    m.default_js = plugin_js("leaflet")
    m.default_css = plugin_css("leaflet")
    add_basemap(m, basemap, t, tianditu_key=options.tianditu_key)
    PageRuntime(t).add_to(m)

    data: dict[str, Any] = {
        "strings": t,
        "palette": PALETTE,
        "options": {
            "label_zoom": options.label_zoom,
            "incident_classes": list(INCIDENT_CLASSES),
            "search": True,
            "osm_credit": options.attribution_osm,
            "features_url": None,
            "remote_min_zoom": 16,
            "remote_limit": 5000,
        },
    }
    groups: dict[str, folium.FeatureGroup] = {}
    legend: list[tuple[str, list[tuple[str, str, str]]]] = []

    if communities is not None and len(communities):
        data["communities"] = prepare_communities(communities, crs=crs)
        groups["communities"] = _group(m, t["layer_communities"], show=show["communities"])
        legend.append(("", [("gm-swatch gm-swatch-community", "", t["legend_communities"])]))

    if grids is not None and len(grids):
        data["grids"] = prepare_grids(
            grids,
            incidents=incidents,
            crs=crs,
            include_contacts=options.include_contacts,
            tolerance=options.tolerance,
        )
        if changed is not None:
            data["grids"]["changed"] = list(changed)
            legend.append(
                (
                    "",
                    [
                        ("gm-swatch", "background:#e74c3c", t["legend_changed"]),
                        ("gm-swatch", "background:#bdc3c7", t["legend_unchanged"]),
                    ],
                )
            )
        else:
            legend.append(
                (
                    "",
                    [
                        (
                            "gm-swatch",
                            f"background:linear-gradient(90deg,{PALETTE[0]},{PALETTE[2]},{PALETTE[3]})",
                            t["legend_grids"],
                        ),
                        ("gm-swatch gm-swatch-flag", "", t["legend_flagged"]),
                    ],
                )
            )
        groups["grids"] = _group(m, t["layer_grids"], show=show["grids"])
        groups["labels"] = _group(m, t["layer_labels"], show=show["labels"])
        if before is not None and len(before):
            data["before"] = prepare_communities(
                before.assign(community=before["grid_code"].astype(str)), crs=crs
            )
            groups["before"] = _group(m, t["layer_diff_before"], show=show["before"])
        if options.choropleth and changed is None:
            field_name = {"open": "open", "overdue": "overdue"}.get(options.choropleth)
            if field_name is None:
                raise MapInputError(
                    f"unknown choropleth {options.choropleth!r}", hint="use 'open' or 'overdue'"
                )
            values = data["grids"][field_name]
            if any(v is not None for v in values):
                bins = _bins(values)
                scale = cm.linear.YlOrRd_09.scale(0, len(bins) - 1)
                colors = [scale(i) for i in range(len(bins))]
                data["choropleth"] = {"field": field_name, "bins": bins, "colors": colors}
                title = t[f"layer_choropleth_{field_name}"]
                groups["choropleth"] = _group(m, title, show=show["choropleth"])
                rows = []
                for i, low in enumerate(bins):
                    high = bins[i + 1] - 1 if i + 1 < len(bins) else None
                    label = (
                        f"{low}"
                        if high == low
                        else f"{low}–{high}"
                        if high is not None
                        else f"≥ {low}"
                    )
                    rows.append(("gm-swatch", f"background:{colors[i]}", label))
                legend.append((title, rows))

    if buildings is not None and len(buildings):
        groups["buildings"] = _group(m, t["layer_buildings"], show=show["buildings"])
        if len(buildings) <= options.max_buildings:
            data["buildings"] = prepare_buildings(buildings, crs=crs)
            legend.append(("", [("gm-swatch gm-swatch-building", "", t["legend_buildings"])]))
        else:
            data["options"]["features_url"] = options.features_url
            legend.append(
                ("", [("gm-swatch gm-swatch-building", "", t["legend_buildings_omitted"])])
            )

    rows: list[list[float]] = []
    if incidents is not None and len(incidents):
        data["incidents"], rows = prepare_incidents(incidents, crs=crs)

    page_data = MapData(data, groups, lang=lang)
    page_data.add_to(m)

    if rows:
        cluster = plugins.FastMarkerCluster(
            rows,
            callback=page_data.marker_callback(),
            name=escape_html(t["layer_incidents"]),
            show=show["incidents"],
            options={"maxClusterRadius": 50, "chunkedLoading": True},
        )
        _with_assets(cluster, "markercluster").add_to(m)
        heat = plugins.HeatMap(
            [row[:2] for row in rows],
            name=escape_html(t["layer_heatmap"]),
            show=show["heatmap"],
            radius=18,
            blur=14,
        )
        _with_assets(heat, "heat").add_to(m)
        legend.append(
            (
                t["legend_incidents"],
                [(f"gm-inc gm-inc-{c}", "", t[f"class_{c}"]) for c in INCIDENT_CLASSES]
                + [("gm-inc gm-inc-other gm-inc-overdue", "", t["legend_overdue"])],
            )
        )

    _with_assets(
        plugins.Fullscreen(title=t["fullscreen"], title_cancel=t["fullscreen_exit"]), "fullscreen"
    ).add_to(m)
    _with_assets(
        plugins.MeasureControl(
            primary_length_unit="meters",
            secondary_length_unit="kilometers",
            primary_area_unit="sqmeters",
            secondary_area_unit="hectares",
        ),
        "measure",
    ).add_to(m)
    _with_assets(
        plugins.LocateControl(
            strings={
                "title": t["locate"],
                "metersUnit": t["locate_meters"],
                "feetUnit": t["locate_feet"],
                "popup": t["locate_popup"],
                "outsideMapBoundsMsg": t["locate_outside"],
            },
        ),
        "locate",
    ).add_to(m)
    Legend(t["legend_title"], legend).add_to(m)
    folium.LayerControl(collapsed=True).add_to(m)

    bounds = (
        _bounds(focus) if focus is not None else _bounds(grids, communities, buildings, incidents)
    )
    if bounds is not None:
        if crs == "gcj02":
            corners = to_display(
                gpd.GeoSeries(
                    gpd.points_from_xy([b[1] for b in bounds], [b[0] for b in bounds]), crs=4326
                ),
                crs=crs,
            )
            bounds = [[float(p.y), float(p.x)] for p in corners]
        m.fit_bounds(bounds)
    Ready().add_to(m)
    m.gridmap_offline = options.offline
    return m
