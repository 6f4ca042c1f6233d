"""Province runs on Dask (issue #19): a cluster gives exactly what one process gives.

Four synthetic streets (about 7,900 buildings) go through the import and partition steps in this
process (the reference), on a local cluster of two worker processes, through a run interrupted
after two streets and resumed, and with a worker task that raises once. One street is also
checked against ``gridmap import`` + ``gridmap partition`` on a project of its own, so the
province path is the district's path, not a copy of it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cloudpickle
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo.errors import Conflict, InputError
from geo.province import pipeline, run, synthetic
from geo.province.cluster import connect
from geo.storage.store import open_store
from geo.usecases.district import import_buildings, set_setting
from geo.usecases.partition import partition_project

ROOT = Path(__file__).resolve().parents[1]
STREETS = 4

# the flaky task below is shipped to the workers by value: they cannot import this test module
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def province(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("province")
    synthetic.write_province(folder, streets=STREETS, seed=3)
    return folder


@pytest.fixture(scope="module")
def reference(province, tmp_path_factory) -> dict[str, pd.DataFrame]:
    """The streets run one after the other in this process."""
    store = open_store(tmp_path_factory.mktemp("one") / "one.gpkg", create=True)
    summary = run.import_province(store, province)
    assert len(summary.written) == STREETS
    return run.read_province(store)


@pytest.fixture(scope="module")
def client():
    with connect(workers=2) as dask_client:
        yield dask_client


def assert_same_province(found: dict, expected: dict) -> None:
    """Every layer equal, row for row, but the streets' timings."""
    assert set(found) == set(expected)
    for name, frame in expected.items():
        if name == run.STREETS:
            frame = frame[["street_code", "buildings", "grids", "geometry"]]
            found[name] = found[name][frame.columns]
        pd.testing.assert_frame_equal(found[name], frame, check_like=False)


def test_a_cluster_run_gives_exactly_the_one_process_run(province, reference, client, tmp_path):
    store = open_store(tmp_path / "cluster.gpkg", create=True)
    summary = run.import_province(store, province, client=client)
    assert sorted(summary.written) == sorted(reference[run.STREETS]["street_code"])
    assert summary.failed == {}
    assert 0 < summary.peak_mb < 2048
    found = run.read_province(store)
    assert_same_province(found, reference)
    grids = found["grids"]
    assert grids["grid_code"].is_unique
    assert (grids["grid_code"].str[:9] == grids["street_code"]).all()
    assert set(found["buildings"]["grid_code"]) == set(grids["grid_code"])


def test_each_worker_runs_gridmaps_own_steps_on_one_thread(client, monkeypatch):
    # a worker process of one thread whose cells stage spread over every core would make two
    # workers on two cores run four busy threads (and one worker already use both cores)
    from geo.threads import THREADS_VARIABLE, cores

    assert set(client.run(cores).values()) == {1}
    monkeypatch.setenv(THREADS_VARIABLE, "3")
    assert cores() == 3
    monkeypatch.setenv(THREADS_VARIABLE, "none")  # not a count: the cores the process may use
    assert cores() == len(os.sched_getaffinity(0))


def test_a_street_is_what_gridmap_import_and_partition_make(province, tmp_path):
    path = pipeline.street_files(province)[1]
    done = pipeline.process_street(path)
    store = open_store(tmp_path / "street.gpkg", create=True)
    source = pipeline.gdal_readable(path, tmp_path)
    roads = pipeline.gdal_readable(pipeline.roads_file(path), tmp_path)
    import_buildings(store, source, options=pipeline.StreetOptions().read, roads_path=roads)
    set_setting(store, "division_code", path.stem)
    outcome = partition_project(store)
    grids = store.read_layer("grids").sort_values("grid_code").reset_index(drop=True)
    mine = done.grids.sort_values("grid_code").reset_index(drop=True)
    assert outcome.grids["grid_code"].str.startswith(path.stem).all()
    pd.testing.assert_frame_equal(
        plain(mine.drop(columns="geometry")), plain(grids[mine.columns.drop("geometry")])
    )
    assert same_coordinates(mine.geometry, grids.geometry)
    assert same_coordinates(done.cells.geometry, store.read_layer("cells").geometry)


