"""geo.locate.engine on the real Suzhou footprints: agreement with brute force, the boundary rule,
outside points, coordinate systems, the chunked CSV path and the address search."""

from __future__ import annotations

import csv

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from footprints import voronoi_grids

from geo.crs import (
    FAR_AWAY,
    MISSING,
    NOT_A_NUMBER,
    OUT_OF_RANGE,
    SWAPPED,
    from_wgs84,
    metric_crs_for,
)
from geo.errors import CoordinateError, CRSError, InputError, NotFound
from geo.locate.engine import GridIndex, find_by_address, locate_csv

RNG_SEED = 20261127


@pytest.fixture(scope="session")
def suzhou(shared_data):
    buildings = gpd.read_file(shared_data / "suzhou_gusu_buildings.geojson").to_crs(4549)
    buildings["building_id"] = [f"B{i:05d}" for i in range(len(buildings))]
    grids = voronoi_grids(buildings)
    return buildings, grids, GridIndex.build(buildings, grids)


@pytest.fixture(scope="session")
def random_points(suzhou):
    buildings = suzhou[0]
    minx, miny, maxx, maxy = buildings.total_bounds
    rng = np.random.default_rng(RNG_SEED)
    return rng.uniform(minx, maxx, 100_000), rng.uniform(miny, maxy, 100_000)


@pytest.fixture(scope="session")
def located(suzhou, random_points):
    return suzhou[2].locate(*random_points)


def brute_force_contains(geoms, codes, x, y) -> np.ndarray:
    """For each point the lowest code among the polygons containing it (else None), without
    any spatial tree: real OSM footprints do overlap here and there."""
    order = np.argsort(x)
    xs = x[order]
    answer = np.full(x.size, None, dtype=object)
    codes = np.asarray(codes, dtype=object)
    by_code = np.argsort(codes.astype(str))
    for geom, code in zip(np.asarray(geoms)[by_code], codes[by_code], strict=True):
        minx, miny, maxx, maxy = geom.bounds
        lo, hi = np.searchsorted(xs, [minx, maxx])
        candidates = order[lo:hi]
        candidates = candidates[(y[candidates] >= miny) & (y[candidates] <= maxy)]
        inside = candidates[shapely.contains_xy(geom, x[candidates], y[candidates])]
        answer[inside[[answer[i] is None for i in inside]]] = code
    return answer


def test_grids_fixture_tiles_without_overlap(suzhou):
    _, grids, _ = suzhou
    assert grids["grid_code"].is_unique
    assert grids.area.sum() == pytest.approx(shapely.union_all(grids.geometry.array).area, rel=1e-9)


def test_buildings_agree_with_brute_force(suzhou, random_points, located):
    buildings, _, _ = suzhou
    x, y = random_points
    expected = brute_force_contains(buildings.geometry.array, buildings["building_id"], x, y)
    got = located["building_id"].astype(object).where(located["building_id"].notna(), None)
    assert (got.to_numpy() == expected).all()
    assert (located["status"] == "in_building").sum() == sum(e is not None for e in expected) > 5000


def test_grids_agree_with_brute_force(suzhou, random_points, located):
    _, grids, _ = suzhou
    x, y = random_points
    expected = brute_force_contains(grids.geometry.array, grids["grid_code"], x, y)
    inside = np.array([e is not None for e in expected])
    assert (located["grid_distance_m"].to_numpy()[inside] == 0).all()
    assert (located["grid_code"].astype(object).to_numpy()[inside] == expected[inside]).all()
    # Outside every grid: "outside", unless a footprint beyond the grids holds the point.
    assert located.loc[~inside, "status"].isin(["outside", "in_building"]).all()
    assert (located.loc[~inside, "status"] == "outside").mean() > 0.99
    assert (located.loc[~inside, "grid_distance_m"] > 0).all()


def test_community_and_worker_come_from_the_grid(suzhou, located):
    _, grids, _ = suzhou
    by_code = grids.set_index("grid_code")
    codes = located["grid_code"].astype(str)
    assert (
        located["community"].astype(str).to_numpy() == by_code.loc[codes, "community"].to_numpy()
    ).all()
    expected_worker = by_code.loc[codes, "worker"].fillna("-").to_numpy()
    assert (located["worker"].astype(object).fillna("-").to_numpy() == expected_worker).all()
    assert located["worker"].isna().any()  # some grids have no worker yet


