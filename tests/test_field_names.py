"""Field names from users' files are data, never SQL (issue 13, item 6).

Kunming's real footprints are written back with the fields a Shapefile or a hostile file brings:
``NAME`` beside ``name``, ``KIND`` beside ``kind``, ``fid``, ``a:b`` and a field called
``note" TEXT, "injected``. The import stores each as one column of exactly its name (clashes in
case renamed ``NAME_2``, said in the summary), and nothing of a name ever becomes SQL.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from typer.testing import CliRunner

from api.cli import app
from geo.buildings.reading import distinct_field_names
from geo.storage.store import open_store

runner = CliRunner()
INJECTED = 'note" TEXT, "injected'


@pytest.fixture
def awkward_fields(kunming_path: Path, tmp_path: Path) -> Path:
    features = json.loads(kunming_path.read_text(encoding="utf-8"))
    for number, feature in enumerate(features["features"]):
        feature["properties"].update(
            {
                "NAME": f"大写{number}",
                "KIND": "upper",
                "kind": "lower",
                INJECTED: f"注{number}",
                "a:b": "colon",
                "fid": number,
            }
        )
    source = tmp_path / "awkward.geojson"
    source.write_text(json.dumps(features, ensure_ascii=False), encoding="utf-8")
    return source


def columns_of(db: Path, table: str) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')]


def test_fields_clashing_in_case_are_renamed_and_a_quote_in_a_name_stays_a_name(
    awkward_fields, tmp_path
):
    db = tmp_path / "project.gpkg"
    result = runner.invoke(
        app,
        ["import", str(awkward_fields), "--community-field", "community", "--db", str(db)],
        env={"GRIDMAP_LANG": "en", "COLUMNS": "300"},
    )
    assert result.exit_code == 0, result.output
    assert "field 'NAME' renamed 'NAME_2'" in result.output
    assert "field 'kind' renamed 'kind_2'" in result.output
    assert "field 'fid' renamed 'fid_2'" in result.output
    columns = columns_of(db, "buildings")
    assert INJECTED in columns
    assert "injected" not in columns
    assert {"name", "NAME_2", "KIND", "kind_2", "a:b", "fid_2"} <= set(columns)
    buildings = open_store(db).read_layer("buildings")
    assert len(buildings) == 140
    assert buildings[INJECTED].iloc[3] == "注3"
    assert buildings["NAME_2"].iloc[3] == "大写3"
    assert set(buildings["kind_2"]) == {"lower"}
    assert buildings["a:b"].iloc[0] == "colon"


def test_renaming_is_the_same_every_time_and_never_takes_an_existing_name():
    frame = gpd.GeoDataFrame(
        {"name": ["a"], "NAME": ["b"], "name_2": ["c"], "GEOM": [1], "Ä": [1], "ä": [2]},
        geometry=[shapely.Point(0, 0)],
        crs=4326,
    )
    renamed, changes = distinct_field_names(frame)
    assert changes == {"NAME": "NAME_3", "GEOM": "GEOM_2"}
    assert list(renamed.columns) == ["name", "NAME_3", "name_2", "GEOM_2", "Ä", "ä", "geometry"]
    assert distinct_field_names(frame)[1] == changes


def test_the_store_reads_writes_and_filters_on_columns_with_quotes_and_colons(tmp_path):
    store = open_store(tmp_path / "p.gpkg", create=True)
    frame = gpd.GeoDataFrame(
        {INJECTED: ["x", "y"], "a:b": ["1", "2"], '"': ["q", "r"]},
        geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 1, 2, 2)],
        crs=4326,
    )
    with store.transaction() as conn:
        store.write_layer(conn, 'odd "layer"', frame)
    back = store.read_layer('odd "layer"', where={INJECTED: "y"})
    assert back[["a:b", '"']].values.tolist() == [["2", "r"]]
    assert store.count('odd "layer"', where={"a:b": ["1", "2"]}) == 2
    with store.transaction() as conn:
        assert store.delete_rows(conn, 'odd "layer"', {'"': "q"}) == 1
    assert columns_of(tmp_path / "p.gpkg", 'odd ""layer""') == ["fid", "geom", INJECTED, "a:b", '"']
