"""Every page the service serves works on an intranet without internet, in Debian's chromium.

The browser may reach only the service on 127.0.0.1; every other request is aborted, as on a
government network without internet. The API docs list the routes, each served map draws with
its basemap unreachable, and the grid editor moves a building.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from api_support import role_tokens, uvicorn_server
from browser import launch, open_page
from playwright.sync_api import Browser, Route

from geo.plans import editing
from geo.plans import store as plans
from geo.storage.store import open_store

pytestmark = pytest.mark.browser

MAP_READY = "window.__gridmapReady === true"
EDITOR_READY = "window.__gridmapEditorReady === true"
#: what a map page may still ask the internet for: its tiles, which the map draws without
TILE_HOSTS = ("https://tile.openstreetmap.org/",)


@pytest.fixture(scope="module")
def service(api_db) -> Iterator[dict]:
    """The service on a staffed Kunming project with a draft plan, and one token per role."""
    store = open_store(api_db)
    draft = editing.copy_plan(store, plans.published_plan_id(store), author="规划员")
    grids = store.read_layer("grids", columns=["grid_code", "community"])
    store.engine.dispose()
    tokens = role_tokens(api_db)
    with uvicorn_server(api_db) as base:
        yield {
            "base": base,
            "tokens": tokens,
            "draft": draft,
            "grid": str(grids["grid_code"].iloc[0]),
            "community": str(grids["community"].iloc[0]),
            "db": api_db,
        }


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch() as opened:
        yield opened


def intranet(base: str, refused: list[str]):
    """A route that lets requests to the service through and aborts (and notes) all others."""

    def route(request_route: Route) -> None:
        url = request_route.request.url
        if url.startswith(base + "/"):
            request_route.continue_()
        else:
            refused.append(url)
            request_route.abort()

    return route


def test_the_api_docs_list_the_routes_without_internet(service, browser):
    refused: list[str] = []
    url = f"{service['base']}/docs"
    with open_page(url, browser=browser, route=intranet(service["base"], refused)) as opened:
        opened.page.wait_for_selector(".opblock-summary-path")
        paths = opened.page.eval_on_selector_all(
            ".opblock-summary-path", "nodes => nodes.map(n => n.textContent.trim())"
        )
        assert "/locate" in paths
        assert "/plans/{plan_id}/edit" in paths or "/ogc/collections" in paths
        assert opened.errors == []
    assert refused == []


@pytest.mark.parametrize("page", ["district", "community", "grid", "diff"])
def test_each_served_map_draws_without_internet(service, browser, page):
    base, viewer = service["base"], service["tokens"]["viewer"]
    path = {
        "district": "/maps/district.html",
        "community": f"/maps/communities/{quote(service['community'])}.html",
        "grid": f"/maps/grids/{service['grid']}.html",
        "diff": f"/plans/{service['draft']}/diff/map",
    }[page]
    refused: list[str] = []
    with open_page(
        f"{base}{path}?token={viewer}", browser=browser, route=intranet(base, refused)
    ) as opened:
        opened.page.wait_for_function(MAP_READY)
        assert opened.page.evaluate("Object.keys(window.gridmap.maps).length") == 1
        assert opened.errors == []
    assert refused  # the OpenStreetMap tiles were asked for, and refused
    assert [url for url in refused if not url.startswith(TILE_HOSTS)] == []


def click_building(page, building_id: str) -> None:
    """Zoom to a building and click its middle, as a planner would."""
    x, y = page.evaluate(
        """(id) => {
          const ed = window.__gridmapEditor, map = ed.view.map;
          const layer = ed.buildings[ed.view.data.buildings.building_id.indexOf(id)];
          map.setView(layer.getCenter(), 19, {animate: false});
          const p = map.latLngToContainerPoint(layer.getCenter());
          const box = map.getContainer().getBoundingClientRect();
          return [box.left + p.x, box.top + p.y];
        }""",
        building_id,
    )
    page.mouse.click(x, y)


def test_the_editor_moves_a_building_without_internet(service, browser):
    base, draft = service["base"], service["draft"]
    store = open_store(service["db"])
    plan = plans.load_plan(store, draft)
    shared = plan.grids["community"].duplicated(keep=False)  # communities of several grids
    building = str(plan.labels.index[plan.labels == plan.grids.index[shared][0]][0])
    refused: list[str] = []
    url = f"{base}/plans/{draft}/edit?token={service['tokens']['planner']}"
    with open_page(url, browser=browser, route=intranet(base, refused)) as opened:
        page = opened.page
        page.wait_for_function(EDITOR_READY)
        click_building(page, building)
        page.wait_for_selector("#gm-ed-target")
        target = page.eval_on_selector_all(
            "#gm-ed-target option", "os => os.map(o => o.value).find(v => v)"
        )  # the nearest existing grid ("" is a new one)
        page.select_option("#gm-ed-target", target)
        page.click("#gm-ed-move")
        page.wait_for_function("window.__gridmapEditorRevision === 1")
        assert opened.errors == []
    assert plans.load_plan(store, draft).labels[building] == target
    assert [url for url in refused if not url.startswith(TILE_HOSTS)] == []
