"""``gridmap copy``: a project moves from a GeoPackage into PostGIS and back without loss (issue
#18): every layer (fids, columns, types, geometries, CRS) and every table (plans, the edit history
with its undo patches, issued grid codes, workers, case events, settings, tokens, the audit log)
is equal after the round trip, and the copy in PostGIS answers as the file did."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
from typer.testing import CliRunner

from api.cli import app
from geo.storage.store import Store, open_store
from geo.usecases.transfer import project_tables

runner = CliRunner()


def gridmap(*args):
    return runner.invoke(app, [str(a) for a in args], env={"GRIDMAP_LANG": "en"})


def _timeless(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in frame.columns if c == "at" or c.endswith("_at")])


def assert_same_project(a: Store, b: Store, *, same_times: bool = True) -> None:
    """Every layer and table of ``a`` equal in ``b`` (with ``same_times=False``, but for when
    rows were written: two projects that make the same step a second apart)."""
    assert a.layers() == b.layers()
    for name in a.layers():
        left, right = a.read_layer(name), b.read_layer(name)
        assert left.crs.equals(right.crs), name
        assert a.layer_description(name) == b.layer_description(name), name
        assert (left.geometry.geom_equals_exact(right.geometry, 1e-9) | left.geometry.isna()).all()
        pd.testing.assert_frame_equal(
            pd.DataFrame(left.drop(columns="geometry")),
            pd.DataFrame(right.drop(columns="geometry")),
            check_dtype=True,
            obj=name,
        )
    assert [t.name for t in project_tables(a)] == [t.name for t in project_tables(b)]
    for table in project_tables(a):
        left, right = a.read_table(table), b.read_table(table)
        key = [c.name for c in table.primary_key.columns]
        left = left.sort_values(key).reset_index(drop=True)
        right = right.sort_values(key).reset_index(drop=True)
        if not same_times:
            left, right = _timeless(left), _timeless(right)
        pd.testing.assert_frame_equal(left, right, check_dtype=False, obj=table.name)


def test_a_project_goes_into_postgis_and_back_without_loss(staffed, postgis_url, tmp_path):
    import pgcluster

    source = open_store(staffed)
    plan = json.loads(gridmap("plan", "list", "--db", staffed, "--json").stdout)[-1]["plan_id"]
    assert gridmap("plan", "copy", plan, "--db", staffed).exit_code == 0
    building = source.read_layer("buildings", columns=["building_id"])["building_id"].iloc[0]
    moved = gridmap("plan", "move", building, "--to", "new", "--db", staffed)
    assert moved.exit_code == 0, moved.output
    assert gridmap("plan", "undo", "--db", staffed).exit_code == 0
    assert (
        gridmap("token", "create", "--role", "staff", "--name", "t", "--db", staffed).exit_code == 0
    )
    server = pgcluster.fresh_database(postgis_url)

    there = gridmap("copy", staffed, server, "--json")
    assert there.exit_code == 0, there.output
    copied = json.loads(there.stdout)
    assert copied["layers"]["buildings"] == source.count("buildings")
    assert copied["tables"]["edits"] == source.count("edits") == 2
    assert_same_project(source, open_store(server))

    back = tmp_path / "back.gpkg"
    home = gridmap("copy", server, back)
    assert home.exit_code == 0, home.output
    assert_same_project(source, open_store(back))
    # the copy numbers on: the next edit in PostGIS gets the id the file would have given
    assert gridmap("plan", "redo", "--db", server).exit_code == 0
    assert gridmap("plan", "redo", "--db", back).exit_code == 0
    assert_same_project(open_store(back), open_store(server), same_times=False)


def test_a_copy_never_merges_into_a_project(staffed, tmp_path):
    other = tmp_path / "other.gpkg"
    assert gridmap("copy", staffed, other).exit_code == 0
    again = gridmap("copy", staffed, other)
    assert again.exit_code == 4
    assert "already holds a project" in again.output
    assert gridmap("copy", staffed, staffed).exit_code == 4


def test_backup_of_a_postgis_project_is_a_geopackage(staffed, postgis_url, tmp_path):
    import pgcluster

    server = pgcluster.fresh_database(postgis_url)
    assert gridmap("copy", staffed, server).exit_code == 0
    saved = tmp_path / "saved.gpkg"
    done = gridmap("backup", saved, "--db", server)
    assert done.exit_code == 0, done.output
    assert not (tmp_path / "saved.gpkg-wal").exists()
    assert_same_project(open_store(server), open_store(saved))
    assert gpd.read_file(saved, layer="grids").shape[0] == open_store(staffed).count("grids")
