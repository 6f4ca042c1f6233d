"""Rendering a map to HTML: online (CDN or a service's own asset URLs) or one self-contained file."""

from __future__ import annotations

from pathlib import Path

import folium

from .offline import OfflineAssetError, inline_assets, serve_assets_from

__all__ = ["render_html", "save_map"]


def render_html(
    m: folium.Map,
    *,
    offline: bool = False,
    inline: bool | None = None,
    assets_url: str | None = None,
) -> str:
    """The page of ``m``.

    Parameters
    ----------
    offline : bool
        One self-contained file for a machine without any network: every script, style and
        icon inlined, and no tile basemap allowed.
    inline : bool, optional
        Inline the scripts and styles but keep the map's tiles (for a network where the tile
        server is reachable and the CDN is not, e.g. Tianditu inside China). Default: ``offline``.
    assets_url : str, optional
        Where a service serves the vendored assets (``/static/vendor``): the page links Leaflet
        and its plugins there instead of the CDN, so it works without internet. Ignored inline.

    Raises
    ------
    OfflineAssetError
        Offline, if the map has a tile basemap (build it with ``offline=True``); inlining, if the
        vendored assets are missing or any script or stylesheet would still come from the network.
    """
    if offline and any(isinstance(child, folium.TileLayer) for child in m._children.values()):
        raise OfflineAssetError(
            "this map has a tile basemap, which needs the network",
            hint="build it with offline=True (or basemap='none')",
        )
    html = m.get_root().render()
    if offline if inline is None else inline:
        return inline_assets(html)
    return serve_assets_from(html, assets_url) if assets_url else html


def save_map(
    m: folium.Map, path: str | Path, *, offline: bool = False, inline: bool = True
) -> Path:
    """Write ``m`` to ``path`` (UTF-8 HTML) and return the path; see :func:`render_html`.

    A written file has no server beside it to fetch Leaflet from, and the intranet it is opened on
    has no CDN: its scripts and styles are inlined unless ``inline=False``. Tiles stay as the map
    has them (``offline=True`` for none).
    """
    path = Path(path)
    path.write_text(render_html(m, offline=offline, inline=inline), encoding="utf-8")
    return path
