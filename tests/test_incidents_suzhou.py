"""Generated Chinese cases over the real Suzhou (Gusu) footprints: import in three formats,
assignment to grids and workers, re-assignment after a new plan, repeat hotspots."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from geo.incidents.assign import assign_to_grids, reassign_open
from geo.incidents.feeds import IncidentMapping, read_incident_feed, summarise_import
from geo.incidents.stats import hotspot_labels, repeat_hotspots

METRIC = "EPSG:4549"  # CGCS2000 3-degree Gauss-Kruger, CM 120E
MAPPING = IncidentMapping(
    id_col="案件编号",
    lon_col="经度",
    lat_col="纬度",
    category_col="问题类型",
    time_col="上报时间",
    description_col="问题描述",
    address_col="地址",
)
CATEGORIES = [
    ("私搭乱建", "06001"),
    ("乱堆乱放", "06036"),
    ("占道经营", "09006"),
    ("脏乱差", "06012"),
    ("环卫", "06010"),
    ("0102", "06010"),
    ("09009", "09009"),
    ("非法小广告", "07001"),
    ("工地扬尘", "08004"),
    ("店外经营", "09005"),
    ("Illegal flyers", "07001"),
    ("楼下有人私搭乱建，请处理", "06001"),
]
DESCRIPTIONS = [
    "<script>alert('x')</script>",
    "`whoami` 与 ``双反引号``",
    '门口堆物 & "杂物" <b>粗</b>',
    "  前后有空格  ",
    "多行\n描述",
]
N_GOOD = 240


def _formats(moment: pd.Timestamp) -> list[str]:
    return [
        moment.strftime("%Y-%m-%d %H:%M:%S"),
        moment.isoformat(),
        f"{moment.year}/{moment.month}/{moment.day} {moment.hour}:{moment.minute:02d}",
        f"{moment.year}年{moment.month}月{moment.day}日 {moment.hour:02d}:{moment.minute:02d}",
        str(int(moment.timestamp())),
        str(int(moment.timestamp() * 1000)),
    ]


@pytest.fixture(scope="module")
def generated(shared_data: Path) -> dict:
    """~260 cases on real buildings, with the defects a real feed has mixed in."""
    buildings = gpd.read_file(shared_data / "suzhou_gusu_buildings.geojson")
    rng = np.random.default_rng(6)
    chosen = buildings.iloc[np.sort(rng.choice(len(buildings), N_GOOD + 20, replace=False))]
    points = chosen.geometry.representative_point()
    start = pd.Timestamp("2026-03-02 09:00", tz="Asia/Shanghai")
    rows, expected_time = [], []
    for i in range(N_GOOD + 20):
        moment = start + pd.Timedelta(hours=3 * i)
        rows.append(
            {
                "案件编号": f"SZ{i:04d}",
                "经度": f"{points.iloc[i].x:.7f}",
                "纬度": f"{points.iloc[i].y:.7f}",
                "问题类型": CATEGORIES[i % len(CATEGORIES)][0],
                "上报时间": _formats(moment)[i % 6],
                "问题描述": f"第{i}号：{DESCRIPTIONS[i % len(DESCRIPTIONS)]}",
                "地址": f"姑苏区{chosen.iloc[i]['name'] or '无名'}",
            }
        )
        expected_time.append(moment.tz_convert("UTC"))
    table = pd.DataFrame(rows)
    expected_code = [CATEGORIES[i % len(CATEGORIES)][1] for i in range(len(table))]
    # defects, on rows N_GOOD.. (the first N_GOOD stay clean)
    b = N_GOOD
    table.loc[b : b + 2, ["经度", "纬度"]] = ""  # no coordinates
    table.loc[b + 3 : b + 4, ["经度", "纬度"]] = table.loc[
        b + 3 : b + 4, ["纬度", "经度"]
    ].to_numpy()
    table.loc[b + 5, "经度"] = "东经120.6度"  # not numbers
    table.loc[b + 6, ["经度", "纬度"]] = ["0", "0"]
    unknown = ["井盖丢失", "路灯不亮", "", "xyz"]
    table.loc[b + 7 : b + 10, "问题类型"] = unknown
    for k in range(7, 11):
        expected_code[b + k] = "10099"
    table.loc[b + 11 : b + 13, "上报时间"] = ["昨天下午", "", "2026-02-30 10:00"]
    for k in range(11, 14):
        expected_time[b + k] = pd.NaT
    table.loc[b + 14, "案件编号"] = ""  # no id: hashed
    # a repeat hotspot: 4 piles of debris within ~10 m of one building over three weeks
    anchor = points.iloc[0]
    extra = []
    for k in range(4):
        moment = start + pd.Timedelta(days=7 * k)
        extra.append(
            {
                "案件编号": f"HOT{k}",
                "经度": f"{anchor.x + 0.00003 * k:.7f}",
                "纬度": f"{anchor.y + 0.00002 * k:.7f}",
                "问题类型": "乱堆乱放",
                "上报时间": _formats(moment)[0],
                "问题描述": "楼道口又堆满杂物",
                "地址": "姑苏区",
            }
        )
        expected_time.append(moment.tz_convert("UTC"))
        expected_code.append("06036")
    table = pd.concat([table, pd.DataFrame(extra)], ignore_index=True)
    return {"table": table, "code": expected_code, "time": expected_time}


@pytest.fixture(scope="module")
def paths(generated, tmp_path_factory) -> dict[str, Path]:
    table = generated["table"]
    folder = tmp_path_factory.mktemp("suzhou_feed")
    csv_path = folder / "shuzi_chengguan.csv"
    table.to_csv(csv_path, index=False, encoding="gbk")  # city exports are often GBK
    features = []
    for row in table.to_dict("records"):
        try:
            geometry = {"type": "Point", "coordinates": [float(row["经度"]), float(row["纬度"])]}
            properties = {k: v for k, v in row.items() if k not in {"经度", "纬度"}}
        except ValueError:
            geometry, properties = None, row  # coordinates only as text in the properties
        features.append({"type": "Feature", "geometry": geometry, "properties": properties})
    geojson_path = folder / "cases.geojson"
    geojson_path.write_text(
        json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
        encoding="utf-8",
    )
    json_path = folder / "cases.json"
    json_path.write_text(
        json.dumps({"records": table.to_dict("records")}, ensure_ascii=False), encoding="utf-8"
    )
    return {"csv": csv_path, "geojson": geojson_path, "json": json_path}


@pytest.fixture(scope="module")
def imported(paths) -> pd.DataFrame:
    return read_incident_feed(paths["csv"], mapping=MAPPING, source="数字城管")


EXPECTED_SUMMARY = {
    "read": N_GOOD + 20 + 4,
    "located": N_GOOD + 20 + 4 - 7,
    "unlocated": 7,
    "unknown_category": 4,
    "fallback_point": 0,
    "duplicate_id": 0,
    "bad_time": 3,
    "unlocated_reasons": {
        "no coordinates": 3,
        "coordinates out of range (lon/lat swapped?)": 2,
        "not numbers": 1,
        "coordinates are 0,0": 1,
    },
}


def test_gbk_csv_imports_with_exact_counts(imported):
    assert summarise_import(imported) == EXPECTED_SUMMARY


@pytest.mark.parametrize("kind", ["geojson", "json"])
def test_geojson_and_json_give_the_same_table(paths, imported, kind):
    other = read_incident_feed(paths[kind], mapping=MAPPING, source="数字城管")
    assert summarise_import(other) == EXPECTED_SUMMARY
    same = [c for c in other.columns if c != "source_id"]  # a hashed id hashes the record
    pd.testing.assert_frame_equal(other[same], imported[same])
    assert other["source_id"].str.startswith("h:").sum() == 1


def test_categories_times_and_text_as_generated(generated, imported):
    table = generated["table"]
    assert imported["category_code"].tolist() == generated["code"]
    assert imported["category_raw"].tolist() == table["问题类型"].tolist()
    expected = pd.Series(generated["time"], dtype="datetime64[ns, UTC]")
    pd.testing.assert_series_equal(imported["reported_at"], expected, check_names=False)
    # untrusted text is stored exactly as given, <script> and backticks included
    assert imported["description"].tolist() == table["问题描述"].tolist()
    assert imported["description"].str.contains("<script>", regex=False).sum() == 52
    assert (
        imported["source_id"].iloc[: N_GOOD + 14].tolist()
        == table["案件编号"].iloc[: N_GOOD + 14].tolist()
    )


def test_located_coordinates_are_the_generated_ones(generated, imported):
    table = generated["table"]
    located = imported["located"]
    assert np.allclose(imported.loc[located, "lon"], table.loc[located, "经度"].astype(float))
    assert np.allclose(imported.loc[located, "lat"], table.loc[located, "纬度"].astype(float))
    assert imported.loc[~located, ["lon", "lat"]].isna().all().all()


def _square_grids(bounds, *, size: float, shift: float = 0.0) -> gpd.GeoDataFrame:
    minx, miny, maxx, maxy = bounds
    cells, codes, communities, workers = [], [], [], []
    xs = np.arange(minx - size + shift, maxx + size, size)
    ys = np.arange(miny - size, maxy + size, size)
    for i, x in enumerate(xs):
        for j, y in enumerate(ys):
            cells.append(box(x, y, x + size, y + size))
            codes.append(f"320508-{i:02d}{j:02d}")
            communities.append(f"社区{i // 3}{j // 3}")
            workers.append(f"网格员{i:02d}{j:02d}")
    return gpd.GeoDataFrame(
        {"grid_code": codes, "community": communities, "worker": workers},
        geometry=cells,
        crs=METRIC,
    )


@pytest.fixture(scope="module")
def grids(shared_data) -> gpd.GeoDataFrame:
    buildings = gpd.read_file(shared_data / "suzhou_gusu_buildings.geojson").to_crs(METRIC)
    return _square_grids(buildings.total_bounds, size=400.0)


def test_every_located_incident_carries_its_grid_and_worker(imported, grids):
    assigned = assign_to_grids(imported, grids)
    assert list(assigned.index) == list(imported.index)
    located = imported["located"]
    assert assigned.loc[located, "grid_code"].notna().all()
    assert assigned.loc[~located].isna().all().all()
    points = gpd.GeoSeries(
        gpd.points_from_xy(imported.loc[located, "lon"], imported.loc[located, "lat"]),
        index=imported.index[located],
        crs="EPSG:4326",
    ).to_crs(METRIC)
    by_code = grids.set_index("grid_code")
    polygons = by_code.loc[assigned.loc[located, "grid_code"], "geometry"].to_numpy()
    assert all(poly.covers(pt) for poly, pt in zip(polygons, points, strict=True))
    assert (
        assigned.loc[located, "worker"].to_numpy()
        == by_code.loc[assigned.loc[located, "grid_code"], "worker"].to_numpy()
    ).all()
    # the independent count: points each grid polygon covers
    hand = {code: int(poly.covers(points).sum()) for code, poly in by_code.geometry.items()}
    counted = assigned["grid_code"].value_counts().to_dict()
    assert {k: v for k, v in hand.items() if v} == counted


def test_fallback_points_are_not_assigned(imported, grids):
    flagged = imported.assign(fallback_point=imported.index < 10)
    flagged.loc[flagged["fallback_point"], "located"] = False
    assigned = assign_to_grids(flagged, grids)
    assert assigned.loc[:9, "grid_code"].isna().all()
    assert assigned.loc[10:, "grid_code"].notna().sum() == imported.loc[10:, "located"].sum()


def test_publishing_a_plan_reassigns_open_cases_and_logs_it(imported, grids, shared_data):
    current = imported.join(assign_to_grids(imported, grids))
    buildings_bounds = grids.total_bounds + np.array([400, 400, -400, -400])
    new_grids = _square_grids(buildings_bounds, size=400.0, shift=200.0)
    open_mask = pd.Series(imported.index % 2 == 0, index=imported.index)
    updated, log = reassign_open(current, new_grids, open_mask=open_mask)
    fresh = assign_to_grids(imported.loc[open_mask], new_grids)
    # closed cases keep the grid they were handled in
    pd.testing.assert_frame_equal(
        updated.loc[~open_mask, ["grid_code", "worker"]],
        current.loc[~open_mask, ["grid_code", "worker"]],
    )
    assert updated.loc[open_mask, "grid_code"].tolist() == fresh["grid_code"].tolist()
    changed = (
        fresh["grid_code"].ne(current.loc[open_mask, "grid_code"]) & fresh["grid_code"].notna()
    )
    assert set(log.index) == set(changed[changed].index)
    assert len(log) > 50  # a 200 m shift moves many of ~130 open cases
    assert list(log.columns) == [
        "old_grid_code",
        "old_community",
        "old_worker",
        "new_grid_code",
        "new_community",
        "new_worker",
    ]


def _brute_force_core(xy: np.ndarray, days: np.ndarray) -> np.ndarray:
    dist = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    near = (dist <= 30.0) & (np.abs(days[:, None] - days[None, :]) <= 90.0)
    return near.sum(axis=1) >= 3


def test_repeat_hotspots_on_the_generated_cases(imported):
    located = imported.loc[imported["located"] & imported["reported_at"].notna()]
    points = gpd.GeoDataFrame(
        located.assign(incident_id=located["source_id"]),
        geometry=gpd.points_from_xy(located["lon"], located["lat"]),
        crs="EPSG:4326",
    ).to_crs(METRIC)
    hotspots = repeat_hotspots(points)
    members = [set(ids) for ids in hotspots["incident_ids"]]
    hot = {"HOT0", "HOT1", "HOT2", "HOT3"}
    assert any(hot <= m for m in members)
    # every case DBSCAN calls a core has 3+ cases (itself included) within 30 m and 90 days
    labels = hotspot_labels(points)
    xy = np.column_stack([points.geometry.x, points.geometry.y])
    days = ((points["reported_at"] - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(days=1)).to_numpy()
    core = _brute_force_core(xy, days)
    assert (labels.to_numpy()[core] >= 0).all()
    assert hotspots["n_cases"].sum() == int((labels >= 0).sum())
    assert (hotspots["n_cases"] >= 3).all()
