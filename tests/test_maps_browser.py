"""Exported maps in Debian's chromium (Playwright): they load, draw offline, show text as text."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import geopandas as gpd
import pytest
from browser import launch, open_page, serve_vendored
from playwright.sync_api import Route
from test_maps_layers import XSS_STRINGS, make_layers

import maps
from maps import offline

pytestmark = pytest.mark.browser

READY = "window.__gridmapReady === true"
VIEW = "Object.values(window.gridmap.maps)[0]"


@pytest.fixture(scope="module")
def browser():
    with launch() as running:
        yield running


@pytest.fixture(scope="module")
def suzhou(shared_data) -> dict[str, gpd.GeoDataFrame]:
    buildings = gpd.read_file(shared_data / "suzhou_gusu_buildings.geojson")
    return make_layers(buildings, n_incidents=400)


@pytest.fixture(scope="module")
def kunming(shared_data) -> dict[str, gpd.GeoDataFrame]:
    buildings = gpd.read_file(shared_data / "kunming_buildings.geojson")
    return make_layers(buildings, n_incidents=60, untrusted=XSS_STRINGS)


def export(
    layers, path: Path, *, offline_file: bool = True, inline: bool | None = None, **options
) -> Path:
    m = maps.district_map(
        layers["grids"],
        layers["buildings"],
        layers["communities"],
        layers["incidents"],
        offline=offline_file,
        **options,
    )
    inline = offline_file if inline is None else inline
    return maps.save_map(m, path, offline=offline_file, inline=inline)


@pytest.fixture(scope="module")
def kunming_offline(kunming, tmp_path_factory) -> Path:
    return export(kunming, tmp_path_factory.mktemp("maps") / "kunming.html")


PINNED = json.loads((offline.ASSETS_DIR / "package.json").read_text())["dependencies"]


def popup_text(page) -> str:
    """The text of the open popup (once the previous one has faded out)."""
    page.wait_for_function("document.querySelectorAll('.leaflet-popup-content').length === 1")
    return page.inner_text(".leaflet-popup-content")


def test_online_map_loads_its_pinned_assets_without_errors(suzhou, browser, tmp_path):
    """The CDN links are exactly the vendored versions: served from them, the page runs clean."""
    path = export(suzhou, tmp_path / "online.html", offline_file=False, inline=False)
    served, tiles = [], []

    def cdn_from_vendor(route: Route) -> None:
        if serve_vendored(route):
            served.append(route.request.url)
        else:
            tiles.append(route.request.url)
            route.abort()

    with open_page(path, route=cdn_from_vendor, browser=browser) as opened:
        opened.page.wait_for_function(READY)
        stats = opened.page.evaluate("window.__gridmapStats")
        assert opened.errors == []
        assert {url for url in served if url.endswith((".js", ".css"))} == {
            url
            for plugin in offline.PLUGINS
            for _, url in offline.plugin_js(plugin) + offline.plugin_css(plugin)
        }
        assert tiles
        assert all(url.startswith("https://tile.openstreetmap.org/") for url in tiles)
        assert stats["grids"] == len(suzhou["grids"])
        assert stats["buildings"] == len(suzhou["buildings"])
        assert stats["incidents"] == suzhou["incidents"]["geometry"].notna().sum()


def test_a_written_map_with_tiles_asks_the_network_for_tiles_only(kunming, browser, tmp_path):
    """A map file handed on to an intranet has its scripts inside: only the basemap is remote."""
    path = maps.save_map(
        maps.district_map(kunming["grids"], kunming["buildings"]), tmp_path / "t.html"
    )
    asked = []

    def tiles_only(route: Route) -> None:
        asked.append(route.request.url)
        route.abort()

    with open_page(path, route=tiles_only, browser=browser) as opened:
        opened.page.wait_for_function(READY)
        assert opened.errors == []
    assert asked
    assert all(url.startswith("https://tile.openstreetmap.org/") for url in asked)


def test_offline_map_draws_with_every_request_blocked(suzhou, browser, tmp_path):
    path = export(suzhou, tmp_path / "offline.html")
    with open_page(path, block_network=True, browser=browser) as opened:
        page = opened.page
        page.wait_for_function(READY)
        assert opened.errors == []
        assert opened.network_requests() == []
        stats = page.evaluate("window.__gridmapStats")
        assert stats["grids"] == len(suzhou["grids"])
        assert stats["communities"] == len(suzhou["communities"])
        assert stats["incidents"] == len(suzhou["incidents"])
        # The whole district is in view: every grid and building outline was drawn.
        assert page.evaluate(f"{VIEW}.gridSet.drawn") == len(suzhou["grids"])
        assert page.evaluate(f"{VIEW}.buildingSet.drawn") == len(suzhou["buildings"])
        for control in (
            ".leaflet-control-layers",
            ".leaflet-control-measure",
            ".leaflet-control-locate",
            ".leaflet-control-zoom-fullscreen",
            ".gm-search",
            ".gm-legend",
            ".leaflet-control-attribution",
        ):
            assert page.locator(control).count() == 1, control
        assert "OpenStreetMap" in page.inner_text(".leaflet-control-attribution")
        # Incidents: clusters and single markers drawn as DOM icons.
        assert page.locator(".marker-cluster, .gm-inc").count() > 0
        # The canvas holds painted pixels (grids and buildings are drawn on it).
        painted = page.evaluate(
            """() => { let n = 0; for (const c of document.querySelectorAll('canvas.gm-canvas')) {
                       const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                       for (let i = 3; i < d.length; i += 4) if (d[i]) n++; } return n; }"""
        )
        assert painted > 10_000


def test_untrusted_text_is_shown_as_text_and_runs_nothing(kunming, kunming_offline, browser):
    with open_page(kunming_offline, block_network=True, browser=browser) as opened:
        page = opened.page
        page.wait_for_function(READY)
        for i, text in enumerate(XSS_STRINGS):
            page.evaluate(f"new Promise(done => {VIEW}.openIncident({i}, done))")
            shown = popup_text(page)
            assert text in shown  # description (and address) shown literally
            assert (
                page.locator(".leaflet-popup-content img, .leaflet-popup-content script").count()
                == 0
            )
            page.evaluate(f"void {VIEW}.map.closePopup()")
            page.evaluate(f"void {VIEW}.gridSet.openPopup({i})")
            assert text in popup_text(page)  # a worker name holding the same text
            page.evaluate(f"void {VIEW}.buildingSet.openPopup({i})")
            assert text in popup_text(page)  # a building name
        page.fill(".gm-search input", XSS_STRINGS[0])
        page.press(".gm-search input", "Enter")
        page.wait_for_timeout(300)  # an injected onerror would have fired by now
        assert page.evaluate("[window.__x, window.__y, window.__t]") == [None, None, None]
        assert opened.dialogs == []
        assert opened.errors == []


def test_clicking_a_grid_opens_its_facts(kunming, kunming_offline, browser):
    grids = kunming["grids"]
    row = grids[grids["worker"].notna() & ~grids["worker"].isin(XSS_STRINGS)].iloc[0]
    i = int(grids.index.get_loc(row.name))
    with open_page(kunming_offline, block_network=True, browser=browser) as opened:
        page = opened.page
        page.wait_for_function(READY)
        # Leave only the grids to click on.
        page.evaluate(
            f"""() => {{ const v = {VIEW};
                v.map.removeLayer(v.groups.buildings);
                v.map.eachLayer(l => {{ if (l instanceof L.MarkerClusterGroup) v.map.removeLayer(l); }});
                v.map.fitBounds(v.gridSet.bounds({i}), {{animate: false}}); }}"""
        )
        page.wait_for_timeout(200)
        # Click on the grid's label point (inside the grid, shipped in the data block).
        point = page.evaluate(
            f"""() => {{ const v = {VIEW}; const c = v.map.getContainer().getBoundingClientRect();
                const enc = v.data.grids.label.c; let x = 0, y = 0;
                for (let k = 0; k <= 2 * {i}; k += 2) {{ x += enc[k]; y += enc[k + 1]; }}
                const p = v.map.latLngToContainerPoint([y / 1e6, x / 1e6]);
                return [c.left + p.x, c.top + p.y]; }}"""
        )
        page.mouse.click(*point)
        text = popup_text(page)
        assert row["grid_code"] in text
        assert row["community"] in text
        assert row["worker"] in text
        assert f"{int(row['n_buildings'])}" in text
        assert f"{int(row['households'])}" in text
        assert "138" not in text  # no phone without include_contacts


def test_clicking_a_building_opens_its_facts(kunming, kunming_offline, browser):
    buildings = kunming["buildings"]
    i = 20
    inside = buildings.geometry.iloc[[i]].representative_point().to_crs(4326).iloc[0]
    with open_page(kunming_offline, block_network=True, browser=browser) as opened:
        page = opened.page
        page.wait_for_function(READY)
        page.evaluate(
            f"""() => {{ const v = {VIEW};
                v.map.eachLayer(l => {{ if (l instanceof L.MarkerClusterGroup) v.map.removeLayer(l); }});
                v.map.setView([{inside.y}, {inside.x}], 19, {{animate: false}}); }}"""
        )
        page.wait_for_timeout(200)
        point = page.evaluate(
            f"""() => {{ const v = {VIEW}; const c = v.map.getContainer().getBoundingClientRect();
                const p = v.map.latLngToContainerPoint([{inside.y}, {inside.x}]);
                return [c.left + p.x, c.top + p.y]; }}"""
        )
        page.mouse.click(*point)
        text = popup_text(page)
        assert buildings["building_id"].iloc[i] in text
        assert buildings["grid_code"].iloc[i] in text
        assert buildings["address"].iloc[i] in text


def test_incident_popup_has_category_status_and_times(kunming, browser, tmp_path):
    path = export(kunming, tmp_path / "en.html", lang="en")
    incident = kunming["incidents"].iloc[10]
    with open_page(path, block_network=True, browser=browser) as opened:
        page = opened.page
        page.wait_for_function(READY)
        page.evaluate(f"new Promise(done => {VIEW}.openIncident(10, done))")
        text = popup_text(page)
        assert incident["incident_id"] in text
        assert incident["category_code"] in text
        assert incident["category_name"] in text
        assert "Status" in text
        assert "Reported" in text
        assert "Deadline" in text
        assert incident["reported_at"].strftime("%Y-%m-%d %H:%M") in text
        assert incident["description"] in text


def test_search_by_grid_code_opens_the_grid(kunming, kunming_offline, browser):
    code = kunming["grids"]["grid_code"].iloc[7]
    with open_page(kunming_offline, block_network=True, browser=browser) as opened:
        page = opened.page
        page.wait_for_function(READY)
        page.fill(".gm-search input", code)
        page.press(".gm-search input", "Enter")
        assert code in popup_text(page)
        community = kunming["communities"]["community"].iloc[3]
        page.fill(".gm-search input", community)
        page.press(".gm-search input", "Enter")
        assert community in page.inner_text(".gm-search-results")
        page.fill(".gm-search input", "no such place")
        page.press(".gm-search input", "Enter")
        assert page.inner_text(".gm-search-results") == maps.i18n.strings("zh")["search_none"]


def test_layer_control_toggles_the_grids(kunming_offline, browser):
    with open_page(kunming_offline, block_network=True, browser=browser) as opened:
        page = opened.page
        page.wait_for_function(READY)
        page.hover(".leaflet-control-layers")
        names = page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
        assert [n.strip() for n in names][:3] == ["社区边界", "网格", "网格编码"]
        assert page.evaluate(f"{VIEW}.map.hasLayer({VIEW}.groups.grids)")
        page.locator(".leaflet-control-layers-overlays input").nth(1).uncheck()
        assert not page.evaluate(f"{VIEW}.map.hasLayer({VIEW}.groups.grids)")


@pytest.mark.parametrize("basemap", ["osm", "amap"])
def test_too_many_buildings_load_by_bbox_from_the_api(kunming, browser, tmp_path, basemap):
    from geo.crs import from_wgs84

    url = "https://gridmap.test/ogc/collections/buildings/items"
    m = maps.district_map(
        kunming["grids"], kunming["buildings"], max_buildings=10, features_url=url, basemap=basemap
    )
    path = maps.save_map(m, tmp_path / "remote.html")
    buildings = kunming["buildings"].to_crs(4326)
    asked = []

    def api(route: Route) -> None:
        if serve_vendored(route):
            return
        if not route.request.url.startswith(url):
            route.abort()
            return
        asked.append(route.request.url)
        query = parse_qs(urlparse(route.request.url).query)
        west, south, east, north = map(float, query["bbox"][0].split(","))
        inside = buildings.cx[west:east, south:north][["building_id", "address", "geometry"]]
        route.fulfill(
            body=inside.to_json(),
            content_type="application/geo+json",
            headers={"Access-Control-Allow-Origin": "*"},
        )

    with open_page(path, route=api, browser=browser) as opened:
        page = opened.page
        page.wait_for_function(READY)
        page.evaluate(f"void {VIEW}.map.setZoom(13, {{animate: false}})")
        before = len(asked)  # below zoom 16 no building is requested
        page.wait_for_timeout(300)
        assert len(asked) == before
        target = buildings.geometry.iloc[5].representative_point()
        view_x, view_y = (target.x, target.y)
        if basemap == "amap":  # the map shows GCJ-02; the API answers in WGS84
            view_x, view_y = (float(v) for v in from_wgs84(target.x, target.y, crs="gcj02"))
        page.evaluate(f"void {VIEW}.map.setView([{view_y}, {view_x}], 18, {{animate: false}})")
        page.wait_for_function(f"{VIEW}.groups.buildings.getLayers().length > 0")
        query = parse_qs(urlparse(asked[-1]).query)
        west, south, east, north = map(float, query["bbox"][0].split(","))
        assert west < target.x < east  # in WGS84 whatever the basemap
        assert south < target.y < north
        assert query["limit"] == ["5000"]
        drawn = page.evaluate(f"{VIEW}.groups.buildings.getLayers()[0].getLayers().length")
        assert drawn >= 1
        # The served outline is drawn where the map shows it: shifted with the grids over Amap.
        building_id = buildings["building_id"].iloc[5]
        holds_target = page.evaluate(
            f"""() => {{ let hit = false;
                {VIEW}.groups.buildings.getLayers()[0].eachLayer(l => {{
                    if (l.feature.properties.building_id === "{building_id}")
                        hit = l.getBounds().contains([{view_y}, {view_x}]); }});
                return hit; }}"""
        )
        assert holds_target
        assert opened.errors == []


def test_incident_and_diff_maps_draw_offline(kunming, browser, tmp_path):
    incidents_page = maps.save_map(
        maps.incidents_map(kunming["incidents"], kunming["grids"], offline=True, lang="en"),
        tmp_path / "incidents.html",
        offline=True,
    )
    with open_page(incidents_page, block_network=True, browser=browser) as opened:
        page = opened.page
        page.wait_for_function(READY)
        assert opened.errors == []
        assert opened.network_requests() == []
        # The choropleth is the layer shown; the plain grids are off.
        assert page.evaluate(f"{VIEW}.choroplethSet.drawn") == len(kunming["grids"])
        assert not page.evaluate(f"{VIEW}.map.hasLayer({VIEW}.gridSet)")
        assert "Open incidents per grid" in page.inner_text(".gm-legend")

    grids = kunming["grids"]
    changed = grids["grid_code"].iloc[[0, 5]].tolist()
    diff_page = maps.save_map(
        maps.diff_map(grids, grids, changed, offline=True), tmp_path / "diff.html", offline=True
    )
    with open_page(diff_page, block_network=True, browser=browser) as opened:
        page = opened.page
        page.wait_for_function(READY)
        assert opened.errors == []
        assert page.evaluate("window.__gridmapStats.before") == 2
        page.evaluate(f"void {VIEW}.gridSet.openPopup(5)")
        assert "有调整\t是" in popup_text(page)


def test_located_position_is_shifted_onto_amap_tiles(kunming, browser, tmp_path):
    """Over Amap (GCJ-02) the browser's WGS84 position moves with the overlays."""
    from geo.crs import from_wgs84

    path = maps.save_map(
        maps.district_map(kunming["grids"], basemap="amap"), tmp_path / "amap.html"
    )

    def no_network(route: Route) -> None:
        if not serve_vendored(route):
            route.abort()  # Amap tiles

    lon, lat = 102.7183, 25.0406
    expected_lon, expected_lat = from_wgs84(lon, lat, crs="gcj02")
    with open_page(path, route=no_network, browser=browser) as opened:
        page = opened.page
        page.wait_for_function(READY)
        assert opened.errors == []
        shifted = page.evaluate(
            f"""() => {{ const v = {VIEW}; let seen = null;
                v.map.on("locationfound", e => {{ seen = [e.latlng.lat, e.latlng.lng]; }});
                v.map.fire("locationfound", {{latlng: L.latLng({lat}, {lon}), accuracy: 10}});
                return seen; }}"""
        )
        assert shifted == pytest.approx([float(expected_lat), float(expected_lon)], abs=1e-9)
