"""``gridmap map`` on real projects: the map a planner exports opens, offline too, with the right facts."""

from __future__ import annotations

import re

import pytest
from browser import open_page
from typer.testing import CliRunner

from api.cli import app
from geo.plans import store as plans
from geo.storage.store import open_store

runner = CliRunner()
READY = "window.__gridmapReady === true"


def gridmap(*args, lang: str = "en"):
    return runner.invoke(app, [str(a) for a in args], env={"GRIDMAP_LANG": lang})


@pytest.mark.browser
def test_offline_district_map_of_suzhou_draws_every_grid_with_no_network(
    suzhou_project_base, tmp_path
):
    out = tmp_path / "suzhou.html"
    result = gridmap("map", out, "--db", suzhou_project_base, "--offline")
    assert result.exit_code == 0, result.output
    grids = plans.load_plan(open_store(suzhou_project_base)).grids
    with open_page(out, block_network=True) as opened:
        opened.page.wait_for_function(READY)
        assert opened.errors == []
        assert opened.network_requests() == []
        stats = opened.page.evaluate("window.__gridmapStats")
        assert stats["grids"] == len(grids)
        assert stats["buildings"] == 8242
        assert "OpenStreetMap" in opened.page.inner_text(".leaflet-control-attribution")


@pytest.mark.browser
def test_community_and_grid_maps_in_english(kunming_project_base, tmp_path):
    plan = plans.load_plan(open_store(kunming_project_base))
    community = plan.grids["community"].value_counts().idxmax()
    code = plan.grids.index[plan.grids["community"] == community][0]
    for name, extra in (("community", ["--community", community]), ("grid", ["--grid", code])):
        out = tmp_path / f"{name}.html"
        result = gridmap(
            "map", out, "--db", kunming_project_base, "--offline", "--lang", "en", *extra
        )
        assert result.exit_code == 0, result.output
        with open_page(out, block_network=True) as opened:
            opened.page.wait_for_function(READY)
            assert opened.errors == []
            stats = opened.page.evaluate("window.__gridmapStats")
            expected = (plan.grids["community"] == community).sum() if name == "community" else 1
            assert stats["grids"] >= expected
            assert "Legend" in opened.page.inner_text(".gm-legend")
    assert code in (tmp_path / "grid.html").read_text(encoding="utf-8")


def test_map_options_are_checked(kunming_project_base, tmp_path):
    cases = [
        (["--basemap", "google"], "unknown basemap"),
        (["--lang", "fr"], "--lang must be zh or en"),
        (["--grid", "320581104999999"], "no grid"),
        (["--community", "不存在社区"], "不存在社区"),
        (["--since", "yesterday-ish"], "--since must be an ISO 8601 date"),
        (["--until", "0001-01-01"], "outside the supported range"),
    ]
    for args, message in cases:
        result = gridmap("map", tmp_path / "m.html", "--db", kunming_project_base, *args)
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    result = gridmap("map", tmp_path / "m.png", "--db", kunming_project_base)
    assert result.exit_code == 2
    assert ".html" in result.output


@pytest.mark.browser
def test_grid_labels_are_short_below_zoom_18_and_whole_above(kunming_project_base, tmp_path):
    out = tmp_path / "labels.html"
    assert gridmap("map", out, "--db", kunming_project_base, "--offline").exit_code == 0
    grids = plans.load_plan(open_store(kunming_project_base)).grids.to_crs(4326)
    centre = grids.geometry.iloc[0].representative_point()
    view = "Object.values(window.gridmap.maps)[0].map"
    with open_page(out, block_network=True) as opened:
        page = opened.page
        page.wait_for_function(READY)
        texts = {}
        for zoom in (17, 18):
            page.evaluate(
                f"void {view}.setView([{centre.y}, {centre.x}], {zoom}, {{animate: false}})"
            )
            page.wait_for_function("document.querySelectorAll('.gm-label').length > 0")
            texts[zoom] = page.locator(".gm-label").all_inner_texts()
        assert texts[17]
        assert all(re.fullmatch(r"\d{3}-\d{3}", t) for t in texts[17]), texts[17]
        assert all(t in set(grids.index) for t in texts[18]), texts[18]
