"""Case lists, single cases and figures read only what they return, and return what a full read would.

30,000 generated cases on the Kunming project (stored in one bulk write through the store, with
grids, communities and workers from the published plan) stand for a city's year of 12345 calls.
Each paged list, case by id and statistic is compared with the same question answered the slow
way (the whole layer read and filtered in pandas); SQLite's query plan shows the indexes in use.
Correctness only: timings are in ``bench/api.py``.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from api_support import bearer
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_token
from api.settings import Settings
from geo.incidents import cases as case_rows
from geo.incidents import records as incident_records
from geo.incidents.assign import assign_to_grids
from geo.incidents.stats import incident_stats
from geo.plans import publish as publishing
from geo.storage.store import (
    LOOKUP_INDEXES,
    ensure_lookup_indexes,
    ensure_unique_keys,
    incident_events,
    open_store,
)
from geo.usecases import incidents as incident_cases

CASES = 30_000
NOW = pd.Timestamp.now("UTC")


def generated_cases(store, count: int) -> gpd.GeoDataFrame:
    """``count`` located cases spread over the district and 60 days, in the layer's columns."""
    rng = np.random.default_rng(13)
    west, south, east, north = store.read_layer("buildings").to_crs(4326).total_bounds
    lon, lat = rng.uniform(west, east, count), rng.uniform(south, north, count)
    reported = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 60 * 86_400, count), unit="s"
    )
    category = rng.choice(["06001", "07002", "08003", "10001"], count)
    cases = pd.DataFrame(
        {
            "incident_id": [f"scale:S{i:06d}" for i in range(count)],
            "source": "scale",
            "source_id": [f"S{i:06d}" for i in range(count)],
            "category_code": category,
            "category_name": None,
            "class_code": pd.Series(category).str[:2],
            "category_known": pd.array([True] * count, dtype="boolean"),
            "category_raw": category,
            "status": rng.choice(["reported", "registered", "closed"], count),
            "reported_at": reported,
            "registered_at": pd.Series(pd.NaT, index=range(count), dtype="datetime64[ns, UTC]"),
            "closed_at": pd.Series(pd.NaT, index=range(count), dtype="datetime64[ns, UTC]"),
            "deadline": reported + pd.Timedelta(days=5),
            "description": "井盖缺失",
            "address": None,
            "lon": lon,
            "lat": lat,
            "located": pd.array([True] * count, dtype="boolean"),
            "unlocated_reason": None,
            "fallback_point": pd.array([False] * count, dtype="boolean"),
        }
    )
    grids = publishing.published_grids(store)
    found = assign_to_grids(cases, grids.assign(worker=grids["worker_id"]))
    cases["grid_code"] = found["grid_code"].astype(object)
    cases["community"] = found["community"].astype(object)
    cases["worker_id"] = found["worker"].astype(object)
    cases["worker"] = found["worker"].astype(object)
    cases["imported_at"] = NOW.isoformat()
    cases = (
        cases.astype(object)
        .where(cases.notna(), None)
        .astype({c: cases[c].dtype for c in cases.columns if cases[c].dtype != object})
    )
    geometry = gpd.points_from_xy(lon, lat)
    return gpd.GeoDataFrame(cases[list(case_rows.COLUMNS)], geometry=geometry, crs=4326)


@pytest.fixture(scope="module")
def project(api_db):
    """Kunming (staffed) with 30,000 cases written in one transaction, and a staff token."""
    db = api_db
    store = open_store(db)
    cases = generated_cases(store, CASES)
    with store.transaction() as conn:
        store.write_layer(conn, "incidents", cases, mode="append", description="cases")
        ensure_unique_keys(conn)
        ensure_lookup_indexes(conn)
        conn.execute(
            sa.insert(incident_events),
            [
                {"incident_id": i, "to_status": "reported", "actor": "scale", "at": t.isoformat()}
                for i, t in zip(cases["incident_id"], cases["reported_at"], strict=True)
            ],
        )
        conn.exec_driver_sql("ANALYZE")
    token = create_token(store, "scale-staff", "staff")
    return db, token


@pytest.fixture(scope="module")
def store(project):
    return open_store(project[0])


@pytest.fixture(scope="module")
def everything(store):
    """The slow answer to every question: the whole layer, read once."""
    return store.read_layer("incidents")


@pytest.fixture(scope="module")
def client(project):
    db, token = project
    with TestClient(create_app(Settings(db=db)), headers=bearer(token)) as test_client:
        yield test_client


def ids(frame: pd.DataFrame) -> list[str]:
    return frame["incident_id"].tolist()


def test_a_page_of_one_is_the_first_case_and_counts_them_all(store, everything):
    total, page = incident_records.incident_page(store, incident_records.CaseFilter(), limit=1)
    assert total == len(everything) == CASES
    assert ids(page) == ids(everything.iloc[:1])


def test_a_page_deep_in_the_layer_holds_the_cases_at_that_offset(store, everything):
    total, page = incident_records.incident_page(
        store, incident_records.CaseFilter(), limit=3, offset=20_000
    )
    assert total == CASES
    assert ids(page) == ids(everything.iloc[20_000:20_003])


def reference(everything: gpd.GeoDataFrame, wanted: incident_records.CaseFilter) -> pd.DataFrame:
    """The cases ``wanted`` selects, found the slow way (pandas over the whole layer)."""
    keep = pd.Series(True, index=everything.index)
    for column, value in (
        ("grid_code", wanted.grid),
        ("community", wanted.community),
        ("worker_id", wanted.worker),
        ("status", wanted.status),
    ):
        if value:
            keep &= everything[column] == value
    if wanted.category:
        keep &= (everything["category_code"] == wanted.category) | (
            everything["class_code"] == wanted.category
        )
    if wanted.since is not None:
        keep &= everything["reported_at"] >= wanted.since
    if wanted.until is not None:
        keep &= everything["reported_at"] < wanted.until
    chosen = everything[keep]
    if wanted.bbox is not None:
        west, south, east, north = wanted.bbox
        chosen = chosen.cx[west:east, south:north]
    return chosen


