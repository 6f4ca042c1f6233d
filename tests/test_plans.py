"""Plans on real districts: partition into the project file, boundaries, codes, workers, publish."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from typer.testing import CliRunner

from api.cli import app
from geo.errors import Conflict
from geo.grids import boundaries, codes
from geo.plans import publish as publishing
from geo.plans import store as plans
from geo.plans.diff import diff_plans
from geo.storage.store import open_store
from geo.usecases.partition import PartitionOptions, partition_project

runner = CliRunner()


def gridmap(*args, lang: str = "en"):
    return runner.invoke(app, [str(a) for a in args], env={"GRIDMAP_LANG": lang})


def check_tiling(db) -> pd.DataFrame:
    """The issue's properties of the published grids, community by community."""
    store = open_store(db)
    plan = plans.load_plan(store)
    buildings = store.read_layer("buildings").set_index("building_id", drop=False)
    labels = plan.labels.reindex(buildings.index)
    communities = store.read_layer("communities")
    report = boundaries.coverage_report(
        plan.grids, buildings, labels=labels, community_outlines=communities
    )
    assert report["coverage_is_valid"].all(), report[~report["coverage_is_valid"]]
    assert (report["overlap_m2"] < 1e-6).all()
    assert (report["gap_m2"] < 1e-3).all(), report.sort_values("gap_m2").tail()
    assert (report["n_outside"] == 0).all(), report[report["n_outside"] > 0]
    return report


def check_codes(grids: gpd.GeoDataFrame, division: str = "000000000") -> None:
    """Codes are well formed and carry ``division`` (the placeholder where none was set)."""
    assert grids.index.is_unique
    assert all(codes.is_valid_grid_code(code) for code in grids.index)
    assert all(code.startswith(division) for code in grids.index)


def test_kunming_grids_tile_each_compound_with_codes(kunming_project_base):
    check_tiling(kunming_project_base)
    plan = plans.load_plan(open_store(kunming_project_base))
    check_codes(plan.grids)
    flagged = plan.grids[plan.grids["status"] != "ok"]
    sizes = flagged.groupby("community")["n_buildings"].sum().sort_values().tolist()
    assert sizes == [2, 2, 3, 3, 6, 6]  # the compounds whose count makes 4 to 5 impossible
    assert flagged["reason"].str.len().gt(10).all()
    ok = plan.grids[plan.grids["status"] == "ok"]
    assert ok["n_buildings"].between(4, 5).all()
    assert plan.grids["contiguous"].all()


def test_suzhou_grids_tile_every_community(suzhou_project_base):
    report = check_tiling(suzhou_project_base)
    assert len(report) > 50
    plan = plans.load_plan(open_store(suzhou_project_base))
    check_codes(plan.grids)
    assert plan.labels.size == 8242
    feasible = (
        plan.grids.groupby("community")["n_buildings"]
        .sum()
        .map(lambda n: any(k * 4 <= n <= k * 5 for k in range(1, n + 1)))
    )
    in_feasible = plan.grids["community"].map(feasible)
    assert plan.grids.loc[in_feasible, "n_buildings"].between(4, 5).all()


def test_the_published_grids_layer_opens_in_gdal_with_the_facts(kunming_project_base, tmp_path):
    out = tmp_path / "grids.gpkg"
    result = gridmap("export", out, "--db", kunming_project_base, "--layer", "grids")
    assert result.exit_code == 0, result.output
    grids = gpd.read_file(out)
    for column in (
        "grid_code",
        "community",
        "worker",
        "n_buildings",
        "households",
        "area_m2",
        "diameter_m",
        "contiguous",
        "status",
        "reason",
    ):
        assert column in grids.columns, column
    assert grids.crs.to_epsg() == 4326
    assert "phone" not in grids.columns
    buildings = tmp_path / "buildings.geojson"
    assert gridmap("export", buildings, "--db", kunming_project_base).exit_code == 0
    exported = gpd.read_file(buildings)
    assert exported["grid_code"].notna().all()
    assert set(exported["grid_code"]) == set(grids["grid_code"])


