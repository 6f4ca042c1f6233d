"""以房管人 in the OGC collections and the JSON routes (issue #20): Kunming, synthetic households.

Checked against counts made here from the generated list: before any record a building and a grid
carry the bare imported ``households``; after an import ``/ogc/collections/buildings/items`` and
``/ogc/collections/grids/items`` (and ``/buildings``, ``/grids``) carry the records' households,
residents, rented units and floating residents, as :mod:`geo.people.occupancy` counts them; a purge
and a re-import change what is served at once (the cache follows the household revision) while
the layer the locate index shares stays bare; no generated name, ID number or phone is anywhere
in the answers.
"""

from __future__ import annotations

import pandas as pd
import pytest
from api_support import bearer
from fastapi.testclient import TestClient
from test_households_maps import _expected_per_building

from api.app import create_app
from api.auth import create_token
from api.settings import Settings
from geo.people import occupancy
from geo.people.counts import COLUMNS
from geo.people.importing import import_households
from geo.people.privacy import Keyring
from geo.people.synthetic import synthetic_households
from geo.storage.store import open_store

SECRET = bytes(range(160, 192))
#: the household tables' personal and per-record columns, none of which a collection may carry
PERSONAL_KEYS = {
    "household_id",
    "resident_id",
    "head_name",
    "id_number",
    "id_hash",
    "phone",
    "phone_hash",
    "unit",
    "room",
    "relation",
    "tags",
    "fingerprint",
}


@pytest.fixture(scope="module")
def service(api_db):
    """A client of the Kunming project (published, staffed), its store and viewer/admin tokens."""
    store = open_store(api_db)
    tokens = {
        "viewer": create_token(store, "ogc-hh-viewer", "viewer"),
        "staff": create_token(store, "ogc-hh-staff", "staff"),
        "admin": create_token(store, "ogc-hh-admin", "admin"),
    }
    with TestClient(create_app(Settings(db=api_db))) as client:
        yield client, store, tokens
    store.engine.dispose()


def _import(store, rows: pd.DataFrame, folder) -> None:
    listing = folder / "住户.csv"
    rows.drop(columns="_expected").to_csv(listing, index=False, encoding="utf-8-sig")
    import_households(store, listing, Keyring(SECRET), actor="importer")


