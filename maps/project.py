"""Maps of a project: pick the map kind for the frames geo/ read, return a folium.Map.

geo reads what a map shows (:func:`geo.usecases.mapdata.read_map_data`, a :class:`MapData` of
frames and settings); this module only draws it and never sees the store. ``gridmap map`` and
the API's map routes both go through :func:`project_map` (by way of :mod:`api.mapping`), so that
the same options give the same map everywhere.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import folium
import pandas as pd

from geo.errors import NotFound
from geo.people.workers import public_worker_columns

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

if TYPE_CHECKING:
    from geo.usecases.mapdata import DiffData, MapData


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


def map_title(
    data: MapData, request: MapRequest, *, today: dt.date | None = None
) -> tuple[str, str]:
    """The title lines: what the map shows (district, community or grid) and plan id and date.

    The district is the ``district_name`` setting, else the division code.
    """
    t = strings(request.lang)
    settings = data.settings
    district = str(settings.get("district_name") or settings.get("division_code") or "")
    if request.grid:
        area = f"{t['grid']} {request.grid}"
    else:
        area = " ".join(part for part in (district, request.community) if part)
    day = (today or dt.date.today()).isoformat()
    return f"{area} {t['title_map']}".strip(), f"{t['title_plan']} {data.plan_id} · {day}"


def resolve_basemap(basemap: str, *, tiles: str = "", served: bool = False) -> str:
    """``basemap`` with the project's tiles filled in: ``tiles`` alone is the project's
    ``basemap_tiles`` setting (``tiles``), and ``tiles:SOURCE`` becomes ``tiles:URL-TEMPLATE``
    (:func:`maps.tiles.tile_template`)."""
    if basemap != "tiles" and not basemap.startswith("tiles:"):
        return basemap
    source = basemap.removeprefix("tiles").removeprefix(":") or tiles
    if not source:
        raise MapInputError(
            "the project has no tiles",
            hint="gridmap settings set basemap_tiles PATH|URL, or --basemap tiles:PATH|URL",
        )
    return "tiles:" + tile_template(source, served=served)


def map_options(data: MapData, request: MapRequest, *, title: tuple[str, ...]) -> dict[str, Any]:
    """The keywords of the map functions for ``request`` (settings filled in)."""
    settings = data.settings
    return {
        "lang": request.lang,
        "basemap": resolve_basemap(
            request.basemap, tiles=str(settings.get("basemap_tiles") or ""), served=request.served
        ),
        "offline": request.offline,
        "include_contacts": request.include_contacts,
        "attribution_osm": "OpenStreetMap" in settings.get("attribution", ""),
        "tianditu_key": request.tianditu_key or settings.get("tianditu_key"),
        "features_url": request.features_url,
        "max_buildings": request.max_buildings,
        "title": title,
        "roads": data.roads,
        "print_mode": request.print_mode,
    }


def project_map(data: MapData, request: MapRequest) -> folium.Map:
    """The map ``request`` asks for, from ``data`` (the plan's frames; no cases on paper)."""
    options = map_options(data, request, title=map_title(data, request))
    incidents = None if request.print_mode else data.incidents  # a wall map shows the grids
    grids = public_worker_columns(data.grids, include_contacts=request.include_contacts)
    layers = (grids, data.buildings, data.communities, incidents)
    if request.grid:
        if request.grid not in set(grids["grid_code"]):
            raise NotFound(
                f"no grid {request.grid!r} in the plan", zh=f"方案中没有网格 {request.grid}"
            )
        return grid_map(*layers, grid_code=request.grid, **options)
    if request.community:
        return community_map(*layers, community=request.community, **options)
    return district_map(*layers, **options)


def plan_diff_map(
    data: DiffData, *, lang: str = "zh", basemap: str = "osm", offline: bool = False
) -> folium.Map:
    """Plan ``data.after`` with the grids that differ from ``data.before`` highlighted."""
    return diff_map(
        data.before,
        data.after,
        data.changed,
        buildings=data.buildings,
        communities=data.communities,
        lang=lang,
        basemap=basemap,
        offline=offline,
    )


def print_request(request: MapRequest) -> MapRequest:
    """``request`` for paper: no cases, every code, and tiles only from the project's own."""
    # Paper is printed here, without internet: only the project's own tiles can lie under it.
    no_tiles = request.basemap != "tiles" and not request.basemap.startswith("tiles:")
    return replace(request, print_mode=True, offline=no_tiles)


def print_map(
    data: MapData, request: MapRequest, out: Path, *, sheet: Sheet, signboard: bool = False
) -> Path:
    """Print the map ``request`` asks for to ``out`` (PDF or PNG) on ``sheet``.

    ``signboard``: one sheet per grid (of ``request.community``, or ``request.grid``, or all),
    with its map, code, community and worker; the phone only with ``include_contacts``.
    """
    request = print_request(request)
    if not signboard:
        page = render_html(project_map(data, request), offline=request.offline, inline=True)
        return print_pages([page], out, sheet=sheet)
    chosen = data.grids
    if request.grid:
        chosen = chosen[chosen["grid_code"] == request.grid]
    elif request.community:
        chosen = chosen[chosen["community"] == request.community]
    if chosen.empty:
        raise NotFound("no grid to print", zh="没有可打印的网格")
    pages, facts = [], []
    for row in chosen.itertuples():
        one = replace(request, grid=str(row.grid_code), community=None)
        title = map_title(data, one)
        pages.append(render_html(project_map(data, one), offline=request.offline, inline=True))
        facts.append(_signboard_facts(data, one, row, date=title[1].rsplit(" ", 1)[-1]))
    return print_pages(pages, out, sheet=sheet, signboard=facts)


def _signboard_facts(data: MapData, request: MapRequest, row: Any, *, date: str) -> dict[str, str]:
    """What a grid's signboard says under its map."""
    phone = getattr(row, "phone", None) if request.include_contacts else None
    return {
        "code": str(row.grid_code),
        "community": str(row.community),
        "worker": "" if pd.isna(row.worker) else str(row.worker),
        "phone": "" if phone is None or pd.isna(phone) else str(phone),
        "plan": str(data.plan_id),
        "date": date,
        "credit": str(data.settings.get("attribution", "") or ""),
        "lang": request.lang,
    }
