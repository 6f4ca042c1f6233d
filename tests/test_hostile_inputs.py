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
from geo.storage.store import audit_log, open_store

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
        ("no crs", "carries no coordinate system; they look like longitude/latitude: give --crs"),
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


# -- damaged variants of Kunming's real footprints ------------------------------------------------


@pytest.fixture
def kunming(kunming_path) -> gpd.GeoDataFrame:
    """Kunming's 140 real footprints in their 16 compounds (WGS84)."""
    return gpd.read_file(kunming_path)


def import_frame(tmp_path: Path, frame: gpd.GeoDataFrame, *args: str | Path):
    """Write ``frame`` as GeoJSON and import it into a new project; the result and the file."""
    source = tmp_path / "source.geojson"
    frame.to_file(source)
    db = tmp_path / "p.gpkg"
    return gridmap("import", source, "--db", db, *args), db


def assert_cells_are_coverages(db: Path, n_buildings: int) -> None:
    cells = open_store(db).read_layer("cells")
    assert len(cells) == n_buildings
    assert not cells.geometry.is_empty.any()
    for name, members in cells.groupby("community"):
        assert shapely.coverage_is_valid(members.geometry.values), name


def bowtie_at(polygon: shapely.Geometry) -> shapely.Polygon:
    x, y = polygon.centroid.coords[0]
    d = 0.00005
    return shapely.Polygon([(x - d, y - d), (x + d, y + d), (x + d, y - d), (x - d, y + d)])


def test_bowtie_footprints_are_repaired_and_counted(tmp_path, kunming):
    kunming.loc[:3, "geometry"] = [bowtie_at(g) for g in kunming.geometry[:4]]
    result, db = import_frame(tmp_path, kunming, "--community-field", "community")
    assert result.exit_code == 0, result.output
    assert summary_row(result.output, "repaired") == 4
    assert summary_row(result.output, "buildings") == 140
    assert_cells_are_coverages(db, 140)


def test_unclosed_and_two_point_rings_in_geojson_are_closed_or_dropped(tmp_path, kunming_path):
    collection = json.loads(kunming_path.read_text(encoding="utf-8"))
    rings = [f["geometry"]["coordinates"][0] for f in collection["features"][:2]]
    collection["features"][0]["geometry"]["coordinates"][0] = rings[0][:-1]  # not closed
    collection["features"][1]["geometry"]["coordinates"][0] = rings[1][:2]  # two points
    source = tmp_path / "rings.geojson"
    source.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
    db = tmp_path / "p.gpkg"
    result = gridmap("import", source, "--db", db, "--community-field", "community")
    assert result.exit_code == 0, result.output
    # GDAL closes both rings; the two-point one is a line then, with nothing polygonal to keep
    assert summary_row(result.output, "dropped: not polygons") == 1
    assert summary_row(result.output, "buildings") == 139
    dropped = str(collection["features"][1]["properties"]["id"])
    assert last_import_entry(db)["dropped_ids"] == [dropped]
    assert_cells_are_coverages(db, 139)


def test_duplicate_and_overlapping_footprints_each_get_a_cell(tmp_path, kunming):
    copies = kunming.iloc[:3].assign(id=lambda f: f["id"].astype(str) + "-copy")
    shifted = kunming.iloc[3:6].assign(id=lambda f: f["id"].astype(str) + "-shifted")
    shifted["geometry"] = shifted.geometry.translate(0.00002, 0.00001)
    frame = pd.concat([kunming.astype({"id": str}), copies, shifted], ignore_index=True)
    result, db = import_frame(
        tmp_path, gpd.GeoDataFrame(frame, crs=4326), "--community-field", "community"
    )
    assert result.exit_code == 0, result.output
    assert summary_row(result.output, "buildings") == 146
    assert_cells_are_coverages(db, 146)