def filters(everything: gpd.GeoDataFrame) -> list[incident_records.CaseFilter]:
    grid = everything["grid_code"].dropna().iloc[0]
    worker = everything["worker_id"].dropna().iloc[-1]
    west, south, east, north = everything.total_bounds
    middle = ((west + east) / 2, (south + north) / 2)
    since = pd.Timestamp("2026-01-20", tz="Asia/Shanghai")
    until = pd.Timestamp("2026-02-03T12:00", tz="Asia/Shanghai")
    return [
        incident_records.CaseFilter(grid=grid),
        incident_records.CaseFilter(worker=worker, status="registered"),
        incident_records.CaseFilter(category="07"),
        incident_records.CaseFilter(category="08003", since=since),
        incident_records.CaseFilter(since=since, until=until, status="closed"),
        incident_records.CaseFilter(bbox=(west, south, *middle)),
        incident_records.CaseFilter(community=everything["community"].dropna().iloc[5]),
    ]


def test_every_filter_selects_what_a_full_read_would(store, everything):
    for wanted in filters(everything):
        expected = reference(everything, wanted)
        assert len(expected) > 0, wanted
        total, page = incident_records.incident_page(store, wanted, limit=50, offset=10)
        assert total == len(expected), wanted
        assert ids(page) == ids(expected.iloc[10:60]), wanted


def test_the_unpaged_list_used_by_maps_matches_a_full_read(store, everything):
    since = pd.Timestamp("2026-02-01", tz="Asia/Shanghai")
    listed = incident_records.list_incidents(store, since=since)
    assert ids(listed) == ids(everything[everything["reported_at"] >= since])
    assert listed["overdue"].dtype == bool


def uses_an_index(step) -> bool:
    return "USING INDEX" in str(step) or "USING COVERING INDEX" in str(step)


def test_the_filtered_queries_use_the_layers_indexes(store, everything):
    with store.reading() as conn:
        selective = [f for f in filters(everything) if not f.category and not f.bbox]
        for wanted in selective:
            clause, params = wanted.sql()
            plan = conn.exec_driver_sql(
                f'EXPLAIN QUERY PLAN SELECT fid FROM "incidents"{clause} ORDER BY fid', params
            ).fetchall()
            assert any(uses_an_index(step) for step in plan), (wanted, plan)
        by_id = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT * FROM incidents WHERE incident_id = 'scale:S000001'"
        ).fetchall()
        assert any(uses_an_index(step) for step in by_id), by_id


def test_the_api_lists_a_page_and_its_total(client, everything):
    body = client.get("/incidents", params={"limit": 1}).json()
    assert body["total"] == CASES
    assert [item["incident_id"] for item in body["items"]] == ids(everything.iloc[:1])
    grid = everything["grid_code"].dropna().iloc[0]
    body = client.get("/incidents", params={"grid": grid, "limit": 5, "offset": 2}).json()
    expected = everything[everything["grid_code"] == grid]
    assert body["total"] == len(expected)
    assert [item["incident_id"] for item in body["items"]] == ids(expected.iloc[2:7])


def test_the_api_and_ogc_answer_one_case_by_id(client, everything):
    case = everything.iloc[12_345]
    one = client.get(f"/incidents/{case['incident_id']}").json()
    assert one["incident_id"] == case["incident_id"]
    assert one["grid_code"] == case["grid_code"]
    feature = client.get(f"/ogc/collections/incidents/items/{case['incident_id']}").json()
    assert feature["id"] == case["incident_id"]
    assert feature["geometry"]["coordinates"] == pytest.approx([case["lon"], case["lat"]])
    missing = client.get("/ogc/collections/incidents/items/scale:NOPE")
    assert missing.status_code == 404


def test_ogc_pages_through_the_cases_with_the_match_count(client, everything):
    page = client.get("/ogc/collections/incidents/items", params={"limit": 2, "offset": 29_999})
    body = page.json()
    assert body["numberMatched"] == CASES
    assert [f["id"] for f in body["features"]] == ids(everything.iloc[29_999:])
    extent = client.get("/ogc/collections/incidents").json()["extent"]["spatial"]["bbox"][0]
    assert extent == pytest.approx(list(everything.total_bounds))


def test_statistics_read_lean_and_count_like_a_full_read(client, store, everything):
    events = incident_records.events_table(store)
    since = pd.Timestamp("2026-01-15", tz="Asia/Shanghai")
    for by in ("worker", "grid"):
        expected = incident_stats(
            everything, events, by=by, since=since, catalogue=incident_records.catalogue(store)
        )
        got = incident_cases.incident_statistics(store, by=by, since=since)
        pd.testing.assert_frame_equal(got, expected)
    rows = client.get("/stats/incidents", params={"by": "worker"}).json()["rows"]
    assert sum(row["reported"] for row in rows) == CASES


def test_a_project_written_before_the_indexes_gets_them_when_opened(kunming_project):
    store = open_store(kunming_project)
    with store.transaction() as conn:  # as an older gridmap wrote the layer: no indexes
        store.write_layer(conn, "incidents", generated_cases(store, 10), mode="append")
    store.engine.dispose()
    with open_store(kunming_project).reading() as conn:
        names = {
            row[0]
            for row in conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'incidents'"
            )
        }
    assert {f"incidents_{c}" for c in LOOKUP_INDEXES["incidents"]} <= names
    assert "incidents_incident_id_unique" in names
