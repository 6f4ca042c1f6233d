"""The /plans API on the real Kunming project, through the assembled app (TestClient)."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_token
from api.settings import Settings
from geo.people import roster as rosters
from geo.plans import editing
from geo.plans import store as plans
from geo.storage.store import open_store

COMMUNITY = "北泰花园"


@pytest.fixture
def service(kunming_project):
    """(client, planner headers, viewer headers, store) on a private Kunming project."""
    store = open_store(kunming_project)
    planner = create_token(store, "规划员", "planner")
    viewer = create_token(store, "viewer", "viewer")
    with TestClient(create_app(Settings(db=kunming_project))) as client:
        yield (
            client,
            {"Authorization": f"Bearer {planner}"},
            {"Authorization": f"Bearer {viewer}"},
            store,
        )


def grids_of(plan: plans.Plan, community: str = COMMUNITY):
    return plan.grids[plan.grids["community"] == community].sort_values("n_buildings")


def test_list_show_copy_and_the_roles(service):
    client, planner, viewer, store = service
    listed = client.get("/plans", headers=viewer)
    assert listed.status_code == 200
    published = plans.published_plan_id(store)
    assert [p["status"] for p in listed.json() if p["plan_id"] == published] == ["published"]
    assert client.get("/plans").status_code == 401
    assert client.post(f"/plans/{published}/copy", headers=viewer).status_code == 403
    copied = client.post(f"/plans/{published}/copy", headers=planner, json={"note": "修正"})
    assert copied.status_code == 201
    draft = copied.json()["plan_id"]
    shown = client.get(f"/plans/{draft}", headers=viewer).json()
    assert (shown["status"], shown["parent_id"], shown["revision"], shown["author"]) == (
        "draft",
        published,
        0,
        "规划员",
    )
    assert len(shown["grids"]) == len(plans.load_plan(store, published).grids)
    assert {v["rule"] for v in shown["violations"]} >= {"undersized", "no_worker"}
    assert client.get("/plans/999", headers=viewer).status_code == 404


def test_edits_answer_touched_grids_violations_and_geojson(service):
    client, planner, viewer, store = service
    draft = editing.copy_plan(store, plans.published_plan_id(store))
    plan = plans.load_plan(store, draft)
    small, large = grids_of(plan).index[[0, -1]]
    building = plan.labels.index[plan.labels == small][0]
    body = {"op": "move", "revision": 0, "args": {"buildings": [building], "to": large}}
    assert client.post(f"/plans/{draft}/edits", json=body, headers=viewer).status_code == 403
    answer = client.post(f"/plans/{draft}/edits", json=body, headers=planner)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["revision"] == 1
    counts = {g["grid_code"]: g["n_buildings"] for g in data["touched"]}
    assert counts == {small: 3, large: 6}
    assert {(v["grid_code"], v["rule"]) for v in data["violations"]} >= {
        (small, "undersized"),
        (large, "oversized"),
    }
    features = data["geojson"]["features"]
    assert {f["properties"]["grid_code"] for f in features} == {small, large}
    lon, lat = features[0]["geometry"]["coordinates"][0][0][0][:2]
    assert 102 < lon < 103.5
    assert 24.5 < lat < 25.5
    history = client.get(f"/plans/{draft}/history", headers=viewer).json()
    assert [(h["op"], h["author"]) for h in history] == [("move", "规划员")]


def test_a_stale_revision_answers_409_with_the_changes(service):
    client, planner, _, store = service
    draft = editing.copy_plan(store, plans.published_plan_id(store))
    code = grids_of(plans.load_plan(store, draft)).index[0]
    first = {"op": "lock", "revision": 0, "args": {"grids": [code]}}
    assert client.post(f"/plans/{draft}/edits", json=first, headers=planner).status_code == 200
    again = client.post(f"/plans/{draft}/edits", json=first, headers=planner)
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    problem = again.json()
    assert problem["revision"] == 1
    assert [(c["op"], c["args"]) for c in problem["changes"]] == [("lock", {"grids": [code]})]


def test_refused_edits_are_problems(service):
    client, planner, _, store = service
    published = plans.published_plan_id(store)
    plan = plans.load_plan(store, published)
    building = plan.labels.index[plan.labels == grids_of(plan).index[0]][0]
    elsewhere = grids_of(plan, "同德广场").index[0]
    body = {"op": "move", "revision": 0, "args": {"buildings": [building], "to": elsewhere}}
    on_published = client.post(f"/plans/{published}/edits", json=body, headers=planner)
    assert on_published.status_code == 409
    assert "copy" in on_published.json()["detail"]
    draft = editing.copy_plan(store, published)
    across = client.post(f"/plans/{draft}/edits", json=body, headers=planner)
    assert across.status_code == 422
    assert "two communities" in across.json()["detail"]
    assert "跨社区" in across.json()["detail_zh"]
    bad = client.post(f"/plans/{draft}/edits", json={"op": "move", "args": {}}, headers=planner)
    assert bad.status_code == 422
    assert (
        client.post(f"/plans/{draft}/undo", json={"revision": 0}, headers=planner).status_code
        == 422
    )


def test_undo_redo_publish_with_a_reason_and_diff(service):
    client, planner, viewer, store = service
    published = plans.published_plan_id(store)
    draft = editing.copy_plan(store, published)
    plan = plans.load_plan(store, draft)
    a, b = grids_of(plan).index[:2]
    merged = client.post(
        f"/plans/{draft}/edits",
        json={"op": "merge", "revision": 0, "args": {"grids": [a, b]}},
        headers=planner,
    ).json()
    assert sorted(merged["removed"]) == sorted([a, b])
    undone = client.post(f"/plans/{draft}/undo", json={"revision": 1}, headers=planner).json()
    assert {g["grid_code"] for g in undone["touched"]} == {a, b}
    redone = client.post(f"/plans/{draft}/redo", json={"revision": 2}, headers=planner).json()
    assert redone["revision"] == 3
    diff = client.get(f"/plans/{draft}/diff", params={"against": published}, headers=viewer).json()
    assert len(diff["buildings_moved"]) == 8
    assert sorted(diff["grids_removed"]) == sorted([a, b])
    assert diff == client.get(f"/plans/{draft}/diff", headers=viewer).json()  # parent by default
    token = viewer["Authorization"].split()[1]
    page = client.get(f"/plans/{draft}/diff/map", params={"token": token, "basemap": "none"})
    assert page.status_code == 200
    assert sorted([a, b])[0] in page.text  # the old outlines of the merged grids are drawn
    assert client.get(f"/plans/{draft}/diff/map").status_code == 401
    refused = client.post(f"/plans/{draft}/publish", json={"revision": 3}, headers=planner)
    assert refused.status_code == 409
    assert "override" in refused.json()["detail"]
    reason = "23号庭院只有两栋楼，街道同意单独成格"
    done = client.post(
        f"/plans/{draft}/publish", json={"override_reason": reason, "revision": 3}, headers=planner
    )
    assert done.status_code == 200, done.text
    assert plans.plan_row(store, draft)["override_reason"] == reason
    assert plans.published_plan_id(store) == draft
    after = client.post(
        f"/plans/{draft}/edits",
        json={"op": "lock", "revision": 3, "args": {"grids": [a]}},
        headers=planner,
    )
    assert after.status_code == 409


def test_the_editor_page_needs_a_planner_and_escapes_data(service):
    client, planner, viewer, store = service
    hostile = "</script><script>window.__pwned=1</script>"
    rosters.import_roster(
        store,
        pd.DataFrame(
            {"worker_id": ["W1"], "name": [hostile], "phone": [None], "community": [COMMUNITY]}
        ),
        replace=True,
    )
    draft = editing.copy_plan(store, plans.published_plan_id(store))
    assert client.get(f"/plans/{draft}/edit").status_code == 401
    token = viewer["Authorization"].split()[1]
    assert client.get(f"/plans/{draft}/edit", params={"token": token}).status_code == 403
    token = planner["Authorization"].split()[1]
    page = client.get(f"/plans/{draft}/edit", params={"token": token, "basemap": "none"})
    assert page.status_code == 200
    html = page.text
    assert 'lang="zh-CN"' in html
    assert "网格编辑" in html
    assert 'id="gm-editor-config"' in html
    assert hostile not in html
    assert "\\u003c/script\\u003e" in html  # the worker's name, escaped inside the JSON block
    english = client.get(
        f"/plans/{draft}/edit", params={"lang": "en", "basemap": "none"}, headers=planner
    )
    assert "Grid editor" in english.text
