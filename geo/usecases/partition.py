"""``gridmap partition`` and ``POST /grids/partition``: the district's buildings into a new plan.

One call does the whole use case: the project's settings fill the sizes not given, the scope is
taken (the whole district, or some communities of the published plan, whose other grids are
copied), the published plan's locked grids are kept, the buildings are partitioned, the grids
coded (a grid with the same buildings keeps its code, a code is never issued twice) and staffed,
and the plan is saved, and published when asked or when it is the district's first, in one
transaction.

With a *mapper* (``gridmap partition --workers N``: a Dask client's map) the grids' polygons, the
unions of each community's cells, are made community by community on a cluster, through the
import's :func:`~geo.usecases.district.map_communities`: the same polygons as in one process. The
engine itself runs in this process: its space-filling curve and the turned curves of its mending
runs span the whole district, so communities partitioned apart would get other grids.

Examples
--------
>>> from geo.storage.store import open_store  # doctest: +SKIP
>>> outcome = partition_project(open_store("gridmap.gpkg"), author="planner")  # doctest: +SKIP
>>> partition_project(store, options=PartitionOptions(communities=["北泰"], seed=3))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import geopandas as gpd
import pandas as pd

from geo.errors import InputError
from geo.grids import partition
from geo.grids.adjacency import building_adjacency, centroid_coordinates
from geo.grids.boundaries import grid_polygons
from geo.locate.engine import GridIndex
from geo.locate.kept import frames_index
from geo.people.roster import roster, worker_names
from geo.plans.publish import publish_in_transaction
from geo.plans.store import (
    District,
    Inherited,
    Plan,
    PlanHeader,
    coded_grids,
    grid_facts,
    issued_codes,
    load_district,
    load_plan,
    members_by_label,
    published_plan_id,
    save_plan,
)
from geo.storage.store import Store
from geo.usecases.district import PLACEHOLDER_NOTE, Mapper, get_settings, map_communities

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class PartitionOptions:
    """What to partition and how.

    Sizes left None come from the project's settings; ``communities`` re-partitions only those
    communities of the published plan (None: the whole district); the same ``seed`` on the same
    buildings gives the same grids.
    """

    min_size: int | None = None
    max_size: int | None = None
    max_households: int | None = None
    communities: Iterable[str] | None = None
    seed: int = 0


@dataclass
class PartitionOutcome:
    """What ``gridmap partition`` reports."""

    plan_id: int
    published: bool
    summary: dict
    grids: pd.DataFrame
    division_code_is_default: bool


def partition_project(
    store: Store,
    *,
    options: PartitionOptions | None = None,
    author: str = "",
    note: str = "",
    publish: bool | None = None,
    progress: Progress | None = None,
    mapper: Mapper | None = None,
) -> PartitionOutcome:
    """Partition the project's buildings into a new plan.

    Without ``options.communities`` the whole district is partitioned; with them, the published
    plan is copied and only those communities are partitioned again. Locked grids of the parent
    plan are kept either way. The plan is published when ``publish`` is True, or when it is None
    and no plan has been published yet (the first partition of a district). ``mapper`` makes
    the grids' polygons community by community (a cluster's map); None: in this process.

    Raises
    ------
    InputError
        Unknown communities, or communities given while no plan is published.
    """
    options = options or PartitionOptions()
    step = progress or (lambda *_: None)
    sizes = _sizes(store, options)
    scope = _scope(store, options.communities)
    labels, facts = _partition(store, scope, sizes, seed=options.seed, step=step)
    step("boundaries", 0, 1)
    by_building, grids = _coded(store, scope, labels, facts, mapper=mapper)
    step("boundaries", 1, 1)
    published = bool(publish if publish is not None else scope.parent is None)
    header = _header(scope, sizes, author=author, note=note)
    # Published: its locate index from the frames at hand, not from the layers just written.
    index = frames_index(scope.district.buildings, grids) if published else None
    plan_id = _save(
        store, by_building, grids, header, seed=options.seed, chosen=scope.chosen, index=index
    )
    return PartitionOutcome(
        plan_id=plan_id,
        published=published,
        summary=partition.partition_summary(
            grids.reset_index(drop=True), min_size=sizes.min_size, max_size=sizes.max_size
        ),
        grids=grids,
        division_code_is_default=scope.district.division_code_is_default,
    )


@dataclass(frozen=True)
class _Sizes:
    """The grid sizes of this partition, the project's settings filled in."""

    min_size: int
    max_size: int
    max_households: int | None


