"""Cells around buildings, grid polygons that tile each community, and coverage checks.

A *cell* is the part of a community closest to one building (momepy's morphological tessellation,
or its enclosed tessellation when streets are given). Cells are built once per import and cached;
a grid's polygon is the union of its buildings' cells, so re-partitioning never re-tessellates.

Guarantees of :func:`building_cells`, which the rest of the module relies on:

* every building gets one cell that contains its representative point (momepy drops tiny or
  overlapping footprints and sometimes splits a cell; those are repaired here);
* cells of the whole district form one valid polygonal coverage (``shapely.coverage_is_valid``):
  no overlaps, shared edges identical, so unions and simplifications stay gap-free;
* within a community the cells cover the community's limit (its polygon, or a buffer around its
  buildings) without gaps, and never reach into another community's limit.

Without community polygons and roads (an import from footprints alone), every cell comes from one
Voronoi diagram of the whole district and each community's limit is the union of its cells: the
edges between communities then match by construction and need no cleaning.

Examples
--------
>>> import geopandas as gpd, shapely
>>> buildings = gpd.GeoDataFrame(
...     {"community": ["a", "a", "a"]},
...     geometry=[shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 10), shapely.box(40, 0, 50, 10)],
...     crs=4549,
... )
>>> cells = building_cells(buildings, buffer_m=20)
>>> bool(shapely.coverage_is_valid(cells.values))
True
>>> grids = grid_polygons(cells, pd.Series(["g1", "g1", "g2"]), community=buildings["community"])
>>> grids["n_buildings"].tolist()
[2, 1]
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.errors import GEOSException

from geo.errors import InputError, InternalError
from geo.threads import cores, worker_pool

# Gaps narrower than this (m) are floating-point slivers between momepy's clipped cells.
SLIVER_M = 0.01
# Cells are rounded to this grid (m) before cleaning.
GRID_M = 0.001
# A building momepy dropped gets at most this much room (m) around its footprint when repaired.
CARVE_M = 1.0
# Footprints shrink by this much (m) before sampling, so touching walls leave room (momepy's).
SHRINK_M = 0.4


class CoverageError(InternalError):
    """The cells could not be made into a valid coverage (a bug: please report the data)."""


@dataclass
class _Pieces:
    """Polygons with the building (position, -1 for none) and community they belong to."""

    geometry: np.ndarray
    owner: np.ndarray
    community: np.ndarray

    def exploded(self) -> _Pieces:
        """One polygon per row, empty ones dropped (cleaning and differences make multi-parts)."""
        parts, index = shapely.get_parts(self.geometry, return_index=True)
        keep = ~shapely.is_empty(parts) & (shapely.area(parts) > 0)
        return _Pieces(parts[keep], self.owner[index][keep], self.community[index][keep])

    @staticmethod
    def concat(pieces: Iterable[_Pieces]) -> _Pieces:
        pieces = list(pieces)
        return _Pieces(
            np.concatenate([p.geometry for p in pieces]),
            np.concatenate([p.owner for p in pieces]),
            np.concatenate([p.community for p in pieces]),
        )


# --------------------------------------------------------------------------------------------
# cells


def building_cells(
    buildings: gpd.GeoDataFrame,
    *,
    communities: gpd.GeoDataFrame | None = None,
    roads: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
    buffer_m: float = 50.0,
    segment_m: float = 2.0,
    progress: Callable[[int, int], None] | None = None,
    mapper: Callable[..., Iterable[_Pieces]] | None = None,
) -> gpd.GeoSeries:
    """One tessellation cell per building, tiling each community without gaps or overlaps.

    Parameters
    ----------
    buildings : GeoDataFrame
        Footprints in a metric CRS, with a ``community`` column (missing means one community).
    communities : GeoDataFrame, optional
        ``community`` and polygon geometry. Each community's cells fill its polygon. Communities
        of buildings without a polygon, and all of them when this is None, are limited by a buffer
        of ``buffer_m`` around their buildings (holes filled), split between neighbours by
        proximity.
    roads : GeoDataFrame or GeoSeries, optional
        Street lines used as enclosures: cells do not cross them.
    buffer_m : float
        Reach of a community's cells beyond its outermost buildings, in metres.
    segment_m : float
        Spacing (m) of the footprint points momepy tessellates around; smaller is finer and slower.
    progress : callable, optional
        Called as ``progress(done, total)`` after each community (the long part of an import).
    mapper : callable, optional
        ``mapper(func, *iterables)``, a ``map`` in order, that runs the communities'
        tessellations (where each community is tessellated on its own: polygons or roads); a Dask
        client's map on a cluster. Default: this process's worker threads. Same cells either way.

    Returns
    -------
    GeoSeries
        Aligned to ``buildings.index``; every cell contains its building's representative point
        (a building with an empty footprint gets an empty cell). No hole is left inside the
        cells: one the limits leave goes to the cell sharing the longest border with it.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> b = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 10, 10), shapely.box(12, 0, 22, 10)],
    ...                      crs=4549)
    >>> cells = building_cells(b, buffer_m=10)
    >>> bool(cells.contains(b.representative_point()).all())
    True
    """
    _check_metric(buildings)
    if buildings.empty:
        return gpd.GeoSeries([], index=buildings.index, crs=buildings.crs)
    options = _CellOptions(communities, roads, buffer_m, segment_m, progress, mapper)
    absent = shapely.is_missing(buildings.geometry.values) | shapely.is_empty(
        buildings.geometry.values
    )
    if absent.any():
        return _with_empty_cells(buildings, absent, options)
    return _cells(buildings, options)


@dataclass(frozen=True)
class _CellOptions:
    """The options of :func:`building_cells`."""

    communities: gpd.GeoDataFrame | None
    roads: gpd.GeoDataFrame | gpd.GeoSeries | None
    buffer_m: float
    segment_m: float
    progress: Callable[[int, int], None] | None
    mapper: Callable[..., Iterable[_Pieces]] | None = None


def _with_empty_cells(
    buildings: gpd.GeoDataFrame, absent: np.ndarray, options: _CellOptions
) -> gpd.GeoSeries:
    """The cells of the buildings with a footprint; a building without one has no point to
    hold: it gets an empty cell."""
    cells = building_cells(
        buildings[~absent],
        communities=options.communities,
        roads=options.roads,
        buffer_m=options.buffer_m,
        segment_m=options.segment_m,
        progress=options.progress,
        mapper=options.mapper,
    )
    result = np.full(len(buildings), shapely.Polygon(), dtype=object)
    result[~absent] = np.asarray(cells.array, dtype=object)
    return gpd.GeoSeries(result, index=buildings.index, crs=buildings.crs)


def _cells(buildings: gpd.GeoDataFrame, options: _CellOptions) -> gpd.GeoSeries:
    """:func:`building_cells` of buildings that all have a footprint."""
    footprints = _footprints(buildings.geometry.values)
    points = _anchors(footprints)
    community = _community_of(buildings)
    pieces = None
    if options.communities is None and options.roads is None:
        pieces = _district_pieces(footprints, points, community, options)
    exact = pieces is not None
    if pieces is None:
        pieces = _community_pieces(buildings, footprints, points, community, options)
    merged = _merge_orphans(pieces, points, len(buildings))
    cells = _fill_holes(merged)
    if exact and cells is merged:
        # Pieces checked to be a valid coverage, each building's point in its own piece; unions
        # of neighbouring pieces of a coverage are one too, and no hole was filled.
        rebuilt = []
    else:
        cells, rebuilt = valid_coverage(cells, points, community)
    result = gpd.GeoSeries(cells, index=buildings.index, crs=buildings.crs)
    result.attrs["rebuilt"] = rebuilt
    return result


def _district_pieces(
    footprints: np.ndarray, points: np.ndarray, community: np.ndarray, options: _CellOptions
) -> _Pieces | None:
    """The cells of buffer-limited communities, from one Voronoi diagram of the whole district.

    Every community is limited by the buffer around all buildings split by proximity, so the
    cells of one diagram clipped to that buffer are both the limits and the cells: their shared
    edges, within and between communities, are identical by construction and need no cleaning
    (a community's limit is the union of its cells). Only when GEOS's diagram is not exact
    (degenerate sites) is None returned: the caller then tessellates community by community.
    """
    try:
        pieces = _district_tessellation(footprints, points, community, options)
    except GEOSException:
        return None  # GEOS's overlay tripped over the diagram: each community on its own
    # Near-degenerate sites can leave a cell GEOS had to repair, whose edges no longer match.
    if len(_unanchored(pieces, points)) or not shapely.coverage_is_valid(pieces.geometry):
        return None
    if options.progress is not None:
        names = len(np.unique(community))
        options.progress(names, names)
    return pieces


def _district_tessellation(
    footprints: np.ndarray, points: np.ndarray, community: np.ndarray, options: _CellOptions
) -> _Pieces:
    """The pieces of one morphological tessellation of all buildings, inside their buffer."""
    reach = worker_pool().submit(_reach, footprints, options.buffer_m)
    sites, owner = _boundary_samples(footprints, options.segment_m, anchors=points)
    # The diagram only needs the buffer's envelope, so the buffer's union runs beside it.
    frame = shapely.box(
        *(shapely.total_bounds(footprints) + options.buffer_m * np.r_[-1, -1, 1, 1])
    )
    try:
        cells = _grouped_union(_site_cells(sites, frame), owner, len(footprints))
        reach = reach.result()
    except GEOSException:
        reach = reach.result()
        # Degenerate sites (every sample collinear or coincident): fall back to points.
        voronoi = _point_voronoi(gpd.GeoSeries(footprints), reach)
        owner = voronoi.index.to_numpy()
        return _Pieces(voronoi.geometry.values, owner, community[owner]).exploded()
    cells = _inside(cells, reach)
    owner = np.flatnonzero(~shapely.is_empty(cells))
    pieces = _Pieces(cells[owner], owner, community[owner])
    gap = shapely.area(reach) - shapely.area(pieces.geometry).sum()
    if gap >= SLIVER_M**2:
        # A slice GEOS's diagram left uncovered goes to the cells around it (owner -1).
        rest = shapely.difference(reach, shapely.union_all(pieces.geometry))
        pieces = _Pieces.concat([pieces, _orphans_by_community(rest, pieces)])
    return pieces.exploded()


def _orphans_by_community(rest: shapely.Geometry, pieces: _Pieces) -> _Pieces:
    """The parts of ``rest`` (owner -1), each in the community of the piece it borders most."""
    parts = shapely.get_parts(rest)
    parts = parts[np.isin(shapely.get_type_id(parts), [3, 6]) & (shapely.area(parts) > 0)]
    names = np.empty(len(parts), dtype=object)
    tree = shapely.STRtree(pieces.geometry)
    for number, part in enumerate(parts):
        near = tree.query(part, predicate="intersects")
        if len(near) == 0:
            near = tree.query_nearest(part)
        shared = shapely.length(
            shapely.intersection(shapely.boundary(part), shapely.boundary(pieces.geometry[near]))
        )
        names[number] = pieces.community[near[int(np.argmax(shared))]]
    return _Pieces(parts, np.full(len(parts), -1), names)


def _reach(footprints: np.ndarray, buffer_m: float) -> shapely.Geometry:
    """The buffer around all footprints, holes filled (a park ringed by buildings is theirs)."""
    return _filled(shapely.union_all(shapely.buffer(footprints, buffer_m)))


def _inside(cells: np.ndarray, limit: shapely.Geometry) -> np.ndarray:
    """``cells`` made valid and clipped to ``limit`` where they cross it."""
    broken = ~shapely.is_valid(cells)
    cells[broken] = [_polygonal(cell) for cell in cells[broken]]
    shapely.prepare(limit)
    crossing = ~shapely.contains_properly(limit, cells)
    cells[crossing] = _chunked(lambda part: shapely.intersection(part, limit), cells[crossing])
    return cells


def _chunked(func: Callable[[np.ndarray], np.ndarray], values: np.ndarray) -> np.ndarray:
    """``func(values)`` for a vectorised GEOS call (which releases the GIL) on every core.

    The array is cut into one slice per core; on a worker thread (a community's tessellation)
    it runs in place, since pool tasks never wait on other tasks.
    """
    if (
        len(values) < 1000
        or cores() == 1
        or threading.current_thread().name.startswith("gridmap-worker")
    ):
        return func(values)
    slices = np.array_split(values, cores())
    return np.concatenate(list(worker_pool().map(func, slices)))


def _community_pieces(
    buildings: gpd.GeoDataFrame,
    footprints: np.ndarray,
    points: np.ndarray,
    community: np.ndarray,
    options: _CellOptions,
) -> _Pieces:
    """The cells of each community inside its limit (polygon or buffer), cleaned together."""
    limits = _split_limits(buildings, options.communities, options.buffer_m, options.segment_m)
    roads = options.roads
    road_lines = None if roads is None else gpd.GeoSeries(_lines(roads, buildings.crs))
    if roads is not None:
        import momepy  # noqa: F401  (imported once here, not by the worker threads)
    tessellation = _Tessellation(footprints, points, community, road_lines, options.segment_m)
    each = tessellation.each_community(limits, options.progress, mapper=options.mapper)
    pieces = _Pieces.concat(each).exploded()
    return _anchor_every_building(pieces, footprints, points, community)


@dataclass(frozen=True)
class _Tessellation:
    """What every community's tessellation shares: the footprints, their anchor points, the
    community of each building, the road lines and the sampling step."""

    footprints: np.ndarray
    points: np.ndarray
    community: np.ndarray
    road_lines: gpd.GeoSeries | None
    segment_m: float

    def one(self, name: str, limit: shapely.Geometry) -> _Pieces:
        members = np.flatnonzero(self.community == name)
        return _tessellate_community(
            self.footprints, members, limit, name, self.road_lines, self.segment_m, self.points
        )

    def each_community(
        self,
        limits: gpd.GeoSeries,
        progress: Callable[[int, int], None] | None,
        *,
        mapper: Callable[..., Iterable[_Pieces]] | None = None,
    ) -> Iterator[_Pieces]:
        """GEOS releases the GIL: communities are tessellated on every core (or by ``mapper``,
        on a cluster), yielded in order."""
        tasks = (mapper or worker_pool().map)(self.one, limits.index, limits.values)
        for done, pieces in enumerate(tasks, start=1):
            yield pieces
            if progress is not None:
                progress(done, len(limits))


def community_limits(
    buildings: gpd.GeoDataFrame,
    *,
    communities: gpd.GeoDataFrame | None = None,
    buffer_m: float = 50.0,
    segment_m: float = 2.0,
) -> gpd.GeoSeries:
    """The area each community's cells may fill: disjoint polygons indexed by community name.

    A community with a polygon in ``communities`` gets that polygon (where polygons overlap, the
    first in name order keeps the overlap). The others get the buffer of ``buffer_m`` around their
    buildings, split between neighbouring communities along a coarse tessellation of all buildings
    and kept out of the given polygons. Without ``communities`` at all, the buffer is split along
    the cells :func:`building_cells` makes (the same diagram).
    """
    if communities is None:
        limits = _district_limits(buildings, buffer_m, segment_m)
        if limits is not None:
            return limits
    return _split_limits(buildings, communities, buffer_m, segment_m)


def _split_limits(
    buildings: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame | None,
    buffer_m: float,
    segment_m: float,
) -> gpd.GeoSeries:
    """:func:`community_limits` from the polygons, and the buffer split by a coarse diagram."""
    community = _community_of(buildings)
    names = sorted(set(community))
    limits: dict[str, shapely.Geometry] = {}
    taken = shapely.Polygon()
    if communities is not None:
        polygons = _community_polygons(communities, buildings.crs)
        for name in sorted(polygons.index):
            limits[name] = shapely.difference(polygons[name], taken)
            taken = shapely.union(taken, limits[name])
    open_names = [name for name in names if name not in limits]
    if open_names:
        mask = np.isin(community, open_names)
        territory = _territories(
            buildings.geometry.values[mask], community[mask], buffer_m, segment_m
        )
        for name in open_names:
            limits[name] = shapely.difference(territory[name], taken)
    limits = {name: geometry for name, geometry in limits.items() if not geometry.is_empty}
    return gpd.GeoSeries(limits, crs=buildings.crs, name="geometry").rename_axis("community")


def _district_limits(
    buildings: gpd.GeoDataFrame, buffer_m: float, segment_m: float
) -> gpd.GeoSeries | None:
    """Each community's limit without polygons: the union of its cells in the district's diagram
    (None when that diagram is not exact)."""
    geometry = buildings.geometry.values
    solid = ~(shapely.is_missing(geometry) | shapely.is_empty(geometry))
    footprints = _footprints(geometry[solid])
    community = _community_of(buildings)[solid]
    if len(footprints) == 0:
        return gpd.GeoSeries([], crs=buildings.crs, name="geometry").rename_axis("community")
    options = _CellOptions(None, None, buffer_m, segment_m, None)
    pieces = _district_pieces(footprints, _anchors(footprints), community, options)
    if pieces is None:
        return None
    limits = {
        name: _union(pieces.geometry[pieces.community == name]) for name in np.unique(community)
    }
    return gpd.GeoSeries(limits, crs=buildings.crs, name="geometry").rename_axis("community")


def _territories(
    footprints: np.ndarray, community: np.ndarray, buffer_m: float, segment_m: float
) -> dict[str, shapely.Geometry]:
    """The buffer around all buildings, split between communities by proximity.

    Each community gets the space nearer to its buildings than to any other community's, within
    ``buffer_m`` of some building; so neighbouring limits meet without overlap or gap.
    """
    names = np.unique(community)
    # Holes in the buffer (a park ringed by buildings) belong to the community around them.
    reach = _filled(shapely.union_all(shapely.buffer(footprints, buffer_m)))
    if len(names) == 1:
        return {names[0]: reach}
    try:
        territory = _vertex_territories(footprints, community, reach, segment_m)
    except GEOSException:
        # Degenerate sites (collinear or nearly coincident vertices) break GEOS's Voronoi
        # diagram; a coarse tessellation, cleaned, is slower but copes.
        territory = _tessellated_territories(footprints, community, reach, segment_m)
    # A community whose every vertex is shared with another's walls still gets its own buffer.
    for name in names:
        if territory[name].is_empty:
            territory[name] = shapely.difference(
                shapely.union_all(shapely.buffer(footprints[community == name], buffer_m)),
                shapely.union_all(list(territory.values())),
            )
    return _claim_leftovers(territory, reach)


def _claim_leftovers(
    territory: dict[str, shapely.Geometry], reach: shapely.Geometry
) -> dict[str, shapely.Geometry]:
    """Give each part of ``reach`` outside every territory to the one with the longest border.

    GEOS's Voronoi diagram of near-collinear sites can hold a cell that is not a valid polygon,
    whose union leaves a slice of ``reach`` (even one inside a footprint) to no community.
    Ties go to the first name; a part touching no territory goes to the nearest.
    """
    names = sorted(territory)
    geometry = np.array([territory[name] for name in names], dtype=object)
    left = shapely.get_parts(shapely.difference(reach, shapely.union_all(geometry)))
    left = left[np.isin(shapely.get_type_id(left), [3, 6]) & (shapely.area(left) > 0)]
    borders = shapely.boundary(geometry)
    for part in left:
        shared = shapely.length(shapely.intersection(shapely.boundary(part), borders))
        taker = (
            int(np.argmax(shared))
            if shared.max() > 0
            else int(np.argmin(shapely.distance(part, geometry)))
        )
        geometry[taker] = shapely.union(geometry[taker], part)
    return dict(zip(names, geometry, strict=True))


def _vertex_territories(
    footprints: np.ndarray, community: np.ndarray, reach: shapely.Geometry, segment_m: float
) -> dict[str, shapely.Geometry]:
    """Territories from the Voronoi diagram of the footprints' (densified) vertices: cheap."""
    xy, index = shapely.get_coordinates(
        shapely.segmentize(footprints, 4 * segment_m), return_index=True
    )
    _, first = np.unique(xy, axis=0, return_index=True)
    sites = shapely.points(xy[first])
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(sites), extend_to=reach))
    site_of = np.full(len(cells), -1)
    site_index, cell_index = shapely.STRtree(cells).query(sites, predicate="within")
    site_of[cell_index] = site_index
    # GEOS sometimes puts a site on its own cell's edge. A Voronoi cell is convex, so its
    # centroid is nearest to the cell's site: unmatched cells dropped out of every limit before,
    # leaving holes (Suzhou's 片区164). Near-degenerate sites can give a cell that is not convex,
    # hence "within" first.
    lost = np.flatnonzero(site_of < 0)
    if len(lost):
        nearest = shapely.STRtree(sites).query_nearest(
            shapely.centroid(cells[lost]), all_matches=False
        )
        site_of[lost[nearest[0]]] = nearest[1]
    owner = community[index[first]][site_of]
    # The cells grouped by community in one sort: a mask per community cost names x cells
    # (8 s of Python for 1,428 communities of 49,000 buildings).
    order = np.argsort(owner, kind="stable")
    keys, starts = np.unique(owner[order], return_index=True)
    members = dict(zip(keys, np.split(order, starts[1:]), strict=True))
    none = np.array([], dtype=int)
    return {
        name: shapely.intersection(
            _polygonal(shapely.coverage_union_all(cells[members.get(name, none)])), reach
        )
        for name in np.unique(community)
    }


