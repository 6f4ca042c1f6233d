"""OGC API – Features read by GDAL's OAPIF driver from a real uvicorn, and concurrent load on it.

The server runs in a subprocess (GDAL holds the GIL while it waits on HTTP, so a server thread in
the test process would never answer). Pages are limited to 50 features so that GDAL follows
``next`` links.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pyogrio
import pytest
import shapely
from api_support import bearer, uvicorn_server

from geo.incidents import records as incident_records
from geo.plans import publish as publishing
from geo.plans import store as plans
from geo.storage.store import open_store


@pytest.fixture(scope="module")
def server(api_db):
    with uvicorn_server(api_db, GRIDMAP_MAX_PAGE="50") as url:
        yield url


@pytest.fixture(scope="module")
def with_incidents(server, api_tokens, api_db):
    points = open_store(api_db).read_layer("buildings").to_crs(4326).representative_point()
    cases = [
        {
            "id": i,
            "category": "暴露垃圾",
            "reported_at": "2026-01-06 10:00",
            "lon": float(points.iloc[i].x),
            "lat": float(points.iloc[i].y),
        }
        for i in range(0, 120, 2)
    ]
    cases.append({"id": "far", "lon": 0.0, "lat": 0.0})  # stored without a point
    answer = httpx.post(
        f"{server}/incidents",
        json={"source": "12345", "incidents": cases},
        headers=bearer(api_tokens["staff"]),
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    return len(cases)


def read_gdal(server, token, layer):
    pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_BEARER": token})
    try:
        return pyogrio.read_dataframe(f"OAPIF:{server}/ogc", layer=layer)
    finally:
        pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": None, "GDAL_HTTP_BEARER": None})


@pytest.mark.parametrize(
    ("layer", "key"),
    [
        ("grids", "grid_code"),
        ("buildings", "building_id"),
        ("communities", "community"),
        ("incidents", "incident_id"),
    ],
)
def test_gdal_reads_exactly_the_store(server, api_tokens, api_db, with_incidents, layer, key):
    store = open_store(api_db)
    if layer == "buildings":
        expected = plans.read_buildings_with_grids(store)
    elif layer == "grids":
        expected = publishing.published_grids(store)
    elif layer == "incidents":
        expected = incident_records.list_incidents(store)
    else:
        expected = store.read_layer(layer)
    expected = expected.to_crs(4326).set_index(key)
    got = read_gdal(server, api_tokens["staff"], layer)
    assert got.crs.to_epsg() == 4326
    assert len(got) == len(expected)
    got = got.set_index(got[key].astype(str))
    assert sorted(got.index) == sorted(expected.index.astype(str))
    expected.index = expected.index.astype(str)
    same = shapely.equals_exact(
        got.geometry.reindex(expected.index).array, expected.geometry.array, tolerance=1e-9
    )
    missing = expected.geometry.isna().to_numpy()
    assert (same | (missing & got.geometry.reindex(expected.index).isna().to_numpy())).all()
    if layer == "grids":
        assert (got["community"].reindex(expected.index) == expected["community"]).all()
        assert got["worker_phone"].notna().any()  # staff see contacts
    if layer == "incidents":
        assert len(got) == with_incidents


def test_gdal_viewer_has_no_contacts_and_no_incidents(server, api_tokens):
    grids = read_gdal(server, api_tokens["viewer"], "grids")
    assert "worker_phone" not in grids.columns
    assert grids["worker"].notna().any()
    pyogrio.set_gdal_config_options(
        {"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_BEARER": api_tokens["viewer"]}
    )
    try:
        layers = pyogrio.list_layers(f"OAPIF:{server}/ogc")[:, 0].tolist()
    finally:
        pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": None, "GDAL_HTTP_BEARER": None})
    assert layers == ["grids", "buildings", "communities"]


def test_bbox_and_paging_over_http(server, api_tokens, api_db):
    store = open_store(api_db)
    buildings = store.read_layer("buildings").to_crs(4326)
    west, south, east, north = buildings.total_bounds
    box = [west, south, (west + east) / 2, north]
    expected = set(buildings.cx[box[0] : box[2], box[1] : box[3]]["building_id"])
    seen: list[str] = []
    url = f"{server}/ogc/collections/buildings/items?bbox={','.join(map(str, box))}&limit=20"
    with httpx.Client(headers=bearer(api_tokens["viewer"]), timeout=30) as client:
        while url:
            page = client.get(url).json()
            assert page["numberMatched"] == len(expected)
            seen += [f["id"] for f in page["features"]]
            url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    assert len(seen) == len(set(seen)) == len(expected)
    assert set(seen) == expected


def test_concurrent_locates_and_posts_on_a_real_server(server, api_tokens, api_db):
    """50 clients locate while cases are posted: every answer 200 (WAL: reads never wait)."""
    points = open_store(api_db).read_layer("buildings").to_crs(4326).representative_point()
    staff = bearer(api_tokens["staff"])

    def locate(i):
        p = points.iloc[i % len(points)]
        with httpx.Client(base_url=server, headers=staff, timeout=30) as client:
            return [
                client.get("/locate", params={"lon": p.x, "lat": p.y}).status_code
                for _ in range(10)
            ]

    def post(i):
        cases = [
            {"id": f"{i}-{k}", "lon": points.iloc[k].x, "lat": points.iloc[k].y} for k in range(3)
        ]
        with httpx.Client(base_url=server, headers=staff, timeout=60) as client:
            return [
                client.post("/incidents", json={"source": "load", "incidents": cases}).status_code
            ]

    with ThreadPoolExecutor(50) as pool:
        jobs = [pool.submit(locate, i) for i in range(50)] + [
            pool.submit(post, i) for i in range(10)
        ]
        codes = [code for job in jobs for code in job.result()]
    assert codes == [200] * (50 * 10 + 10)
    listed = httpx.get(f"{server}/incidents", params={"limit": 1}, headers=staff, timeout=30).json()
    assert listed["total"] >= 30