def test_distances_and_nearest_grid_match_shapely(suzhou, random_points, located):
    buildings, grids, _ = suzhou
    x, y = random_points
    sample = np.random.default_rng(1).choice(x.size, 300, replace=False)
    points = shapely.points(x[sample], y[sample])
    building_geoms, grid_geoms = buildings.geometry.array, grids.geometry.array
    for k, point in zip(sample, points, strict=True):
        assert located["distance_m"].iat[k] == pytest.approx(
            shapely.distance(building_geoms, point).min(), abs=1e-6
        )
        d = shapely.distance(grid_geoms, point)
        assert located["grid_distance_m"].iat[k] == pytest.approx(d.min(), abs=1e-6)
        nearest = grids["grid_code"].to_numpy()[np.flatnonzero(d == d.min())]
        assert located["grid_code"].iat[k] == min(nearest)


def test_cell_path_equals_tree_path(suzhou, random_points):
    _, _, index = suzhou
    x, y = random_points
    for layer in (index.buildings, index.grids):
        fast = layer.lookup(x, y)  # 100,000 points: the cell table
        slow = layer.lookup_tree(x, y)
        assert layer.cells is not None
        assert np.array_equal(fast[0], slow[0])
        assert np.allclose(fast[1], slow[1], atol=1e-6)


def test_single_point_matches_batch(suzhou, random_points, located):
    _, _, index = suzhou
    x, y = random_points
    for k in range(0, 100_000, 4999):
        one = index.locate_point(x[k], y[k])
        row = located.iloc[k]
        assert one["status"] == row["status"]
        assert one["grid_code"] == row["grid_code"]
        assert (one["building_id"] is None) == pd.isna(row["building_id"])
        assert one["distance_m"] == pytest.approx(row["distance_m"], abs=1e-6)


def shared_vertices(grids: gpd.GeoDataFrame) -> np.ndarray:
    coords, owner = shapely.get_coordinates(grids.geometry.array, return_index=True)
    frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "owner": owner}).drop_duplicates()
    counts = frame.groupby(["x", "y"]).size()
    return np.array(counts[counts >= 2].index.tolist())


