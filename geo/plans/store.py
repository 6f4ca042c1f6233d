"""Plans: versions of the district's grids, from a partition or a planner's edits.

A plan is a full assignment of buildings to grid codes plus grid facts (community, worker, lock,
size, households, diameter, status) and a polygon per grid, stored in the project file:

* ``plans``: one row per version (draft / published / archived), parent, author, note, revision;
* ``assignments``: plan, building, grid code;
* ``plan_grids`` (a layer): plan, grid code, facts, polygon (union of the buildings' cells);
* ``grid_codes``: every code ever issued and the buildings it first named (never reused);
* ``grids`` (a layer): a copy of the published plan's grids, the layer QGIS and exports read.

This module reads plans and builds and saves their grids. Publishing one is
:mod:`geo.plans.publish`, comparing two :mod:`geo.plans.diff`, a planner's edits
:mod:`geo.plans.editing`; the partition that makes a plan is the use case
:mod:`geo.usecases.partition`, the roster that staffs it :mod:`geo.people.roster`, and the locate
index kept for the published one :mod:`geo.locate.kept`.

Examples
--------
>>> from geo.storage.store import open_store  # doctest: +SKIP
>>> from geo.usecases.partition import partition_project  # doctest: +SKIP
>>> plan_id = partition_project(open_store("gridmap.gpkg")).plan_id  # doctest: +SKIP
>>> load_plan(store, plan_id).grids[["community", "n_buildings"]].head()  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Connection

from geo.errors import NotFound
from geo.grids import boundaries, codes, partition
from geo.people.workers import assign_workers
from geo.storage.store import Store, assignments, grid_codes, now_iso, plans

#: the facts a grid carries in ``plan_grids`` and ``grids``, in this order
GRID_COLUMNS = (
    "grid_code",
    "community",
    "worker_id",
    "worker",
    "locked",
    "n_buildings",
    "households",
    "area_m2",
    "diameter_m",
    "contiguous",
    "status",
    "reason",
    "reason_zh",
)


@dataclass
class Plan:
    """One version of the district's grids."""

    plan_id: int
    status: str
    revision: int
    parent_id: int | None
    author: str
    note: str
    created_at: str
    min_size: int
    max_size: int
    max_households: int | None
    labels: pd.Series  # building_id -> grid_code
    grids: gpd.GeoDataFrame  # indexed by grid_code: GRID_COLUMNS[1:] + geometry


@dataclass
class District:
    """The project's buildings (indexed by ``building_id``), their cells and the settings."""

    buildings: gpd.GeoDataFrame
    cells: gpd.GeoSeries
    community_numbers: dict[str, int]
    division_code: str
    division_code_is_default: bool


# -- reading -----------------------------------------------------------------------------------


def load_district(store: Store, *, conn: Connection | None = None) -> District:
    """Buildings, cells and numbering settings of the project."""
    buildings = store.read_layer("buildings", conn=conn).set_index("building_id", drop=False)
    buildings.index.name = None
    cells = store.read_layer("cells", conn=conn).set_index("building_id").geometry
    cells = cells.reindex(buildings.index)
    communities = store.read_layer("communities", columns=["community", "number"], conn=conn)
    code, is_default = division_code(store)
    return District(
        buildings=buildings,
        cells=gpd.GeoSeries(cells.values, index=buildings.index, crs=buildings.crs),
        community_numbers=dict(
            zip(communities["community"], communities["number"].astype(int), strict=True)
        ),
        division_code=code,
        division_code_is_default=is_default,
    )


def division_code(store: Store) -> tuple[str, bool]:
    """The 9-digit division code the grid codes start with, and whether it is the placeholder
    (:data:`geo.grids.codes.PLACEHOLDER_DIVISION_CODE`, for a project without one: the caller warns)."""
    code = store.get_setting("division_code")
    return (code, False) if code else (codes.PLACEHOLDER_DIVISION_CODE, True)


def published_plan_id(store: Store, *, conn: Connection | None = None) -> int | None:
    with store.reading(conn) as c:
        return c.execute(
            sa.select(sa.func.max(plans.c.plan_id)).where(plans.c.status == "published")
        ).scalar()


def plan_row(store: Store, plan_id: int, *, conn: Connection | None = None) -> dict[str, Any]:
    with store.reading(conn) as c:
        row = c.execute(sa.select(plans).where(plans.c.plan_id == plan_id)).mappings().first()
    if row is None:
        raise NotFound(
            f"no plan {plan_id}; 'gridmap plan list' shows the plans", zh=f"没有方案 {plan_id}"
        )
    return dict(row)


