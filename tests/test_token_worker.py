"""A token bound to one grid worker (issue #18: staff kept to their own grids): made from the CLI
by worker id or name, verified as the principal's ``worker``, listed; older tokens keep working."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from api.auth import create_token, verify_token
from api.cli import app
from geo.storage.store import open_store


def _create(db, *arguments):
    return CliRunner().invoke(app, ["token", "create", "--db", str(db), *arguments])


def test_a_token_bound_to_a_worker_names_them_and_older_tokens_keep_working(api_db):
    store = open_store(api_db)
    roster = store.read_table("workers")
    first = roster.iloc[0]
    older = create_token(store, "旧令牌", "viewer")
    with store.transaction() as conn:  # the project as made before bindings: no worker column
        conn.exec_driver_sql("ALTER TABLE tokens DROP COLUMN worker")
    store.engine.dispose()
    store = open_store(api_db)  # opening gives the table its column back
    assert "worker" in {c["name"] for c in sa.inspect(store.engine).get_columns("tokens")}
    assert verify_token(store, older).worker is None
    made = _create(api_db, "--role", "staff", "--name", "网格员令牌", "--worker", first["name"])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[-1]
    principal = verify_token(open_store(api_db), token)
    assert (principal.role, principal.worker) == ("staff", first["worker_id"])
    assert verify_token(open_store(api_db), older).worker is None
    by_id = _create(api_db, "--role", "staff", "--name", "按工号", "--worker", first["worker_id"])
    assert by_id.exit_code == 0, by_id.output
    listed = CliRunner().invoke(app, ["token", "list", "--db", str(api_db), "--json"])
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["网格员令牌"]["worker"] == rows["按工号"]["worker"] == first["worker_id"]
    assert rows["旧令牌"]["worker"] is None


def test_a_worker_not_in_the_roster_is_refused_with_exit_code_2(api_db):
    refused = _create(api_db, "--role", "staff", "--name", "无此人", "--worker", "查无此人")
    assert refused.exit_code == 2
    listed = CliRunner().invoke(app, ["token", "list", "--db", str(api_db), "--json"])
    assert "无此人" not in {row["name"] for row in json.loads(listed.stdout)}


def test_tokens_and_the_service_fingerprint_work_on_postgis_as_on_a_geopackage(postgis_url):
    import pgcluster

    from api.auth import revoke_token
    from geo.usecases import service

    store = open_store(pgcluster.fresh_database(postgis_url))
    token = create_token(store, "服务", "admin")
    assert (verify_token(store, token).role, verify_token(store, token).worker) == ("admin", None)
    before = service.fingerprint(store)
    assert before["plan"] == ()
    assert before["grid_workers"] == ()
    assert service.ChangeWatch(store).changed()  # no commit counter: the fingerprint decides
    revoke_token(store, "服务")
    assert service.fingerprint(store) == before  # tokens are not part of what caches hold


@pytest.mark.parametrize("backend", ["geopackage", "postgis"])
def test_the_fingerprint_sees_two_grids_swap_their_workers(kunming_project, postgis_url, backend):
    # the locate index caches each grid's worker: a swap changes no count, yet must show
    import pgcluster
    from pg_copy import copy_project

    from geo.usecases import service

    store = open_store(kunming_project)
    if backend == "postgis":
        store = copy_project(store, pgcluster.fresh_database(postgis_url))
    grids = store.read_layer("grids", columns=["plan_id", "grid_code"]).head(2)
    staffed = pd.DataFrame(grids[["plan_id", "grid_code"]]).assign(worker_id=["W1", "W2"])
    with store.transaction() as conn:
        store.update_rows(conn, "grids", staffed, key=["plan_id", "grid_code"])
    before = service.fingerprint(store)["grid_workers"]
    swapped = staffed.assign(worker_id=["W2", "W1"])
    with store.transaction() as conn:
        store.update_rows(conn, "grids", swapped, key=["plan_id", "grid_code"])
    after = service.fingerprint(store)["grid_workers"]
    assert after != before
    assert after[0] == before[0]  # as many grids as before
