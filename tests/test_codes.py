"""Grid codes on real grids: unique, well formed, numbered W->E N->S, stable across re-runs and edits."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st

from geo.errors import InputError
from geo.grids import boundaries, codes

DIVISION = "320508004"  # a street of Gusu district (320508), Suzhou


def hilbert_groups(buildings: gpd.GeoDataFrame) -> pd.Series:
    """Stand-in partition: runs of 4-5 consecutive buildings along the Hilbert curve per community."""
    labels = pd.Series(index=buildings.index, dtype=object)
    for name, part in buildings.groupby("community"):
        order = part.geometry.hilbert_distance().sort_values(kind="stable").index.to_numpy()
        for number, chunk in enumerate(np.array_split(order, max(1, round(len(order) / 4.5)))):
            labels[chunk] = f"{name}/{number:03d}"
    return labels


def members_of(labels: pd.Series, ids: pd.Series) -> dict:
    return {key: frozenset(ids[group.index]) for key, group in labels.groupby(labels)}


@pytest.fixture(scope="module")
def kunming(shared_data):
    buildings = gpd.read_file(shared_data / "kunming_buildings.geojson")
    buildings = buildings.to_crs(buildings.estimate_utm_crs())
    buildings["building_id"] = buildings["id"].astype(str)
    return buildings, boundaries.building_cells(buildings)


@pytest.fixture(scope="module")
def suzhou_grids(shared_data):
    """Suzhou cut into 500 m squares as communities; cells with the squares as limits."""
    buildings = gpd.read_file(shared_data / "suzhou_gusu_buildings.geojson").to_crs(4549)
    buildings["building_id"] = "osm" + buildings["osm_index"].astype(str)
    xy = shapely.get_coordinates(buildings.representative_point().values)
    buildings["community"] = [f"街坊{int(x // 500)}-{int(y // 500)}" for x, y in xy]
    cells = boundaries.building_cells(buildings)
    labels = hilbert_groups(buildings)
    grids = boundaries.grid_polygons(cells, labels, community=buildings["community"])
    return buildings, cells, labels, grids


def plan(grids, labels, ids, **options):
    members = members_of(labels, ids)
    numbers = codes.community_numbers(sorted(grids["community"].unique()))
    return (
        codes.assign_grid_codes(
            grids, members, division_code=DIVISION, community_numbers=numbers, **options
        ),
        members,
        numbers,
    )


def test_suzhou_codes_are_unique_and_well_formed(suzhou_grids):
    buildings, _, labels, grids = suzhou_grids
    result, _, numbers = plan(grids, labels, buildings["building_id"])
    assert result.index.equals(grids.index)
    assert result.is_unique
    assert result.str.fullmatch(r"\d{15}").all()
    assert result.map(codes.is_valid_grid_code).all()
    parsed = pd.DataFrame([codes.parse_grid_code(c) for c in result], index=result.index)
    assert (parsed["division_code"] == DIVISION).all()
    assert (parsed["community_number"] == grids["community"].map(numbers)).all()
    # numbers run 1..n inside every community
    for _, numbers_here in parsed.groupby(grids["community"])["grid_number"]:
        assert sorted(numbers_here) == list(range(1, len(numbers_here) + 1))


def test_grids_are_numbered_north_to_south_then_west_to_east(suzhou_grids):
    buildings, _, labels, grids = suzhou_grids
    result, _, _ = plan(grids, labels, buildings["building_id"])
    number = result.str[12:].astype(int)
    for _, frame in grids.groupby("community"):
        if len(frame) < 3:
            continue
        xy = shapely.get_coordinates(frame.geometry.centroid.values)
        height = np.median(frame.geometry.bounds["maxy"] - frame.geometry.bounds["miny"])
        row = np.floor((xy[:, 1].max() - xy[:, 1]) / height)
        ordered = pd.DataFrame(
            {"row": row, "x": xy[:, 0], "n": number[frame.index].to_numpy()}
        ).sort_values("n")
        # rows never go back north, and inside a row x only grows
        assert ordered["row"].is_monotonic_increasing
        for _, in_row in ordered.groupby("row"):
            assert in_row["x"].is_monotonic_increasing


def test_codes_are_stable_across_a_rerun(suzhou_grids):
    buildings, _, labels, grids = suzhou_grids
    first, members, _ = plan(grids, labels, buildings["building_id"])
    previous = {members[k]: c for k, c in first.items()}
    # a re-partition that produced the same groups under other keys
    renamed = labels.map(lambda key: f"run2:{key}")
    grids2 = grids.rename(index=lambda key: f"run2:{key}")
    second, _, _ = plan(
        grids2, renamed, buildings["building_id"], previous=previous, used=set(first)
    )
    assert (second.to_numpy() == first.to_numpy()).all()


@pytest.mark.parametrize("match", ["exact", "majority"])
def test_an_edit_renumbers_only_the_two_grids_it_touches(kunming, match):
    buildings, cells = kunming
    ids = buildings["building_id"]
    labels = hilbert_groups(buildings)
    grids = boundaries.grid_polygons(cells, labels, community=buildings["community"])
    first, members, numbers = plan(grids, labels, ids)
    previous = {members[k]: c for k, c in first.items()}
    used = set(first)
    # move one building between two grids of the biggest compound
    name = buildings["community"].value_counts().index[0]
    a, b = grids.index[grids["community"] == name][:2]
    moved = labels.index[labels == a][0]
    edited = labels.copy()
    edited[moved] = b
    grids2 = boundaries.update_grid_polygons(
        grids, cells, edited, {a, b}, community=buildings["community"]
    )
    second = codes.assign_grid_codes(
        grids2,
        members_of(edited, ids),
        division_code=DIVISION,
        community_numbers=numbers,
        previous=previous,
        used=used,
        match=match,
    )
    assert second.is_unique
    unchanged = grids.index.difference([a, b])
    assert (second[unchanged] == first[unchanged]).all()
    if match == "exact":
        # a grid whose buildings changed is a new grid: new numbers, never issued before
        assert not {second[a], second[b]} & used
        top = max(int(c[12:]) for c in used if c.startswith(second[a][:12]))
        assert sorted(int(second[k][12:]) for k in (a, b)) == [top + 1, top + 2]
    else:
        # both still hold most of their buildings: they keep their codes
        assert second[a] == first[a]
        assert second[b] == first[b]


def test_a_retired_code_is_never_issued_again(kunming):
    buildings, cells = kunming
    ids = buildings["building_id"]
    labels = hilbert_groups(buildings)
    grids = boundaries.grid_polygons(cells, labels, community=buildings["community"])
    first, members, _ = plan(grids, labels, ids)
    # plan 2 merges two grids; plan 3 splits them again the old way
    name = buildings["community"].value_counts().index[0]
    a, b = grids.index[grids["community"] == name][:2]
    merged = labels.replace({b: a})
    grids2 = boundaries.grid_polygons(cells, merged, community=buildings["community"])
    second, members2, _ = plan(
        grids2, merged, ids, previous={members[k]: c for k, c in first.items()}, used=set(first)
    )
    history = set(first) | set(second)
    third, _, _ = plan(
        grids, labels, ids, previous={members2[k]: c for k, c in second.items()}, used=history
    )
    assert not {third[a], third[b]} & history
    assert (third.drop([a, b]) == first.drop([a, b])).all()


def test_community_numbers_keep_their_numbers():
    first = codes.community_numbers(["东园", "西园", "南园"])
    assert first == {"东园": 1, "西园": 2, "南园": 3}
    second = codes.community_numbers(["北园", "南园", "东园"], previous=first)
    assert (second["东园"], second["南园"], second["北园"]) == (1, 3, 4)


def test_community_numbers_in_reading_order(kunming):
    buildings, cells = kunming
    outlines = boundaries.community_outlines(buildings, cells)
    numbers = codes.community_numbers(outlines)
    rank = codes.reading_order(outlines.geometry)
    assert [numbers[n] for n in outlines["community"]] == list(rank + 1)


def test_more_than_999_grids_in_a_community_is_refused():
    boxes = [shapely.box(i, 0, i + 1, 1) for i in range(1000)]
    grids = gpd.GeoDataFrame(
        {"community": "大社区"}, geometry=boxes, index=[f"g{i}" for i in range(1000)]
    )
    members = {key: frozenset({key}) for key in grids.index}
    with pytest.raises(InputError, match="more than 999"):
        codes.assign_grid_codes(
            grids, members, division_code=DIVISION, community_numbers={"大社区": 1}
        )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("32058110", "9 digits"),
        ("32058110A", "9 digits"),
        ("990581104", "province"),
        ("320581000", "000"),
    ],
)
def test_bad_division_codes(text, message):
    with pytest.raises(InputError, match=message):
        codes.validate_division_code(text)


@pytest.mark.parametrize(
    "bad", ["32058110400101", "3205811040010011", "320581104000001", "320581104001000", "abc"]
)
def test_malformed_grid_codes(bad):
    assert not codes.is_valid_grid_code(bad)
    with pytest.raises(InputError):
        codes.parse_grid_code(bad)


@given(
    st.sampled_from(sorted(codes.PROVINCES)),
    st.integers(0, 9999),
    st.integers(1, 999),
    st.integers(1, 999),
    st.integers(1, 999),
)
def test_codes_round_trip(province, county, street, community, grid):
    code = f"{province}{county:04d}{street:03d}{community:03d}{grid:03d}"
    parsed = codes.parse_grid_code(code)
    rebuilt = (
        f"{parsed['division_code']}{parsed['community_number']:03d}{parsed['grid_number']:03d}"
    )
    assert rebuilt == code
    assert codes.is_valid_grid_code(code)
