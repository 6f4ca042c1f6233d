"""Mistakes real footprint files carry, made on Kunming's 140 real footprints, and what comes of
each: a stray vertex, a feature at infinity, degrees labelled metres, a site's red line, copies,
ArcGIS's default ids, unnamed or blank communities, code fields read as floats, a zipped folder,
an "OEM" code page and CAD heights. Each is either imported right, with a note naming what was
odd, or refused in one line that names the feature, leaving no project file.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from typer.testing import CliRunner

from api.cli import app
from geo.storage.store import open_store


def gridmap(*args: str | Path):
    return CliRunner().invoke(app, [str(a) for a in args], env={"GRIDMAP_LANG": "en"})


@pytest.fixture
def kunming(kunming_path) -> gpd.GeoDataFrame:
    return gpd.read_file(kunming_path)


def _features(kunming_path: Path) -> dict:
    return json.loads(Path(kunming_path).read_text(encoding="utf-8"))


def refused(result, words: str) -> str:
    """The one error line, checked to hold ``words``."""
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert result.exit_code != 0
    assert len(errors) == 1, result.output
    assert words in errors[0], errors[0]
    assert "Traceback" not in result.output
    return errors[0]


def one_line(output: str) -> str:
    return " ".join(output.split())


@pytest.mark.parametrize("where", ["one vertex", "the whole footprint"])
def test_a_footprint_at_zero_zero_is_refused_by_its_id(tmp_path, kunming_path, where):
    collection = _features(kunming_path)
    feature = collection["features"][7]
    ring = feature["geometry"]["coordinates"][0]
    if where == "one vertex":
        ring[2] = [0, 0]
    else:
        feature["geometry"]["coordinates"][0] = [[x - ring[0][0], y - ring[0][1]] for x, y in ring]
    path = tmp_path / "zero.geojson"
    path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
    db = tmp_path / "p.gpkg"
    line = refused(gridmap("import", path, "--db", db), "far wider than the others or far away")
    assert str(feature["properties"]["id"]) in line
    assert not db.exists()


def test_degrees_labelled_as_web_mercator_are_named_and_import_with_the_right_crs(
    tmp_path, kunming
):
    path = tmp_path / "b.shp"
    kunming.set_crs(3857, allow_override=True).to_file(path)
    db = tmp_path / "p.gpkg"
    refused(gridmap("import", path, "--db", db), "mm across in EPSG:3857")
    assert not db.exists()
    result = gridmap("import", path, "--db", db, "--crs", "EPSG:4326")
    assert result.exit_code == 0, result.output
    assert len(open_store(db).read_layer("buildings")) == 140


@pytest.mark.parametrize("value", ["Infinity", "NaN"])
def test_a_coordinate_that_is_no_number_drops_its_feature_and_names_it(
    tmp_path, kunming_path, value
):
    collection = _features(kunming_path)
    collection["features"][7]["geometry"]["coordinates"][0][2] = ["__X__", 25.07]
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps(collection).replace('"__X__"', value), encoding="utf-8")
    db = tmp_path / "p.gpkg"
    result = gridmap("import", path, "--db", db)
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.output
    assert str(collection["features"][7]["properties"]["id"]) in result.output
    assert len(open_store(db).read_layer("buildings")) == 139


def test_copies_and_a_red_line_round_the_estate_are_imported_with_a_note(tmp_path, kunming):
    copies = kunming.iloc[:10].assign(id=kunming["id"].iloc[:10] + 10**9)
    red_line = gpd.GeoDataFrame(
        {"id": [999], "community": ["金色年华"]},
        geometry=[shapely.box(*kunming.total_bounds).buffer(0.0005)],
        crs=4326,
    )
    path = tmp_path / "b.geojson"
    gpd.GeoDataFrame(pd.concat([kunming, copies, red_line]), crs=4326).to_file(path)
    db = tmp_path / "p.gpkg"
    result = gridmap("import", path, "--db", db, "--community-field", "community")
    assert result.exit_code == 0, result.output
    text = one_line(result.output)
    assert "10 footprints repeat an earlier one exactly" in text
    assert "1 footprints hold two or more others whole (999)" in text
    assert len(open_store(db).read_layer("buildings")) == 151


def test_arcgis_default_ids_number_the_buildings_instead(tmp_path, kunming):
    path = tmp_path / "b.shp"
    kunming.drop(columns="id").assign(Id=0).to_file(path)
    db = tmp_path / "p.gpkg"
    result = gridmap("import", path, "--db", db, "--community-field", "community")
    assert result.exit_code == 0, result.output
    assert "the ids in 'Id' repeat, so the buildings were numbered" in one_line(result.output)
    ids = open_store(db).read_layer("buildings")["building_id"]
    assert ids.is_unique
    assert ids.iloc[0] == "B000001"


def test_a_property_without_a_name_is_kept_under_a_name(tmp_path, kunming_path):
    collection = _features(kunming_path)
    for feature in collection["features"]:
        feature["properties"][""] = 1
    path = tmp_path / "b.geojson"
    path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
    db = tmp_path / "p.gpkg"
    result = gridmap("import", path, "--db", db, "--community-field", "community")
    assert result.exit_code == 0, result.output
    assert "field '' renamed 'field'" in result.output
    assert (open_store(db).read_layer("buildings")["field"] == 1).all()


def test_community_polygons_without_names_are_refused(tmp_path, kunming):
    outlines = kunming.to_crs(3857).dissolve("community").convex_hull.buffer(5).to_crs(4326)
    polygons = gpd.GeoDataFrame({"社区名称": outlines.index}, geometry=outlines.values, crs=4326)
    polygons.loc[polygons.index[:2], "社区名称"] = None
    polygons.loc[polygons.index[2], "社区名称"] = "  "
    polygons.to_file(tmp_path / "communities.geojson")
    kunming.drop(columns="community").to_file(tmp_path / "plain.geojson")
    db = tmp_path / "p.gpkg"
    result = gridmap(
        "import", tmp_path / "plain.geojson", "--db", db, "--communities",
        tmp_path / "communities.geojson",
    )  # fmt: skip
    refused(result, "3 community polygons have no name in '社区名称'")
    assert not db.exists()


def test_a_community_field_blank_everywhere_is_refused(tmp_path, kunming):
    path = tmp_path / "b.geojson"
    kunming.assign(community="").to_file(path)
    db = tmp_path / "p.gpkg"
    result = gridmap("import", path, "--db", db, "--community-field", "community")
    refused(result, "the community field 'community' is blank in every feature")


def test_community_codes_read_as_floats_keep_their_digits(tmp_path, kunming):
    codes = 320581104001 + pd.factorize(kunming["community"])[0]
    path = tmp_path / "b.shp"
    kunming.assign(SQDM=codes.astype(float)).to_file(path)
    db = tmp_path / "p.gpkg"
    result = gridmap("import", path, "--db", db, "--community-field", "SQDM")
    assert result.exit_code == 0, result.output
    stored = set(open_store(db).read_layer("buildings")["community"])
    assert stored == {str(c) for c in codes}


def test_a_field_named_community_is_used_when_every_building_fills_it(tmp_path, kunming_path):
    db = tmp_path / "p.gpkg"
    result = gridmap("import", kunming_path, "--db", db)
    assert result.exit_code == 0, result.output
    assert "communities taken from the file's field 'community'" in one_line(result.output)
    assert open_store(db).read_layer("buildings")["community"].nunique() == 16


def test_a_community_field_with_blanks_is_not_guessed_but_named(tmp_path, kunming):
    path = tmp_path / "b.geojson"
    kunming.assign(社区=kunming["community"].where(kunming.index % 10 != 0, "")).drop(
        columns="community"
    ).to_file(path)
    db = tmp_path / "p.gpkg"
    result = gridmap("import", path, "--db", db)
    assert result.exit_code == 0, result.output
    assert "give --community-field 社区 to use it" in one_line(result.output)
    assert "片区" in open_store(db).read_layer("buildings")["community"].iloc[0]


def test_a_zipped_folder_holding_a_gbk_shapefile_that_says_oem_imports_its_names(tmp_path, kunming):
    folder = tmp_path / "数据"
    folder.mkdir()
    kunming.to_file(folder / "楼栋.shp", encoding="GBK")
    (folder / "楼栋.cpg").write_text("OEM")  # what ArcGIS guides tell users to write
    path = tmp_path / "楼栋.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for part in folder.iterdir():
            archive.write(part, f"数据/{part.name}")
    db = tmp_path / "p.gpkg"
    result = gridmap("import", path, "--db", db, "--community-field", "community")
    assert result.exit_code == 0, result.output
    stored = open_store(db).read_layer("buildings")
    assert set(stored["community"]) == set(kunming["community"])
    assert "it was read as GB18030" in one_line(result.output)


def test_cad_heights_are_dropped_and_the_footprints_stored_flat(tmp_path, kunming):
    path = tmp_path / "b.shp"
    kunming.assign(geometry=shapely.force_3d(kunming.geometry.values, 12.5)).to_file(path)
    db = tmp_path / "p.gpkg"
    result = gridmap("import", path, "--db", db, "--community-field", "community")
    assert result.exit_code == 0, result.output
    assert not open_store(db).read_layer("buildings").geometry.has_z.any()


def test_community_names_keep_their_written_form_and_variants_join_them_with_a_note(
    tmp_path, kunming
):
    names = kunming["community"].where(kunming["community"] != "金色年华", "金色年华（一期）")
    first = names[names == "金色年华（一期）"].index[0]
    names[first] = "金色年华(一期)"  # one building typed with half-width brackets
    path = tmp_path / "b.geojson"
    kunming.assign(community=names).to_file(path)
    db = tmp_path / "p.gpkg"
    result = gridmap("import", path, "--db", db, "--community-field", "community")
    assert result.exit_code == 0, result.output
    stored = set(open_store(db).read_layer("buildings")["community"])
    assert "金色年华（一期）" in stored
    assert "金色年华(一期)" not in stored
    assert "differ only in how their characters are written" in one_line(result.output)


def test_households_in_full_width_digits_count_and_a_blank_is_unknown(tmp_path, kunming):
    households = ["１２", "", " 8 "] * (len(kunming) // 3) + ["3"] * (len(kunming) % 3)
    path = tmp_path / "b.geojson"
    kunming.assign(households=households).to_file(path)
    db = tmp_path / "p.gpkg"
    result = gridmap("import", path, "--db", db, "--community-field", "community",
                     "--households-field", "households")  # fmt: skip
    assert result.exit_code == 0, result.output
    stored = open_store(db).read_layer("buildings")["households"]
    assert stored.iloc[0] == 12
    assert pd.isna(stored.iloc[1])
    assert stored.iloc[2] == 8


def test_a_geopackage_of_other_data_is_not_taken_as_the_project(tmp_path, kunming, kunming_path):
    db = tmp_path / "mydata.gpkg"
    kunming.to_file(db, layer="楼栋")
    before = db.read_bytes()
    result = gridmap("import", kunming_path, "--db", db, "--community-field", "community")
    refused(result, "mydata.gpkg is a GeoPackage of other data (layers 楼栋)")
    assert db.read_bytes() == before


def test_a_qgis_geopackage_with_its_styles_table_needs_no_layer(tmp_path, kunming):
    import sqlite3

    path = tmp_path / "qgis.gpkg"
    kunming.to_file(path, layer="buildings")
    with sqlite3.connect(path) as conn:  # the table QGIS saves a layer's style in
        conn.execute("CREATE TABLE layer_styles (id INTEGER PRIMARY KEY, f_table_name TEXT)")
        conn.execute(
            "INSERT INTO gpkg_contents (table_name, data_type, identifier) "
            "VALUES ('layer_styles', 'attributes', 'layer_styles')"
        )
    db = tmp_path / "p.gpkg"
    result = gridmap("import", path, "--db", db, "--community-field", "community")
    assert result.exit_code == 0, result.output
    assert len(open_store(db).read_layer("buildings")) == 140


def test_a_geojson_s_own_integer_ids_are_the_building_ids(tmp_path, kunming_path):
    collection = _features(kunming_path)
    for feature in collection["features"]:
        feature["id"] = feature["properties"].pop("id")
    path = tmp_path / "b.geojson"
    path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
    db = tmp_path / "p.gpkg"
    result = gridmap("import", path, "--db", db, "--community-field", "community")
    assert result.exit_code == 0, result.output
    stored = open_store(db).read_layer("buildings")["building_id"]
    assert set(stored) == {str(f["id"]) for f in collection["features"]}


def test_a_layer_dissolved_by_community_is_imported_with_a_note(tmp_path, kunming):
    path = tmp_path / "b.shp"
    kunming.dissolve("community", as_index=False).to_file(path)
    db = tmp_path / "p.gpkg"
    result = gridmap("import", path, "--db", db, "--community-field", "community")
    assert result.exit_code == 0, result.output
    assert "footprints are made of parts more than 10 m apart" in one_line(result.output)


def test_a_shapefile_without_its_shx_is_refused_with_the_fix(tmp_path, kunming):
    path = tmp_path / "b.shp"
    kunming.to_file(path)
    path.with_suffix(".shx").unlink()
    result = gridmap("import", path, "--db", tmp_path / "p.gpkg")
    refused(result, "comes without b.shx")


def test_a_geojson_saved_as_utf16_is_refused_with_the_fix(tmp_path, kunming_path):
    path = tmp_path / "b.geojson"
    path.write_text(Path(kunming_path).read_text(encoding="utf-8"), encoding="utf-16")
    result = gridmap("import", path, "--db", tmp_path / "p.gpkg")
    refused(result, "is saved as UTF-16; save it as UTF-8")


def test_ids_too_long_for_a_number_are_refused_not_rounded(tmp_path, kunming):
    path = tmp_path / "b.shp"
    kunming.assign(code=(3205811040010010000 + kunming.index).astype("float64")).to_file(path)
    result = gridmap("import", path, "--db", tmp_path / "p.gpkg", "--id-field", "code")
    refused(result, "have more digits than a number read from this file keeps exactly")


def test_an_sqlite_file_that_is_no_geopackage_is_refused_untouched(tmp_path):
    import sqlite3

    db = tmp_path / "plain.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
    before = db.read_bytes()
    refused(gridmap("partition", "--db", db), "is an SQLite file but not a GeoPackage")
    assert db.read_bytes() == before