def _items(client, token: str, collection: str) -> tuple[dict[str, dict], str]:
    answer = client.get(
        f"/ogc/collections/{collection}/items", params={"limit": 10_000}, headers=bearer(token)
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["numberReturned"] == body["numberMatched"]
    return {f["id"]: f["properties"] for f in body["features"]}, answer.text


def _personal(rows: pd.DataFrame) -> set[str]:
    values = pd.concat([rows["姓名"], rows["身份证号"], rows["联系电话"]])
    return {v for v in values.astype(str) if v and v != "nan"}


@pytest.fixture(scope="module")
def before(service):
    """What the collections serve before any household record."""
    client, _, tokens = service
    buildings, _ = _items(client, tokens["viewer"], "buildings")
    grids, _ = _items(client, tokens["viewer"], "grids")
    return buildings, grids


@pytest.fixture(scope="module")
def imported(service, before, tmp_path_factory):
    """300 synthetic households imported while the service runs."""
    _, store, _ = service
    rows = synthetic_households(store.read_layer("buildings"), households=300, seed=47)
    _import(store, rows, tmp_path_factory.mktemp("hh-ogc"))
    return rows


def test_without_records_the_bare_count_is_served(service, before):
    _, store, _ = service
    buildings, grids = before
    bare = store.read_layer("buildings").set_index("building_id")["households"]
    assert {k: p["households"] for k, p in buildings.items()} == {
        k: None if pd.isna(v) else int(v) for k, v in bare.items()
    }
    assert not {"residents", "floating_share"} & set(next(iter(buildings.values())))
    assert not {"residents", "floating_share"} & set(next(iter(grids.values())))


def test_buildings_and_grids_carry_the_records_counts(service, before, imported):
    client, store, tokens = service
    buildings, text = _items(client, tokens["viewer"], "buildings")
    expected = _expected_per_building(imported)
    figures = occupancy.building_occupancy(store)
    assert sorted(figures.index) == sorted(expected.index)
    for building in expected.index[:5].tolist() + expected.index[-5:].tolist():
        for column in expected.columns:
            assert buildings[building][column] == expected.loc[building, column]
            assert buildings[building][column] == figures.loc[building, column]
    for building in set(buildings) - set(expected.index):
        assert buildings[building]["households"] == before[0][building]["households"]
        assert buildings[building]["residents"] is None
    grids, grid_text = _items(client, tokens["viewer"], "grids")
    ledger = occupancy.grid_occupancy(store)
    covered = [code for code, p in grids.items() if p["residents"] is not None]
    assert covered
    assert set(covered) == set(ledger.index[ledger["households"] > 0])
    per_grid = pd.DataFrame(buildings.values()).groupby("grid_code")["households"].sum()
    for code in covered:
        for column in ("residents", "rented_units", "floating_residents", "floating_share"):
            assert grids[code][column] == pytest.approx(ledger.loc[code, column])
        assert grids[code]["households"] == per_grid[code]
    assert not [v for v in _personal(imported) if v in text or v in grid_text]


def test_the_json_routes_serve_the_same_counts(service, imported):
    client, _, tokens = service
    expected = _expected_per_building(imported)
    building = expected.index[0]
    one = client.get(f"/buildings/{building}", headers=bearer(tokens["viewer"])).json()
    assert one["households"] == expected.loc[building, "households"]
    assert one["residents"] == expected.loc[building, "residents"]
    ogc, _ = _items(client, tokens["viewer"], "grids")
    listed = client.get("/grids", params={"limit": 10_000}, headers=bearer(tokens["staff"]))
    assert listed.status_code == 200
    for column in ("households", "residents", "floating_residents", "visits_30d"):
        assert {g["grid_code"]: g[column] for g in listed.json()["items"]} == {
            code: p[column] for code, p in ogc.items()
        }, column
    detail = client.get(f"/grids/{one['grid_code']}", headers=bearer(tokens["staff"]))
    members = {b["building_id"]: b["households"] for b in detail.json()["buildings"]}
    assert members[building] == one["households"]
    text = listed.text + detail.text
    assert not [v for v in _personal(imported) if v in text]


def test_no_personal_field_for_any_role(service, imported):
    client, _, tokens = service
    allowed_extra = set(COLUMNS)
    for role in ("viewer", "staff", "admin"):
        for collection in ("buildings", "grids"):
            found, text = _items(client, tokens[role], collection)
            assert not [v for v in _personal(imported) if v in text]
            keys = set().union(*(set(p) for p in found.values()))
            assert not keys & PERSONAL_KEYS
            assert allowed_extra & keys


def test_a_purge_and_a_reimport_change_what_is_served(service, imported, tmp_path):
    client, store, tokens = service
    layer = client.app.state.project.layer("buildings")
    expected = _expected_per_building(imported)
    building = expected["residents"].idxmax()
    homes = imported[imported["_expected"] == building].drop_duplicates("户编号")["户编号"]
    target = homes.iloc[0]
    size = int((imported.loc[imported["户编号"] == target, "姓名"] != "").sum())
    shown, _ = _items(client, tokens["viewer"], "buildings")
    gone = client.delete(
        f"/households/{target}", params={"reason": "迁出"}, headers=bearer(tokens["admin"])
    )
    assert gone.status_code == 200, gone.text
    after, _ = _items(client, tokens["viewer"], "buildings")
    assert after[building]["households"] == shown[building]["households"] - 1
    assert after[building]["residents"] == shown[building]["residents"] - size
    again = synthetic_households(store.read_layer("buildings"), households=300, seed=48)
    _import(store, again, tmp_path)
    reimported, text = _items(client, tokens["viewer"], "buildings")
    figures = occupancy.building_occupancy(store)
    for key, row in figures.iterrows():
        assert reimported[key]["households"] == row["households"]
        assert reimported[key]["residents"] == row["residents"]
    assert reimported != after
    grids, grid_text = _items(client, tokens["viewer"], "grids")
    ledger = occupancy.grid_occupancy(store)
    for code in ledger.index[ledger["households"] > 0]:
        assert grids[code]["residents"] == ledger.loc[code, "residents"]
    assert not [v for v in _personal(again) | _personal(imported) if v in text + grid_text]
    # the frame the locate index and the other routers share never took the household join
    assert client.app.state.project.layer("buildings") is layer
    assert "residents" not in layer.columns
