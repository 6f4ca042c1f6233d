"""The command line starts without the heavy libraries (issue #16).

Importing geopandas, momepy, libpysal and numba took ``gridmap --help`` five seconds; now each
command imports what it runs. These tests run the CLI in a fresh interpreter and look at
``sys.modules``, so that an import added at the top of a CLI module fails here, not in a user's
terminal. Timings are measured by ``bench/startup.py`` (docs/benchmarks.md), not asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "geopandas", "momepy", "libpysal", "numba", "shapely", "folium")
#: what even a command that locates points must not import: the partition and map engines
ENGINES = ("momepy", "libpysal", "numba", "folium", "scipy")

RUN = """
import json, sys
from api.cli import app
argv, watched = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.argv = ["gridmap", *argv]
code = 0
try:
    app()
except SystemExit as done:
    code = done.code
loaded = sorted(m for m in watched if m in sys.modules)
print(json.dumps({"exit": code, "loaded": loaded}), file=sys.stderr)
"""


def run_cli(argv: list[str], watched: tuple[str, ...]) -> tuple[int, list[str], str]:
    """Exit code, the watched modules the run imported, and stdout, from a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", RUN, json.dumps(argv), json.dumps(watched)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"GRIDMAP_LANG": "en", "PATH": "/usr/bin:/bin"},
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["exit"], report["loaded"], done.stdout


def test_importing_the_command_line_imports_no_heavy_library():
    code = f"import sys, api.cli; print([m for m in {HEAVY!r} if m in sys.modules])"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        ["-h"],
        ["locate", "--help"],
        ["partition", "-h"],
        ["plan", "move", "--help"],
        ["incidents", "import", "-h"],
        ["token", "create", "--help"],
        ["demo", "--help"],
        ["map", "-h"],
    ],
)
def test_help_and_version_import_no_heavy_library(argv):
    exit_code, loaded, stdout = run_cli(argv, HEAVY)
    assert exit_code in (0, None)
    assert loaded == []
    assert stdout.strip()


def test_minus_h_is_help_on_every_level():
    for argv in (["-h"], ["locate", "-h"], ["plan", "move", "-h"]):
        _, _, short = run_cli(argv, ())
        _, _, long = run_cli([*argv[:-1], "--help"], ())
        assert short == long
        assert "Usage" in short


def test_version_names_the_installed_package():
    _, _, stdout = run_cli(["--version"], ())
    assert stdout.startswith("gridmap ")
    assert stdout.split()[1][0].isdigit()


def test_locating_one_point_loads_no_partition_or_map_engine(kunming_project_base):
    exit_code, loaded, stdout = run_cli(
        ["locate", "102.72", "25.072", "--db", str(kunming_project_base), "--crs", "wgs84"], ENGINES
    )
    assert exit_code in (0, None), stdout
    assert loaded == []
    assert json.loads(stdout)["grid_code"]
