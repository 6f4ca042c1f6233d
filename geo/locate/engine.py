"""Points to building, grid, community and worker: one point or ten million.

:class:`GridIndex` is built once per plan from the buildings and the plan's grid polygons (both in
the district's metric CRS) and answers, for every point: the footprint that contains it
(``building_id``), the grid that contains it (``grid_code``; the nearest grid when none does), its
``community`` and ``worker``, the distance to the nearest building and to that grid, and a
``status``: ``in_building``, ``in_grid`` or ``outside``.

Boundary rule
-------------
A point on a polygon's edge or vertex lies in that polygon (shapely ``intersects``, not
``contains``). A point on an edge or vertex shared by several grids belongs to exactly one: the
one with the lowest ``grid_code`` (string order). The same rule picks the lowest ``building_id``
where footprints touch or overlap, and the lowest ``grid_code`` among grids at equal distance
from an outside point.

Speed
-----
One point (:meth:`GridIndex.locate_point`) and small batches go through shapely's STRtree
(``query`` with ``intersects``, ``query_nearest``): tens of microseconds a point. Per-point
``query_nearest`` costs about 5 microseconds, too slow for millions, so the first batch of
20,000+ points builds a cell table per layer (about a million square cells over the district,
once per index, a few seconds): a cell inside one polygon answers at once; a cell crossing edges
keeps its candidate polygons (tested with ``shapely.intersects_xy``) and the few polygon edges
that can be nearest to any point in it (point-to-edge distances in numpy). Buildings and grids
are queried on two threads. Both paths give the same answers; the tests hold them to it.
"""

from __future__ import annotations

import codecs
import difflib
import io
import math
import re
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from geo.crs import (
    MISSING,
    NOT_A_NUMBER,
    check_lonlat,
    coordinate_error,
    from_wgs84,
    parse_crs_name,
    to_wgs84,
    transformer,
)
from geo.errors import CoordinateError, CRSError, InputError, NotFound
from geo.exchange.csvsafe import csv_safe

__all__ = ["STATUSES", "GridIndex", "find_by_address", "locate_csv"]

STATUSES = ("in_building", "in_grid", "outside", "invalid")
COLUMNS = [
    "building_id",
    "grid_code",
    "community",
    "worker",
    "distance_m",
    "grid_distance_m",
    "status",
]
# Below this many points the STRtree path is faster than building the cell tables.
_CELL_THRESHOLD = 20_000
# Points per internal block of the cell path: bounds the candidate-pair arrays to ~100 MB.
_BLOCK = 100_000
# Edges per point tried before the distance bound decides whether the rest are needed.
_FIRST = 3
_WGS84 = pyproj.CRS.from_epsg(4326)


