"""Regenerate the README's two screenshots from the demo's offline map, in Debian's chromium.

Run ``make demo`` first, then::

    .venv/bin/python docs/screenshots.py

``docs/demo-district.png`` is the whole district as the map opens; ``docs/demo-grids.png`` is a
close-up (zoom 17) on community 001 from its west edge, where grid labels read ``001-005``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from browser import open_page  # noqa: E402

from geo.store import open_store  # noqa: E402

DEMO = ROOT / "demo"
#: the page's Leaflet map (folium names it ``map_<id>``)
LEAFLET_MAP = "Object.values(window).find((value) => value instanceof L.Map)"


def close_up_centre() -> tuple[float, float]:
    """Latitude and longitude that put community 001's west edge at the left of the view."""
    communities = open_store(DEMO / "gridmap.gpkg").read_layer("communities").to_crs(4326)
    first = communities.sort_values("number").geometry.iloc[0]
    west, south, east, north = first.bounds
    return south + (north - south) * 0.62, west + (east - west) * 0.53


def shoot(path: Path, viewport: tuple[int, int], view: tuple[float, float, int] | None) -> None:
    with open_page(DEMO / "map-offline.html", block_network=True, viewport=viewport) as opened:
        page = opened.page
        page.wait_for_function("window.__gridmapReady === true")
        if view is not None:
            lat, lon, zoom = view
            page.evaluate(f"{LEAFLET_MAP}.setView([{lat}, {lon}], {zoom}, {{animate: false}})")
        page.wait_for_timeout(800)  # canvases and labels redraw after the view settles
        page.screenshot(path=str(path))
        if opened.errors or opened.network_requests():
            raise SystemExit(f"{path.name}: {opened.errors or opened.network_requests()}")


def main() -> None:
    if not (DEMO / "map-offline.html").exists():
        raise SystemExit("demo/map-offline.html is missing: run `make demo` first")
    shoot(ROOT / "docs" / "demo-district.png", (1400, 900), None)
    shoot(ROOT / "docs" / "demo-grids.png", (1200, 800), (*close_up_centre(), 17))
    print("docs/demo-district.png, docs/demo-grids.png")


if __name__ == "__main__":
    main()
