"""The one map builder behind district, community, grid, incident and diff maps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import branca.colormap as cm
import folium
import geopandas as gpd
import numpy as np
from folium import plugins
from folium.utilities import JsCode

from .basemaps import add_basemap, display_crs
from .elements import Legend, MapData, PageRuntime, Ready
from .escape import escape_html
from .i18n import incident_classes, language, strings
from .offline import plugin_css, plugin_js
from .prepare import (
    MapInputError,
    prepare_buildings,
    prepare_communities,
    prepare_grids,
    prepare_incidents,
    prepare_roads,
    to_display,
)

__all__ = ["MAX_EMBEDDED_BUILDINGS", "MapOptions", "build_map"]

#: Above this many buildings the page stops embedding them (loaded by bbox if a URL is given).
MAX_EMBEDDED_BUILDINGS = 100_000

# Grid fill colours; the colouring needs at most 6, two more absorb unusual adjacency.
PALETTE = ["#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69", "#fccde5"]
#: The choropleth's "0": a grey no grid fill uses.
ZERO_COLOUR = "#e0e0e0"
CHOROPLETH_STEPS = [0, 1, 2, 3, 5, 10, 20, 50, 100, 200, 500]
#: The occupancy layer's bins: the floating residents' share of a grid's residents, in percent.
OCCUPANCY_STEPS = [0, 5, 10, 20, 30, 50]


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
    #: Lines of the map's title (district or area, plan, date); none: no title.
    title: tuple[str, ...] = ()
    #: The project's roads, drawn light grey where no tiles lie under the map (offline, none).
    roads: gpd.GeoDataFrame | None = None
    #: A page for paper (:mod:`maps.printing`): no buttons, legend open, every code, north arrow.
    print_mode: bool = False


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


def choropleth_colours(n: int) -> list[str]:
    """``n`` colours for the incident-count bins: "0" a neutral grey, then yellow-orange to red.

    The ramp starts past YlOrRd's palest yellows, so that no bin reads as a grid fill
    (:data:`PALETTE`): a grid with no cases must not look like a grid coloured for its neighbours.

    Examples
    --------
    >>> colours = choropleth_colours(4)
    >>> colours[0], any(c in PALETTE for c in colours)
    ('#e0e0e0', False)
    """
    if n <= 1:
        return [ZERO_COLOUR][:n]
    scale = cm.linear.YlOrRd_09.scale(-1.5, n - 1)
    return [ZERO_COLOUR] + [scale(i)[:7] for i in range(1, n)]


def bin_label(bins: list[int], i: int) -> str:
    """The key's text for colour ``i``: ``3–4``, ``≥ 10``."""
    low = bins[i]
    if i + 1 == len(bins):
        return f"≥ {low}"
    high = bins[i + 1] - 1
    return f"{low}" if high == low else f"{low}–{high}"


def choropleth_bins(values: list[int | None]) -> list[int]:
    """The lower bounds of the colour classes for counts up to ``max(values)``."""
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