def list_plans(store: Store) -> pd.DataFrame:
    """Every plan with its number of grids and flagged grids."""
    table = store.read_table(plans)
    if table.empty or not store.has_layer("plan_grids"):
        return table
    grids = store.read_layer("plan_grids", columns=["plan_id", "status"])
    counts = grids.groupby("plan_id").agg(
        grids=("status", "size"), flagged=("status", lambda s: int((s != "ok").sum()))
    )
    return table.merge(counts, left_on="plan_id", right_index=True, how="left")


def load_plan(store: Store, plan_id: int | None = None, *, conn: Connection | None = None) -> Plan:
    """A plan (the published one when ``plan_id`` is None)."""
    if plan_id is None:
        plan_id = published_plan_id(store, conn=conn)
        if plan_id is None:
            raise NotFound(
                "no published plan yet; run 'gridmap partition' first",
                zh="尚无已发布的网格方案，请先运行 gridmap partition",
            )
    row = plan_row(store, plan_id, conn=conn)
    table = store.read_table(assignments, where={"plan_id": plan_id}, conn=conn)
    labels = table.set_index("building_id")["grid_code"]
    grids = store.read_layer("plan_grids", where={"plan_id": plan_id}, conn=conn)
    grids = grids.drop(columns="plan_id").set_index("grid_code")
    grids.index.name = None
    return Plan(
        plan_id=plan_id,
        status=row["status"],
        revision=row["revision"],
        parent_id=row["parent_id"],
        author=row["author"],
        note=row["note"],
        created_at=row["created_at"],
        min_size=row["min_size"],
        max_size=row["max_size"],
        max_households=row["max_households"],
        labels=labels,
        grids=grids,
    )


# -- building grids ------------------------------------------------------------------------------


def grid_facts(
    district: District,
    labels: pd.Series,
    *,
    min_size: int,
    max_size: int,
    max_households: int | None,
    adjacency: Any = None,
    centroids: np.ndarray | None = None,
) -> pd.DataFrame:
    """The facts of every grid of a labelling (building_id -> key), indexed by key."""
    report = partition.grid_report(
        district.buildings,
        labels.reindex(district.buildings.index),
        adjacency=adjacency,
        min_size=min_size,
        max_size=max_size,
        max_households=max_households,
        centroids=centroids,
    )
    return report.set_index("grid_key")


@dataclass(frozen=True)
class Inherited:
    """What a new labelling's grids take over: the ``previous`` codes by their buildings (a grid
    with the same buildings keeps its code), the ``used`` codes (never issued again), the
    ``workers`` by code (kept by a grid whose code stays) and the ``locked`` codes."""

    previous: Mapping[frozenset, str] = field(default_factory=dict)
    used: AbstractSet[str] = frozenset()
    workers: Mapping[str, str] = field(default_factory=dict)
    locked: AbstractSet[str] = frozenset()


def coded_grids(
    district: District,
    labels: pd.Series,
    facts: pd.DataFrame,
    *,
    inherited: Inherited,
    roster: pd.DataFrame,
    names: pd.Series,
    polygons: gpd.GeoDataFrame | None = None,
) -> tuple[pd.Series, gpd.GeoDataFrame]:
    """Polygons, stable codes and workers for a labelling by key; returns codes per building too.

    ``roster`` is the workers table and ``names`` their names by worker id. ``polygons``, when
    given, are the labelling's :func:`~geo.grids.boundaries.grid_polygons` made elsewhere (by
    community, on a cluster: ``gridmap partition --workers``).
    """
    if polygons is None:
        polygons = boundaries.grid_polygons(
            district.cells, labels, community=district.buildings["community"]
        )
    members = {key: frozenset(ids) for key, ids in members_by_label(labels).items()}
    grid_code = codes.assign_grid_codes(
        polygons,
        members,
        division_code=district.division_code,
        community_numbers=district.community_numbers,
        previous=inherited.previous,
        used=inherited.used,
    )
    grids = polygons.join(facts.drop(columns=["community", "n_buildings"], errors="ignore"))
    grids["grid_code"] = grid_code
    grids = grids.set_index("grid_code", drop=False)
    grids.index.name = None
    carried = {code: worker for code, worker in inherited.workers.items() if code in grids.index}
    worker_id = (
        assign_workers(grids, roster, current=carried)
        if not roster.empty
        else pd.Series(carried, dtype=object).reindex(grids.index)
    )
    grids["worker_id"] = worker_id.reindex(grids.index).astype(object)
    grids["worker"] = grids["worker_id"].map(names).astype(object)
    grids["locked"] = grids.index.isin(list(inherited.locked))
    return labels.map(grid_code), grids


