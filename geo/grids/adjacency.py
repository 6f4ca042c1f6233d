"""Which buildings are neighbours: a trimmed Delaunay graph that does not jump across open space.

The graph is built per community on the buildings' centroids. A raw Delaunay triangulation
links every point to its natural neighbours but also draws long slivers along a community's
outer edge and across fields and water; those edges are dropped by two length rules:

* local: an edge may be at most ``alpha`` times the local spacing of its longer-spaced end, where
  a building's local spacing is the length of its ``k``-th shortest Delaunay edge (robust to row
  houses, whose nearest neighbours are all along the row);
* community: an edge may be at most ``beta`` times the community's median local spacing (or
  ``max_edge_m`` when given), which cuts off a hamlet a few hundred metres from the village even
  though the hamlet's own spacing is wide.

Edges never join two communities. With a roads layer, edges that cross a major road are removed
unless that leaves a piece of fewer than ``min_size`` buildings.

The result is a symmetric :class:`scipy.sparse.csr_array` whose row ``i`` lists the neighbours of
the ``i``-th building (position, not index label) and whose values are edge lengths in CRS units.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import Delaunay, QhullError

from geo.errors import CRSError, InputError
from geo.threads import worker_pool

__all__ = [
    "AdjacencyInputError",
    "building_adjacency",
    "centroid_coordinates",
    "community_components",
    "edge_list",
    "touching_pairs",
]

#: smallest stored edge weight, so that duplicate centroids still count as an edge
_MIN_WEIGHT = 1e-9
#: buildings from which the triangulations are shared out to threads (below, threads cost more)
_THREADED_FROM = 1_000


class AdjacencyInputError(InputError):
    """The buildings cannot be turned into an adjacency graph (CRS, columns, geometry)."""


def centroid_coordinates(buildings: gpd.GeoDataFrame) -> np.ndarray:
    """Centroid coordinates of every building as an ``(n, 2)`` float array.

    Raises :class:`AdjacencyInputError` for a geographic CRS (distances would be in degrees)
    and for missing or empty geometries.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> gdf = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 2, 2)], crs=3857)
    >>> centroid_coordinates(gdf).tolist()
    [[1.0, 1.0]]
    """
    if buildings.crs is None or buildings.crs.is_geographic:
        raise CRSError(
            f"buildings must be in a metric CRS, got {buildings.crs!r}",
            hint="reproject first, e.g. gdf.to_crs(gdf.estimate_utm_crs())",
        )
    geoms = buildings.geometry.array
    bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if bad.any():
        first = buildings.index[np.flatnonzero(bad)[0]]
        raise AdjacencyInputError(f"{int(bad.sum())} buildings have no geometry (first: {first!r})")
    return shapely.get_coordinates(shapely.centroid(geoms))


def _community_codes(buildings: gpd.GeoDataFrame) -> np.ndarray:
    if "community" not in buildings.columns:
        return np.zeros(len(buildings), dtype=np.int64)
    if buildings["community"].isna().any():
        raise AdjacencyInputError("column 'community' has missing values")
    codes, _ = pd.factorize(buildings["community"], sort=True)
    return codes.astype(np.int64)


def _delaunay_edges(points: np.ndarray) -> np.ndarray:
    """Undirected Delaunay edges ``(m, 2)`` of a small point set (local positions)."""
    n = len(points)
    if n < 2:
        return np.empty((0, 2), dtype=np.int64)
    if n == 2:
        return np.array([[0, 1]], dtype=np.int64)
    if n == 3:
        return np.array([[0, 1], [0, 2], [1, 2]], dtype=np.int64)
    try:
        tri = Delaunay(points - points.mean(axis=0))
    except QhullError:
        # all on one line: neighbours are the consecutive points along that line
        axis = np.linalg.svd(points - points.mean(axis=0), full_matrices=False)[2][0]
        order = np.argsort(points @ axis, kind="stable")
        return np.column_stack([order[:-1], order[1:]]).astype(np.int64)
    s = tri.simplices
    edges = np.concatenate([s[:, [0, 1]], s[:, [1, 2]], s[:, [0, 2]]])
    if len(tri.coplanar):
        # duplicate or near-duplicate points are left out of the triangulation: tie them to
        # the vertex they coincide with
        edges = np.concatenate([edges, tri.coplanar[:, [0, 2]]])
    return edges.astype(np.int64)


def _raw_edges(xy: np.ndarray, community: np.ndarray) -> np.ndarray:
    """Delaunay edges of every community, as global positions ``(m, 2)`` with ``i < j``."""
    order = np.argsort(community, kind="stable")
    bounds = np.flatnonzero(np.diff(community[order])) + 1
    groups = np.split(order, bounds)
    points = (xy[members] for members in groups)
    if len(xy) < _THREADED_FROM:
        local_edges = list(map(_delaunay_edges, points))
    else:  # Qhull releases the GIL: communities are triangulated on all cores
        local_edges = list(worker_pool().map(_delaunay_edges, points))
    parts = [
        members[local] for members, local in zip(groups, local_edges, strict=True) if len(local)
    ]
    if not parts:
        return np.empty((0, 2), dtype=np.int64)
    edges = np.sort(np.concatenate(parts), axis=1)
    edges = edges[edges[:, 0] != edges[:, 1]]
    n = np.int64(len(xy))
    keys = np.sort(edges[:, 0] * n + edges[:, 1])  # sort + diff beats np.unique's hashing here
    keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]
    return np.column_stack([keys // n, keys % n])


def _local_spacing(n: int, edges: np.ndarray, length: np.ndarray, k: int) -> np.ndarray:
    """Length of each node's ``k``-th shortest edge (its longest if it has fewer)."""
    node = np.concatenate([edges[:, 0], edges[:, 1]])
    both = np.concatenate([length, length])
    # one float key (node + length as a fraction below 1) sorts faster than a two-key lexsort
    order = np.argsort(node + both / (both.max(initial=0.0) * 1.0001 + _MIN_WEIGHT))
    node, both = node[order], both[order]
    start = np.searchsorted(node, np.arange(n))
    degree = np.bincount(node, minlength=n)
    spacing = np.full(n, np.nan)
    has = degree > 0
    spacing[has] = both[start[has] + np.minimum(degree[has], k) - 1]
    return spacing


