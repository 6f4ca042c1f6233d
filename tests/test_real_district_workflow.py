"""The README's workflow on real data nobody here drew: Shanghai's Bund with its roads.

Roads that cut blocks once left two blocks' cells sharing edges that differ by a vertex, and the
partition died in GEOS's coverage union (issue #14, item 2). These tests run the workflow end to
end and check that every community's cells are a valid coverage.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from typer.testing import CliRunner

from api.cli import app
from geo.store import open_store

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


def test_the_bund_partitions_publishes_and_exports_its_grids(bund_db, tmp_path):
    result = gridmap("partition", "--db", bund_db)
    assert result.exit_code == 0, result.output
    out = tmp_path / "grids.geojson"
    result = gridmap("export", out, "--layer", "grids", "--db", bund_db)
    assert result.exit_code == 0, result.output
    grids = gpd.read_file(out)
    assert len(grids) > 300
    assert grids.geometry.is_valid.all()
    again = gridmap("partition", "--community", "街区153", "--db", bund_db)
    assert again.exit_code == 0, again.output
