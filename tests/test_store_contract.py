"""One store contract, two backends: every test runs on a GeoPackage and on PostGIS.

geo speaks to its storage through :class:`geo.storage.store.Store` only, so both backends must
answer alike: the same GeoDataFrame back for the same write (columns, dtypes, CRS, geometry),
the same filters, the same all-or-nothing transactions, the same refusals. The PostGIS half runs
on a real throw-away cluster (tests/pgcluster.py), one empty database per test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import sqlalchemy as sa

from geo.errors import NotFound
from geo.storage.store import (
    Store,
    audit_log,
    edits,
    ensure_unique_keys,
    locate_indexes,
    open_store,
    plans,
    tokens,
)

BACKENDS = ["geopackage", "postgis"]


def new_store(backend: str, request: pytest.FixtureRequest, tmp_path) -> Store:
    if backend == "geopackage":
        return open_store(tmp_path / "project.gpkg", create=True)
    import pgcluster

    return open_store(pgcluster.fresh_database(request.getfixturevalue("postgis_url")))


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path) -> Iterator[Store]:
    """An empty store of each backend."""
    opened = new_store(request.param, request, tmp_path)
    yield opened
    opened.engine.dispose()


@pytest.fixture(scope="module")
def suzhou(shared_data) -> gpd.GeoDataFrame:
    """The 8,242 Suzhou footprints in the metric CRS the project stores (EPSG:4549)."""
    return gpd.read_file(shared_data / "suzhou_gusu_buildings.geojson").to_crs(4549)


def mixed_points() -> gpd.GeoDataFrame:
    """Points with an empty and a missing geometry, Chinese text, times, nullable ints and flags."""
    return gpd.GeoDataFrame(
        {
            "incident_id": ["a1", "a2", "a3", "a4"],
            "category": ["环境卫生", "市政设施", None, "噪音"],
            "reported_at": pd.to_datetime(
                ["2024-05-01 08:30", "2024-05-02 23:59:59.250", None, "2024-05-03 00:00"],
                format="ISO8601",
            ).tz_localize("Asia/Shanghai"),
            "households": pd.array([3, None, 5, 7], dtype="Int64"),
            "urgent": pd.array([True, False, None, True], dtype="boolean"),
            "score": [0.5, np.nan, 2.25, 1e300],
        },
        geometry=[
            shapely.Point(120.61, 31.31),
            shapely.Point(),
            None,
            shapely.Point(120.64, 31.33),
        ],
        crs=4326,
    )


def write(store: Store, name: str, frame: gpd.GeoDataFrame, **options) -> None:
    with store.transaction() as conn:
        store.write_layer(conn, name, frame, **options)


def test_the_suzhou_layer_comes_back_as_written(store, suzhou):
    write(store, "buildings", suzhou)
    back = store.read_layer("buildings")
    assert back.crs.to_epsg() == 4549
    assert store.layer_crs("buildings").to_epsg() == 4549
    assert back.index.tolist() == list(range(1, len(suzhou) + 1))
    assert list(back.columns) == ["osm_index", "name", "height", "geometry"]
    assert str(back["osm_index"].dtype) == "Int64"
    assert back["height"].dtype == "float64"
    assert back["osm_index"].tolist() == suzhou["osm_index"].tolist()
    assert back["name"].tolist() == suzhou["name"].tolist()  # 303 Chinese names, the rest None
    assert shapely.equals_exact(back.geometry.values, suzhou.geometry.values, tolerance=0).all()
    assert store.layers() == ["buildings"]
    assert store.has_layer("buildings")
    assert store.count("buildings") == len(suzhou)


def test_points_empty_and_missing_geometry_text_and_times_round_trip(store):
    frame = mixed_points()
    write(store, "incidents", frame)
    back = store.read_layer("incidents")
    assert str(back["reported_at"].dtype) == "datetime64[us, UTC]"
    assert back["reported_at"].tolist()[:2] == [
        pd.Timestamp("2024-05-01 00:30", tz="UTC"),
        pd.Timestamp("2024-05-02 15:59:59.250", tz="UTC"),
    ]
    assert back["reported_at"].isna().tolist() == [False, False, True, False]
    assert back["category"].tolist()[:2] == ["环境卫生", "市政设施"]
    assert back["households"].tolist()[:1] == [3]
    assert back["households"].isna().sum() == 1
    assert back["urgent"].tolist()[:2] == [True, False]
    assert back["urgent"].isna().sum() == 1
    assert back["score"].tolist()[3] == 1e300
    assert np.isnan(back["score"].iloc[1])
    geometry = back.geometry.values
    assert geometry[0].equals(shapely.Point(120.61, 31.31))
    assert geometry[1].is_empty
    assert geometry[2] is None


def test_both_backends_return_the_same_frame_for_the_same_write(request, tmp_path, suzhou):
    frames, tables = {}, {}
    for backend in BACKENDS:
        opened = new_store(backend, request, tmp_path)
        write(opened, "buildings", suzhou.iloc[:500])
        write(opened, "incidents", mixed_points())
        with opened.transaction() as conn:
            conn.execute(plans.insert().values(status="draft", created_at="now", name="碧溪"))
            conn.execute(edits.insert().values(plan_id=1, revision=1, op="move", args="{}", at="t"))
            conn.execute(
                locate_indexes.insert().values(
                    plan_id=1, revision=1, plan_created_at="c", built_at="b", index_data=b"\0\1"
                )
            )
        frames[backend] = [opened.read_layer("buildings"), opened.read_layer("incidents")]
        tables[backend] = [opened.read_table(t) for t in (plans, edits, locate_indexes)]
        opened.engine.dispose()
    for gpkg_table, pg_table in zip(*tables.values(), strict=True):
        pd.testing.assert_frame_equal(gpkg_table, pg_table)
    for gpkg_frame, pg_frame in zip(*frames.values(), strict=True):
        pd.testing.assert_frame_equal(
            pd.DataFrame(gpkg_frame.drop(columns="geometry")),
            pd.DataFrame(pg_frame.drop(columns="geometry")),
        )
        assert gpkg_frame.crs == pg_frame.crs
        same = shapely.equals_exact(gpkg_frame.geometry.values, pg_frame.geometry.values, 0)
        missing = shapely.is_missing(gpkg_frame.geometry.values)
        assert (same | missing | shapely.is_empty(gpkg_frame.geometry.values)).all()
        assert (missing == shapely.is_missing(pg_frame.geometry.values)).all()


def test_layers_keep_their_own_crs(store, suzhou):
    write(store, "buildings", suzhou.iloc[:10])
    write(store, "incidents", mixed_points())
    assert store.layer_crs("buildings").to_epsg() == 4549
    assert store.layer_crs("incidents").to_epsg() == 4326
    appended = suzhou.iloc[10:20].to_crs(4326)  # appended rows are brought to the layer's CRS
    write(store, "buildings", appended, mode="append")
    back = store.read_layer("buildings")
    assert back.crs.to_epsg() == 4549
    assert len(back) == 20
    assert shapely.equals_exact(
        back.geometry.values[10:], suzhou.geometry.values[10:20], tolerance=1e-6
    ).all()
    with pytest.raises(NotFound):
        store.layer_crs("nowhere")


def test_extents_are_recorded_and_grow_with_appends(store, suzhou):
    write(store, "buildings", suzhou.iloc[:100])
    assert store.layer_extent("buildings") == pytest.approx(suzhou.iloc[:100].total_bounds)
    write(store, "buildings", suzhou.iloc[100:], mode="append")
    assert store.layer_extent("buildings") == pytest.approx(suzhou.total_bounds)
    write(store, "empty", suzhou.iloc[:0])
    assert store.layer_extent("empty") is None
    assert store.read_layer("empty").empty


def test_appending_multipolygons_to_a_polygon_layer_keeps_both(store, suzhou):
    write(store, "communities", suzhou.iloc[:3])
    pair = shapely.MultiPolygon(list(suzhou.geometry.iloc[3:5]))
    write(store, "communities", gpd.GeoDataFrame(suzhou.iloc[[5]].drop(columns="geometry"),
          geometry=[pair], crs=4549), mode="append")  # fmt: skip
    back = store.read_layer("communities")
    assert shapely.get_type_id(back.geometry.values).tolist() == [3, 3, 3, 6]
    assert back.geometry.iloc[3].equals(pair)


def test_where_filters_and_columns(store, suzhou):
    write(store, "buildings", suzhou)
    named = suzhou["name"].dropna()
    one = store.read_layer("buildings", where={"name": named.iloc[0]})
    assert set(one["name"]) == {named.iloc[0]}
    some = store.read_layer("buildings", where={"osm_index": suzhou["osm_index"].iloc[:7].tolist()})
    assert some["osm_index"].tolist() == suzhou["osm_index"].iloc[:7].tolist()
    unnamed = store.read_layer("buildings", where={"name": None}, columns=["osm_index"])
    assert len(unnamed) == suzhou["name"].isna().sum()
    assert list(unnamed.columns) == ["osm_index", "geometry"]
    assert store.count("buildings", {"name": None}) == len(unnamed)
    write(store, "incidents", mixed_points())
    at = pd.Timestamp("2024-05-01 08:30", tz="Asia/Shanghai")
    assert store.read_layer("incidents", where={"reported_at": at})["incident_id"].tolist() == [
        "a1"
    ]
    with pytest.raises(NotFound):
        store.read_layer("buildings", columns=["no such column"])


def test_update_and_delete_rows(store, suzhou):
    write(store, "buildings", suzhou.iloc[:50])
    keys = suzhou["osm_index"].iloc[:3].tolist()
    rows = pd.DataFrame({"osm_index": keys, "name": ["甲", "乙", "丙"], "height": [1.0, 2.0, 3.0]})
    with store.transaction() as conn:
        assert store.update_rows(conn, "buildings", rows, key=["osm_index"]) == 3
    back = store.read_layer("buildings", where={"osm_index": keys})
    assert back["name"].tolist() == ["甲", "乙", "丙"]
    assert back["height"].tolist() == [1, 2, 3]
    with store.transaction() as conn:
        assert store.delete_rows(conn, "buildings", {"osm_index": keys[:2]}) == 2
        assert store.delete_rows(conn, "no_such_layer", {"x": 1}) == 0
    assert store.count("buildings") == 48
    assert store.count("no_such_layer") == 0
    with store.transaction() as conn:
        store.drop_layer(conn, "buildings")
    assert not store.has_layer("buildings")
    assert store.layers() == []


def test_an_exception_inside_a_transaction_leaves_nothing(store, suzhou):
    write(store, "buildings", suzhou.iloc[:20])

    def write_then_fail() -> None:
        with store.transaction() as conn:
            store.write_layer(conn, "buildings", suzhou.iloc[:3])
            store.write_layer(conn, "grids", suzhou.iloc[:3])
            conn.execute(plans.insert().values(status="draft", created_at="now"))
            store.set_setting(conn, "street", "碧溪街道")
            store.log(conn, "import", actor="test")
            raise RuntimeError("killed half-way")

    with pytest.raises(RuntimeError, match="half-way"):
        write_then_fail()
    assert len(store.read_layer("buildings")) == 20
    assert not store.has_layer("grids")
    assert store.layers() == ["buildings"]
    assert store.read_table(plans).empty
    assert store.read_table(audit_log).empty
    assert store.get_setting("street") is None


def test_readers_do_not_wait_and_a_second_writer_can_refuse_to(store, suzhou):
    write(store, "buildings", suzhou.iloc[:20])
    with store.transaction() as conn:
        store.write_layer(conn, "buildings", suzhou.iloc[:5])
        assert len(store.read_layer("buildings")) == 20  # another connection: the committed rows
        assert len(store.read_layer("buildings", conn=conn)) == 5  # the writer sees its own
        with pytest.raises(sa.exc.OperationalError, match="locked"), store.transaction(wait=False):
            pass
    assert store.read_layer("buildings").index.tolist() == [1, 2, 3, 4, 5]


def test_fids_count_on_after_deletes_and_restart_with_a_replace(store, suzhou):
    write(store, "buildings", suzhou.iloc[:5])
    with store.transaction() as conn:
        store.delete_rows(conn, "buildings", {"osm_index": suzhou["osm_index"].iloc[4]})
    write(store, "buildings", suzhou.iloc[5:7], mode="append")  # AUTOINCREMENT: 5 is not reused
    assert store.read_layer("buildings").index.tolist() == [1, 2, 3, 4, 6, 7]
    write(store, "buildings", suzhou.iloc[:2])
    write(store, "buildings", suzhou.iloc[2:3], mode="append")
    assert store.read_layer("buildings").index.tolist() == [1, 2, 3]


def test_settings_round_trip(store):
    with store.transaction() as conn:
        store.set_setting(conn, "division_code", "320581104")
        store.set_setting(conn, "street", "碧溪街道")
        store.set_setting(conn, "bounds", [120.6, 31.3, 120.65, 31.35])
        store.set_setting(conn, "street", "碧溪街道办事处")  # a second write replaces the first
    assert store.get_setting("street") == "碧溪街道办事处"
    assert store.get_setting("missing", default={"a": 1}) == {"a": 1}
    assert store.all_settings() == {
        "division_code": "320581104",
        "street": "碧溪街道办事处",
        "bounds": [120.6, 31.3, 120.65, 31.35],
    }


def test_the_audit_log_keeps_rows_in_order(store):
    with store.transaction() as conn:
        store.log(conn, "import", actor="王芳", source="碧溪.geojson", buildings=8242)
        store.log(conn, "partition", actor="system")
    log = store.read_table(audit_log)
    assert log["action"].tolist() == ["import", "partition"]
    assert log["actor"].tolist() == ["王芳", "system"]
    assert json.loads(log["details"].iloc[0]) == {"source": "碧溪.geojson", "buildings": 8242}
    assert store.read_table("audit_log", where={"actor": "system"})["action"].tolist() == [
        "partition"
    ]


def test_unique_keys_refuse_duplicates_and_leave_nothing(store):
    frame = mixed_points()
    with store.transaction() as conn:
        store.write_layer(conn, "incidents", frame)
        assert ensure_unique_keys(conn) == {}
    with pytest.raises(sa.exc.IntegrityError), store.transaction() as conn:
        store.write_layer(conn, "incidents", frame.iloc[[3, 0]], mode="append")
    assert store.count("incidents") == 4
    row = {"name": "front desk", "role": "clerk", "hash": "h1", "created_at": "now"}
    with store.transaction() as conn:
        conn.execute(tokens.insert().values(**row))
    with pytest.raises(sa.exc.IntegrityError), store.transaction() as conn:
        conn.execute(tokens.insert().values(**{**row, "hash": "h2"}))
    assert store.read_table(tokens)["name"].tolist() == ["front desk"]


def test_copies_written_before_the_unique_key_are_removed_once(store):
    frame = mixed_points()
    doubled = pd.concat([frame, frame.iloc[[0, 1]]])
    write(store, "incidents", gpd.GeoDataFrame(doubled, crs=frame.crs))
    with store.transaction() as conn:
        assert ensure_unique_keys(conn) == {"incidents": 2}
        assert ensure_unique_keys(conn) == {}
    assert store.read_layer("incidents")["incident_id"].tolist() == ["a1", "a2", "a3", "a4"]
    assert store.read_table(audit_log)["action"].tolist() == ["duplicates removed"]


def test_the_whole_suzhou_layer_is_one_bulk_write(store, suzhou):
    """PostGIS: the rows stream through COPY, never one INSERT per row."""
    inserts: list[str] = []

    def watch(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith('INSERT INTO "BUILDINGS"'):
            inserts.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", watch)
    write(store, "buildings", suzhou)
    sa.event.remove(store.engine, "before_cursor_execute", watch)
    assert store.count("buildings") == len(suzhou) == 8242
    if "postgresql" in store.url:
        assert inserts == []
        with store.reading() as conn:
            indexes = (
                conn.exec_driver_sql(
                    "SELECT indexdef FROM pg_indexes WHERE tablename = 'buildings'"
                )
                .scalars()
                .all()
            )
            declared = conn.exec_driver_sql(
                "SELECT type, srid FROM geometry_columns WHERE f_table_name = 'buildings'"
            ).one()
        assert any("USING gist (geom)" in index for index in indexes)
        assert tuple(declared) == ("POLYGON", 4549)


def test_postgresql_urls_open_the_postgis_store(postgis_url):
    import pgcluster

    url = pgcluster.fresh_database(postgis_url)
    plain = open_store(url.replace("postgresql+psycopg://", "postgresql://"))
    assert type(plain).__name__ == "PostGISStore"
    assert isinstance(plain, Store)
    assert plain.url.startswith("postgresql+psycopg://")
    plain.engine.dispose()


def test_a_row_inserted_with_geometry_values_reads_back_and_widens_the_extent(store):
    """The lean case intake (geo.incidents.intake) writes rows by INSERT: the geometry values
    a store gives read back as the points, and widen_extent grows the recorded extent."""
    write(store, "points", mixed_points())
    before = store.layer_extent("points")
    layer = sa.table("points", sa.column("incident_id"), sa.column("geom"))
    values = store.geometry_values([shapely.Point(121.5, 30.5), None], srs_id=4326)
    with store.transaction() as conn:
        conn.execute(
            sa.insert(layer),
            [{"incident_id": "b1", "geom": values[0]}, {"incident_id": "b2", "geom": None}],
        )
        store.widen_extent(conn, "points", (121.5, 30.5, 121.5, 30.5))
    added = store.read_layer("points", where={"incident_id": ["b1", "b2"]})
    assert added.geometry.iloc[0].equals(shapely.Point(121.5, 30.5))
    assert added.geometry.iloc[1] is None
    assert store.layer_extent("points") == (before[0], 30.5, 121.5, before[3])


def test_layer_changes_move_with_a_write_and_columns_name_a_table(store):
    with store.transaction() as conn:
        store.write_layer(conn, "incidents", mixed_points())
    before = store.layer_changes(("incidents", "no_such_layer"))
    assert [name for name, _ in before] == ["incidents"]
    import time

    time.sleep(0.01)  # the stamps count milliseconds
    with store.transaction() as conn:
        store.write_layer(conn, "incidents", mixed_points().iloc[:1], mode="append")
    assert store.layer_changes(("incidents",)) != before
    assert store.columns("incidents") == ["fid", "geom", *mixed_points().columns[:-1]]
    assert store.columns("no_such_table") == []
    assert "worker" in store.columns("tokens")  # declared by the schema, not added later
    assert store.layer_description("incidents") == ""
    with store.transaction() as conn:
        store.write_layer(conn, "cases", mixed_points(), description="12345 的案件")
    assert store.layer_description("cases") == "12345 的案件"
    assert store.layer_description("no_such_layer") == ""


def test_rows_inserted_with_their_keys_keep_them_and_later_rows_number_on(store):
    rows = pd.DataFrame(
        {
            "plan_id": [3, 7],
            "status": ["archived", "draft"],
            "created_at": ["2026-01-01T00:00:00+00:00"] * 2,
            "max_households": pd.Series([None, 12], dtype=object),
        }
    )
    with store.transaction() as conn:
        store.insert_rows(conn, plans, rows)
        added = conn.execute(
            sa.insert(plans).values(status="draft", created_at="2026-01-02T00:00:00+00:00")
        ).inserted_primary_key[0]
    assert added == 8
    table = store.read_table(plans)
    assert table["plan_id"].tolist() == [3, 7, 8]
    assert table["max_households"].isna().tolist() == [True, False, True]


def test_a_layer_written_with_its_fids_keeps_them_and_appends_number_on(store):
    frame = mixed_points().set_axis(pd.Index([3, 7, 9, 12], name="fid"))
    with store.transaction() as conn:
        store.write_layer(conn, "incidents", frame, keep_fids=True)
        store.write_layer(conn, "incidents", mixed_points().iloc[:1], mode="append")
    assert store.read_layer("incidents").index.tolist() == [3, 7, 9, 12, 13]


def test_the_commit_watch_moves_with_a_write_and_not_with_a_read(store):
    watch = store.commit_watch()
    try:
        before = watch()
        assert watch() == before
        store.read_table(plans)
        assert watch() == before
        with store.transaction() as conn:
            store.set_setting(conn, "district_name", "碧溪")
        assert watch() != before
    finally:
        watch.close()