def _trim(
    xy: np.ndarray,
    community: np.ndarray,
    edges: np.ndarray,
    *,
    k: int,
    alpha: float,
    beta: float,
    max_edge_m: float | None,
) -> np.ndarray:
    length = np.hypot(*(xy[edges[:, 0]] - xy[edges[:, 1]]).T)
    spacing = _local_spacing(len(xy), edges, length, k)
    local_ok = length <= alpha * np.fmax(spacing[edges[:, 0]], spacing[edges[:, 1]])
    if max_edge_m is None:
        median = pd.Series(spacing).groupby(community).median().to_numpy()
        cap = beta * median[community[edges[:, 0]]]
    else:
        cap = np.full(len(edges), float(max_edge_m))
    return local_ok & (length <= cap)


def _road_crossings(xy: np.ndarray, edges: np.ndarray, roads: gpd.GeoSeries) -> np.ndarray:
    """Mask of the edges whose straight segment crosses one of ``roads``."""
    if len(edges) == 0 or len(roads) == 0:
        return np.zeros(len(edges), dtype=bool)
    segments = shapely.linestrings(np.stack([xy[edges[:, 0]], xy[edges[:, 1]]], axis=1))
    tree = shapely.STRtree(roads.array)
    hit, _ = tree.query(segments, predicate="intersects")
    mask = np.zeros(len(edges), dtype=bool)
    mask[hit] = True
    return mask


def _to_csr(n: int, edges: np.ndarray, weight: np.ndarray) -> sparse.csr_array:
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    cols = np.concatenate([edges[:, 1], edges[:, 0]])
    data = np.maximum(np.concatenate([weight, weight]), _MIN_WEIGHT)
    graph = sparse.csr_array((data, (rows, cols)), shape=(n, n))
    graph.sort_indices()
    return graph


def _major_roads(roads: gpd.GeoDataFrame | gpd.GeoSeries, crs) -> gpd.GeoSeries:
    if isinstance(roads, gpd.GeoDataFrame):
        if "kind" in roads.columns:
            roads = roads[roads["kind"] == "major_road"]
        roads = roads.geometry
    if roads.crs is None:
        raise CRSError("roads have no CRS")
    return roads.to_crs(crs) if roads.crs != crs else roads


