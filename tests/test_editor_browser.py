"""The grid editor in Debian's chromium, served by a real uvicorn on the Kunming project.

A planner opens the editor, clicks a building, moves it to a neighbouring grid, sees the counts
and a violation appear, undoes it and sees the violation clear, then publishes with a reason.
Nothing but the local service is reachable from the page.
"""

from __future__ import annotations

import pytest
from api_support import uvicorn_server
from browser import launch, open_page
from playwright.sync_api import Route

from api.auth import create_token
from geo.plans import editing
from geo.plans import store as plans
from geo.storage.store import open_store

pytestmark = pytest.mark.browser

COMMUNITY = "北泰花园"
READY = "window.__gridmapEditorReady === true"


@pytest.fixture
def served(kunming_project):
    """(base URL, planner token, draft plan id, store) with uvicorn serving a private project."""
    store = open_store(kunming_project)
    token = create_token(store, "规划员", "planner")
    draft = editing.copy_plan(store, plans.published_plan_id(store), author="规划员")
    with uvicorn_server(kunming_project) as base:
        yield base, token, draft, store


def only_local(base: str):
    def route(request_route: Route) -> None:
        if request_route.request.url.startswith(base):
            request_route.continue_()
        else:
            request_route.abort()

    return route


def click_building(page, building_id: str) -> None:
    """Zoom to a building and click its middle, as a planner would."""
    x, y = page.evaluate(
        """(id) => {
          const ed = window.__gridmapEditor, map = ed.view.map;
          const i = ed.view.data.buildings.building_id.indexOf(id);
          const layer = ed.buildings[i];
          map.setView(layer.getCenter(), 19, {animate: false});
          const p = map.latLngToContainerPoint(layer.getCenter());
          const box = map.getContainer().getBoundingClientRect();
          return [box.left + p.x, box.top + p.y];
        }""",
        building_id,
    )
    page.mouse.click(x, y)


def grid_counts(page) -> dict[str, int]:
    """The editor's table of buildings per touched grid, as the planner reads it."""
    return {
        row.get_attribute("data-grid"): int(row.query_selector(".gm-ed-n").inner_text())
        for row in page.query_selector_all("#gm-ed-counts tr[data-grid]")
    }


def move_to_nearest_grid_and_undo(page, store, draft, grids, small, building) -> None:
    """Move one building out of a four-building grid: the grid is flagged; undo clears it."""
    click_building(page, building)
    page.wait_for_selector("#gm-ed-target")
    assert building in page.inner_text("#gm-editor")
    options = page.eval_on_selector_all("#gm-ed-target option", "os => os.map(o => o.value)")
    target = options[0]  # the nearest grid of the same community
    assert target in set(grids.index) - {small}
    page.select_option("#gm-ed-target", target)
    page.click("#gm-ed-move")
    page.wait_for_function("window.__gridmapEditorRevision === 1")
    assert grid_counts(page) == {small: 3, target: int(grids.loc[target, "n_buildings"]) + 1}
    flagged = f'#gm-ed-violations li[data-grid="{small}"][data-rule="undersized"]'
    assert page.query_selector(flagged) is not None
    assert "楼栋过少" in page.inner_text(flagged)
    assert plans.load_plan(store, draft).labels[building] == target

    page.click("#gm-ed-undo")
    page.wait_for_function("window.__gridmapEditorRevision === 2")
    assert page.query_selector(flagged) is None
    row = page.query_selector(f'#gm-ed-counts tr[data-grid="{small}"] .gm-ed-n')
    assert row.inner_text() == "4"
    assert plans.load_plan(store, draft).labels[building] == small


def split_two_off_and_undo(page, store, draft, members) -> None:
    """Click one building, shift-click another, move both to a new grid; then undo."""
    first, second = members[:2]
    click_building(page, first)
    page.keyboard.down("Shift")
    click_building(page, second)
    page.keyboard.up("Shift")
    assert "+1" in page.inner_text("#gm-editor h2")
    page.select_option("#gm-ed-target", "")
    page.click("#gm-ed-move")
    page.wait_for_function("window.__gridmapEditorRevision === 3")
    counts = grid_counts(page)
    assert sorted(counts.values()) == [2, 2]
    labels = plans.load_plan(store, draft).labels
    groups = {code: sorted(labels.index[labels == code]) for code in counts}
    assert sorted([first, second]) in groups.values()  # two halves: both get fresh codes
    page.click("#gm-ed-undo")
    page.wait_for_function("window.__gridmapEditorRevision === 4")


def publish_with_a_reason(page, store, draft) -> None:
    """A plan that breaks rules asks for a reason, then publishes with it."""
    page.click("#gm-ed-publish")
    page.wait_for_function("document.getElementById('gm-ed-message').textContent.includes('理由')")
    assert plans.plan_row(store, draft)["status"] == "draft"
    page.fill("#gm-ed-reason", "两个小区楼栋太少，街道办同意")
    page.click("#gm-ed-publish")
    page.wait_for_function(
        "document.getElementById('gm-ed-message').textContent.includes('已发布')"
    )
    row = plans.plan_row(store, draft)
    assert (row["status"], row["override_reason"]) == ("published", "两个小区楼栋太少，街道办同意")
    assert page.is_disabled("#gm-ed-undo")


