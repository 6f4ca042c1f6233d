"""Incidents in a project file: import counts, idempotence, assignment to grid and worker, workflow."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from typer.testing import CliRunner

from api.cli import app
from geo.errors import InputError
from geo.incidents import feeds as incident_feeds
from geo.incidents import records as incident_records
from geo.people import roster as rosters
from geo.plans import publish as publishing
from geo.plans import store as plans
from geo.storage.store import open_store
from geo.usecases import incidents as incident_cases
from geo.usecases import staffing
from geo.usecases.partition import PartitionOptions, partition_project

runner = CliRunner()
BOSTON_MAPPING = "data/incident_mappings/boston311.json"


def gridmap(*args, lang: str = "en"):
    return runner.invoke(app, [str(a) for a in args], env={"GRIDMAP_LANG": lang})


def import_boston(db, shared_data, *, allow_unlocated: bool = True) -> dict:
    """Boston's real 311 records imported into ``db`` with the shipped mapping."""
    return incident_cases.import_incidents(
        open_store(db),
        shared_data / "boston311_100.csv",
        mapping=incident_feeds.mapping_from_options(BOSTON_MAPPING),
        source="boston311",
        allow_unlocated=allow_unlocated,
    )


def write_feed(path, *, ids, lon, lat, category, time):
    """A generated feed written as CSV in the columns :func:`plain_mapping` reads."""
    frame = pd.DataFrame({"id": ids, "lon": lon, "lat": lat, "type": category, "time": time})
    frame.to_csv(path, index=False)
    return path


def plain_mapping(**options) -> incident_feeds.IncidentMapping:
    """The mapping of the generated feeds: columns id, lon, lat, type and time."""
    return incident_feeds.mapping_from_options(
        None,
        id_col="id",
        lon_col="lon",
        lat_col="lat",
        category_col="type",
        time_col="time",
        **options,
    )


def suzhou_cases(db, tmp_path, n: int = 300) -> tuple[pd.DataFrame, object]:
    """Generated 12345 cases inside real Suzhou footprints, plus bad rows, as a GBK CSV."""
    store = open_store(db)
    buildings = store.read_layer("buildings")
    rng = np.random.default_rng(7)
    picks = rng.choice(len(buildings), size=n, replace=False)
    points = buildings.geometry.iloc[picks].representative_point().to_crs(4326)
    frame = pd.DataFrame(
        {
            "案件编号": [f"SZ{i:05d}" for i in range(n)],
            "经度": points.x.round(7).to_numpy(),
            "纬度": points.y.round(7).to_numpy(),
            "问题类型": rng.choice(["私搭乱建", "乱堆乱放", "占道经营", "脏乱差", "环卫"], size=n),
            "上报时间": pd.date_range("2026-09-01 08:00", periods=n, freq="37min").strftime(
                "%Y/%m/%d %H:%M"
            ),
            "问题描述": ["楼道堆物"] * n,
            "地址": buildings["building_id"].iloc[picks].to_numpy(),
        }
    )
    frame.loc[0, ["经度", "纬度"]] = [np.nan, np.nan]
    frame.loc[1, "问题类型"] = "井盖丢失了吧"
    frame.loc[2, "问题描述"] = '<img src=x onerror="window.__x=1"> `${alert(1)}` </script>'
    path = tmp_path / "cases.csv"
    frame.to_csv(path, index=False, encoding="gbk")
    return frame, path


