"""The locate index kept in the project file answers exactly as one built afresh (issue #16).

Publishing keeps the plan's polygons and ids (``locate_indexes``); the first large batch keeps
the cell tables. These tests hold the kept index to the answers of :meth:`GridIndex.build` on
the real Suzhou and Kunming footprints, on both lookup paths (the STRtree for small batches, the
cell tables for large ones), and check that a kept row is only used for the plan it was built
from: an edited and republished plan, or a worker given after publishing, shows at once.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa

from geo.locate.engine import GridIndex
from geo.locate.kept import _unpack, build_index, grid_index
from geo.people import roster as rosters
from geo.people.workers import read_roster
from geo.plans import editing
from geo.plans import publish as publishing
from geo.plans import store as plans
from geo.storage.store import Store, locate_indexes, open_store
from geo.usecases import staffing

COMMUNITY = "北泰花园"


def kept_rows(store: Store) -> list[tuple]:
    with store.reading() as conn:
        return conn.execute(
            sa.select(
                locate_indexes.c.plan_id,
                locate_indexes.c.revision,
                locate_indexes.c.built_at,
                locate_indexes.c.cells.is_not(None),
            )
        ).all()


def fresh_index(store: Store, plan_id: int | None = None) -> GridIndex:
    """The index as ``grid_index`` built it before anything was kept."""
    plan = plans.load_plan(store, plan_id)
    buildings = store.read_layer("buildings", columns=["building_id", "community"])
    grids = plan.grids.reset_index(names="grid_code")
    return GridIndex.build(buildings, grids[["grid_code", "community", "worker", "geometry"]])


def random_points(index: GridIndex, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points over the index's extent and 300 m around it (inside, between, outside)."""
    minx, miny, maxx, maxy = index.buildings.extent
    rng = np.random.default_rng(seed)
    return rng.uniform(minx - 300, maxx + 300, n), rng.uniform(miny - 300, maxy + 300, n)


def test_a_published_plan_keeps_its_polygons_and_the_first_batch_its_cell_tables(
    kunming_project,
):
    store = open_store(kunming_project)
    draft = editing.copy_plan(store, plans.published_plan_id(store))
    publishing.publish_plan(store, draft, revision=0, override_reason="测试")
    assert [(row[0], row[3]) for row in kept_rows(store)] == [(draft, False)]
    grid_index(store, cells=True)
    assert [(row[0], row[3]) for row in kept_rows(store)] == [(draft, True)]


def test_the_kept_index_answers_exactly_like_a_fresh_one_on_suzhou(suzhou_project):
    store = open_store(suzhou_project)
    fresh = fresh_index(store)
    grid_index(store, cells=True)  # the first batch: cell tables built and kept
    kept = grid_index(store, cells=True)  # loaded, nothing built
    assert kept.has_cells
    x, y = random_points(fresh, 300_000, seed=16)
    pd.testing.assert_frame_equal(kept.locate(x, y), fresh.locate(x, y))
    small = grid_index(store)  # without cell tables: the STRtree path
    assert not small.has_cells
    pd.testing.assert_frame_equal(
        small.locate(x[:5000], y[:5000]), fresh.locate(x[:5000], y[:5000])
    )
    for k in range(50):
        assert small.locate_point(x[k], y[k]) == fresh.locate_point(x[k], y[k])


def test_an_edited_and_republished_plan_is_located_in_its_new_grids(kunming_project):
    store = open_store(kunming_project)
    draft = editing.copy_plan(store, plans.published_plan_id(store))
    grids = plans.load_plan(store, draft).grids
    a, b = grids[grids["community"] == COMMUNITY].sort_values("n_buildings").index[:2]
    editing.apply_edit(store, draft, "merge", {"grids": [a, b]}, revision=0)
    publishing.publish_plan(store, draft, revision=1, override_reason="测试")
    assert [row[:2] for row in kept_rows(store)] == [(draft, 1)]
    kept, fresh = grid_index(store, cells=True), fresh_index(store)
    x, y = random_points(fresh, 50_000, seed=3)
    pd.testing.assert_frame_equal(kept.locate(x, y), fresh.locate(x, y))
    assert a not in set(kept.grid_codes) or b not in set(kept.grid_codes)


