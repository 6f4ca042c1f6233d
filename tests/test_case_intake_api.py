"""A case posted to the service lands in the grid ``GET /locate`` gives its point (issue #16).

``POST /incidents`` and ``GET /locate`` answer from the one locate index the service caches per
plan, so one rule decides a point's grid everywhere; and the grid, community, worker id and
worker name a posted case gets are those the ``sjoin`` over the published grids gave before.
Kunming, staffed; points at grid vertices (many shared by two grids or more), inside buildings
and around the district.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pandas as pd
import pytest
import shapely
from api_support import bearer, uvicorn_server
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_token
from api.settings import Settings
from api.state import ProjectState
from geo.crs import to_wgs84
from geo.incidents.assign import assign_to_grids
from geo.plans import publish as publishing
from geo.plans import store as plans
from geo.storage.store import open_store
from geo.usecases.partition import partition_project


def sample_points(store) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 points: every 7th grid vertex, building centres and random ones around."""
    grids = publishing.published_grids(store)
    vertices = shapely.get_coordinates(grids.geometry.array)[::7]
    inside = store.read_layer("buildings").representative_point()
    rng = np.random.default_rng(16)
    west, south, east, north = grids.total_bounds
    x = np.concatenate([vertices[:, 0], inside.x, rng.uniform(west - 100, east + 100, 60)])
    y = np.concatenate([vertices[:, 1], inside.y, rng.uniform(south - 100, north + 100, 60)])
    return to_wgs84(x, y, crs=grids.crs)


def test_posted_cases_land_where_locate_and_the_sjoin_put_their_points(api_db):
    store = open_store(api_db)
    lon, lat = sample_points(store)
    grids = publishing.published_grids(store)
    expected = assign_to_grids(pd.DataFrame({"lon": lon, "lat": lat}), grids)
    token = create_token(store, "intake-staff", "staff")
    with TestClient(create_app(Settings(db=api_db)), headers=bearer(token)) as client:
        for i, (x, y) in enumerate(zip(lon.tolist(), lat.tolist(), strict=True)):
            posted = client.post(
                "/incidents",
                json={
                    "source": "intake",
                    "id": f"P{i}",
                    "category": "暴露垃圾",
                    "lon": x,
                    "lat": y,
                },
            )
            assert posted.status_code == 200, posted.text
            assert posted.json()["added"] == 1
            case = client.get(f"/incidents/intake:P{i}").json()
            located = client.get("/locate", params={"lon": x, "lat": y}).json()
            in_grid = located["grid_distance_m"] == 0
            assert case["grid_code"] == (located["grid_code"] if in_grid else None)
            assert case["grid_code"] == expected["grid_code"].iloc[i]
            assert case["community"] == expected["community"].iloc[i]
            row = grids.set_index("grid_code").loc[case["grid_code"]] if in_grid else None
            assert case["worker_id"] == (row["worker_id"] if in_grid else None)
            assert case["worker"] == (located["worker"] if in_grid else None)
    assigned = expected["grid_code"].notna()
    assert assigned.sum() > len(lon) // 2
    assert (~assigned).any()


def test_a_case_posted_after_a_publish_is_not_assigned_by_the_previous_plans_index(
    kunming_project,
):
    state = ProjectState(Settings(db=kunming_project, refresh_seconds=3600))
    try:
        before = state.locator()
        assert state.case_index() is before.index
        partition_project(open_store(kunming_project), author="t", publish=True)
        assert plans.published_plan_id(open_store(kunming_project)) != before.plan_id
        assert state.locator() is before  # locate may lag behind for refresh_seconds
        assert state.case_index() is None  # cases are assigned from the project file then
    finally:
        state.close()


def _concurrent_posts(base: str, token: str, cases: list[dict]) -> list[httpx.Response]:
    """Every case posted at once, each by a client of its own (one connection per post)."""

    async def post_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=len(cases))
        async with httpx.AsyncClient(
            base_url=base, headers=bearer(token), limits=limits, timeout=60
        ) as client:
            return await asyncio.gather(*(client.post("/incidents", json=c) for c in cases))

    return asyncio.run(post_all())


@pytest.mark.parametrize("backend", ["geopackage", "postgis"])
def test_concurrent_posts_through_a_server_are_stored_once_each_and_answered_right(
    backend, api_db, request
):
    """Posts arriving together are stored by the server's writer task in shared transactions
    (group commit): every case once, with one creation event, every answer right, a case posted
    by several clients at once added by one of them and reported as present to the others."""
    source = open_store(api_db)
    feed = f"group{backend}"  # the module's project is shared: each run's cases of its own
    lon, lat = sample_points(source)
    if backend == "postgis":
        import pgcluster
        from pg_copy import copy_project

        store = copy_project(
            source, pgcluster.fresh_database(request.getfixturevalue("postgis_url"))
        )
    else:
        store = source
    token = create_token(store, f"group-{backend}", "staff")
    unique = [
        {"source": feed, "id": f"G{i}", "category": "暴露垃圾", "lon": x, "lat": y}
        for i, (x, y) in enumerate(zip(lon[:60].tolist(), lat[:60].tolist(), strict=True))
    ]
    cases = unique + [dict(unique[i % 5], description=f"again {i}") for i in range(40)]
    with uvicorn_server(api_db if backend == "geopackage" else store.url) as base:
        # the first case makes the incidents layer (the feed path); the burst takes the lean one
        (first,) = _concurrent_posts(base, token, [dict(unique[0], id="first")])
        assert first.json()["added"] == 1
        answers = _concurrent_posts(base, token, cases)
    assert [a.status_code for a in answers] == [200] * len(cases), answers[0].text
    added: dict[str, int] = {}
    for case, answer in zip(cases, answers, strict=True):
        body = answer.json()
        assert body["added"] + body["already_present"] == 1
        added[case["id"]] = added.get(case["id"], 0) + body["added"]
    assert added == dict.fromkeys([c["id"] for c in unique], 1)
    stored = store.read_layer("incidents", where={"source": feed})
    assert sorted(stored["incident_id"]) == sorted(f"{feed}:{i}" for i in ["first", *added])
    events = store.read_table("incident_events")
    assert events["incident_id"].str.startswith(f"{feed}:").sum() == len(unique) + 1
    log = store.read_table(
        "audit_log", where={"action": "incidents import", "actor": f"group-{backend}"}
    )
    assert sum(json.loads(d)["added"] for d in log["details"]) == len(unique) + 1
    assert len(log) < len(unique), "posts arriving together shared transactions"
    store.engine.dispose()