def test_boston_imports_with_exact_counts_and_is_idempotent(tmp_path, shared_data):
    """A project of cases only (no buildings yet): Boston's real 311 records, counted exactly."""
    db = tmp_path / "cases.gpkg"
    result = gridmap(
        "incidents",
        "import",
        shared_data / "boston311_100.csv",
        "--db",
        db,
        "--mapping",
        BOSTON_MAPPING,
        "--source",
        "boston311",
    )
    assert result.exit_code == 0, result.output
    assert "fallback point" in result.output
    summary = import_boston(db, shared_data)
    # the same file again: nothing new, every count reported again
    assert summary["read"] == 100
    assert summary["located"] == 81
    assert summary["unlocated"] == 19
    assert summary["unknown_category"] == 46
    assert (
        summary["fallback_point"] == 19
    )  # rows on 42.3594,-71.0587 (19 in the file; its README says 20)
    assert summary["added"] == 0
    assert summary["already_present"] == 100
    stored = incident_records.list_incidents(open_store(db))
    assert len(stored) == 100
    assert stored["grid_code"].isna().all()  # no grids in this project
    assert int(stored["fallback_point"].sum()) == 19
    assert stored.loc[stored["fallback_point"].astype(bool), "geometry"].isna().all()


def test_cases_far_from_the_district_are_refused_or_kept_unlocated_when_asked(
    kunming_project, shared_data
):
    with pytest.raises(InputError, match="outside the district: 100"):
        import_boston(kunming_project, shared_data, allow_unlocated=False)
    assert incident_records.list_ids(open_store(kunming_project)) == []
    summary = import_boston(kunming_project, shared_data)
    assert summary["read"] == 100
    assert summary["located"] == 0  # Boston is not in Kunming
    assert summary["added"] == 100


def test_suzhou_cases_land_on_the_grid_and_worker_they_lie_in(suzhou_project, tmp_path):
    store = open_store(suzhou_project)
    grids = publishing.published_grids(store)
    roster = pd.DataFrame(
        {
            "worker_id": [f"W{i:03d}" for i in range(grids["community"].nunique())],
            "name": [f"网格员{i}" for i in range(grids["community"].nunique())],
            "phone": [""] * grids["community"].nunique(),
            "community": sorted(grids["community"].unique()),
        }
    )
    rosters.import_roster(store, roster)
    staffing.fill_workers(store)
    frame, path = suzhou_cases(suzhou_project, tmp_path)
    mapping = incident_feeds.mapping_from_options(
        None,
        id_col="案件编号",
        lon_col="经度",
        lat_col="纬度",
        category_col="问题类型",
        time_col="上报时间",
        description_col="问题描述",
        address_col="地址",
    )
    summary = incident_cases.import_incidents(store, path, mapping=mapping, source="12345")
    assert summary["read"] == 300
    assert summary["unlocated"] == 1
    assert summary["unknown_category"] == 1
    assert summary["added"] == 300
    stored = incident_records.list_incidents(store).set_index("source_id")
    # the description is stored exactly as given
    assert stored.loc["SZ00002", "description"] == frame.loc[2, "问题描述"]
    assert stored.loc["SZ00001", "category_code"] == "10099"
    located = stored[stored["located"].astype(bool)]
    grids = publishing.published_grids(store).set_index("grid_code")
    metric = gpd.GeoSeries(located.geometry.values, crs=4326).to_crs(grids.crs).values
    own = grids.geometry.reindex(located["grid_code"]).values
    assert shapely.within(metric, own).all()
    assert (
        located["worker"].to_numpy() == grids["worker"].reindex(located["grid_code"]).to_numpy()
    ).all()
    assert stored["deadline"].notna().sum() == 300


#: the columns of :func:`write_feed`'s files, as ``gridmap incidents import`` options
FEED_OPTIONS = [
    "--id-col", "id", "--lon-col", "lon", "--lat-col", "lat", "--category-col", "type",
    "--time-col", "time", "--source", "数字城管",
]  # fmt: skip


def _one_case_feed(store, path):
    """A feed of one case (A1) at a building of the district."""
    point = store.read_layer("buildings").to_crs(4326).geometry.iloc[0].representative_point()
    return write_feed(
        path,
        ids=["A1"],
        lon=[point.x],
        lat=[point.y],
        category=["占道经营"],
        time=["2026-11-02 09:00"],
    )


