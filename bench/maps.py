"""Map size and time to a drawn map in headless chromium, against ``GeoDataFrame.explore()``.

Buildings are the real Suzhou footprints (8,242) tiled side by side up to 10,000 and 50,000,
with grids of 5, communities and 5,000 incidents built as in the map tests. Each page is opened
in Debian's chromium; "drawn" is the first moment after the load event and two animation frames
(the canvas and SVG renderers have painted), measured from navigation start. CDN files are
served from the vendored copies and tiles are not drawn (``basemap="none"``, ``tiles=None``), so
both pages run the same Leaflet without the network.

Usage: ``.venv/bin/python bench/maps.py [--sizes 10000 50000] [--incidents 5000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import geopandas as gpd  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from browser import launch, open_page  # noqa: E402
from playwright.sync_api import Route  # noqa: E402
from test_maps_layers import make_layers  # noqa: E402

import maps  # noqa: E402
from bench._report import write_section  # noqa: E402
from maps import offline  # noqa: E402

DATA = Path(__import__("os").environ.get("GRIDMAP_SHARED_DATA", ROOT.parent / "shared" / "data"))
DRAWN = """
window.addEventListener("load", () => requestAnimationFrame(() => requestAnimationFrame(() => {
  window.__drawnAt = performance.now();
})));
"""
# explore() links folium's CDN set: Leaflet comes from the vendored copy (1.9.4 for 1.9.3),
# the rest (jQuery, Bootstrap, Font Awesome, awesome-markers) is answered empty: not needed to draw.
FOLIUM_LEAFLET = {
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js": "leaflet/dist/leaflet.js",
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css": "leaflet/dist/leaflet.css",
}


def tiled_footprints(n: int) -> gpd.GeoDataFrame:
    """``n`` real footprints: Suzhou's old town repeated eastwards and northwards."""
    base = gpd.read_file(DATA / "suzhou_gusu_buildings.geojson")
    base = base[base.geom_type.isin(["Polygon", "MultiPolygon"])].to_crs(4549)
    minx, miny, maxx, maxy = base.total_bounds
    width, height = maxx - minx + 100, maxy - miny + 100
    copies, k = [], 0
    while sum(map(len, copies)) < n:
        copy = base.copy()
        copy["geometry"] = copy.translate((k % 3) * width, (k // 3) * height)
        copies.append(copy)
        k += 1
    return gpd.GeoDataFrame(pd.concat(copies, ignore_index=True).head(n), crs=base.crs).to_crs(4326)


def serve_cdn(route: Route) -> None:
    url = route.request.url
    if url in FOLIUM_LEAFLET:
        route.fulfill(path=offline.VENDOR_DIR / FOLIUM_LEAFLET[url])
    elif url.startswith(offline.CDN) and (vendored := _vendored(url)).is_file():
        route.fulfill(path=vendored)
    else:
        route.fulfill(status=200, body="", content_type="text/plain")


def _vendored(url: str) -> Path:
    package_version, _, file = url[len(offline.CDN) + 1 :].partition("/")
    return offline.VENDOR_DIR / package_version.rpartition("@")[0] / file


def time_to_drawn(browser, path: Path, *, repeat: int) -> tuple[float, list[str]]:
    times, errors = [], []
    for _ in range(repeat):
        with open_page(
            path, route=serve_cdn, init_script=DRAWN, browser=browser, timeout_ms=300_000
        ) as opened:
            opened.page.wait_for_function("window.__drawnAt !== undefined", timeout=300_000)
            times.append(opened.page.evaluate("window.__drawnAt") / 1000)
            errors += opened.errors
    return statistics.median(times), errors


def explore_map(layers: dict[str, gpd.GeoDataFrame]):
    m = layers["grids"].explore(tiles=None, name="grids")
    layers["buildings"].explore(m=m, name="buildings")
    layers["communities"].explore(m=m, name="communities")
    layers["incidents"].explore(m=m, name="incidents")
    return m


def run(sizes: list[int], n_incidents: int, repeat: int) -> str:
    rows = []
    with tempfile.TemporaryDirectory(prefix="gridmap-bench-") as tmp, launch() as browser:
        out = Path(tmp)
        for n in sizes:
            t0 = time.perf_counter()
            layers = make_layers(tiled_footprints(n), n_incidents=n_incidents, seed=n)
            built = time.perf_counter() - t0
            print(f"{n:,} buildings: layers built in {built:.1f} s", flush=True)
            args = (
                layers["grids"],
                layers["buildings"],
                layers["communities"],
                layers["incidents"],
            )

            t0 = time.perf_counter()
            ours = maps.save_map(maps.district_map(*args, basemap="none"), out / f"ours-{n}.html")
            ours_build = time.perf_counter() - t0
            t0 = time.perf_counter()
            ours_offline = maps.save_map(
                maps.district_map(*args, offline=True), out / f"offline-{n}.html", offline=True
            )
            offline_build = time.perf_counter() - t0
            t0 = time.perf_counter()
            theirs = explore_map(layers)
            theirs.save(out / f"explore-{n}.html")
            explore_build = time.perf_counter() - t0
            theirs = out / f"explore-{n}.html"

            ours_s, ours_err = time_to_drawn(browser, ours, repeat=repeat)
            offline_s, offline_err = time_to_drawn(browser, ours_offline, repeat=repeat)
            theirs_s, theirs_err = time_to_drawn(browser, theirs, repeat=repeat)
            size = {p: p.stat().st_size / 1e6 for p in (ours, ours_offline, theirs)}
            rows.append(
                {
                    "buildings": n,
                    "grids": len(layers["grids"]),
                    "incidents": len(layers["incidents"]),
                    "ours_mb": size[ours],
                    "offline_mb": size[ours_offline],
                    "explore_mb": size[theirs],
                    "ours_s": ours_s,
                    "offline_s": offline_s,
                    "explore_s": theirs_s,
                    "build_s": (ours_build, offline_build, explore_build, built),
                    "errors": len(ours_err) + len(offline_err),
                    "explore_errors": len(theirs_err),
                }
            )
            print(rows[-1], flush=True)
    return report(rows, n_incidents, repeat)


def report(rows: list[dict], n_incidents: int, repeat: int) -> str:
    lines = [
        f"Command: `.venv/bin/python bench/maps.py --sizes {' '.join(str(r['buildings']) for r in rows)}"
        f" --incidents {n_incidents} --repeat {repeat}` ({time.strftime('%Y-%m-%d')}, chromium "
        f"headless, median of {repeat}). Real Suzhou footprints tiled; grids of 5; {n_incidents:,} incidents.",
        "",
        "| buildings | grids | HTML ours (online / offline) | HTML explore() | size ratio | drawn ours (online / offline) | drawn explore() | speed-up | page errors ours |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['buildings']:,} | {r['grids']:,} | {r['ours_mb']:.1f} MB / {r['offline_mb']:.1f} MB "
            f"| {r['explore_mb']:.1f} MB | {r['ours_mb'] / r['explore_mb']:.2f} "
            f"| {r['ours_s']:.2f} s / {r['offline_s']:.2f} s | {r['explore_s']:.2f} s "
            f"| {r['explore_s'] / r['ours_s']:.1f}x | {r['errors']} |"
        )
    last = rows[-1]
    ok = (
        last["ours_s"] < 2.5
        and last["offline_s"] < 2.5
        and last["ours_mb"] <= last["explore_mb"] / 2
        and last["explore_s"] >= 2 * last["ours_s"]
    )
    lines += [
        "",
        f"Targets at {last['buildings']:,} buildings + {last['incidents']:,} incidents: drawn in < 2.5 s, "
        f"HTML <= half of explore()'s, >= 2x faster: **{'met' if ok else 'NOT met'}**.",
        "Python time to build and write (ours online / offline / explore): "
        + "; ".join(
            f"{r['buildings']:,}: {r['build_s'][0]:.1f} / {r['build_s'][1]:.1f} / {r['build_s'][2]:.1f} s"
            for r in rows
        )
        + ".",
        '"Drawn" = load event + two animation frames after navigation start; explore() draws SVG '
        "paths with per-feature style functions, ours one canvas with styles in JavaScript.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--incidents", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--no-write", action="store_true", help="print, do not update docs/benchmarks.md"
    )
    options = parser.parse_args()
    np.random.seed(0)
    text = run(options.sizes, options.incidents, options.repeat)
    print(text)
    if not options.no_write:
        write_section("maps", text)


if __name__ == "__main__":
    main()