def _frame_for_layer(grids: gpd.GeoDataFrame, plan_id: int | None = None) -> gpd.GeoDataFrame:
    frame = grids.reset_index(drop=True)
    frame["locked"] = frame["locked"].astype("boolean")
    frame["contiguous"] = frame["contiguous"].astype("boolean")
    frame["households"] = pd.array(frame["households"], dtype="Int64")
    for column in ("worker_id", "worker", "reason", "reason_zh"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    columns = list(GRID_COLUMNS)
    if plan_id is not None:
        frame.insert(0, "plan_id", plan_id)
        columns = ["plan_id", *columns]
    return gpd.GeoDataFrame(frame[columns], geometry=frame.geometry.values, crs=grids.crs)


@dataclass(frozen=True)
class PlanHeader:
    """What a new plan's row records besides its buildings and grids."""

    parent_id: int | None
    author: str
    note: str
    min_size: int
    max_size: int
    max_households: int | None


def save_plan(
    store: Store,
    conn: Connection,
    *,
    labels: pd.Series,
    grids: gpd.GeoDataFrame,
    header: PlanHeader,
) -> int:
    """Write a new draft plan (assignments, grid layer rows, newly issued codes)."""
    plan_id = conn.execute(
        sa.insert(plans).values(
            parent_id=header.parent_id,
            status="draft",
            author=header.author,
            note=header.note,
            created_at=now_iso(),
            revision=0,
            min_size=header.min_size,
            max_size=header.max_size,
            max_households=header.max_households,
        )
    ).inserted_primary_key[0]
    # one bulk write (a prepared statement over tuples, or COPY): not a dict per building
    rows = {"plan_id": plan_id, "building_id": labels.index.tolist(), "grid_code": labels.tolist()}
    store.insert_rows(conn, assignments, pd.DataFrame(rows))
    store.write_layer(
        conn,
        "plan_grids",
        _frame_for_layer(grids, plan_id),
        mode="append",
        description="the grids of every plan version",
    )
    record_codes(conn, labels, plan_id=plan_id, communities=grids["community"])
    return int(plan_id)


def members_by_label(labels: pd.Series) -> dict[Any, np.ndarray]:
    """The index values of each label, labels in sorted order, as ``labels.groupby(labels).groups``
    gives them (missing labels left out), without its Index per group (0.3 s per 36,000 buildings).

    Examples
    --------
    >>> members_by_label(pd.Series(["b", "a", "b", None], index=["x", "y", "z", "w"]))
    {'a': array(['y'], dtype=object), 'b': array(['x', 'z'], dtype=object)}
    """
    position, keys = pd.factorize(labels, sort=True)
    order = np.argsort(position, kind="stable")
    order = order[position[order] >= 0]
    bounds = np.searchsorted(position[order], np.arange(len(keys) + 1))
    ids = labels.index.to_numpy()[order]
    return {
        key: ids[start:end]
        for key, start, end in zip(keys.tolist(), bounds[:-1], bounds[1:], strict=True)
    }


def record_codes(
    conn: Connection, labels: pd.Series, *, plan_id: int, communities: pd.Series
) -> None:
    """Register codes issued for the first time, with the buildings they named."""
    issued = set(conn.execute(sa.select(grid_codes.c.grid_code)).scalars())
    community_of = communities.to_dict()
    rows = []
    for code, ids in members_by_label(labels).items():
        if code not in issued:
            rows.append(
                {
                    "grid_code": code,
                    "community": str(community_of[code]),
                    "members": json.dumps(sorted(map(str, ids)), ensure_ascii=False),
                    "first_plan_id": plan_id,
                    "issued_at": now_iso(),
                }
            )
    if rows:
        conn.execute(sa.insert(grid_codes), rows)


def issued_codes(store: Store, *, conn: Connection | None = None) -> set[str]:
    with store.reading(conn) as c:
        return set(c.execute(sa.select(grid_codes.c.grid_code)).scalars())


def read_buildings_with_grids(store: Store, *, plan_id: int | None = None) -> gpd.GeoDataFrame:
    """The buildings layer with each building's ``grid_code`` in the published (or given) plan."""
    buildings = store.read_layer("buildings")
    if plan_id is None:
        plan_id = store.get_setting("published_plan")
    if plan_id is None:
        buildings["grid_code"] = pd.Series(pd.NA, index=buildings.index, dtype="string")
        return buildings
    table = store.read_table(assignments, where={"plan_id": plan_id})
    codes = table.set_index("building_id")["grid_code"]
    buildings["grid_code"] = buildings["building_id"].map(codes).astype("string")
    return buildings
