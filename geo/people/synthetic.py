"""Synthetic household lists for the demo and the tests: realistic, valid, and never real people.

Names are drawn from common surnames and given-name characters, ID numbers from the district's
region code, a birth date and a sequence with the GB 11643 check character computed (so they
pass the import's check, and are nobody's), phones from mobile prefixes. Rows come as a street
office's list would give them: Chinese headers, one row per resident, placed by building id, by
address (小区 + 楼号 + 单元 + 室, written with full-width digits and 幢/栋/号楼 variants) or by
a coordinate inside the building, with a share of rows that match no building.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj

from geo.people.addresses import parse_address
from geo.people.privacy import id_check_digit

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦傅方邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红建华文辉建国志强海燕小红春梅国庆德胜淑珍婷婷浩然子涵雨萱梓轩欣怡"
RELATIONS = ("配偶", "子", "女", "父亲", "母亲", "孙子", "孙女")
TYPES = ("户籍", "户籍", "户籍", "常住", "常住", "流动", "出租", "空置")
HOUSEHOLD_TAGS = ("低保", "困难", "独居老人", "残疾", "动迁", "上访", "种养殖")
_FULL = str.maketrans("0123456789", "０１２３４５６７８９")
_BUILDING_WORDS = ("幢", "栋", "号楼")


def synthetic_id(rng: np.random.Generator, region: str = "320581") -> str:
    """An 18-character ID number with a valid check character for a made-up person."""
    born = pd.Timestamp("1940-01-01") + pd.Timedelta(days=int(rng.integers(0, 30000)))
    first17 = f"{region}{born:%Y%m%d}{rng.integers(0, 1000):03d}"
    return first17 + id_check_digit(first17)


def synthetic_name(rng: np.random.Generator) -> str:
    given = "".join(GIVEN[rng.integers(len(GIVEN))] for _ in range(rng.integers(1, 3)))
    return SURNAMES[rng.integers(len(SURNAMES))] + given


def synthetic_phone(rng: np.random.Generator) -> str:
    return f"1{rng.choice([3, 5, 8])}{rng.integers(0, 10)}{rng.integers(0, 10**8):08d}"


def synthetic_households(
    buildings: gpd.GeoDataFrame,
    *,
    households: int,
    unmatched: float = 0.05,
    seed: int = 2026,
    region: str = "320581",
) -> pd.DataFrame:
    """A household list over ``buildings`` (``building_id``, ``name``, geometry), one row per
    resident, with Chinese headers the ``bixi`` mapping reads.

    A household is placed by address where its building's name gives one (``碧溪花园3幢``), else
    by building id or by a WGS84 point inside the footprint, alternately; ``unmatched`` of the
    households name a building id that does not exist. The column ``_expected`` holds the
    building each household should land on (None for the unmatched), for tests.
    """
    rng = np.random.default_rng(seed)
    lonlat = _inner_points(buildings)
    named = buildings.get("name", pd.Series(None, index=buildings.index)).astype(object)
    rows: list[dict] = []
    for number in range(households):
        pick = int(rng.integers(len(buildings)))
        place = _place(
            rng, buildings["building_id"].iloc[pick], named.iloc[pick], lonlat[pick], number
        )
        if rng.random() < unmatched:
            place = {"楼栋编号": f"NOPE{number:05d}", "_expected": None}
        rows.extend(_members(rng, f"HH{number:06d}", place, region))
    return pd.DataFrame(rows)


def _inner_points(buildings: gpd.GeoDataFrame) -> np.ndarray:
    points = buildings.geometry.representative_point()
    to_wgs = pyproj.Transformer.from_crs(buildings.crs, 4326, always_xy=True)
    lon, lat = to_wgs.transform(points.x.to_numpy(), points.y.to_numpy())
    return np.column_stack([lon, lat])


def _place(rng, building_id, name, lonlat, number: int) -> dict:
    unit, room = int(rng.integers(1, 4)), int(rng.integers(1, 7)) * 100 + int(rng.integers(1, 5))
    compound, bno, _, _ = parse_address(name) if isinstance(name, str) else ("", "", "", "")
    if compound and bno:
        word = _BUILDING_WORDS[number % 3]
        text = f"{bno}{word}".translate(_FULL) if number % 2 else f"{bno}{word}"
        return {
            "小区": compound,
            "楼号": text,
            "单元": str(unit),
            "室": f"{room}室",
            "_expected": building_id,
        }
    if number % 2:
        return {
            "楼栋编号": building_id,
            "单元": str(unit),
            "室": str(room),
            "_expected": building_id,
        }
    return {
        "经度": f"{lonlat[0]:.7f}",
        "纬度": f"{lonlat[1]:.7f}",
        "单元": str(unit),
        "室": str(room),
        "_expected": building_id,
    }


def _members(rng, household_id: str, place: dict, region: str) -> list[dict]:
    kind = TYPES[rng.integers(len(TYPES))]
    size = 0 if kind == "空置" else int(rng.integers(1, 5))
    tags = HOUSEHOLD_TAGS[rng.integers(len(HOUSEHOLD_TAGS))] if rng.random() < 0.15 else ""
    base = {"户编号": household_id, **place, "户类型": kind, "户标签": tags}
    if size == 0:
        return [{**base, "姓名": "", "身份证号": "", "联系电话": "", "与户主关系": ""}]
    return [
        {
            **base,
            "姓名": synthetic_name(rng),
            "身份证号": synthetic_id(rng, region),
            "联系电话": synthetic_phone(rng) if k == 0 or rng.random() < 0.5 else "",
            "与户主关系": "户主" if k == 0 else RELATIONS[rng.integers(len(RELATIONS))],
        }
        for k in range(size)
    ]
