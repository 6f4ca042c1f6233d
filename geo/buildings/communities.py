"""Which community (社区) each building belongs to, and the communities' outlines.

Buildings carry their community from the source where they can. Where they do not, a planner
gets a clear fallback, in this order: the community polygons of ``--communities``; street blocks
cut by the major and minor roads of ``--roads``; one community per connected cluster of
buildings. Each fallback says which it used.

Examples
--------
>>> import geopandas as gpd, shapely
>>> buildings = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 10, 10), shapely.box(500, 0, 510, 10)],
...                              crs=4549)
>>> clusters_as_communities(buildings, gap_m=20).tolist()
['片区001', '片区002']
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from geo.buildings.reading import (
    COMMUNITY_FIELD_GUESSES,
    STANDARD_COLUMNS,
    community_names,
    merged_names,
    pick_field,
)
from geo.errors import InputError

ROAD_KINDS_FOR_BLOCKS = (
    "major_road",
    "minor_road",
    "primary",
    "secondary",
    "tertiary",
    "trunk",
    "residential",
)
NAME_FIELD_GUESSES = ("community", "name", "社区", "社区名称", "名称")


@dataclass
class CommunityAssignment:
    """Each building's community, the outlines, and how they were found."""

    community: pd.Series
    outlines: gpd.GeoDataFrame | None  # community, geometry; None where derived from cells later
    method: str  # field | polygons | blocks | clusters
    warnings: list[tuple[str, str]]  # (English, Chinese): what the user should know


def assign_communities(
    buildings: gpd.GeoDataFrame,
    *,
    communities: gpd.GeoDataFrame | None = None,
    communities_field: str | None = None,
    roads: gpd.GeoDataFrame | None = None,
) -> CommunityAssignment:
    """Fill in each building's community; see the module docstring for the order of fallbacks."""
    if communities is not None:
        return _from_polygons(buildings, communities, communities_field)
    known = buildings["community"].notna()
    if known.all():
        return CommunityAssignment(buildings["community"].astype(str), None, "field", [])
    if known.any():
        raise InputError(
            f"{int((~known).sum())} of {len(buildings)} buildings have no community in the community "
            "field; fill them in, or give --communities",
            zh=f"{int((~known).sum())} 栋建筑没有社区信息，请补全或使用 --communities",
        )
    if roads is not None:
        return _from_blocks(buildings, roads)
    labels = clusters_as_communities(buildings)
    warning = (
        "no community field, --communities or --roads: each connected cluster of buildings became "
        f"one community ({labels.nunique()} clusters named 片区NNN); give --communities for real ones",
        f"无社区字段、--communities 或 --roads：每个相连的建筑群作为一个社区（共 {labels.nunique()} 个，"
        "命名为 片区NNN）；请用 --communities 提供真实社区边界",
    )
    return CommunityAssignment(labels, None, "clusters", [warning, *_field_hint(buildings)])


def _field_hint(buildings: gpd.GeoDataFrame) -> list[tuple[str, str]]:
    """A note naming a field of the file that looks like communities, which was not used."""
    own = [str(c) for c in buildings.columns if c not in STANDARD_COLUMNS and c != "geometry"]
    fields = {c.removeprefix("src_").lower(): c.removeprefix("src_") for c in own}
    found = next((fields[n] for n in COMMUNITY_FIELD_GUESSES if n in fields), None)
    if found is None:
        return []
    return [
        (
            f"the file has a field {found!r} that looks like communities: give "
            f"--community-field {found} to use it",
            f"文件中的字段 {found} 像是社区名称：如需使用请加 --community-field {found}",
        )
    ]


def _from_polygons(
    buildings: gpd.GeoDataFrame, communities: gpd.GeoDataFrame, field: str | None
) -> CommunityAssignment:
    """Each building's community is the polygon holding most of it (the nearest outside all)."""
    name_column = _name_column(communities, field)
    names = community_names(communities[name_column])
    if names.isna().any():
        raise InputError(
            f"{int(names.isna().sum())} community polygons have no name in {name_column!r}; "
            "name every community (their buildings would go to a neighbour)",
            zh=f"{int(names.isna().sum())} 个社区边界在字段 {name_column} 中没有名称；请为每个社区填写名称",
        )
    outlines = gpd.GeoDataFrame(
        {"community": names}, geometry=communities.geometry.values, crs=communities.crs
    ).dissolve("community", as_index=False)
    labels, outside = largest_overlap(buildings, outlines, "community")
    warnings = [
        (
            "communities taken from the polygons of --communities (the one holding most of each building)",
            "社区取自 --communities 的边界（按建筑面积占比最大者）",
        ),
        *map(merged_names_note, merged_names(communities[name_column])),
    ]
    if outside:
        warnings.append(
            (
                f"{outside} buildings lie outside every community polygon: given the nearest community",
                f"{outside} 栋建筑不在任何社区边界内，已划入最近的社区",
            )
        )
    return CommunityAssignment(labels, outlines, "polygons", warnings)


def _from_blocks(buildings: gpd.GeoDataFrame, roads: gpd.GeoDataFrame) -> CommunityAssignment:
    """Each building's community is the street block holding most of it."""
    blocks = street_blocks(roads, buildings)
    labels, outside = largest_overlap(buildings, blocks, "community")
    warnings = [
        (
            "no community field or polygons: communities are the street blocks cut by the major "
            f"and minor roads of --roads ({blocks['community'].nunique()} blocks hold buildings)",
            f"无社区字段或边界：按 --roads 的主次干道切分街区作为社区（共 {blocks['community'].nunique()} 个街区有建筑）",
        )
    ]
    if outside:
        warnings.append(
            (
                f"{outside} buildings outside every block: given the nearest block",
                f"{outside} 栋建筑不在任何街区内，已划入最近的街区",
            )
        )
    used = blocks[blocks["community"].isin(labels.unique())]
    return CommunityAssignment(labels, used.reset_index(drop=True), "blocks", warnings)