def test_a_row_kept_for_another_revision_is_not_used_but_rebuilt(kunming_project):
    store = open_store(kunming_project)
    with store.transaction() as conn:
        conn.execute(sa.update(locate_indexes).values(revision=99))
    index = grid_index(store)
    pd.testing.assert_frame_equal(
        index.locate(*random_points(index, 2000, seed=5)),
        fresh_index(store).locate(*random_points(index, 2000, seed=5)),
    )
    assert [row[1] for row in kept_rows(store)] == [0]  # kept again, for the plan as it is


def test_a_worker_given_after_publishing_is_located_without_rebuilding(kunming_project, tmp_path):
    store = open_store(kunming_project)
    (before,) = kept_rows(store)
    communities = sorted(set(store.read_layer("communities")["community"]))
    roster = tmp_path / "roster.csv"
    pd.DataFrame(
        {
            "工号": [f"W{k:02d}" for k in range(len(communities))],
            "姓名": [f"网格员{k}" for k in range(len(communities))],
            "手机": ["13800000000"] * len(communities),
            "社区": communities,
        }
    ).to_csv(roster, index=False)
    rosters.import_roster(store, read_roster(roster, communities=communities))
    staffing.fill_workers(store, author="test")
    kept, fresh = grid_index(store), fresh_index(store)
    assert kept_rows(store) == [before]  # the polygons did not change: nothing rebuilt
    assert set(kept.workers) - {None}, "the roster gave the grids workers"
    assert kept.workers.tolist() == fresh.workers.tolist()
    x, y = random_points(fresh, 2000, seed=7)
    pd.testing.assert_frame_equal(kept.locate(x, y), fresh.locate(x, y))


def test_build_index_is_what_the_published_plan_held_before_any_was_kept(kunming_project):
    store = open_store(kunming_project)
    built, fresh = build_index(store, plans.published_plan_id(store)), fresh_index(store)
    x, y = random_points(fresh, 2000, seed=11)
    pd.testing.assert_frame_equal(built.locate(x, y), fresh.locate(x, y))


def test_the_index_a_partition_keeps_from_its_frames_is_the_one_its_layers_give(suzhou_project):
    """The partition keeps the index of the frames it has just written (not read back): the
    same ids, extents and polygons as an index built from the layers (a grid may be a Polygon
    where the layer holds it as a one-part MultiPolygon), hence the same cell tables."""
    store = open_store(suzhou_project)
    kept = grid_index(store)
    built = build_index(store, plans.published_plan_id(store))
    assert kept.building_ids.tolist() == built.building_ids.tolist()
    assert kept.grid_codes.tolist() == built.grid_codes.tolist()
    assert kept.bounds_wgs84 == built.bounds_wgs84
    assert kept.buildings.extent == built.buildings.extent
    assert shapely.equals_exact(kept.buildings.geoms, built.buildings.geoms, tolerance=0).all()
    assert shapely.equals(kept.grids.geoms, built.grids.geoms).all()
    assert kept.cells_to_bytes() == built.cells_to_bytes()


def test_a_row_kept_by_an_earlier_version_in_zlib_is_still_read(kunming_project):
    store = open_store(kunming_project)
    grid_index(store, cells=True)  # polygons and cell tables kept
    with store.transaction() as conn:
        data, cells = conn.execute(
            sa.select(locate_indexes.c.index_data, locate_indexes.c.cells)
        ).one()
        conn.execute(
            sa.update(locate_indexes).values(
                index_data=zlib.compress(_unpack(data), 1), cells=zlib.compress(_unpack(cells), 1)
            )
        )
    before = kept_rows(store)
    index = grid_index(store, cells=True)
    assert index.has_cells
    assert kept_rows(store) == before  # read as it was, nothing rebuilt
    x, y = random_points(index, 30_000, seed=12)
    pd.testing.assert_frame_equal(index.locate(x, y), fresh_index(store).locate(x, y))