def test_a_planner_moves_a_building_sees_the_violation_undoes_and_publishes(served):
    base, token, draft, store = served
    plan = plans.load_plan(store, draft)
    grids = plan.grids[plan.grids["community"] == COMMUNITY]
    small = grids.index[grids["n_buildings"] == 4][0]
    members = plan.labels.index[plan.labels == small]
    url = f"{base}/plans/{draft}/edit?token={token}&basemap=none"
    with launch() as browser, open_page(url, browser=browser, route=only_local(base)) as opened:
        page = opened.page
        page.wait_for_function(READY)
        assert "token" not in page.url  # kept in local storage, not in the address bar
        assert "网格编辑" in page.inner_text("#gm-editor")
        move_to_nearest_grid_and_undo(page, store, draft, grids, small, members[0])
        split_two_off_and_undo(page, store, draft, members)
        publish_with_a_reason(page, store, draft)
        with page.expect_popup() as popup:  # the diff against the parent plan, on a map
            page.click("#gm-ed-diff")
        popup.value.wait_for_function("window.__gridmapReady === true")
        assert popup.value.evaluate("Object.values(window.gridmap.maps)[0].data.grids.changed")
        assert not opened.errors, opened.errors
        assert not [r for r in opened.requests if not r.startswith((base, "data:", "blob:"))]


def test_the_editor_fits_a_phone_and_speaks_english_on_request(served):
    base, token, draft, _ = served
    url = f"{base}/plans/{draft}/edit?token={token}&basemap=none&lang=en"
    with open_page(url, route=only_local(base), viewport=(390, 844)) as opened:
        page = opened.page
        page.wait_for_function(READY)
        assert "Grid editor" in page.inner_text("#gm-editor")
        map_box = page.eval_on_selector(".folium-map", "e => e.getBoundingClientRect().toJSON()")
        panel = page.eval_on_selector("#gm-editor", "e => e.getBoundingClientRect().toJSON()")
        assert map_box["width"] == pytest.approx(390, abs=1)
        assert panel["top"] >= map_box["bottom"] - 1  # the panel sits below the map
        assert panel["bottom"] <= 844 + 1
        assert not opened.errors, opened.errors


# -- the editor as a person reads it (issue #21) ---------------------------------------------------


def fills_and_neighbours(page, store, draft) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Each grid's fill on the page, and the pairs of grids that touch in the plan."""
    fills = page.evaluate(
        """() => Object.fromEntries(Object.entries(window.__gridmapEditor.grids)
             .map(([code, layer]) => [code, layer.options.fillColor]))"""
    )
    grids = plans.load_plan(store, draft).grids
    left, right = grids.sindex.query(grids.geometry, predicate="touches")
    codes = list(grids.index)
    pairs = [(codes[a], codes[b]) for a, b in zip(left, right, strict=True) if a < b]
    return fills, pairs


def test_editor_grids_are_coloured_so_neighbours_differ_and_carry_their_codes(served):
    base, token, draft, store = served
    url = f"{base}/plans/{draft}/edit?token={token}&basemap=none"
    with open_page(url, route=only_local(base)) as opened:
        page = opened.page
        page.wait_for_function(READY)
        fills, pairs = fills_and_neighbours(page, store, draft)
        assert len(set(fills.values())) >= 3  # not one mint colour for all
        assert len(pairs) > 20
        assert [(a, b) for a, b in pairs if fills[a] == fills[b]] == []
        first = sorted(fills)[0]
        page.evaluate("(code) => window.__gridmapEditor.focus(code)", first)
        page.wait_for_function("document.querySelectorAll('.gm-label').length > 0")
        labels = page.eval_on_selector_all(".gm-label", "ns => ns.map(n => n.textContent)")
        assert first[9:12] + "-" + first[12:] in labels or first in labels
        sections = page.eval_on_selector_all(
            ".gm-legend-section", "ns => ns.filter(n => n.offsetParent).map(n => n.dataset.layer)"
        )
        assert "grids" in sections  # the legend still lists the grids the editor draws
        assert not opened.errors, opened.errors