def _segments(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every edge of every ring as ``(n, 4)`` x0, y0, x1, y1, and the polygon it belongs to."""
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    coords, coord_of = shapely.get_coordinates(rings, return_index=True)
    same_ring = coord_of[:-1] == coord_of[1:]
    ends = np.hstack([coords[:-1], coords[1:]])[same_ring]
    return ends, part_of[ring_of[coord_of[:-1][same_ring]]]


def _blocks(counts: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expand per-point runs ``starts[i] .. starts[i] + counts[i]`` of a CSR table.

    Returns every pair's position in the table and where each point's run begins in the
    output (for ``np.minimum.reduceat``).
    """
    offsets = np.cumsum(counts) - counts
    position = np.repeat(starts - offsets, counts)
    position += np.arange(position.size)
    return position, offsets


def _edge_table(ends: np.ndarray) -> np.ndarray:
    """Per edge: start x, y, direction dx, dy and 1 / length^2 (0 for a zero-length edge)."""
    dx, dy = ends[:, 2] - ends[:, 0], ends[:, 3] - ends[:, 1]
    length2 = dx * dx + dy * dy
    inverse = np.divide(1.0, length2, out=np.zeros_like(length2), where=length2 > 0)
    return np.column_stack([ends[:, 0], ends[:, 1], dx, dy, inverse])


def _point_segment_distance2(px: np.ndarray, py: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Squared distance from each point to its edge (rows of :func:`_edge_table`)."""
    # In-place arithmetic: this runs on tens of millions of (point, edge) pairs per second.
    dx, dy = edges[:, 2], edges[:, 3]
    qx, qy = px - edges[:, 0], py - edges[:, 1]
    t = qx * dx
    t += qy * dy
    t *= edges[:, 4]
    np.clip(t, 0.0, 1.0, out=t)
    qx -= dx * t
    qy -= dy * t
    qx *= qx
    qy *= qy
    qx += qy
    return qx


@dataclass(eq=False, repr=False)
class _Layer:
    """Polygons in priority order (index 0 wins ties) with exact point lookups."""

    geoms: np.ndarray
    extent: tuple[float, float, float, float] | None = None  # where the cell table reaches
    tree: shapely.STRtree = field(init=False)
    cells: _Cells | None = field(default=None, init=False)
    # GEOS prepared geometries are not thread-safe (libgeos/geos#825): one query at a time per
    # layer, so a web server's threads may share one index.
    lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        shapely.prepare(self.geoms)
        self.tree = shapely.STRtree(self.geoms)

    def lookup_tree(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Covering polygon (else the nearest) and distance, through the STRtree."""
        points = shapely.points(x, y)
        n, none = len(points), len(self.geoms)
        cover = np.full(n, none, dtype=np.int64)
        hit_point, hit_geom = self.tree.query(points, predicate="intersects")
        np.minimum.at(cover, hit_point, hit_geom)
        found = cover < none
        distance = np.zeros(n)
        rest = np.flatnonzero(~found)
        if rest.size:
            # all_matches keeps every polygon at the same distance: the lowest index wins.
            (near_point, near_geom), near_distance = self.tree.query_nearest(
                points[rest], return_distance=True, all_matches=True
            )
            nearest = np.full(rest.size, none, dtype=np.int64)
            np.minimum.at(nearest, near_point, near_geom)
            cover[rest] = nearest
            distance[rest[near_point]] = near_distance
        return cover, distance

    def lookup(
        self, x: np.ndarray, y: np.ndarray, *, nearest_polygon: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(index, distance)``: distance 0 where a polygon covers the point.

        Without ``nearest_polygon`` the index of points outside every polygon is left
        unspecified (the distance is still exact), which saves a pass.
        """
        with self.lock:
            if self.cells is None and x.size < _CELL_THRESHOLD:
                return self.lookup_tree(x, y)
            if self.cells is None:
                self.cells = _Cells.build(self)
            return self._lookup_cells(x, y, nearest_polygon)

    def _lookup_cells(
        self, x: np.ndarray, y: np.ndarray, nearest_polygon: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        index = np.empty(x.size, dtype=np.int64)
        distance = np.empty(x.size)
        for start in range(0, x.size, _BLOCK):
            part = slice(start, start + _BLOCK)
            index[part], distance[part] = self.cells.lookup(
                self, x[part], y[part], nearest_polygon=nearest_polygon
            )
        return index, distance


@dataclass(frozen=True)
class _Grid:
    """One level of square cells: cell id = row * nx + column."""

    x0: float
    y0: float
    size: float
    nx: int
    ny: int

    @property
    def radius(self) -> float:
        return self.size * math.sqrt(2.0) / 2.0

    def centres(self, cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        row, column = np.divmod(cell, self.nx)
        return self.x0 + (column + 0.5) * self.size, self.y0 + (row + 0.5) * self.size

    def boxes(self, cell: np.ndarray) -> np.ndarray:
        row, column = np.divmod(cell, self.nx)
        x, y = self.x0 + column * self.size, self.y0 + row * self.size
        return shapely.box(x, y, x + self.size, y + self.size)

    def child(self) -> _Grid:
        return _Grid(self.x0, self.y0, self.size / 2, self.nx * 2, self.ny * 2)

    def children(self, cell: np.ndarray, dx: int, dy: int) -> np.ndarray:
        row, column = np.divmod(cell, self.nx)
        return (2 * row + dy) * (2 * self.nx) + 2 * column + dx


def _group_starts(sorted_owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each run of equal owners starts, and each element's run number."""
    starts = np.flatnonzero(np.diff(sorted_owner, prepend=-1))
    run = np.cumsum(np.diff(sorted_owner, prepend=-1) != 0) - 1
    return starts, run


def _classify(layer: _Layer, grid: _Grid, cell: np.ndarray, geom: np.ndarray, n: int):
    """From (cell, polygon) intersecting pairs: cells inside one polygon, and mixed pairs."""
    count = np.bincount(cell, minlength=n)
    single = np.flatnonzero(count[cell] == 1)
    inside = shapely.covers(layer.geoms[geom[single]], grid.boxes(cell[single]))
    full = np.full(n, -1, dtype=np.int64)
    full[cell[single[inside]]] = geom[single[inside]]
    mixed = full[cell] < 0
    return full, cell[mixed], geom[mixed]


def _refine_cover(layer, grid: _Grid, child: _Grid, full, cell, geom):
    """The children's full cells and (cell, polygon) pairs, from the parent level's."""
    n = child.nx * child.ny
    child_full = np.full(n, -1, dtype=np.int64)
    parents = np.flatnonzero(full >= 0)
    pair_cells, pair_geoms = [], []
    for dy in (0, 1):
        for dx in (0, 1):
            child_full[grid.children(parents, dx, dy)] = full[parents]
            kid = grid.children(cell, dx, dy)
            hit = shapely.intersects(layer.geoms[geom], child.boxes(kid))
            pair_cells.append(kid[hit])
            pair_geoms.append(geom[hit])
    kid, kid_geom = np.concatenate(pair_cells), np.concatenate(pair_geoms)
    more_full, kid, kid_geom = _classify(layer, child, kid, kid_geom, n)
    child_full = np.where(more_full >= 0, more_full, child_full)
    order = np.argsort(kid, kind="stable")
    return child_full, kid[order], kid_geom[order]


def _refine_edges(grid: _Grid, cell, edge, full, table):
    """The children's candidate edges, filtered from their parent's (sorted by cell).

    For a child with centre c and half-diagonal r, any set of edges gives an upper bound
    U = min dist(c, e) on the distance from c to the nearest edge, and an edge nearest to
    some point of the child lies within U + 2r of c. The parent's list holds every edge that
    can be nearest in the parent, so filtering it is enough.
    """
    keep_parent = full[cell] < 0  # a full parent has full children: no distances needed
    cell, edge = cell[keep_parent], edge[keep_parent]
    starts, run = _group_starts(cell)
    child_radius = grid.radius / 2
    out_cells, out_edges = [], []
    edges = table[edge]
    for dy in (0, 1):
        for dx in (0, 1):
            kid = grid.children(cell, dx, dy)
            cx, cy = grid.child().centres(kid)
            d = np.sqrt(_point_segment_distance2(cx, cy, edges))
            bound = np.minimum.reduceat(d, starts)[run] + 2 * child_radius
            keep = d <= bound
            out_cells.append(kid[keep])
            out_edges.append(edge[keep])
    kid, kid_edge = np.concatenate(out_cells), np.concatenate(out_edges)
    order = np.argsort(kid, kind="stable")
    return kid[order], kid_edge[order]


def _coarse_grid(layer: _Layer, *, cells: int, levels: int) -> _Grid:
    """The coarsest level: ``levels`` halvings from cells of about ``cells`` over the extent."""
    minx, miny, maxx, maxy = layer.extent or shapely.total_bounds(layer.geoms)
    area = max((maxx - minx) * (maxy - miny), 1.0)
    # Smaller cells mean fewer candidate edges per point but a longer build.
    size = max(math.sqrt(area / cells), 0.5) * 2**levels
    nx, ny = int((maxx - minx) // size) + 1, int((maxy - miny) // size) + 1
    return _Grid(minx, miny, size, nx, ny)


def _coarse_edges(layer: _Layer, grid: _Grid, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cell, edge) pairs, by cell: the edges that can be nearest to a point in each coarse cell."""
    # A point p in a cell with centre c (half-diagonal r) outside every polygon has its
    # nearest edge within d(c) + r of p, hence within d(c) + 2r of c: those edges suffice.
    n = grid.nx * grid.ny
    centres = shapely.points(*grid.centres(np.arange(n)))
    (near_cell, _), near_distance = layer.tree.query_nearest(centres, return_distance=True)
    reach = np.zeros(n)
    reach[near_cell] = near_distance + 2 * grid.radius
    lines = shapely.linestrings(ends.reshape(-1, 2, 2))
    edge_cell, edge = shapely.STRtree(lines).query(centres, predicate="dwithin", distance=reach)
    order = np.argsort(edge_cell, kind="stable")
    return edge_cell[order], edge[order]


def _edges_nearest_first(
    grid: _Grid, edge_cell: np.ndarray, edge: np.ndarray, table: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each cell's edges as CSR (start, count, index), nearest its centre first, and the
    distance from the centre to its (_FIRST + 1)-th edge (inf with fewer)."""
    # A point's distance to the first few edges bounds the rest: lookup stops early for most.
    n_cells = grid.nx * grid.ny
    cx, cy = grid.centres(edge_cell)
    from_centre = np.sqrt(_point_segment_distance2(cx, cy, table[edge]))
    order = np.lexsort((from_centre, edge_cell))
    edge_cell, edge, from_centre = edge_cell[order], edge[order], from_centre[order]
    edge_start, edge_count, edge_index = _csr(edge_cell, edge, n_cells)
    later = np.flatnonzero(edge_count > _FIRST)
    next_from_centre = np.full(n_cells, np.inf)
    next_from_centre[later] = from_centre[edge_start[later] + _FIRST]
    return edge_start, edge_count, edge_index, next_from_centre


@dataclass(eq=False, repr=False)
class _Cells:
    """A square-cell table over the layer's extent (see the module docstring).

    Built coarse to fine: a cell's candidates are a subset of its parent's, so only the
    coarsest level asks the STRtree; each finer level filters its parent's lists in numpy.
    """

    origin: tuple[float, float]
    size: float
    shape: tuple[int, int]
    full: np.ndarray  # polygon covering the whole cell, else -1
    cover_start: np.ndarray  # CSR of candidate polygons for cells crossing edges
    cover_count: np.ndarray
    cover_geom: np.ndarray
    edge_start: np.ndarray  # CSR of edges that can be nearest to a point in the cell
    edge_count: np.ndarray
    edge_index: np.ndarray  # into edge_table, nearest the cell centre first
    # distance from the cell centre to its (_FIRST + 1)-th edge (inf with fewer): the only
    # centre distance lookups need (see _nearest_edge)
    next_from_centre: np.ndarray
    edge_table: np.ndarray  # see _edge_table
    edge_geom: np.ndarray  # polygon of each edge

    @classmethod
    def build(cls, layer: _Layer, *, cells: int = 1_000_000, levels: int = 3) -> _Cells:
        """The table of ``layer``: about ``cells`` cells, refined ``levels`` times from coarse ones."""
        ends, edge_geom = _segments(layer.geoms)
        table = _edge_table(ends)
        grid = _coarse_grid(layer, cells=cells, levels=levels)
        n_coarse = grid.nx * grid.ny
        cover_cell, cover = layer.tree.query(
            grid.boxes(np.arange(n_coarse)), predicate="intersects"
        )
        full, cover_cell, cover = _classify(layer, grid, cover_cell, cover, n_coarse)
        edge_cell, edge = _coarse_edges(layer, grid, ends)
        for _ in range(levels):
            edge_cell, edge = _refine_edges(grid, edge_cell, edge, full, table)
            child = grid.child()
            full, cover_cell, cover = _refine_cover(layer, grid, child, full, cover_cell, cover)
            grid = child

        n_cells = grid.nx * grid.ny
        cover_start, cover_count, cover_geom = _csr(cover_cell, cover, n_cells)
        # Each cell's candidates in ascending order, so the lowest index can win by reduceat.
        cover_geom = cover_geom[
            np.lexsort((cover_geom, np.repeat(np.arange(n_cells), cover_count)))
        ]
        need = full[edge_cell] < 0
        edge_start, edge_count, edge_index, next_from_centre = _edges_nearest_first(
            grid, edge_cell[need], edge[need], table
        )
        return cls(
            origin=(grid.x0, grid.y0),
            size=grid.size,
            shape=(grid.ny, grid.nx),
            full=full,
            cover_start=cover_start,
            cover_count=cover_count,
            cover_geom=cover_geom,
            edge_start=edge_start,
            edge_count=edge_count,
            edge_index=edge_index.astype(np.int32),
            next_from_centre=next_from_centre,
            edge_table=table,
            edge_geom=edge_geom,
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """What cannot be cheaply derived again, in the narrowest integer types (see
        :meth:`from_arrays`): about 3 bytes a cell and 4 per listed edge."""
        return {
            "origin": np.asarray(self.origin, dtype=np.float64),
            "size": np.asarray(self.size, dtype=np.float64),
            "shape": np.asarray(self.shape, dtype=np.int64),
            "full": self.full.astype(np.int32),
            "cover_count": _narrow(self.cover_count),
            "cover_geom": self.cover_geom.astype(np.int32),
            "edge_count": _narrow(self.edge_count),
            "edge_index": self.edge_index.astype(np.int32),
            "next_from_centre": self.next_from_centre,
        }

    @classmethod
    def from_arrays(cls, layer: _Layer, arrays: dict[str, np.ndarray]) -> _Cells:
        """The table :meth:`to_arrays` kept, for ``layer``: the starts are cumulative counts and
        the edges are computed again from the polygons, exactly as :meth:`build` computed them,
        so lookups give bit-identical answers."""
        ends, edge_geom = _segments(layer.geoms)
        table = _edge_table(ends)
        ny, nx = (int(v) for v in arrays["shape"])
        origin = tuple(float(v) for v in arrays["origin"])
        size = float(arrays["size"])
        # Counts become signed (their starts are subtracted); the index arrays stay int32 as
        # kept: copying them to int64 cost a fresh process a tenth of a second in page faults.
        cover_count = arrays["cover_count"].astype(np.int64)
        edge_count = arrays["edge_count"].astype(np.int64)
        return cls(
            origin=origin,
            size=size,
            shape=(ny, nx),
            full=arrays["full"].astype(np.int32, copy=False),
            cover_start=np.cumsum(cover_count) - cover_count,
            cover_count=cover_count,
            cover_geom=arrays["cover_geom"].astype(np.int32, copy=False),
            edge_start=np.cumsum(edge_count) - edge_count,
            edge_count=edge_count,
            edge_index=arrays["edge_index"].astype(np.int32, copy=False),
            next_from_centre=arrays["next_from_centre"].astype(np.float64, copy=False),
            edge_table=table,
            edge_geom=edge_geom,
        )

    def lookup(
        self, layer: _Layer, x: np.ndarray, y: np.ndarray, *, nearest_polygon: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        ny, nx = self.shape
        none = len(layer.geoms)
        ix = np.floor((x - self.origin[0]) / self.size)
        iy = np.floor((y - self.origin[1]) / self.size)
        in_table = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        cell = np.where(in_table, iy * nx + ix, 0).astype(np.int64)
        index = np.where(in_table, self.full[cell], -1)
        distance = np.zeros(x.size)

        # Cells crossing edges: exact tests against their few candidate polygons.
        todo = np.flatnonzero(in_table & (self.cover_count[cell] > 0))
        if todo.size:
            c = cell[todo]
            position, offsets = _blocks(self.cover_count[c], self.cover_start[c])
            geom = self.cover_geom[position]
            counts = self.cover_count[c]
            hit = shapely.intersects_xy(
                layer.geoms[geom], np.repeat(x[todo], counts), np.repeat(y[todo], counts)
            )
            best = np.minimum.reduceat(np.where(hit, geom, none), offsets)
            index[todo] = np.where(best < none, best, -1)

        # Points in no polygon: the nearest edge among the cell's candidates.
        todo = np.flatnonzero(in_table & (index < 0) & (self.edge_count[cell] > 0))
        if todo.size:
            index[todo], distance[todo] = self._nearest_edge(
                x[todo], y[todo], cell[todo], none, nearest_polygon
            )

        # Outside the table (or not finite): the STRtree answers.
        rest = np.flatnonzero(~in_table | ((distance == 0) & (index < 0)))
        if rest.size:
            index[rest], distance[rest] = layer.lookup_tree(x[rest], y[rest])
        return index, distance

    def _nearest_edge(
        self, x: np.ndarray, y: np.ndarray, cell: np.ndarray, none: int, nearest_polygon: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Nearest listed edge of each point's cell: its polygon (ties: lowest) and distance.

        First the ``_FIRST`` edges nearest the cell centre; an edge e further down the list is
        at least ``from_centre(e) - |p - centre|`` from p, so only points whose best so far is
        not below that bound look at the rest of their list.
        """
        counts = self.edge_count[cell]
        starts = self.edge_start[cell]
        first = np.minimum(counts, _FIRST)
        best, pairs = self._edge_pass(x, y, starts, first)
        size = self.size
        cx = self.origin[0] + (np.floor((x - self.origin[0]) / size) + 0.5) * size
        cy = self.origin[1] + (np.floor((y - self.origin[1]) / size) + 0.5) * size
        more = np.flatnonzero(counts > first)
        bound = self.next_from_centre[cell[more]] - np.hypot(x[more] - cx[more], y[more] - cy[more])
        # A micrometre of slack keeps rounding from hiding an equally near edge (ties matter).
        more = more[np.sqrt(best[more]) >= bound - 1e-6]
        rest_best, rest_pairs = self._edge_pass(
            x[more], y[more], starts[more] + first[more], counts[more] - first[more]
        )
        best[more] = np.minimum(best[more], rest_best)
        index = np.full(x.size, -1, dtype=np.int64)
        if nearest_polygon:
            index = self._lowest_polygon(pairs, best, first, none)
            if more.size:
                rest = self._lowest_polygon(
                    rest_pairs, best[more], counts[more] - first[more], none
                )
                index[more] = np.minimum(index[more], rest)
        return index, np.sqrt(best)

    def _edge_pass(self, x, y, starts, counts):
        """Squared distance from each point to the nearest of its ``counts`` edges."""
        position, offsets = _blocks(counts, starts)
        edge = self.edge_index[position]
        d2 = _point_segment_distance2(
            np.repeat(x, counts), np.repeat(y, counts), np.take(self.edge_table, edge, axis=0)
        )
        best = np.minimum.reduceat(d2, offsets) if d2.size else np.empty(0)
        return best, (edge, d2, offsets)

    def _lowest_polygon(self, pairs, best, counts, none) -> np.ndarray:
        edge, d2, offsets = pairs
        if not d2.size:
            return np.full(best.size, none, dtype=np.int64)
        geom = np.where(d2 <= np.repeat(best, counts), self.edge_geom[edge], none)
        return np.minimum.reduceat(geom, offsets)


def _narrow(counts: np.ndarray) -> np.ndarray:
    """Non-negative integers in the smallest unsigned type that holds them."""
    return counts.astype(np.min_scalar_type(int(counts.max()) if counts.size else 0))


def _csr(owner: np.ndarray, value: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    order = np.argsort(owner, kind="stable")
    count = np.bincount(owner, minlength=n)
    start = np.cumsum(count) - count
    return start, count, value[order]


def _check_columns(buildings: gpd.GeoDataFrame, grids: gpd.GeoDataFrame) -> None:
    """Refuse a frame without the columns :meth:`GridIndex.build` reads, or an empty one."""
    for name, frame, columns in (
        ("buildings", buildings, ("building_id",)),
        ("grids", grids, ("grid_code", "community")),
    ):
        missing = [column for column in columns if column not in frame.columns]
        if missing:
            raise InputError(f"{name} lack the column(s) {', '.join(missing)}")
        if frame.empty:
            raise InputError(f"no {name} to locate points in")


def _check_crs(
    buildings: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, crs: str | int | pyproj.CRS | None
) -> None:
    """Refuse frames whose CRS is missing, differs between them or from ``crs``, or is not metric."""
    if buildings.crs is None or grids.crs is None:
        raise CRSError("buildings and grids must carry a coordinate system")
    if buildings.crs != grids.crs:
        raise CRSError(f"buildings are in {buildings.crs.name} but grids in {grids.crs.name}")
    if crs is not None:
        wanted = parse_crs_name(crs)
        if isinstance(wanted, str) or wanted != buildings.crs:
            raise CRSError(f"buildings and grids are in {buildings.crs.name}, not {crs}")
    if not buildings.crs.is_projected:
        raise CRSError(
            f"buildings are in {buildings.crs.name}; locate works in a metric CRS",
            hint="reproject with geo.crs.metric_crs_for",
        )


def _check_unique(buildings: gpd.GeoDataFrame, grids: gpd.GeoDataFrame) -> None:
    """Refuse missing or repeated building ids and grid codes."""
    for name, frame, column in (
        ("buildings", buildings, "building_id"),
        ("grids", grids, "grid_code"),
    ):
        repeated = frame[column][frame[column].duplicated()]
        if frame[column].isna().any() or not repeated.empty:
            raise InputError(
                f"{name} need a unique, non-empty {column}",
                hint=f"repeated: {', '.join(map(str, repeated.unique()[:5]))}",
            )


def _shared_extent(
    buildings: gpd.GeoDataFrame, grids: gpd.GeoDataFrame
) -> tuple[float, float, float, float]:
    """One extent for both cell tables: both layers' box plus 100 m; the STRtree answers beyond."""
    minx, miny, maxx, maxy = np.vstack([buildings.total_bounds, grids.total_bounds]).T
    margin = 100.0
    return (
        minx.min() - margin,
        miny.min() - margin,
        maxx.max() + margin,
        maxy.max() + margin,
    )


def _bounds_wgs84(grids: gpd.GeoDataFrame) -> tuple[float, float, float, float]:
    """``grids.to_crs(4326).total_bounds``, from the vertices alone: the same transformer on the
    same coordinates (what geopandas does), without rebuilding every polygon in degrees (that
    took two thirds of the time: 0.2 s for 8,000 grids)."""
    xy = shapely.get_coordinates(np.asarray(grids.geometry.array, dtype=object))
    lon, lat = transformer(grids.crs, _WGS84).transform(xy[:, 0], xy[:, 1])
    return (np.nanmin(lon), np.nanmin(lat), np.nanmax(lon), np.nanmax(lat))


@dataclass(eq=False)
class GridIndex:
    """Buildings and grids of one plan, ready to locate points.

    Build it with :meth:`build` once per plan and reuse it.

    Examples
    --------
    >>> index = GridIndex.build(buildings, grids)  # doctest: +SKIP
    >>> index.locate_point(521_345.0, 3_463_210.0)["status"]  # doctest: +SKIP
    'in_grid'
    """

    crs: pyproj.CRS
    building_ids: np.ndarray
    grid_codes: np.ndarray
    communities: np.ndarray
    workers: np.ndarray
    buildings: _Layer
    grids: _Layer
    bounds_wgs84: tuple[float, float, float, float]
    _communities: np.ndarray = field(init=False, repr=False)
    _community_codes: np.ndarray = field(init=False, repr=False)
    _workers: np.ndarray = field(init=False, repr=False)
    _worker_codes: np.ndarray = field(init=False, repr=False)

    def __repr__(self) -> str:
        return (
            f"GridIndex({len(self.building_ids):,} buildings, {len(self.grid_codes):,} grids, "
            f"{self.crs.name})"
        )

    def __post_init__(self) -> None:
        # Categorical codes per grid: a million located rows cost a few integer arrays.
        self._community_codes, self._communities = pd.factorize(self.communities, sort=True)
        codes, self._workers = pd.factorize(self.workers, sort=True, use_na_sentinel=True)
        self._worker_codes = codes

    @classmethod
    def build(
        cls,
        buildings: gpd.GeoDataFrame,
        grids: gpd.GeoDataFrame,
        *,
        crs: str | int | pyproj.CRS | None = None,
    ) -> GridIndex:
        """Index ``buildings`` (``building_id``, geometry) and ``grids`` (``grid_code``,
        ``community``, ``worker``, polygons) for locating points.

        Parameters
        ----------
        buildings, grids : geopandas.GeoDataFrame
            In the same metric CRS.
        crs : optional
            The CRS the frames must be in (default: theirs).

        Raises
        ------
        InputError
            A required column is missing or a frame is empty.
        CRSError
            The frames' CRS differ, are missing, are not metric, or differ from ``crs``.
        """
        _check_columns(buildings, grids)
        _check_crs(buildings, grids, crs)
        _check_unique(buildings, grids)
        # Priority order: the lowest building_id / grid_code wins a shared boundary.
        buildings = buildings.sort_values("building_id", key=lambda s: s.astype(str))
        grids = grids.sort_values("grid_code", key=lambda s: s.astype(str))
        workers = grids["worker"] if "worker" in grids.columns else pd.Series(None, grids.index)
        west, south, east, north = _bounds_wgs84(grids)
        extent = _shared_extent(buildings, grids)
        return cls(
            crs=buildings.crs,
            building_ids=buildings["building_id"].to_numpy(dtype=object),
            grid_codes=grids["grid_code"].to_numpy(dtype=object),
            communities=grids["community"].to_numpy(dtype=object),
            workers=workers.astype(object).where(workers.notna(), None).to_numpy(dtype=object),
            buildings=_Layer(np.asarray(buildings.geometry.array, dtype=object), extent),
            grids=_Layer(np.asarray(grids.geometry.array, dtype=object), extent),
            bounds_wgs84=(float(west), float(south), float(east), float(north)),
        )

    # -- kept in the project file (geo.locate.kept) -------------------------------------------
    def to_bytes(self) -> bytes:
        """The ids, polygons and extents, for :meth:`from_bytes` (the cell tables are kept
        apart: :meth:`cells_to_bytes`). The format is numpy's ``.npz``, read without pickle.

        Raises
        ------
        TypeError
            An id is not text (only text ids are kept).
        """
        ids = (self.building_ids, self.grid_codes)
        if not all(isinstance(value, str) for array in ids for value in array):
            raise TypeError("only an index with text ids can be kept")
        return _npz(
            srs=np.asarray(self.crs.srs),
            building_ids=self.building_ids.astype(str),
            grid_codes=self.grid_codes.astype(str),
            **_pack_geometries("buildings", self.buildings.geoms),
            **_pack_geometries("grids", self.grids.geoms),
            extent=np.asarray(self.buildings.extent, dtype=np.float64),
            bounds_wgs84=np.asarray(self.bounds_wgs84, dtype=np.float64),
        )

    @classmethod
    def from_bytes(
        cls, blob: bytes, *, crs: pyproj.CRS, grids: pd.DataFrame, cells: bytes | None = None
    ) -> GridIndex:
        """The index :meth:`to_bytes` kept; each grid's ``community`` and ``worker`` come from
        ``grids`` (``grid_code``, ``community``, ``worker``: a worker changes without the
        polygons changing), the cell tables from ``cells`` when given.

        Raises
        ------
        ValueError
            ``crs`` or the grid codes are not those of the kept index.
        """
        data = _from_npz(blob)
        codes = data["grid_codes"].astype(object)
        if str(data["srs"]) != crs.srs:
            raise ValueError(f"the kept index is in {data['srs']}, not {crs.srs}")
        if not grids["grid_code"].is_unique or set(grids["grid_code"]) != set(codes):
            raise ValueError("the kept index has other grids than the plan")
        facts = grids.set_index("grid_code").reindex(codes)
        workers = facts["worker"]
        extent = tuple(float(v) for v in data["extent"])
        index = cls(
            crs=crs,
            building_ids=data["building_ids"].astype(object),
            grid_codes=codes,
            communities=facts["community"].to_numpy(dtype=object),
            workers=workers.astype(object).where(workers.notna(), None).to_numpy(dtype=object),
            buildings=_Layer(_unpack_geometries("buildings", data), extent),
            grids=_Layer(_unpack_geometries("grids", data), extent),
            bounds_wgs84=tuple(float(v) for v in data["bounds_wgs84"]),
        )
        if cells is not None:
            arrays = _from_npz(cells)
            for name, layer in (("buildings", index.buildings), ("grids", index.grids)):
                part = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith(name)}
                layer.cells = _Cells.from_arrays(layer, part)
        return index

    @property
    def has_cells(self) -> bool:
        """Whether both cell tables are built (by :meth:`build_cells` or a large batch)."""
        return self.buildings.cells is not None and self.grids.cells is not None

    def build_cells(self) -> None:
        """Build the cell tables now (on two threads), not on the first batch of 20,000+ points."""

        def build(layer: _Layer) -> None:
            with layer.lock:
                if layer.cells is None:
                    layer.cells = _Cells.build(layer)

        with ThreadPoolExecutor(2) as pool:
            list(pool.map(build, (self.buildings, self.grids)))

    def cells_to_bytes(self) -> bytes:
        """Both cell tables (built first if need be), for ``from_bytes(..., cells=)``."""
        self.build_cells()
        return _npz(
            **{f"buildings.{k}": v for k, v in self.buildings.cells.to_arrays().items()},
            **{f"grids.{k}": v for k, v in self.grids.cells.to_arrays().items()},
        )

    def _frame(self, x: np.ndarray, y: np.ndarray, valid: np.ndarray) -> pd.DataFrame:
        """The located columns for every row; rows not ``valid`` get missing values."""
        n = valid.size
        building = np.full(n, -1, dtype=np.int64)
        grid = np.full(n, -1, dtype=np.int64)
        distance = np.full(n, np.nan)
        grid_distance = np.full(n, np.nan)
        if valid.any():
            # The two layers share no geometry, so two threads may query them at once
            # (numpy and shapely release the GIL).
            with ThreadPoolExecutor(2) as pool:
                found_building = pool.submit(self.buildings.lookup, x, y, nearest_polygon=False)
                grid[valid], grid_distance[valid] = self.grids.lookup(x, y)
                building[valid], distance[valid] = found_building.result()
        inside = distance == 0
        status = np.where(valid, np.where(inside, 0, np.where(grid_distance == 0, 1, 2)), 3)
        grid_ok = grid >= 0

        def codes(table: np.ndarray) -> np.ndarray:
            return np.where(grid_ok, table[grid], -1)

        return pd.DataFrame(
            {
                "building_id": pd.Categorical.from_codes(
                    np.where(inside, building, -1), categories=self.building_ids
                ),
                "grid_code": pd.Categorical.from_codes(
                    codes(np.arange(len(self.grid_codes))), categories=self.grid_codes
                ),
                "community": pd.Categorical.from_codes(
                    codes(self._community_codes), categories=self._communities
                ),
                "worker": pd.Categorical.from_codes(
                    codes(self._worker_codes), categories=self._workers
                ),
                "distance_m": distance,
                "grid_distance_m": grid_distance,
                "status": pd.Categorical.from_codes(status, categories=STATUSES),
            }
        )

    def locate(self, x, y) -> pd.DataFrame:
        """Locate points given in the index CRS (metres).

        Returns
        -------
        pandas.DataFrame
            One row per point: ``building_id`` (None outside footprints), ``grid_code``,
            ``community``, ``worker``, ``distance_m``, ``grid_distance_m``, ``status``.

        Raises
        ------
        CoordinateError
            A coordinate is not finite, or x and y differ in length.
        """
        x = np.atleast_1d(np.asarray(x, dtype="float64"))
        y = np.atleast_1d(np.asarray(y, dtype="float64"))
        if x.shape != y.shape or x.ndim != 1:
            raise CoordinateError(
                f"x and y must be two flat arrays of one length, not {x.shape}, {y.shape}"
            )
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise CoordinateError(
                "coordinates must be finite numbers", hint="use locate_lonlat to keep invalid rows"
            )
        return self._frame(x, y, np.ones(x.size, dtype=bool))

    def locate_point(self, x: float, y: float) -> dict:
        """Locate one point in the index CRS: a plain dict of the :meth:`locate` columns.

        The fast path for one point (tens of microseconds: no DataFrame, no cell table).
        """
        if not (math.isfinite(x) and math.isfinite(y)):
            raise CoordinateError(f"x={x}, y={y} are not finite numbers")
        point = shapely.Point(x, y)
        result = {}
        for layer, key in ((self.buildings, "b"), (self.grids, "g")):
            with layer.lock:
                hits = layer.tree.query(point, predicate="intersects")
                if hits.size:
                    result[key] = (int(hits.min()), 0.0)
                else:
                    near, distance = layer.tree.query_nearest(
                        point, return_distance=True, all_matches=True
                    )
                    result[key] = (int(near.min()), float(distance[0]))
        (building, distance), (grid, grid_distance) = result["b"], result["g"]
        inside = distance == 0.0
        return {
            "building_id": self.building_ids[building] if inside else None,
            "grid_code": self.grid_codes[grid],
            "community": self.communities[grid],
            "worker": self.workers[grid],
            "distance_m": distance,
            "grid_distance_m": grid_distance,
            "status": "in_building"
            if inside
            else ("in_grid" if grid_distance == 0.0 else "outside"),
        }

    def locate_buildings(self, building_ids) -> pd.DataFrame:
        """The :meth:`locate` columns for buildings, by id (e.g. the hits of
        :func:`find_by_address`): the grid holding a point inside each footprint.

        Raises
        ------
        NotFound
            An id is not among the indexed buildings.
        """
        wanted = pd.Index(pd.Series(list(building_ids), dtype=object).astype(str))
        known = pd.Index(self.building_ids.astype(str))
        position = known.get_indexer(wanted)
        if (position < 0).any():
            missing = ", ".join(wanted[position < 0][:5])
            raise NotFound(f"no building with id {missing}")
        points = shapely.point_on_surface(self.buildings.geoms[position])
        located = self.locate(shapely.get_x(points), shapely.get_y(points))
        # Where footprints overlap the point may fall in a lower id too: report the one asked for.
        located["building_id"] = pd.Categorical.from_codes(position, categories=self.building_ids)
        return located

    def _checked(
        self, lon, lat, crs: str | int | pyproj.CRS, max_distance_km: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Index-CRS x, y of the readable points, their mask, and a reason for every point."""
        source = parse_crs_name(crs)
        raw_x, raw_y = _numbers(lon), _numbers(lat)
        check = {"district_bounds": self.bounds_wgs84, "max_distance_km": max_distance_km}
        if isinstance(source, str) or source.is_geographic:
            ok, reason = check_lonlat(lon, lat, **check)
            wlon, wlat = to_wgs84(raw_x[ok], raw_y[ok], crs=source)
        else:
            # Metres have no range to check until they are degrees; unreadable text says so.
            wlon, wlat = to_wgs84(raw_x, raw_y, crs=source)
            ok, reason = check_lonlat(wlon, wlat, **check)
            _, text_reason = check_lonlat(lon, lat)
            unreadable = np.isin(text_reason, [MISSING, NOT_A_NUMBER])
            reason = np.where(unreadable, text_reason, reason)
            ok &= ~unreadable
            wlon, wlat = wlon[ok], wlat[ok]
        x, y = from_wgs84(wlon, wlat, crs=self.crs)
        return x, y, ok, reason

    def locate_lonlat(
        self, lon, lat, *, crs: str | int | pyproj.CRS = "wgs84", max_distance_km: float = 50.0
    ) -> pd.DataFrame:
        """Locate points given in ``crs`` (see :func:`geo.crs.parse_crs_name`).

        Coordinates that cannot be right (missing, not numbers, out of range, lat/lon swapped,
        more than ``max_distance_km`` from the district) get ``status`` ``"invalid"`` and a
        ``reason`` (:data:`geo.crs.REASONS_ZH` has the Chinese); nothing is dropped. Valid rows
        have ``reason`` ``""``. The text columns are categoricals (cheap for millions of rows).
        """
        x, y, ok, reason = self._checked(lon, lat, crs, max_distance_km)
        frame = self._frame(x, y, ok)
        frame["reason"] = reason
        return frame

    def locate_lonlat_point(
        self,
        lon: float | str,
        lat: float | str,
        *,
        crs: str | int | pyproj.CRS = "wgs84",
        max_distance_km: float = 50.0,
    ) -> dict:
        """Locate one point given in ``crs``: the dict of :meth:`locate_point`.

        Raises
        ------
        CoordinateError
            The coordinate cannot be right; the message says why, in English and Chinese.
        """
        x, y, ok, reason = self._checked([lon], [lat], crs, max_distance_km)
        if not ok[0]:
            raise coordinate_error(lon, lat, str(reason[0]))
        return self.locate_point(float(x[0]), float(y[0]))


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _from_npz(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def _pack_geometries(name: str, geoms: np.ndarray) -> dict[str, np.ndarray]:
    """Polygons as one run of WKB bytes (exact coordinates) and each one's length."""
    wkb = shapely.to_wkb(geoms)
    sizes = np.fromiter((len(b) for b in wkb), dtype=np.int64, count=len(wkb))
    return {name: np.frombuffer(b"".join(wkb), dtype=np.uint8), f"{name}_sizes": sizes}


def _unpack_geometries(name: str, data: dict[str, np.ndarray]) -> np.ndarray:
    raw, sizes = data[name].tobytes(), data[f"{name}_sizes"]
    ends = np.cumsum(sizes).tolist()
    starts = [0, *ends[:-1]]
    return shapely.from_wkb([raw[a:b] for a, b in zip(starts, ends, strict=True)])


def _numbers(values) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind in "fiub":
        return array.astype("float64").ravel()
    numbers = pd.to_numeric(pd.Series(array.ravel(), dtype=object), errors="coerce")
    return numbers.to_numpy(dtype="float64", na_value=np.nan)


def locate_csv(
    index: GridIndex,
    input_path: str | Path,
    output_path: str | Path,
    *,
    lon_col: str = "lon",
    lat_col: str = "lat",
    crs: str | int | pyproj.CRS = "wgs84",
    chunksize: int = 200_000,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Add the locate columns and ``reason`` to every row of a CSV (UTF-8 or GBK), chunk by chunk.

    Rows whose coordinates cannot be read keep their values and get ``status`` ``"invalid"``;
    nothing is dropped. Memory stays bounded by ``chunksize`` whatever the file's length.
    Values are read and written as text, so the input columns come out unchanged, except that
    a text cell a spreadsheet would run as a formula gets a leading ``'``
    (:mod:`geo.exchange.csvsafe`); distances are rounded to the centimetre. pyarrow reads and writes the
    file (columnar, in C++: a million rows take about a second where pandas' ``to_csv`` took
    ten); its writer quotes every text cell.

    Parameters
    ----------
    progress : callable, optional
        Called with the number of rows done after every chunk.

    Returns
    -------
    dict
        Row count per status.

    Raises
    ------
    InputError
        The file lacks ``lon_col`` or ``lat_col``, or is not a readable CSV.
    """
    parse_crs_name(crs)
    reader = _open_csv(input_path, lon_col, lat_col)
    names = [n for n in reader.schema.names if n not in (*COLUMNS, "reason")]
    header = [str(csv_safe(n)) for n in (*names, *COLUMNS, "reason")]
    output = _LocatedCsv(output_path, progress)
    try:
        for chunk in _chunks(reader, input_path, chunksize):
            lon, lat = _coordinates(chunk.column(lon_col), chunk.column(lat_col))
            located = index.locate_lonlat(lon, lat, crs=crs)
            output.write(_arrow_table(header, [chunk.column(n) for n in names], located), located)
    finally:
        output.close()
    return output.counts


def _chunks(reader, path: str | Path, chunksize: int):
    """The reader's record batches in slices of at most ``chunksize`` rows (memory bounded)."""
    for batch in _batches(reader, path):
        for start in range(0, max(batch.num_rows, 1), chunksize):
            yield batch.slice(start, chunksize)


class _LocatedCsv:
    """The output CSV of :func:`locate_csv`, opened with the first chunk's columns, and the
    row count per status so far.

    A chunk is written on a thread of its own while the next one is located (pyarrow's
    writer formats and writes without the GIL: a fifth of a batch's time overlapped on a
    second core); chunks go out in order, at most one waits, and a failed write raises at
    the next chunk or at :meth:`close`.
    """

    def __init__(self, path: str | Path, progress: Callable[[int], None] | None) -> None:
        self.path, self.progress = path, progress
        self.writer = None
        self.counts = dict.fromkeys(STATUSES, 0)
        self.done = 0
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="gridmap-csv")
        self._pending = None

    def write(self, table, located: pd.DataFrame) -> None:
        """Append one chunk's ``table`` (once the one before it is written) and count its
        ``located`` statuses."""
        from pyarrow import csv as arrow_csv  # only batch locates need pyarrow

        self._wait()
        if self.writer is None:
            self.writer = arrow_csv.CSVWriter(str(self.path), table.schema)
        self._pending = self._thread.submit(self.writer.write_table, table)
        for status, n in located["status"].value_counts().items():
            self.counts[status] += int(n)
        self.done += table.num_rows
        if self.progress is not None:
            self.progress(self.done)

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        try:
            self._wait()
        finally:
            self._thread.shutdown()
            if self.writer is not None:
                self.writer.close()


def _open_csv(path: str | Path, lon_col: str, lat_col: str):
    """A pyarrow stream of the CSV's record batches, every column read as text."""
    import pyarrow as pa
    from pyarrow import csv as arrow_csv

    encoding = _encoding(path)

    def open_with(columns: dict, block_size: int = 16 << 20):
        return arrow_csv.open_csv(
            str(path),
            read_options=arrow_csv.ReadOptions(block_size=block_size, encoding=encoding),
            parse_options=arrow_csv.ParseOptions(newlines_in_values=True),
            convert_options=arrow_csv.ConvertOptions(
                column_types=columns, strings_can_be_null=False, quoted_strings_can_be_null=False
            ),
        )

    try:
        names = _column_names(open_with)
        reader = open_with(dict.fromkeys(names, pa.string()))
    except (pa.ArrowInvalid, UnicodeDecodeError) as error:
        raise _unreadable(path, error) from None
    missing = [c for c in (lon_col, lat_col) if c not in names]
    if missing:
        raise InputError(
            f"{path} has no column(s) {', '.join(missing)}",
            hint=f"its columns are {', '.join(names)}",
        )
    return reader


def _column_names(open_with: Callable) -> list[str]:
    """The CSV's column names, from a reader over its first megabyte (guessing the types of a
    16 MB first block only to learn the names took 0.04 s of CPU); from the full block when the
    header does not fit in a megabyte, or the small block cannot be read."""
    import pyarrow as pa

    try:
        return open_with({}, 1 << 20).schema.names
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return open_with({}).schema.names


def _batches(reader, path: str | Path):
    """The reader's batches (one empty batch for a file of only a header, so the output has
    its header); a malformed row or bad encoding further down is one clear error."""
    import pyarrow as pa

    seen = False
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except (pa.ArrowInvalid, UnicodeDecodeError) as error:
            raise _unreadable(path, error) from None
        seen = True
        yield batch
    if not seen:
        yield pa.RecordBatch.from_pylist([], schema=reader.schema)


def _encoding(path: str | Path) -> str:
    """``utf8``, or ``gb18030`` (GBK's superset, what Chinese Excel saves) when the file's
    first megabyte is not UTF-8."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 20)
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror}", zh=f"无法读取 {path}") from None
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf8"


def _unreadable(path: str | Path, error: Exception) -> InputError:
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    return InputError(
        f"{path} is not a readable CSV file (UTF-8 or GBK): {detail}",
        zh=f"{path} 不是可读取的 CSV 文件（UTF-8 或 GBK）：{detail}",
    )


def _coordinates(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Two text columns as float64 when pyarrow reads every cell as a number (its parser gives
    the same doubles as pandas'), else as text for :meth:`GridIndex.locate_lonlat` to sort out
    (missing, not a number: pandas' rules, and the reasons they give)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        x, y = (pc.cast(c, pa.float64()).to_numpy() for c in (lon, lat))
    except pa.ArrowInvalid:
        x = y = None
    if x is None or np.isnan(x).any() or np.isnan(y).any():  # "nan" text is "not a number"
        return lon.to_numpy(zero_copy_only=False), lat.to_numpy(zero_copy_only=False)
    return x, y


def _arrow_table(header: list[str], columns: list, located: pd.DataFrame):
    """The output chunk: the input's text columns, then the located ones, all spreadsheet-safe."""
    import pyarrow as pa

    arrays = [_csv_safe_text(column) for column in columns]
    for name in (*COLUMNS, "reason"):
        values = located[name]
        if isinstance(values.dtype, pd.CategoricalDtype):
            codes = values.cat.codes.to_numpy()
            categories = values.cat.categories.to_numpy(dtype=object)
            dictionary = _csv_safe_text(pa.array(categories, type=pa.string()))
            arrays.append(
                pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), dictionary)
            )
        elif values.dtype.kind == "f":
            arrays.append(pa.array(values.to_numpy().round(2), from_pandas=True))
        else:
            arrays.append(pa.array(values, type=pa.string()))
    return pa.Table.from_arrays(arrays, names=header)


# a cell starting with one of geo.exchange.csvsafe.FORMULA_STARTS (in RE2, pyarrow's regex engine)
_RISKY_START = r"^[=+\-@\t\r]"
# an ASCII number: safe as it is whatever its sign (csv_safe's own test, in RE2 for speed)
_ASCII_NUMBER = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"


def _csv_safe_text(column):
    """:func:`geo.exchange.csvsafe.csv_safe` on a pyarrow text column, vectorised: a cell that starts like
    a formula and is not an ASCII number gets its ``'``; one holding other characters goes
    through csv_safe itself (its number test knows every script's digits)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    risky = pc.match_substring_regex(column, _RISKY_START)
    if not pc.any(risky).as_py():  # one pass for the usual column: nothing to look at
        return column
    risky = pc.and_not(risky, pc.match_substring_regex(column, _ASCII_NUMBER))
    if not pc.any(risky).as_py():
        return column
    ascii_text = pc.string_is_ascii(column)
    safe = pc.if_else(
        pc.and_(risky, ascii_text), pc.binary_join_element_wise("'", column, ""), column
    )
    others = pc.and_not(risky, ascii_text)
    if not pc.any(others).as_py():
        return safe
    cells = [csv_safe(v) for v in pc.filter(column, others).to_pylist()]
    return pc.replace_with_mask(safe, others, pa.array(cells, pa.string()))


_NOT_WORD = re.compile(r"[\s\W_]+", re.UNICODE)
_ADDRESS_FIELDS = (
    "name",
    "address",
    "addr_city",
    "addr_district",
    "addr_street",
    "addr_housenumber",
)


def _normalise(text: str) -> str:
    # NFKC folds full-width letters and digits (１２３, Ａ) to ASCII; spaces and punctuation go.
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).casefold())


def find_by_address(buildings: pd.DataFrame, text: str, *, limit: int = 5) -> pd.DataFrame:
    """Rank buildings by how well their name and address fields match ``text``.

    Matching ignores spaces, punctuation, case and full-width forms (NFKC). A field that
    contains the whole query scores 1.0 (less when the field is much longer); otherwise the
    score is :class:`difflib.SequenceMatcher`'s ratio (the standard library suffices for a
    district's few thousand buildings).

    Parameters
    ----------
    buildings : DataFrame
        With ``building_id`` and any of ``name``, ``address``, ``addr_street``,
        ``addr_housenumber``.
    text : str
        What the caller typed.
    limit : int, default 5
        Most candidates to return.

    Returns
    -------
    pandas.DataFrame
        ``building_id``, ``name``, ``address``, ``score`` (0-1), best first; empty when nothing
        scores above 0.4.

    Examples
    --------
    >>> frame = pd.DataFrame({"building_id": ["a", "b"], "name": ["外滩 18 号", "和平饭店"]})
    >>> find_by_address(frame, "外滩１８号")["building_id"].tolist()
    ['a']
    """
    query = _normalise(str(text))
    fields = _searchable_fields(buildings, query)
    name, address = _name_and_address(buildings[fields].astype("string").fillna(""))
    scores = np.zeros(len(buildings))
    for series in (name, address, address + name):
        for position, value in enumerate(series.map(_normalise)):
            if value:
                scores[position] = max(scores[position], _score(query, value))
    order = np.argsort(-scores, kind="stable")[:limit]
    order = order[scores[order] > 0.4]
    return pd.DataFrame(
        {
            "building_id": buildings["building_id"].to_numpy()[order],
            "name": name.to_numpy()[order],
            "address": address.to_numpy()[order],
            "score": scores[order].round(3),
        }
    )


def _searchable_fields(buildings: pd.DataFrame, query: str) -> list[str]:
    """The name and address fields of ``buildings``; refuses an empty query or no such field."""
    if not query:
        raise InputError("give an address or a building name to search for")
    if "building_id" not in buildings.columns:
        raise InputError("buildings lack the column building_id")
    fields = [c for c in _ADDRESS_FIELDS if c in buildings.columns]
    if not fields:
        raise InputError(f"buildings have none of the fields {', '.join(_ADDRESS_FIELDS)}")
    return fields


def _name_and_address(values: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Each building's name and address as text ("" when missing): the stored address, else
    the OSM-style parts (street then house number: 中山东一路 20)."""
    empty = pd.Series("", index=values.index, dtype="string")
    parts = [values[c] for c in _ADDRESS_FIELDS[2:] if c in values.columns] or [empty]
    address = parts[0]
    for part in parts[1:]:  # column-wise joins: a row-wise agg fails on no rows at all
        address = address + " " + part
    address = address.str.strip()
    if "address" in values.columns:
        address = values["address"].where(values["address"].str.strip() != "", address)
    name = values["name"] if "name" in values.columns else empty
    return name, address


def _score(query: str, value: str) -> float:
    if query in value:
        return 0.8 + 0.2 * len(query) / len(value)
    return difflib.SequenceMatcher(None, query, value, autojunk=False).ratio() * 0.8
