"""A basemap on the intranet (issue #21): a tile folder, an MBTiles file, an intranet tile URL,
the Tianditu key as a project setting, and the imported roads where no tiles lie under the map.

Real footprints and roads of the Bund; tiles are small PNGs this module writes, each in a colour
of its own, so that the test can tell where a tile came from.
"""

from __future__ import annotations

import math
import sqlite3
import struct
import zlib
from pathlib import Path

import pytest
from api_support import uvicorn_server
from browser import launch, open_page
from playwright.sync_api import Route
from typer.testing import CliRunner

from api.auth import create_token
from api.cli import app
from geo.plans import store as plans
from geo.storage.store import open_store
from geo.usecases import district as project
from geo.usecases.partition import partition_project

pytestmark = pytest.mark.browser

READY = "window.__gridmapReady === true"
VIEW = "Object.values(window.gridmap.maps)[0]"
ZOOM = 16


def png(rgb: tuple[int, int, int], size: int = 256) -> bytes:
    """A plain PNG of one colour (no imaging library needed)."""
    row = b"\x00" + bytes(rgb) * size
    body = zlib.compress(row * size)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


@pytest.fixture(scope="module")
def bund(tmp_path_factory, shared_data) -> Path:
    """The Bund's buildings with its roads, partitioned (no internet: no tiles at all)."""
    db = tmp_path_factory.mktemp("bund") / "bund.gpkg"
    store = open_store(db, create=True)
    project.import_buildings(
        store,
        shared_data / "shanghai_bund_buildings.geojson",
        roads_path=shared_data / "shanghai_bund_roads.geojson",
    )
    partition_project(store, author="test")
    store.engine.dispose()
    return db


@pytest.fixture(scope="module")
def tiles(bund, tmp_path_factory) -> dict:
    """A 3x3 tile folder and an MBTiles file around the Bund's middle at zoom 16."""
    store = open_store(bund)
    box = store.read_layer("buildings").to_crs(4326).total_bounds
    store.engine.dispose()
    cx, cy = tile_of((box[0] + box[2]) / 2, (box[1] + box[3]) / 2, ZOOM)
    folder = tmp_path_factory.mktemp("tiles") / "xyz"
    mbtiles = folder.parent / "bund.mbtiles"
    with sqlite3.connect(mbtiles) as db:
        db.execute("CREATE TABLE tiles (zoom_level, tile_column, tile_row, tile_data)")
        for x in range(cx - 1, cx + 2):
            for y in range(cy - 1, cy + 2):
                (folder / str(ZOOM) / str(x)).mkdir(parents=True, exist_ok=True)
                (folder / str(ZOOM) / str(x) / f"{y}.png").write_bytes(png((200, 230, 255)))
                row = (1 << ZOOM) - 1 - y
                db.execute(
                    "INSERT INTO tiles VALUES (?,?,?,?)", (ZOOM, x, row, png((255, 240, 200)))
                )
    return {"folder": folder, "mbtiles": mbtiles, "centre": (cx, cy)}


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def loaded_tiles(page) -> list[str]:
    """The sources of the tile images the page has loaded."""
    page.wait_for_function(
        "[...document.querySelectorAll('img.leaflet-tile')].some((t) => t.complete && t.naturalWidth)"
    )
    return page.eval_on_selector_all(
        "img.leaflet-tile", "ts => ts.filter(t => t.complete && t.naturalWidth).map(t => t.src)"
    )


def zoom_to_tiles(page) -> None:
    page.evaluate(f"void {VIEW}.map.setZoom({ZOOM}, {{animate: false}})")


def test_a_map_file_shows_a_local_tile_folder_without_any_network(bund, tiles, tmp_path):
    out = tmp_path / "folder.html"
    result = run("map", str(out), "--db", str(bund), "--basemap", f"tiles:{tiles['folder']}")
    assert result.exit_code == 0, result.output
    with open_page(out, block_network=True) as opened:
        opened.page.wait_for_function(READY)
        zoom_to_tiles(opened.page)
        sources = loaded_tiles(opened.page)
        assert sources
        assert all(s.startswith(tiles["folder"].as_uri()) for s in sources)
        assert opened.page.evaluate(f"{VIEW}.data.roads") is None  # tiles show the streets


def test_an_intranet_tile_url_is_used_as_given(bund, tmp_path):
    out = tmp_path / "url.html"
    template = "http://tiles.intranet.example/{z}/{x}/{y}.png"
    assert run("map", str(out), "--db", str(bund), "--basemap", f"tiles:{template}").exit_code == 0
    asked: list[str] = []

    def intranet(route: Route) -> None:
        if route.request.url.startswith("http://tiles.intranet.example/"):
            asked.append(route.request.url)
            route.fulfill(body=png((220, 255, 220)), content_type="image/png")
        else:
            route.abort()

    with open_page(out, route=intranet) as opened:
        opened.page.wait_for_function(READY)
        assert loaded_tiles(opened.page)
        assert asked


