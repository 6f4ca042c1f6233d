"""One district, two backends, the same answers (issue #18): the whole CLI and API flow runs on a
GeoPackage and on PostGIS, and every grid, code, worker, case and statistic comes out equal.

The demo district's input files (footprints, communities, roads, roster, 12345 cases) go through
``gridmap import`` -> ``settings`` -> ``workers import`` -> ``partition`` (published) ->
``plan copy`` / ``move`` / ``undo`` / ``redo`` / ``publish`` -> ``locate`` -> ``incidents import``
/ ``update`` / ``stats`` / ``list`` -> ``map``, then the OGC API and ``/locate`` through the FastAPI
test client, once with ``--db file.gpkg`` and once with ``--db postgresql://...`` (a database of
the throw-away cluster, tests/pgcluster.py). Nothing is mocked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.auth import create_token
from api.cli import app
from api.cli.maps import DEMO_COLUMNS
from api.settings import Settings
from geo.storage.store import open_store

runner = CliRunner()
BACKENDS = ("geopackage", "postgis")


def gridmap(*args: object, db: str | None = None) -> str:
    """Run a command (``db``: the project from GRIDMAP_DB); its stdout (it must succeed)."""
    env = {"GRIDMAP_LANG": "en"} | ({"GRIDMAP_DB": db} if db else {})
    result = runner.invoke(app, [str(a) for a in args], env=env)
    assert result.exit_code == 0, (args, result.output)
    return result.stdout


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """The demo district's input files, as a user brings them."""
    from geo.demo import demo_district

    folder = tmp_path_factory.mktemp("demo-inputs")
    district = demo_district(seed=2026, n_incidents=120)
    district.buildings.to_crs(4326).to_file(folder / "buildings.geojson")
    district.communities.to_crs(4326).to_file(folder / "communities.geojson")
    district.roads.to_crs(4326).to_file(folder / "roads.geojson")
    district.workers.to_csv(folder / "workers.csv", index=False, encoding="utf-8-sig")
    district.incidents.to_csv(folder / "incidents.csv", index=False, encoding="utf-8-sig")
    return folder


@pytest.fixture(scope="module")
def flows(inputs, tmp_path_factory, request) -> dict[str, dict]:
    """The flow's answers on each backend."""
    import pgcluster

    answers = {}
    for backend in BACKENDS:
        out = tmp_path_factory.mktemp(backend)
        if backend == "geopackage":
            db = str(out / "district.gpkg")
        else:
            db = pgcluster.fresh_database(request.getfixturevalue("postgis_url"))
        answers[backend] = run_flow(db, inputs, out)
    return answers


def run_flow(db: str, inputs: Path, out: Path) -> dict:
    """Every step of a district's life on ``db``; what each step answered."""
    answers = {"db": db}
    answers["import"] = _import(db, inputs)
    answers["plans"] = _plan_and_edit(db)
    answers.update(_cases(db, inputs))
    gridmap("map", out / "map.html", "--db", db, "--offline")
    answers["map"] = (out / "map.html").stat().st_size
    gridmap("export", out / "grids.csv", "--db", db, "--layer", "grids")
    gridmap("ledger", out / "ledger.xlsx", "--db", db)
    answers["exports"] = {
        "grids": (out / "grids.csv").read_text(encoding="utf-8"),
        "ledger": pd.read_excel(out / "ledger.xlsx").to_dict("records"),
    }
    answers["api"] = _api(db)
    answers["frames"] = _frames(db)
    return answers


def _import(db: str, inputs: Path) -> dict:
    imported = gridmap(
        "import",
        inputs / "buildings.geojson",
        "--db",
        db,
        "--id-field",
        "building_id",
        "--households-field",
        "households",
        "--communities",
        inputs / "communities.geojson",
        "--communities-field",
        "community",
        "--roads",
        inputs / "roads.geojson",
        "--json",
    )
    gridmap("settings", "set", "division_code", "320581104", "--db", db)
    gridmap("workers", "import", inputs / "workers.csv", "--db", db)
    partitioned = json.loads(gridmap("partition", "--db", db, "--json"))
    return {"import": json.loads(imported), "partition": partitioned}


def _plan_and_edit(db: str) -> list[dict]:
    """A draft copy of the published plan, a move undone and redone, then published."""
    published = json.loads(gridmap("plan", "list", "--db", db, "--json"))[-1]["plan_id"]
    gridmap("plan", "copy", published, "--db", db)
    draft = json.loads(gridmap("plan", "list", "--db", db, "--json"))[-1]["plan_id"]
    building = open_store(db).read_table("assignments", where={"plan_id": draft})
    first = sorted(building["building_id"])[0]
    gridmap("plan", "move", first, "--to", "new", "--db", db)
    gridmap("plan", "undo", "--db", db)
    gridmap("plan", "redo", "--db", db)
    gridmap("plan", "publish", draft, "--db", db, "--override", "e2e: a one-building grid")
    plans = json.loads(gridmap("plan", "list", "--db", db, "--json"))
    return [{k: v for k, v in p.items() if not k.endswith("_at")} for p in plans]


