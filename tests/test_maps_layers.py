"""Realistic map inputs from real footprints: communities, grids of 5, workers, incidents.

The grid, boundary and incident modules of geo/ produce these layers in the product; the map
tests and the map benchmark build them here directly from the OpenStreetMap footprints in
``../shared/data`` so that they exercise the maps alone, with the same columns.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

XSS_IMG = '<img src=x onerror="window.__x=1">'
XSS_TEMPLATE = "`${window.__t=1}` ${alert(1)} 路灯`坏了"
XSS_SCRIPT = "</script><script>window.__y=1</script>"
XSS_STRINGS = (XSS_IMG, XSS_TEMPLATE, XSS_SCRIPT)

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛"]
CATEGORIES = [
    ("06001", "私搭乱建", "06"),
    ("06010", "暴露垃圾", "06"),
    ("06036", "乱堆杂物", "06"),
    ("07001", "非法小广告", "07"),
    ("08001", "施工扰民", "08"),
    ("08004", "工地扬尘", "08"),
    ("09006", "占道经营", "09"),
    ("09009", "机动车乱停放", "09"),
    ("10001", "其他事件", "10"),
]
STATUSES = ["reported", "registered", "dispatched", "handled", "verified", "closed"]


def _polygons(buildings: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    keep = (
        buildings.geometry.geom_type.isin(["Polygon", "MultiPolygon"]) & buildings.geometry.is_valid
    )
    return buildings[keep & ~buildings.geometry.is_empty].reset_index(drop=True)


def _metric_buildings(
    buildings: gpd.GeoDataFrame, *, block: float, rng: np.random.Generator
) -> gpd.GeoDataFrame:
    """Valid polygons in UTM with ids, households, addresses and (if absent) block communities."""
    metric = _polygons(buildings).to_crs(buildings.estimate_utm_crs())
    centres = metric.geometry.centroid
    if "community" not in metric.columns:
        ix = np.floor(centres.x / block).astype(int)
        iy = np.floor(centres.y / block).astype(int)
        metric["community"] = [
            f"社区{a % 1000:03d}-{b % 1000:03d}" for a, b in zip(ix, iy, strict=True)
        ]
    metric["building_id"] = [f"B{i:06d}" for i in range(len(metric))]
    metric["households"] = rng.integers(1, 40, len(metric))
    metric["address"] = [f"{c} {i % 97 + 1}号" for i, c in enumerate(metric["community"])]
    return metric


def _community_grids(
    metric: gpd.GeoDataFrame,
    part: gpd.GeoDataFrame,
    outline,
    *,
    code_prefix: str,
    codes: np.ndarray,
    grid_size: int,
    rng: np.random.Generator,
) -> list[dict]:
    """One community's grids: runs of ``grid_size`` buildings in reading order, their polygons
    the union of the buildings' Voronoi cells clipped to the outline; fills ``codes``."""
    centres = metric.geometry.centroid
    pts = centres[part.index]
    order = np.lexsort((pts.x.round(-1).to_numpy(), (-pts.y // 60).to_numpy()))
    members = part.index.to_numpy()[order]
    jitter = rng.normal(0, 1e-3, (len(members), 2))
    xy = np.column_stack([centres[members].x, centres[members].y]) + jitter
    cells = shapely.voronoi_polygons(shapely.multipoints(xy), extend_to=outline, ordered=True)
    cells = shapely.intersection(shapely.get_parts(cells), outline)
    rows = []
    for g, start in enumerate(range(0, len(members), grid_size)):
        chunk = members[start : start + grid_size]
        code = f"{code_prefix}{g + 1:03d}"
        codes[chunk] = code
        n = len(chunk)
        rows.append(
            {
                "grid_code": code,
                "community": part["community"].iloc[0],
                "worker": None if g % 11 == 10 else rng.choice(list(SURNAMES)) + rng.choice(GIVEN),
                "worker_phone": f"138{rng.integers(0, 10**8):08d}",
                "n_buildings": n,
                "households": int(metric.loc[chunk, "households"].sum()),
                "status": "ok" if n >= 4 else "undersized",
                "reason": None if n >= 4 else f"只剩 {n} 栋建筑",
                "geometry": shapely.union_all(cells[start : start + grid_size]),
            }
        )
    return rows


def make_layers(
    buildings: gpd.GeoDataFrame,
    *,
    block: float = 400.0,
    grid_size: int = 5,
    n_incidents: int = 200,
    seed: int = 7,
    untrusted: tuple[str, ...] = (),
) -> dict[str, gpd.GeoDataFrame]:
    """Grids, buildings, communities and incidents (metric CRS; incidents in WGS84).

    Communities are the ``community`` column if present, else ``block``-metre squares. Grids are
    runs of ``grid_size`` buildings in reading order, their polygons the union of the buildings'
    Voronoi cells clipped to the community outline, so grids tile each community.
    ``untrusted`` strings become the first incident descriptions, addresses and names.
    """
    rng = np.random.default_rng(seed)
    metric = _metric_buildings(buildings, block=block, rng=rng)
    centres = metric.geometry.centroid
    grid_rows, community_rows, codes = [], [], np.empty(len(metric), dtype=object)
    for n_community, (name, part) in enumerate(metric.groupby("community", sort=True)):
        outline = shapely.convex_hull(shapely.union_all(part.geometry.values)).buffer(15)
        if "community" not in buildings.columns:
            x = centres[part.index[0]].x // block * block
            y = centres[part.index[0]].y // block * block
            outline = outline.intersection(shapely.box(x, y, x + block, y + block))
        community_rows.append({"community": name, "geometry": outline})
        grid_rows += _community_grids(
            metric,
            part,
            outline,
            code_prefix=f"530102{n_community:03d}",
            codes=codes,
            grid_size=grid_size,
            rng=rng,
        )
    metric["grid_code"] = codes
    grids = gpd.GeoDataFrame(grid_rows, crs=metric.crs)
    communities = gpd.GeoDataFrame(community_rows, crs=metric.crs)
    incidents = make_incidents(metric, grids, n_incidents, rng=rng, untrusted=untrusted)
    if untrusted:
        grids.loc[: len(untrusted) - 1, "worker"] = list(untrusted)[: len(grids)]
        metric.loc[: len(untrusted) - 1, "name"] = list(untrusted)
    return {"grids": grids, "buildings": metric, "communities": communities, "incidents": incidents}


def make_incidents(
    buildings: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame,
    count: int,
    *,
    rng: np.random.Generator,
    untrusted: tuple[str, ...] = (),
) -> gpd.GeoDataFrame:
    """``count`` cases near random buildings, with catalogue categories, times and deadlines."""
    at = rng.integers(0, len(buildings), count)
    points = buildings.geometry.centroid.to_numpy()[at]
    offsets = rng.normal(0, 12, (count, 2))
    xy = shapely.get_coordinates(points) + offsets
    category = [CATEGORIES[i] for i in rng.integers(0, len(CATEGORIES), count)]
    reported = pd.Timestamp("2026-10-01 08:00", tz="Asia/Shanghai") + pd.to_timedelta(
        rng.integers(0, 55 * 24 * 60, count), unit="min"
    )
    deadline = reported + pd.to_timedelta(rng.choice([4, 24, 72], count), unit="h")
    status = rng.choice(STATUSES, count)
    descriptions = [f"{c[1]}，请尽快处理（{i}）" for i, c in enumerate(category)]
    addresses = list(buildings["address"].to_numpy()[at])
    for i, text in enumerate(untrusted):
        descriptions[i] = text
        addresses[i] = text
    frame = gpd.GeoDataFrame(
        {
            "incident_id": [f"12345-2026-{i:06d}" for i in range(count)],
            "category_code": [c[0] for c in category],
            "category_name": [c[1] for c in category],
            "class_code": [c[2] for c in category],
            "status": status,
            "reported_at": reported,
            "deadline": deadline,
            "overdue": (status != "closed")
            & (deadline < pd.Timestamp("2026-11-20", tz="Asia/Shanghai")),
            "description": descriptions,
            "address": addresses,
        },
        geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]),
        crs=buildings.crs,
    )
    joined = gpd.sjoin(frame, grids[["grid_code", "geometry"]], how="left", predicate="within")
    frame["grid_code"] = joined.groupby(level=0)["grid_code"].first()
    return frame.to_crs(4326)


def test_built_layers_look_like_the_products(kunming_path):
    """The stand-in layers carry the product's columns, and grids tile their communities."""
    layers = make_layers(gpd.read_file(kunming_path), n_incidents=50)
    grids, buildings = layers["grids"], layers["buildings"]
    assert {"grid_code", "community", "worker", "n_buildings", "households", "status"} <= set(grids)
    assert buildings["grid_code"].notna().all()
    assert grids["n_buildings"].sum() == len(buildings)
    for _, part in grids.groupby("community"):
        overlap = part.geometry.area.sum() - part.geometry.union_all().area
        assert overlap < 1e-6 * part.geometry.area.sum()
    assert layers["incidents"].crs.to_epsg() == 4326
    assert layers["incidents"]["grid_code"].notna().mean() > 0.5
