"""Hostile and malformed input answers 422 problem+json with one clear line, never a 500.

Each case here once reached pandas, SQLite, the JSON parser or the error handler itself and
came back as a 500 (and a reset kept-alive connection): times outside pandas' range, a lone
surrogate in an id, JSON nested 100,000 deep, an unknown time zone, words as dates, grid
statuses nobody stores. Run through one kept-alive TestClient, so a later request would fail
if an earlier one had broken the connection.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from api_support import bearer
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_token
from api.errors import problem
from api.settings import Settings
from geo.incidents.feeds import FeedError, IncidentMapping, parse_timestamps
from geo.plans import publish as publishing
from geo.storage.store import open_store
from geo.usecases import district as project
from geo.usecases.partition import partition_project

PROBLEM = "application/problem+json"
COLUMNS = {"id_col": "id", "lon_col": "lon", "lat_col": "lat"}
OUT_OF_RANGE = ["9999-12-31T23:59:59+14:00", "0001-01-01", "2262-04-12", "1677-09-21"]


@pytest.fixture(scope="module")
def client(api_db, api_tokens):
    app = create_app(Settings(db=api_db, max_body_bytes=2_000_000))
    with TestClient(app, headers=bearer(api_tokens["admin"])) as test_client:
        yield test_client


def refused(response, *words: str) -> str:
    """The problem's detail, after checking it is a 422 problem+json naming ``words``."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    detail = response.json()["detail"]
    assert all(word in detail for word in words), detail
    return detail


def case(**fields) -> dict:
    return {"source": "12345", "id": "V-1", "lon": 102.7105, "lat": 25.0405, **fields}


@pytest.mark.parametrize("moment", OUT_OF_RANGE)
def test_a_case_time_outside_1900_to_2199_is_refused_by_name(client, moment):
    detail = refused(client.post("/incidents", json=case(reported_at=moment)), "reported_at")
    assert "1900 to 2199" in detail


@pytest.mark.parametrize("moment", ["12/31/9999", "9999年1月1日", "Dec 31 9999"])
def test_other_formats_outside_the_range_are_refused_by_the_feed_reader(client, moment):
    refused(client.post("/incidents", json=case(reported_at=moment)), "out of range")


def test_the_feed_reader_flags_out_of_range_times_instead_of_failing():
    times, problems = parse_timestamps(pd.Series([*OUT_OF_RANGE, "2026-01-06 10:00", "soon"]))
    assert times.iloc[:4].isna().all()
    assert problems.iloc[:4].str.contains("out of range").all()
    assert times.iloc[4] == pd.Timestamp("2026-01-06 02:00", tz="UTC")
    assert problems.iloc[5] == "unparseable time"


def test_a_csv_feed_with_a_far_future_time_is_imported_without_that_time(client):
    feed = "id,lon,lat,reported_at\nF-1,102.7105,25.0405,9999-12-31 23:59\n"
    response = client.post(
        "/incidents/import",
        params={"source": "csv-range", **COLUMNS, "time_col": "reported_at"},
        content=feed.encode(),
    )
    assert response.status_code == 200, response.text
    assert response.json()["summary"]["bad_time"] == 1


def test_an_id_with_a_lone_surrogate_is_refused_as_invalid_unicode(client):
    body = '{"source": "12345", "id": "J\\ud800", "lon": 102.7105, "lat": 25.0405}'
    response = client.post("/incidents", content=body, headers={"content-type": "application/json"})
    assert refused(response, "id", "not valid Unicode").startswith("id:")


@pytest.mark.parametrize("field", ["description", "address", "category", "source"])
def test_a_lone_surrogate_in_any_text_field_is_refused(client, field):
    body = f'{{"source": "12345", "id": "S-1", "{field}": "x\\udfff"}}'
    response = client.post("/incidents", content=body, headers={"content-type": "application/json"})
    refused(response, field, "not valid Unicode")


def test_a_lone_surrogate_in_a_field_name_is_refused_and_the_connection_still_serves(client):
    body = '{"source": "12345", "id": "S-2", "\\ud800": 1}'
    response = client.post("/incidents", content=body, headers={"content-type": "application/json"})
    refused(response, "unicode string")
    assert client.get("/health").status_code == 200


def test_a_feed_holding_a_lone_surrogate_is_refused_and_nothing_is_stored(client, api_db):
    feed = '[{"id": "U-1", "lon": 102.7105, "lat": 25.0405, "description": "d\\udc00"}]'
    response = client.post(
        "/incidents/import",
        params={"source": "surrogate", **COLUMNS, "description_col": "description"},
        content=feed,
        headers={"content-type": "application/json"},
    )
    refused(response, "not valid Unicode")
    assert open_store(api_db).count("incidents", where={"source": "surrogate"}) == 0


def test_an_error_echoing_a_lone_surrogate_is_still_written():
    response = problem(422, "no case 'J\ud800'", errors=[{"field": "\udfff", "message": "x"}])
    body = json.loads(response.body)
    assert body["detail"] == "no case 'J\ufffd'"
    assert body["errors"][0]["field"] == "\ufffd"