def test_the_case_loop_refuses_illegal_steps(kunming_project, tmp_path):
    store = open_store(kunming_project)
    path = _one_case_feed(store, tmp_path / "one.csv")
    args = ["--db", kunming_project, *FEED_OPTIONS]
    assert gridmap("incidents", "import", path, *args).exit_code == 0
    incident = "数字城管:A1"
    refused = gridmap(
        "incidents", "update", incident, "--status", "closed", "--db", kunming_project
    )
    assert refused.exit_code == 4
    assert "registered" in refused.output  # the allowed next steps are named
    for status in (
        "registered",
        "dispatched",
        "handled",
        "dispatched",
        "handled",
        "verified",
        "closed",
    ):
        step = gridmap(
            "incidents",
            "update",
            incident,
            "--status",
            status,
            "--db",
            kunming_project,
            "--author",
            "王建华",
        )
        assert step.exit_code == 0, (status, step.output)
    record = incident_records.get_incident(store, incident)
    assert record["status"] == "closed"
    assert [e["to_status"] for e in record["events"]] == [
        "reported",
        "registered",
        "dispatched",
        "handled",
        "dispatched",
        "handled",
        "verified",
        "closed",
    ]
    assert {e["actor"] for e in record["events"][1:]} == {"王建华"}
    stats = gridmap(
        "incidents", "stats", "--db", kunming_project, "--by", "community", "--format", "json"
    )
    assert stats.exit_code == 0, stats.output
    rows = json.loads(stats.stdout)
    assert sum(r["reported"] for r in rows) == 1
    assert sum(r["closed"] for r in rows) == 1


def test_publishing_a_new_plan_moves_open_cases_with_a_log(kunming_project, tmp_path):
    store = open_store(kunming_project)
    buildings = store.read_layer("buildings")
    points = buildings.representative_point().to_crs(4326)
    path = write_feed(
        tmp_path / "all.csv",
        ids=range(len(points)),
        lon=points.x,
        lat=points.y,
        category="06001",
        time="2026-11-02 09:00",
    )
    mapping = plain_mapping()
    incident_cases.import_incidents(store, path, mapping=mapping, source="12345")
    target = buildings["community"].value_counts().idxmax()
    outcome = partition_project(
        store, options=PartitionOptions(communities=[target], seed=9), publish=True
    )
    stored = incident_records.list_incidents(store)
    new_plan = plans.load_plan(store, outcome.plan_id)
    building_of = dict(
        zip(
            stored["source_id"],
            buildings["building_id"].iloc[stored["source_id"].astype(int)],
            strict=True,
        )
    )
    expected = stored["source_id"].map(building_of).map(new_plan.labels)
    assert (stored["grid_code"].to_numpy() == expected.to_numpy()).all()
    log = store.read_table("audit_log")
    assert "publish" in set(log["action"])


