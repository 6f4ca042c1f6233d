"""A corpus of hostile inputs: real files from ``../shared/data`` and damaged variants of them.

Each test names an input a district office brings on day one and its documented outcome: imported
with the counts the summary shows, or refused in one line with the project file unchanged
(issue #14). Nothing here may end in a traceback or an internal error.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from hostile import osm_grid_as_buildings_pbf
from typer.testing import CliRunner

from api.cli import app
from geo.store import audit_log, open_store

runner = CliRunner()


def gridmap(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args], env={"GRIDMAP_LANG": "en"})


def summary_row(output: str, label: str) -> int:
    """The number in the import table's row ``label``."""
    line = next(line for line in output.splitlines() if line.startswith(f"│ {label} "))
    return int(line.split("│")[-2].strip().replace(",", ""))


def last_import_entry(db: Path) -> dict:
    rows = open_store(db).read_table(audit_log)
    return json.loads(rows[rows["action"] == "import"]["details"].iloc[-1])


def test_the_osm_test_grid_documents_46_invalid_cases_of_130(shared_data):
    cases = pd.read_csv(shared_data / "osm_testdata_grid_cases.csv")
    assert len(cases) == 130
    assert (cases["result"] == "invalid").sum() == 46


def test_a_clipped_osm_extract_with_two_point_rings_imports_the_rest(tmp_path, shared_data):
    source = tmp_path / "grid.osm.pbf"
    osm_grid_as_buildings_pbf(
        shared_data / "osm_testdata_grid.osm", source, clip_ways=(700800, 911800)
    )
    db = tmp_path / "p.gpkg"
    result = gridmap("import", source, "--db", db)
    assert result.exit_code == 0, result.output
    # GDAL builds 101 areas of the grid; the two clipped ways are rings of two points
    assert summary_row(result.output, "features read") == 101
    assert summary_row(result.output, "dropped: unreadable") == 2
    assert summary_row(result.output, "repaired") == 32
    assert summary_row(result.output, "buildings") == 99
    # way 911800 is the outer ring of relation 911900, which GDAL reads as the building
    assert "w700800" in result.output
    assert "r911900" in result.output
    entry = last_import_entry(db)
    assert set(entry["dropped_ids"]) == {"w700800", "r911900"}
    assert len(entry["repaired_ids"]) == 32
    buildings = open_store(db).read_layer("buildings")
    assert buildings.geometry.is_valid.all()
    assert buildings.geometry.geom_type.isin(["Polygon", "MultiPolygon"]).all()


def test_every_valid_area_case_of_the_osm_grid_becomes_a_building(tmp_path, shared_data):
    source = tmp_path / "grid.osm.pbf"
    osm_grid_as_buildings_pbf(shared_data / "osm_testdata_grid.osm", source)
    db = tmp_path / "p.gpkg"
    result = gridmap("import", source, "--db", db)
    assert result.exit_code == 0, result.output
    assert summary_row(result.output, "dropped: unreadable") == 0
    buildings = open_store(db).read_layer("buildings")
    imported = set(buildings["other_tags"].str.extract(r'"test:id"=>"(\d+)"')[0].astype(int))
    cases = pd.read_csv(shared_data / "osm_testdata_grid_cases.csv")
    valid_areas = cases[cases["category"].isin([7, 9]) & (cases["result"] == "valid")]
    assert set(valid_areas["test_id"]) <= imported
    cells = open_store(db).read_layer("cells")
    for name, members in cells.groupby("community"):
        assert shapely.coverage_is_valid(members.geometry.values), name


@pytest.fixture
def kunming_csv(tmp_path, kunming_path) -> Path:
    source = gpd.read_file(kunming_path)
    path = tmp_path / "kunming.csv"
    source.assign(WKT=source.geometry.to_wkt()).drop(columns="geometry").to_csv(path, index=False)
    return path


def test_a_csv_with_a_wkt_column_imports_with_its_crs_given(tmp_path, kunming_csv):
    db = tmp_path / "p.gpkg"
    result = gridmap(
        "import", kunming_csv, "--crs", "EPSG:4326", "--community-field", "community", "--db", db
    )
    assert result.exit_code == 0, result.output
    assert summary_row(result.output, "buildings") == 140
    assert open_store(db).read_layer("buildings")["community"].nunique() == 16


def test_a_gbk_csv_with_a_broken_wkt_row_imports_the_rest_and_counts_it(tmp_path, kunming_path):
    source = gpd.read_file(kunming_path)
    table = source.assign(geometry=source.geometry.to_wkt())
    table.loc[3, "geometry"] = "POLYGON ((121.0 25.0, 121.1"
    path = tmp_path / "gbk.csv"
    pd.DataFrame(table).to_csv(path, index=False, encoding="gbk")
    db = tmp_path / "p.gpkg"
    result = gridmap("import", path, "--crs", "EPSG:4326", "--db", db)
    assert result.exit_code == 0, result.output
    assert summary_row(result.output, "dropped: unreadable") == 1
    assert summary_row(result.output, "buildings") == 139


@pytest.mark.parametrize(
    ("make", "message"),
    [
        ("no crs", "carries no coordinate system; give it with --crs"),
        ("no wkt column", "needs a WKT column named wkt, geometry or geom"),
        ("not text", "not UTF-8 or GBK text"),
    ],
)
def test_a_csv_without_what_footprints_need_is_refused_in_one_line(
    tmp_path, kunming_csv, make, message
):
    path, args = kunming_csv, []
    if make == "no wkt column":
        path = tmp_path / "attributes.csv"
        pd.read_csv(kunming_csv).drop(columns="WKT").to_csv(path, index=False)
        args = ["--crs", "EPSG:4326"]
    elif make == "not text":
        path = tmp_path / "binary.csv"
        path.write_bytes(bytes(range(128, 256)) * 4)
        args = ["--crs", "EPSG:4326"]
    db = tmp_path / "p.gpkg"
    result = gridmap("import", path, *args, "--db", db)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert message in errors[0]
    assert not db.exists()
