"""Regenerate the README's pictures from the demo district, in Debian's chromium.

Run ``make demo`` first, then::

    .venv/bin/python docs/screenshots.py

It writes, from ``demo/``:

- ``docs/demo-district.png``: the whole district as the map opens (desktop, 1280x800);
- ``docs/demo-phone.png``: the same map on a phone (390x844), the legend folded;
- ``docs/demo-grids.png``: a close-up (zoom 17) on community 001, where grid codes read ``001-005``;
- ``docs/demo-community.png``: one community's map (``gridmap map --community``);
- ``docs/demo-editor.png``: the grid editor on a draft copy, a violation clicked (served by a real
  uvicorn on a copy of the project, so the demo itself is not changed);
- ``docs/demo-print-a3.png``: the printed A3 landscape sheet (``gridmap print``), drawn by pdftoppm.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from api_support import uvicorn_server  # noqa: E402
from browser import launch, open_page  # noqa: E402

from api.auth import create_token  # noqa: E402
from geo.plans import editing  # noqa: E402
from geo.plans import store as plans  # noqa: E402
from geo.storage.store import open_store  # noqa: E402

DEMO = ROOT / "demo"
DOCS = ROOT / "docs"
GRIDMAP = str(Path(sys.executable).with_name("gridmap"))
#: the page's Leaflet map (folium names it ``map_<id>``)
LEAFLET_MAP = "Object.values(window).find((value) => value instanceof L.Map)"
DESKTOP, PHONE = (1280, 800), (390, 844)


def close_up_centre() -> tuple[float, float]:
    """Latitude and longitude that put community 001's west edge at the left of the view."""
    communities = open_store(DEMO / "gridmap.gpkg").read_layer("communities").to_crs(4326)
    first = communities.sort_values("number").geometry.iloc[0]
    west, south, east, north = first.bounds
    return south + (north - south) * 0.62, west + (east - west) * 0.53


def shoot(
    page_path: Path | str,
    out: Path,
    viewport: tuple[int, int],
    *,
    view: tuple[float, float, int] | None = None,
    ready: str = "window.__gridmapReady === true",
    then: str | None = None,
    browser=None,
) -> None:
    blocked = isinstance(page_path, Path)
    with open_page(page_path, block_network=blocked, viewport=viewport, browser=browser) as opened:
        page = opened.page
        page.wait_for_function(ready)
        if view is not None:
            lat, lon, zoom = view
            page.evaluate(f"{LEAFLET_MAP}.setView([{lat}, {lon}], {zoom}, {{animate: false}})")
        if then:
            page.evaluate(then)
        page.wait_for_timeout(800)  # canvases and labels redraw after the view settles
        page.screenshot(path=str(out))
        if opened.errors:
            raise SystemExit(f"{out.name}: {opened.errors}")
    print(out.relative_to(ROOT))


def community_page(folder: Path) -> Path:
    out = folder / "community.html"
    name = open_store(DEMO / "gridmap.gpkg").read_layer("communities")["community"].iloc[1]
    command = [GRIDMAP, "map", str(out), "--db", str(DEMO / "gridmap.gpkg"), "--offline"]
    subprocess.run([*command, "--community", str(name)], check=True, capture_output=True)
    return out


def editor(folder: Path) -> None:
    """The editor on a draft copy, one grid's violation clicked."""
    db = folder / "editor.gpkg"
    shutil.copyfile(DEMO / "gridmap.gpkg", db)
    store = open_store(db)
    token = create_token(store, "规划员", "planner")
    draft = editing.copy_plan(store, plans.published_plan_id(store), author="规划员")
    plan = plans.load_plan(store, draft)
    grid = str(plan.grids.index[0])
    first = str(plan.labels.index[plan.labels == grid][0])
    args = {"grid": grid, "parts": [[first]]}  # a one-building grid: a violation to click
    editing.apply_edit(store, draft, "split", args, revision=plan.revision, author="规划员")
    store.engine.dispose()
    click = "document.querySelector('#gm-ed-violations li[data-grid]')?.click()"
    with uvicorn_server(db) as base, launch() as browser:
        url = f"{base}/plans/{draft}/edit?token={token}&basemap=none"
        ready = "window.__gridmapEditorReady === true"
        shoot(url, DOCS / "demo-editor.png", DESKTOP, ready=ready, then=click, browser=browser)


def printed(folder: Path) -> None:
    pdf = folder / "district-a3.pdf"
    db = str(DEMO / "gridmap.gpkg")
    subprocess.run(
        [GRIDMAP, "print", str(pdf), "--db", db, "--paper", "A3", "--landscape"], check=True
    )
    subprocess.run(
        ["pdftoppm", "-r", "60", "-png", "-singlefile", str(pdf), str(folder / "a3")], check=True
    )
    shutil.copyfile(folder / "a3.png", DOCS / "demo-print-a3.png")
    print("docs/demo-print-a3.png")


def main() -> None:
    offline = DEMO / "map-offline.html"
    if not offline.exists():
        raise SystemExit("demo/map-offline.html is missing: run `make demo` first")
    with launch() as browser:
        shoot(offline, DOCS / "demo-district.png", DESKTOP, browser=browser)
        shoot(offline, DOCS / "demo-phone.png", PHONE, browser=browser)
        shoot(
            offline,
            DOCS / "demo-grids.png",
            DESKTOP,
            view=(*close_up_centre(), 17),
            browser=browser,
        )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shoot(community_page(folder), DOCS / "demo-community.png", DESKTOP)
        editor(folder)
        printed(folder)


if __name__ == "__main__":
    main()
