"""Maps served by the API, in Debian's chromium: opened with ?token=, buildings fetched by bbox.

The page keeps ``?token=`` in memory and out of the address bar, never sends a token the editor
stored, loads a large district's buildings in public mode too, and says so when it cannot.
"""

from __future__ import annotations

import pytest
from api_support import role_tokens, uvicorn_server
from browser import open_page, serve_vendored
from playwright.sync_api import Route

from geo.storage.store import open_store

pytestmark = pytest.mark.browser
READY = "window.__gridmapReady === true"
VIEW = "Object.values(window.gridmap.maps)[0]"
BUILDINGS_URL = "/maps/buildings.geojson"
#: the group holds the layer of the last answer: true once it has footprints in it
DRAWN = f"{VIEW}.groups.buildings.getLayers().some(layer => layer.getLayers().length > 0)"


def only_local(route: Route) -> None:
    if serve_vendored(route):
        return
    if route.request.url.startswith("http://127.0.0.1"):
        route.continue_()
    else:
        route.abort()  # tiles: no internet here


def zoom_to_a_building(page, db) -> None:
    buildings = open_store(db).read_layer("buildings").to_crs(4326)
    target = buildings.geometry.iloc[7].representative_point()
    page.evaluate(f"void {VIEW}.map.setView([{target.y}, {target.x}], 18, {{animate: false}})")


def test_a_large_district_map_loads_buildings_in_view_with_the_page_token(kunming_project):
    tokens = role_tokens(kunming_project)
    # 50 is "a city-sized district" for Kunming's 140 buildings
    with uvicorn_server(kunming_project, GRIDMAP_MAX_EMBEDDED_BUILDINGS="50") as base:
        url = f"{base}/maps/district.html?lang=en&token={tokens['viewer']}"
        with open_page(url, route=only_local) as opened:
            page = opened.page
            page.wait_for_function(READY)
            assert page.url == f"{base}/maps/district.html?lang=en"  # the token left the bar
            assert page.evaluate("window.__gridmapStats").get("buildings", 0) == 0  # not embedded
            zoom_to_a_building(page, kunming_project)
            page.wait_for_function(DRAWN)
            # every fetch of the page, also those made before this test listened
            fetched = page.evaluate(
                f"""performance.getEntriesByType('resource')
                   .filter(e => e.name.includes('{BUILDINGS_URL}'))
                   .map(e => [e.name, e.responseStatus])"""
            )
            # the page's token was sent: every answer is 200 (0: a request the page aborted when
            # the view moved on before it was answered)
            assert any(status == 200 for _, status in fetched), fetched
            assert all(status in (0, 200) for _, status in fetched), fetched
            assert page.evaluate(f"{VIEW}.groups.buildings.getLayers()[0].getLayers().length") >= 1
            assert opened.errors == []


def test_a_public_map_of_a_large_district_draws_buildings_and_never_sends_a_stored_token(
    kunming_project,
):
    planner = role_tokens(kunming_project)["planner"]
    # what the editor of this origin may have left behind, in either storage
    stored = (
        f"localStorage.setItem('gridmap.token', '{planner}');"
        f"sessionStorage.setItem('gridmap.editor.token', '{planner}');"
    )
    sent: list[str | None] = []

    def record(route: Route) -> None:
        if BUILDINGS_URL in route.request.url:
            sent.append(route.request.headers.get("authorization"))
        only_local(route)

    env = {"GRIDMAP_MAX_EMBEDDED_BUILDINGS": "50", "GRIDMAP_PUBLIC_MAPS": "true"}
    with (
        uvicorn_server(kunming_project, **env) as base,
        open_page(f"{base}/maps/district.html", route=record, init_script=stored) as opened,
    ):
        page = opened.page
        page.wait_for_function(READY)
        zoom_to_a_building(page, kunming_project)
        page.wait_for_function(DRAWN)  # anonymous: public mode covers what the page reads
        assert sent
        assert sent == [None] * len(sent)
        assert opened.errors == []


def test_buildings_that_cannot_be_loaded_are_reported_on_the_map(kunming_project):
    tokens = role_tokens(kunming_project)

    def failing(route: Route) -> None:
        if BUILDINGS_URL in route.request.url:
            route.fulfill(status=503, body="down")
        else:
            only_local(route)

    with uvicorn_server(kunming_project, GRIDMAP_MAX_EMBEDDED_BUILDINGS="50") as base:
        url = f"{base}/maps/district.html?lang=en&token={tokens['viewer']}"
        with open_page(url, route=failing) as opened:
            page = opened.page
            page.wait_for_function(READY)
            zoom_to_a_building(page, kunming_project)
            page.wait_for_selector(".gm-notice", state="visible")
            assert page.inner_text(".gm-notice") == "Buildings could not be loaded (503)"


def test_a_map_page_without_any_token_is_refused_with_a_problem(kunming_project):
    with uvicorn_server(kunming_project) as base, open_page(f"{base}/maps/district.html") as opened:
        text = opened.page.inner_text("body")
        assert "token" in text
        assert "Traceback" not in text
