"""The district map as a person reads it (issue #21), in Debian's chromium on real footprints.

The legend lists only the layers that are on, its "0" is no grid's colour, community names and a
title are on the map, grid codes sit above the cluster bubbles, the scale bar is metric only, and
on a phone the legend starts folded and opens with one tap.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
from browser import launch, open_page
from test_maps_layers import make_layers
from typer.testing import CliRunner

import maps
from api.cli import app
from geo.plans import store as plans
from geo.storage.store import open_store
from maps.base import PALETTE, choropleth_colours

pytestmark = pytest.mark.browser

READY = "window.__gridmapReady === true"
VIEW = "Object.values(window.gridmap.maps)[0]"
TITLE = ("昆明示范区 网格图", "方案 7 · 2026-12-04")


@pytest.fixture(scope="module")
def browser():
    with launch() as running:
        yield running


@pytest.fixture(scope="module")
def page_path(shared_data, tmp_path_factory) -> Path:
    buildings = gpd.read_file(shared_data / "kunming_buildings.geojson")
    layers = make_layers(buildings, n_incidents=120)
    m = maps.district_map(
        layers["grids"],
        layers["buildings"],
        layers["communities"],
        layers["incidents"],
        offline=True,
        title=TITLE,
    )
    return maps.save_map(m, tmp_path_factory.mktemp("reading") / "district.html", offline=True)


def legend_sections(page) -> list[str]:
    """The layer keys of the legend sections a person can see."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.gm-legend-section')]
             .filter((s) => s.offsetParent !== null).map((s) => s.dataset.layer)"""
    )


def toggle_overlay(page, name: str) -> None:
    """Tick or untick an overlay in the layer control, as a person would."""
    page.hover(".leaflet-control-layers")
    page.locator(".leaflet-control-layers-overlays").get_by_text(name, exact=True).click()


def test_the_legend_lists_only_the_layers_that_are_on(page_path, browser):
    with open_page(page_path, block_network=True, browser=browser) as opened:
        page = opened.page
        page.wait_for_function(READY)
        shown = legend_sections(page)
        assert "grids" in shown
        assert "incidents" in shown
        assert "choropleth" not in shown  # the count ramp's layer is off by default
        toggle_overlay(page, "各网格未结事件数")
        page.wait_for_function(
            "[...document.querySelectorAll('.gm-legend-section')].some("
            "(s) => s.dataset.layer === 'choropleth' && s.offsetParent !== null)"
        )
        toggle_overlay(page, "事件")
        page.wait_for_function(
            "[...document.querySelectorAll('.gm-legend-section')].every("
            "(s) => s.dataset.layer !== 'incidents' || s.offsetParent === null)"
        )
        assert "incidents" not in legend_sections(page)
        assert not opened.errors


def test_no_count_colour_looks_like_a_grid_fill():
    for bins in range(2, 12):
        colours = choropleth_colours(bins)
        assert len(set(colours)) == bins
        assert not set(colours) & {c.lower() for c in PALETTE}
    assert choropleth_colours(11)[0] == "#e0e0e0"


def test_title_community_names_and_a_metric_scale_are_on_the_map(page_path, browser):
    with open_page(page_path, block_network=True, browser=browser) as opened:
        page = opened.page
        page.wait_for_function(READY)
        assert page.inner_text(".gm-title").split("\n") == list(TITLE)
        names = page.evaluate(
            "[...document.querySelectorAll('.gm-community-label')].map((n) => n.textContent)"
        )
        communities = page.evaluate(f"{VIEW}.data.communities.name")
        assert sorted(names) == sorted(communities)
        assert len(names) > 1
        scales = page.locator(".leaflet-control-scale-line")
        assert scales.count() == 1  # no second, imperial bar
        assert scales.inner_text().strip().endswith(("m", "km"))
        assert "ft" not in scales.inner_text()
        assert "mi" not in scales.inner_text()


def test_grid_codes_are_drawn_above_the_cluster_bubbles(page_path, browser):
    with open_page(page_path, block_network=True, browser=browser) as opened:
        page = opened.page
        page.wait_for_function(READY)
        page.evaluate(f"{VIEW}.map.setZoom(17, {{animate: false}})")
        page.wait_for_function("document.querySelectorAll('.gm-label').length > 0")
        z = page.evaluate(
            """() => {
              const pane = (node) => node.closest('.leaflet-pane');
              const label = document.querySelector('.gm-label');
              const marker = document.querySelector('.leaflet-marker-pane');
              return [Number(getComputedStyle(pane(label)).zIndex),
                      Number(getComputedStyle(marker).zIndex),
                      getComputedStyle(pane(label)).pointerEvents];
            }"""
        )
        assert z[0] > z[1], z  # labels' pane over the markers' and bubbles' pane
        assert z[2] == "none"  # and a bubble under a code can still be clicked


def test_on_a_phone_the_legend_starts_folded_and_opens_with_a_tap(page_path, browser):
    with open_page(page_path, block_network=True, browser=browser, viewport=(390, 844)) as opened:
        page = opened.page
        page.wait_for_function(READY)
        legend = page.locator(".gm-legend")
        folded = legend.bounding_box()
        assert folded["height"] < 50
        assert folded["width"] < 150
        assert page.get_attribute(".gm-legend-toggle", "aria-expanded") == "false"
        page.click(".gm-legend-toggle")
        opened_box = legend.bounding_box()
        assert opened_box["height"] > folded["height"] * 3
        assert opened_box["height"] <= 844 * 0.3 + 1
        page.click(".gm-legend-toggle")
        assert legend.bounding_box()["height"] == folded["height"]
        assert not opened.errors


#: the screen boxes of the shown grid codes and community names, in the view
LABEL_BOXES = """() => {
  const boxes = (selector) => [...document.querySelectorAll(selector)]
    .map((n) => n.getBoundingClientRect())
    .filter((r) => r.right > 0 && r.bottom > 0 && r.left < innerWidth && r.top < innerHeight)
    .map((r) => [r.left, r.top, r.right, r.bottom]);
  return [boxes('.gm-label span'), boxes('.gm-community-label span')];
}"""


def _overlap(a: list[float], b: list[float], slack: float = 1.0) -> bool:
    return (
        a[0] < b[2] - slack and b[0] < a[2] - slack and a[1] < b[3] - slack and b[1] < a[3] - slack
    )


@pytest.mark.parametrize("viewport", [(1280, 800), (390, 844)], ids=["desktop", "phone"])
def test_in_a_dense_district_codes_overlap_neither_each_other_nor_the_names(
    suzhou_project_base, tmp_path, browser, viewport
):
    out = tmp_path / "suzhou.html"
    result = CliRunner().invoke(
        app, ["map", str(out), "--db", str(suzhou_project_base), "--offline"]
    )
    assert result.exit_code == 0, result.output
    grids = plans.load_plan(open_store(suzhou_project_base)).grids.to_crs(4326)
    centre = grids.geometry.union_all().centroid
    with open_page(out, block_network=True, browser=browser, viewport=viewport) as opened:
        page = opened.page
        page.wait_for_function(READY)
        page.evaluate(f"void {VIEW}.map.setView([{centre.y}, {centre.x}], 16, {{animate: false}})")
        page.wait_for_function("document.querySelectorAll('.gm-label').length > 20")
        codes, names = page.evaluate(LABEL_BOXES)
    assert len(codes) > 20
    clashes = [(a, b) for i, a in enumerate(codes) for b in codes[i + 1 :] if _overlap(a, b)]
    clashes += [(a, b) for a in codes for b in names if _overlap(a, b)]
    assert not clashes, clashes[:3]


@pytest.mark.parametrize("viewport", [(390, 844), (360, 740)])
def test_on_a_phone_the_credit_scale_title_and_legend_do_not_cover_each_other(
    page_path, browser, viewport
):
    with open_page(page_path, block_network=True, browser=browser, viewport=viewport) as opened:
        page = opened.page
        page.wait_for_function(READY)
        boxes = page.evaluate(
            """() => ['.leaflet-control-attribution', '.leaflet-control-scale', '.gm-title',
                      '.gm-legend'].map((s) => {
                const r = document.querySelector(s).getBoundingClientRect();
                return [r.left, r.top, r.right, r.bottom];
              })"""
        )
    credit = boxes[0]
    assert credit[3] - credit[1] < 20  # one line
    clashes = [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if _overlap(a, b)]
    assert not clashes, clashes
