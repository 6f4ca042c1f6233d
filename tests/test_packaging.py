"""gridmap as users get it: a wheel built from a clean clone, installed outside the repository.

A checkout hides what the wheel forgets (the catalogue, the feed mappings, the vendored assets
were read from the working tree), so the slow test clones the repository, vendors the assets,
builds the wheel, installs it into a fresh venv in a temporary folder and runs the README's
commands from another folder. The quick tests check that the reference tables are found through
:mod:`geo.reference` and that a shipped feed mapping is found by its name.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from geo.errors import InputError
from geo.incidents import catalogue
from geo.incidents import records as incident_records
from geo.incidents.feeds import IncidentMapping
from geo.reference import reference_dir, reference_file, shipped_mapping
from geo.storage.store import open_store
from maps.offline import check_offline

ROOT = Path(__file__).resolve().parents[1]


def test_the_catalogue_and_code_map_are_read_from_the_shipped_reference_tables():
    assert reference_file("incident_categories.csv") == catalogue.CATALOGUE_PATH
    assert reference_file("legacy_category_map.csv") == catalogue.LEGACY_PATH
    assert reference_dir() == ROOT / "data"  # a checkout reads data/; a wheel its own copy
    assert "06001" in set(catalogue.load_catalogue()["code"])  # 私搭乱建


def test_a_shipped_feed_mapping_is_found_by_its_name():
    by_name = IncidentMapping.from_file("boston311")
    by_path = IncidentMapping.from_file(ROOT / "data" / "incident_mappings" / "boston311.json")
    assert by_name == by_path
    assert by_name.lon_col == "longitude"
    assert shipped_mapping("../pyproject") is None


def test_an_unknown_mapping_is_refused_with_the_names_of_the_shipped_ones():
    with pytest.raises(InputError, match="cannot read the column mapping") as raised:
        IncidentMapping.from_file("chicago311")
    assert "boston311" in (raised.value.hint or "")


def run(command: list[str | Path], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run ``command``; its output, or a failure that shows it."""
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def build_wheel(work: Path) -> Path:
    """The wheel of the committed tree: a clean clone, vendored, built (what CI ships)."""
    clone = work / "clone"
    run(["git", "clone", "--quiet", "--no-local", ROOT, clone], cwd=work)
    assert not (clone / "maps" / "assets" / "vendor").exists()  # built, never committed
    run([sys.executable, "maps/assets/vendor.py"], cwd=clone)
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work / "dist", clone],
        cwd=work,
    )
    (wheel,) = (work / "dist").glob("gridmap-*.whl")
    return wheel


@pytest.mark.slow
def test_the_wheel_from_a_clean_clone_runs_the_demo_an_import_and_an_offline_map(
    tmp_path, shared_data
):
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "geo/reference/incident_categories.csv" in names
    assert "geo/reference/incident_mappings/boston311.json" in names
    assert "maps/assets/vendor/leaflet/dist/leaflet.js" in names
    assert "maps/assets/vendor/swagger-ui-dist/swagger-ui-bundle.js" in names

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=tmp_path)
    run([venv / "bin" / "python", "-m", "pip", "install", "-q", wheel], cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRIDMAP_", "PYTHON"))}
    installed = run(
        [venv / "bin" / "python", "-c", "import geo, maps; print(geo.__file__, maps.__file__)"],
        cwd=elsewhere,
        env=env,
    )
    assert str(ROOT) not in installed
    assert str(venv) in installed

    gridmap = venv / "bin" / "gridmap"
    run([gridmap, "demo", "--out", "d"], cwd=elsewhere, env=env)
    assert (elsewhere / "d" / "map.html").is_file()
    check_offline((elsewhere / "d" / "map-offline.html").read_text(encoding="utf-8"))

    feed = shared_data / "boston311_100.csv"
    command = ["incidents", "import", feed, "--db", "cases.gpkg", "--mapping", "boston311"]
    run([gridmap, *command, "--source", "boston311"], cwd=elsewhere, env=env)
    stored = incident_records.list_incidents(open_store(elsewhere / "cases.gpkg"))
    assert len(stored) == 100
    assert int(stored["geometry"].notna().sum()) == 81  # 19 sit on Boston's fallback point

    run([gridmap, "map", "x.html", "--offline", "--db", "d/gridmap.gpkg"], cwd=elsewhere, env=env)
    page = (elsewhere / "x.html").read_text(encoding="utf-8")
    check_offline(page)
    assert "L.Control.Locate" in page  # Leaflet and its plugins inlined from the wheel