def _tessellated_territories(
    footprints: np.ndarray, community: np.ndarray, reach: shapely.Geometry, segment_m: float
) -> dict[str, shapely.Geometry]:
    """Territories from a coarse momepy tessellation cleaned into a coverage: robust."""
    coarse = _morphological(gpd.GeoSeries(footprints), reach, 4 * segment_m)
    owner = coarse.index.to_numpy()
    pieces = _clean(_Pieces(shapely.make_valid(coarse.geometry.values), owner, community[owner]))
    return {
        name: shapely.coverage_union_all(pieces.geometry[pieces.community == name])
        for name in np.unique(community)
    }


def _tessellate_community(
    footprints: np.ndarray,
    positions: np.ndarray,
    limit: shapely.Geometry,
    name: str,
    roads: gpd.GeoSeries | None,
    segment_m: float,
    anchors: np.ndarray,
) -> _Pieces:
    """momepy's cells of one community, plus the gaps they leave inside the limit (owner -1)."""
    if len(positions) == 0:
        # A community polygon without buildings: its area stays unowned and is reported as such.
        return _Pieces(np.array([limit]), np.array([-1]), np.array([name], dtype=object))
    frame = gpd.GeoSeries(footprints[positions], index=positions)
    cells = _enclosed(frame, limit, roads, segment_m) if roads is not None else None
    if cells is None:
        # valid cells inside the limit
        cells = _morphological(frame, limit, segment_m, anchors=anchors[positions])
        geometry = cells.geometry.values
    else:
        geometry = shapely.intersection(shapely.make_valid(cells.geometry.values), limit)
    owner = np.where(cells.index.to_numpy() >= 0, cells.index.to_numpy(), -1)
    if shapely.area(limit) - shapely.area(geometry).sum() < SLIVER_M**2:
        # Disjoint cells inside the limit whose areas add up to its area cover it: no gap.
        return _Pieces(geometry, owner, np.full(len(geometry), name, dtype=object))
    gap = shapely.difference(limit, shapely.union_all(geometry))
    geometry = np.append(geometry, gap)
    owner = np.append(owner, -1)
    return _Pieces(geometry, owner, np.full(len(geometry), name, dtype=object))