def test_boundary_rule_on_shared_vertices(suzhou):
    _, grids, index = suzhou
    vertices = shared_vertices(grids)
    assert len(vertices) > 1000
    x, y = vertices[:, 0], vertices[:, 1]
    touching = shapely.STRtree(grids.geometry.array).query(
        shapely.points(x, y), predicate="intersects"
    )
    codes = grids["grid_code"].to_numpy()
    expected = pd.Series(codes[touching[1]]).groupby(touching[0]).min()
    assert (pd.Series(touching[0]).value_counts() >= 2).all()
    # The batch (cell table once more than 20,000 points) and the single-point path agree.
    repeat = -(-25_000 // len(x))
    batch = index.locate(np.tile(x, repeat), np.tile(y, repeat))["grid_code"].astype(str).to_numpy()
    assert (batch.reshape(repeat, -1) == expected.to_numpy()).all()
    for k in range(0, len(x), 97):
        assert index.locate_point(x[k], y[k])["grid_code"] == expected.iat[k]
    assert (index.locate(x, y)["grid_distance_m"] == 0).all()


def test_boundary_rule_on_shared_edges():
    # Four square grids meeting at (100, 100): points exactly on edges, the corner, and inside.
    squares = [shapely.box(x, y, x + 100, y + 100) for y in (0, 100) for x in (0, 100)]
    grids = gpd.GeoDataFrame(
        {"grid_code": ["G-004", "G-002", "G-003", "G-001"], "community": "C", "worker": None},
        geometry=squares,
        crs=4549,
    )
    buildings = gpd.GeoDataFrame(
        {"building_id": ["b2", "b1"]},
        geometry=[shapely.box(40, 40, 60, 60), shapely.box(60, 40, 80, 60)],
        crs=4549,
    )
    index = GridIndex.build(buildings, grids)
    x = np.array([100, 50, 100, 150, 100, 25, 60, 0, 200, 100, -10, 100, 37])
    y = np.array([50, 100, 100, 100, 150, 25, 50, 0, 200, -10, 100, 210, -5])
    # Bottom-left G-004, bottom-right G-002, top-left G-003, top-right G-001: lowest code wins,
    # on shared edges and vertices and, outside, among grids at the same distance.
    expected = ["G-002", "G-003", "G-001", "G-001", "G-001", "G-004", "G-004", "G-004", "G-001"]
    expected += ["G-002", "G-003", "G-001", "G-004"]
    for n in (len(x), 30_000):  # the STRtree path, then the cell table
        reps = n // len(x) + 1
        got = index.locate(np.tile(x, reps), np.tile(y, reps)).iloc[: len(x)]
        assert got["grid_code"].astype(str).tolist() == expected
        assert (got["grid_distance_m"].iloc[:9] == 0).all()
        assert got["grid_distance_m"].iloc[9:].tolist() == [10, 10, 10, 5]
        assert (got["status"].iloc[9:] == "outside").all()
        assert got["building_id"].iloc[6] == "b1"  # on the shared footprint edge: lowest id
        assert got["status"].iloc[6] == "in_building"
    assert [index.locate_point(a, b)["grid_code"] for a, b in zip(x, y, strict=True)] == expected


def test_outside_points_get_the_nearest_grid(suzhou):
    _, grids, index = suzhou
    minx, miny, maxx, maxy = grids.total_bounds
    x = np.array([minx - 500, maxx + 30, (minx + maxx) / 2, minx - 5000])
    y = np.array([(miny + maxy) / 2, maxy + 30, miny - 200, miny - 5000])
    got = index.locate(x, y)
    assert (got["status"] == "outside").all()
    assert got["building_id"].isna().all()
    for k, point in enumerate(shapely.points(x, y)):
        d = shapely.distance(grids.geometry.array, point)
        assert got["grid_distance_m"].iat[k] == pytest.approx(d.min())
        assert got["grid_code"].iat[k] == grids["grid_code"].iat[int(np.argmin(d))]
    assert got["grid_distance_m"].iat[3] > 5000


def test_locate_lonlat_in_gcj02_and_bd09(suzhou):
    buildings, _, index = suzhou
    sample = buildings.iloc[::200]
    points = sample.representative_point().to_crs(4326)
    for crs in ("wgs84", "gcj02", "bd09"):
        lon, lat = from_wgs84(points.x.to_numpy(), points.y.to_numpy(), crs=crs)
        got = index.locate_lonlat(lon, lat, crs=crs)
        assert (got["status"] == "in_building").all()
        assert got["building_id"].astype(str).tolist() == sample["building_id"].tolist()
        assert (got["reason"] == "").all()
    # The same GCJ-02 numbers read as WGS84 land about 500 m away: a different building.
    wrong = index.locate_lonlat(lon, lat, crs="wgs84")
    assert (wrong["building_id"].astype(str) != sample["building_id"].to_numpy()).mean() > 0.9


def test_locate_lonlat_projected_input_and_invalid_rows(suzhou):
    buildings, _, index = suzhou
    points = buildings.representative_point().iloc[:3]
    x = [*points.x, "x", None]
    y = [*points.y, 3_466_000.0, 3_466_000.0]
    got = index.locate_lonlat(x, y, crs="EPSG:4549")
    assert got["building_id"].astype(str).tolist()[:3] == buildings["building_id"].tolist()[:3]
    assert got["status"].tolist()[3:] == ["invalid", "invalid"]
    assert got["reason"].tolist()[3:] == [NOT_A_NUMBER, MISSING]


def test_locate_point_and_locate_validate_input(suzhou):
    _, _, index = suzhou
    with pytest.raises(CoordinateError):
        index.locate_point(float("nan"), 3_466_000.0)
    with pytest.raises(CoordinateError):
        index.locate([1.0, 2.0], [1.0])


def test_locate_csv_keeps_every_row(suzhou, tmp_path):
    buildings, _, index = suzhou
    points = buildings.representative_point().iloc[:5].to_crs(4326)
    rows = [[f"r{k}", f"{p.x:.7f}", f"{p.y:.7f}", "note, with comma"] for k, p in enumerate(points)]
    rows += [
        ["missing", "", "31.32", "x"],
        ["text", "abc", "31.32", "x"],
        ["swapped", "31.32", "120.62", "x"],
        ["range", "190", "95", "x"],
        ["beijing", "116.40", "39.90", "x"],
    ]
    source = tmp_path / "points.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "lng", "lat", "note"])
        writer.writerows(rows)
    progress = []
    counts = locate_csv(
        index, source, tmp_path / "out.csv", lon_col="lng", chunksize=3, progress=progress.append
    )
    assert progress == [3, 6, 9, 10]
    assert counts["in_building"] == 5
    assert counts["invalid"] == 5
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert out["id"].tolist() == [r[0] for r in rows]
    assert out["lng"].tolist() == [r[1] for r in rows]  # text kept as written
    assert out["note"].iat[0] == "note, with comma"
    assert out["building_id"].tolist()[:5] == buildings["building_id"].tolist()[:5]
    assert out["reason"].tolist()[5:] == [MISSING, NOT_A_NUMBER, SWAPPED, OUT_OF_RANGE, FAR_AWAY]
    assert set(out["status"].iloc[5:]) == {"invalid"}


def test_locate_csv_missing_column(suzhou, tmp_path):
    source = tmp_path / "p.csv"
    source.write_text("x,y\n1,2\n", encoding="utf-8")
    with pytest.raises(InputError, match="no column"):
        locate_csv(suzhou[2], source, tmp_path / "o.csv")


def test_build_refuses_bad_input(suzhou):
    buildings, grids, _ = suzhou
    with pytest.raises(InputError, match="grid_code"):
        GridIndex.build(buildings, grids.drop(columns="grid_code"))
    with pytest.raises(CRSError, match="metric"):
        GridIndex.build(buildings.to_crs(4326), grids.to_crs(4326))
    with pytest.raises(CRSError):
        GridIndex.build(buildings, grids.to_crs(32651))
    with pytest.raises(InputError, match="unique"):
        GridIndex.build(pd.concat([buildings.head(2), buildings.head(1)]), grids)


@pytest.fixture(scope="module")
def shanghai(shared_data):
    frame = gpd.read_file(shared_data / "shanghai_bund_buildings.geojson")
    return frame.rename(columns={"id": "building_id"})


def test_find_by_address_full_width_and_spaces(shanghai):
    target = shanghai[
        (shanghai["addr_street"] == "中山东一路") & (shanghai["addr_housenumber"] == "20")
    ]
    assert len(target) == 1
    for text in ("中山东一路２０", " 中山 东一路 20 ", "中山東一路20号"):
        found = find_by_address(shanghai, text)
        assert found["building_id"].iat[0] == target["building_id"].iat[0], text
        assert list(found.columns) == ["building_id", "name", "address", "score"]
    ranked = find_by_address(shanghai, "中山东一路", limit=5)
    assert len(ranked) == 5
    assert ranked["address"].str.startswith("中山东一路").all()
    assert ranked["score"].is_monotonic_decreasing


def test_find_by_address_by_name(shanghai):
    found = find_by_address(shanghai, "上海 国际会议中心")
    assert found["name"].iat[0] == "上海国际会议中心"
    assert found["score"].iat[0] == pytest.approx(1.0)
    assert find_by_address(shanghai, "zzzz qqqq").empty
    with pytest.raises(InputError):
        find_by_address(shanghai, " 　 ")


def test_locate_lonlat_point(suzhou):
    buildings, _, index = suzhou
    point = buildings.representative_point().to_crs(4326).iloc[10]
    lon, lat = from_wgs84(point.x, point.y, crs="bd09")
    found = index.locate_lonlat_point(float(lon), float(lat), crs="bd09")
    assert found["building_id"] == buildings["building_id"].iat[10]
    assert found["status"] == "in_building"
    with pytest.raises(CoordinateError, match="swapped") as error:
        index.locate_lonlat_point(point.y, point.x)
    assert "经纬度疑似颠倒" in str(error.value)
    with pytest.raises(CoordinateError, match="far outside the district"):
        index.locate_lonlat_point(116.40, 39.90)  # Beijing
    with pytest.raises(CoordinateError, match="not a number"):
        index.locate_lonlat_point("120.6E", 31.3)


def test_address_hits_located_in_their_grid(shared_data):
    frame = gpd.read_file(shared_data / "shanghai_bund_buildings.geojson")
    points = frame.representative_point()
    frame = frame.to_crs(metric_crs_for(points.x, points.y)).rename(columns={"id": "building_id"})
    frame["building_id"] = frame["building_id"].astype(str)
    grids = voronoi_grids(frame)
    index = GridIndex.build(frame, grids)
    found = find_by_address(frame, "中山東一路２０号", limit=3)
    located = index.locate_buildings(found["building_id"])
    assert located["building_id"].astype(str).tolist() == found["building_id"].tolist()
    assert (located["status"] == "in_building").all()
    expected = gpd.sjoin(
        frame.set_index("building_id")
        .loc[found["building_id"]]
        .representative_point()
        .to_frame("geometry"),
        grids,
        predicate="within",
    )["grid_code"]
    assert located["grid_code"].astype(str).tolist() == expected.tolist()
    with pytest.raises(NotFound):
        index.locate_buildings(["no-such-building"])


def test_the_vectorised_formula_guard_of_locate_csv_is_csv_safe_on_every_start():
    import pyarrow as pa

    from geo.exchange.csvsafe import FORMULA_STARTS, csv_safe
    from geo.locate.engine import _csv_safe_text

    cells = [start + tail for start in FORMULA_STARTS for tail in ("x", "12", "1e5", "１２", "")]
    cells += ["ok", "", "-١٢", "=北泰", "北泰花园", "'=x", "+86 138", "-12.5", ".5"]
    assert _csv_safe_text(pa.array(cells)).to_pylist() == [csv_safe(c) for c in cells]


def test_an_address_search_over_no_buildings_finds_nothing_and_fails_not():
    from geo.locate.engine import find_by_address

    none = pd.DataFrame(
        {"building_id": [], "addr_street": [], "addr_housenumber": []}, dtype=object
    )
    assert find_by_address(none, "中山东一路20号").empty
