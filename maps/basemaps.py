"""Base maps: OpenStreetMap, Tianditu (vector or imagery, with labels), Amap (GCJ-02), an
intranet's own tiles (``tiles:URL-TEMPLATE``, see :mod:`maps.tiles`), none.

Tianditu uses CGCS2000, which matches WGS84 at map precision; Amap tiles are drawn in GCJ-02,
so a map on Amap shifts its overlays to GCJ-02 (:func:`display_crs`).
"""

from __future__ import annotations

from urllib.parse import quote

import folium

from .escape import escape_html
from .prepare import MapInputError

__all__ = ["BASEMAPS", "add_basemap", "display_crs"]

BASEMAPS = ("osm", "tianditu", "tianditu-vec", "tianditu-img", "amap", "none")

_TIANDITU = "https://t{s}.tianditu.gov.cn/DataServer?T={layer}_w&x={x}&y={y}&l={z}&tk={key}"


def display_crs(basemap: str) -> str:
    """The datum overlays are drawn in over ``basemap``: ``"gcj02"`` for Amap, else ``"wgs84"``.

    Examples
    --------
    >>> display_crs("amap"), display_crs("osm")
    ('gcj02', 'wgs84')
    """
    _check(basemap)
    return "gcj02" if basemap == "amap" else "wgs84"


def _check(basemap: str) -> None:
    if basemap not in BASEMAPS and not basemap.startswith("tiles:"):
        raise MapInputError(
            f"unknown basemap {basemap!r}",
            hint=f"use one of {', '.join(BASEMAPS)} or tiles:PATH|URL",
        )


def add_basemap(
    m: folium.Map, basemap: str, strings: dict[str, str], *, tianditu_key: str | None = None
) -> None:
    """Add the tile layers of ``basemap`` to ``m`` (nothing for ``"none"``).

    Raises
    ------
    MapInputError
        For an unknown basemap, or Tianditu without a key.
    """
    _check(basemap)
    if basemap.startswith("tiles:"):
        folium.TileLayer(
            tiles=basemap.removeprefix("tiles:"),
            attr=escape_html(strings["attribution_tiles"]),
            name=escape_html(strings["basemap_tiles"]),
            max_zoom=20,
            max_native_zoom=18,
        ).add_to(m)
    elif basemap == "osm":
        folium.TileLayer(
            tiles="https://tile.openstreetmap.org/{z}/{x}/{y}.png",
            attr=strings["attribution_osm_tiles"],
            name=escape_html(strings["basemap_osm"]),
            max_zoom=19,
            max_native_zoom=19,
        ).add_to(m)
    elif basemap.startswith("tianditu"):
        if not tianditu_key:
            raise MapInputError("the Tianditu basemap needs a key", hint="set GRIDMAP_TIANDITU_KEY")
        key = quote(tianditu_key, safe="")
        base, labels = ("img", "cia") if basemap == "tianditu-img" else ("vec", "cva")
        common = {
            "attr": strings["attribution_tianditu"],
            "subdomains": "01234567",
            "max_zoom": 20,
            "max_native_zoom": 18,
        }
        folium.TileLayer(
            tiles=_TIANDITU.format(layer=base, key=key, s="{s}", x="{x}", y="{y}", z="{z}"),
            name=escape_html(strings[f"basemap_tianditu_{base}"]),
            **common,
        ).add_to(m)
        folium.TileLayer(
            tiles=_TIANDITU.format(layer=labels, key=key, s="{s}", x="{x}", y="{y}", z="{z}"),
            name=escape_html(strings["basemap_tianditu_labels"]),
            overlay=True,
            **common,
        ).add_to(m)
    elif basemap == "amap":
        folium.TileLayer(
            tiles="https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}",
            attr=strings["attribution_amap"],
            name=escape_html(strings["basemap_amap"]),
            subdomains="1234",
            max_zoom=20,
            max_native_zoom=18,
        ).add_to(m)