def _morphological(
    frame: gpd.GeoSeries,
    limit: shapely.Geometry,
    segment_m: float,
    *,
    anchors: np.ndarray | None = None,
) -> gpd.GeoDataFrame:
    """Morphological tessellation (momepy's method) in a few vectorised GEOS calls.

    The footprints, shrunk by ``SHRINK_M`` so that touching walls leave room between them, are
    sampled every ``segment_m``; each building's cell is the union of its samples' Voronoi cells
    (one grouped coverage union, not a union per building), clipped to ``limit`` where it
    crosses it. The Voronoi diagram is extended to ``limit``, so the cells cover it. Each
    building's ``anchors`` point (aligned to ``frame``) is a site of its own, so that its cell
    holds it inside even where footprints overlap or nest.
    """
    try:
        sites, owner = _boundary_samples(frame.values, segment_m, anchors=anchors)
        cells = _inside(_grouped_union(_site_cells(sites, limit), owner, len(frame)), limit)
    except GEOSException:
        # Degenerate sites (every sample collinear or coincident): fall back to points.
        return _point_voronoi(frame, limit)
    keep = ~shapely.is_empty(cells)
    return gpd.GeoDataFrame(geometry=cells[keep], index=frame.index[keep])


def _boundary_samples(
    footprints: np.ndarray, segment_m: float, *, anchors: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct points (x, y rows) every ``segment_m`` along the shrunk footprints, and their
    footprint.

    A footprint too thin to shrink is sampled as it is; a point two footprints share (touching
    or overlapping buildings) goes to the first; ``anchors`` come first of all.
    """
    shrunk = _chunked(
        lambda part: shapely.segmentize(
            shapely.buffer(part, -SHRINK_M, cap_style="flat", join_style="mitre"), segment_m
        ),
        footprints,
    )
    thin = shapely.is_empty(shrunk) | shapely.is_missing(shrunk)
    shrunk[thin] = shapely.segmentize(footprints[thin], segment_m)
    xy, owner = shapely.get_coordinates(shrunk, return_index=True)
    if anchors is not None:
        xy = np.concatenate([shapely.get_coordinates(anchors), xy])
        owner = np.concatenate([np.arange(len(anchors)), owner])
    # Rows (x, y) as complex numbers sort as the rows do, and np.unique runs 1-D: 5x faster.
    xy, first = np.unique(xy[:, 0] + 1j * xy[:, 1], return_index=True)
    return np.column_stack([xy.real, xy.imag]), owner[first]


def _site_cells(sites: np.ndarray, limit: shapely.Geometry) -> np.ndarray:
    """The Voronoi cell of each site (distinct x, y rows), aligned to ``sites``, covering
    ``limit``."""
    if len(sites) < 3:
        raise GEOSException("too few sites for a Voronoi diagram")
    diagram = shapely.voronoi_polygons(_multipoint(sites), extend_to=limit, ordered=True)
    cells = shapely.get_parts(diagram)
    # GEOS can return a self-touching cell for near-collinear sites (libgeos/geos#1062).
    broken = ~_chunked(shapely.is_valid, cells)
    cells[broken] = [_polygonal(cell) for cell in cells[broken]]
    if len(cells) == len(sites):
        return cells
    # GEOS's ordered output can miss a near-degenerate site's cell: match cells spatially.
    aligned = np.full(len(sites), None, dtype=object)
    site, cell = shapely.STRtree(cells).query(shapely.points(sites), predicate="intersects")
    aligned[site] = cells[cell]
    return aligned


def _multipoint(xy: np.ndarray) -> shapely.Geometry:
    """One MultiPoint of the (x, y) rows, through WKB: no Python object per point (3x faster)."""
    record = np.zeros(len(xy), dtype=[("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])
    record["order"], record["type"] = 1, 1  # little-endian Point
    record["x"], record["y"] = xy[:, 0], xy[:, 1]
    header = np.array([1], "u1").tobytes() + np.array([4, len(xy)], "<u4").tobytes()
    return shapely.from_wkb(header + record.tobytes())


def _grouped_union(parts: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    """The coverage union of ``parts`` per ``group`` (0..n-1), in one call; empty where none.

    Parts that are not polygons (GEOS's cell of a near-degenerate site) are left out; should the
    parts not form a coverage after all, the overlay union takes over.
    """
    solid = np.isin(shapely.get_type_id(parts), [3, 6])
    parts, group = parts[solid], group[solid]
    order = np.argsort(group, kind="stable")
    sorted_group = group[order]
    rank = np.arange(len(order)) - np.searchsorted(sorted_group, sorted_group)
    table = np.full((n, rank.max() + 1 if len(rank) else 1), None, dtype=object)
    table[sorted_group, rank] = parts[order]
    try:
        return _chunked(lambda rows: shapely.coverage_union_all(rows, axis=1), table)
    except GEOSException:
        return _chunked(lambda rows: shapely.union_all(rows, axis=1), table)


def _enclosed(
    frame: gpd.GeoSeries, limit: shapely.Geometry, roads: gpd.GeoSeries, segment_m: float
) -> gpd.GeoDataFrame | None:
    """momepy's enclosed tessellation of one community; None where no road crosses it."""
    import momepy  # only imports with roads need it (a second of start-up)

    local = roads[roads.intersects(limit)]
    if local.empty:
        return None
    enclosures = momepy.enclosures(local, limit=gpd.GeoSeries([limit], crs=roads.crs))
    try:
        # simplify=False is deprecated upstream; pyproject.toml holds momepy below 1.0 for it
        return momepy.enclosed_tessellation(
            frame, enclosures.geometry, segment=segment_m, simplify=False, n_jobs=1
        )
    except (ValueError, GEOSException):
        return _point_voronoi(frame, limit)


def _point_voronoi(frame: gpd.GeoSeries, limit: shapely.Geometry) -> gpd.GeoDataFrame:
    cells = _voronoi_cells(shapely.point_on_surface(frame.values), extend_to=limit)
    keep = ~shapely.is_empty(cells)
    geometry = shapely.intersection(cells[keep], limit)
    return gpd.GeoDataFrame(geometry=geometry, index=frame.index[keep])


def _voronoi_cells(points: np.ndarray, *, extend_to: shapely.Geometry | None = None) -> np.ndarray:
    """The Voronoi cell of each point (empty for a repeated point), aligned to ``points``.

    Cells are matched back to their points through a spatial index: GEOS's ``ordered`` option
    fails on some near-degenerate inputs.
    """
    result = np.full(len(points), shapely.Polygon(), dtype=object)
    _, first = np.unique(shapely.to_wkb(points), return_index=True)
    sites = shapely.multipoints(points[first])
    # Far enough to hold every footprint around the points (cells are clipped later anyway).
    frame = extend_to if extend_to is not None else shapely.buffer(shapely.envelope(sites), 1000.0)
    if len(first) == 1:
        result[first] = shapely.envelope(shapely.union(frame, sites))
        return result
    cells = shapely.get_parts(shapely.voronoi_polygons(sites, extend_to=frame))
    point_index, cell_index = shapely.STRtree(cells).query(points[first], predicate="within")
    result[first[point_index]] = cells[cell_index]
    return result


# --------------------------------------------------------------------------------------------
# repairs


def _anchor_every_building(
    pieces: _Pieces,
    footprints: np.ndarray,
    points: np.ndarray,
    community: np.ndarray,
    *,
    rounds: int = 4,
) -> _Pieces:
    """Clean the pieces into an exact coverage where each building owns the piece at its point."""
    voronoi = None
    for attempt in range(rounds):
        missing = _unanchored(pieces, points)
        if attempt > 0 and len(missing) == 0:
            return pieces
        if len(missing):
            if voronoi is None:
                voronoi = _voronoi_cells(points)
            pieces = _carve(pieces, missing, footprints, points, community, voronoi)
        pieces = _clean(pieces)
    if len(_unanchored(pieces, points)):
        raise CoverageError(
            f"{len(_unanchored(pieces, points))} buildings could not get a cell around their point"
        )
    return pieces


def _unanchored(pieces: _Pieces, points: np.ndarray) -> np.ndarray:
    """Positions of buildings whose point lies in no piece of their own."""
    point_index, piece_index = shapely.STRtree(pieces.geometry).query(points, predicate="within")
    anchored = np.zeros(len(points), dtype=bool)
    anchored[point_index[pieces.owner[piece_index] == point_index]] = True
    return np.flatnonzero(~anchored)


def _carve(
    pieces: _Pieces,
    missing: np.ndarray,
    footprints: np.ndarray,
    points: np.ndarray,
    community: np.ndarray,
    voronoi: np.ndarray,
) -> _Pieces:
    """Give each building in ``missing`` the part of the pieces at its point nearest to it.

    The new piece is the building's point-Voronoi cell, so no other building loses its own point,
    limited to its footprint plus ``CARVE_M`` and to the pieces already at that spot (or to the
    uncovered space when no piece is there, e.g. a building outside its community polygon).
    """
    tree = shapely.STRtree(pieces.geometry)
    carved = []
    for position in missing:
        reach = shapely.intersection(
            voronoi[position], shapely.buffer(footprints[position], CARVE_M)
        )
        here = tree.query(points[position], predicate="intersects")
        if len(here):
            piece = shapely.intersection(reach, shapely.union_all(pieces.geometry[here]))
        else:
            nearby = tree.query(reach, predicate="intersects")
            piece = shapely.difference(reach, shapely.union_all(pieces.geometry[nearby]))
        carved.append(piece)
    carved = np.array(carved, dtype=object)
    cut = shapely.union_all(carved)
    touched = shapely.intersects(pieces.geometry, cut)
    geometry = pieces.geometry.copy()
    geometry[touched] = shapely.difference(geometry[touched], cut)
    return _Pieces.concat(
        # A stray building's piece belongs to its own community, even inside another's limit.
        [
            _Pieces(geometry, pieces.owner, pieces.community),
            _Pieces(carved, missing, community[missing]),
        ]
    ).exploded()


def _clean(pieces: _Pieces) -> _Pieces:
    """Snap the pieces into an exact coverage (identical shared edges, no overlaps)."""
    # The pieces are cleaned as they are first: rounding each piece on its own opens
    # sub-millimetre slivers between neighbours that the cleaner does not always close (three
    # enclosed gaps in Suzhou's clustered communities). GEOS's cleaner can trip over
    # near-coincident vertices ("CoverageUnion cannot process overlapping inputs"); rounding to
    # a millimetre grid, far below any survey precision, gets past that.
    for grid_size in (0.0, GRID_M, 10 * GRID_M):
        geometry = (
            shapely.set_precision(pieces.geometry, grid_size) if grid_size else pieces.geometry
        )
        rounded = _Pieces(geometry, pieces.owner, pieces.community).exploded()
        try:
            geometry = shapely.coverage_clean(rounded.geometry, gap_width=SLIVER_M)
        except GEOSException:
            continue
        return _Pieces(geometry, rounded.owner, rounded.community).exploded()
    raise CoverageError("the cells could not be cleaned into a coverage")


def _merge_orphans(pieces: _Pieces, points: np.ndarray, n: int) -> np.ndarray:
    """Union each building's anchor piece with the unowned pieces next to it, per community.

    An unowned piece (a gap, an empty enclosure, a split-off part of a cell) joins the
    neighbouring cell of the same community it shares the longest border with; pieces with no
    such neighbour join the nearest cell of their community.
    """
    point_index, piece_index = shapely.STRtree(pieces.geometry).query(points, predicate="within")
    own = pieces.owner[piece_index] == point_index
    group = np.full(len(pieces.geometry), -1)
    group[piece_index[own]] = point_index[own]
    orphans = np.flatnonzero(group < 0)
    if len(orphans):
        _adopt(pieces, group, orphans)
    cells = np.full(n, shapely.Polygon(), dtype=object)
    order = np.argsort(group, kind="stable")
    keys, starts = np.unique(group[order], return_index=True)
    for key, members in zip(keys, np.split(order, starts[1:]), strict=True):
        if key < 0:
            continue
        parts = pieces.geometry[members]
        cells[key] = parts[0] if len(parts) == 1 else shapely.coverage_union_all(parts)
    return cells


def _adopt(pieces: _Pieces, group: np.ndarray, orphans: np.ndarray) -> None:
    """Set ``group`` of each orphan piece to the building it joins (in place)."""
    tree = shapely.STRtree(pieces.geometry)
    left, right = tree.query(pieces.geometry[orphans], predicate="intersects")
    left = orphans[left]
    keep = (left != right) & (pieces.community[left] == pieces.community[right])
    left, right = left[keep], right[keep]
    shared = shapely.length(
        shapely.intersection(
            shapely.boundary(pieces.geometry[left]), shapely.boundary(pieces.geometry[right])
        )
    )
    left, right, shared = left[shared > 0], right[shared > 0], shared[shared > 0]
    while True:
        candidate = (group[left] < 0) & (group[right] >= 0)
        if not candidate.any():
            break
        frame = pd.DataFrame(
            {"orphan": left[candidate], "to": group[right[candidate]], "shared": shared[candidate]}
        )
        best = frame.groupby(["orphan", "to"])["shared"].sum().reset_index()
        best = best.sort_values(["orphan", "shared", "to"], ascending=[True, False, True])
        best = best.drop_duplicates("orphan")
        group[best["orphan"].to_numpy()] = best["to"].to_numpy()
    for orphan in np.flatnonzero(group < 0):
        same = np.flatnonzero((group >= 0) & (pieces.community == pieces.community[orphan]))
        if len(same):
            nearest = same[
                np.argmin(shapely.distance(pieces.geometry[same], pieces.geometry[orphan]))
            ]
            group[orphan] = group[nearest]


def _fill_holes(cells: np.ndarray) -> np.ndarray:
    """Give each hole enclosed by the cells to the cell sharing the longest border with it.

    A hole ringed by one community goes to that community; one ringed by several goes to the
    cell with the longest border (ties: the first building), so no point inside the district's
    cells is left without a cell.
    """
    union = shapely.coverage_union_all(cells)
    holes = shapely.get_parts(shapely.difference(_filled(union), union))
    holes = holes[np.isin(shapely.get_type_id(holes), [3, 6]) & (shapely.area(holes) > 0)]
    if len(holes) == 0:
        return cells
    hole, cell = shapely.STRtree(cells).query(holes, predicate="intersects")
    shared = shapely.length(
        shapely.intersection(shapely.boundary(holes[hole]), shapely.boundary(cells[cell]))
    )
    best = (
        pd.DataFrame({"hole": hole, "cell": cell, "shared": shared})
        .sort_values(["hole", "shared", "cell"], ascending=[True, False, True])
        .drop_duplicates("hole")
    )
    result = cells.copy()
    for position, members in best.groupby("cell")["hole"]:
        result[position] = shapely.union_all(np.append(holes[members.to_numpy()], cells[position]))
    return result


def valid_coverage(
    cells: np.ndarray, points: np.ndarray, community: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """``cells`` as one valid coverage, and the communities whose cells had to be rebuilt.

    GEOS's cleaner and the hole filling can leave two neighbouring cells whose shared edge differs
    by a vertex (Shanghai's 街区067 and 街区232), which no coverage union can process. Then the
    cells are rebuilt from the faces of their noded boundaries: every face goes to the cell
    holding it (a building's point keeps the face it lies in), so shared edges are identical by
    construction. A community still not a coverage after that is rebuilt on its own.
    """
    if shapely.coverage_is_valid(cells):
        return cells, []
    names = np.unique(community)
    rebuilt = [str(n) for n in names if not shapely.coverage_is_valid(cells[community == n])]
    result = _rebuilt_from_faces(cells, points)
    for name in names:
        members = np.flatnonzero(community == name)
        if not shapely.coverage_is_valid(result[members]):
            result[members] = _rebuilt_from_faces(cells[members], points[members])
            rebuilt.append(str(name))
    return result, sorted(set(rebuilt))


def _rebuilt_from_faces(cells: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Cells rebuilt from the polygonised, fully noded union of their boundaries."""
    solid = ~shapely.is_empty(cells)
    lines = shapely.union_all(shapely.boundary(cells[solid]))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(lines)))
    faces = faces[shapely.area(faces) > 0]
    owner = np.full(len(faces), -1)
    face, cell = shapely.STRtree(cells).query(shapely.point_on_surface(faces), predicate="within")
    order = np.lexsort((cell, face))
    first = np.unique(face[order], return_index=True)[1]
    owner[face[order][first]] = cell[order][first]
    point, holder = shapely.STRtree(faces).query(points, predicate="within")
    owner[holder] = point  # a building's point keeps the face it lies in
    result = np.full(len(cells), shapely.Polygon(), dtype=object)
    for position in np.unique(owner[owner >= 0]):
        result[position] = shapely.coverage_union_all(faces[owner == position])
    return result


# --------------------------------------------------------------------------------------------
# outlines and grids


def community_outlines(buildings: gpd.GeoDataFrame, cells: gpd.GeoSeries) -> gpd.GeoDataFrame:
    """The outline of each community: the union of its buildings' cells.

    Returns a GeoDataFrame with ``community`` and geometry, one row per community.
    """
    community = pd.Series(_community_of(buildings), index=buildings.index)
    frame = gpd.GeoDataFrame(
        {"community": community}, geometry=cells.reindex(buildings.index), crs=cells.crs
    )
    return _union_by(frame, "community").reset_index()


def grid_polygons(
    cells: gpd.GeoSeries,
    labels: pd.Series,
    *,
    community: pd.Series | None = None,
) -> gpd.GeoDataFrame:
    """One polygon per grid: the union of its buildings' cells.

    Parameters
    ----------
    cells : GeoSeries
        From :func:`building_cells`, aligned to the buildings.
    labels : Series
        Grid key of each building (aligned to ``cells``; missing = building in no grid).
    community : Series, optional
        Community of each building; a grid spanning two communities is an ``InputError``.

    Returns
    -------
    GeoDataFrame
        Indexed by grid key (``grid``), columns ``community`` (if given), ``n_buildings``,
        ``area_m2`` and geometry. A grid in two pieces stays a MultiPolygon.
    """
    labels = pd.Series(labels, index=cells.index) if not isinstance(labels, pd.Series) else labels
    frame = gpd.GeoDataFrame({"grid": labels.reindex(cells.index)}, geometry=cells, crs=cells.crs)
    if community is not None:
        frame["community"] = community.reindex(cells.index).astype(object)
    frame = frame[frame["grid"].notna()]
    grids = _union_by(frame, "grid")
    grids.insert(0, "n_buildings", frame.groupby("grid", sort=False).size().reindex(grids.index))
    if community is not None:
        spread = frame.groupby("grid", sort=False)["community"].nunique()
        mixed = spread[spread > 1].index.tolist()
        if mixed:
            raise InputError(
                f"grids {_sample(mixed)} hold buildings of more than one community; "
                "a grid must belong to exactly one community"
            )
        grids.insert(0, "community", frame.groupby("grid", sort=False)["community"].first())
    grids["area_m2"] = grids.geometry.area
    return grids


def update_grid_polygons(
    previous: gpd.GeoDataFrame,
    cells: gpd.GeoSeries,
    labels: pd.Series,
    changed_keys: Iterable,
    *,
    community: pd.Series | None = None,
) -> gpd.GeoDataFrame:
    """``previous`` with only the grids in ``changed_keys`` recomputed (or dropped if now empty).

    Examples
    --------
    After moving one building from grid ``a`` to grid ``b``, only ``a`` and ``b`` are unioned
    again: ``update_grid_polygons(grids, cells, labels, {"a", "b"})``.
    """
    changed = set(changed_keys)
    keep = previous[~previous.index.isin(changed)]
    still = labels[labels.isin(changed)]
    if still.empty:
        return keep
    fresh = grid_polygons(
        cells.loc[still.index],
        still,
        community=None if community is None else community.loc[still.index],
    )
    return pd.concat(
        [keep, fresh[keep.columns.intersection(fresh.columns, sort=False)]]
    ).rename_axis("grid")


def simplified(grids: gpd.GeoDataFrame, *, tolerance_m: float = 2.0) -> gpd.GeoDataFrame:
    """A lighter copy of ``grids`` for display; edges shared by two grids stay shared.

    The whole layer is simplified at once when it is a valid coverage (community boundaries stay
    shared too); otherwise each community is simplified with its outline kept as it is.
    """
    result = grids.copy()
    geometry = grids.geometry.values
    if shapely.coverage_is_valid(geometry):
        result.geometry = shapely.coverage_simplify(geometry, tolerance_m)
        return result
    groups = grids["community"] if "community" in grids else pd.Series("", index=grids.index)
    simple = np.empty(len(grids), dtype=object)
    for _, members in groups.groupby(groups, sort=False).indices.items():
        simple[members] = shapely.coverage_simplify(
            geometry[members], tolerance_m, simplify_boundary=False
        )
    result.geometry = simple
    return result


def coverage_report(
    grids: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    *,
    labels: pd.Series,
    community_outlines: gpd.GeoDataFrame,
) -> pd.DataFrame:
    """Check each community's grids: a valid coverage, no overlap, no gap, buildings inside.

    Parameters
    ----------
    grids : GeoDataFrame
        From :func:`grid_polygons` (index = grid key, ``community`` column).
    buildings : GeoDataFrame
        The footprints.
    labels : Series
        Grid key of each building.
    community_outlines : GeoDataFrame
        ``community`` and geometry: the given community polygons, or :func:`community_outlines`.

    Returns
    -------
    DataFrame
        Indexed by community: ``n_grids``, ``coverage_is_valid``, ``overlap_m2`` (area covered by
        two grids), ``gap_m2`` (area inside the outline, holes filled, that no grid of any
        community covers), ``n_outside`` and ``outside`` (buildings whose representative point is
        not inside their own grid).
    """
    points = buildings.representative_point()
    key = labels.reindex(buildings.index)
    has_grid = key.notna() & key.isin(grids.index)
    own = grids.geometry.reindex(key[has_grid]).values
    inside = pd.Series(False, index=buildings.index)
    inside[has_grid] = shapely.within(points[has_grid].values, own)
    building_community = pd.Series(_community_of(buildings), index=buildings.index)
    everything = shapely.union_all(grids.geometry.values)
    outlines = community_outlines.set_index("community").geometry
    rows = {}
    for name, members in grids.groupby("community", sort=True):
        geometry = members.geometry.values
        union = shapely.union_all(geometry)
        outline = outlines.get(name, union)
        filled = shapely.union_all(
            shapely.polygons(shapely.get_exterior_ring(shapely.get_parts(outline)))
        )
        outside = buildings.index[(building_community == name) & ~inside].tolist()
        rows[name] = {
            "n_grids": len(members),
            "coverage_is_valid": bool(shapely.coverage_is_valid(geometry)),
            "overlap_m2": float(shapely.area(geometry).sum() - shapely.area(union)),
            "gap_m2": float(shapely.area(shapely.difference(filled, everything))),
            "n_outside": len(outside),
            "outside": outside,
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("community")


# --------------------------------------------------------------------------------------------
# helpers


def _union_by(frame: gpd.GeoDataFrame, column: str) -> gpd.GeoDataFrame:
    """Coverage-union the geometries of ``frame`` per value of ``column`` (first-seen order)."""
    geometry = frame.geometry.values
    groups = frame.groupby(column, sort=False).indices
    unions = [
        geometry[members[0]] if len(members) == 1 else _union(geometry[members])
        for members in groups.values()
    ]
    return gpd.GeoDataFrame(
        geometry=unions, index=pd.Index(list(groups), name=column), crs=frame.crs
    )


def _union(geometry: np.ndarray) -> shapely.Geometry:
    """The union of cells: fast as a coverage, by overlay when the cells are not one."""
    try:
        return shapely.coverage_union_all(geometry)
    except GEOSException:
        # Cells stored before coverages were checked at import may not be one; never fail here.
        return shapely.union_all(geometry)


def _anchors(footprints: np.ndarray) -> np.ndarray:
    """Each building's representative point; repeats (duplicate footprints) nudged apart.

    Two identical OSM footprints share one point, which only one cell can hold; the other gets a
    point a centimetre east so that it still gets a cell of its own.
    """
    points = shapely.point_on_surface(footprints)
    repeat = pd.Series(shapely.to_wkb(points)).groupby(shapely.to_wkb(points)).cumcount().to_numpy()
    if repeat.any():
        xy = shapely.get_coordinates(points[repeat > 0])
        points[repeat > 0] = shapely.points(xy[:, 0] + 0.01 * repeat[repeat > 0], xy[:, 1])
    return points


def _footprints(geometry: np.ndarray) -> np.ndarray:
    """Valid polygonal footprints (a building make_valid turns into a line keeps a cm around it).

    make_valid can return a collection of polygons and lines for a self-intersecting ring;
    momepy needs polygons, and every building needs an area to hold its point.
    """
    valid = shapely.make_valid(geometry)
    odd = np.flatnonzero(~np.isin(shapely.get_type_id(valid), [3, 6]))
    for position in odd:
        parts = shapely.get_parts(valid[position])
        polygons = parts[np.isin(shapely.get_type_id(parts), [3, 6])]
        valid[position] = (
            shapely.union_all(polygons) if len(polygons) else shapely.buffer(valid[position], 0.01)
        )
    return valid


def _polygonal(geometry: shapely.Geometry) -> shapely.Geometry:
    """The valid polygonal part of ``geometry`` (drops slivers collapsed to lines or points)."""
    parts = shapely.get_parts(shapely.make_valid(geometry))
    return shapely.union_all(parts[np.isin(shapely.get_type_id(parts), [3, 6])])


def _filled(geometry: shapely.Geometry) -> shapely.Geometry:
    """``geometry`` without its holes."""
    return shapely.union_all(
        shapely.polygons(shapely.get_exterior_ring(shapely.get_parts(geometry)))
    )


def _community_of(buildings: gpd.GeoDataFrame) -> np.ndarray:
    if "community" not in buildings:
        return np.full(len(buildings), "", dtype=object)
    return (
        buildings["community"]
        .astype(object)
        .where(buildings["community"].notna(), "")
        .astype(str)
        .to_numpy(dtype=object)
    )


def _community_polygons(communities: gpd.GeoDataFrame, crs) -> gpd.GeoSeries:
    if "community" not in communities:
        raise InputError("the community polygons have no 'community' column")
    communities = (
        communities.to_crs(crs) if communities.crs is not None and crs is not None else communities
    )
    geometry = shapely.make_valid(communities.geometry.values)
    polygons = shapely.get_parts(geometry)
    name = (
        communities["community"]
        .astype(str)
        .to_numpy()[shapely.get_parts(geometry, return_index=True)[1]]
    )
    polygonal = np.isin(shapely.get_type_id(polygons), [3, 6])
    frame = gpd.GeoDataFrame({"community": name[polygonal]}, geometry=polygons[polygonal], crs=crs)
    return frame.dissolve("community").geometry


def _lines(roads: gpd.GeoDataFrame | gpd.GeoSeries, crs) -> np.ndarray:
    series = roads.geometry if isinstance(roads, gpd.GeoDataFrame) else roads
    if series.crs is not None and crs is not None:
        series = series.to_crs(crs)
    parts = shapely.get_parts(series.values)
    return parts[np.isin(shapely.get_type_id(parts), [1, 2])]


def _check_metric(buildings: gpd.GeoDataFrame) -> None:
    if buildings.crs is not None and buildings.crs.is_geographic:
        raise InputError(
            "the buildings are in longitude/latitude; cells need a metric CRS",
            hint="reproject first, e.g. buildings.to_crs(buildings.estimate_utm_crs())",
        )


def _sample(values: list, limit: int = 5) -> str:
    shown = ", ".join(map(str, values[:limit]))
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")
