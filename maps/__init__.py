"""Folium rendering of gridmap data: GeoDataFrames in, maps and HTML out.

One function per map (:func:`district_map`, :func:`community_map`, :func:`grid_map`,
:func:`incidents_map`, :func:`diff_map`), and :func:`save_map`/:func:`render_html` to write
them, online (pinned CDN links) or offline (one self-contained file). Data strings never enter
generated JavaScript: they travel in a JSON block and are shown with ``textContent``, and no text
that folium or branca write out is ever run as a template again (:mod:`maps.verbatim`, installed
here before anything renders).
Offline export needs the vendored assets: ``python maps/assets/vendor.py`` (``make vendor``).
"""

from . import verbatim
from .community import community_map
from .diff import diff_map
from .district import district_map
from .grid import grid_map
from .incidents import incidents_map
from .offline import OfflineAssetError
from .prepare import MapInputError
from .render import render_html, save_map

verbatim.install()  # before anything renders: elements are made at render time

__all__ = [
    "MapInputError",
    "OfflineAssetError",
    "community_map",
    "diff_map",
    "district_map",
    "grid_map",
    "incidents_map",
    "render_html",
    "save_map",
]
