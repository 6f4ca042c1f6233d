"""Handing data to QGIS and other offices: one GeoPackage collects the exported layers, and data
that came from OpenStreetMap carries its attribution into the package, the CSV and the map."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from typer.testing import CliRunner

from api.cli import app
from geo.storage.store import open_store
from geo.usecases.district import OSM_ATTRIBUTION

runner = CliRunner()


def gridmap(*args, lang: str = "zh"):
    return runner.invoke(app, [str(a) for a in args], env={"GRIDMAP_LANG": lang})


@pytest.fixture(scope="module")
def osm_project(tmp_path_factory, shared_data):
    """Kunming's footprints, exported from OpenStreetMap as GeoJSON (so credited), partitioned."""
    db = tmp_path_factory.mktemp("osm") / "project.gpkg"
    source = shared_data / "kunming_buildings.geojson"
    imported = gridmap("import", source, "--db", db, "--community-field", "community",
                       "--attribution", OSM_ATTRIBUTION)  # fmt: skip
    assert imported.exit_code == 0, imported.output
    assert gridmap("partition", "--db", db).exit_code == 0
    return db


def test_one_geopackage_collects_buildings_grids_and_communities(osm_project, tmp_path):
    package = tmp_path / "交付.gpkg"
    for layer in ("grids", "communities", "buildings"):
        result = gridmap("export", package, "--db", osm_project, "--layer", layer)
        assert result.exit_code == 0, result.output
        assert result.stdout == ""
    names = sorted(pyogrio.list_layers(package)[:, 0].tolist())
    assert names == ["buildings", "communities", "grids"]
    store = open_store(osm_project)
    assert len(gpd.read_file(package, layer="buildings")) == len(store.read_layer("buildings"))
    assert len(gpd.read_file(package, layer="grids")) == len(store.read_layer("grids"))
    again = gridmap("export", package, "--db", osm_project, "--layer", "grids")
    assert again.exit_code == 0  # the grids layer is replaced, the others kept
    assert sorted(pyogrio.list_layers(package)[:, 0].tolist()) == names
    assert len(gpd.read_file(package, layer="grids")) == len(store.read_layer("grids"))


def test_osm_attribution_travels_with_the_package_the_csv_and_the_map(osm_project, tmp_path):
    package = tmp_path / "out.gpkg"
    assert gridmap("export", package, "--db", osm_project, "--layer", "grids").exit_code == 0
    info = pyogrio.read_info(package, layer="grids")
    assert "OpenStreetMap" in info["dataset_metadata"]["attribution"]
    assert "OpenStreetMap" in info["layer_metadata"]["attribution"]
    assert gpd.read_file(package, layer="grids")["attribution"].str.contains("OpenStreetMap").all()
    table = tmp_path / "buildings.csv"
    assert gridmap("export", table, "--db", osm_project, "--no-geometry").exit_code == 0
    assert pd.read_csv(table)["attribution"].str.contains("OpenStreetMap").all()
    page = tmp_path / "map.html"
    assert gridmap("map", page, "--db", osm_project, "--basemap", "none").exit_code == 0
    assert "OpenStreetMap" in page.read_text(encoding="utf-8")


def test_a_file_that_is_not_a_geopackage_is_refused_and_left_as_it_was(osm_project, tmp_path):
    target = tmp_path / "notes.gpkg"
    target.write_bytes(b"not a geopackage, someone's notes")
    result = gridmap("export", target, "--db", osm_project, "--layer", "grids")
    assert result.exit_code == 2
    assert result.stderr.startswith("错误：无法向 notes.gpkg 添加图层：它不是 GeoPackage 文件")
    assert len(result.stderr.strip().splitlines()) == 1
    assert target.read_bytes() == b"not a geopackage, someone's notes"
    assert [p.name for p in tmp_path.iterdir()] == ["notes.gpkg"]  # no scratch folder left


def test_a_shapefile_export_reports_its_limits_in_one_line_each(osm_project, tmp_path):
    result = gridmap("export", tmp_path / "grids.shp", "--db", osm_project, "--layer", "grids",
                     lang="en")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "UserWarning" not in result.stderr
    assert "RuntimeWarning" not in result.stderr
    assert "Note: field names longer than 10 characters were shortened" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 2