def test_bad_feeds_are_refused_with_one_line(kunming_project, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{ not json", encoding="utf-8")
    result = gridmap(
        "incidents", "import", broken, "--db", kunming_project, "--lon-col", "x", "--lat-col", "y"
    )
    assert result.exit_code == 2
    assert result.output.count("Error:") == 1
    missing = gridmap(
        "incidents", "update", "12345:nope", "--status", "registered", "--db", kunming_project
    )
    assert missing.exit_code == 3
    assert "no incident" in missing.output
    wrong = gridmap("incidents", "stats", "--db", kunming_project, "--by", "household")
    assert wrong.exit_code == 2
    assert "--by" in wrong.output


def test_demo_cases_match_grids_in_wgs84_and_gcj02_input(kunming_project, tmp_path):
    """Cases given in GCJ-02 (Amap) land where the same cases given in WGS84 land."""
    from geo.crs import from_wgs84

    store = open_store(kunming_project)
    points = store.read_layer("buildings").representative_point().to_crs(4326).iloc[:40]
    lon, lat = from_wgs84(points.x.to_numpy(), points.y.to_numpy(), crs="gcj02")
    assert (
        pyproj.Geod(ellps="WGS84").inv(points.x.iloc[0], points.y.iloc[0], lon[0], lat[0])[2] > 100
    )
    for name, (x, y), crs in (("wgs", (points.x, points.y), "wgs84"), ("gcj", (lon, lat), "gcj02")):
        write_feed(
            tmp_path / f"{name}.csv",
            ids=range(40),
            lon=np.asarray(x),
            lat=np.asarray(y),
            category="06001",
            time="2026-11-02 09:00",
        )
        mapping = plain_mapping(crs=crs)
        incident_cases.import_incidents(
            store, tmp_path / f"{name}.csv", mapping=mapping, source=name
        )
    stored = incident_records.list_incidents(store)
    by_source = stored.pivot_table(
        index="source_id", columns="source", values="grid_code", aggfunc="first"
    )
    assert (by_source["wgs"] == by_source["gcj"]).all()


def test_steps_from_another_system_keep_their_times_in_order(kunming_project, tmp_path):
    store = open_store(kunming_project)
    point = store.read_layer("buildings").representative_point().to_crs(4326).iloc[0]
    write_feed(
        tmp_path / "b.csv",
        ids=["B7"],
        lon=[point.x],
        lat=[point.y],
        category=["06036"],
        time=["2026-10-05 09:00"],
    )
    mapping = plain_mapping()
    incident_cases.import_incidents(store, tmp_path / "b.csv", mapping=mapping, source="12345")
    shanghai = "Asia/Shanghai"
    steps = pd.DataFrame(
        {
            "incident_id": ["12345:B7"] * 3,
            "status": ["registered", "dispatched", "handled"],
            "actor": ["调度员"] * 3,
            "note": [""] * 3,
            "at": pd.to_datetime(
                ["2026-10-05 10:00", "2026-10-05 11:00", "2026-10-06 15:00"]
            ).tz_localize(shanghai),
        }
    )
    assert incident_cases.advance_cases(store, steps) == 3
    record = incident_records.get_incident(store, "12345:B7")
    assert record["status"] == "handled"
    assert record["registered_at"] == pd.Timestamp("2026-10-05 10:00", tz=shanghai)
    # 06036 乱堆杂物 has a limit counted from registration: the deadline follows it
    assert record["deadline"] > record["registered_at"]
    earlier = steps.iloc[:1].assign(
        status="verified", at=pd.Timestamp("2026-10-05 12:00", tz=shanghai)
    )
    with pytest.raises(InputError, match="before the case's previous step"):
        incident_cases.advance_cases(store, earlier)
    future = steps.iloc[:1].assign(
        status="verified", at=pd.Timestamp.now(tz=shanghai) + pd.Timedelta(days=3)
    )
    with pytest.raises(InputError, match="in the future"):
        incident_cases.advance_cases(store, future)
    assert (
        incident_records.get_incident(store, "12345:B7")["status"] == "handled"
    )  # nothing half-applied


def test_a_case_without_a_readable_time_is_kept(kunming_project, tmp_path):
    store = open_store(kunming_project)
    point = store.read_layer("buildings").representative_point().to_crs(4326).iloc[0]
    write_feed(
        tmp_path / "t.csv",
        ids=["T1", "T2"],
        lon=[point.x] * 2,
        lat=[point.y] * 2,
        category=["06001"] * 2,
        time=["不知道", ""],
    )
    mapping = plain_mapping()
    summary = incident_cases.import_incidents(
        store, tmp_path / "t.csv", mapping=mapping, source="12345"
    )
    assert summary["added"] == 2
    assert summary["bad_time"] == 2
    record = incident_records.get_incident(store, "12345:T1")
    assert pd.isna(record["reported_at"])
    assert record["events"][0]["at"]  # the step is dated when the case reached gridmap