def same_coordinates(left: gpd.GeoSeries, right: gpd.GeoSeries) -> bool:
    """The same vertices, shape by shape (the store keeps a one-part polygon as MultiPolygon)."""
    counts = shapely.get_num_coordinates(left.values), shapely.get_num_coordinates(right.values)
    return np.array_equal(*counts) and np.array_equal(
        shapely.get_coordinates(left.values), shapely.get_coordinates(right.values)
    )


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Values only: the store reads a missing worker back as None, the frame holds NaN."""
    values = pd.DataFrame(frame).astype(object)
    return values.where(values.notna(), None)


class Interrupted(Exception):
    """The client stopping after some streets (as a kill would, between transactions)."""


def test_an_interrupted_run_resumes_without_redoing_or_duplicating(
    province, reference, client, tmp_path
):
    store = open_store(tmp_path / "resumed.gpkg", create=True)

    def stop_after_two(stage: str, done: int, total: int) -> None:
        if done == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        run.import_province(store, province, client=client, progress=stop_after_two)
    first = set(run.read_province(store)[run.STREETS]["street_code"])
    assert len(first) == 2
    with pytest.raises(Exception, match="--resume"):
        run.import_province(store, province, client=client)
    summary = run.import_province(store, province, client=client, resume=True)
    assert summary.skipped == 2
    assert first.isdisjoint(summary.written)
    assert len(summary.written) == STREETS - 2
    assert_same_province(run.read_province(store), reference)
    again = run.import_province(store, province, client=client, resume=True)
    assert (again.skipped, again.written) == (STREETS, [])


def fails_once(path: Path, options: pipeline.StreetOptions, *, marks: Path):
    """The street task, raising the first time it meets each street (a mark file remembers)."""
    mark = marks / Path(path).stem
    if not mark.exists():
        mark.write_text(str(os.getpid()))
        raise RuntimeError(f"worker lost street {Path(path).stem}")
    return pipeline.process_street(path, options)


def test_a_worker_that_raises_once_is_retried(province, reference, client, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()

    def task(path, options):
        return fails_once(path, options, marks=marks)

    store = open_store(tmp_path / "retried.gpkg", create=True)
    summary = run.import_province(store, province, client=client, task=task)
    assert summary.failed == {}
    assert len(list(marks.iterdir())) == STREETS  # every street failed once, then went through
    assert_same_province(run.read_province(store), reference)


def dies_once(path: Path, options: pipeline.StreetOptions, *, marks: Path, victim: str):
    """The street task; the worker process running ``victim`` first dies outright."""
    mark = marks / victim
    if Path(path).stem == victim and not mark.exists():
        mark.write_text(str(os.getpid()))
        os._exit(1)  # no exception, no goodbye: the nanny sees its worker gone
    return pipeline.process_street(path, options)


def test_a_dead_workers_street_is_run_again_elsewhere(province, reference, client, tmp_path):
    victim = pipeline.street_files(province)[0].stem

    def task(path, options):
        return dies_once(path, options, marks=tmp_path, victim=victim)

    store = open_store(tmp_path / "survived.gpkg", create=True)
    summary = run.import_province(store, province, client=client, task=task)
    assert summary.failed == {}
    assert (tmp_path / victim).exists()
    assert_same_province(run.read_province(store), reference)


def test_the_command_line_runs_a_province_with_progress(province, reference, tmp_path):
    db = tmp_path / "cli.gpkg"
    command = [sys.executable, "-m", "api", "province", "import", str(province)]
    done = subprocess.run(
        [*command, "--db", str(db), "--workers", "2", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "GRIDMAP_LANG": "en", "GRIDMAP_PROGRESS": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert "streets" in done.stderr
    assert f"{STREETS}/{STREETS}" in done.stderr
    facts = json.loads(done.stdout)
    assert facts["written"] == STREETS
    assert facts["buildings"] == len(reference["buildings"])
    found = run.read_province(open_store(db))
    assert_same_province(found, reference)
    assert isinstance(found["grids"], gpd.GeoDataFrame)


def test_a_cluster_run_lands_in_postgis_as_in_a_geopackage(
    province, reference, client, postgis_url
):
    import pgcluster

    store = open_store(pgcluster.fresh_database(postgis_url))
    summary = run.import_province(store, province, client=client)
    assert len(summary.written) == STREETS
    found = run.read_province(store)
    for name, frame in reference.items():
        columns = [
            c
            for c in frame.columns
            if c not in ("seconds", "cpu_seconds", "peak_mb", "finished_at")
        ]
        pd.testing.assert_frame_equal(
            plain(found[name][columns].drop(columns="geometry")),
            plain(frame[columns].drop(columns="geometry")),
        )
        assert same_coordinates(found[name].geometry, frame.geometry)


def test_with_divisions_the_workers_write_each_street_as_its_own_project(
    province, reference, client, postgis_url
):
    import pgcluster

    from geo.province import streets
    from geo.storage.postgis import registered_divisions

    url = pgcluster.fresh_database(postgis_url)
    summary = streets.import_streets(url, province, client=client)
    assert len(summary.written) == STREETS
    assert summary.buildings == len(reference["buildings"])
    codes = sorted(path.stem for path in pipeline.street_files(province))
    assert registered_divisions(url)["code"].tolist() == codes
    for code in codes:  # each street: what the one-process province run made of it
        store = open_store(url, division=code)
        assert store.get_setting("division_code") == code
        grids = store.read_layer("grids").sort_values("grid_code").reset_index(drop=True)
        mine = reference["grids"].query("street_code == @code").reset_index(drop=True)
        columns = ["grid_code", "community", "n_buildings", "households", "status"]
        pd.testing.assert_frame_equal(plain(grids[columns]), plain(mine[columns]))
        assert same_coordinates(grids.geometry, mine.geometry)
        assert store.count("plans", {"status": "published"}) == 1
    # a second run is refused; --resume finds every street done and writes nothing again
    with pytest.raises(Conflict, match="--resume"):
        streets.import_streets(url, province, client=client)
    again = streets.import_streets(url, province, client=client, resume=True)
    assert (again.skipped, again.written) == (STREETS, [])
    assert open_store(url, division=codes[0]).count("plans") == 1


def test_a_street_left_half_done_is_imported_again_over_itself(province, postgis_url, tmp_path):
    import pgcluster

    from geo.province import streets

    url = pgcluster.fresh_database(postgis_url)
    path = pipeline.street_files(province)[0]
    half = open_store(url, division=path.stem, create=True)  # imported, never partitioned
    import_buildings(
        half,
        pipeline.gdal_readable(path, tmp_path),
        options=pipeline.StreetOptions().read,
    )
    done = streets.street_into_database(path, pipeline.StreetOptions(), url=url)
    assert not done.skipped
    store = open_store(url, division=path.stem)
    assert store.count("buildings") == done.buildings
    assert store.count("plans", {"status": "published"}) == 1
    assert streets.street_into_database(path, pipeline.StreetOptions(), url=url).skipped


@pytest.fixture(scope="module")
def one_file(province, tmp_path_factory) -> tuple[Path, Path]:
    """The province as a single GeoPackage of buildings (a ``street_code`` field) and one
    FlatGeobuf of roads: the GDAL source a province office would hand over."""
    folder = tmp_path_factory.mktemp("onefile")
    paths = pipeline.street_files(province)
    buildings = pd.concat([gpd.read_parquet(path) for path in paths], ignore_index=True)
    roads = pd.concat(
        [gpd.read_parquet(pipeline.roads_file(path)) for path in paths], ignore_index=True
    )
    buildings.to_file(folder / "province.gpkg", driver="GPKG")
    roads.to_file(folder / "roads.fgb", driver="FlatGeobuf")
    return folder / "province.gpkg", folder / "roads.fgb"


def test_one_gdal_file_is_read_street_by_street_by_the_workers(
    province, one_file, client, tmp_path
):
    source, roads = one_file
    found = pipeline.street_files(source, roads=roads)
    assert [street.stem for street in found] == [p.stem for p in pipeline.street_files(province)]
    assert len(found) == STREETS
    chosen = found[:2]  # two streets keep the test short; the reading is the same for all
    here = open_store(tmp_path / "here.gpkg", create=True)
    there = open_store(tmp_path / "there.gpkg", create=True)
    run.import_province(here, chosen)
    summary = run.import_province(there, chosen, client=client)
    assert len(summary.written) == 2
    assert_same_province(run.read_province(there), run.read_province(here))
    buildings = run.read_province(here)["buildings"]
    assert set(buildings["street_code"]) == {street.stem for street in chosen}
    assert len(buildings) == len(
        gpd.read_file(source, where=f"street_code IN ('{chosen[0].stem}', '{chosen[1].stem}')")
    )


def test_a_file_without_the_street_field_or_with_bad_codes_gets_one_line(one_file, tmp_path):
    source, _ = one_file
    with pytest.raises(InputError, match="no field 'street'"):
        pipeline.street_files(source, street_field="street")
    with pytest.raises(InputError, match="not a field name"):
        pipeline.street_files(source, street_field='x" OR 1=1 --')
    frame = gpd.read_file(source, max_features=3)
    frame["street_code"] = ["320505100", "DROP TABLE", "320505100"]
    hostile = tmp_path / "hostile.gpkg"
    frame.to_file(hostile, driver="GPKG")
    with pytest.raises(InputError, match="must be 9 digits"):
        pipeline.street_files(hostile)


def test_divisions_need_a_postgis_database(province, tmp_path):
    from api_support import cli_in_english

    done = cli_in_english(
        "province", "import", province, "--db", tmp_path / "p.gpkg", "--divisions", "--workers", 1
    )
    assert done.exit_code == 2
    assert "--divisions needs a PostGIS --db" in done.output
    assert not (tmp_path / "p.gpkg").exists()
