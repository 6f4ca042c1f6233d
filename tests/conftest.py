"""Shared fixtures: the real data in ``../shared/data`` and fresh project files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests explore new examples on every developer run; in CI they replay a fixed set, so
# that a landing is decided by the code, not by the draw (a failure found locally gets an
# @example so that CI keeps checking it).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

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


def _checkpointed_copy(source: Path, target: Path) -> Path:
    """Copy a project file whole (its WAL folded in first), so a test may change the copy."""
    import shutil

    from geo.storage.store import open_store

    store = open_store(source)
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    store.engine.dispose()
    shutil.copy(source, target)
    return target


def _built_project(folder: Path, source: Path, **options) -> Path:
    from geo.storage.store import open_store
    from geo.usecases import district as project
    from geo.usecases.partition import partition_project

    db = folder / "project.gpkg"
    store = open_store(db, create=True)
    project.import_buildings(store, source, options=project.ReadOptions(**options))
    partition_project(store, author="test")
    store.engine.dispose()
    return db


@pytest.fixture(scope="session")
def kunming_project_base(tmp_path_factory, shared_data) -> Path:
    """Kunming's 16 compounds imported and partitioned (a published plan); do not change it."""
    return _built_project(
        tmp_path_factory.mktemp("kunming"),
        shared_data / "kunming_buildings.geojson",
        community_field="community",
    )


@pytest.fixture(scope="session")
def suzhou_project_base(tmp_path_factory, shared_data) -> Path:
    """Suzhou's 8,242 footprints, communities cut as clusters, partitioned; do not change it."""
    return _built_project(
        tmp_path_factory.mktemp("suzhou"), shared_data / "suzhou_gusu_buildings.geojson"
    )


@pytest.fixture
def kunming_project(kunming_project_base, tmp_path) -> Path:
    """A private copy of the Kunming project, free to change."""
    return _checkpointed_copy(kunming_project_base, tmp_path / "kunming.gpkg")


@pytest.fixture
def suzhou_project(suzhou_project_base, tmp_path) -> Path:
    """A private copy of the Suzhou project, free to change."""
    return _checkpointed_copy(suzhou_project_base, tmp_path / "suzhou.gpkg")


@pytest.fixture(scope="module")
def api_db(tmp_path_factory, shared_data) -> Path:
    """Kunming imported, partitioned and staffed, one copy per test module (API tests write to it)."""
    from api_support import project_copy

    return project_copy(
        tmp_path_factory,
        shared_data / "kunming_buildings.geojson",
        name="kunming",
        community_field="community",
    )


@pytest.fixture
def staffed(tmp_path_factory, shared_data) -> Path:
    """A private Kunming project with two workers per community and every grid staffed."""
    from api_support import project_copy

    return project_copy(
        tmp_path_factory,
        shared_data / "kunming_buildings.geojson",
        name="kunming",
        community_field="community",
    )


@pytest.fixture(scope="module")
def api_tokens(api_db: Path) -> dict[str, str]:
    """One token per role on ``api_db``, named after the role."""
    from api_support import role_tokens

    return role_tokens(api_db)


@pytest.fixture(scope="session")
def postgis_url() -> Iterator[str]:
    """A throw-away PostgreSQL + PostGIS cluster for the session (tests/pgcluster.py): its URL.

    Fails, never skips, where the server is not installed: a PostGIS test skipped by default
    would be a defect nobody sees.
    """
    import pgcluster

    try:
        with pgcluster.throwaway_cluster() as url:
            yield url
    except pgcluster.ClusterUnavailable as error:
        pytest.fail(str(error), pytrace=False)
