"""``gridmap import`` and ``gridmap partition`` on a Dask cluster (issue #19): one process's layers.

``--workers N`` (a local cluster) and ``--cluster tcp://host:8786`` run the communities' work of a
district (their cells where each is tessellated on its own, their outlines, their grids'
polygons) on Dask; the project file must come out exactly as one process makes it: every layer's
WKB and columns, the assignments and the issued codes. Real data: the Kunming compounds through
the command line, Suzhou's old town and a corner of the Bund cut by its roads through the use
cases on one shared two-process cluster. A bad address is one line and exit code 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from geo.province.cluster import client_mapper, connect
from geo.storage.store import Store, open_store
from geo.usecases.district import import_buildings
from geo.usecases.partition import partition_project

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
KUNMING = DATA / "kunming_buildings.geojson"
SUZHOU = DATA / "suzhou_gusu_buildings.geojson"
LAYERS = ("buildings", "communities", "cells", "grids", "plan_grids")
#: the bookkeeping that may differ between two runs: when rows were written
WHEN = ("issued_at", "created_at", "published_at", "at")

#: runs the CLI in a fresh interpreter, then says on stderr whether Dask was imported
RUN = """
import json, sys
from api.cli import app
sys.argv = ["gridmap", *json.loads(sys.argv[1])]
code = 0
try:
    app()
except SystemExit as done:
    code = done.code
print(json.dumps({"exit": code, "dask": "distributed" in sys.modules}), file=sys.stderr)
"""


def gridmap(*argv: object, **env: str) -> tuple[int, bool, str, str]:
    """Exit code, whether Dask was imported, stdout and stderr of one ``gridmap`` command."""
    done = subprocess.run(
        [sys.executable, "-c", RUN, json.dumps([str(arg) for arg in argv])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "GRIDMAP_LANG": "en", **env},
    )
    lines = done.stderr.strip().splitlines()
    report = json.loads(lines[-1])
    return report["exit"], report["dask"], done.stdout, "\n".join(lines[:-1])


def assert_same_project(found: Store, expected: Store) -> None:
    """Every layer's geometries (as WKB) and columns, row for row, and the grid tables."""
    for name in LAYERS:
        left, right = found.read_layer(name), expected.read_layer(name)
        assert len(left) == len(right) > 0, name
        wkb = shapely.to_wkb(left.geometry.values), shapely.to_wkb(right.geometry.values)
        assert (wkb[0] == wkb[1]).all(), f"{name}: geometries differ"
        pd.testing.assert_frame_equal(
            pd.DataFrame(left.drop(columns="geometry")),
            pd.DataFrame(right.drop(columns="geometry")),
            obj=name,
        )
    for table in ("assignments", "grid_codes"):
        left, right = (
            pd.read_sql_table(table, store.engine).drop(columns=list(WHEN), errors="ignore")
            for store in (found, expected)
        )
        assert len(left) > 0
        pd.testing.assert_frame_equal(left, right, obj=table)


@pytest.fixture(scope="module")
def kunming_one(tmp_path_factory) -> Path:
    """Kunming imported and partitioned by the command line in one process (no Dask)."""
    db = tmp_path_factory.mktemp("one") / "kunming.gpkg"
    code, dask, _, err = gridmap("import", KUNMING, "--community-field", "community", "--db", db)
    assert (code, dask) == (0, False), err
    code, dask, _, err = gridmap("partition", "--db", db)
    assert (code, dask) == (0, False), err
    return db


@pytest.fixture(scope="module")
def mapper():
    """A mapper on two local worker processes, shared by the use-case tests; it records the
    functions it ran."""
    with connect(workers=2) as client:
        on_cluster = client_mapper(client)
        ran: list[str] = []

        def recording(func, *iterables):
            ran.append(func.__qualname__)
            return on_cluster(func, *iterables)

        recording.batches = on_cluster.batches
        recording.ran = ran
        yield recording


def test_kunming_on_two_workers_is_byte_for_byte_the_one_process_project(kunming_one, tmp_path):
    db = tmp_path / "two.gpkg"
    args = ("--community-field", "community", "--db", db, "--workers", "2", "--json")
    code, dask, out, err = gridmap("import", KUNMING, *args)
    assert (code, dask) == (0, True), err
    assert json.loads(out)["communities"] == 16
    code, dask, out, err = gridmap("partition", "--db", db, "--workers", "2", "--json")
    assert (code, dask) == (0, True), err
    assert json.loads(out)["buildings"] == 140
    assert_same_project(open_store(db), open_store(kunming_one))


def test_suzhou_on_a_cluster_is_the_one_process_project(mapper, tmp_path):
    stores = {}
    for name, how in (("one", None), ("cluster", mapper)):
        stores[name] = open_store(tmp_path / f"{name}.gpkg", create=True)
        import_buildings(stores[name], SUZHOU, mapper=how)
        partition_project(stores[name], mapper=how)
    # the communities' outlines (238 clusters of buildings) and the grids' polygons ran there
    assert {"community_outlines", "_community_polygons"} <= set(mapper.ran)
    assert_same_project(stores["cluster"], stores["one"])
    assert len(stores["one"].read_layer("grids")) > 1500


def test_communities_cut_by_roads_are_tessellated_on_the_cluster_as_in_one_process(
    mapper, tmp_path
):
    corner = (121.4802, 31.2264, 121.4925, 31.2338)  # some 370 buildings of the Bund's south
    buildings = gpd.read_file(DATA / "shanghai_bund_buildings.geojson", bbox=corner)
    roads = gpd.read_file(DATA / "shanghai_bund_roads.geojson", bbox=corner)
    buildings.to_file(tmp_path / "buildings.gpkg")
    roads.to_file(tmp_path / "roads.gpkg")
    stores = {}
    for name, how in (("one", None), ("cluster", mapper)):
        stores[name] = open_store(tmp_path / f"{name}.gpkg", create=True)
        import_buildings(
            stores[name],
            tmp_path / "buildings.gpkg",
            roads_path=tmp_path / "roads.gpkg",
            mapper=how,
        )
        partition_project(stores[name], mapper=how)
    assert "_Tessellation.one" in mapper.ran  # each street block's cells made on a worker
    assert_same_project(stores["cluster"], stores["one"])


@pytest.mark.parametrize("address", ["scheduler-without-port", "tcp://127.0.0.1:1"])
def test_a_bad_cluster_address_is_one_line_and_exit_code_2(kunming_one, tmp_path, address):
    quick = {"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    db = tmp_path / "never.gpkg"
    code, _, out, err = gridmap("import", KUNMING, "--db", db, "--cluster", address, **quick)
    assert code == 2
    assert err.count("\n") == 0, err  # one line
    assert f"cannot reach the Dask scheduler at --cluster {address}" in err
    assert "Traceback" not in err
    assert out == ""
    assert not db.exists()
    code, _, _, err = gridmap("partition", "--db", kunming_one, "--cluster", address, **quick)
    assert code == 2
    assert err.count("\n") == 0, err
    assert "cannot reach the Dask scheduler" in err


def test_workers_and_cluster_together_are_refused(kunming_one):
    code, dask, _, err = gridmap(
        "partition", "--db", kunming_one, "--workers", "2", "--cluster", "tcp://127.0.0.1:1"
    )
    assert (code, dask) == (2, False)
    assert "not both" in err
