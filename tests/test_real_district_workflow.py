"""The README's workflow on real data nobody here drew: Shanghai's Bund with its roads.

Roads that cut blocks once left two blocks' cells sharing edges that differ by a vertex, and the
partition died in GEOS's coverage union (issue #14, item 2). These tests run the workflow end to
end and check that every community's cells are a valid coverage.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from hostile import write_buildings_pbf
from typer.testing import CliRunner

from api.cli import app
from geo.storage.store import open_store

runner = CliRunner()


def gridmap(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args], env={"GRIDMAP_LANG": "en"})


@pytest.fixture(scope="module")
def bund_db(tmp_path_factory, shared_data) -> Path:
    db = tmp_path_factory.mktemp("bund") / "bund.gpkg"
    result = gridmap(
        "import",
        shared_data / "shanghai_bund_buildings.geojson",
        "--roads",
        shared_data / "shanghai_bund_roads.geojson",
        "--db",
        db,
    )
    assert result.exit_code == 0, result.output
    return db


def test_every_block_of_the_bund_has_cells_forming_a_valid_coverage(bund_db):
    cells = open_store(bund_db).read_layer("cells")
    assert len(cells) == 1321
    assert shapely.coverage_is_valid(cells.geometry.values)
    for name, members in cells.groupby("community"):
        assert shapely.coverage_is_valid(members.geometry.values), name


@pytest.fixture(scope="module")
def bund_partitioned(bund_db) -> Path:
    result = gridmap("partition", "--db", bund_db)
    assert result.exit_code == 0, result.output
    return bund_db


def test_the_bund_partitions_publishes_and_exports_its_grids(bund_partitioned, tmp_path):
    bund_db = bund_partitioned
    out = tmp_path / "grids.geojson"
    result = gridmap("export", out, "--layer", "grids", "--db", bund_db)
    assert result.exit_code == 0, result.output
    grids = gpd.read_file(out)
    assert len(grids) > 300
    assert grids.geometry.is_valid.all()
    again = gridmap("partition", "--community", "街区153", "--db", bund_db)
    assert again.exit_code == 0, again.output


def test_the_bunds_street_addresses_are_kept_and_found(bund_partitioned):
    buildings = open_store(bund_partitioned).read_layer("buildings")
    assert "中山东一路20号" in set(buildings["address"])
    result = gridmap("locate", "--address", "中山东一路20号", "--db", bund_partitioned)
    assert result.exit_code == 0, result.output
    best = json.loads(result.stdout)[0]
    assert best["address"] == "中山东一路20号"
    assert best["building_id"] == "-2376366"
    assert best["grid_code"]


def test_osm_address_tags_survive_an_osm_pbf_import(tmp_path, shared_data):
    bund = gpd.read_file(shared_data / "shanghai_bund_buildings.geojson")
    named = bund[bund["addr_street"].notna() & bund["name"].notna()].head(6)
    path = tmp_path / "bund.osm.pbf"
    write_buildings_pbf(path, named)
    db = tmp_path / "p.gpkg"
    result = gridmap("import", path, "--db", db)
    assert result.exit_code == 0, result.output
    buildings = open_store(db).read_layer("buildings").set_index("name")
    for row in named.itertuples():
        number = row.addr_housenumber
        suffix = "号" if number[-1].isdigit() else ""
        assert buildings.loc[row.name, "address"] == f"{row.addr_street}{number}{suffix}"
