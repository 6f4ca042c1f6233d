"""Map size and time to a drawn map in headless chromium, against ``GeoDataFrame.explore()``.

Buildings are the real Suzhou footprints (8,242) tiled side by side up to 10,000 and 50,000,
with grids of 5, communities and 5,000 incidents built as in the map tests. Each page is opened
in Debian's chromium with every network request refused; "drawn" is the later of the load event
plus two animation frames (the canvas and SVG renderers have painted) and, for our pages, the
``window.__gridmapReady`` mark (markers clustered, canvases painted), from navigation start.
Online pages get their CDN files from the vendored copies on disk (as if cached) and no tiles
(``basemap="none"``, ``tiles=None``), so both run the same Leaflet.

Usage: ``.venv/bin/python bench/maps.py [--sizes 10000 50000] [--incidents 5000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import os
import re
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
from test_maps_layers import make_layers  # noqa: E402

import maps  # noqa: E402
from bench._report import write_section  # noqa: E402
from maps import offline  # noqa: E402

DATA = Path(os.environ.get("GRIDMAP_SHARED_DATA", ROOT.parent / "shared" / "data"))
DRAWN = """
window.addEventListener("load", () => requestAnimationFrame(() => requestAnimationFrame(() => {
  window.__drawnAt = performance.now();
})));
"""
# Drawn = the later of the two marks (ours: clustering may finish after the load event).
DRAWN_AT = "Math.max(window.__drawnAt, window.__gridmapReadyAt || 0)"
# explore() links folium's CDN set: Leaflet comes from the vendored copy (1.9.4 for 1.9.3),
# the rest (jQuery, Bootstrap, Font Awesome, awesome-markers) is answered empty: not needed to draw.
FOLIUM_LEAFLET = {
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js": "vendor:leaflet/dist/leaflet.js",
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css": "vendor:leaflet/dist/leaflet.css",
}
# Our pages set window.__gridmapReady once clustering is done and the canvases painted; explore()
# pages are drawn when the load event has passed and two frames have painted.
READY = "window.__drawnAt !== undefined && (!window.gridmap || window.__gridmapReady === true)"


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


_REMOTE_TAG = re.compile(
    r'<script src="(https?://[^"]+)"></script>|<link rel="stylesheet" href="(https?://[^"]+)"/>'
)


def localise(path: Path) -> Path:
    """A copy of an online page whose CDN files come from disk, as if cached by the browser.

    Pinned jsDelivr files map to the vendored copies (folium's Leaflet 1.9.3 to the vendored
    1.9.4); the rest of folium's default set (jQuery, Bootstrap, Font Awesome, awesome-markers)
    is dropped: nothing on these pages uses it, and leaving it out only helps explore().
    """

    def local(match: re.Match[str]) -> str:
        url = match.group(1) or match.group(2)
        file = _vendored(FOLIUM_LEAFLET.get(url, url))
        if file is None:
            return ""
        tag = match.group(0)
        return tag.replace(url, file.as_uri())

    html = _REMOTE_TAG.sub(local, path.read_text(encoding="utf-8"))
    out = path.with_name(f"local-{path.name}")
    out.write_text(html, encoding="utf-8")
    return out


def _vendored(url: str) -> Path | None:
    if url.startswith("vendor:"):
        return offline.VENDOR_DIR / url.removeprefix("vendor:")
    if not url.startswith(offline.CDN):
        return None
    package_version, _, file = url[len(offline.CDN) + 1 :].partition("/")
    path = offline.VENDOR_DIR / package_version.rpartition("@")[0] / file
    return path if path.is_file() else None


def time_to_drawn(browser, path: Path, *, repeat: int) -> tuple[float, list[str]]:
    """Median seconds from navigation start to drawn, with every network request refused."""
    times, errors = [], []
    for _ in range(repeat):
        with open_page(
            path, block_network=True, init_script=DRAWN, browser=browser, timeout_ms=120_000
        ) as opened:
            opened.page.wait_for_function(READY, timeout=120_000)
            times.append(opened.page.evaluate(DRAWN_AT) / 1000)
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

            ours_s, ours_err = time_to_drawn(browser, localise(ours), repeat=repeat)
            offline_s, offline_err = time_to_drawn(browser, ours_offline, repeat=repeat)
            theirs_s, theirs_err = time_to_drawn(browser, localise(theirs), repeat=repeat)
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
        f"Load average when the run ended: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
        "(the machine is shared; figures scale with it).",
        '"Drawn" = load event + two animation frames after navigation start (ours: also markers '
        "clustered); explore() draws SVG paths with per-feature style functions, ours canvases "
        "with styles in JavaScript. Online pages read their CDN files from disk.",
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