def _cases(db: str, inputs: Path) -> dict:
    mapping = [f"--{k.removesuffix('_col').replace('_', '-')}-col" for k in DEMO_COLUMNS]
    options = [x for pair in zip(mapping, DEMO_COLUMNS.values(), strict=True) for x in pair]
    imported = json.loads(
        gridmap("incidents", "import", inputs / "incidents.csv", "--db", db, *options, "--json")
    )
    listed = json.loads(gridmap("incidents", "list", "--db", db, "--limit", "0"))
    first = sorted(case["incident_id"] for case in listed)[0]
    gridmap("incidents", "update", first, "--status", "registered", "--db", db, "--author", "e2e")
    stats = json.loads(gridmap("incidents", "stats", "--format", "json", db=db))
    by_community = json.loads(
        gridmap("incidents", "stats", "--db", db, "--by", "community", "--format", "json")
    )
    listed = _without_clock(json.loads(gridmap("incidents", "list", "--db", db, "--limit", "0")))
    sample = open_store(db).read_layer("buildings").to_crs(4326).geometry.representative_point()
    located = [gridmap("locate", p.x, p.y, "--db", db) for p in sample.iloc[::400]]
    return {
        "cases": imported,
        "listed": sorted(listed, key=lambda case: case["incident_id"]),
        "stats": stats,
        "by_community": by_community,
        "locate": located,
    }


def _api(db: str) -> dict:
    """OGC items, a locate and a case page through the FastAPI test client."""
    token = create_token(open_store(db), "e2e", "admin")
    with TestClient(create_app(Settings(db=db))) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        grids = client.get("/ogc/collections/grids/items", params={"limit": 2000})
        buildings = client.get("/ogc/collections/buildings/items", params={"limit": 50})
        point = grids.json()["features"][0]["properties"]
        lon, lat = _inside(grids.json()["features"][0])
        located = client.get("/locate", params={"lon": lon, "lat": lat})
        cases = client.get("/incidents", params={"limit": 20})
        health = client.get("/health")
    for answer in (grids, buildings, located, cases, health):
        assert answer.status_code == 200, answer.text
    return {
        "grids": _features(grids.json()),
        "buildings": _features(buildings.json()),
        "locate": (point["grid_code"], located.json()),
        "cases": {**cases.json(), "items": _without_clock(cases.json()["items"])},
        "buildings_count": health.json()["buildings"],
    }


#: times the steps stamp with the clock (when a case was imported, registered): not the data's
CLOCK = ("imported_at", "registered_at")


def _without_clock(cases: list[dict]) -> list[dict]:
    return [{k: v for k, v in case.items() if k not in CLOCK} for case in cases]


def _inside(feature: dict) -> tuple[float, float]:
    import shapely.geometry

    point = shapely.geometry.shape(feature["geometry"]).representative_point()
    return point.x, point.y


def _features(collection: dict) -> list[dict]:
    """Features without links (their URLs name the test client either way)."""
    return [{"id": f.get("id"), "properties": f["properties"]} for f in collection["features"]]


def _frames(db: str) -> dict[str, pd.DataFrame]:
    store = open_store(db)
    grids = store.read_layer("grids")
    return {
        "grids": pd.DataFrame(grids.drop(columns="geometry")).reset_index(drop=True),
        "grid_shapes": grids.geometry.normalize().to_wkt(rounding_precision=6).tolist(),
        "assignments": store.read_table("assignments")
        .sort_values(["plan_id", "building_id"])
        .reset_index(drop=True),
        "grid_codes": store.read_table("grid_codes")[["grid_code", "community", "members"]]
        .sort_values("grid_code")
        .reset_index(drop=True),
        "edits": store.read_table("edits")[["edit_id", "plan_id", "revision", "op", "args"]],
        "events": store.read_table("incident_events")[["incident_id", "from_status", "to_status"]],
        "workers": store.read_table("workers"),
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_district_flow_runs_on_each_backend(flows, backend):
    answers = flows[backend]
    assert answers["import"]["partition"]["grids"] > 100
    assert [p["status"] for p in answers["plans"]] == ["archived", "published"]
    assert answers["cases"]["added"] == 120
    assert any(case["status"] == "registered" for case in answers["listed"])
    assert answers["map"] > 10_000
    assert len(answers["api"]["grids"]) == len(answers["frames"]["grids"])
    grid_code, located = answers["api"]["locate"]
    assert located["grid_code"] == grid_code
    assert len(answers["frames"]["edits"]) == 3  # move, undo, redo


def test_both_backends_give_the_same_grids_codes_and_answers(flows):
    gpkg, pg = flows["geopackage"], flows["postgis"]
    steps = ("import", "plans", "cases", "listed", "stats", "by_community", "locate", "exports")
    for step in (*steps, "api"):
        assert gpkg[step] == pg[step], step
    for name, frame in gpkg["frames"].items():
        if isinstance(frame, pd.DataFrame):
            pd.testing.assert_frame_equal(frame, pg["frames"][name], obj=name)
        else:
            assert frame == pg["frames"][name], name


def test_gridmap_serve_takes_a_postgresql_url(flows):
    """``gridmap serve --db postgresql://...`` in a real process answers from the database."""
    import subprocess
    import sys
    import tempfile
    import time
    import urllib.request

    from api_support import ROOT, free_port

    db = flows["postgis"]["db"]
    token = create_token(open_store(db), "serve", "viewer")
    port = free_port()
    command = [sys.executable, "-m", "api", "serve", "--db", db, "--port", str(port)]
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/health", headers={"Authorization": f"Bearer {token}"}
    )
    with tempfile.TemporaryFile() as output:
        server = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    with urllib.request.urlopen(request, timeout=2) as answer:
                        health = json.loads(answer.read())
                    break
                except OSError:
                    output.seek(0)
                    assert server.poll() is None, output.read().decode()[-2000:]
                    assert time.monotonic() < deadline, "gridmap serve did not answer"
                    time.sleep(0.3)
        finally:
            server.terminate()
            server.wait(timeout=30)
    assert health["buildings"] == flows["geopackage"]["api"]["buildings_count"]
    assert health["project"] == db.rsplit("/", 1)[-1].split("?")[0]
    assert health["published_plan"] == 2
