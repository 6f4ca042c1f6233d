"""Flags no plan can avoid do not make publishing need a reason (issue 14, item 8).

Kunming's compounds hold 6, 6, 3, 3, 2 and 2 buildings among others: no plan splits those into
grids of 4 to 5, so every plan carries one odd grid in each. Publishing a draft after one
harmless move used to need ``--override`` for them; now they are counted apart, and only a flag
the edit introduced (or could have avoided) needs a reason. Real Kunming footprints.
"""

from __future__ import annotations

import pytest
from api_support import bearer, cli_in_english, role_tokens
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from geo.errors import Conflict
from geo.plans import editing
from geo.plans import publish as publishing
from geo.plans import store as plans
from geo.storage.store import open_store

#: the odd grids of Kunming: one in each compound of 6, 6, 3, 3, 2 and 2 buildings
KUNMING_UNAVOIDABLE = 6


gridmap = cli_in_english


def harmless_move(store, draft: int) -> int:
    """Move one building from a grid of 5 to a grid of 4 of its compound such that no rule
    breaks; returns the draft's revision after it."""
    plan = plans.load_plan(store, draft)
    revision = plan.revision
    for _, grids in plan.grids.groupby("community"):
        fives = grids.index[grids["n_buildings"] == 5]
        fours = grids.index[grids["n_buildings"] == 4]
        for source in fives:
            for building in plan.labels.index[plan.labels == source]:
                for target in fours:
                    args = {"building": building, "to": target}
                    result = editing.apply_edit(store, draft, "move", args, revision=revision)
                    revision = result.revision
                    if result.violations.empty:
                        return revision
                    revision = editing.undo(store, draft, revision=revision).revision
    raise AssertionError("no harmless move found")


def test_the_kunming_plan_counts_its_odd_grids_as_unavoidable(staffed):
    store = open_store(staffed)
    flags = publishing.violations(plans.load_plan(store))
    assert int(flags["unavoidable"].sum()) == KUNMING_UNAVOIDABLE
    assert not flags.loc[~flags["unavoidable"], "rule"].tolist()


def test_an_edit_counts_only_the_flags_that_need_a_reason_as_the_plans_violations(staffed):
    store = open_store(staffed)
    draft = editing.copy_plan(store, plans.published_plan_id(store))
    revision = harmless_move(store, draft)
    target = plans.load_plan(store, draft).grids.index[0]
    # locking a grid breaks nothing, and answers with the whole plan's counts
    result = editing.apply_edit(store, draft, "lock", {"grids": [target]}, revision=revision)
    assert result.total_violations == 0
    assert result.unavoidable_flags == KUNMING_UNAVOIDABLE
    assert result.to_dict()["unavoidable_flags"] == KUNMING_UNAVOIDABLE


def test_a_draft_after_one_harmless_move_publishes_without_override_from_the_cli(staffed):
    store = open_store(staffed)
    draft = editing.copy_plan(store, plans.published_plan_id(store))
    revision = harmless_move(store, draft)
    done = gridmap("plan", "publish", draft, "--db", staffed, "--revision", revision)
    assert done.exit_code == 0, done.output
    assert plans.published_plan_id(store) == draft
    assert plans.plan_row(store, draft)["override_reason"] is None
    assert f"{KUNMING_UNAVOIDABLE} unavoidable flags" in done.output


def test_a_draft_after_one_harmless_move_publishes_without_override_over_the_api(staffed):
    store = open_store(staffed)
    draft = editing.copy_plan(store, plans.published_plan_id(store))
    revision = harmless_move(store, draft)
    planner = bearer(role_tokens(staffed)["planner"])
    with TestClient(create_app(Settings(db=staffed))) as client:
        done = client.post(f"/plans/{draft}/publish", json={"revision": revision}, headers=planner)
    assert done.status_code == 200, done.text
    assert done.json()["violations"] == 0
    assert done.json()["unavoidable"] == KUNMING_UNAVOIDABLE


def test_a_move_that_breaks_a_rule_still_needs_a_reason(staffed):
    store = open_store(staffed)
    draft = editing.copy_plan(store, plans.published_plan_id(store))
    plan = plans.load_plan(store, draft)
    grids = plan.grids[plan.grids["n_buildings"] == 4]
    four = grids.index[0]
    five = plan.grids.index[
        (plan.grids["community"] == grids.at[four, "community"]) & (plan.grids["n_buildings"] == 5)
    ][0]
    building = plan.labels.index[plan.labels == four][0]
    moved = editing.apply_edit(store, draft, "move", {"building": building, "to": five}, revision=0)
    assert set(moved.violations["rule"]) >= {"undersized", "oversized"}
    refused = gridmap("plan", "publish", draft, "--db", staffed, "--revision", 1)
    assert refused.exit_code == 4, refused.output
    assert "rules that could be avoided" in refused.output
    assert f"{KUNMING_UNAVOIDABLE} unavoidable flags need none" in refused.output
    assert plans.plan_row(store, draft)["status"] == "draft"
    with pytest.raises(Conflict, match="could be avoided"):
        publishing.publish_plan(store, draft, revision=1)
    done = publishing.publish_plan(store, draft, revision=1, override_reason="居委会要求")
    assert done["violations"] == 2
    assert done["unavoidable"] == KUNMING_UNAVOIDABLE
