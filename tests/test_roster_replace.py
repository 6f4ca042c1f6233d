"""A roster that would shrink the team is confirmed first (issue 14, item 6).

A one-row roster once replaced all the workers of a district and left every grid without one,
silently. Now an import that would remove workers or leave published grids without a worker is
refused with that difference (CLI: one line, exit 4; API: 409 with the lists) until it is
confirmed with ``--replace`` / ``replace=true``. Real Kunming footprints, two workers per compound.
"""

from __future__ import annotations

import sqlite3

import pandas as pd
from api_support import bearer, cli_in_english, role_tokens
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from geo.people import roster as rosters
from geo.plans import publish as publishing
from geo.storage.store import open_store

gridmap = cli_in_english


def one_row_roster(store, path):
    """The roster as a district office once sent it: one worker of the first compound."""
    first = rosters.roster(store).iloc[[0]]
    first.rename(
        columns={"worker_id": "工号", "name": "姓名", "phone": "手机", "community": "社区"}
    ).to_csv(path, index=False)
    return first


def staffing(db):
    with sqlite3.connect(db) as conn:
        workers = conn.execute("SELECT count(*) FROM workers").fetchone()[0]
        staffed = conn.execute("SELECT count(*) FROM grids WHERE worker_id IS NOT NULL").fetchone()
    return workers, staffed[0]


def test_a_one_row_roster_is_refused_with_the_difference_and_changes_nothing(staffed, tmp_path):
    store = open_store(staffed)
    before = staffing(staffed)
    path = tmp_path / "roster.csv"
    kept = one_row_roster(store, path)
    refused = gridmap("workers", "import", path, "--db", staffed)
    assert refused.exit_code == 4, refused.output
    line = refused.output.strip()
    assert len(line.splitlines()) == 1
    assert f"would remove {before[0] - 1} workers" in line
    assert "published grids without a worker" in line
    assert "--replace" in line
    assert staffing(staffed) == before
    done = gridmap("workers", "import", path, "--db", staffed, "--replace")
    assert done.exit_code == 0, done.output
    workers, staffed_grids = staffing(staffed)
    assert workers == 1
    grids = publishing.published_grids(store)
    ours = grids["community"] == kept["community"].iloc[0]
    assert staffed_grids == int(grids.loc[ours, "worker_id"].notna().sum())
    assert f"{int((~ours).sum()) + int(grids.loc[ours, 'worker_id'].isna().sum())} grids" in (
        done.output
    )


def test_a_roster_that_only_adds_workers_needs_no_replace(staffed, tmp_path):
    store = open_store(staffed)
    team = rosters.roster(store)
    extra = team.iloc[[0]].assign(worker_id="W999", name="新来的", phone=None)
    path = tmp_path / "roster.csv"
    pd.concat([team, extra]).rename(
        columns={"worker_id": "工号", "name": "姓名", "phone": "手机", "community": "社区"}
    ).to_csv(path, index=False)
    done = gridmap("workers", "import", path, "--db", staffed)
    assert done.exit_code == 0, done.output
    assert staffing(staffed)[0] == len(team) + 1


def test_the_api_answers_a_shrinking_roster_with_409_and_the_difference(staffed):
    store = open_store(staffed)
    team = rosters.roster(store)
    gone = team["worker_id"].iloc[1:].tolist()
    first = team.iloc[0]
    body = f"工号,姓名,手机,社区\n{first.worker_id},{first['name']},,{first.community}\n"
    admin = {**bearer(role_tokens(staffed)["admin"]), "content-type": "text/csv"}
    before = staffing(staffed)
    with TestClient(create_app(Settings(db=staffed))) as client:
        refused = client.put("/workers", content=body.encode(), headers=admin)
        assert refused.status_code == 409, refused.text
        problem = refused.json()
        assert problem["removed"] == sorted(gone)
        grids = publishing.published_grids(store)
        losing = grids[grids["worker_id"].isin(gone)]["grid_code"]
        assert problem["grids_without_worker"] == sorted(losing)
        assert staffing(staffed) == before
        done = client.put(
            "/workers", params={"replace": "true"}, content=body.encode(), headers=admin
        )
        assert done.status_code == 200, done.text
        assert done.json()["removed"] == sorted(gone)
    assert staffing(staffed)[0] == 1