def building_adjacency(
    buildings: gpd.GeoDataFrame,
    *,
    max_edge_m: float | None = None,
    roads: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
    min_size: int = 4,
    k: int = 3,
    alpha: float = 2.5,
    beta: float = 5.0,
    centroids: np.ndarray | None = None,
) -> sparse.csr_array:
    """Neighbouring buildings inside each community, without jumps across open space.

    Parameters
    ----------
    buildings : GeoDataFrame
        Footprints in a metric CRS; an optional ``community`` column confines edges to one
        community (without it the whole frame is one community).
    max_edge_m : float, optional
        Longest edge in metres. By default ``beta`` times the community's median local spacing.
    roads : GeoDataFrame or GeoSeries, optional
        Road lines; with a ``kind`` column only ``major_road`` rows count. Edges crossing them are
        removed unless that cuts off a piece of fewer than ``min_size`` buildings.
    min_size : int, default 4
        Smallest piece a road cut may leave behind.
    k, alpha, beta : int, float, float
        Local spacing is the ``k``-th shortest Delaunay edge of a building; an edge longer than
        ``alpha`` times the larger spacing of its two ends, or than ``beta`` times the community's
        median spacing, is dropped.
    centroids : (n, 2) array, optional
        :func:`centroid_coordinates` of ``buildings`` when the caller has them already.

    Returns
    -------
    scipy.sparse.csr_array
        Symmetric ``(n, n)`` matrix by position; values are edge lengths (metres).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> squares = [shapely.box(x, y, x + 8, y + 8) for x in (0, 10, 20) for y in (0, 10)]
    >>> squares.append(shapely.box(400, 0, 408, 8))
    >>> gdf = gpd.GeoDataFrame({"community": ["a"] * 7}, geometry=squares, crs=3857)
    >>> graph = building_adjacency(gdf)
    >>> graph[[0], :].indices.tolist(), graph[[6], :].nnz  # the far building stays apart
    ([1, 2, 3], 0)
    """
    xy = centroid_coordinates(buildings) if centroids is None else centroids
    community = _community_codes(buildings)
    n = len(xy)
    edges = _raw_edges(xy, community)
    edges = edges[_trim(xy, community, edges, k=k, alpha=alpha, beta=beta, max_edge_m=max_edge_m)]
    if roads is not None and len(edges):
        edges = _off_major_roads(xy, edges, _major_roads(roads, buildings.crs), min_size)
    length = np.hypot(*(xy[edges[:, 0]] - xy[edges[:, 1]]).T)
    return _to_csr(n, edges, length)


def _off_major_roads(
    xy: np.ndarray, edges: np.ndarray, roads: gpd.GeoSeries, min_size: int
) -> np.ndarray:
    """``edges`` without those crossing ``roads``, unless that cuts off a piece of fewer than
    ``min_size`` buildings."""
    crossing = _road_crossings(xy, edges, roads)
    if not crossing.any():
        return edges
    kept = edges[~crossing]
    _, comp = csgraph.connected_components(_to_csr(len(xy), kept, np.ones(len(kept))))
    size = np.bincount(comp)
    small = size[comp] < min_size
    restore = crossing & (small[edges[:, 0]] | small[edges[:, 1]])
    return edges[~crossing | restore]


def edge_list(adjacency: sparse.sparray | sparse.spmatrix) -> np.ndarray:
    """The undirected edges ``(m, 2)`` (positions, ``i < j``) of a symmetric adjacency matrix."""
    coo = sparse.coo_array(adjacency)
    keep = coo.row < coo.col
    return np.column_stack([coo.row[keep], coo.col[keep]]).astype(np.int64)


def community_components(
    adjacency: sparse.sparray | sparse.spmatrix, labels: np.ndarray | pd.Series | None = None
) -> np.ndarray:
    """Connected-component id of every building, edges kept only inside equal ``labels``.

    With ``labels`` (for example communities or grids) an edge counts only when both ends carry
    the same label, so each component lies inside one label. Ids are ``0..c-1`` by first position.

    Examples
    --------
    >>> from scipy import sparse
    >>> graph = sparse.csr_array(([1.0, 1.0], ([0, 1], [1, 0])), shape=(3, 3))
    >>> community_components(graph).tolist()
    [0, 0, 1]
    """
    graph = sparse.csr_array(adjacency)
    if labels is not None:
        # keep the stored entries whose two ends carry the same label
        codes = pd.factorize(np.asarray(labels))[0]
        row = np.repeat(np.arange(graph.shape[0]), np.diff(graph.indptr))
        keep = codes[row] == codes[graph.indices]
        indptr = np.concatenate([[0], np.cumsum(np.bincount(row[keep], minlength=graph.shape[0]))])
        graph = sparse.csr_array(
            (np.ones(int(keep.sum()), dtype=np.int8), graph.indices[keep], indptr),
            shape=graph.shape,
        )
    _, comp = csgraph.connected_components(graph, directed=False)
    return comp


def touching_pairs(polygons: gpd.GeoSeries | gpd.GeoDataFrame) -> np.ndarray:
    """Pairs ``(i, j)``, ``i < j``, of row positions whose polygons share an edge or a corner.

    The neighbour graph of grids (not buildings): the maps colour it so that neighbours differ.
    Pairs come in the spatial index's query order, which keeps the colouring reproducible.

    Examples
    --------
    >>> row = gpd.GeoSeries([shapely.box(i, 0, i + 1, 1) for i in range(3)], crs=3857)
    >>> touching_pairs(row).tolist()
    [[0, 1], [1, 2]]
    """
    left, right = polygons.sindex.query(polygons.geometry, predicate="intersects")
    keep = left < right
    return np.column_stack([left[keep], right[keep]])
