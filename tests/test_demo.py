"""``gridmap demo``: the demo district end to end, as `make demo` runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_plans import check_tiling

from geo.demo import demo_district
from geo.plans import store as plans
from geo.storage.store import open_store


def test_the_generator_is_deterministic_and_realistic():
    first, second = demo_district(seed=4), demo_district(seed=4)
    assert first.buildings.geometry.equals(second.buildings.geometry)
    assert 1800 <= len(first.buildings) <= 2200
    assert first.buildings["community"].nunique() >= 4
    assert set(first.buildings["kind"]) == {"slab", "tower", "villa", "village"}
    households = first.buildings.groupby("kind")["households"].agg(["min", "max"])
    assert households.loc["slab", "min"] >= 24
    assert households.loc["slab", "max"] <= 48
    assert households.loc["tower", "min"] >= 100
    assert households.loc["tower", "max"] <= 160
    assert households.loc["village", "max"] <= 3
    lon, lat = first.buildings.to_crs(4326).union_all().centroid.coords[0]
    assert abs(lon - 120.78) < 0.03
    assert abs(lat - 31.66) < 0.03
    overlaps = first.buildings.sindex.query(first.buildings.geometry, predicate="intersects")
    assert (overlaps[0] == overlaps[1]).all()
    assert demo_district(seed=5).buildings.geometry.iloc[-1] != first.buildings.geometry.iloc[-1]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    result = subprocess.run(
        [sys.executable, "-m", "api", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert str(out / "map.html") in result.stdout
    return out


def test_demo_builds_the_project_and_the_maps(demo_dir):
    check_tiling(demo_dir / "gridmap.gpkg")  # no gap, no overlap, every building in its grid
    store = open_store(demo_dir / "gridmap.gpkg")
    plan = plans.load_plan(store)
    assert plan.labels.size == len(store.read_layer("buildings"))
    assert plan.grids["n_buildings"].between(4, 5).mean() > 0.99
    assert plan.grids["worker"].notna().all()  # the roster covers every community
    assert plan.grids.index.str.startswith("320581104").all()
    assert len(store.read_layer("incidents")) == 400
    for name in ("map.html", "map-offline.html"):
        html = (demo_dir / name).read_text(encoding="utf-8")
        assert plan.grids.index[0] in html  # the grid codes are on the map
    assert '<script src="http' not in (demo_dir / "map-offline.html").read_text(encoding="utf-8")


def test_demo_twice_rebuilds_but_never_overwrites_a_real_project(demo_dir, tmp_path, kunming_path):
    again = subprocess.run(
        [sys.executable, "-m", "api", "demo", "--out", str(demo_dir)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stderr
    from geo.usecases import district as project

    real = tmp_path / "gridmap.gpkg"
    project.import_buildings(
        open_store(real, create=True),
        kunming_path,
        options=project.ReadOptions(community_field="community"),
    )
    refused = subprocess.run(
        [sys.executable, "-m", "api", "demo", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert refused.returncode == 4
    assert "不是演示项目" in refused.stderr  # Chinese by default
    assert len(open_store(real).read_layer("buildings")) == 140