def test_partition_cli_prints_the_summary_and_flags(kunming_project):
    result = gridmap("partition", "--db", kunming_project, "--draft")
    assert result.exit_code == 0, result.output
    for label in (
        "buildings",
        "grids",
        "share in range",
        "contiguous share",
        "mean diameter",
        "draft",
    ):
        assert label in result.output
    assert "fewer than 4" in result.output
    assert "cannot be split" in result.output
    assert "gridmap plan publish 2" in result.output


def test_a_rerun_keeps_every_code_of_unchanged_grids(kunming_project):
    store = open_store(kunming_project)
    first = plans.load_plan(store)
    outcome = partition_project(store, options=PartitionOptions(seed=0), publish=True)
    second = plans.load_plan(store, outcome.plan_id)
    assert second.plan_id != first.plan_id
    # the same input and seed give the same grids, and so the same codes
    pd.testing.assert_series_equal(first.labels.sort_index(), second.labels.sort_index())


def test_a_community_repartition_keeps_the_others_and_issues_fresh_codes(kunming_project):
    store = open_store(kunming_project)
    first = plans.load_plan(store)
    target = first.grids.groupby("community").size().idxmax()
    outcome = partition_project(
        store, options=PartitionOptions(communities=[target], seed=5), publish=True
    )
    second = plans.load_plan(store, outcome.plan_id)
    others = first.grids.index[first.grids["community"] != target]
    assert set(others) <= set(second.grids.index)
    moved_codes = set(second.grids.index) - set(first.grids.index)
    issued = plans.issued_codes(store)
    assert moved_codes <= issued
    # a code is never reused for different buildings: every code names one building set
    members = second.labels.groupby(second.labels).apply(lambda s: frozenset(s.index))
    earlier = first.labels.groupby(first.labels).apply(lambda s: frozenset(s.index))
    for code in set(members.index) & set(earlier.index):
        assert members[code] == earlier[code]


def test_locked_grids_survive_a_rerun(kunming_project):
    store = open_store(kunming_project)
    first = plans.load_plan(store)
    code = first.grids.index[first.grids["status"] == "ok"][0]
    with store.transaction() as conn:
        store.update_rows(
            conn,
            "plan_grids",
            pd.DataFrame({"locked": [True], "plan_id": [first.plan_id], "grid_code": [code]}),
            key=["plan_id", "grid_code"],
        )
    outcome = partition_project(store, options=PartitionOptions(seed=11), publish=True)
    second = plans.load_plan(store, outcome.plan_id)
    assert bool(second.grids.loc[code, "locked"])
    assert set(second.labels[second.labels == code].index) == set(
        first.labels[first.labels == code].index
    )


def test_workers_are_assigned_fairly_and_phones_stay_private(kunming_project, tmp_path):
    store = open_store(kunming_project)
    communities = store.read_layer("communities")["community"].tolist()
    roster = pd.DataFrame(
        {
            "工号": [f"W{i:02d}" for i in range(len(communities) - 1)],
            "姓名": [f"网格员{i}" for i in range(len(communities) - 1)],
            "手机号": [f"139{i:08d}" for i in range(len(communities) - 1)],
            "社区": communities[:-1],  # the last community has nobody
        }
    )
    path = tmp_path / "roster.csv"
    roster.to_csv(path, index=False, encoding="gbk")
    result = gridmap("workers", "import", path, "--db", kunming_project)
    assert result.exit_code == 0, result.output
    result = gridmap("workers", "assign", "--db", kunming_project)
    assert result.exit_code == 0, result.output
    assert "grids without a worker" in result.output
    grids = publishing.published_grids(store)
    unstaffed = grids["community"] == communities[-1]
    assert grids.loc[~unstaffed, "worker"].notna().all()
    assert grids.loc[unstaffed, "worker"].isna().all()
    assert grids.groupby("community")["worker_id"].nunique().max() == 1
    out = tmp_path / "grids.csv"
    assert gridmap("export", out, "--db", kunming_project, "--layer", "grids").exit_code == 0
    text = out.read_text(encoding="utf-8")
    assert not any(phone in text for phone in roster["手机号"])


