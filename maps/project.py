"""Maps of a project file: read the layers through geo/, pick the map kind, return a folium.Map.

``gridmap map`` and the API's map routes both call :func:`project_map`, so that the same options
give the same map everywhere.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import folium
import geopandas as gpd
import pandas as pd

from geo import plans, project
from geo.errors import NotFound
from geo.incidents.store import incidents_for_map
from geo.store import Store

from .base import MAX_EMBEDDED_BUILDINGS
from .community import community_map
from .diff import diff_map
from .district import district_map
from .grid import grid_map
from .i18n import strings
from .prepare import MapInputError
from .tiles import tile_template


@dataclass(frozen=True)
class MapRequest:
    """What to draw: the whole district, one community or one grid, and how."""

    community: str | None = None
    grid: str | None = None
    since: pd.Timestamp | None = None
    until: pd.Timestamp | None = None
    basemap: str = "osm"
    lang: str = "zh"
    offline: bool = False
    include_contacts: bool = False
    tianditu_key: str | None = None
    features_url: str | None = None
    max_buildings: int = MAX_EMBEDDED_BUILDINGS  # above: buildings come from features_url
    plan_id: int | None = None
    #: the page comes from ``gridmap serve``: tile folders and MBTiles files are under /tiles/
    served: bool = False


def project_layers(
    store: Store, *, plan_id: int | None = None
) -> dict[str, gpd.GeoDataFrame | None]:
    """Grids (with worker names), buildings (with grid codes), communities, and the plan's id."""
    plan = plans.load_plan(store, plan_id)
    grids = plan.grids.reset_index(names="grid_code")
    if "worker_phone" not in grids.columns:
        team = plans.roster(store)
        phones = team.set_index("worker_id")["phone"] if not team.empty else pd.Series(dtype=object)
        grids["phone"] = grids["worker_id"].map(phones)
    buildings = project.read_buildings_with_grids(store, plan_id=plan.plan_id)
    communities = store.read_layer("communities")
    return {
        "grids": grids,
        "buildings": buildings,
        "communities": communities,
        "plan_id": plan.plan_id,
    }


def map_title(
    store: Store, request: MapRequest, *, plan_id: int, today: dt.date | None = None
) -> tuple[str, str]:
    """The title lines: what the map shows (district, community or grid) and plan id and date.

    The district is the ``district_name`` setting, else the division code.
    """
    t = strings(request.lang)
    district = str(
        store.get_setting("district_name", "") or store.get_setting("division_code", "") or ""
    )
    if request.grid:
        area = f"{t['grid']} {request.grid}"
    else:
        area = " ".join(part for part in (district, request.community) if part)
    day = (today or dt.date.today()).isoformat()
    return f"{area} {t['title_map']}".strip(), f"{t['title_plan']} {plan_id} · {day}"


def resolve_basemap(store: Store, basemap: str, *, served: bool = False) -> str:
    """``basemap`` with the project's tiles filled in: ``tiles`` alone is the ``basemap_tiles``
    setting, and ``tiles:SOURCE`` becomes ``tiles:URL-TEMPLATE`` (:func:`maps.tiles.tile_template`).
    """
    if basemap != "tiles" and not basemap.startswith("tiles:"):
        return basemap
    source = basemap.removeprefix("tiles").removeprefix(":")
    if not source:
        source = str(store.get_setting("basemap_tiles", "") or "")
        if not source:
            raise MapInputError(
                "the project has no tiles",
                hint="gridmap settings set basemap_tiles PATH|URL, or --basemap tiles:PATH|URL",
            )
    return "tiles:" + tile_template(source, served=served)


def project_map(store: Store, request: MapRequest) -> folium.Map:
    """The map ``request`` asks for, from the project's published (or given) plan."""
    layers = project_layers(store, plan_id=request.plan_id)
    title = map_title(store, request, plan_id=layers.pop("plan_id"))
    roads = store.read_layer("roads") if store.has_layer("roads") else None
    incidents = incidents_for_map(store, since=request.since, until=request.until)
    credit = store.get_setting("attribution", "")
    options = {
        "lang": request.lang,
        "basemap": resolve_basemap(store, request.basemap, served=request.served),
        "offline": request.offline,
        "include_contacts": request.include_contacts,
        "attribution_osm": "OpenStreetMap" in credit,
        "tianditu_key": request.tianditu_key or store.get_setting("tianditu_key", None),
        "features_url": request.features_url,
        "max_buildings": request.max_buildings,
        "title": title,
        "roads": roads,
    }
    if not request.include_contacts:
        layers["grids"] = layers["grids"].drop(columns=["phone"], errors="ignore")
    if request.grid:
        if request.grid not in set(layers["grids"]["grid_code"]):
            raise NotFound(
                f"no grid {request.grid!r} in the plan", zh=f"方案中没有网格 {request.grid}"
            )
        return grid_map(
            layers["grids"],
            layers["buildings"],
            layers["communities"],
            incidents,
            grid_code=request.grid,
            **options,
        )
    if request.community:
        return community_map(
            layers["grids"],
            layers["buildings"],
            layers["communities"],
            incidents,
            community=request.community,
            **options,
        )
    return district_map(
        layers["grids"], layers["buildings"], layers["communities"], incidents, **options
    )


def plan_diff_map(
    store: Store,
    before: int,
    after: int,
    *,
    lang: str = "zh",
    basemap: str = "osm",
    offline: bool = False,
) -> folium.Map:
    """Plan ``after`` with the grids that differ from plan ``before`` highlighted."""
    old, new = plans.load_plan(store, before), plans.load_plan(store, after)
    changes = plans.diff_plans(old, new)
    changed = (
        set(changes["grids_added"]) | set(changes["grids_changed"]) | set(changes["grids_removed"])
    )
    buildings = project.read_buildings_with_grids(store, plan_id=after)
    return diff_map(
        old.grids.reset_index(names="grid_code"),
        new.grids.reset_index(names="grid_code"),
        sorted(changed),
        buildings=buildings,
        communities=store.read_layer("communities"),
        lang=lang,
        basemap=basemap,
        offline=offline,
    )
