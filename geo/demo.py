"""A demo district modelled on Bixi New District (碧溪新区), Changshu: deterministic by seed.

Six blocks between main roads, each one community (社区) or village (村): gated compounds of
six-storey slab rows (24-48 households each), point towers (100-160), villa rows (1-2) and
irregular village houses (1-3), about 2,000 buildings around 120.78 E, 31.66 N, with a roster of
grid workers and a season of generated 12345 / 数字城管 cases. The names are made up.

Examples
--------
>>> district = demo_district(seed=7)
>>> len(district.buildings) > 1500, district.buildings.crs.to_epsg()
(True, 4549)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from shapely import affinity

CENTRE_LONLAT = (120.78, 31.66)
WORKING_EPSG = 4549  # CGCS2000 / 3-degree Gauss-Kruger CM 120E
STREET = "碧溪街道"
BLOCK_W, BLOCK_H, ROAD_HALF_WIDTH = 1000.0, 1100.0, 15.0

# (community, kind of each quarter of the block: NW, NE, SW, SE)
COMMUNITIES = (
    ("碧溪社区", ("slab", "slab", "tower", "villa")),
    ("溪园社区", ("slab", "tower", "slab", "slab")),
    ("新港社区", ("tower", "villa", "slab", "slab")),
    ("东盛社区", ("slab", "slab", "villa", "tower")),
    ("李袁村", ("village", "village", "village", "village")),
    ("吴桥村", ("village", "village", "village", "village")),
)
COMPOUND_NAMES = (
    "碧溪花苑",
    "溪园新村",
    "新港佳苑",
    "东盛家园",
    "明珠花园",
    "滨江名邸",
    "金桥公寓",
    "锦绣华庭",
    "阳光水岸",
    "丽景湾",
    "香樟苑",
    "翠竹苑",
    "和美家园",
    "景秀新村",
    "港城一品",
    "书香门第",
)
ROAD_NAMES = ("通港路", "碧溪路", "新港大道", "李袁路", "浒浦路")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = (
    "建华",
    "秀英",
    "丽娟",
    "志强",
    "海燕",
    "国平",
    "玉兰",
    "伟",
    "静",
    "敏",
    "磊",
    "婷",
    "军",
    "芳",
    "勇",
    "霞",
)
CASE_KINDS = (
    ("06001", "私搭乱建", "楼道口私自搭建雨棚"),
    ("06036", "乱堆杂物", "单元门口堆放废旧家具"),
    ("09006", "占道经营", "小区门口流动摊贩占道"),
    ("06012", "道路不洁", "路面油污未清理"),
    ("06010", "暴露垃圾", "垃圾桶满溢未清运"),
    ("07001", "非法小广告", "楼道内张贴小广告"),
    ("09009", "机动车乱停放", "消防通道被车辆占用"),
    ("08004", "工地扬尘", "工地未覆盖防尘网"),
)


@dataclass
class DemoDistrict:
    """The generated inputs, as a planner would receive them."""

    buildings: gpd.GeoDataFrame  # building_id, community, households, name, address, kind
    communities: gpd.GeoDataFrame  # community, geometry
    roads: gpd.GeoDataFrame  # name, kind, geometry
    workers: pd.DataFrame  # 工号, 姓名, 手机, 社区
    incidents: pd.DataFrame  # 编号, 经度, 纬度, 类别, 上报时间, 问题描述, 地址
    workflow: pd.DataFrame  # 编号, status, at (Asia/Shanghai): each case's steps so far


def demo_district(*, seed: int = 2026, n_incidents: int = 400) -> DemoDistrict:
    """Generate the demo district; the same seed gives the same district."""
    rng = np.random.default_rng(seed)
    to_metric = pyproj.Transformer.from_crs(4326, WORKING_EPSG, always_xy=True)
    cx, cy = to_metric.transform(*CENTRE_LONLAT)
    origin = np.array([cx - 1.5 * BLOCK_W, cy - BLOCK_H])

    records: list[dict] = []
    outlines = []
    compound_names = iter(COMPOUND_NAMES)
    for index, (community, quarters) in enumerate(COMMUNITIES):
        col, row = index % 3, index // 3
        x0, y0 = origin + np.array([col * BLOCK_W, (1 - row) * BLOCK_H])
        block = shapely.box(x0, y0, x0 + BLOCK_W, y0 + BLOCK_H)
        outlines.append(
            {"community": community, "geometry": block.buffer(-ROAD_HALF_WIDTH, join_style="mitre")}
        )
        road = ROAD_NAMES[index % len(ROAD_NAMES)]
        for q, kind in enumerate(quarters):
            records += _quarter(
                rng, community, road, q, kind, corner=(x0, y0), compound_names=compound_names
            )
        if community == "李袁村":
            records = _with_hamlet(rng, records, community, corner=(x0, y0))
    buildings = gpd.GeoDataFrame(records, crs=WORKING_EPSG)
    buildings.insert(0, "building_id", [f"BX{i:05d}" for i in range(1, len(buildings) + 1)])
    communities = gpd.GeoDataFrame(outlines, crs=WORKING_EPSG)
    roads = _roads(origin)
    return DemoDistrict(
        buildings=buildings,
        communities=communities,
        roads=roads,
        workers=(workers := _workers(rng, buildings)),
        incidents=(incidents := _incidents(rng, buildings, n_incidents)),
        workflow=_workflow(rng, incidents, workers),
    )


def _quarter(
    rng: np.random.Generator,
    community: str,
    road: str,
    q: int,
    kind: str,
    *,
    corner: tuple[float, float],
    compound_names: Iterator[str],
) -> list[dict]:
    """The buildings of quarter ``q`` (0-3, reading order) of the block whose south-west corner
    is ``corner``: a village group, or the next of ``compound_names``."""
    x0, y0 = corner
    qx = x0 + ROAD_HALF_WIDTH + 20 + (q % 2) * BLOCK_W / 2
    qy = y0 + ROAD_HALF_WIDTH + 20 + (1 - q // 2) * BLOCK_H / 2
    size = (BLOCK_W / 2 - 2 * ROAD_HALF_WIDTH - 40, BLOCK_H / 2 - 2 * ROAD_HALF_WIDTH - 40)
    compound = (
        f"{community.removesuffix('村')}{'一二三四'[q]}组"
        if kind == "village"
        else next(compound_names)
    )
    footprints, households = _BUILDERS[kind](rng, qx, qy, *size)
    door = rng.integers(1, 300)
    records = []
    for number, (footprint, hh) in enumerate(zip(footprints, households, strict=True), start=1):
        label = f"{compound}{number}号" if kind == "village" else f"{compound}{number}幢"
        records.append(
            {
                "community": community,
                "households": int(hh),
                "name": label,
                "address": f"{STREET}{road}{door + (number - 1) // 4}号 {label}",
                "kind": kind,
                "geometry": footprint,
            }
        )
    return records


def _with_hamlet(
    rng: np.random.Generator, records: list[dict], community: str, *, corner: tuple[float, float]
) -> list[dict]:
    """``records`` with an isolated hamlet of two houses across the fields: too small for a
    grid of its own (the buildings it stands on are removed)."""
    x0, y0 = corner
    hx, hy = x0 + BLOCK_W - 120, y0 + 60
    fields = shapely.Point(hx + 30, hy).buffer(120)
    records = [
        r for r in records if r["community"] != community or not r["geometry"].intersects(fields)
    ]
    for number in (1, 2):
        records.append(
            {
                "community": community,
                "households": int(rng.integers(1, 4)),
                "name": f"李袁村独户{number}号",
                "address": f"{STREET}李袁路{900 + number}号",
                "kind": "village",
                "geometry": _house(rng, hx + 22 * number, hy, 11, 9, angle=5),
            }
        )
    return records


def _slabs(rng, x0, y0, width, height):
    """Six-storey slab rows facing south: 60 x 12 m, rows 38 m apart."""
    footprints, households = [], []
    for y in np.arange(y0, y0 + height - 12, 38.0):
        for x in np.arange(x0, x0 + width - 60, 75.0):
            length = float(rng.choice([48.0, 60.0, 72.0]))
            footprints.append(shapely.box(x, y, x + min(length, 66.0), y + 12))
            households.append(int(rng.choice([24, 36, 48])))
    return footprints, households


def _towers(rng, x0, y0, width, height):
    """Point towers on a loose lattice: 26 x 26 m, 100-160 households."""
    footprints, households = [], []
    for y in np.arange(y0, y0 + height - 26, 78.0):
        for x in np.arange(x0, x0 + width - 26, 72.0):
            jx, jy = rng.uniform(-6, 6, size=2)
            footprints.append(
                affinity.rotate(shapely.box(x + jx, y + jy, x + jx + 26, y + jy + 26), 3)
            )
            households.append(int(rng.integers(100, 161)))
    return footprints, households


def _villas(rng, x0, y0, width, height):
    """Rows of villas: 14 x 12 m, 1-2 households."""
    footprints, households = [], []
    for y in np.arange(y0 + height * 0.4, y0 + height - 12, 34.0):  # a park fills the south
        for x in np.arange(x0, x0 + width - 14, 28.0):
            footprints.append(shapely.box(x, y, x + 14, y + 12))
            households.append(int(rng.integers(1, 3)))
    return footprints, households


def _village(rng, x0, y0, width, height):
    """Irregular village houses strung along lanes, in hamlets with fields between them."""
    footprints, households = [], []
    lanes = np.arange(y0 + 20, y0 + height - 20, 62.0)
    for lane_y in lanes:
        x = x0 + rng.uniform(0, 30)
        while x < x0 + width - 20:
            if rng.random() < 0.08:
                x += rng.uniform(40, 80)  # a field between hamlets
                continue
            w, h = rng.uniform(9, 14), rng.uniform(8, 12)
            y = lane_y + rng.uniform(-8, 8)
            footprints.append(_house(rng, x, y, w, h, angle=rng.uniform(-15, 15)))
            households.append(int(rng.integers(1, 4)))
            x += w + rng.uniform(7, 20)
    return footprints, households


def _house(rng, x, y, w, h, *, angle):
    return affinity.rotate(shapely.box(x, y, x + w, y + h), angle, origin="centroid")


_BUILDERS = {"slab": _slabs, "tower": _towers, "villa": _villas, "village": _village}


def _roads(origin: np.ndarray) -> gpd.GeoDataFrame:
    x0, y0 = origin
    rows = []
    for i in range(4):  # north-south main roads between and around the blocks
        x = x0 + i * BLOCK_W
        rows.append(
            {
                "name": ROAD_NAMES[i % 5],
                "kind": "major_road",
                "geometry": shapely.LineString([(x, y0 - 50), (x, y0 + 2 * BLOCK_H + 50)]),
            }
        )
    for j in range(3):  # east-west main roads
        y = y0 + j * BLOCK_H
        rows.append(
            {
                "name": ROAD_NAMES[(j + 1) % 5],
                "kind": "major_road",
                "geometry": shapely.LineString([(x0 - 50, y), (x0 + 3 * BLOCK_W + 50, y)]),
            }
        )
    for i in range(3):  # estate roads between the compounds of a block
        x = x0 + (i + 0.5) * BLOCK_W
        rows.append(
            {
                "name": f"{ROAD_NAMES[i]}支路",
                "kind": "minor_road",
                "geometry": shapely.LineString([(x, y0), (x, y0 + 2 * BLOCK_H)]),
            }
        )
    return gpd.GeoDataFrame(rows, crs=WORKING_EPSG)


def _workers(rng, buildings: gpd.GeoDataFrame) -> pd.DataFrame:
    """Enough grid workers per community for grids of 4 to 5 buildings, ~3 grids each."""
    rows = []
    for community, count in buildings.groupby("community").size().items():
        for k in range(max(2, int(np.ceil(count / 4.5 / 3)))):
            name = SURNAMES[rng.integers(len(SURNAMES))] + GIVEN[rng.integers(len(GIVEN))]
            rows.append(
                {
                    "工号": f"W{len(rows) + 1:04d}",
                    "姓名": name,
                    "手机": f"13{rng.integers(5, 10)}{rng.integers(0, 10**8):08d}",
                    "社区": community,
                    "_order": k,
                }
            )
    return pd.DataFrame(rows).drop(columns="_order")


def _incidents(rng, buildings: gpd.GeoDataFrame, count: int) -> pd.DataFrame:
    """Cases near real buildings over the last three months, as a 12345 export would list them."""
    picks = rng.integers(0, len(buildings), size=count)
    centres = buildings.geometry.representative_point().values[picks]
    xy = shapely.get_coordinates(centres) + rng.normal(0, 12, size=(count, 2))
    lon, lat = pyproj.Transformer.from_crs(WORKING_EPSG, 4326, always_xy=True).transform(
        xy[:, 0], xy[:, 1]
    )
    kinds = rng.integers(0, len(CASE_KINDS), size=count)
    start = pd.Timestamp("2026-08-01 08:00")
    minutes = np.sort(rng.integers(0, 60 * 24 * 110, size=count))
    return pd.DataFrame(
        {
            "编号": [f"CS{20260000 + i:08d}" for i in range(1, count + 1)],
            "经度": np.round(lon, 6),
            "纬度": np.round(lat, 6),
            "类别": [CASE_KINDS[k][1] for k in kinds],
            "上报时间": [
                (start + pd.Timedelta(minutes=int(m))).strftime("%Y-%m-%d %H:%M") for m in minutes
            ],
            "问题描述": [CASE_KINDS[k][2] for k in kinds],
            "地址": buildings["address"].to_numpy()[picks],
        }
    )


def _workflow(rng, incidents: pd.DataFrame, workers: pd.DataFrame) -> pd.DataFrame:
    """How far each case got: most closed in days, some sent back once, the newest still open."""
    steps = []
    newest = pd.Timestamp(incidents["上报时间"].max())
    for case_id, reported in zip(
        incidents["编号"], pd.to_datetime(incidents["上报时间"]), strict=True
    ):
        actor = str(rng.choice(workers["姓名"]))
        if rng.random() < 0.06:
            steps.append(
                (case_id, "rejected", reported + pd.Timedelta(hours=rng.uniform(1, 6)), actor)
            )
            continue
        at = reported
        path = ["registered", "dispatched", "handled"]
        if rng.random() < 0.07:
            path += ["dispatched", "handled"]  # 退回: verification failed, handled again
        path += ["verified", "closed"]
        age_days = (newest - reported) / pd.Timedelta(days=1)
        stop = len(path) if age_days > 12 else int(rng.integers(0, len(path) + 1))
        for status in path[:stop]:
            hours = rng.uniform(1, 20) if status == "handled" else rng.uniform(0.2, 2)
            at = at + pd.Timedelta(hours=hours)
            steps.append((case_id, status, at, actor))
    return pd.DataFrame(steps, columns=["编号", "status", "at", "actor"])
