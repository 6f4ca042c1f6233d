"""The map of a county or city: one outline per street, coloured by a figure, each opening into
the street's own grid map.

A county office looks at its streets before it looks at any grid. This page draws the frame
:func:`geo.usecases.divisions.division_rollup` returns (one row per street: its outline in WGS84
and its figures) and never sees a store. Each street shows its name and figures in a tooltip and
a popup; the popup and the list beside the map link to the street's own map (``links``), written
by the caller next to this page, so the whole set opens from a folder on an intranet.

Examples
--------
>>> m = division_map(streets, links={"320581104": "county_files/320581104.html"})  # doctest: +SKIP
>>> save_map(m, "county.html", offline=True)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import shapely
from branca.element import MacroElement
from jinja2 import Template

from .base import bin_label, choropleth_bins, choropleth_colours
from .basemaps import add_basemap, display_crs
from .escape import escape_html, json_for_html
from .i18n import strings
from .offline import plugin_css, plugin_js
from .prepare import MapInputError, to_display

__all__ = ["division_map"]

_LABELS = {
    "zh": {
        "buildings": "建筑",
        "communities": "社区",
        "grids": "网格",
        "workers": "网格员",
        "reported": "事件",
        "open": "在办事件",
        "overdue": "超期事件",
        "closed": "已结案",
        "closure_rate": "结案率",
        "open_map": "打开网格图",
        "no_map": "尚无已发布的网格方案",
        "streets": "街道",
    },
    "en": {
        "buildings": "Buildings",
        "communities": "Communities",
        "grids": "Grids",
        "workers": "Workers",
        "reported": "Cases",
        "open": "Open cases",
        "overdue": "Overdue cases",
        "closed": "Closed",
        "closure_rate": "Closure rate",
        "open_map": "Open the grid map",
        "no_map": "no published grid plan yet",
        "streets": "Streets",
    },
}
_STYLE = """<style>
.gm-divisions{position:absolute;z-index:1000;top:10px;right:10px;max-width:260px;
max-height:60vh;overflow:auto;background:#fff;padding:8px 10px;border-radius:4px;
box-shadow:0 1px 4px rgba(0,0,0,.3);font:13px/1.5 sans-serif}
.gm-divisions h4{margin:0 0 4px;font-size:14px}.gm-divisions ol{margin:4px 0;padding-left:18px}
.gm-division-label{background:rgba(255,255,255,.85);font-weight:bold;text-align:center}
.gm-swatch{display:inline-block;width:14px;height:10px;margin-right:4px;border:1px solid #999}
.gm-popup td{padding:0 6px 0 0}.gm-popup td+td{text-align:right}
@media (max-width:600px){.gm-divisions{top:auto;bottom:48px;right:8px;left:8px;max-width:none;
max-height:30vh;font-size:12px}}
</style>"""


def division_map(
    divisions: gpd.GeoDataFrame,
    *,
    figures: Sequence[str],
    links: Mapping[str, str | None] | None = None,
    colour_by: str = "open",
    lang: str = "zh",
    basemap: str = "none",
    tianditu_key: str | None = None,
    title: Sequence[str] = (),
) -> folium.Map:
    """One polygon per row of ``divisions``, coloured by ``colour_by``, opening into ``links``.

    Parameters
    ----------
    divisions : GeoDataFrame
        Indexed by division code: ``name``, the ``figures`` and optionally ``closure_rate``;
        outlines in any CRS (a row without one is listed only).
    figures : sequence of str
        The count columns a popup lists, in order (geo decides which: the caller passes them).
    links : mapping, optional
        Each code's own map, relative to this page (None: it has none yet).
    colour_by : str
        The count column the fill shows (``open``, ``overdue``, ``reported`` ...).
    lang, basemap : str
        ``zh`` | ``en``; as :func:`maps.basemaps.add_basemap` (``"none"`` opens offline).
    title : sequence of str
        Lines above the list of divisions.

    Raises
    ------
    MapInputError
        ``divisions`` lacks ``colour_by``, or the basemap is unknown.
    """
    if colour_by not in divisions.columns:
        raise MapInputError(
            f"the divisions have no column {colour_by!r} to colour by",
            hint=f"use one of {', '.join(c for c in figures if c in divisions.columns)}",
        )
    labels = _LABELS["en" if lang == "en" else "zh"]
    links = dict(links or {})
    m = _blank_map(basemap, lang=lang, tianditu_key=tianditu_key)
    shapes = to_display(divisions.geometry, crs=display_crs(basemap))
    values = divisions[colour_by].fillna(0).astype(int).tolist()
    bins = choropleth_bins(values)
    colours = choropleth_colours(len(bins))
    for (code, row), shape, value in zip(divisions.iterrows(), shapes, values, strict=True):
        if shape is None or shape.is_empty:
            continue
        colour = colours[int(np.searchsorted(bins, value, side="right")) - 1]
        look = {"colour": colour, "colour_by": colour_by, "figures": figures}
        _add_division(m, str(code), row, shape, links.get(str(code)), labels, look)
    m.get_root().header.add_child(folium.Element(_STYLE))
    panel = _panel(divisions, links, labels, colour_by, bins, colours, title)
    m.get_root().html.add_child(folium.Element(panel))
    present = shapes[~shapes.is_empty & shapes.notna()]
    if len(present):
        minx, miny, maxx, maxy = present.total_bounds.tolist()
        m.fit_bounds([[miny, minx], [maxy, maxx]])
    return m


def _blank_map(basemap: str, *, lang: str, tianditu_key: str | None) -> folium.Map:
    """A Leaflet map with the pinned (vendored) Leaflet and ``basemap``'s tiles, if any."""
    m = folium.Map(location=[0, 0], zoom_start=2, tiles=None, control_scale=False, maxZoom=20)
    m.default_js = plugin_js("leaflet")
    m.default_css = plugin_css("leaflet")
    add_basemap(m, basemap, strings(lang), tianditu_key=tianditu_key)
    _Credit(strings(lang)["osm_credit_html"]).add_to(m)  # the outlines come from the footprints
    return m


class _Credit(MacroElement):
    """The building data's credit in Leaflet's attribution box, as the grid maps give it."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "{{ this._parent.get_name() }}.attributionControl.addAttribution({{ this.credit }});"
        "{% endmacro %}"
    )

    def __init__(self, credit: str) -> None:
        super().__init__()
        self._name = "DivisionCredit"
        self.credit = json_for_html(credit)


def _add_division(
    m: folium.Map,
    code: str,
    row: Mapping,
    shape: shapely.Geometry,
    link: str | None,
    labels: Mapping[str, str],
    look: Mapping[str, Any],
) -> None:
    """The division's outline with its label (name, code, the coloured figure) and popup."""
    name = str(row.get("name") or "")
    heading = f"{escape_html(name)} {escape_html(code)}".strip()
    colour, colour_by = look["colour"], look["colour_by"]
    figures = "".join(
        f"<tr><td>{escape_html(labels.get(f, f))}</td><td>{int(row[f])}</td></tr>"
        for f in look["figures"]
        if f in row and row[f] == row[f]
    )
    rate = row.get("closure_rate")
    if rate is not None and rate == rate:
        figures += f"<tr><td>{escape_html(labels['closure_rate'])}</td><td>{rate:.0%}</td></tr>"
    opening = (
        f'<a href="{escape_html(link)}" target="_self">{escape_html(labels["open_map"])}</a>'
        if link
        else escape_html(labels["no_map"])
    )
    html = f'<div class="gm-popup"><b>{heading}</b><table>{figures}</table>{opening}</div>'
    style = {"fillColor": colour, "color": "#333", "weight": 2, "fillOpacity": 0.6}
    outline = folium.GeoJson(
        shapely.geometry.mapping(shape),
        name=heading,
        style_function=lambda _feature, style=style: style,
        highlight_function=lambda _feature: {"weight": 4, "fillOpacity": 0.8},
    ).add_to(m)
    value = f"{escape_html(labels.get(colour_by, colour_by))} {int(row[colour_by])}"
    _Bindings(f"{heading}<br>{value}", html).add_to(outline)


class _Bindings(MacroElement):
    """The outline's label and popup, bound by Leaflet itself: folium's Popup builds its
    content with jQuery, which a page of Leaflet alone does not load. Both texts are JSON-escaped
    HTML strings. A tap on the label opens the popup too (a phone has no hover, and the label is
    what one sees of a street)."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "{% set layer = this._parent.get_name() %}"
        "{{ layer }}.bindTooltip({{ this.tooltip }}, {permanent: true, interactive: true, "
        "direction: 'center', className: 'gm-division-label'});"
        "{{ layer }}.bindPopup({{ this.popup }}, {maxWidth: 300});"
        "{{ layer }}.getTooltip().on('click', function () {"
        " {{ layer }}.openPopup({{ layer }}.getTooltip().getLatLng()); });"
        "{% endmacro %}"
    )

    def __init__(self, tooltip: str, popup: str) -> None:
        super().__init__()
        self._name = "DivisionBindings"
        self.tooltip = json_for_html(tooltip)
        self.popup = json_for_html(popup)


def _panel(
    divisions: gpd.GeoDataFrame,
    links: Mapping[str, str | None],
    labels: Mapping[str, str],
    colour_by: str,
    bins: list[int],
    colours: list[str],
    title: Sequence[str],
) -> str:
    """The box beside the map: title, the colour key and every division linking to its map."""
    heads = "".join(f"<h4>{escape_html(line)}</h4>" for line in title)
    key = " ".join(
        f'<span class="gm-swatch" style="background:{c}"></span>{escape_html(bin_label(bins, i))}'
        for i, c in enumerate(colours)
    )
    items = []
    for code, row in divisions.iterrows():
        text = escape_html(f"{row.get('name') or ''} {code}".strip())
        link = links.get(str(code))
        entry = f'<a href="{escape_html(link)}" target="_self">{text}</a>' if link else text
        items.append(
            f"<li>{entry} · {escape_html(labels.get(colour_by, colour_by))} {int(row[colour_by])}</li>"
        )
    return (
        f'<div class="gm-divisions">{heads}<div>{escape_html(labels.get(colour_by, colour_by))}: {key}</div>'
        f"<ol>{''.join(items)}</ol></div>"
    )
