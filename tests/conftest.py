"""Shared fixtures: the real data in ``../shared/data`` and fresh project files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GRIDMAP_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real footprints and service requests (``../shared/data``)."""
    if not (SHARED_DATA / "suzhou_gusu_buildings.geojson").exists():
        raise FileNotFoundError(
            f"real test data not found in {SHARED_DATA}; set GRIDMAP_SHARED_DATA to the folder"
        )
    return SHARED_DATA


@pytest.fixture
def suzhou_path(shared_data: Path) -> Path:
    return shared_data / "suzhou_gusu_buildings.geojson"


@pytest.fixture
def kunming_path(shared_data: Path) -> Path:
    return shared_data / "kunming_buildings.geojson"
