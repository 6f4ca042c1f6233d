"""The HTTP API router by router, through FastAPI's TestClient, on Kunming's real footprints."""

from __future__ import annotations

import io
import json
import threading

import geopandas as gpd
import pandas as pd
import pytest
from api_support import bearer
from fastapi.testclient import TestClient

from api.app import create_app
from api.models import LocateResult
from api.settings import Settings
from geo.incidents.workflow import allowed_next
from geo.locate.engine import GridIndex
from geo.people import roster as rosters
from geo.plans import publish as publishing
from geo.plans import store as plans
from geo.storage.store import open_store
from geo.usecases.partition import PartitionOptions, partition_project

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def client(api_db, api_tokens):
    app = create_app(Settings(db=api_db, max_body_bytes=200_000, max_batch=500, max_page=50))
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def store(api_db):
    return open_store(api_db)


@pytest.fixture(scope="module")
def grids(store):
    return publishing.published_grids(store)


def as_(tokens, role):
    return bearer(tokens[role])


def assert_problem(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert body["detail"]
    assert "Traceback" not in response.text
    return body


# -- health, communities, grids, buildings -------------------------------------------------------


def test_health_counts_the_project_for_a_token(client, api_tokens, store, grids):
    body = client.get("/health", headers=as_(api_tokens, "viewer")).json()
    assert body["status"] == "ok"
    assert body["buildings"] == store.count("buildings") == 140
    assert body["grids"] == len(grids)
    assert body["published_plan"] == plans.published_plan_id(store)


def test_communities_match_the_store(client, api_tokens, store, grids):
    body = client.get("/communities", headers=as_(api_tokens, "viewer")).json()
    layer = store.read_layer("communities")
    assert sorted(c["community"] for c in body) == sorted(layer["community"])
    per_grid = grids["community"].value_counts()
    for item in body:
        assert item["grids"] == per_grid.get(item["community"], 0)
    name = body[0]["community"]
    one = client.get(f"/communities/{name}", headers=as_(api_tokens, "viewer")).json()
    assert one["community"] == name
    assert_problem(client.get("/communities/nowhere", headers=as_(api_tokens, "viewer")), 404)


def test_grids_pages_filters_and_contacts(client, api_tokens, grids):
    viewer = client.get(
        "/grids", params={"limit": 10, "offset": 5}, headers=as_(api_tokens, "viewer")
    )
    body = viewer.json()
    assert body["total"] == len(grids)
    assert len(body["items"]) == 10
    assert all(item["worker_phone"] is None for item in body["items"])
    staff = client.get("/grids", params={"limit": 50}, headers=as_(api_tokens, "staff")).json()
    assert {i["grid_code"] for i in staff["items"]} == set(grids["grid_code"])
    with_worker = [i for i in staff["items"] if i["worker_id"]]
    assert with_worker
    assert all(i["worker_phone"].startswith("138") for i in with_worker)
    community = grids["community"].iloc[0]
    only = client.get("/grids", params={"community": community}, headers=as_(api_tokens, "viewer"))
    assert only.json()["total"] == int((grids["community"] == community).sum())


def test_grid_detail_lists_its_buildings(client, api_tokens, store, grids):
    code = grids["grid_code"].iloc[0]
    body = client.get(f"/grids/{code}", headers=as_(api_tokens, "viewer")).json()
    labels = plans.load_plan(store).labels
    assert sorted(b["building_id"] for b in body["buildings"]) == sorted(
        labels.index[labels == code]
    )
    assert_problem(client.get("/grids/999", headers=as_(api_tokens, "viewer")), 404)


def test_buildings_bbox_is_the_spatial_filter(client, api_tokens, store):
    buildings = store.read_layer("buildings").to_crs(4326)
    west, south, east, north = buildings.total_bounds
    box = (west, south, (west + east) / 2, (south + north) / 2)
    expected = buildings.cx[box[0] : box[2], box[1] : box[3]]
    body = client.get(
        "/buildings",
        params={"bbox": ",".join(map(str, box)), "limit": 50},
        headers=as_(api_tokens, "viewer"),
    ).json()
    assert body["total"] == len(expected) > 0
    assert {b["building_id"] for b in body["items"]} <= set(expected["building_id"])
    one = body["items"][0]
    assert (
        client.get(f"/buildings/{one['building_id']}", headers=as_(api_tokens, "viewer")).json()
        == one
    )


@pytest.mark.parametrize("bbox", ["1,2,3", "a,b,c,d", "10,80,20,95", "30,10,20,20", "nan,1,2,3"])
def test_bad_bbox_is_a_clear_422(client, api_tokens, bbox):
    body = assert_problem(
        client.get("/buildings", params={"bbox": bbox}, headers=as_(api_tokens, "viewer")), 422
    )
    assert "bbox" in body["detail"]


# -- locate ----------------------------------------------------------------------------------------


def test_locate_get_answers_like_the_index(client, api_tokens, store, grids):
    index = GridIndex.build(store.read_layer("buildings"), grids)
    buildings = store.read_layer("buildings").to_crs(4326)
    points = buildings.geometry.representative_point().iloc[::7]
    expected = index.locate_lonlat(points.x.to_numpy(), points.y.to_numpy())
    for (lon, lat), (_, row) in zip(
        zip(points.x, points.y, strict=True), expected.iterrows(), strict=True
    ):
        got = client.get(
            "/locate", params={"lon": lon, "lat": lat}, headers=as_(api_tokens, "staff")
        ).json()
        assert got["status"] == "in_building"
        assert LocateResult.model_validate(got).model_dump() == got
        assert got["building_id"] == row["building_id"]
        assert got["grid_code"] == row["grid_code"]
        assert got["worker"] == (None if pd.isna(row["worker"]) else row["worker"])


def test_locate_gcj02_and_bad_coordinates(client, api_tokens, store):
    from geo.crs import from_wgs84

    point = store.read_layer("buildings").to_crs(4326).geometry.representative_point().iloc[3]
    glon, glat = from_wgs84(point.x, point.y, crs="gcj02")
    wgs = client.get(
        "/locate", params={"lon": point.x, "lat": point.y}, headers=as_(api_tokens, "staff")
    )
    gcj = client.get(
        "/locate",
        params={"lon": float(glon), "lat": float(glat), "crs": "gcj02"},
        headers=as_(api_tokens, "staff"),
    )
    assert wgs.json()["building_id"] == gcj.json()["building_id"] is not None
    swapped = client.get(
        "/locate", params={"lon": point.y, "lat": point.x}, headers=as_(api_tokens, "staff")
    )
    assert_problem(swapped, 422)
    assert_problem(
        client.get(
            "/locate", params={"lon": 1, "lat": 2, "crs": "mars"}, headers=as_(api_tokens, "staff")
        ),
        422,
    )
    assert_problem(
        client.get("/locate", params={"lon": "x", "lat": 2}, headers=as_(api_tokens, "staff")), 422
    )


def test_locate_post_json_and_csv_keep_every_row(client, api_tokens, store):
    points = store.read_layer("buildings").to_crs(4326).geometry.representative_point().iloc[:20]
    batch = [{"lon": p.x, "lat": p.y, "id": f"p{i}"} for i, p in enumerate(points)]
    batch.append({"lon": None, "lat": 25.0, "id": "missing"})
    body = client.post("/locate", json={"points": batch}, headers=as_(api_tokens, "staff")).json()
    assert len(body["results"]) == 21
    assert body["counts"] == {"in_building": 20, "invalid": 1}
    assert body["results"][-1]["id"] == "missing"
    assert body["results"][-1]["reason"]
    as_list = client.post("/locate", json=batch[:3], headers=as_(api_tokens, "staff")).json()
    assert [r["building_id"] for r in as_list["results"]] == [
        r["building_id"] for r in body["results"][:3]
    ]
    csv = pd.DataFrame({"name": [b["id"] for b in batch[:20]], "x": points.x, "y": points.y})
    answer = client.post(
        "/locate",
        params={"lon_col": "x", "lat_col": "y"},
        content=csv.to_csv(index=False).encode(),
        headers={**as_(api_tokens, "staff"), "content-type": "text/csv"},
    )
    assert answer.headers["content-type"].startswith("text/csv")
    table = pd.read_csv(io.StringIO(answer.text), dtype=str)
    assert table["name"].tolist() == csv["name"].tolist()
    assert table["building_id"].tolist() == [r["building_id"] for r in body["results"][:20]]


def test_locate_batches_are_bounded(client, api_tokens):
    too_many = [{"lon": 102.72, "lat": 25.07}] * 501
    body = assert_problem(
        client.post("/locate", json=too_many, headers=as_(api_tokens, "staff")), 413
    )
    assert "500" in body["detail"]
    huge = b"lon,lat\n" + b"102.72,25.07\n" * 20_000
    assert_problem(
        client.post(
            "/locate",
            content=huge,
            headers={**as_(api_tokens, "staff"), "content-type": "text/csv"},
        ),
        413,
    )
    assert_problem(
        client.post(
            "/locate",
            content=b"{not json",
            headers={**as_(api_tokens, "staff"), "content-type": "application/json"},
        ),
        422,
    )
    assert_problem(
        client.post(
            "/locate",
            content=b"a,b\n1,2\n",
            headers={**as_(api_tokens, "staff"), "content-type": "text/csv"},
        ),
        422,
    )


def test_locate_follows_a_newly_published_plan(client, api_tokens, store, grids):
    point = store.read_layer("buildings").to_crs(4326).geometry.representative_point().iloc[0]
    params = {"lon": point.x, "lat": point.y}
    before = client.get("/locate", params=params, headers=as_(api_tokens, "staff")).json()
    outcome = partition_project(
        store, options=PartitionOptions(seed=7), publish=True, author="tests"
    )
    after = client.get("/locate", params=params, headers=as_(api_tokens, "staff")).json()
    assert before["plan_id"] != after["plan_id"] == outcome.plan_id
    assert after["grid_code"] == plans.load_plan(store).labels[before["building_id"]]


# -- incidents ---------------------------------------------------------------------------------------


def cases_in(store, n=12):
    points = store.read_layer("buildings").to_crs(4326).geometry.representative_point()
    return [
        {
            "id": f"K{i:03d}",
            "category": "暴露垃圾" if i % 2 else "占道经营",
            "reported_at": f"2026-01-{5 + i % 20:02d}T09:30:00+08:00",
            "description": f"<b>case {i}</b>",
            "lon": float(points.iloc[i * 5].x),
            "lat": float(points.iloc[i * 5].y),
        }
        for i in range(n)
    ]


def test_incidents_post_is_idempotent_and_assigned(client, api_tokens, store):
    batch = {"source": "12345", "incidents": cases_in(store)}
    first = client.post("/incidents", json=batch, headers=as_(api_tokens, "staff")).json()
    assert first["added"] == 12
    assert first["already_present"] == 0
    again = client.post("/incidents", json=batch, headers=as_(api_tokens, "staff")).json()
    assert again["added"] == 0
    assert again["already_present"] == 12
    listed = client.get("/incidents", params={"limit": 50}, headers=as_(api_tokens, "staff")).json()
    ours = [i for i in listed["items"] if i["source"] == "12345"]
    assert len(ours) == 12
    assert all(i["grid_code"] and i["status"] == "reported" for i in ours)
    assert {i["description"] for i in ours} == {c["description"] for c in batch["incidents"]}


def test_incidents_filters(client, api_tokens, store):
    client.post(
        "/incidents",
        json={"source": "12345", "incidents": cases_in(store)},
        headers=as_(api_tokens, "staff"),
    )
    every = client.get("/incidents", params={"limit": 50}, headers=as_(api_tokens, "staff")).json()[
        "items"
    ]
    grid = every[0]["grid_code"]
    by_grid = client.get(
        "/incidents", params={"grid": grid}, headers=as_(api_tokens, "staff")
    ).json()
    assert by_grid["total"] == sum(i["grid_code"] == grid for i in every)
    window = client.get(
        "/incidents",
        params={"since": "2026-01-10", "until": "2026-01-15"},
        headers=as_(api_tokens, "staff"),
    ).json()
    stamps = [pd.Timestamp(i["reported_at"]) for i in window["items"]]
    assert window["total"] > 0
    assert all(pd.Timestamp("2026-01-10", tz="Asia/Shanghai") <= s for s in stamps)
    assert all(s < pd.Timestamp("2026-01-15", tz="Asia/Shanghai") for s in stamps)
    category = every[0]["category_code"]
    by_category = client.get(
        "/incidents", params={"category": category}, headers=as_(api_tokens, "staff")
    )
    assert {i["category_code"] for i in by_category.json()["items"]} == {category}
    assert_problem(
        client.get(
            "/incidents",
            params={"since": "2026-02-01", "until": "2026-01-01"},
            headers=as_(api_tokens, "staff"),
        ),
        422,
    )


def test_incident_workflow_and_illegal_steps(client, api_tokens, store):
    client.post(
        "/incidents",
        json={"source": "12345", "incidents": cases_in(store)},
        headers=as_(api_tokens, "staff"),
    )
    case = "12345:K001"
    for step in ("registered", "dispatched", "handled"):
        body = client.patch(
            f"/incidents/{case}",
            json={"status": step, "note": "ok"},
            headers=as_(api_tokens, "staff"),
        ).json()
        assert body["status"] == step
        assert body["allowed_next"] == list(allowed_next(step))
    assert [e["to_status"] for e in body["events"]] == [
        "reported",
        "registered",
        "dispatched",
        "handled",
    ]
    assert body["events"][-1]["actor"] == "test-staff"
    refused = client.patch(
        f"/incidents/{case}", json={"status": "closed"}, headers=as_(api_tokens, "staff")
    )
    problem = assert_problem(refused, 409)
    assert problem["allowed"] == ["verified", "dispatched"]
    assert_problem(
        client.patch(
            f"/incidents/{case}", json={"status": "nonsense"}, headers=as_(api_tokens, "staff")
        ),
        422,
    )
    assert_problem(
        client.patch(
            "/incidents/none:1", json={"status": "registered"}, headers=as_(api_tokens, "staff")
        ),
        404,
    )


def test_incident_stats_count_the_cases(client, api_tokens, store):
    client.post(
        "/incidents",
        json={"source": "12345", "incidents": cases_in(store)},
        headers=as_(api_tokens, "staff"),
    )
    body = client.get(
        "/stats/incidents", params={"by": "community"}, headers=as_(api_tokens, "staff")
    ).json()
    listed = client.get("/incidents", params={"limit": 50}, headers=as_(api_tokens, "staff")).json()
    assert sum(r["reported"] for r in body["rows"]) == listed["total"]
    counts = pd.Series([i["community"] for i in listed["items"]]).value_counts()
    assert {r["key"]: r["reported"] for r in body["rows"]} == counts.to_dict()
    assert_problem(
        client.get("/stats/incidents", params={"by": "planet"}, headers=as_(api_tokens, "staff")),
        422,
    )


def test_incident_batches_are_bounded_and_checked(client, api_tokens):
    many = {"source": "x", "incidents": [{"id": i} for i in range(501)]}
    assert_problem(client.post("/incidents", json=many, headers=as_(api_tokens, "staff")), 413)
    assert_problem(
        client.post(
            "/incidents",
            json={"source": "x", "incidents": [{"id": 1, "colour": "red"}]},
            headers=as_(api_tokens, "staff"),
        ),
        422,
    )
    assert_problem(
        client.post("/incidents", json={"incidents": []}, headers=as_(api_tokens, "staff")), 422
    )


# -- workers, tokens, maps -------------------------------------------------------------------------------------


def test_workers_phones_only_for_staff(client, api_tokens, store):
    viewer = client.get("/workers", headers=as_(api_tokens, "viewer")).json()
    staff = client.get("/workers", headers=as_(api_tokens, "staff")).json()
    assert len(viewer) == len(staff) == len(rosters.roster(store))
    assert all(w["phone"] is None for w in viewer)
    assert all(w["phone"].startswith("138") for w in staff)
    grids = publishing.published_grids(store)
    assert sum(w["grids"] for w in staff) == int(grids["worker_id"].notna().sum())


def test_admin_replaces_roster_and_assigns(client, api_tokens, store):
    communities = store.read_layer("communities")["community"].tolist()
    roster = "工号,姓名,手机,社区\n" + "".join(
        f"N{i:02d},新员{i},139{i:08d},{name}\n" for i, name in enumerate(communities)
    )
    put = client.put(
        "/workers",
        params={"replace": "true"},
        content=roster.encode("gbk"),
        headers={**as_(api_tokens, "admin"), "content-type": "text/csv"},
    )
    assert put.status_code == 200, put.text
    assert sorted(w["worker_id"] for w in put.json()["workers"]) == [
        f"N{i:02d}" for i in range(len(communities))
    ]
    # the old workers left every grid at once: all published grids are reported without one
    assert put.json()["removed"]
    assert len(put.json()["without_worker"]) == len(publishing.published_grids(store))
    assigned = client.post("/workers/assign", headers=as_(api_tokens, "admin")).json()
    assert assigned["assigned"] == len(publishing.published_grids(store))
    grids = client.get("/grids", params={"limit": 50}, headers=as_(api_tokens, "staff")).json()[
        "items"
    ]
    assert all(g["worker_id"].startswith("N") for g in grids)
    bad = "工号,姓名,手机,社区\nX1,某人,139,不存在的社区\n"
    assert_problem(
        client.put(
            "/workers",
            content=bad.encode(),
            headers={**as_(api_tokens, "admin"), "content-type": "text/csv"},
        ),
        422,
    )


def test_tokens_create_and_revoke_take_effect_at_once(client, api_tokens):
    made = client.post(
        "/tokens", json={"name": "field-app", "role": "staff"}, headers=as_(api_tokens, "admin")
    )
    assert made.status_code == 201
    token = made.json()["token"]
    assert (
        client.get(
            "/locate", params={"lon": 102.72, "lat": 25.07}, headers=bearer(token)
        ).status_code
        == 200
    )
    listed = client.get("/tokens", headers=as_(api_tokens, "admin")).json()
    assert {"name": "field-app", "role": "staff"}.items() <= next(
        t for t in listed if t["name"] == "field-app"
    ).items()
    assert token not in json.dumps(listed)
    assert_problem(
        client.post(
            "/tokens", json={"name": "field-app", "role": "staff"}, headers=as_(api_tokens, "admin")
        ),
        409,
    )
    assert client.delete("/tokens/field-app", headers=as_(api_tokens, "admin")).status_code == 204
    body = assert_problem(client.get("/grids", headers=bearer(token)), 401)
    assert "revoked" in body["detail"]
    assert_problem(client.get("/grids", headers=bearer("gm_not-a-token")), 401)


def test_maps_are_html_pages(client, api_tokens, store, grids):
    page = client.get(
        "/maps/district.html", params={"lang": "en"}, headers=as_(api_tokens, "viewer")
    )
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<html" in page.text.lower()
    code = grids["grid_code"].iloc[0]
    grid_page = client.get(f"/maps/grids/{code}.html", headers=as_(api_tokens, "viewer"))
    assert grid_page.status_code == 200
    assert code in grid_page.text
    community = grids["community"].iloc[0]
    assert (
        client.get(
            f"/maps/communities/{community}.html", headers=as_(api_tokens, "viewer")
        ).status_code
        == 200
    )
    assert_problem(client.get("/maps/grids/nope.html", headers=as_(api_tokens, "viewer")), 404)
    assert_problem(
        client.get(
            "/maps/district.html",
            params={"include_contacts": True},
            headers=as_(api_tokens, "viewer"),
        ),
        403,
    )
    assert_problem(
        client.get(
            "/maps/district.html", params={"basemap": "google"}, headers=as_(api_tokens, "viewer")
        ),
        422,
    )


def test_public_maps_mode_serves_maps_only(api_db):
    app = create_app(Settings(db=api_db, public_maps=True))
    with TestClient(app) as public:
        assert public.get("/maps/district.html").status_code == 200
        assert_problem(public.get("/maps/district.html", params={"include_contacts": True}), 403)
        assert_problem(public.get("/grids"), 401)


# -- errors and concurrency -------------------------------------------------------------------------------------


def test_errors_are_problem_json(client, api_tokens):
    body = assert_problem(client.get("/no/such/route"), 404)
    assert "/docs" in body["detail"]
    assert_problem(client.get("/grids"), 401)
    assert_problem(
        client.get("/grids", params={"limit": 0}, headers=as_(api_tokens, "viewer")), 422
    )
    assert_problem(
        client.get("/grids", params={"offset": -1}, headers=as_(api_tokens, "viewer")), 422
    )
    huge = {"points": [{"lon": 102.7, "lat": 25.0, "id": "x" * 1000}] * 300}
    assert_problem(client.post("/locate", json=huge, headers=as_(api_tokens, "staff")), 413)


def test_concurrent_reads_and_writes(client, api_tokens, store):
    """Locates keep answering while cases are written (WAL: readers do not wait)."""
    point = store.read_layer("buildings").to_crs(4326).geometry.representative_point().iloc[2]
    statuses: list[int] = []

    def reader():
        for _ in range(20):
            response = client.get(
                "/locate", params={"lon": point.x, "lat": point.y}, headers=as_(api_tokens, "staff")
            )
            statuses.append(response.status_code)

    def writer(k):
        # five points a metre apart: five at one point would be a geocoder's fallback point
        cases = [{"id": f"C{k}-{i}", "lon": point.x + i * 1e-5, "lat": point.y} for i in range(5)]
        response = client.post(
            "/incidents",
            json={"source": "load", "incidents": cases},
            headers=as_(api_tokens, "staff"),
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    threads += [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * (4 * 20 + 4)
    listed = client.get(
        "/incidents", params={"limit": 1, "grid": None}, headers=as_(api_tokens, "staff")
    )
    assert listed.status_code == 200


def test_ogc_items_page_and_feature(client, api_tokens, grids):
    first = client.get(
        "/ogc/collections/grids/items", params={"limit": 10}, headers=as_(api_tokens, "viewer")
    )
    assert first.headers["content-type"].startswith("application/geo+json")
    body = first.json()
    assert body["numberMatched"] == len(grids)
    assert body["numberReturned"] == 10
    rels = {link["rel"]: link["href"] for link in body["links"]}
    assert "next" in rels
    assert "prev" not in rels
    second = client.get(rels["next"], headers=as_(api_tokens, "viewer")).json()
    assert {link["rel"] for link in second["links"]} >= {"next", "prev"}
    ids = [f["id"] for f in body["features"]] + [f["id"] for f in second["features"]]
    assert len(set(ids)) == 20
    assert all("worker_phone" not in f["properties"] for f in body["features"])
    feature = client.get(
        f"/ogc/collections/grids/items/{ids[0]}", headers=as_(api_tokens, "viewer")
    ).json()
    frame = gpd.GeoDataFrame.from_features([feature], crs=4326)
    expected = grids.set_index("grid_code").to_crs(4326).geometry[ids[0]]
    assert frame.geometry.iloc[0].equals_exact(expected, tolerance=1e-9)
    assert_problem(
        client.get("/ogc/collections/incidents/items", headers=as_(api_tokens, "viewer")), 403
    )
    assert_problem(client.get("/ogc/collections/roads", headers=as_(api_tokens, "viewer")), 404)


def test_planner_imports_a_feed_file(client, api_tokens, shared_data):
    feed = (shared_data / "boston311_100.csv").read_bytes()
    params = {
        "source": "boston311",
        "id_col": "case_enquiry_id",
        "lon_col": "longitude",
        "lat_col": "latitude",
        "category_col": "type",
        "time_col": "open_dt",
        "tz": "America/New_York",
    }
    headers = {**as_(api_tokens, "planner"), "content-type": "text/csv"}
    # Boston is not in Kunming: no case can be placed, so the feed is refused unless asked for
    refused = client.post("/incidents/import", params=params, content=feed, headers=headers)
    assert "outside the district" in assert_problem(refused, 422)["detail"]
    params["allow_unlocated"] = "true"
    first = client.post("/incidents/import", params=params, content=feed, headers=headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["read"] == 100
    assert body["added"] == 100 - body["summary"]["duplicate_id"]
    # asked for: every case is kept, none is located in the district
    assert body["summary"]["located"] == 0
    again = client.post("/incidents/import", params=params, content=feed, headers=headers).json()
    assert again["added"] == 0
    assert_problem(
        client.post(
            "/incidents/import",
            params=params,
            content=feed,
            headers={**as_(api_tokens, "staff"), "content-type": "text/csv"},
        ),
        403,
    )


def test_planner_partitions_a_draft(client, api_tokens, store):
    before = plans.published_plan_id(store)
    answer = client.post(
        "/grids/partition", json={"seed": 3, "publish": False}, headers=as_(api_tokens, "planner")
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["published"] is False
    assert body["plan_id"] > before
    assert plans.published_plan_id(store) == before
    assert body["summary"]["buildings"] == 140
    assert_problem(
        client.post(
            "/grids/partition",
            json={"min_size": 6, "max_size": 5},
            headers=as_(api_tokens, "planner"),
        ),
        422,
    )


def test_map_pages_follow_new_cases(client, api_tokens, store):
    grid = publishing.published_grids(store)["grid_code"].iloc[0]
    page = f"/maps/grids/{grid}.html"
    before = client.get(page, headers=as_(api_tokens, "viewer")).text
    assert client.get(page, headers=as_(api_tokens, "viewer")).text == before  # cached
    point = store.read_layer("grids").to_crs(4326).representative_point().iloc[0]
    client.post(
        "/incidents",
        json={
            "source": "map",
            "incidents": [{"id": "M1", "category": "暴露垃圾", "lon": point.x, "lat": point.y}],
        },
        headers=as_(api_tokens, "staff"),
    )
    after = client.get(page, headers=as_(api_tokens, "viewer")).text
    assert after != before


def test_one_case_without_a_batch(client, api_tokens, store):
    point = store.read_layer("buildings").to_crs(4326).representative_point().iloc[9]
    case = {"source": "数字城管", "id": 7, "category": "占道经营", "lon": point.x, "lat": point.y}
    first = client.post("/incidents", json=case, headers=as_(api_tokens, "staff")).json()
    assert first["added"] == 1
    assert (
        client.post("/incidents", json=case, headers=as_(api_tokens, "staff")).json()["added"] == 0
    )
    detail = client.get("/incidents/数字城管:7", headers=as_(api_tokens, "staff")).json()
    assert detail["status"] == "reported"
    assert detail["allowed_next"] == ["registered", "rejected"]
    assert detail["grid_code"]


@pytest.mark.parametrize(
    "body",
    [
        {"division": "{{ 7*7 }}"},
        {"division": "</script>"},
        {"division": "=cmd|' /C calc'!A0"},
        {"division": "320581"},  # a county's token: a GeoPackage is one street
        {"worker": "=cmd|' /C calc'!A0"},
        {"worker": "{# x #}"},
    ],
)
def test_a_new_tokens_scope_or_worker_that_cannot_be_is_one_clear_422(client, api_tokens, body):
    answer = client.post(
        "/tokens",
        json={"name": "hostile", "role": "staff", **body},
        headers=as_(api_tokens, "admin"),
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "Traceback" not in answer.text
    listed = client.get("/tokens", headers=as_(api_tokens, "admin")).json()
    assert "hostile" not in {row["name"] for row in listed}  # nothing half-made