def test_choosing_a_move_target_outlines_it_on_the_map(served):
    base, token, draft, store = served
    plan = plans.load_plan(store, draft)
    building = plan.labels.index[
        plan.labels.isin(plan.grids.index[plan.grids["community"] == COMMUNITY])
    ][0]
    url = f"{base}/plans/{draft}/edit?token={token}&basemap=none"
    with open_page(url, route=only_local(base)) as opened:
        page = opened.page
        page.wait_for_function(READY)
        click_building(page, building)
        page.wait_for_selector("#gm-ed-target")
        options = page.eval_on_selector_all("#gm-ed-target option", "os => os.map(o => o.value)")
        target = options[2]
        page.select_option("#gm-ed-target", target)
        colours = page.evaluate(
            """() => Object.fromEntries(Object.entries(window.__gridmapEditor.grids)
                 .map(([code, layer]) => [code, [layer.options.color, layer.options.weight]]))"""
        )
        assert colours[target] == ["#ff6f00", 5]
        assert [code for code, look in colours.items() if look[0] == "#ff6f00"] == [target]
        in_view = page.evaluate(
            """(code) => { const ed = window.__gridmapEditor;
                 return ed.view.map.getBounds().intersects(ed.grids[code].getBounds()); }""",
            target,
        )
        assert in_view


def test_clicking_a_violation_moves_the_map_to_its_grid_and_outlines_it(served):
    base, token, draft, _ = served
    url = f"{base}/plans/{draft}/edit?token={token}&basemap=none"
    with open_page(url, route=only_local(base)) as opened:
        page = opened.page
        page.wait_for_function(READY)
        codes = page.eval_on_selector_all(
            "#gm-ed-violations li[data-grid]", "ns => ns.map(n => n.dataset.grid)"
        )
        assert len(codes) > 5  # Kunming has no roster: every grid lacks a worker
        code = codes[-1]
        before = page.evaluate("window.__gridmapEditor.view.map.getZoom()")
        page.click(f'#gm-ed-violations li[data-grid="{code}"]')
        view = page.evaluate(
            """(code) => { const ed = window.__gridmapEditor, map = ed.view.map;
                 const grid = ed.grids[code];
                 return {zoom: map.getZoom(), contains: map.getBounds().contains(grid.getBounds()),
                         centre: grid.getBounds().contains(map.getCenter()),
                         color: grid.options.color}; }""",
            code,
        )
        assert view["zoom"] > before
        assert view["contains"]
        assert view["centre"]
        assert view["color"] == "#d50000"
        assert "gm-ed-focus" in page.get_attribute(
            f'#gm-ed-violations li[data-grid="{code}"]', "class"
        )


def test_publish_is_in_view_without_scrolling_and_the_phone_panel_folds(served):
    base, token, draft, store = served
    plan = plans.load_plan(store, draft)
    url = f"{base}/plans/{draft}/edit?token={token}&basemap=none"
    with launch() as browser:
        with open_page(url, route=only_local(base), browser=browser) as opened:
            page = opened.page
            page.wait_for_function(READY)
            click_building(page, plan.labels.index[0])
            page.wait_for_selector("#gm-ed-target")
            box = page.locator("#gm-ed-publish").bounding_box()
            assert box["y"] > 0
            assert box["y"] + box["height"] <= 800
        with open_page(url, route=only_local(base), browser=browser, viewport=(390, 844)) as opened:
            page = opened.page
            page.wait_for_function(READY)
            assert page.locator("#gm-ed-publish").bounding_box()["y"] < 844
            page.click("#gm-ed-fold")
            panel = page.locator("#gm-editor").bounding_box()
            map_box = page.locator(".folium-map").bounding_box()
            assert panel["height"] <= 52
            assert map_box["height"] >= 844 - 52 - 1
            assert not page.locator("#gm-ed-publish").is_visible()
            page.click("#gm-ed-fold")
            assert page.locator("#gm-ed-publish").is_visible()
            assert not opened.errors, opened.errors


def test_split_into_named_parts_and_repartition_buttons_edit_the_plan(served):
    base, token, draft, store = served
    plan = plans.load_plan(store, draft)
    grid = plan.grids.index[plan.grids["n_buildings"] == 5][0]
    first, second = plan.labels.index[plan.labels == grid][:2]
    url = f"{base}/plans/{draft}/edit?token={token}&basemap=none"
    with open_page(url, route=only_local(base)) as opened:
        page = opened.page
        page.wait_for_function(READY)
        for building in (first, second):
            click_building(page, building)
            page.click("#gm-ed-add-part")
        assert len(page.query_selector_all("#gm-ed-parts li")) == 2
        page.click("#gm-ed-split-parts")
        page.wait_for_function("window.__gridmapEditorRevision === 1")
        labels = plans.load_plan(store, draft).labels
        assert (
            len({labels[first], labels[second], labels[plan.labels.index[plan.labels == grid][2]]})
            == 3
        )
        community = plan.grids.loc[grid, "community"]
        page.evaluate("(code) => window.__gridmapEditor.selectGrid(code)", labels[first])
        page.click("#gm-ed-repartition-community")
        page.wait_for_function("window.__gridmapEditorRevision === 2")
        steps = editing.history(store, draft)
        assert list(steps["op"]) == ["split", "repartition"]
        after = plans.load_plan(store, draft)
        sizes = after.grids.loc[after.grids["community"] == community, "n_buildings"]
        assert (sizes > 1).all()  # the one-building parts were regrouped with the community
        assert not opened.errors, opened.errors
