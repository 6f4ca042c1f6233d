"""What a map of the project shows, read from the store in one place, so maps/ only draws frames.

:func:`read_map_data` gathers a plan's grids (with their worker's phone), buildings (with grid
codes), communities, roads, cases and the settings a map's title and basemap use, and where the
project keeps household records (一户一档) the occupancy counts of grids and buildings;
:func:`read_diff_data` the two plans of a change map. :mod:`maps.project` renders a
:class:`MapData` and never sees the store (``tests/test_layering.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import pandas as pd

from geo.incidents.records import incidents_for_map
from geo.people import occupancy
from geo.people import roster as rosters
from geo.plans import store as plans
from geo.plans.diff import diff_plans
from geo.storage.store import Store

#: the settings a map reads (title, credit, basemap)
MAP_SETTINGS = ("district_name", "division_code", "attribution", "tianditu_key", "basemap_tiles")


@dataclass(frozen=True)
class MapData:
    """Everything a map of one plan draws, as frames."""

    grids: gpd.GeoDataFrame  # grid_code, community, worker ..., phone
    buildings: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame
    plan_id: int
    incidents: gpd.GeoDataFrame | None = None
    roads: gpd.GeoDataFrame | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DiffData:
    """Two plans' grids and what differs between them, for a change map."""

    before: gpd.GeoDataFrame
    after: gpd.GeoDataFrame
    changed: list[str]
    buildings: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame


def read_map_data(
    store: Store,
    *,
    plan_id: int | None = None,
    with_incidents: bool = True,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
    with_case_text: bool = True,
) -> MapData:
    """The published (or given) plan's layers, the cases between ``since`` and ``until`` (none
    without ``with_incidents``; their callers' text only ``with_case_text``), roads, settings."""
    plan = plans.load_plan(store, plan_id)
    incidents = None
    if with_incidents:
        incidents = incidents_for_map(store, since=since, until=until, with_text=with_case_text)
    grids, buildings = _with_occupancy(
        store,
        _grids_with_phones(store, plan.grids.reset_index(names="grid_code")),
        plans.read_buildings_with_grids(store, plan_id=plan.plan_id),
    )
    return MapData(
        grids=grids,
        buildings=buildings,
        communities=store.read_layer("communities"),
        plan_id=plan.plan_id,
        incidents=incidents,
        roads=store.read_layer("roads") if store.has_layer("roads") else None,
        settings=map_settings(store),
    )


def map_settings(store: Store) -> dict[str, Any]:
    """The project's :data:`MAP_SETTINGS` that are set."""
    return {key: value for key, value in store.all_settings().items() if key in MAP_SETTINGS}


def read_diff_data(store: Store, before: int, after: int) -> DiffData:
    """Plans ``before`` and ``after`` and the codes of the grids added, changed or removed."""
    old, new = plans.load_plan(store, before), plans.load_plan(store, after)
    changes = diff_plans(old, new)
    changed = (
        set(changes["grids_added"]) | set(changes["grids_changed"]) | set(changes["grids_removed"])
    )
    return DiffData(
        before=old.grids.reset_index(names="grid_code"),
        after=new.grids.reset_index(names="grid_code"),
        changed=sorted(changed),
        buildings=plans.read_buildings_with_grids(store, plan_id=after),
        communities=store.read_layer("communities"),
    )


def _with_occupancy(
    store: Store, grids: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """以房管人 where the project has household records: the buildings' facts (households,
    residents, rented units, floating residents) in place of the bare count, and the grids'
    occupancy columns. Counts only: no name, ID number or phone is read."""
    if not occupancy.has_records(store):
        return grids, buildings
    buildings = occupancy.building_facts(store, buildings)
    return occupancy.grid_facts(grids, buildings, store), buildings


def _grids_with_phones(store: Store, grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    # a plan's grids name their worker; the phone is the roster's (shown only when asked)
    if "worker_phone" not in grids.columns:
        team = rosters.roster(store)
        phones = team.set_index("worker_id")["phone"] if not team.empty else pd.Series(dtype=object)
        grids["phone"] = grids["worker_id"].map(phones)
    return grids