@dataclass
class _Scope:
    """Where a partition starts from: the district, its published plan (the new plan's parent),
    the communities partitioned again (None: all), which buildings those are, the locked codes."""

    district: District
    parent_id: int | None
    parent: Plan | None
    chosen: list[str] | None
    in_scope: pd.Series  # bool per building
    locked_codes: set[str]


def _sizes(store: Store, options: PartitionOptions) -> _Sizes:
    """The options' sizes, the project's settings where they give none."""
    settings = get_settings(store)
    max_households = options.max_households
    if max_households is None:
        max_households = settings.get("max_households")
    return _Sizes(
        min_size=int(options.min_size or settings["min_size"]),
        max_size=int(options.max_size or settings["max_size"]),
        max_households=max_households,
    )


def _scope(store: Store, communities: Iterable[str] | None) -> _Scope:
    """The district, the published plan and the communities to partition, checked."""
    district = load_district(store)
    buildings = district.buildings
    parent_id = published_plan_id(store)
    parent = load_plan(store, parent_id) if parent_id is not None else None
    chosen = _chosen_communities(buildings, communities)
    if chosen is not None and parent is None:
        raise InputError(
            "--community re-partitions communities of the published plan, and there is none yet; "
            "partition the whole district first",
            zh="尚无已发布方案，请先对整个区域运行 gridmap partition",
        )
    in_scope = (
        buildings["community"].isin(chosen)
        if chosen is not None
        else pd.Series(True, index=buildings.index)
    )
    locked_codes = (
        set(parent.grids.index[parent.grids["locked"].fillna(False).astype(bool)])
        if parent
        else set()
    )
    return _Scope(district, parent_id, parent, chosen, in_scope, locked_codes)


def _partition(
    store: Store, scope: _Scope, sizes: _Sizes, *, seed: int, step: Progress
) -> tuple[pd.Series, pd.DataFrame]:
    """The grid of every building (those out of scope keep the parent's) and the grids' facts."""
    buildings = scope.district.buildings
    locked = _locked_buildings(scope)
    step("partition", 0, 1)
    roads = store.read_layer("roads") if store.has_layer("roads") else None
    centroids = centroid_coordinates(buildings)  # once, for the graph and the grid report
    adjacency = building_adjacency(
        buildings, min_size=sizes.min_size, roads=roads, centroids=centroids
    )
    in_scope = scope.in_scope.to_numpy()
    result = partition.partition_buildings(
        buildings[scope.in_scope],
        min_size=sizes.min_size,
        max_size=sizes.max_size,
        max_households=sizes.max_households,
        seed=seed,
        locked=locked,
        adjacency=adjacency[in_scope][:, in_scope],
        progress=lambda done, total: step("partition", done, total),
    )
    labels = result.labels.astype(str)
    if scope.parent is not None and scope.chosen is not None:
        kept = scope.parent.labels.reindex(buildings.index)[~scope.in_scope]
        labels = pd.concat([kept, labels]).reindex(buildings.index)
    facts = grid_facts(
        scope.district,
        labels,
        min_size=sizes.min_size,
        max_size=sizes.max_size,
        max_households=sizes.max_households,
        adjacency=adjacency,
        centroids=centroids,
    )
    return labels, facts


def _locked_buildings(scope: _Scope) -> pd.Series | None:
    """The parent's grid of each building in scope whose grid is locked (None: no locked grid)."""
    if scope.parent is None or not scope.locked_codes:
        return None
    parent_labels = scope.parent.labels.reindex(scope.district.buildings.index)
    return parent_labels[parent_labels.isin(scope.locked_codes) & scope.in_scope]


