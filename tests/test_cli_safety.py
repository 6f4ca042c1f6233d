"""The CLI never destroys what it was given, and prints data as data (issue 13, items 4, 5, 11, 15).

Every command that writes a file refuses the project file (and its -wal/-shm) and its own input,
and writes through a temporary file renamed into place, so a failure leaves the old file intact.
Tables and messages show notes and names verbatim: rich markup in data is never interpreted.
A backup is taken with SQLite's online backup API, so writes still in the WAL are in it.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from api.cli import app
from geo.storage.store import open_store

runner = CliRunner()


def gridmap(*args: object, lang: str = "en"):
    return runner.invoke(app, [str(a) for a in args], env={"GRIDMAP_LANG": lang, "COLUMNS": "400"})


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_exporting_onto_the_project_file_is_refused_and_the_project_is_unchanged(
    kunming_project,
):
    before = digest(kunming_project)
    result = gridmap("export", kunming_project, "--layer", "grids", "--db", kunming_project)
    assert result.exit_code == 2, result.output
    assert result.output.strip().startswith("Error: refusing to write")
    assert "project file" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert digest(kunming_project) == before
    assert open_store(kunming_project).count("buildings") == 140


def test_exporting_onto_the_project_files_wal_is_refused(kunming_project):
    wal = Path(f"{kunming_project}-wal")
    result = gridmap("export", wal, "--db", kunming_project)
    assert result.exit_code == 2, result.output
    assert "project file" in result.output


def test_exporting_through_another_name_for_the_project_file_is_refused(kunming_project):
    alias = kunming_project.parent / "alias.gpkg"
    alias.hardlink_to(kunming_project)
    before = digest(kunming_project)
    result = gridmap("export", alias, "--layer", "grids", "--db", kunming_project)
    assert result.exit_code == 2, result.output
    assert digest(kunming_project) == before


def test_a_diff_map_onto_the_project_file_is_refused_and_the_project_is_unchanged(
    kunming_project,
):
    before = digest(kunming_project)
    result = gridmap("plan", "diff", "1", "1", "--map", kunming_project, "--db", kunming_project)
    assert result.exit_code == 2, result.output
    assert "project file" in result.output
    assert digest(kunming_project) == before
    assert open_store(kunming_project).count("buildings") == 140


def test_a_map_named_like_the_project_file_is_refused(kunming_project, tmp_path):
    db = tmp_path / "project.html"
    kunming_project.rename(db)
    result = gridmap("map", db, "--db", db)
    assert result.exit_code == 2, result.output
    assert "project file" in result.output
    assert open_store(db).count("buildings") == 140


def test_an_export_writes_the_whole_file_and_leaves_no_temporary_files(kunming_project, tmp_path):
    target = tmp_path / "grids.gpkg"
    result = gridmap("export", target, "--layer", "grids", "--db", kunming_project)
    assert result.exit_code == 0, result.output
    import pyogrio

    assert [name for name, _ in pyogrio.list_layers(target)] == ["grids"]
    assert leftovers(tmp_path) == []


def test_a_shapefile_export_renames_all_its_parts_into_place(kunming_project, tmp_path):
    target = tmp_path / "grids.shp"
    result = gridmap("export", target, "--layer", "grids", "--db", kunming_project)
    assert result.exit_code == 0, result.output
    parts = {p.suffix for p in tmp_path.glob("grids.*")}
    assert {".shp", ".shx", ".dbf", ".prj"} <= parts
    assert leftovers(tmp_path) == []


def test_locate_refuses_to_write_its_output_over_its_input(kunming_project, tmp_path):
    points = tmp_path / "points.csv"
    pd.DataFrame({"lon": [102.7] * 3, "lat": [25.04] * 3}).to_csv(points, index=False)
    before = digest(points)
    result = gridmap("locate", "--input", points, "--output", points, "--db", kunming_project)
    assert result.exit_code == 2, result.output
    assert "input" in result.output
    assert digest(points) == before


def test_locate_refuses_to_write_its_output_over_the_project_file(kunming_project, tmp_path):
    points = tmp_path / "points.csv"
    pd.DataFrame({"lon": [102.7], "lat": [25.04]}).to_csv(points, index=False)
    before = digest(kunming_project)
    result = gridmap(
        "locate", "--input", points, "--output", kunming_project, "--db", kunming_project
    )
    assert result.exit_code == 2, result.output
    assert digest(kunming_project) == before


def test_a_failed_locate_leaves_the_earlier_output_whole(kunming_project, tmp_path):
    points, output = tmp_path / "points.csv", tmp_path / "located.csv"
    pd.DataFrame({"x": [102.7], "y": [25.04]}).to_csv(points, index=False)
    output.write_text("earlier,result\n1,2\n", encoding="utf-8")
    result = gridmap("locate", "--input", points, "--output", output, "--db", kunming_project)
    assert result.exit_code == 2, result.output
    assert "no column" in result.output
    assert output.read_text(encoding="utf-8") == "earlier,result\n1,2\n"
    assert leftovers(tmp_path) == []


def test_importing_the_project_file_into_itself_is_refused(kunming_project):
    before = digest(kunming_project)
    result = gridmap("import", kunming_project, "--replace", "--db", kunming_project)
    assert result.exit_code == 2, result.output
    assert "project file itself" in result.output
    assert digest(kunming_project) == before


def test_the_demo_never_deletes_an_input_folder_it_did_not_write(tmp_path):
    mine = tmp_path / "input" / "my-survey.csv"
    mine.parent.mkdir()
    mine.write_text("keep me\n", encoding="utf-8")
    result = gridmap("demo", "--out", tmp_path)
    assert result.exit_code == 4, result.output
    assert mine.read_text(encoding="utf-8") == "keep me\n"


HOSTILE_NOTES = (
    "修正 [/] 北泰花园",
    "[v2] 第二版",
    "[link=https://example.com]点我[/link]",
    "[bold red]加粗[/bold red] :warning:",
)


def test_plan_list_shows_notes_with_markup_verbatim(kunming_project):
    for note in HOSTILE_NOTES:
        copied = gridmap("plan", "copy", "1", "--note", note, "--db", kunming_project)
        assert copied.exit_code == 0, copied.output
    listed = gridmap("plan", "list", "--db", kunming_project)
    assert listed.exit_code == 0, listed.output
    for note in HOSTILE_NOTES:
        assert note in listed.output
    assert "\x1b]8;" not in listed.output  # no terminal hyperlink


def test_token_names_with_markup_are_listed_verbatim(kunming_project):
    name = "ops [/] [link=https://example.com]x[/link]"
    created = gridmap(
        "token", "create", "--role", "viewer", "--name", name, "--db", kunming_project
    )
    assert created.exit_code == 0, created.output
    listed = gridmap("token", "list", "--db", kunming_project)
    assert listed.exit_code == 0, listed.output
    assert name in listed.output


def test_a_backup_holds_writes_still_in_the_wal_and_opens_as_a_project(kunming_project, tmp_path):
    writer = sqlite3.connect(kunming_project)
    writer.execute("PRAGMA journal_mode = WAL")
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("INSERT INTO settings (key, value) VALUES ('backup_probe', '\"in the wal\"')")
    writer.commit()
    assert Path(f"{kunming_project}-wal").stat().st_size > 0
    target = tmp_path / "backup.gpkg"
    try:
        result = gridmap("backup", target, "--db", kunming_project)
    finally:
        writer.close()
    assert result.exit_code == 0, result.output
    copy = open_store(target)
    assert copy.get_setting("backup_probe") == "in the wal"
    assert copy.count("buildings") == 140
    assert leftovers(tmp_path) == []


def test_a_backup_over_the_project_file_is_refused(kunming_project):
    before = digest(kunming_project)
    result = gridmap("backup", kunming_project, "--db", kunming_project)
    assert result.exit_code == 2, result.output
    assert digest(kunming_project) == before
