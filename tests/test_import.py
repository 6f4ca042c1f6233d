"""``gridmap import`` / ``gridmap export`` end to end on the real files, every format, every refusal."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import geopandas as gpd
import osmium
import pyogrio
import pytest
import shapely
from typer.testing import CliRunner

from api.cli import app
from geo.storage.store import open_store

runner = CliRunner()


def gridmap(*args: str | Path, lang: str = "en"):
    return runner.invoke(app, [str(a) for a in args], env={"GRIDMAP_LANG": lang})


def content_digest(db: Path) -> str:
    """A digest of what the project file holds (layers and tables), independent of WAL pages."""
    store = open_store(db)
    digest = hashlib.sha256()
    with store.engine.connect() as conn:
        names = [
            r[0]
            for r in conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"
            )
        ]
        for name in names:
            for row in conn.exec_driver_sql(f'SELECT * FROM "{name}" ORDER BY 1'):
                digest.update(repr(tuple(row)).encode())
    store.engine.dispose()
    return digest.hexdigest()


@pytest.fixture
def kunming_db(tmp_path, kunming_path) -> Path:
    db = tmp_path / "kunming.gpkg"
    result = gridmap("import", kunming_path, "--db", db, "--community-field", "community")
    assert result.exit_code == 0, result.output
    return db


def test_suzhou_imports_8242_buildings_with_a_summary(tmp_path, suzhou_path):
    db = tmp_path / "suzhou.gpkg"
    result = gridmap("import", suzhou_path, "--db", db, lang="zh")
    assert result.exit_code == 0, result.output
    assert "8,242" in result.output
    assert "导入完成" in result.output
    assert "clusters" in result.output  # the fallback used for communities is said
    store = open_store(db)
    buildings = store.read_layer("buildings")
    assert len(buildings) == 8242
    assert buildings.crs.to_epsg() == 4549  # CGCS2000 3-degree GK, CM 120E
    assert buildings["building_id"].is_unique
    assert store.get_setting("source_crs") == "EPSG:4326"
    cells = store.read_layer("cells")
    assert len(cells) == 8242
    # QGIS and GDAL see the layers
    layers = dict(pyogrio.list_layers(db))
    assert {"buildings", "communities", "cells"} <= set(layers)


def test_kunming_keeps_its_compounds_as_communities(kunming_db):
    store = open_store(kunming_db)
    communities = store.read_layer("communities")
    assert len(communities) == 16
    assert sorted(communities["n_buildings"].tolist(), reverse=True) == [
        27,
        23,
        22,
        13,
        12,
        6,
        6,
        5,
        4,
        4,
        4,
        4,
        3,
        3,
        2,
        2,
    ]
    assert communities["number"].tolist() == list(range(1, 17))


def test_shanghai_with_roads_gets_street_blocks(tmp_path, shared_data):
    db = tmp_path / "bund.gpkg"
    result = gridmap(
        "import",
        shared_data / "shanghai_bund_buildings.geojson",
        "--db",
        db,
        "--roads",
        shared_data / "shanghai_bund_roads.geojson",
    )
    assert result.exit_code == 0, result.output
    assert "street blocks" in result.output
    buildings = open_store(db).read_layer("buildings")
    assert buildings["community"].str.startswith("街区").all()
    assert buildings["community"].nunique() > 20
    assert buildings["address"].notna().sum() == 0 or "address" in buildings


def _shapefile_without_codepage(source: gpd.GeoDataFrame, folder: Path, encoding: str) -> Path:
    """``source`` as a Shapefile whose text is in ``encoding`` and that does not say so: no
    .cpg, and a .dbf language byte of 0 (as many Chinese offices' Shapefiles come)."""
    folder.mkdir()
    path = folder / "b.shp"
    source.to_file(path, encoding=encoding)
    path.with_suffix(".cpg").unlink()
    with path.with_suffix(".dbf").open("r+b") as dbf:
        dbf.seek(29)
        dbf.write(b"\x00")
    return path


@pytest.mark.parametrize("fmt", ["geojson", "shapefile in GBK without .cpg"])
def test_communities_file_assigns_by_largest_overlap(tmp_path, kunming_path, fmt):
    footprints = gpd.read_file(kunming_path)
    outlines = footprints.to_crs(3857).dissolve("community").convex_hull.buffer(5).to_crs(4326)
    polygons = gpd.GeoDataFrame({"社区名称": outlines.index}, geometry=outlines.values, crs=4326)
    if fmt == "geojson":
        polygons_path = tmp_path / "communities.geojson"
        polygons.to_file(polygons_path)
    else:
        polygons_path = _shapefile_without_codepage(polygons, tmp_path / "shp", "GBK")
    no_community = tmp_path / "plain.geojson"
    footprints.drop(columns="community").to_file(no_community)
    db = tmp_path / "p.gpkg"
    result = gridmap("import", no_community, "--db", db, "--communities", polygons_path)
    assert result.exit_code == 0, result.output
    stored = open_store(db).read_layer("buildings").set_index("building_id")
    expected = footprints.assign(building_id=footprints["id"].astype(str)).set_index("building_id")
    agreement = (stored["community"] == expected.loc[stored.index, "community"]).mean()
    assert agreement > 0.97  # hulls of neighbouring compounds overlap a little


@pytest.mark.parametrize("fmt", ["shp", "zip", "gpkg", "fgb"])
def test_every_supported_format_imports(tmp_path, kunming_path, fmt):
    source = gpd.read_file(kunming_path)
    if fmt == "shp":
        path = tmp_path / "b.shp"
        source.to_file(path)
    elif fmt == "zip":
        folder = tmp_path / "shp"
        folder.mkdir()
        source.to_file(folder / "b.shp")
        path = tmp_path / "b.zip"
        with zipfile.ZipFile(path, "w") as archive:
            for part in folder.iterdir():
                archive.write(part, part.name)
    elif fmt == "gpkg":
        path = tmp_path / "b.gpkg"
        source.to_file(path, layer="buildings")
        source.iloc[:3].to_file(path, layer="other")
    else:
        path = tmp_path / "b.fgb"
        source.to_file(path)
    extra = ["--layer", "buildings"] if fmt == "gpkg" else []
    db = tmp_path / "p.gpkg"
    result = gridmap("import", path, "--db", db, "--community-field", "community", *extra)
    assert result.exit_code == 0, result.output
    assert len(open_store(db).read_layer("buildings")) == 140


@pytest.mark.parametrize(("encoding", "zipped"), [("GBK", False), ("GBK", True), ("UTF-8", False)])
def test_a_shapefile_that_does_not_say_its_encoding_keeps_its_chinese_names(
    tmp_path, kunming_path, encoding, zipped
):
    source = gpd.read_file(kunming_path)
    path = _shapefile_without_codepage(source, tmp_path / "shp", encoding)
    garbled = pyogrio.read_dataframe(path, read_geometry=False)["community"]
    assert not garbled.isin(source["community"]).any()  # what GDAL alone makes of the file
    if zipped:
        archive_path = tmp_path / "b.zip"
        with zipfile.ZipFile(archive_path, "w") as archive:
            for part in path.parent.iterdir():
                archive.write(part, part.name)
        path = archive_path
    db = tmp_path / "p.gpkg"
    result = gridmap("import", path, "--db", db, "--community-field", "community")
    assert result.exit_code == 0, result.output
    stored = open_store(db).read_layer("buildings")
    assert sorted(stored["community"].unique()) == sorted(source["community"].unique())
    read_as = "UTF-8" if encoding == "UTF-8" else "GB18030"
    assert (
        f"does not say how its text is encoded (its .cpg file is missing or names another encoding); it was read as {read_as}"
        in (" ".join(result.output.split()))
    )


def test_a_shapefile_that_says_its_encoding_is_read_as_it_says_without_a_note(
    tmp_path, kunming_path
):
    source = gpd.read_file(kunming_path)
    path = tmp_path / "b.shp"
    source.to_file(path, encoding="GBK")  # writes b.cpg
    db = tmp_path / "p.gpkg"
    result = gridmap("import", path, "--db", db, "--community-field", "community")
    assert result.exit_code == 0, result.output
    stored = open_store(db).read_layer("buildings")
    assert set(stored["community"]) == set(source["community"])
    assert "encoded" not in result.output


OSM_XML = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="test">
  <node id="1" lat="31.6600" lon="120.7800"/><node id="2" lat="31.6600" lon="120.7803"/>
  <node id="3" lat="31.6603" lon="120.7803"/><node id="4" lat="31.6603" lon="120.7800"/>
  <node id="5" lat="31.6610" lon="120.7810"/><node id="6" lat="31.6612" lon="120.7813"/>
  <node id="7" lat="31.6620" lon="120.7800"/><node id="8" lat="31.6620" lon="120.7802"/>
  <node id="9" lat="31.6622" lon="120.7802"/><node id="10" lat="31.6622" lon="120.7800"/>
  <way id="100"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="1"/>
    <tag k="building" v="residential"/><tag k="name" v="碧溪花苑1幢"/></way>
  <way id="101"><nd ref="5"/><nd ref="6"/><tag k="building" v="yes"/></way>
  <way id="102"><nd ref="7"/><nd ref="8"/><nd ref="9"/><nd ref="10"/><nd ref="7"/>
    <tag k="building" v="house"/></way>
</osm>
"""


def test_osm_buildings_come_from_multipolygons_and_lines_are_dropped(tmp_path):
    path = tmp_path / "bixi.osm"
    path.write_text(OSM_XML, encoding="utf-8")
    db = tmp_path / "p.gpkg"
    result = gridmap("import", path, "--db", db)
    assert result.exit_code == 0, result.output
    store = open_store(db)
    buildings = store.read_layer("buildings")
    assert len(buildings) == 2  # the unclosed way 101 is no building footprint
    assert "碧溪花苑1幢" in set(buildings["name"])
    assert "OpenStreetMap" in store.get_setting("attribution")


def write_osm_pbf(path: Path, footprints: gpd.GeoDataFrame, name_field: str) -> None:
    """Footprints as OpenStreetMap ways in a real .osm.pbf (GDAL's OSM driver only reads)."""
    rings = [
        max(getattr(g, "geoms", [g]), key=lambda part: part.area).exterior.coords[:-1]
        for g in footprints.geometry
    ]
    with osmium.SimpleWriter(str(path)) as writer:
        node = 0
        for ring in rings:  # nodes first, as in any planet extract
            for lon, lat in ring:
                node += 1
                writer.add_node(osmium.osm.mutable.Node(id=node, location=(lon, lat)))
        node = 0
        for way, (ring, name) in enumerate(zip(rings, footprints[name_field], strict=True), 1):
            refs = list(range(node + 1, node + len(ring) + 1))
            node += len(ring)
            tags = {"building": "residential", "name": str(name)}
            writer.add_way(osmium.osm.mutable.Way(id=way, nodes=[*refs, refs[0]], tags=tags))


def test_a_real_osm_pbf_imports_every_footprint(tmp_path, kunming_path):
    source = gpd.read_file(kunming_path)
    path = tmp_path / "kunming.osm.pbf"
    write_osm_pbf(path, source, "community")
    db = tmp_path / "p.gpkg"
    result = gridmap("import", path, "--db", db, "--community-field", "name")
    assert result.exit_code == 0, result.output
    store = open_store(db)
    buildings = store.read_layer("buildings")
    assert len(buildings) == 140
    assert buildings["community"].nunique() == 16
    assert "OpenStreetMap" in store.get_setting("attribution")
    # the same footprints, to within the rounding of OSM coordinates (1e-7 degrees)
    metric = source.to_crs(buildings.crs)
    assert abs(buildings.area.sum() / metric.area.sum() - 1) < 1e-3


def test_invalid_polygons_are_repaired_and_counted(tmp_path, kunming_path):
    source = gpd.read_file(kunming_path)
    x, y = source.geometry.iloc[0].centroid.coords[0]
    d = 0.00005  # a self-intersecting footprint where building 0 stands
    bowtie = shapely.Polygon([(x - d, y - d), (x + d, y + d), (x + d, y - d), (x - d, y + d)])
    source.loc[0, "geometry"] = bowtie
    source.loc[1, "geometry"] = shapely.LineString([(x, y), (x + d, y + d)])
    source.loc[2, "geometry"] = shapely.Polygon()
    path = tmp_path / "broken.geojson"
    source.to_file(path)
    db = tmp_path / "p.gpkg"
    result = gridmap("import", path, "--db", db, "--community-field", "community")
    assert result.exit_code == 0, result.output
    buildings = open_store(db).read_layer("buildings")
    assert len(buildings) == 138
    assert buildings.geometry.is_valid.all()
    assert buildings.geometry.geom_type.isin(["Polygon", "MultiPolygon"]).all()
    table = result.output
    assert "repaired" in table
    assert "dropped: not polygons" in table


@pytest.mark.parametrize("fmt", ["shapefile without .prj", "geojson read as degrees"])
def test_gauss_kruger_metres_that_do_not_say_so_are_named_and_import_with_the_code(
    tmp_path, kunming_path, fmt
):
    source = gpd.read_file(kunming_path)
    zoned = source.to_crs(4522)  # 3-degree zone 34 (102°E), the zone number before the easting
    if fmt == "shapefile without .prj":
        path = tmp_path / "b.shp"
        zoned.to_file(path)
        path.with_suffix(".prj").unlink()
    else:  # as CAD exports write it: no crs member, so GDAL reads longitude/latitude
        path = tmp_path / "b.geojson"
        zoned.set_crs(4326, allow_override=True).to_file(path)
    db = tmp_path / "p.gpkg"
    refused = gridmap("import", path, "--db", db, "--community-field", "community")
    errors = [line for line in refused.output.splitlines() if line.startswith("Error:")]
    assert refused.exit_code != 0
    assert len(errors) == 1, refused.output
    assert "Gauss-Kruger zone 34 (102°E): give --crs EPSG:4522" in errors[0]
    assert not db.exists()
    result = gridmap(
        "import", path, "--db", db, "--community-field", "community", "--crs", "EPSG:4522"
    )
    assert result.exit_code == 0, result.output
    stored = open_store(db).read_layer("buildings").set_index("building_id")
    expected = zoned.set_index(zoned["id"].astype(str)).to_crs(stored.crs)
    moved = stored.geometry.centroid.distance(expected.geometry.centroid.loc[stored.index])
    assert len(stored) == len(source)
    assert moved.max() < 0.01


def _bad_inputs(tmp_path: Path, kunming_path: Path) -> dict[str, tuple[list[str], str]]:
    source = gpd.read_file(kunming_path)
    cases: dict[str, tuple[list[str], str]] = {}
    # a Shapefile without its .prj: no CRS
    source.to_file(tmp_path / "nocrs.shp")
    (tmp_path / "nocrs.prj").unlink()
    cases["no crs"] = ([str(tmp_path / "nocrs.shp")], "carries no coordinate system")
    # metres written as if they were degrees
    metres = source.to_crs(4543).set_crs(4326, allow_override=True)
    metres.to_file(tmp_path / "metres.geojson")
    cases["out of range"] = ([str(tmp_path / "metres.geojson")], "out of the range")
    swapped = source.copy()
    swapped["geometry"] = shapely.transform(source.geometry.values, lambda xy: xy[:, ::-1])
    swapped.to_file(tmp_path / "swapped.geojson")
    cases["swapped"] = ([str(tmp_path / "swapped.geojson")], "look swapped")
    cases["duplicate ids"] = (
        [str(kunming_path), "--id-field", "community"],
        "occur more than once",
    )
    cases["unknown field"] = (
        [str(kunming_path), "--community-field", "社区"],
        "the file's fields are: id, name, community",
    )
    source.assign(geometry=source.geometry.boundary).to_file(tmp_path / "lines.geojson")
    cases["empty result"] = ([str(tmp_path / "lines.geojson")], "no building footprints left")
    cases["missing file"] = ([str(tmp_path / "nope.geojson")], "no such file")
    (tmp_path / "garbage.geojson").write_text("{ not json")
    cases["broken file"] = ([str(tmp_path / "garbage.geojson")], "not a readable vector file")
    cases["wrong --crs"] = ([str(kunming_path), "--crs", "EPSG:4549"], "already declares")
    cases["unknown --crs"] = (
        [str(tmp_path / "nocrs.shp"), "--crs", "EPSG:99999"],
        "unknown coordinate system",
    )
    return cases


def test_bad_inputs_are_refused_with_one_line_and_leave_the_file_unchanged(
    tmp_path, kunming_path, kunming_db
):
    before = content_digest(kunming_db)
    for name, (args, message) in _bad_inputs(tmp_path, kunming_path).items():
        result = gridmap("import", *args, "--db", kunming_db, "--replace")
        assert result.exit_code != 0, name
        error_lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
        assert len(error_lines) == 1, (name, result.output)
        assert message in error_lines[0], (name, error_lines[0])
        assert "Traceback" not in result.output
        assert content_digest(kunming_db) == before, name


def test_a_refused_import_into_a_new_file_leaves_no_file(tmp_path, kunming_path):
    db = tmp_path / "new.gpkg"
    result = gridmap("import", kunming_path, "--db", db, "--id-field", "nope")
    assert result.exit_code == 2
    assert not db.exists()


def test_importing_twice_needs_replace(kunming_db, kunming_path):
    result = gridmap("import", kunming_path, "--db", kunming_db, "--community-field", "community")
    assert result.exit_code == 4
    assert "--replace" in result.output
    result = gridmap(
        "import", kunming_path, "--db", kunming_db, "--community-field", "community", "--replace"
    )
    assert result.exit_code == 0, result.output


def test_killing_an_import_mid_write_leaves_the_file_exactly_as_it_was(
    tmp_path, kunming_db, suzhou_path
):
    """SIGKILL the importing process right after its first layer rows went into the file."""
    before = content_digest(kunming_db)
    script = textwrap.dedent(
        f"""
        import os, signal
        from geo.storage import store
        from geo.usecases import district as project
        insert = store.GeoPackageStore._insert_rows
        def insert_then_die(self, conn, name, *args):
            insert(self, conn, name, *args)
            if name == "buildings":
                os.kill(os.getpid(), signal.SIGKILL)  # the power cut, mid-transaction
        store.GeoPackageStore._insert_rows = insert_then_die
        project.import_buildings(store.open_store({str(kunming_db)!r}), {str(suzhou_path)!r}, replace=True)
        """
    )
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    assert content_digest(kunming_db) == before
    assert len(open_store(kunming_db).read_layer("buildings")) == 140


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".shp", ".fgb", ".csv"])
def test_export_writes_wgs84_by_extension(tmp_path, kunming_db, suffix):
    out = tmp_path / f"out{suffix}"
    result = gridmap("export", out, "--db", kunming_db, "--layer", "buildings")
    assert result.exit_code == 0, result.output
    if suffix == ".csv":
        text = out.read_text(encoding="utf-8")
        assert text.splitlines()[0].endswith(",WKT")  # the geometry last, for spreadsheets
        assert len(text.splitlines()) == 141
        return
    exported = gpd.read_file(out)
    assert len(exported) == 140
    assert exported.crs.to_epsg() == 4326
    minx, miny, maxx, maxy = exported.total_bounds
    assert 102 < minx < maxx < 103.5
    assert 24.5 < miny < maxy < 25.5


def test_export_refuses_unknown_format_and_layer(tmp_path, kunming_db):
    result = gridmap("export", tmp_path / "out.kml", "--db", kunming_db)
    assert result.exit_code == 2
    assert "cannot tell the format" in result.output
    result = gridmap("export", tmp_path / "out.geojson", "--db", kunming_db, "--layer", "roads")
    assert result.exit_code == 2
    assert "unknown layer" in result.output


def test_settings_check_the_division_code(kunming_db):
    result = gridmap("settings", "set", "division_code", "32058110", "--db", kunming_db)
    assert result.exit_code == 2
    assert "9 digits" in result.output
    result = gridmap("settings", "set", "division_code", "320581104", "--db", kunming_db)
    assert result.exit_code == 0
    assert open_store(kunming_db).get_setting("division_code") == "320581104"
    result = gridmap("settings", "set", "min_size", "9", "--db", kunming_db)
    assert result.exit_code == 2
    assert "above max_size" in result.output
