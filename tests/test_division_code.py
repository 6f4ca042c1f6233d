"""Grid codes never borrow another place's division code (issue #14, item 7).

A Shanghai plan once got Changshu's codes (320581104...) because that was the default. A project
without a division code now codes its grids under the placeholder 000000000, says so on the plan,
and ``gridmap plan recode`` renumbers them once the real code is set, numbers unchanged.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app
from geo.plans import store as plans
from geo.storage.store import open_store

runner = CliRunner()


def gridmap(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args], env={"GRIDMAP_LANG": "en"})


def codes_in(db: Path, table: str) -> list[str]:
    with sqlite3.connect(db) as conn:
        return sorted(row[0] for row in conn.execute(f'SELECT grid_code FROM "{table}"'))


def test_a_plan_without_a_division_code_carries_the_placeholder_and_says_so(kunming_project):
    plan = plans.load_plan(open_store(kunming_project))
    assert plan.grids.index.str.startswith("000000000").all()
    assert "placeholder division code" in plan.note
    assert not any(code.startswith("320581") for code in codes_in(kunming_project, "grid_codes"))


def test_partition_without_a_division_code_tells_how_to_set_it(kunming_project):
    result = gridmap("partition", "--db", kunming_project)
    assert result.exit_code == 0, result.output
    assert "gridmap settings set division_code" in result.output
    assert "gridmap plan recode" in result.output


def test_the_placeholder_and_a_made_up_province_are_refused_as_division_codes(kunming_project):
    for value, message in [("000000000", "placeholder"), ("990101001", "province")]:
        result = gridmap("settings", "set", "division_code", value, "--db", kunming_project)
        assert result.exit_code == 2, result.output
        assert message in result.output
    assert open_store(kunming_project).get_setting("division_code") is None


def test_recode_without_a_division_code_is_refused_and_changes_nothing(kunming_project):
    before = codes_in(kunming_project, "assignments")
    result = gridmap("plan", "recode", "--db", kunming_project)
    assert result.exit_code == 2
    assert "gridmap settings set division_code" in result.output
    assert codes_in(kunming_project, "assignments") == before


def test_recode_renumbers_every_grid_under_the_new_prefix_with_numbers_unchanged(
    kunming_project,
):
    before = {table: codes_in(kunming_project, table) for table in ("assignments", "grids")}
    result = gridmap("settings", "set", "division_code", "530102001", "--db", kunming_project)
    assert result.exit_code == 0, result.output
    assert "gridmap plan recode" in result.output
    result = gridmap("plan", "recode", "--db", kunming_project)
    assert result.exit_code == 0, result.output
    assert "renumbered 33 grid codes from 000000000 to 530102001" in result.output
    for table, codes in before.items():
        assert codes_in(kunming_project, table) == sorted("530102001" + c[9:] for c in codes)
    plan = plans.load_plan(open_store(kunming_project))
    assert "placeholder" not in plan.note
    again = gridmap("plan", "recode", "--db", kunming_project)
    assert "already carries 530102001" in again.output


def test_a_partition_after_recode_keeps_the_recoded_codes(kunming_project):
    gridmap("settings", "set", "division_code", "530102001", "--db", kunming_project)
    gridmap("plan", "recode", "--db", kunming_project)
    recoded = set(plans.load_plan(open_store(kunming_project)).grids.index)
    result = gridmap("partition", "--publish", "--db", kunming_project)
    assert result.exit_code == 0, result.output
    assert "placeholder" not in result.output
    assert set(plans.load_plan(open_store(kunming_project)).grids.index) == recoded
