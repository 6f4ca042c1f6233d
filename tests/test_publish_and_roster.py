"""Publishing and roster replacement decided inside one transaction (issue 13, items 3 and 10).

Publishing checks status, the revision the planner reviewed and the violations in the same write
transaction that publishes, so a racing edit or a second publish is seen or refused; replacing
the roster takes removed workers off every grid and open case in the same transaction and says
which grids are left without one. Real Kunming footprints; the races go through a real server.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pandas as pd
from api_support import bearer, cli_in_english, role_tokens, uvicorn_server
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from geo.incidents import feeds as incident_feeds
from geo.incidents import records as incident_records
from geo.incidents.cases import CaseImport
from geo.locate.kept import grid_index
from geo.people import roster as rosters
from geo.plans import editing
from geo.plans import publish as publishing
from geo.plans import store as plans
from geo.storage.store import open_store
from geo.usecases import incidents as incident_cases

COMMUNITY = "北泰花园"
REASON = "小区太小，街道同意"


gridmap = cli_in_english


def small_grids(plan: plans.Plan) -> list[str]:
    grids = plan.grids[plan.grids["community"] == COMMUNITY].sort_values("n_buildings")
    return grids.index[:2].tolist()


# -- item 3: publish ---------------------------------------------------------------------------


def test_a_publish_of_a_stale_revision_is_a_409_and_publishes_nothing(staffed):
    store = open_store(staffed)
    before = plans.published_plan_id(store)
    draft = editing.copy_plan(store, before)
    a, b = small_grids(plans.load_plan(store, draft))
    editing.apply_edit(store, draft, "merge", {"grids": [a, b]}, revision=0)
    tokens = role_tokens(staffed)
    with TestClient(create_app(Settings(db=staffed))) as client:
        stale = client.post(
            f"/plans/{draft}/publish",
            json={"revision": 0, "override_reason": REASON},
            headers=bearer(tokens["planner"]),
        )
        assert stale.status_code == 409, stale.text
        assert stale.json()["revision"] == 1
        assert "revision 0 was reviewed" in stale.json()["detail"]
        missing = client.post(f"/plans/{draft}/publish", json={}, headers=bearer(tokens["planner"]))
        assert missing.status_code == 422
    assert plans.published_plan_id(store) == before
    done = publishing.publish_plan(store, draft, revision=1, override_reason=REASON)
    assert done["revision"] == 1
    assert plans.published_plan_id(store) == draft


def test_two_simultaneous_publishes_of_one_plan_one_succeeds(staffed):
    store = open_store(staffed)
    draft = editing.copy_plan(store, plans.published_plan_id(store))
    tokens = role_tokens(staffed)
    start = threading.Barrier(2)
    with uvicorn_server(staffed) as base, httpx.Client(base_url=base, timeout=120) as http:

        def publish(k: int) -> httpx.Response:
            start.wait()
            body = {"revision": 0, "override_reason": f"{REASON} {k}"}
            return http.post(
                f"/plans/{draft}/publish", json=body, headers=bearer(tokens["planner"])
            )

        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(publish, range(2)))
    assert sorted(a.status_code for a in answers) == [200, 409]
    winner = next(a for a in answers if a.status_code == 200).json()
    assert plans.plan_row(store, draft)["override_reason"] == winner["override_reason"]
    log = store.read_table("audit_log", where={"action": "publish"})
    assert log["details"].str.contains(f'"plan_id": {draft}').sum() == 1


def race_edit_and_publish(http: httpx.Client, headers: dict, draft: int, grids: list) -> tuple:
    """A merge and a publish of revision 0 of ``draft`` sent at once: their two statuses."""
    start = threading.Barrier(2)
    edit = {"op": "merge", "revision": 0, "args": {"grids": grids}}
    publish = {"revision": 0, "override_reason": REASON}

    def send(path: str, body: dict) -> int:
        start.wait()
        return http.post(f"/plans/{draft}/{path}", json=body, headers=headers).status_code

    with ThreadPoolExecutor(2) as pool:
        edited, published = pool.submit(send, "edits", edit), pool.submit(send, "publish", publish)
        return edited.result(), published.result()


def test_an_edit_racing_a_publish_never_leaves_unreviewed_grids_published(staffed):
    store = open_store(staffed)
    headers = bearer(role_tokens(staffed)["planner"])
    with uvicorn_server(staffed) as base, httpx.Client(base_url=base, timeout=120) as http:
        for _ in range(4):
            draft = editing.copy_plan(store, plans.published_plan_id(store))
            a, b = small_grids(plans.load_plan(store, draft))
            codes = race_edit_and_publish(http, headers, draft, [a, b])
            assert codes in ((200, 409), (409, 200)), codes
            row = plans.plan_row(store, draft)
            if codes == (200, 409):  # the edit came first: the review is stale
                assert (row["status"], row["revision"]) == ("draft", 1)
            else:  # the publish came first: the edit found a published plan
                assert (row["status"], row["revision"]) == ("published", 0)
            # either way the published grids are a reviewed state: the two grids are not merged
            assert {a, b} <= set(publishing.published_grids(store)["grid_code"])


def test_the_cli_publishes_only_the_revision_given(staffed):
    store = open_store(staffed)
    draft = editing.copy_plan(store, plans.published_plan_id(store))
    a, b = small_grids(plans.load_plan(store, draft))
    editing.apply_edit(store, draft, "merge", {"grids": [a, b]}, revision=0)
    args = ("plan", "publish", draft, "--db", staffed, "--override", REASON)
    stale = gridmap(*args, "--revision", 0)
    assert stale.exit_code == 4
    assert "revision 0 was reviewed" in stale.output
    assert len(stale.output.strip().splitlines()) == 1
    assert plans.plan_row(store, draft)["status"] == "draft"
    done = gridmap(*args, "--revision", 1)
    assert done.exit_code == 0, done.output
    assert plans.published_plan_id(store) == draft


# -- item 10: roster replacement -------------------------------------------------------------------


def test_a_removed_worker_is_removed_from_every_grid_and_open_case(staffed):
    store = open_store(staffed)
    draft = editing.copy_plan(store, plans.published_plan_id(store))
    team = rosters.roster(store)
    gone = team[team["community"] == COMMUNITY]["worker_id"].tolist()
    points = store.read_layer("buildings").to_crs(4326)
    inside = points[points["community"] == COMMUNITY].geometry.representative_point()
    records = pd.DataFrame(
        {"id": ["R1", "R2"], "lon": inside.x.iloc[:2].tolist(), "lat": inside.y.iloc[:2].tolist()}
    )
    mapping = incident_feeds.IncidentMapping(id_col="id", lon_col="lon", lat_col="lat")
    incident_cases.import_records(store, records, CaseImport(mapping=mapping, source="12345"))
    for step in ("registered", "dispatched", "handled", "verified", "closed"):
        incident_cases.update_incident(store, "12345:R2", status=step)
    assert incident_records.get_incident(store, "12345:R1")["worker_id"] in gone
    change = rosters.import_roster(store, team[~team["worker_id"].isin(gone)], replace=True)
    assert change.removed == sorted(gone)
    published = publishing.published_grids(store)
    ours = published["community"] == COMMUNITY
    assert published.loc[ours, "worker_id"].isna().all()
    assert published.loc[~ours, "worker_id"].notna().all()
    assert sorted(change.without_worker["grid_code"]) == sorted(published.loc[ours, "grid_code"])
    for plan_id in (plans.published_plan_id(store), draft):
        plan = plans.load_plan(store, plan_id)
        assert not plan.grids["worker_id"].isin(gone).any()
        broken = publishing.violations(plan)
        no_worker = set(broken.loc[broken["rule"] == "no_worker", "grid_code"])
        assert no_worker == set(plan.grids.index[plan.grids["community"] == COMMUNITY])
    assert incident_records.get_incident(store, "12345:R1")["worker_id"] is None  # open: released
    assert (
        incident_records.get_incident(store, "12345:R2")["worker_id"] in gone
    )  # closed: who handled it
    metric = store.read_layer("buildings")
    points = metric[metric["community"] == COMMUNITY].representative_point()
    located = grid_index(store).locate(points.x.to_numpy(), points.y.to_numpy())
    assert located["worker"].isna().all()


def test_the_cli_roster_import_lists_the_grids_left_without_a_worker(staffed, tmp_path):
    store = open_store(staffed)
    team = rosters.roster(store)
    kept = team[team["community"] != COMMUNITY]
    roster = tmp_path / "roster.csv"
    kept.rename(
        columns={"worker_id": "工号", "name": "姓名", "phone": "手机", "community": "社区"}
    ).to_csv(roster, index=False)
    result = gridmap("workers", "import", roster, "--db", staffed, "--replace")
    assert result.exit_code == 0, result.output
    grids = publishing.published_grids(store)
    ours = grids[grids["community"] == COMMUNITY]["grid_code"]
    assert f"{len(ours)} grids without a worker" in result.output
    assert all(code in result.output for code in ours)
    assert "2 workers removed" in result.output


def test_a_removed_worker_does_not_come_back_with_redo(staffed):
    store = open_store(staffed)
    draft = editing.copy_plan(store, plans.published_plan_id(store))
    plan = plans.load_plan(store, draft)
    grid = plan.grids.index[plan.grids["community"] == COMMUNITY][0]
    team = rosters.roster(store)
    held = plan.grids.at[grid, "worker_id"]
    other = team[(team["community"] == COMMUNITY) & (team["worker_id"] != held)]["worker_id"]
    editing.apply_edit(
        store, draft, "assign_worker", {"grid": grid, "worker_id": other.iloc[0]}, revision=0
    )
    editing.undo(store, draft, revision=1)
    rosters.import_roster(store, team[team["worker_id"] != other.iloc[0]], replace=True)
    redone = editing.redo(store, draft, revision=2)
    assert redone.touched.loc[grid, "worker_id"] is None
    assert "no_worker" in set(redone.violations["rule"])
    assert pd.isna(plans.load_plan(store, draft).grids.at[grid, "worker_id"])
