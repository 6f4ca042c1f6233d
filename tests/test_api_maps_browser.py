"""Maps served by the API, in Debian's chromium: opened with ?token=, buildings fetched by bbox."""

from __future__ import annotations

import pytest
from api_support import role_tokens, uvicorn_server
from browser import open_page, serve_vendored
from playwright.sync_api import Route

from geo.store import open_store

pytestmark = pytest.mark.browser
READY = "window.__gridmapReady === true"
VIEW = "Object.values(window.gridmap.maps)[0]"


def test_a_large_district_map_loads_buildings_in_view_with_the_page_token(kunming_project):
    tokens = role_tokens(kunming_project)
    buildings = open_store(kunming_project).read_layer("buildings").to_crs(4326)
    target = buildings.geometry.iloc[7].representative_point()

    def only_local(route: Route) -> None:
        if serve_vendored(route):
            return
        if route.request.url.startswith("http://127.0.0.1"):
            route.continue_()
        else:
            route.abort()  # tiles: no internet here

    # 50 is "a city-sized district" for Kunming's 140 buildings
    with uvicorn_server(kunming_project, GRIDMAP_MAX_EMBEDDED_BUILDINGS="50") as base:
        url = f"{base}/maps/district.html?token={tokens['viewer']}"
        with open_page(url, route=only_local) as opened:
            page = opened.page
            page.wait_for_function(READY)
            assert page.evaluate("window.__gridmapStats").get("buildings", 0) == 0  # not embedded
            page.evaluate(
                f"void {VIEW}.map.setView([{target.y}, {target.x}], 18, {{animate: false}})"
            )
            # the group holds the layer of the last answer: wait until it has footprints in it
            page.wait_for_function(
                f"{VIEW}.groups.buildings.getLayers().some(layer => layer.getLayers().length > 0)"
            )
            # every fetch of the page, also those made before this test listened
            fetched = page.evaluate(
                """performance.getEntriesByType('resource')
                   .filter(e => e.name.includes('/ogc/collections/buildings/items'))
                   .map(e => [e.name, e.responseStatus])"""
            )
            assert fetched
            assert all(status == 200 for _, status in fetched)  # the page's token was sent
            assert page.evaluate(f"{VIEW}.groups.buildings.getLayers()[0].getLayers().length") >= 1
            assert opened.errors == []


def test_a_map_page_without_any_token_is_refused_with_a_problem(kunming_project):
    with uvicorn_server(kunming_project) as base, open_page(f"{base}/maps/district.html") as opened:
        text = opened.page.inner_text("body")
        assert "token" in text
        assert "Traceback" not in text