def test_publishing_a_plan_with_violations_needs_a_recorded_reason(kunming_project):
    store = open_store(kunming_project)
    draft = partition_project(store, publish=False).plan_id
    with pytest.raises(Conflict, match="override"):
        publishing.publish_plan(store, draft)
    result = gridmap(
        "plan",
        "publish",
        str(draft),
        "--db",
        kunming_project,
        "--override",
        "compounds too small, agreed with the street office",
    )
    assert result.exit_code == 0, result.output
    row = plans.plan_row(store, draft)
    assert row["status"] == "published"
    assert "street office" in row["override_reason"]
    assert plans.published_plan_id(store) == draft


def test_plan_diff_lists_moves(kunming_project):
    store = open_store(kunming_project)
    first = plans.load_plan(store)
    second_id = partition_project(store, options=PartitionOptions(seed=3), publish=False).plan_id
    diff = diff_plans(first, plans.load_plan(store, second_id))
    moved = pd.DataFrame(diff["buildings_moved"])
    assert set(diff) >= {"grids_added", "grids_removed", "grids_changed"}
    if not moved.empty:
        assert (moved["from"] != moved["to"]).all()
        assert set(moved["to"]) <= set(plans.load_plan(store, second_id).grids.index)


def test_every_building_representative_point_is_in_its_grid(suzhou_project_base):
    store = open_store(suzhou_project_base)
    plan = plans.load_plan(store)
    buildings = store.read_layer("buildings").set_index("building_id")
    own = plan.grids.geometry.reindex(plan.labels.reindex(buildings.index)).values
    assert shapely.within(buildings.representative_point().values, own).all()


def major_road_blocks(store, buildings: gpd.GeoDataFrame, outline) -> pd.Series:
    """Which block between major roads each building stands in (by its representative point)."""
    roads = store.read_layer("roads")
    major = roads[roads["kind"] == "major_road"]
    lines = shapely.union_all([*major.geometry.values, outline.exterior])
    pieces = shapely.get_parts(shapely.polygonize(shapely.get_parts(shapely.node(lines))))
    blocks = gpd.GeoDataFrame(geometry=list(pieces), crs=buildings.crs)
    points = gpd.GeoDataFrame(geometry=buildings.representative_point())
    joined = gpd.sjoin(points, blocks, predicate="within")
    return joined["index_right"].groupby(level=0).first().reindex(buildings.index)


def test_grids_keep_to_one_side_of_major_roads(tmp_path, shared_data):
    """The Bund as one community with its roads: far fewer grids straddle a major road."""
    from geo.usecases import district as project

    footprints = gpd.read_file(shared_data / "shanghai_bund_buildings.geojson")
    outline = footprints.to_crs(3857).union_all().convex_hull.buffer(200)
    hull = gpd.GeoDataFrame({"community": ["外滩"]}, geometry=[outline], crs=3857).to_crs(4326)
    hull.to_file(tmp_path / "hull.geojson")
    store = open_store(tmp_path / "bund.gpkg", create=True)
    project.import_buildings(
        store,
        shared_data / "shanghai_bund_buildings.geojson",
        communities_path=tmp_path / "hull.geojson",
        roads_path=shared_data / "shanghai_bund_roads.geojson",
    )
    assert store.has_layer("roads")
    buildings = store.read_layer("buildings").set_index("building_id")
    block = major_road_blocks(store, buildings, hull.to_crs(buildings.crs).geometry.iloc[0])

    def straddling(plan_id: int) -> int:
        labels = plans.load_plan(store, plan_id).labels.reindex(buildings.index)
        return int((block.groupby(labels).nunique() > 1).sum())

    with_roads = partition_project(store).plan_id
    with store.transaction() as conn:
        store.drop_layer(conn, "roads")
    without_roads = partition_project(store, publish=False).plan_id
    assert straddling(with_roads) < 0.75 * straddling(without_roads)