def test_buildings_straddling_two_communities_go_to_the_larger_overlap(tmp_path, kunming):
    minx, miny, maxx, maxy = kunming.total_bounds
    straddler = kunming.geometry.iloc[0]
    middle = straddler.centroid.x  # the boundary runs through building 0
    halves = gpd.GeoDataFrame(
        {"name": ["西区", "东区"]},
        geometry=[
            shapely.box(minx - 0.01, miny - 0.01, middle, maxy + 0.01),
            shapely.box(middle, miny - 0.01, maxx + 0.01, maxy + 0.01),
        ],
        crs=4326,
    )
    halves.to_file(tmp_path / "halves.geojson")
    result, db = import_frame(
        tmp_path,
        kunming,
        "--communities",
        tmp_path / "halves.geojson",
        "--communities-field",
        "name",
    )
    assert result.exit_code == 0, result.output
    buildings = open_store(db).read_layer("buildings")
    assert set(buildings["community"]) == {"西区", "东区"}
    assert_cells_are_coverages(db, 140)


def test_roads_running_through_buildings_still_give_valid_cells(tmp_path, kunming):
    centres = kunming.geometry.centroid
    minx, miny, maxx, maxy = kunming.total_bounds
    roads = gpd.GeoDataFrame(
        {"kind": ["major_road", "major_road"]},
        geometry=[
            shapely.LineString([(minx, centres.iloc[0].y), (maxx, centres.iloc[0].y)]),
            shapely.LineString([(centres.iloc[5].x, miny), (centres.iloc[5].x, maxy)]),
        ],
        crs=4326,
    )
    roads.to_file(tmp_path / "roads.geojson")
    result, db = import_frame(
        tmp_path, kunming, "--community-field", "community", "--roads", tmp_path / "roads.geojson"
    )
    assert result.exit_code == 0, result.output
    assert_cells_are_coverages(db, 140)
    assert gridmap("partition", "--db", db).exit_code == 0


def test_a_community_of_one_building_gets_one_flagged_grid(tmp_path, kunming):
    kunming.loc[0, "community"] = "独栋"
    result, db = import_frame(tmp_path, kunming, "--community-field", "community")
    assert result.exit_code == 0, result.output
    partition = gridmap("partition", "--db", db)
    assert partition.exit_code == 0, partition.output
    grids = open_store(db).read_layer("grids")
    alone = grids[grids["community"] == "独栋"]
    assert alone["n_buildings"].tolist() == [1]
    assert (alone["status"] != "ok").all()


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gbk"])
def test_geojson_saved_with_a_bom_or_as_gbk_keeps_its_chinese_names(
    tmp_path, kunming_path, encoding
):
    text = kunming_path.read_text(encoding="utf-8")
    source = tmp_path / "saved.geojson"
    source.write_bytes(text.encode(encoding))
    db = tmp_path / "p.gpkg"
    result = gridmap("import", source, "--db", db, "--community-field", "community")
    assert result.exit_code == 0, result.output
    communities = set(open_store(db).read_layer("buildings")["community"])
    assert communities == set(gpd.read_file(kunming_path)["community"])


def test_a_table_without_geometry_is_refused_in_one_line(tmp_path, kunming):
    source = tmp_path / "table.gpkg"
    pd.DataFrame(kunming.drop(columns="geometry")).to_csv(tmp_path / "t.csv", index=False)
    import pyogrio

    pyogrio.write_dataframe(pd.DataFrame(kunming.drop(columns="geometry")), source)
    db = tmp_path / "p.gpkg"
    result = gridmap("import", source, "--db", db)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1
    assert "holds no geometry" in errors[0]
    assert not db.exists()


def test_cells_whose_shared_edge_differs_by_a_vertex_are_rebuilt_into_a_coverage():
    import numpy as np

    from geo.grids import boundaries

    # the left cell's right edge has a vertex at (10, 5) that the right cell's left edge lacks
    left = shapely.Polygon([(0, 0), (10, 0), (10, 5), (10, 10), (0, 10)])
    right = shapely.Polygon([(10, 0), (20, 0), (20, 10), (10, 10)])
    cells = np.array([left, right], dtype=object)
    assert not shapely.coverage_is_valid(cells)
    grids = boundaries.grid_polygons(gpd.GeoSeries(cells), pd.Series(["g", "g"]))
    assert grids.geometry.iloc[0].area == pytest.approx(200)  # partition never fails on it
    points = shapely.points([(5, 5), (15, 5)])
    fixed, rebuilt = boundaries.valid_coverage(cells, points, np.array(["a", "a"], dtype=object))
    assert rebuilt == ["a"]
    assert shapely.coverage_is_valid(fixed)
    assert shapely.within(points, fixed).all()