def test_deeply_nested_json_to_the_feed_import_is_refused_with_its_depth(client):
    deep = b"[" * 100_000 + b"]" * 100_000
    response = client.post(
        "/incidents/import",
        params={"source": "deep"},
        content=deep,
        headers={"content-type": "application/json"},
    )
    refused(response, "nested 100,000 levels", "at most 64")


def test_a_geojson_feed_of_ordinary_depth_still_imports(client):
    feed = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [102.7105, 25.0405]},
                "properties": {"id": "G-1", "reported_at": "2026-01-06T09:00:00+08:00"},
            }
        ],
    }
    response = client.post(
        "/incidents/import",
        params={"source": "depth-ok", "id_col": "id", "time_col": "reported_at"},
        json=feed,
        headers={"content-type": "application/geo+json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["added"] == 1


def test_an_unknown_time_zone_is_refused_before_the_feed_is_read(client):
    response = client.post(
        "/incidents/import",
        params={"source": "mars", "tz": "Mars/Olympus", **COLUMNS},
        content=b"id,lon,lat\nM-1,102.7105,25.0405\n",
    )
    refused(response, "tz", "unknown time zone 'Mars/Olympus'", "Asia/Shanghai")


@pytest.mark.parametrize(
    "value", ["yesterday", "now", "2026-13-01", "2026-02-30", "01/31/2026", "0001-01-01"]
)
@pytest.mark.parametrize("bound", ["since", "until"])
def test_since_and_until_take_only_iso_8601_dates_from_1900_to_2199(client, bound, value):
    for route in ("/incidents", "/stats/incidents"):
        refused(client.get(route, params={bound: value}), bound)


def test_since_and_until_accept_iso_dates_and_times_with_offsets(client):
    for value in (
        "2026-01-31",
        "2026-01-31T08:00",
        "2026-01-31T08:00:00+08:00",
        "2026-01-31T00:00Z",
    ):
        assert client.get("/incidents", params={"since": value}).status_code == 200, value


def test_the_grid_status_filter_takes_the_stored_statuses(client, api_db):
    grids = publishing.published_grids(open_store(api_db))
    for status, expected in grids["status"].value_counts().items():
        listed = client.get("/grids", params={"status": status, "limit": 1000}).json()
        assert listed["total"] == expected
        assert {item["status"] for item in listed["items"]} == {status}


@pytest.mark.parametrize("status", ["bogus", "too_small", "not_contiguous", "OK"])
def test_an_unknown_grid_status_is_refused_with_the_allowed_ones(client, status):
    refused(client.get("/grids", params={"status": status}), "status", "undersized", "oversized")


# -- community names with a slash ---------------------------------------------------------------


@pytest.fixture(scope="module")
def slashed(tmp_path_factory, shared_data):
    """Kunming with one community renamed 一村/二村, imported and partitioned; a viewer's client."""
    folder = tmp_path_factory.mktemp("slashed")
    footprints = gpd.read_file(shared_data / "kunming_buildings.geojson")
    first = footprints["community"].iloc[0]
    footprints["community"] = footprints["community"].replace(first, "一村/二村")
    footprints.to_file(folder / "buildings.geojson", driver="GeoJSON")
    store = open_store(folder / "project.gpkg", create=True)
    project.import_buildings(
        store,
        folder / "buildings.geojson",
        options=project.ReadOptions(community_field="community"),
    )
    partition_project(store, author="tests")
    token = create_token(store, "slash-viewer", "viewer")
    store.engine.dispose()
    app = create_app(Settings(db=folder / "project.gpkg"))
    with TestClient(app, headers=bearer(token)) as test_client:
        yield test_client


@pytest.mark.parametrize("name", ["一村%2F二村", "一村/二村"])
def test_a_community_whose_name_holds_a_slash_can_be_read(slashed, name):
    response = slashed.get(f"/communities/{name}")
    assert response.status_code == 200, response.text
    assert response.json()["community"] == "一村/二村"


def test_an_error_carrying_numpy_values_or_times_is_still_written():
    extra = {"current": np.int64(3), "at": pd.Timestamp("2026-01-05"), "ratio": float("nan")}
    body = json.loads(problem(409, "stale", **extra).body)
    assert (body["current"], body["at"], body["ratio"]) == (3, "2026-01-05 00:00:00", None)


def test_a_feed_mapping_with_an_unknown_time_zone_is_refused_when_made():
    with pytest.raises(FeedError, match="unknown time zone 'Mars/Olympus'"):
        IncidentMapping(time_col="t", tz="Mars/Olympus")
    assert IncidentMapping(tz="UTC").tz == "UTC"


def test_an_address_search_among_no_buildings_finds_nothing(client):
    response = client.get("/buildings", params={"community": "不存在社区", "q": "外滩 18 号"})
    assert response.status_code == 200, response.text
    assert response.json()["total"] == 0