def test_without_tiles_the_imported_roads_are_drawn_as_a_light_reference(bund, tmp_path):
    out = tmp_path / "offline.html"
    assert run("map", str(out), "--db", str(bund), "--offline").exit_code == 0
    with open_page(out, block_network=True) as opened:
        page = opened.page
        page.wait_for_function(READY)
        assert page.evaluate("window.__gridmapStats.roads") > 50
        classes = page.evaluate(f"Object.keys({VIEW}.data.roads)")
        assert {"major", "minor", "water"} <= set(classes)  # the Bund's ferries show the river
        sections = page.eval_on_selector_all(
            ".gm-legend-section", "ns => ns.filter(n => n.offsetParent).map(n => n.dataset.layer)"
        )
        assert "roads" in sections
        assert not opened.errors


def with_mbtiles(bund: Path, tiles: dict, folder: Path, *, role: str) -> tuple[Path, str, int]:
    """A copy of the Bund whose basemap is the MBTiles file: (its path, a token, the plan)."""
    db = folder / f"{role}.gpkg"
    db.write_bytes(bund.read_bytes())
    setting = run("settings", "set", "basemap_tiles", str(tiles["mbtiles"]), "--db", str(db))
    assert setting.exit_code == 0, setting.output
    store = open_store(db)
    token = create_token(store, role, role)
    plan_id = plans.published_plan_id(store)
    store.engine.dispose()
    return db, token, plan_id


def test_gridmap_serve_serves_an_mbtiles_file_to_its_map_pages(bund, tiles, tmp_path):
    db, token, _ = with_mbtiles(bund, tiles, tmp_path, role="viewer")
    cx, cy = tiles["centre"]
    with uvicorn_server(db) as base, launch() as browser:
        import urllib.error
        import urllib.request

        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/maps/tiles/{ZOOM}/{cx}/{cy}")
        assert refused.value.code == 401
        with urllib.request.urlopen(f"{base}/maps/tiles/{ZOOM}/{cx}/{cy}?token={token}") as answer:
            assert answer.headers["Content-Type"] == "image/png"
            assert answer.read() == png((255, 240, 200))
        url = f"{base}/maps/district.html?basemap=tiles&token={token}"
        with open_page(
            url,
            browser=browser,
            route=lambda r: r.continue_() if r.request.url.startswith(base) else r.abort(),
        ) as opened:
            opened.page.wait_for_function(READY)
            zoom_to_tiles(opened.page)
            sources = loaded_tiles(opened.page)
            assert all(s.startswith(f"{base}/maps/tiles/{ZOOM}/") for s in sources)
            assert "token" not in opened.page.url


def test_the_editor_and_the_diff_map_draw_over_the_projects_tiles(bund, tiles, tmp_path):
    db, token, plan_id = with_mbtiles(bund, tiles, tmp_path, role="planner")
    pages = [f"/plans/{plan_id}/edit", f"/plans/{plan_id}/diff/map"]
    with uvicorn_server(db) as base, launch() as browser:
        for path in pages:
            url = f"{base}{path}?basemap=tiles&token={token}"
            only_local = lambda r: r.continue_() if r.request.url.startswith(base) else r.abort()  # noqa: E731
            with open_page(url, browser=browser, route=only_local) as opened:
                opened.page.wait_for_function(READY)
                zoom_to_tiles(opened.page)
                sources = loaded_tiles(opened.page)
                assert sources, path
                assert all(s.startswith(f"{base}/maps/tiles/{ZOOM}/") for s in sources), path


def test_the_tianditu_key_is_a_project_setting(bund, tmp_path, monkeypatch):
    monkeypatch.delenv("GRIDMAP_TIANDITU_KEY", raising=False)
    db = tmp_path / "key.gpkg"
    db.write_bytes(bund.read_bytes())
    out = tmp_path / "tianditu.html"
    refused = run("map", str(out), "--db", str(db), "--basemap", "tianditu")
    assert refused.exit_code != 0
    assert "Tianditu" in refused.output or "天地图" in refused.output
    assert run("settings", "set", "tianditu_key", "k3y/+", "--db", str(db)).exit_code == 0
    assert run("map", str(out), "--db", str(db), "--basemap", "tianditu").exit_code == 0
    assert "tk=k3y%2F%2B" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("/no/such/tiles", "no tile folder"),
        ("http://tiles.intranet/{z}/{x}.png", "{y}"),
        ("MBTILES", "MBTiles"),
    ],
)
def test_a_bad_tile_source_is_one_clear_line(bund, tiles, tmp_path, source, words, monkeypatch):
    monkeypatch.setenv("GRIDMAP_LANG", "en")
    source = str(tiles["mbtiles"]) if source == "MBTILES" else source
    result = run("map", str(tmp_path / "x.html"), "--db", str(bund), "--basemap", f"tiles:{source}")
    assert result.exit_code == 2, result.output
    assert words in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "x.html").exists()
