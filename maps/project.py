"""Maps of a project file: read the layers through geo/, pick the map kind, return a folium.Map.

``gridmap map`` and the API's map routes both call :func:`project_map`, so that the same options
give the same map everywhere.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import pandas as pd

from geo.errors import NotFound
from geo.incidents.store import incidents_for_map
from geo.people.workers import public_worker_columns
from geo.plans import store as plans
from geo.storage.store import Store
from geo.usecases import district as project

from .base import MAX_EMBEDDED_BUILDINGS
from .community import community_map
from .diff import diff_map
from .district import district_map
from .grid import grid_map
from .i18n import strings
from .prepare import MapInputError
from .printing import Sheet, print_pages
from .render import render_html
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
    #: what callers wrote about cases (descriptions, addresses): for those who may read cases
    include_case_text: bool = True
    tianditu_key: str | None = None
    features_url: str | None = None
    max_buildings: int = MAX_EMBEDDED_BUILDINGS  # above: buildings come from features_url
    plan_id: int | None = None
    #: the page comes from ``gridmap serve``: tile folders and MBTiles files are under /tiles/
    served: bool = False
    #: a page for paper (maps.printing): no incidents, every code, north arrow
    print_mode: bool = False


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


def map_options(store: Store, request: MapRequest, *, title: tuple[str, ...]) -> dict[str, Any]:
    """The keywords of the map functions for ``request`` (settings filled in)."""
    credit = store.get_setting("attribution", "")
    return {
        "lang": request.lang,
        "basemap": resolve_basemap(store, request.basemap, served=request.served),
        "offline": request.offline,
        "include_contacts": request.include_contacts,
        "attribution_osm": "OpenStreetMap" in credit,
        "tianditu_key": request.tianditu_key or store.get_setting("tianditu_key", None),
        "features_url": request.features_url,
        "max_buildings": request.max_buildings,
        "title": title,
        "roads": store.read_layer("roads") if store.has_layer("roads") else None,
        "print_mode": request.print_mode,
    }


def project_map(store: Store, request: MapRequest) -> folium.Map:
    """The map ``request`` asks for, from the project's published (or given) plan."""
    layers = project_layers(store, plan_id=request.plan_id)
    title = map_title(store, request, plan_id=layers.pop("plan_id"))
    incidents = None
    if not request.print_mode:  # a wall map shows the grids, not this week's cases
        incidents = incidents_for_map(
            store, since=request.since, until=request.until, with_text=request.include_case_text
        )
    options = map_options(store, request, title=title)
    layers["grids"] = public_worker_columns(
        layers["grids"], include_contacts=request.include_contacts
    )
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


def print_map(
    store: Store, request: MapRequest, out: Path, *, sheet: Sheet, signboard: bool = False
) -> Path:
    """Print the map ``request`` asks for to ``out`` (PDF or PNG) on ``sheet``.

    ``signboard``: one sheet per grid (of ``request.community``, or ``request.grid``, or all),
    with its map, code, community and worker; the phone only with ``include_contacts``.
    """
    request = replace(request, print_mode=True, offline=_no_tiles(request.basemap))
    if not signboard:
        page = render_html(project_map(store, request), offline=request.offline, inline=True)
        return print_pages([page], out, sheet=sheet)
    layers = project_layers(store, plan_id=request.plan_id)
    plan_id = layers.pop("plan_id")
    grids = layers["grids"]
    chosen = grids
    if request.grid:
        chosen = grids[grids["grid_code"] == request.grid]
    elif request.community:
        chosen = grids[grids["community"] == request.community]
    if chosen.empty:
        raise NotFound("no grid to print", zh="没有可打印的网格")
    grids = public_worker_columns(grids, include_contacts=request.include_contacts)
    credit = str(store.get_setting("attribution", "") or "")
    pages, facts = [], []
    for row in chosen.itertuples():
        one = replace(request, grid=str(row.grid_code), community=None)
        title = map_title(store, one, plan_id=plan_id)
        options = map_options(store, one, title=title)
        m = grid_map(
            grids,
            layers["buildings"],
            layers["communities"],
            None,
            grid_code=str(row.grid_code),
            **options,
        )
        pages.append(render_html(m, offline=request.offline, inline=True))
        phone = getattr(row, "phone", None) if request.include_contacts else None
        facts.append(
            {
                "code": str(row.grid_code),
                "community": str(row.community),
                "worker": "" if pd.isna(row.worker) else str(row.worker),
                "phone": "" if phone is None or pd.isna(phone) else str(phone),
                "plan": str(plan_id),
                "date": title[1].rsplit(" ", 1)[-1],
                "credit": credit,
                "lang": request.lang,
            }
        )
    return print_pages(pages, out, sheet=sheet, signboard=facts)


def _no_tiles(basemap: str) -> bool:
    # Paper is printed here, without internet: only the project's own tiles can lie under it.
    return basemap != "tiles" and not basemap.startswith("tiles:")