def _coded(
    store: Store, scope: _Scope, labels: pd.Series, facts: pd.DataFrame, *, mapper: Mapper | None
) -> tuple[pd.Series, gpd.GeoDataFrame]:
    """Codes, polygons and workers of the new grids: a grid with its parent's buildings keeps
    its code and worker, a code is never issued twice, the parent's locked grids stay locked."""
    inherited = Inherited(
        previous=_previous_members(scope.parent),
        used=issued_codes(store),
        workers=_current_workers(scope.parent),
        locked=scope.locked_codes,
    )
    return coded_grids(
        scope.district,
        labels,
        facts,
        inherited=inherited,
        roster=roster(store),
        names=worker_names(store),
        polygons=_polygons(scope.district, labels, mapper=mapper),
    )


def _polygons(district: District, labels: pd.Series, *, mapper: Mapper | None) -> gpd.GeoDataFrame:
    """The grids' polygons, made by community, in the order of one call (first-seen grid)."""
    cells = district.cells
    labels = labels.reindex(cells.index)
    community = district.buildings["community"].reindex(cells.index)
    parts = map_communities(_community_polygons, community, cells, labels, community, mapper=mapper)
    if len(parts) == 1:
        return parts[0]
    return pd.concat(parts).loc[pd.unique(labels.dropna())]


def _community_polygons(
    cells: gpd.GeoSeries, labels: pd.Series, community: pd.Series
) -> gpd.GeoDataFrame:
    """:func:`~geo.grids.boundaries.grid_polygons` of some communities (a task on a cluster)."""
    return grid_polygons(cells, labels, community=community)


def _header(scope: _Scope, sizes: _Sizes, *, author: str, note: str) -> PlanHeader:
    """The new plan's row: its parent (the published plan), author, note and sizes."""
    placeholder = scope.district.division_code_is_default
    return PlanHeader(
        parent_id=scope.parent_id,
        author=author,
        note=_plan_note(note, scope.chosen, placeholder=placeholder),
        min_size=sizes.min_size,
        max_size=sizes.max_size,
        max_households=sizes.max_households,
    )


def _save(
    store: Store,
    by_building: pd.Series,
    grids: gpd.GeoDataFrame,
    header: PlanHeader,
    *,
    seed: int,
    chosen: list[str] | None,
    index: GridIndex | None,
) -> int:
    """Save the plan, log the partition and publish the plan when given its locate ``index``
    (None: a draft): one transaction."""
    flagged = int((grids["status"] != "ok").sum())
    with store.transaction() as conn:
        plan_id = save_plan(store, conn, labels=by_building, grids=grids, header=header)
        store.log(
            conn,
            "partition",
            actor=header.author,
            plan_id=plan_id,
            seed=seed,
            communities=chosen,
            flagged=flagged,
        )
        if index is not None:
            reason = (
                f"automatic partition: {flagged} grids flagged with their reasons"
                if flagged
                else None
            )
            publish_in_transaction(
                store, conn, plan_id, author=header.author, override_reason=reason, index=index
            )
    return plan_id


def _plan_note(note: str, chosen: list[str] | None, *, placeholder: bool) -> str:
    """The plan's note; a plan coded under the placeholder division code says so."""
    text = note or (
        "automatic partition" if chosen is None else f"re-partition of {', '.join(chosen)}"
    )
    return f"{text} ({PLACEHOLDER_NOTE})" if placeholder else text


def _chosen_communities(
    buildings: pd.DataFrame, communities: Iterable[str] | None
) -> list[str] | None:
    """The communities asked for, once each in the order given (None: all), all known."""
    if not communities:
        return None
    chosen = list(dict.fromkeys(communities))
    unknown = sorted(set(chosen) - set(buildings["community"]))
    if unknown:
        raise InputError(
            f"unknown communities: {', '.join(unknown)}; the district has: "
            f"{', '.join(sorted(buildings['community'].unique())[:30])}",
            zh=f"未知社区：{', '.join(unknown)}",
        )
    return chosen


def _previous_members(parent: Plan | None) -> dict[frozenset, str]:
    """The parent's codes by their buildings: a new grid with the same buildings keeps its code."""
    if parent is None:
        return {}
    return {frozenset(ids): code for code, ids in members_by_label(parent.labels).items()}


def _current_workers(parent: Plan | None) -> dict[str, str]:
    """The parent's worker of each grid code."""
    if parent is None:
        return {}
    workers_of = parent.grids["worker_id"].dropna()
    return {str(k): str(v) for k, v in workers_of.items()}
