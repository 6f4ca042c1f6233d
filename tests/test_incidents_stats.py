"""Statistics per grid, community and worker against a hand count; hotspots; monthly trend."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point

from geo.errors import InputError
from geo.incidents.stats import (
    case_timeline,
    category_counts,
    hotspot_labels,
    incident_stats,
    monthly_trend,
    repeat_hotspots,
)
from geo.incidents.workflow import validate_events

SH = "Asia/Shanghai"


def local(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=SH)


# id, grid, community, worker, category (time limit), reported, then (status, time) steps
CASES = [
    ("A", "G1", "C1", "W1", "06010", "2026-11-23 09:00",  # 2h: deadline 11:10, closed 11:00
     [("registered", "09:10"), ("dispatched", "09:20"), ("handled", "10:00"),
      ("verified", "10:30"), ("closed", "11:00")]),
    ("B", "G1", "C1", "W1", "09009", "2026-11-23 09:00",  # 1h: deadline 10:00, closed 11:30
     [("registered", "09:00"), ("dispatched", "09:30"), ("handled", "10:30"),
      ("verified", "10:40"), ("closed", "11:30")]),
    ("C", "G1", "C1", "W1", "06001", "2026-11-23 10:00",  # 5wd: deadline Mon 30th 10:30
     [("registered", "10:30"), ("dispatched", "11:00")]),
    ("D", "G1", "C1", "W1", "07001", "2026-11-23 14:00",  # not a case: 不予立案
     [("rejected", "14:30")]),
    ("E", "G2", "C1", "W2", "09006", "2026-11-24 09:00",  # 2h: deadline 11:05; sent back once
     [("registered", "09:05"), ("dispatched", "09:10"), ("handled", "10:00"),
      ("dispatched", "10:30"), ("handled", "14:00"), ("verified", "14:30"), ("closed", "15:00")]),
    ("F", "G2", "C1", "W2", "08004", "2026-11-25 16:00",  # 4h: deadline Thu 11:30, still open
     [("registered", "16:30"), ("dispatched", "17:00")]),
    ("G", None, None, None, "10099", "2026-11-26 09:00", []),  # not assigned, not registered
    ("H", "G1", "C1", "W1", "06012", "2026-10-15 09:00", []),  # before the range
]  # fmt: skip
SINCE = local("2026-11-01 00:00")
UNTIL = local("2026-11-26 12:00")


@pytest.fixture(scope="module")
def incidents() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "incident_id": [c[0] for c in CASES],
            "grid_code": [c[1] for c in CASES],
            "community": [c[2] for c in CASES],
            "worker": [c[3] for c in CASES],
            "category_code": [c[4] for c in CASES],
            "reported_at": [local(c[5]).tz_convert("UTC") for c in CASES],
        },
        index=range(10, 10 + len(CASES)),
    )


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    rows = []
    for incident, *_, reported, steps in CASES:
        status, day = "reported", reported[:10]
        for target, clock in steps:
            rows.append((incident, status, target, "调度员", local(f"{day} {clock}")))
            status = target
    table = pd.DataFrame(rows, columns=["incident_id", "from_status", "to_status", "actor", "at"])
    validate_events(table)  # the hand table itself follows the loop
    return table


def test_timeline_by_hand(incidents, events):
    timeline = case_timeline(incidents, events).set_index(incidents["incident_id"])
    assert timeline["status"].to_dict() == {
        "A": "closed", "B": "closed", "C": "dispatched", "D": "rejected",
        "E": "closed", "F": "dispatched", "G": "reported", "H": "reported",
    }  # fmt: skip
    assert timeline.loc["A", "deadline"] == local("2026-11-23 11:10")
    assert timeline.loc["B", "deadline"] == local("2026-11-23 10:00")
    assert timeline.loc["C", "deadline"] == local("2026-11-30 10:30")
    assert timeline.loc["E", "deadline"] == local("2026-11-24 11:05")
    assert timeline.loc["F", "deadline"] == local("2026-11-26 11:30")
    assert timeline.loc["E", "registered_at"] == local("2026-11-24 09:05")
    assert timeline.loc["E", "handling_hours"] == pytest.approx(5 + 55 / 60)


def test_stats_by_grid_match_the_hand_count(incidents, events):
    stats = incident_stats(incidents, events, by="grid", since=SINCE, until=UNTIL)
    assert list(stats.index) == ["(unassigned)", "G1", "G2"]
    g1, g2, none = stats.loc["G1"], stats.loc["G2"], stats.loc["(unassigned)"]
    assert g1[["reported", "registered", "closed", "closed_on_time", "overdue"]].tolist() == [
        4, 3, 2, 1, 1,  # B closed late; C not yet due; D rejected
    ]  # fmt: skip
    assert g1["registration_rate"] == pytest.approx(0.75)
    assert g1["closure_rate"] == pytest.approx(2 / 3)
    assert g1["on_time_rate"] == pytest.approx(0.5)
    assert g1["median_handling_hours"] == pytest.approx((110 / 60 + 2.5) / 2)
    assert g1[["class_06", "class_07", "class_08", "class_09", "class_10"]].tolist() == [
        2, 1, 0, 1, 0,
    ]  # fmt: skip
    assert g2[["reported", "registered", "closed", "closed_on_time", "overdue"]].tolist() == [
        2, 2, 1, 0, 2,  # E closed late, F open past its deadline
    ]  # fmt: skip
    assert g2["on_time_rate"] == 0.0
    assert g2["median_handling_hours"] == pytest.approx(5 + 55 / 60)
    assert none["reported"] == 1
    assert none["registration_rate"] == 0.0
    assert np.isnan(none["closure_rate"])  # nothing registered: no rate, not 0
    assert np.isnan(none["median_handling_hours"])
    assert none["class_10"] == 1


def test_stats_by_worker_and_community(incidents, events):
    by_worker = incident_stats(incidents, events, by="worker", since=SINCE, until=UNTIL)
    by_grid = incident_stats(incidents, events, by="grid", since=SINCE, until=UNTIL)
    assert by_worker.loc["W1"].equals(by_grid.loc["G1"])
    assert by_worker.loc["W2"].equals(by_grid.loc["G2"])
    community = incident_stats(incidents, events, by="community", since=SINCE, until=UNTIL)
    c1 = community.loc["C1"]
    assert c1[["reported", "registered", "closed", "closed_on_time", "overdue"]].tolist() == [
        6, 5, 3, 1, 3,
    ]  # fmt: skip
    assert c1["median_handling_hours"] == pytest.approx(2.5)


def test_stats_are_as_of_until(incidents, events):
    early = incident_stats(incidents, events, since=SINCE, until=local("2026-11-23 10:45"))
    g1 = early.loc["G1"]
    # A, B and C reported; A verified but not closed; B past its 10:00 deadline
    assert g1[["reported", "registered", "closed", "overdue"]].tolist() == [3, 3, 0, 1]
    assert list(early.index) == ["G1"]


def test_stats_refuse_unknown_grouping(incidents, events):
    with pytest.raises(InputError, match="use one of grid, community, worker"):
        incident_stats(incidents, events, by="street")
    with pytest.raises(InputError, match="lack the column grid_code"):
        incident_stats(incidents.drop(columns="grid_code"), events)


def test_category_counts(incidents):
    counts = category_counts(incidents, by="grid", since=SINCE, until=UNTIL)
    assert sorted(map(tuple, counts.to_numpy().tolist())) == [
        ("(unassigned)", "10099", 1),
        ("G1", "06001", 1),
        ("G1", "06010", 1),
        ("G1", "07001", 1),
        ("G1", "09009", 1),
        ("G2", "08004", 1),
        ("G2", "09006", 1),
    ]


def test_monthly_trend(incidents, events):
    trend = monthly_trend(incidents, events)
    assert trend.to_dict("records") == [
        {"month": "2026-10", "reported": 1, "closed": 0},
        {"month": "2026-11", "reported": 7, "closed": 3},
    ]
    by_grid = monthly_trend(incidents, events, by="grid").set_index(["month", "grid_code"])
    assert by_grid.loc[("2026-11", "G1")].tolist() == [4, 2]
    assert by_grid.loc[("2026-11", "G2")].tolist() == [2, 1]
    assert by_grid.loc[("2026-11", "(unassigned)")].tolist() == [1, 0]
    assert by_grid.loc[("2026-10", "G1")].tolist() == [1, 0]


def _points(xy, days, **columns) -> gpd.GeoDataFrame:
    start = pd.Timestamp("2026-01-05", tz="UTC")
    return gpd.GeoDataFrame(
        {"reported_at": [start + pd.Timedelta(days=d) for d in days], **columns},
        geometry=[Point(x, y) for x, y in xy],
        crs="EPSG:4549",
    )


def test_hotspot_needs_three_cases_within_30_m_and_90_days():
    base = (500000.0, 3460000.0)
    near = [(base[0] + dx, base[1] + dy) for dx, dy in [(0, 0), (20, 0), (0, 25)]]
    assert len(repeat_hotspots(_points(near, [0, 30, 80]))) == 1
    assert repeat_hotspots(_points(near, [0, 30, 80]))["n_cases"].tolist() == [3]
    assert repeat_hotspots(_points(near, [0, 30, 200])).empty  # the third is 120+ days later
    far = [(base[0], base[1]), (base[0] + 31, base[1]), (base[0], base[1] + 31)]
    assert repeat_hotspots(_points(far, [0, 1, 2])).empty  # each pair 31 m or more apart
    assert repeat_hotspots(_points(near[:2], [0, 1])).empty


def test_hotspots_ignore_fallback_points_and_chain_like_dbscan():
    same = [(500000.0, 3460000.0)] * 6
    flagged = _points(same, range(6), fallback_point=[True] * 6)
    assert repeat_hotspots(flagged).empty
    assert repeat_hotspots(flagged.assign(fallback_point=False))["n_cases"].tolist() == [6]
    line = [(500000.0 + 25 * k, 3460000.0) for k in range(5)]
    chained = repeat_hotspots(_points(line, [0] * 5, incident_id=list("abcde")))
    assert chained["incident_ids"].tolist() == [["a", "b", "c", "d", "e"]]
    assert chained.geometry.iloc[0].equals(Point(500050.0, 3460000.0))


def test_two_separate_hotspots_and_labels():
    one = [(500000.0 + dx, 3460000.0) for dx in (0, 5, 10)]
    two = [(501000.0 + dx, 3460000.0) for dx in (0, 5, 10, 15)]
    points = _points([*one, *two, (502000.0, 3460000.0)], [0] * 8)
    labels = hotspot_labels(points)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 1, -1]
    result = repeat_hotspots(points)
    assert result["n_cases"].tolist() == [4, 3]  # largest first
    with pytest.raises(InputError, match="metric"):
        hotspot_labels(points.to_crs("EPSG:4326"))