def largest_overlap(
    buildings: gpd.GeoDataFrame, polygons: gpd.GeoDataFrame, column: str
) -> tuple[pd.Series, int]:
    """For each building, ``column`` of the polygon that holds most of its area.

    Buildings touching no polygon get the nearest one; the second value counts them.
    """
    polygons = polygons.to_crs(buildings.crs)
    geometry = buildings.geometry.values
    building_idx, polygon_idx = polygons.sindex.query(geometry, predicate="intersects")
    areas = shapely.area(
        shapely.intersection(geometry[building_idx], polygons.geometry.values[polygon_idx])
    )
    overlaps = pd.DataFrame({"b": building_idx, "p": polygon_idx, "area": areas})
    best = overlaps.sort_values(["b", "area"], ascending=[True, False]).drop_duplicates("b")
    result = pd.Series(pd.NA, index=buildings.index, dtype=object)
    result.iloc[best["b"].to_numpy()] = polygons[column].to_numpy()[best["p"].to_numpy()]
    outside = result.isna()
    if outside.any():
        nearest = polygons.sindex.nearest(geometry[outside.to_numpy()], return_all=False)[1]
        result[outside] = polygons[column].to_numpy()[nearest]
    return result.astype(str), int(outside.sum())


def street_blocks(roads: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Polygons enclosed by the major and minor roads around the buildings, named 街区NNN."""
    roads = roads.to_crs(buildings.crs)
    if "kind" in roads.columns:
        cutting = roads[roads["kind"].isin(ROAD_KINDS_FOR_BLOCKS)]
        roads = cutting if not cutting.empty else roads
    hull = shapely.box(*buildings.total_bounds).buffer(100)
    lines = shapely.union_all([*roads.geometry.values, hull.exterior])
    pieces = shapely.get_parts(shapely.polygonize(shapely.get_parts(shapely.node(lines))))
    pieces = pieces[shapely.area(pieces) > 1.0]
    blocks = gpd.GeoDataFrame(geometry=pieces, crs=buildings.crs)
    blocks = blocks[blocks.intersects(hull)].reset_index(drop=True)
    order = _reading_order(blocks.geometry)
    blocks["community"] = [f"街区{rank + 1:03d}" for rank in order]
    return blocks


def clusters_as_communities(
    buildings: gpd.GeoDataFrame, *, gap_m: float = 25.0, max_buildings: int = 600
) -> pd.Series:
    """One community per connected cluster of buildings (closer than ``gap_m``), named 片区NNN.

    Clusters larger than ``max_buildings`` (a dense old town is one cluster) are cut in halves
    across their longer side until each is small enough to be run as a community.
    """
    geometry = buildings.geometry.values
    tree = shapely.STRtree(geometry)
    left, right = tree.query(geometry, predicate="dwithin", distance=gap_m)
    n = len(buildings)
    graph = coo_matrix((np.ones(len(left)), (left, right)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    centres = shapely.get_coordinates(shapely.centroid(geometry))
    groups: list[np.ndarray] = []
    for label in np.unique(labels):
        groups.extend(_bisect(np.flatnonzero(labels == label), centres, max_buildings))
    group_centres = np.array([centres[g].mean(axis=0) for g in groups])
    order = _reading_order(
        gpd.GeoSeries(gpd.points_from_xy(group_centres[:, 0], group_centres[:, 1]))
    )
    names = np.empty(n, dtype=object)
    for group, rank in zip(groups, order, strict=True):
        names[group] = f"片区{rank + 1:03d}"
    return pd.Series(names, index=buildings.index, name="community")


def _bisect(members: np.ndarray, centres: np.ndarray, limit: int) -> list[np.ndarray]:
    if len(members) <= limit:
        return [members]
    points = centres[members]
    axis = int(np.argmax(points.max(axis=0) - points.min(axis=0)))
    order = members[np.argsort(points[:, axis], kind="stable")]
    half = len(order) // 2
    return _bisect(order[:half], centres, limit) + _bisect(order[half:], centres, limit)


def _reading_order(geometries: gpd.GeoSeries) -> np.ndarray:
    """Rank of each geometry read north to south, then west to east (in rows of ~200 m)."""
    points = shapely.get_coordinates(shapely.centroid(geometries.values))
    rows = -np.floor(points[:, 1] / 200.0)
    order = np.lexsort((points[:, 0], rows))
    rank = np.empty(len(order), dtype=int)
    rank[order] = np.arange(len(order))
    return rank


def _name_column(frame: gpd.GeoDataFrame, requested: str | None) -> str:
    column = pick_field(frame, requested, NAME_FIELD_GUESSES, what="community names")
    if column is None:
        fields = ", ".join(str(c) for c in frame.columns if c != frame.geometry.name)
        raise InputError(
            "which field of the communities file names the community? Give --communities-field "
            f"(its fields are: {fields})",
            zh="请用 --communities-field 指定社区文件中的社区名称字段",
        )
    return column


def merged_names_note(group: list[str]) -> tuple[str, str]:
    """The note on community names written differently and read as one."""
    shown = " / ".join(group)
    return (
        f"the community names {shown} differ only in how their characters are written; they "
        "were read as one community (give them different names if they are not)",
        f"社区名称 {shown} 仅字符写法不同（全角/半角等），已视为同一社区；如不是同一社区请改用不同名称",
    )
