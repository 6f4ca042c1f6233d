"""Placing households on buildings: by building id, by address, by coordinate, in that order.

The first way that names exactly one building wins, and the household records which way it was
(``building_id``, ``address``, ``coordinate``). A household no way places gets the reason of the
last way tried, so the review list says what to fix (a wrong id, an address that names no
building or two, a coordinate between buildings).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from geo.people import addresses
from geo.storage.store import Store


def place_households(store: Store, first_rows: pd.DataFrame, *, crs: str = "wgs84") -> pd.DataFrame:
    """The building of every household (one row each: its first row in the list).

    Parameters
    ----------
    store
        The project file (its buildings, and the published plan for coordinates).
    first_rows
        ``building_id``, ``community``, ``building_no``, ``lon``, ``lat`` as text.
    crs
        The coordinates' CRS (``wgs84``, ``gcj02``, ``bd09``, an EPSG code).

    Returns
    -------
    DataFrame
        ``building_id`` (None where unplaced), ``matched_by``, ``reason`` (``""`` when placed),
        on ``first_rows``' index.
    """
    layer = store.read_layer("buildings")
    wanted = [c for c in ("building_id", "community", "name", "address") if c in layer.columns]
    buildings = pd.DataFrame(layer[wanted])
    result = pd.DataFrame(
        {"building_id": None, "matched_by": "", "reason": "no building id, address or coordinate"},
        index=first_rows.index,
    )
    _by_id(result, first_rows, set(buildings["building_id"].astype(str)))
    _by_address(result, first_rows, addresses.building_keys(buildings))
    _by_coordinate(store, result, first_rows, crs)
    return result


def _open(result: pd.DataFrame) -> pd.Series:
    return result["building_id"].isna()


def _by_id(result: pd.DataFrame, rows: pd.DataFrame, known: set[str]) -> None:
    given = rows["building_id"] != ""
    found = given & rows["building_id"].isin(known)
    result.loc[found, "building_id"] = rows.loc[found, "building_id"]
    result.loc[found, "matched_by"] = "building_id"
    missing = given & ~found
    result.loc[missing, "reason"] = (
        "building id not in the project: " + rows.loc[missing, "building_id"]
    )


def _by_address(result: pd.DataFrame, rows: pd.DataFrame, keys: dict[str, str]) -> None:
    todo = _open(result) & (rows["building_no"] != "")
    if not todo.any():
        return
    wanted = pd.Series(
        [
            addresses.building_key(c, b)
            for c, b in zip(rows.loc[todo, "community"], rows.loc[todo, "building_no"], strict=True)
        ],
        index=rows.index[todo],
    )
    found = wanted.map(keys)
    hit = found.notna()
    result.loc[hit[hit].index, "building_id"] = found[hit]
    result.loc[hit[hit].index, "matched_by"] = "address"
    miss = hit[~hit].index
    result.loc[miss, "reason"] = (
        "address names no single building: "
        + rows.loc[miss, "community"]
        + " "
        + rows.loc[miss, "building_no"]
    )


def _by_coordinate(store: Store, result: pd.DataFrame, rows: pd.DataFrame, crs: str) -> None:
    from geo.locate import kept

    todo = _open(result) & (rows["lon"] != "") & (rows["lat"] != "")
    if not todo.any():
        return
    index = kept.grid_index(store)
    lon = pd.to_numeric(rows.loc[todo, "lon"], errors="coerce").to_numpy(dtype="float64")
    lat = pd.to_numeric(rows.loc[todo, "lat"], errors="coerce").to_numpy(dtype="float64")
    located = index.locate_lonlat(lon, lat, crs=crs)
    building = located["building_id"].astype(object).to_numpy()
    inside = np.array([b is not None and not pd.isna(b) for b in building])
    target = rows.index[todo]
    result.loc[target[inside], "building_id"] = building[inside]
    result.loc[target[inside], "matched_by"] = "coordinate"
    reasons = np.where(
        located["status"].astype(str).to_numpy() == "invalid",
        "coordinate invalid: " + located["reason"].astype(str).to_numpy(),
        "coordinate in no building",
    )
    result.loc[target[~inside], "reason"] = reasons[~inside]
