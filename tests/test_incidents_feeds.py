"""Reading incident feeds: the real Boston 311 file, timestamps, encodings, fallback points."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.incidents.catalogue import DATA_DIR
from geo.incidents.feeds import (
    FEED_COLUMNS,
    FeedError,
    IncidentMapping,
    flag_fallback_points,
    parse_timestamps,
    read_incident_feed,
    summarise_import,
)

BOSTON_MAPPING = DATA_DIR / "incident_mappings" / "boston311.json"
FALLBACK = ("42.3594", "-71.0587")  # Boston's city-hall default point


@pytest.fixture(scope="module")
def boston_path(shared_data: Path) -> Path:
    return shared_data / "boston311_100.csv"


@pytest.fixture(scope="module")
def boston(boston_path) -> pd.DataFrame:
    mapping = IncidentMapping.from_file(BOSTON_MAPPING)
    return read_incident_feed(boston_path, mapping=mapping, source="boston311")


@pytest.fixture(scope="module")
def boston_raw(boston_path) -> list[dict]:
    with boston_path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_boston_exact_counts(boston, boston_raw):
    # The data README says 20 records sit on the fallback point; the file holds 19 (counted
    # below straight from the CSV text), and that is what the import must report.
    on_fallback = sum((r["latitude"], r["longitude"]) == FALLBACK for r in boston_raw)
    assert on_fallback == 19
    summary = summarise_import(boston)
    assert summary == {
        "read": 100,
        "located": 81,
        "unlocated": 19,
        "unknown_category": 46,
        "fallback_point": 19,
        "duplicate_id": 0,
        "bad_time": 0,
        "unlocated_reasons": {"geocoder fallback point": 19},
    }


def test_boston_fallback_rows_are_exactly_the_default_point(boston, boston_raw):
    expected = [(r["latitude"], r["longitude"]) == FALLBACK for r in boston_raw]
    assert boston["fallback_point"].tolist() == expected
    # the second most repeated coordinate (2 records) is a real place, not a fallback
    assert not boston.loc[(boston["lat"] == 42.3412) & (boston["lon"] == -71.0815)][
        "fallback_point"
    ].any()


def test_boston_rows_keep_ids_times_and_text(boston, boston_raw):
    assert list(boston.columns) == FEED_COLUMNS
    assert boston["source_id"].tolist() == [r["case_enquiry_id"] for r in boston_raw]
    assert boston["description"].tolist() == [r["case_title"] for r in boston_raw]
    assert boston["category_raw"].tolist() == [r["type"] for r in boston_raw]
    # open_dt is Boston local time (EST in January, UTC-5)
    assert boston.loc[0, "reported_at"] == pd.Timestamp("2022-01-21 18:47:00", tz="UTC")
    assert str(boston["reported_at"].dt.tz) == "UTC"


def test_boston_categories_follow_the_feed_map(boston, boston_raw):
    types = pd.Series([r["type"] for r in boston_raw])
    parking = types.eq("Parking Enforcement")
    assert int(parking.sum()) == 20
    assert (boston.loc[parking, "category_code"] == "09009").all()
    mapped = set(json.loads(BOSTON_MAPPING.read_text())["category_map"])
    assert int((~types.isin(mapped)).sum()) == 46
    assert (boston.loc[~types.isin(mapped), "category_code"] == "10099").all()


def test_reimport_gives_identical_ids(boston_path, boston):
    again = read_incident_feed(
        boston_path, mapping=IncidentMapping.from_file(BOSTON_MAPPING), source="boston311"
    )
    pd.testing.assert_frame_equal(again, boston)


def test_rows_without_id_get_a_stable_hash(boston_path, tmp_path):
    table = pd.read_csv(boston_path, dtype=str, keep_default_na=False)
    table.loc[[3, 4], "case_enquiry_id"] = ""
    path = tmp_path / "no_ids.csv"
    table.to_csv(path, index=False)
    mapping = IncidentMapping.from_file(BOSTON_MAPPING)
    first = read_incident_feed(path, mapping=mapping, source="b")
    second = read_incident_feed(path, mapping=mapping, source="b")
    assert first.loc[[3, 4], "source_id"].str.startswith("h:").all()
    assert first.loc[3, "source_id"] != first.loc[4, "source_id"]
    assert first["source_id"].equals(second["source_id"])
    assert first.loc[5, "source_id"] == table.loc[5, "case_enquiry_id"]


SHANGHAI_0547 = pd.Timestamp("2022-01-21 05:47:00", tz="UTC")


@pytest.mark.parametrize(
    "text",
    [
        "2022-01-21 13:47:00",
        "2022-01-21T13:47:00",
        "2022-01-21T13:47:00+08:00",
        "2022-01-21T05:47:00Z",
        "2022/1/21 13:47",
        "2022/01/21 13:47:00",
        "2022年1月21日 13:47",
        "2022年1月21日13时47分",
        "2022年01月21日 13:47:00",
        "1642744020",
        "1642744020000",
    ],
)
def test_timestamp_formats(text):
    parsed, problem = parse_timestamps(pd.Series([text]))
    assert parsed[0] == SHANGHAI_0547
    assert problem[0] is None


def test_naive_times_take_the_given_zone_and_aware_ones_keep_theirs():
    raw = pd.Series(["2022-01-21 13:47:00", "2022-01-21T13:47:00+08:00", "2022-07-01 12:00"])
    parsed, _ = parse_timestamps(raw, tz="America/New_York")
    assert parsed.tolist() == [
        pd.Timestamp("2022-01-21 18:47", tz="UTC"),  # EST
        SHANGHAI_0547,
        pd.Timestamp("2022-07-01 16:00", tz="UTC"),  # EDT
    ]


def test_bad_times_are_kept_as_nat_with_a_reason():
    raw = pd.Series(
        ["昨天下午", "", None, "2022-13-45 10:00", "2022-03-13 02:30"], index=[5, 6, 7, 8, 9]
    )
    parsed, problem = parse_timestamps(raw, tz="America/New_York")
    assert parsed.isna().all()
    assert list(parsed.index) == [5, 6, 7, 8, 9]
    assert problem.tolist() == [
        "unparseable time",
        "missing time",
        "missing time",
        "unparseable time",
        "time does not exist in America/New_York",  # the spring-forward gap
    ]


def test_csv_encodings_utf8_bom_and_gbk_read_the_same(tmp_path):
    rows = pd.DataFrame(
        {
            "编号": ["A1", "A2"],
            "经度": ["120.62", "120.63"],
            "纬度": ["31.31", "31.32"],
            "类型": ["占道经营", "乱堆乱放"],
            "时间": ["2026/3/2 9:15", "2026年3月2日 10:00"],
            "描述": ["门口摆摊 <b>", "楼道堆物`x`"],
        }
    )
    mapping = IncidentMapping(
        id_col="编号",
        lon_col="经度",
        lat_col="纬度",
        category_col="类型",
        time_col="时间",
        description_col="描述",
    )
    results = []
    for encoding in ("utf-8", "utf-8-sig", "gbk"):
        path = tmp_path / f"feed-{encoding}.csv"
        rows.to_csv(path, index=False, encoding=encoding)
        results.append(read_incident_feed(path, mapping=mapping, source="12345"))
    for other in results[1:]:
        pd.testing.assert_frame_equal(other, results[0])
    assert results[0]["category_code"].tolist() == ["09006", "06036"]
    assert results[0]["description"].tolist() == ["门口摆摊 <b>", "楼道堆物`x`"]


def test_json_shapes_and_errors(tmp_path):
    records = [{"id": 1, "x": 120.6, "y": 31.3, "t": 1642744020, "c": "06001"}]
    mapping = IncidentMapping(id_col="id", lon_col="x", lat_col="y", time_col="t", category_col="c")
    for name, payload in (("list.json", records), ("wrapped.json", {"records": records})):
        path = tmp_path / name
        path.write_text(json.dumps(records if name == "list.json" else payload))
        df = read_incident_feed(path, mapping=mapping, source="s")
        assert df.loc[0, "source_id"] == "1"
        assert df.loc[0, "reported_at"] == SHANGHAI_0547
        assert bool(df.loc[0, "located"])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"rows": records}))
    with pytest.raises(FeedError, match="list of objects"):
        read_incident_feed(bad, mapping=mapping, source="s")
    with pytest.raises(FeedError, match="no column 'nope'"):
        read_incident_feed(
            tmp_path / "list.json", mapping=IncidentMapping(id_col="nope"), source="s"
        )
    with pytest.raises(FeedError, match="does not exist"):
        read_incident_feed(tmp_path / "missing.csv", mapping=mapping, source="s")


def test_mapping_file_round_trip_and_unknown_keys(tmp_path):
    mapping = IncidentMapping.from_file(BOSTON_MAPPING)
    assert mapping.tz == "America/New_York"
    path = tmp_path / "m.json"
    path.write_text(json.dumps(mapping.to_dict()))
    assert IncidentMapping.from_file(path) == mapping
    path.write_text(json.dumps({"lon": "x"}))
    with pytest.raises(FeedError, match="unknown key"):
        IncidentMapping.from_file(path)


def test_gcj02_feed_is_converted_to_wgs84(tmp_path):
    # Suzhou's 观前街 area: a GCJ-02 point lies a few hundred metres off its WGS84 position
    wgs = (120.6290, 31.3110)
    from geo.crs import from_wgs84

    gx, gy = from_wgs84(wgs[0], wgs[1], crs="gcj02")
    path = tmp_path / "gcj.csv"
    pd.DataFrame({"lng": [float(gx)], "lat": [float(gy)]}).to_csv(path, index=False)
    df = read_incident_feed(
        path, mapping=IncidentMapping(lon_col="lng", lat_col="lat", crs="gcj02"), source="s"
    )
    assert df.loc[0, "lon"] == pytest.approx(wgs[0], abs=1e-6)
    assert df.loc[0, "lat"] == pytest.approx(wgs[1], abs=1e-6)


def test_fallback_needs_both_repeats_and_share():
    lon = pd.Series([120.6] * 4 + list(np.linspace(120.61, 120.62, 6)))
    lat = pd.Series([31.3] * 4 + list(np.linspace(31.31, 31.32, 6)))
    assert not flag_fallback_points(lon, lat).any()  # 4 < min_repeats
    assert flag_fallback_points(lon, lat, min_repeats=4).sum() == 4
    # 5 repeats among 200 rows is 2.5 %: under the 5 % share, so a busy real place
    many_lon = pd.concat([lon.iloc[:4], pd.Series([120.6]), pd.Series(np.linspace(121, 122, 195))])
    many_lat = pd.concat([lat.iloc[:4], pd.Series([31.3]), pd.Series(np.linspace(30, 31, 195))])
    assert not flag_fallback_points(many_lon, many_lat).any()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=120),
    st.integers(2, 8),
)
def test_fallback_flag_is_exactly_the_frequent_coordinates(cells, min_repeats):
    lon = pd.Series([120.6 + 0.001 * a for a, _ in cells])
    lat = pd.Series([31.3 + 0.001 * b for _, b in cells])
    flags = flag_fallback_points(lon, lat, min_repeats=min_repeats, min_share=0.05)
    counts = pd.Series(cells).map(pd.Series(cells).value_counts())
    expected = counts >= max(min_repeats, 0.05 * len(cells))
    assert flags.tolist() == expected.tolist()


MAPPING = IncidentMapping(
    id_col="id", lon_col="x", lat_col="y", category_col="c", time_col="t", description_col="d"
)


def test_empty_feeds_give_an_empty_table(tmp_path):
    (tmp_path / "empty.csv").write_text("id,x,y,c,t,d\n")
    (tmp_path / "empty.json").write_text("[]")
    for name in ("empty.csv", "empty.json"):
        df = read_incident_feed(tmp_path / name, mapping=MAPPING, source="s")
        assert list(df.columns) == FEED_COLUMNS
        assert summarise_import(df)["read"] == 0
        assert df["lon"].dtype == "float64"


def test_geojson_non_points_null_geometry_and_json_values(tmp_path):
    features = [
        {
            "type": "Feature",
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[120.6, 31.3], [120.61, 31.3], [120.61, 31.31], [120.6, 31.3]]],
            },
            "properties": {"id": "p1", "c": "私搭乱建", "t": "2026-01-01 10:00", "d": "x"},
        },
        {"type": "Feature", "geometry": None, "properties": {"id": "p2", "t": None, "d": None}},
        {
            "type": "Feature",
            "geometry": None,  # coordinates only in the properties
            "properties": {"id": "p3", "x": "120.62", "y": "31.32", "d": {"楼层": 3}},
        },
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [120.6, 31.3]},
            "properties": {"id": 4, "c": 6001, "t": 1642744020, "d": 12},
        },
    ]
    path = tmp_path / "mixed.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    df = read_incident_feed(path, mapping=MAPPING, source="s")
    assert df["unlocated_reason"].tolist() == [
        "geometry is a Polygon, not a point",
        "no coordinates",
        None,
        None,
    ]
    assert df["located"].tolist() == [False, False, True, True]
    assert df.loc[2, ["lon", "lat"]].tolist() == [120.62, 31.32]
    # JSON values that are not strings are kept as their JSON text
    assert df["description"].tolist() == ["x", None, '{"楼层": 3}', "12"]
    assert df["source_id"].tolist() == ["p1", "p2", "p3", "4"]
    assert df["category_code"].tolist() == ["06001", "10099", "10099", "06001"]
    assert df["time_problem"].tolist() == [None, "missing time", "missing time", None]


def test_bounds_mark_points_outside_the_district(tmp_path):
    path = tmp_path / "b.csv"
    pd.DataFrame(
        {
            "id": ["in", "far", "swapped", "nan"],
            "x": ["120.62", "116.4", "31.31", "nan"],
            "y": ["31.31", "39.9", "120.62", "31.3"],
        }
    ).to_csv(path, index=False)
    mapping = IncidentMapping(id_col="id", lon_col="x", lat_col="y")
    df = read_incident_feed(path, mapping=mapping, source="s", bounds=(120.5, 31.2, 120.7, 31.4))
    assert df["unlocated_reason"].tolist() == [
        None,
        "outside the district",
        "coordinates out of range (lon/lat swapped?)",
        "not numbers",
    ]
