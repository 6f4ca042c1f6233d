"""The CLI as scripts use it (as they use GDAL's utilities and git): results on stdout, messages on
stderr, --json that every strict parser reads, ``-`` for stdin/stdout, stated limits, one language
per message and the exit codes that --help documents."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from geo.storage.store import open_store
from geo.storage.store import workers as workers_table

runner = CliRunner()
GRIDMAP = Path(sys.executable).with_name("gridmap")
CJK = re.compile(r"[\u4e00-\u9fff]")


def gridmap(*args, lang: str = "zh", stdin: str | None = None):
    return runner.invoke(app, [str(a) for a in args], env={"GRIDMAP_LANG": lang}, input=stdin)


def strict_json(text: str):
    """json.loads that refuses NaN, Infinity and -Infinity, as jq and browsers do."""

    def refuse(constant: str):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def db(api_db, tmp_path_factory):
    """Kunming staffed, with 80 cases at its buildings and 3 far away (imported through stdin)."""
    store = open_store(api_db)
    points = store.read_layer("buildings").representative_point().to_crs(4326).iloc[:80]
    store.engine.dispose()
    lines = ["id,lon,lat,type,time"]
    lines += [
        f"C{i},{p.x:.6f},{p.y:.6f},暴露垃圾,2026-08-0{1 + i % 9} 09:00"
        for i, p in enumerate(points)
    ]
    lines += [f"F{i},{100 + i},{30},暴露垃圾,2026-08-01 09:00" for i in range(3)]
    result = gridmap("incidents", "import", "-", "--db", api_db, "--json", "--id-col", "id",
                     "--lon-col", "lon", "--lat-col", "lat", "--category-col", "type",
                     "--time-col", "time", stdin="\n".join(lines) + "\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = strict_json(result.stdout)
    assert (summary["read"], summary["located"], summary["unlocated"]) == (83, 80, 3)
    assert "  未定位原因: 不在辖区内: 3" in result.stderr.splitlines()  # Chinese throughout
    return api_db


JSON_COMMANDS = [
    ("locate", "102.7233", "25.0694"),
    ("locate", "--address", "花园"),
    ("incidents", "list", "--limit", "0"),
    ("incidents", "list", "--status", "reported", "--limit", "5"),
    ("incidents", "stats", "--json"),
    ("incidents", "stats", "--by", "worker", "--format", "json"),
    ("plan", "list", "--json"),
    ("plan", "show"),
    ("workers", "list"),
    ("workers", "assign", "--json"),
    ("token", "list", "--json"),
    ("settings", "show"),
]


@pytest.mark.parametrize("command", JSON_COMMANDS, ids=" ".join)
def test_every_json_output_is_strict_json_on_stdout_alone(db, command):
    result = gridmap(*command, "--db", db)
    assert result.exit_code == 0, result.output
    value = strict_json(result.stdout)  # the whole of stdout is one JSON document
    assert value is not None
    assert "{" not in result.stderr


def test_cases_without_a_point_are_null_not_nan(db):
    cases = strict_json(gridmap("incidents", "list", "--db", db, "--limit", "0").stdout)
    far = [c for c in cases if c["source_id"].startswith("F")]
    assert len(far) == 3
    assert all(c["lon"] is None and c["grid_code"] is None for c in far)
    assert all(c["unlocated_reason"] for c in far)
    assert all(c["registered_at"] is None for c in far)


def test_incidents_list_states_its_limit_and_how_many_more_there_are(db):
    result = gridmap("incidents", "list", "--db", db)
    assert len(strict_json(result.stdout)) == 50
    assert result.stderr.strip() == "还有 33 条未列出（共 83 条）；用 --limit 0 列出全部"
    english = gridmap("incidents", "list", "--db", db, "--limit", "80", lang="en")
    assert english.stderr.strip() == "3 more not shown (83 in all); --limit 0 lists them all"
    assert "50" in gridmap("incidents", "list", "--help").stdout  # the default is stated


def test_plan_list_is_a_table_on_stdout_with_whole_numbers(db):
    result = gridmap("plan", "list", "--db", db)
    assert result.exit_code == 0
    assert result.stderr == ""
    row = next(line for line in result.stdout.splitlines() if "published" in line)
    cells = [c.strip() for c in re.split(r"[│┃|]", row)[1:-1]]
    assert cells[0] == "1"
    assert cells[2] == ""
    assert re.fullmatch(r"\d+", cells[3])
    assert "nan" not in result.stdout
    assert "1.0" not in result.stdout
    listed = strict_json(gridmap("plan", "list", "--db", db, "--json").stdout)
    assert listed[0]["parent_id"] is None
    assert isinstance(listed[0]["grids"], int)


def test_statistics_print_counts_as_integers(db):
    result = gridmap("incidents", "stats", "--db", db, "--by", "community")
    assert result.exit_code == 0
    assert result.stderr == ""
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    reported = [re.split(r"│", r)[2].strip() for r in rows]
    assert reported
    assert all(re.fullmatch(r"\d+", value) for value in reported)


def test_a_redirected_plan_list_and_a_locate_pipe_work_from_a_real_shell(db, tmp_path):
    env = {**os.environ, "GRIDMAP_LANG": "zh", "GRIDMAP_DB": str(db)}
    with (tmp_path / "plans.txt").open("w") as listing:
        subprocess.run([GRIDMAP, "plan", "list"], stdout=listing, env=env, check=True)
    assert "published" in (tmp_path / "plans.txt").read_text(encoding="utf-8")
    points = "lon,lat\n102.7233,25.0694\n100,30\n"
    located = subprocess.run(
        [GRIDMAP, "locate", "--input", "-", "--output", "-"],
        input=points.encode(), capture_output=True, env=env, check=True,
    )  # fmt: skip
    lines = located.stdout.decode("utf-8").splitlines()
    assert len(lines) == 3
    assert "grid_code" in lines[0]
    assert "已写入 标准输出" in located.stderr.decode("utf-8")
    assert not (tmp_path / "-").exists()
    assert not Path("-").exists()


def test_statistics_go_to_stdout_as_csv_and_to_a_workbook_on_request(db, tmp_path):
    result = gridmap("incidents", "stats", "--db", db, "--format", "csv", "--by", "community")
    assert result.stdout.splitlines()[0].startswith("community,reported")
    target = tmp_path / "s.csv"
    gridmap("incidents", "stats", "--db", db, "--format", "csv", "-o", target, "--excel")
    assert target.read_bytes().startswith(b"\xef\xbb\xbf")


def test_errors_are_one_line_in_one_language_with_the_documented_exit_code(db, tmp_path):
    far = gridmap("locate", "100", "30", "--db", db)
    assert far.exit_code == 2
    assert far.stdout == ""
    assert far.stderr.strip() == "错误：无法定位 (100, 30)：远离辖区"
    english = gridmap("locate", "100", "30", "--db", db, lang="en")
    assert english.stderr.strip() == "Error: cannot locate (100, 30): far outside the district"
    assert not CJK.search(english.stderr)
    missing = gridmap("plan", "show", "999", "--db", db, lang="en")
    assert missing.exit_code == 3
    assert not CJK.search(missing.stderr)
    assert gridmap("plan", "list", "--db", tmp_path / "none.gpkg").exit_code == 3
    assert gridmap("incidents", "stats", "--db", db, "--format", "pdf").exit_code == 2
    assert gridmap("plan", "list", "--no-such-option").exit_code == 2
    top = " ".join(gridmap("--help").stdout.split())
    for code in (
        "0 成功",
        "2 输入有误",
        "3 未找到",
        "4 冲突",
        "5 无权限",
        "6 项目文件",
        "70",
        "130",
    ):
        assert code in top, code


def test_assign_reasons_are_in_the_users_language(tmp_path, api_db):
    import shutil

    db = shutil.copyfile(api_db, tmp_path / "p.gpkg")
    store = open_store(db)
    communities = store.read_layer("communities")["community"].tolist()
    roster = tmp_path / "r.csv"
    roster.write_text(f"工号,姓名,社区\nW900,张三,{communities[0]}\n", encoding="utf-8")
    gridmap("workers", "import", roster, "--db", db, "--replace")
    chinese = gridmap("workers", "assign", "--db", db)
    assert "本社区没有网格员" in chinese.stdout
    assert "no worker" not in chinese.stdout
    english = strict_json(gridmap("workers", "assign", "--db", db, "--json", lang="en").stdout)
    assert english["without_worker"][0]["reason"] == "no worker in this community"


def test_commands_that_write_a_file_report_it_as_json_when_asked(db, tmp_path):
    exported = gridmap("export", tmp_path / "g.gpkg", "--db", db, "--layer", "grids", "--json")
    assert exported.exit_code == 0, exported.output
    assert strict_json(exported.stdout)["layer"] == "grids"
    ledger = gridmap("ledger", tmp_path / "台账.xlsx", "--db", db, "--json")
    assert strict_json(ledger.stdout)["grids"] == strict_json(exported.stdout)["features"]
    wrong = gridmap("ledger", tmp_path / "台账.csv", "--db", db)
    assert wrong.exit_code == 2
    assert wrong.stderr.startswith("错误：网格台账是 Excel 文件")


def test_a_roster_comes_from_stdin_and_a_map_goes_to_stdout(tmp_path, api_db):
    import shutil

    db = shutil.copyfile(api_db, tmp_path / "p.gpkg")
    store = open_store(db)
    roster = store.read_table(workers_table)
    store.engine.dispose()
    lines = [
        "工号,姓名,社区",
        *(f"{r.worker_id},{r.name},{r.community}" for r in roster.itertuples()),
    ]
    imported = gridmap("workers", "import", "-", "--db", db, "--json", stdin="\n".join(lines))
    assert imported.exit_code == 0, imported.output
    assert strict_json(imported.stdout)["workers"] == len(roster)
    page = gridmap("map", "-", "--db", db, "--basemap", "none")
    assert page.exit_code == 0, page.output
    assert page.stdout.lstrip().lower().startswith("<!doctype html>")
    assert page.stderr == ""
    assert not Path("-").exists()


def test_a_reader_that_stops_early_ends_the_command_quietly(db, tmp_path):
    # as `gridmap locate ... --output - | head -1` does: the pipe closes after the first line,
    # while megabytes of rows are still to come
    points = tmp_path / "points.csv"
    points.write_text("lon,lat\n" + "102.72,25.05\n" * 100_000, encoding="utf-8")
    process = subprocess.Popen(
        [str(GRIDMAP), "locate", "--input", str(points), "--output", "-", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "GRIDMAP_LANG": "en"},
    )
    assert process.stdout.readline().startswith(b'"lon"')
    process.stdout.close()
    error = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141  # as a command killed by SIGPIPE ends
    assert "internal error" not in error
    assert "Traceback" not in error
