"""Page hardening (issue #13, items 13 and 15): framing, caching, HEAD, /health, public buildings.

Without a browser: the headers every answer carries, HEAD on pages, what ``/health`` tells an
anonymous caller, and the footprints a large district's map page reads in public mode. What the
page does with them in chromium is in ``tests/test_api_maps_browser.py``.
"""

from __future__ import annotations

import json
import re

import pytest
from api_support import bearer
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from geo.plans import store as plans
from geo.storage.store import open_store

DATA_BLOCK = re.compile(r'<script type="application/json" id="gm-data-[^"]+">(.*?)</script>', re.S)
#: what a map shows of a building; nothing else may leave in public mode
SHOWN = {"building_id", "community", "households", "grid_code", "name", "address"}
KUNMING_BOX = "102.6,24.9,102.9,25.2"


@pytest.fixture(scope="module")
def client(api_db, api_tokens):
    with TestClient(create_app(Settings(db=api_db))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def plan_id(api_db) -> int:
    store = open_store(api_db)
    return plans.published_plan_id(store)


def pages(plan_id: int) -> list[str]:
    return [
        "/maps/district.html",
        "/maps/grids/x.html",  # a 404 page is a page too
        f"/plans/{plan_id}/diff/map",
        f"/plans/{plan_id}/edit",
    ]


def test_no_page_may_be_framed(client, api_tokens, plan_id):
    for path in pages(plan_id):
        answer = client.get(path, headers=bearer(api_tokens["planner"]))
        assert answer.headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"], path


def test_answers_that_carry_contacts_are_never_stored_by_browsers_or_proxies(client, api_tokens):
    staff = bearer(api_tokens["staff"])
    for path, params in [
        ("/workers", {}),
        ("/grids", {}),
        ("/maps/district.html", {"include_contacts": True}),
        ("/ogc/collections/grids/items", {}),
    ]:
        answer = client.get(path, params=params, headers=staff)
        assert answer.status_code == 200, (path, answer.text[:200])
        assert answer.headers["cache-control"] == "no-store", path
    assert "1380000" in client.get("/workers", headers=staff).text  # they do carry phones


def test_head_on_a_page_answers_as_get_without_the_body(client, api_tokens, plan_id):
    for path in pages(plan_id):
        token = {"token": api_tokens["planner"]}
        got = client.get(path, params=token)
        head = client.head(path, params=token)
        assert head.status_code == got.status_code, path
        assert head.content == b""
        assert head.headers["content-type"] == got.headers["content-type"]
        assert head.headers["content-length"] == str(len(got.content))


def test_health_tells_an_anonymous_caller_only_that_the_service_is_up(client, api_tokens):
    assert client.get("/health").json() == {"status": "ok"}
    full = client.get("/health", headers=bearer(api_tokens["viewer"])).json()
    assert full["buildings"] == 140
    assert full["project"].endswith(".gpkg")
    assert client.get("/health", headers=bearer("gm_not-a-token")).status_code == 401


def _features_url(html: str) -> str | None:
    return json.loads(DATA_BLOCK.findall(html)[0])["options"]["features_url"]


def test_a_public_map_of_a_large_district_reads_only_what_public_mode_serves(api_db):
    settings = Settings(db=api_db, public_maps=True, max_embedded_buildings=50)
    with TestClient(create_app(settings)) as anonymous:
        page = anonymous.get("/maps/district.html")
        assert page.status_code == 200
        url = _features_url(page.text)
        assert url == "/maps/buildings.geojson"
        answer = anonymous.get(url, params={"bbox": KUNMING_BOX, "limit": 500})
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("application/geo+json")
        features = answer.json()["features"]
        assert len(features) == 140
        assert all(set(f["properties"]) <= SHOWN for f in features)
        assert "phone" not in answer.text
        limited = anonymous.get(url, params={"bbox": KUNMING_BOX, "limit": 7}).json()
        assert len(limited["features"]) == 7
        missing = anonymous.get(url)
        assert missing.status_code == 422
        assert "bbox" in missing.json()["detail"]


def test_the_buildings_of_a_map_page_need_a_token_unless_maps_are_public(client, api_tokens):
    url, box = "/maps/buildings.geojson", {"bbox": KUNMING_BOX}
    assert client.get(url, params=box).status_code == 401
    answer = client.get(url, params=box, headers=bearer(api_tokens["viewer"]))
    assert answer.status_code == 200
    assert answer.json()["features"]


def test_what_callers_wrote_about_cases_is_on_maps_for_staff_only(tmp_path, api_db, api_tokens):
    """A 12345 description can name a resident: viewers and the public see category and status."""
    from geo.incidents import records as incident_records

    store = open_store(api_db)
    lon, lat = store.read_layer("buildings").to_crs(4326).geometry.iloc[0].centroid.coords[0]
    secret = "邻居张三家漏水，电话13912345678"
    with TestClient(create_app(Settings(db=api_db))) as staff_client:
        posted = staff_client.post(
            "/incidents",
            json={
                "source": "12345",
                "id": "PRIVATE-1",
                "lon": lon,
                "lat": lat,
                "category": "0601",
                "description": secret,
                "address": "幸福里3号楼",
            },
            headers=bearer(api_tokens["staff"]),
        )
        assert posted.status_code in (200, 201), posted.text
        shown = {
            role: staff_client.get("/maps/district.html", headers=bearer(api_tokens[role])).text
            for role in ("viewer", "staff")
        }
    with TestClient(create_app(Settings(db=api_db, public_maps=True))) as anonymous:
        shown["public"] = anonymous.get("/maps/district.html").text
    stored = incident_records.list_incidents(store).set_index("incident_id")
    case_id = stored.index[stored["description"] == secret][0]
    for role, html in shown.items():
        data = json.loads(DATA_BLOCK.search(html).group(1))
        texts = json.dumps(data, ensure_ascii=False)
        assert case_id in texts, role  # the case itself is on every map
        assert (secret in texts) == (role == "staff"), role
        assert ("幸福里3号楼" in texts) == (role == "staff"), role
