"""Maps of the project for the CLI and the routes: geo reads the frames, maps/ draws them.

:mod:`maps.project` renders a :class:`~geo.usecases.mapdata.MapData` and never sees the store;
these functions read it for a :class:`~maps.project.MapRequest` (only what the request shows:
no cases on paper, their text only for those who may read cases) and hand it over.
"""

from __future__ import annotations

from pathlib import Path

import folium

from geo.storage.store import Store
from geo.usecases import mapdata
from maps import project as drawing
from maps.printing import Sheet
from maps.project import MapRequest

__all__ = ["MapRequest", "plan_diff_map", "print_map", "project_map", "resolve_basemap"]


def read_for(store: Store, request: MapRequest) -> mapdata.MapData:
    """What the map ``request`` asks for shows, read from ``store``."""
    return mapdata.read_map_data(
        store,
        plan_id=request.plan_id,
        with_incidents=not request.print_mode,
        since=request.since,
        until=request.until,
        with_case_text=request.include_case_text,
    )


def project_map(store: Store, request: MapRequest) -> folium.Map:
    """:func:`maps.project.project_map` of the project's published (or given) plan."""
    return drawing.project_map(read_for(store, request), request)


def print_map(
    store: Store, request: MapRequest, out: Path, *, sheet: Sheet, signboard: bool = False
) -> Path:
    """:func:`maps.project.print_map` of the project (a map or signboards on paper)."""
    request = drawing.print_request(request)
    return drawing.print_map(
        read_for(store, request), request, out, sheet=sheet, signboard=signboard
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
    data = mapdata.read_diff_data(store, before, after)
    return drawing.plan_diff_map(data, lang=lang, basemap=basemap, offline=offline)


def resolve_basemap(store: Store, basemap: str, *, served: bool = False) -> str:
    """``basemap`` with the project's ``basemap_tiles`` setting filled in for ``tiles``."""
    needs_setting = basemap in ("tiles", "tiles:")  # the project's own tiles, by its setting
    tiles = str(mapdata.map_settings(store).get("basemap_tiles") or "") if needs_setting else ""
    return drawing.resolve_basemap(basemap, tiles=tiles, served=served)
