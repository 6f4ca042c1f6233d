"""Feeds as district offices bring them: no column options, GCJ-02 points (issue 14, items 4, 5).

A feed with the usual headers (lon/lng/经度, lat/纬度, id/案件编号, 上报时间 ...) is read without
column options and the columns used are said; one where no row can be placed is refused. A feed
of Amap (GCJ-02) points imported as WGS84 is refused with the system the points look like;
stored cases are corrected with ``gridmap incidents relocate --crs gcj02`` or a re-import with
``--crs gcj02 --update``. Real Boston 311 records and Kunming footprints; the Kunming points are
building points shifted to GCJ-02 with the published formulas (Kunming is in China, so the
shift is real: about 350 m).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from api_support import bearer, role_tokens
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app
from api.settings import Settings
from geo.crs import from_wgs84
from geo.errors import Conflict, InputError
from geo.incidents.feeds import FeedError, IncidentMapping
from geo.locate.kept import grid_index
from geo.storage.store import open_store
from geo.usecases import incidents as incident_cases

runner = CliRunner()
CASES = 30


def gridmap(*args):
    return runner.invoke(app, [str(a) for a in args], env={"GRIDMAP_LANG": "en"})


def building_points(db: Path, n: int = CASES) -> pd.DataFrame:
    """WGS84 points inside ``n`` Kunming buildings, with the grid each lies in."""
    store = open_store(db)
    buildings = store.read_layer("buildings").sample(n, random_state=14)
    inside = buildings.representative_point()
    grids = grid_index(store).locate(inside.x.to_numpy(), inside.y.to_numpy())
    wgs = inside.to_crs(4326)
    return pd.DataFrame(
        {"lon": wgs.x.to_numpy(), "lat": wgs.y.to_numpy(), "grid": grids["grid_code"].to_numpy()}
    )


def chinese_feed(points: pd.DataFrame, path: Path, *, crs: str = "wgs84") -> Path:
    """A 12345 export with Chinese headers and no mapping file, in ``crs``."""
    lon, lat = from_wgs84(points["lon"].to_numpy(), points["lat"].to_numpy(), crs=crs)
    pd.DataFrame(
        {
            "案件编号": [f"KM{i:04d}" for i in range(len(points))],
            "经度": lon.round(6),
            "纬度": lat.round(6),
            "上报时间": "2026-08-01 09:30",
            "问题类型": "暴露垃圾",
            "问题描述": "小区门口有垃圾",
            "地址": "昆明市",
        }
    ).to_csv(path, index=False)
    return path


def stored(db: Path) -> pd.DataFrame:
    with sqlite3.connect(db) as conn:
        return pd.read_sql("SELECT incident_id, grid_code, located, status FROM incidents", conn)


def stored_count(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        return (
            conn.execute("SELECT count(*) FROM incidents").fetchone()[0]
            if ("incidents" in tables)
            else 0
        )


# -- item 4: usual headers ------------------------------------------------------------------------


def test_a_chinese_feed_without_column_options_is_placed_in_its_grids(kunming_project, tmp_path):
    points = building_points(kunming_project)
    feed = chinese_feed(points, tmp_path / "12345.csv")
    summary = incident_cases.import_incidents(
        open_store(kunming_project), feed, mapping=IncidentMapping(), source="12345"
    )
    assert summary["mapping"].startswith("id=案件编号, lon=经度, lat=纬度, time=上报时间")
    assert (summary["added"], summary["located"], summary["bad_time"]) == (CASES, CASES, 0)
    got = stored(kunming_project).set_index("incident_id")
    ids = [f"12345:KM{i:04d}" for i in range(CASES)]
    assert got.loc[ids, "grid_code"].tolist() == points["grid"].tolist()


def test_boston_without_column_options_is_read_by_its_headers_and_refused_off_the_district(
    kunming_project, shared_data
):
    boston = shared_data / "boston311_100.csv"
    with pytest.raises(FeedError) as refused:
        incident_cases.import_incidents(
            open_store(kunming_project), boston, mapping=IncidentMapping(), source="311"
        )
    message = str(refused.value)
    assert "none of the 100 cases has usable coordinates (outside the district: 100)" in message
    assert "id=case_enquiry_id, lon=longitude, lat=latitude, time=open_dt, category=type" in message
    assert stored_count(kunming_project) == 0
    summary = incident_cases.import_incidents(
        open_store(kunming_project),
        boston,
        mapping=IncidentMapping(),
        source="311",
        allow_unlocated=True,
    )
    assert summary["added"] == 100 - summary["duplicate_id"]
    assert summary["bad_time"] == 0  # open_dt was recognised
    assert "311:101004143000" in set(stored(kunming_project)["incident_id"])


def test_the_api_reads_a_feed_without_column_parameters(api_db, api_tokens, tmp_path):
    points = building_points(api_db, 12)
    feed = chinese_feed(points, tmp_path / "12345.csv").read_bytes()
    headers = {**bearer(api_tokens["planner"]), "content-type": "text/csv"}
    with TestClient(create_app(Settings(db=api_db))) as client:
        done = client.post(
            "/incidents/import", params={"source": "api14"}, content=feed, headers=headers
        )
    assert done.status_code == 200, done.text
    assert done.json()["added"] == 12
    assert done.json()["summary"]["mapping"].startswith("id=案件编号, lon=经度, lat=纬度")
    got = stored(api_db).set_index("incident_id")
    assert got.loc[[f"api14:KM{i:04d}" for i in range(12)], "grid_code"].tolist() == (
        points["grid"].tolist()
    )


# -- item 5: GCJ-02 points -------------------------------------------------------------------------


def test_a_gcj02_feed_imported_as_wgs84_is_refused_with_the_crs_it_looks_like(
    kunming_project, tmp_path
):
    feed = chinese_feed(building_points(kunming_project), tmp_path / "amap.csv", crs="gcj02")
    with pytest.raises(FeedError, match=r"look like GCJ-02 .*--crs gcj02") as refused:
        incident_cases.import_incidents(
            open_store(kunming_project), feed, mapping=IncidentMapping(), source="12345"
        )
    assert f"{CASES} when read as gcj02" in str(refused.value)
    assert stored_count(kunming_project) == 0


def test_a_gcj02_feed_with_its_crs_named_lands_in_the_right_grids(kunming_project, tmp_path):
    points = building_points(kunming_project)
    feed = chinese_feed(points, tmp_path / "amap.csv", crs="gcj02")
    summary = incident_cases.import_incidents(
        open_store(kunming_project), feed, mapping=IncidentMapping(crs="gcj02"), source="12345"
    )
    assert summary["added"] == CASES
    assert stored(kunming_project)["grid_code"].tolist() == points["grid"].tolist()


def shifted_cases_stored(db: Path, tmp_path: Path) -> tuple[pd.DataFrame, Path]:
    """The accident of the issue: an Amap feed stored as WGS84 (--crs wgs84 said explicitly)."""
    points = building_points(db)
    feed = chinese_feed(points, tmp_path / "amap.csv", crs="gcj02")
    incident_cases.import_incidents(
        open_store(db), feed, mapping=IncidentMapping(), source="12345", check_crs=False
    )
    assert stored(db)["grid_code"].tolist() != points["grid"].tolist()
    return points, feed


def test_relocate_moves_stored_cases_to_their_true_grids_once_and_logs_it(
    kunming_project, tmp_path
):
    points, _ = shifted_cases_stored(kunming_project, tmp_path)
    store = open_store(kunming_project)
    incident_cases.update_incident(store, "12345:KM0000", status="registered")
    counts = incident_cases.relocate_cases(store, crs="gcj02", source="12345", author="街道")
    assert counts == {"relocated": CASES, "now_outside": 0, "without_coordinates": 0}
    got = stored(kunming_project)
    assert got["grid_code"].tolist() == points["grid"].tolist()
    assert got.set_index("incident_id").at["12345:KM0000", "status"] == "registered"
    log = store.read_table("audit_log", where={"action": "incidents relocate"})
    assert len(log) == 1
    assert '"crs": "gcj02"' in log["details"].iloc[0]
    with pytest.raises(Conflict, match="relocated before"):
        incident_cases.relocate_cases(store, crs="gcj02", source="12345")
    assert stored(kunming_project)["grid_code"].tolist() == points["grid"].tolist()


def test_a_reimport_with_update_corrects_the_cases_a_plain_reimport_leaves(
    kunming_project, tmp_path
):
    points, feed = shifted_cases_stored(kunming_project, tmp_path)
    store = open_store(kunming_project)
    gcj = IncidentMapping(crs="gcj02")
    again = incident_cases.import_incidents(store, feed, mapping=gcj, source="12345")
    assert (again["added"], again["updated"], again["already_present"]) == (0, 0, CASES)
    fixed = incident_cases.import_incidents(store, feed, mapping=gcj, source="12345", update=True)
    assert (fixed["added"], fixed["updated"]) == (0, CASES)
    assert stored(kunming_project)["grid_code"].tolist() == points["grid"].tolist()
    same = incident_cases.import_incidents(store, feed, mapping=gcj, source="12345", update=True)
    assert (same["updated"], same["already_present"]) == (0, CASES)


def test_the_api_refuses_a_gcj02_feed_without_crs_and_updates_with_it(api_db, api_tokens, tmp_path):
    points = building_points(api_db, 12)
    feed = chinese_feed(points, tmp_path / "amap.csv", crs="gcj02").read_bytes()
    headers = {**bearer(api_tokens["planner"]), "content-type": "text/csv"}
    before = stored_count(api_db)
    with TestClient(create_app(Settings(db=api_db))) as client:
        url = "/incidents/import"
        refused = client.post(url, params={"source": "amap"}, content=feed, headers=headers)
        assert refused.status_code == 422, refused.text
        assert "look like GCJ-02" in refused.json()["detail"]
        assert "crs=gcj02" in refused.text
        assert stored_count(api_db) == before
        params = {"source": "amap", "crs": "gcj02"}
        done = client.post(url, params=params, content=feed, headers=headers)
        assert done.json()["added"] == 12
        again = client.post(url, params={**params, "update": "true"}, content=feed, headers=headers)
        assert again.json()["summary"]["updated"] == 0
    got = stored(api_db).set_index("incident_id")
    ids = [f"amap:KM{i:04d}" for i in range(12)]
    assert got.loc[ids, "grid_code"].tolist() == points["grid"].tolist()


def test_relocate_needs_a_real_system(kunming_project):
    with pytest.raises(InputError, match="--crs gcj02"):
        incident_cases.relocate_cases(open_store(kunming_project), crs="wgs84")


# -- the same from the command line --------------------------------------------------------------


def test_the_cli_names_the_columns_it_read_and_refuses_boston_in_one_line(
    kunming_project, shared_data
):
    boston = shared_data / "boston311_100.csv"
    refused = gridmap("incidents", "import", boston, "--db", kunming_project)
    assert refused.exit_code != 0
    lines = refused.output.strip().splitlines()
    assert len(lines) == 1, lines
    assert "outside the district: 100" in lines[0]
    assert "lon=longitude, lat=latitude" in lines[0]
    assert stored_count(kunming_project) == 0
    done = gridmap("incidents", "import", boston, "--db", kunming_project, "--allow-unlocated")
    assert done.exit_code == 0, done.output
    assert "columns: id=case_enquiry_id, lon=longitude, lat=latitude, time=open_dt" in done.output


def test_the_cli_help_names_the_shipped_mappings_and_lists_the_catalogue(kunming_project):
    shown = gridmap("incidents", "import", "--help")
    assert "boston311" in shown.output
    assert "shuzi_chengguan_example" in shown.output
    listed = gridmap("incidents", "categories", "list", "--db", kunming_project, "--json")
    assert listed.exit_code == 0, listed.output
    assert "06001" in listed.output
    assert "私搭乱建" in listed.output


def test_the_cli_refuses_an_amap_feed_then_relocate_and_update_correct_it(
    kunming_project, tmp_path
):
    points = building_points(kunming_project)
    feed = chinese_feed(points, tmp_path / "amap.csv", crs="gcj02")
    db = ("--db", kunming_project)
    refused = gridmap("incidents", "import", feed, *db)
    assert refused.exit_code != 0
    assert "look like GCJ-02" in refused.output
    assert "--crs gcj02" in refused.output
    assert stored_count(kunming_project) == 0
    # the accident of the issue, said explicitly: stored as WGS84, in the wrong grids
    assert gridmap("incidents", "import", feed, *db, "--crs", "wgs84").exit_code == 0
    assert stored(kunming_project)["grid_code"].tolist() != points["grid"].tolist()
    moved = gridmap("incidents", "relocate", "--crs", "gcj02", "--source", "12345", *db)
    assert moved.exit_code == 0, moved.output
    assert stored(kunming_project)["grid_code"].tolist() == points["grid"].tolist()
    again = gridmap("incidents", "relocate", "--crs", "gcj02", "--source", "12345", *db)
    assert again.exit_code == 4
    assert "relocated before" in again.output


def test_the_cli_update_rewrites_what_a_plain_reimport_leaves(kunming_project, tmp_path):
    points = building_points(kunming_project)
    feed = chinese_feed(points, tmp_path / "amap.csv", crs="gcj02")
    db = ("--db", kunming_project)
    assert gridmap("incidents", "import", feed, *db, "--crs", "wgs84").exit_code == 0
    plain = gridmap("incidents", "import", feed, *db, "--crs", "gcj02", "--json")
    assert plain.exit_code == 0, plain.output
    assert '"already_present": 30' in plain.output
    updated = gridmap("incidents", "import", feed, *db, "--crs", "gcj02", "--update", "--json")
    assert updated.exit_code == 0, updated.output
    assert '"updated": 30' in updated.output
    assert stored(kunming_project)["grid_code"].tolist() == points["grid"].tolist()


def test_the_api_relocates_stored_cases_once(kunming_project, tmp_path):
    points, _ = shifted_cases_stored(kunming_project, tmp_path)
    planner = bearer(role_tokens(kunming_project)["planner"])
    body = {"crs": "gcj02", "source": "12345"}
    with TestClient(create_app(Settings(db=kunming_project))) as client:
        done = client.post("/incidents/relocate", json=body, headers=planner)
        assert done.status_code == 200, done.text
        assert done.json() == {"relocated": CASES, "now_outside": 0, "without_coordinates": 0}
        again = client.post("/incidents/relocate", json=body, headers=planner)
        assert again.status_code == 409
        assert "relocated before" in again.json()["detail"]
        wrong = client.post("/incidents/relocate", json={"crs": "wgs84"}, headers=planner)
        assert wrong.status_code == 422
    assert stored(kunming_project)["grid_code"].tolist() == points["grid"].tolist()


def test_a_baidu_feed_imported_as_wgs84_is_named_bd09(kunming_project, tmp_path):
    feed = chinese_feed(building_points(kunming_project), tmp_path / "baidu.csv", crs="bd09")
    with pytest.raises(FeedError, match=r"look like BD-09 \(Baidu\)"):
        incident_cases.import_incidents(
            open_store(kunming_project), feed, mapping=IncidentMapping(), source="baidu"
        )
    assert stored_count(kunming_project) == 0