class _Page:
    """One map under construction: the folium map, its data block, groups and legend."""

    def __init__(self, options: MapOptions) -> None:
        self.options = options
        self.t = strings(options.lang)
        self.lang = language(options.lang)
        basemap = "none" if options.offline else options.basemap
        self.tiles = basemap != "none"
        self.crs = display_crs(basemap)
        self.show = DEFAULT_SHOW | options.show
        self.m = folium.Map(
            location=[0, 0],
            zoom_start=2,
            tiles=None,
            prefer_canvas=True,
            control_scale=False,  # gridmap.js adds a metric-only scale bar (no feet, no miles)
            maxZoom=20,  # markercluster needs the map's own maxZoom (there may be no tile layer)
            minZoom=6,  # a district map never needs the world; fewer zoom levels to cluster
            # paper: the area fills the sheet (quarter zoom steps), not the nearest whole zoom
            zoomSnap=0.25 if options.print_mode else 1,
        )
        _with_assets(self.m, "leaflet")
        add_basemap(self.m, basemap, self.t, tianditu_key=options.tianditu_key)
        PageRuntime(self.t).add_to(self.m)
        self.data: dict[str, Any] = {
            "strings": self.t,
            "palette": PALETTE,
            "options": {
                "label_zoom": 0 if options.print_mode else options.label_zoom,
                "incident_classes": list(incident_classes()),
                "search": True,
                "osm_credit": options.attribution_osm,
                "features_url": None,
                "remote_min_zoom": 16,
                "remote_limit": 5000,
                "wait_for_clusters": 0,
                "display_crs": self.crs,
                "title": list(options.title),
                "print": options.print_mode,
            },
        }
        self.groups: dict[str, folium.FeatureGroup] = {}
        # (layer key, heading, rows): the page shows a section only while its layer is on
        self.legend: list[tuple[str, str, list[tuple[str, str, str]]]] = []
        self.legend_layers: dict[str, Any] = {}

    def group(self, key: str, name: str) -> None:
        self.groups[key] = _group(self.m, name, show=self.show[key])
        self.legend_layers[key] = self.groups[key]

    def add_roads(self, roads: gpd.GeoDataFrame) -> None:
        """The imported roads as a light reference layer, where no tiles show the streets."""
        self.data["roads"] = prepare_roads(roads, crs=self.crs)
        self.group("roads", self.t["layer_roads"])
        self.legend.append(("roads", "", [("gm-swatch gm-swatch-road", "", self.t["layer_roads"])]))

    def add_communities(self, communities: gpd.GeoDataFrame) -> None:
        self.data["communities"] = prepare_communities(communities, crs=self.crs)
        self.group("communities", self.t["layer_communities"])
        self.legend.append(
            (
                "communities",
                "",
                [("gm-swatch gm-swatch-community", "", self.t["legend_communities"])],
            )
        )

    def add_grids(
        self,
        grids: gpd.GeoDataFrame,
        incidents: gpd.GeoDataFrame | None,
        changed: list[bool] | None,
        before: gpd.GeoDataFrame | None,
    ) -> None:
        t, options = self.t, self.options
        self.data["grids"] = prepare_grids(
            grids,
            incidents=incidents,
            crs=self.crs,
            include_contacts=options.include_contacts,
            tolerance=options.tolerance,
        )
        if changed is not None:
            self.data["grids"]["changed"] = list(changed)
            rows = [
                ("gm-swatch", "background:#e74c3c", t["legend_changed"]),
                ("gm-swatch", "background:#bdc3c7", t["legend_unchanged"]),
            ]
        else:
            sample = f"background:linear-gradient(90deg,{PALETTE[0]},{PALETTE[2]},{PALETTE[3]})"
            rows = [
                ("gm-swatch", sample, t["legend_grids"]),
                ("gm-swatch gm-swatch-flag", "", t["legend_flagged"]),
            ]
        self.legend.append(("grids", "", rows))
        self.group("grids", t["layer_grids"])
        self.group("labels", t["layer_labels"])
        if before is not None and len(before):
            codes = before.assign(community=before["grid_code"].astype(str))
            self.data["before"] = prepare_communities(codes, crs=self.crs)
            self.group("before", t["layer_diff_before"])
        if options.choropleth and changed is None:
            self.add_choropleth(options.choropleth)
        if changed is None:
            self.add_occupancy()

    def add_occupancy(self) -> None:
        """以房管人: grids shaded by their floating residents' share (where records exist)."""
        values = self.data["grids"].get("floating_pct")
        if values is None or all(v is None for v in values):
            return
        scale = cm.linear.Blues_09.scale(-1, len(OCCUPANCY_STEPS) - 1)
        colors = [scale(i)[:7] for i in range(len(OCCUPANCY_STEPS))]
        self.data["occupancy"] = {
            "field": "floating_pct",
            "bins": OCCUPANCY_STEPS,
            "colors": colors,
        }
        title = self.t["layer_occupancy"]
        self.group("occupancy", title)
        rows = [
            ("gm-swatch", f"background:{c}", bin_label(OCCUPANCY_STEPS, i) + "%")
            for i, c in enumerate(colors)
        ]
        rows.append(("gm-swatch", "background:transparent", self.t["legend_no_records"]))
        self.legend.append(("occupancy", title, rows))

    def add_choropleth(self, kind: str) -> None:
        if kind not in ("open", "overdue"):
            raise MapInputError(f"unknown choropleth {kind!r}", hint="use 'open' or 'overdue'")
        values = self.data["grids"][kind]
        if all(v is None for v in values):
            return
        bins = choropleth_bins(values)
        colors = choropleth_colours(len(bins))
        self.data["choropleth"] = {"field": kind, "bins": bins, "colors": colors}
        title = self.t[f"layer_choropleth_{kind}"]
        self.group("choropleth", title)
        rows = [("gm-swatch", f"background:{c}", bin_label(bins, i)) for i, c in enumerate(colors)]
        self.legend.append(("choropleth", title, rows))

    def add_buildings(self, buildings: gpd.GeoDataFrame) -> None:
        self.group("buildings", self.t["layer_buildings"])
        if len(buildings) <= self.options.max_buildings:
            self.data["buildings"] = prepare_buildings(buildings, crs=self.crs)
            label = self.t["legend_buildings"]
        else:
            self.data["options"]["features_url"] = self.options.features_url
            label = self.t["legend_buildings_omitted"]
        self.legend.append(("buildings", "", [("gm-swatch gm-swatch-building", "", label)]))

    def add_data(self, incidents: gpd.GeoDataFrame | None) -> None:
        """The data block (after every layer's data), then the incident layers that read it."""
        t, rows = self.t, []
        if incidents is not None and len(incidents):
            self.data["incidents"], rows = prepare_incidents(incidents, crs=self.crs)
            # The page is "ready" once the visible cluster layer has clustered every marker.
            self.data["options"]["wait_for_clusters"] = int(bool(rows) and self.show["incidents"])
        page_data = MapData(self.data, self.groups, lang=self.lang).add_to(self.m)
        if not rows:
            return
        cluster = plugins.FastMarkerCluster(
            rows,
            callback=page_data.marker_callback(),
            name=escape_html(t["layer_incidents"]),
            show=self.show["incidents"],
            options={
                "maxClusterRadius": 50,
                "disableClusteringAtZoom": 18,
                # One pass: the page counts as drawn only once clustering is done anyway.
                "chunkedLoading": False,
                "chunkProgress": JsCode("window.gridmap.clusterProgress"),
            },
        )
        _with_assets(cluster, "markercluster").add_to(self.m)
        self.legend_layers["incidents"] = cluster
        heat = plugins.HeatMap(
            [row[:2] for row in rows],
            name=escape_html(t["layer_heatmap"]),
            show=self.show["heatmap"],
            radius=18,
            blur=14,
        )
        _with_assets(heat, "heat").add_to(self.m)
        classes = [(f"gm-inc gm-inc-{c}", "", t[f"class_{c}"]) for c in incident_classes()]
        overdue = ("gm-inc gm-inc-other gm-inc-overdue", "", t["legend_overdue"])
        self.legend.append(("incidents", t["legend_incidents"], [*classes, overdue]))

    def add_controls(self) -> None:
        t, m = self.t, self.m
        fullscreen = plugins.Fullscreen(title=t["fullscreen"], title_cancel=t["fullscreen_exit"])
        _with_assets(fullscreen, "fullscreen").add_to(m)
        measure = plugins.MeasureControl(
            primary_length_unit="meters",
            secondary_length_unit="kilometers",
            primary_area_unit="sqmeters",
            secondary_area_unit="hectares",
        )
        _with_assets(measure, "measure").add_to(m)
        locate = plugins.LocateControl(
            strings={
                "title": t["locate"],
                "metersUnit": t["locate_meters"],
                "feetUnit": t["locate_feet"],
                "popup": t["locate_popup"],
                "outsideMapBoundsMsg": t["locate_outside"],
            },
        )
        _with_assets(locate, "locate").add_to(m)
        Legend(t["legend_title"], self.legend, layers=self.legend_layers).add_to(m)
        folium.LayerControl(collapsed=True).add_to(m)

    def fit(self, *layers: gpd.GeoDataFrame | None) -> None:
        bounds = _bounds(*layers)
        if bounds is None:
            return
        if self.crs != "wgs84":
            corners = gpd.GeoSeries(
                gpd.points_from_xy([b[1] for b in bounds], [b[0] for b in bounds]), crs=4326
            )
            bounds = [[float(p.y), float(p.x)] for p in to_display(corners, crs=self.crs)]
        self.m.fit_bounds(bounds)


DEFAULT_SHOW = {
    "grids": True,
    "labels": True,
    "buildings": True,
    "communities": True,
    "incidents": True,
    "heatmap": False,
    "choropleth": False,
    "occupancy": False,
    "before": True,
    "roads": True,
}


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
    """Assemble a map: base map, data layers, controls, legend. See :func:`maps.district_map`.

    ``changed`` flags the grids of a plan diff and ``before`` holds their old outlines;
    ``focus`` is what the view is framed on (default: everything).
    """
    page = _Page(options)
    if options.roads is not None and len(options.roads) and not page.tiles:
        page.add_roads(options.roads)
    if communities is not None and len(communities):
        page.add_communities(communities)
    if grids is not None and len(grids):
        page.add_grids(grids, incidents, changed, before)
    if buildings is not None and len(buildings):
        page.add_buildings(buildings)
    page.add_data(incidents)
    page.add_controls()
    page.fit(*((focus,) if focus is not None else (grids, communities, buildings, incidents)))
    Ready().add_to(page.m)
    return page.m
