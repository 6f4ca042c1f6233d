"""The ``gridmap`` command line as a whole: every command has help, errors never show a traceback."""

from __future__ import annotations

import typer
from typer.main import get_command
from typer.testing import CliRunner

from api.cli import app

runner = CliRunner()


def command_paths(command, prefix=()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, sub in getattr(command, "commands", {}).items():
        paths.extend(command_paths(sub, (*prefix, name)))
    return paths


def test_every_command_answers_help_in_both_languages():
    paths = command_paths(get_command(app))
    assert len(paths) > 25  # import, partition, plan ..., incidents ..., serve, token ...
    for path in paths:
        for lang in ("zh", "en"):
            result = runner.invoke(app, [*path, "--help"], env={"GRIDMAP_LANG": lang})
            assert result.exit_code == 0, (path, result.output)
            assert "internal error" not in result.output
            assert "Usage" in result.output


def test_a_missing_project_file_is_one_line_in_chinese_by_default(tmp_path):
    result = runner.invoke(
        app, ["partition", "--db", str(tmp_path / "none.gpkg")], env={"GRIDMAP_LANG": "zh"}
    )
    assert result.exit_code == 3
    assert result.output.strip().startswith("错误：找不到项目文件")
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "none.gpkg").exists()


def test_out_of_range_numbers_are_refused_by_the_parser(kunming_project_base):
    result = runner.invoke(app, ["partition", "--db", str(kunming_project_base), "--min", "0"])
    assert result.exit_code == 2
    assert "--min" in result.output
    assert isinstance(app, typer.Typer)
