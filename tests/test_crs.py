"""geo.crs: the public GCJ-02 / BD-09 vectors, round trips, EPSG codes and coordinate checks."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyproj
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.crs import (
    FAR_AWAY,
    MISSING,
    NOT_A_NUMBER,
    OUT_OF_RANGE,
    REASONS_ZH,
    SWAPPED,
    assert_lonlat,
    check_lonlat,
    from_wgs84,
    metric_crs_for,
    parse_crs_name,
    to_wgs84,
)
from geo.errors import CoordinateError, CRSError

GEOD = pyproj.Geod(ellps="WGS84")
WGS = (116.481499, 39.990475)
GCJ = (116.487586, 39.991754)
BD = (116.49412, 39.997716)
CHANGSHU = (120.78, 31.66)
SUZHOU_BOUNDS = (120.600, 31.299, 120.651, 31.349)


def metres(a, b) -> np.ndarray:
    return np.asarray(GEOD.inv(a[0], a[1], b[0], b[1])[2])


def test_public_vector_forward():
    assert np.allclose(from_wgs84(*WGS, crs="gcj02"), GCJ, atol=2e-6)
    assert np.allclose(from_wgs84(*WGS, crs="bd09"), BD, atol=2e-6)


def test_public_vector_backward():
    assert metres(to_wgs84(*GCJ, crs="gcj02"), WGS) < 0.5
    assert metres(to_wgs84(*BD, crs="bd09"), WGS) < 0.5


@pytest.mark.parametrize(("crs", "low", "high"), [("gcj02", 300, 800), ("bd09", 800, 1500)])
def test_round_trip_and_offset_at_changshu(crs, low, high):
    shifted = from_wgs84(*CHANGSHU, crs=crs)
    assert low < metres(shifted, CHANGSHU) < high  # GCJ ~470 m, BD ~1.1 km
    assert metres(to_wgs84(*shifted, crs=crs), CHANGSHU) < 0.5


def test_vectorised_round_trip_over_china():
    rng = np.random.default_rng(5)
    lon, lat = rng.uniform(75, 134, 100_000), rng.uniform(18, 53, 100_000)
    for crs in ("gcj02", "bd09"):
        x, y = from_wgs84(lon, lat, crs=crs)
        assert x.shape == lon.shape
        back = to_wgs84(x, y, crs=crs)
        assert metres(back, (lon, lat)).max() < 0.5


@settings(max_examples=200, deadline=None)
@given(st.floats(73.6, 134.7), st.floats(18.2, 53.5))
def test_round_trip_property(lon, lat):
    for crs in ("gcj02", "bd09"):
        back = to_wgs84(*from_wgs84(lon, lat, crs=crs), crs=crs)
        assert metres(back, (lon, lat)) < 0.5


def test_gcj_leaves_points_outside_china_unchanged():
    x, y = from_wgs84([-71.06, 2.35], [42.36, 48.86], crs="gcj02")
    assert np.array_equal(x, [-71.06, 2.35])
    assert np.array_equal(y, [42.36, 48.86])


def test_epsg_and_cgcs2000_match_pyproj(suzhou_path):
    points = gpd.read_file(suzhou_path).head(200).representative_point()
    lon, lat = points.x.to_numpy(), points.y.to_numpy()
    x, y = from_wgs84(lon, lat, crs="EPSG:4549")
    expected = points.to_crs(4549)
    assert np.allclose(x, expected.x)
    assert np.allclose(y, expected.y)
    assert metres(to_wgs84(x, y, crs="EPSG:4549"), (lon, lat)).max() < 1e-3
    # CGCS2000 and WGS84 agree to centimetres in practice (no transformation in PROJ).
    assert metres(to_wgs84(lon, lat, crs="cgcs2000"), (lon, lat)).max() < 0.1


def test_parse_crs_name():
    assert parse_crs_name("GCJ-02") == "gcj02"
    assert parse_crs_name(" BD09 ") == "bd09"
    assert parse_crs_name("EPSG:4326") == "wgs84"
    assert parse_crs_name("cgcs2000").to_epsg() == 4490
    assert parse_crs_name(4549).to_epsg() == 4549
    with pytest.raises(CRSError, match="unknown coordinate system 'mars'"):
        parse_crs_name("mars")
    with pytest.raises(CRSError, match="EPSG:99999"):
        parse_crs_name("EPSG:99999")
    with pytest.raises(CRSError, match="no coordinate system"):
        parse_crs_name("  ")


def test_metric_crs_for(suzhou_path, kunming_path):
    suzhou = gpd.read_file(suzhou_path).representative_point()
    assert metric_crs_for(suzhou.x, suzhou.y).to_epsg() == 4549
    assert metric_crs_for(*CHANGSHU).name == "CGCS2000 / 3-degree Gauss-Kruger CM 120E"
    kunming = gpd.read_file(kunming_path).representative_point()
    assert metric_crs_for(kunming.x, kunming.y).to_epsg() == 4543  # CM 102E
    assert metric_crs_for(-71.06, 42.36).to_epsg() == 32619  # Boston: UTM 19N
    assert metric_crs_for(151.2, -33.9).to_epsg() == 32756  # Sydney: UTM 56S
    with pytest.raises(CoordinateError):
        metric_crs_for([np.nan], [np.nan])


def test_check_lonlat_reasons():
    lon = [120.62, None, "abc", 31.32, 200.0, 116.40, "", 120.63]
    lat = [31.32, 31.3, 31.3, 120.62, 31.3, 39.90, 31.3, "31.33"]
    ok, reason = check_lonlat(lon, lat, district_bounds=SUZHOU_BOUNDS)
    assert ok.tolist() == [True, False, False, False, False, False, False, True]
    assert reason.tolist() == [
        "",
        MISSING,
        NOT_A_NUMBER,
        SWAPPED,
        OUT_OF_RANGE,
        FAR_AWAY,  # Beijing, ~1,000 km from Suzhou
        MISSING,
        "",
    ]
    assert {REASONS_ZH[r] for r in reason} >= {"缺少坐标", "经纬度疑似颠倒", "远离辖区"}


def test_swap_detected_by_the_district_when_both_orders_are_in_range():
    district = (44.4, 40.1, 44.6, 40.3)  # Yerevan: lon 44.5, lat 40.2
    ok, reason = check_lonlat([40.2, 44.5], [44.5, 40.2], district_bounds=district)
    assert ok.tolist() == [False, True]
    assert reason[0] == SWAPPED
    # Without a district the same pair is plausible and passes.
    assert check_lonlat([40.2], [44.5])[0].all()


def test_far_threshold():
    near = (SUZHOU_BOUNDS[2] + 0.3, 31.32)  # ~28 km east of the box
    assert check_lonlat(*near, district_bounds=SUZHOU_BOUNDS)[0].all()
    _, reason = check_lonlat(*near, district_bounds=SUZHOU_BOUNDS, max_distance_km=10)
    assert reason.tolist() == [FAR_AWAY]


def test_assert_lonlat():
    assert assert_lonlat("120.62", 31.32, district_bounds=SUZHOU_BOUNDS) == (120.62, 31.32)
    with pytest.raises(CoordinateError, match="swapped") as error:
        assert_lonlat(31.32, 120.62)
    assert "did you mean lon=120.62, lat=31.32" in str(error.value)
    assert "经纬度疑似颠倒" in str(error.value)
    with pytest.raises(CoordinateError, match="out of range"):
        assert_lonlat(190, 95)
