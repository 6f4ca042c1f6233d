"""``gridmap locate`` on a real district: one point, a CSV batch, an address, bad coordinates."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from api.cli import app
from geo.crs import from_wgs84
from geo.plans import store as plans
from geo.storage.store import open_store
from geo.usecases.partition import partition_project

runner = CliRunner()


def gridmap(*args, lang: str = "en"):
    return runner.invoke(app, [str(a) for a in args], env={"GRIDMAP_LANG": lang})


def building_points(db, n: int = 5) -> tuple[pd.DataFrame, pd.Series]:
    store = open_store(db)
    buildings = store.read_layer("buildings").iloc[:n]
    return buildings, buildings.representative_point().to_crs(4326)


def test_one_point_prints_building_grid_community_and_worker(suzhou_project_base):
    buildings, points = building_points(suzhou_project_base)
    plan = plans.load_plan(open_store(suzhou_project_base))
    result = gridmap(
        "locate", f"{points.x.iloc[0]:.8f}", f"{points.y.iloc[0]:.8f}", "--db", suzhou_project_base
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["building_id"] == buildings["building_id"].iloc[0]
    assert answer["grid_code"] == plan.labels[buildings["building_id"].iloc[0]]
    assert answer["status"] == "in_building"
    assert answer["distance_m"] == 0
    assert set(answer) >= {"community", "worker", "distance_m"}


def test_gcj02_and_bd09_inputs_find_the_same_building(suzhou_project_base):
    buildings, points = building_points(suzhou_project_base)
    for crs in ("gcj02", "bd09"):
        lon, lat = from_wgs84(points.x.to_numpy()[:1], points.y.to_numpy()[:1], crs=crs)
        result = gridmap(
            "locate", f"{lon[0]:.8f}", f"{lat[0]:.8f}", "--crs", crs, "--db", suzhou_project_base
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["building_id"] == buildings["building_id"].iloc[0]


def test_impossible_coordinates_are_refused_with_the_reason(suzhou_project_base):
    _, points = building_points(suzhou_project_base)
    swapped = gridmap(
        "locate", f"{points.y.iloc[0]:.6f}", f"{points.x.iloc[0]:.6f}", "--db", suzhou_project_base
    )
    assert swapped.exit_code == 2
    assert "swapped" in swapped.output
    far = gridmap("locate", "116.39", "39.91", "--db", suzhou_project_base)  # Beijing
    assert far.exit_code == 2
    assert "far outside the district" in far.output
    out_of_range = gridmap("locate", "190", "31.3", "--db", suzhou_project_base)
    assert out_of_range.exit_code == 2
    assert "range" in out_of_range.output
    text = gridmap("locate", "east", "31.3", "--db", suzhou_project_base)
    assert text.exit_code == 2


def test_a_csv_batch_keeps_every_row_and_marks_the_bad_ones(suzhou_project_base, tmp_path):
    buildings, points = building_points(suzhou_project_base, n=200)
    frame = pd.DataFrame(
        {"case": range(200), "lon": points.x.to_numpy(), "lat": points.y.to_numpy()}
    )
    frame["lon"] = frame["lon"].astype(object)
    frame.loc[3, "lon"] = "not a number"
    frame.loc[4, ["lon", "lat"]] = [np.nan, np.nan]
    frame.loc[5, ["lon", "lat"]] = [frame.loc[5, "lat"], frame.loc[5, "lon"]]
    source, target = tmp_path / "points.csv", tmp_path / "located.csv"
    frame.to_csv(source, index=False)
    result = gridmap("locate", "--input", source, "--output", target, "--db", suzhou_project_base)
    assert result.exit_code == 0, result.output
    located = pd.read_csv(target, dtype={"building_id": str})
    assert len(located) == 200
    assert located["case"].tolist() == list(range(200))
    invalid = located[located["status"] == "invalid"]
    assert set(invalid["case"]) == {3, 4, 5}
    assert invalid["reason"].notna().all()
    good = located[located["status"] != "invalid"]
    assert (
        good["building_id"].to_numpy() == buildings["building_id"].to_numpy()[good["case"]]
    ).all()


def test_address_search_tolerates_full_width_and_spaces(tmp_path, shared_data):
    from geo.storage.store import open_store as open_
    from geo.usecases import district as project

    db = tmp_path / "bund.gpkg"
    store = open_(db, create=True)
    project.import_buildings(
        store,
        shared_data / "shanghai_bund_buildings.geojson",
        options=project.ReadOptions(community_field=None),
    )
    partition_project(store)
    named = store.read_layer("buildings")
    target = named[named["name"].notna()].iloc[0]
    wide = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in target["name"])
    result = gridmap("locate", "--address", f" {wide} ", "--db", db)
    assert result.exit_code == 0, result.output
    candidates = json.loads(result.stdout)
    assert candidates[0]["building_id"] == target["building_id"]
    assert candidates[0]["grid_code"]
