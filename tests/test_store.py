"""The project file: a real GeoPackage, transactional, readable by GDAL."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

from geo.errors import NotFound, StoreError
from geo.storage.gpkg import decode_geometries, encode_geometries
from geo.storage.store import open_store, plans


def test_blob_round_trip_keeps_every_geometry_kind(kunming_path):
    footprints = gpd.read_file(kunming_path).geometry.values
    samples = [
        *footprints[:5],
        shapely.Point(120.78, 31.66),
        shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 3)]),
        shapely.LineString([(0, 0), (1, 1)]),
        shapely.Polygon(),
        None,
    ]
    decoded = decode_geometries(encode_geometries(samples, srs_id=4326))
    for before, after in zip(samples, decoded, strict=True):
        if before is None:
            assert after is None
        else:
            assert shapely.equals_exact(before, after, tolerance=0) or (
                before.is_empty and after.is_empty
            )


def test_layers_open_in_gdal_with_their_crs_and_values(tmp_path, suzhou_path):
    buildings = gpd.read_file(suzhou_path).to_crs(4549)
    store = open_store(tmp_path / "p.gpkg", create=True)
    with store.transaction() as conn:
        store.write_layer(conn, "buildings", buildings)
    through_gdal = pyogrio.read_dataframe(tmp_path / "p.gpkg", layer="buildings")
    assert len(through_gdal) == 8242
    assert through_gdal.crs.to_epsg() == 4549
    assert through_gdal["osm_index"].tolist() == buildings["osm_index"].tolist()
    assert shapely.equals_exact(
        through_gdal.geometry.values, buildings.geometry.values, tolerance=1e-6
    ).all()
    layers = dict(pyogrio.list_layers(tmp_path / "p.gpkg"))
    assert layers["buildings"] == "Polygon"
    assert {"plans", "assignments", "workers", "audit_log"} <= set(layers)  # attribute tables


def test_a_failed_transaction_leaves_the_file_as_it_was(tmp_path, kunming_path):
    store = open_store(tmp_path / "p.gpkg", create=True)
    buildings = gpd.read_file(kunming_path)
    with store.transaction() as conn:
        store.write_layer(conn, "buildings", buildings)

    def write_then_fail() -> None:
        with store.transaction() as conn:
            store.write_layer(conn, "buildings", buildings.iloc[:3])
            conn.execute(plans.insert().values(status="draft", created_at="now"))
            raise RuntimeError("killed half-way")

    with pytest.raises(RuntimeError, match="half-way"):
        write_then_fail()
    assert len(store.read_layer("buildings")) == 140
    assert store.read_table(plans).empty


def test_read_layer_filters_and_keeps_types(tmp_path, kunming_path):
    store = open_store(tmp_path / "p.gpkg", create=True)
    frame = gpd.read_file(kunming_path)
    frame["households"] = pd.array([None, *range(139)], dtype="Int64")
    frame["checked"] = pd.array([True, False] * 70, dtype="boolean")
    with store.transaction() as conn:
        store.write_layer(conn, "buildings", frame)
    some = store.read_layer("buildings", where={"community": frame["community"].iloc[0]})
    assert set(some["community"]) == {frame["community"].iloc[0]}
    back = store.read_layer("buildings")
    assert back["households"].dtype == "Int64"
    assert back["households"].isna().sum() == 1
    assert back["checked"].tolist() == frame["checked"].tolist()


def test_opening_a_missing_or_foreign_file_names_the_problem(tmp_path):
    with pytest.raises(NotFound, match="no project file"):
        open_store(tmp_path / "missing.gpkg")
    text_file = tmp_path / "notes.gpkg"
    text_file.write_text("not a database")
    with pytest.raises(StoreError, match="not a GeoPackage"):
        open_store(text_file)


def test_settings_round_trip_unicode(tmp_path):
    store = open_store(tmp_path / "p.gpkg", create=True)
    with store.transaction() as conn:
        store.set_setting(conn, "division_code", "320581104")
        store.set_setting(conn, "street", "碧溪街道")
    assert store.get_setting("street") == "碧溪街道"
    assert store.all_settings()["division_code"] == "320581104"
