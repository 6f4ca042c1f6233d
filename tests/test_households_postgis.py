"""一户一档 on PostGIS as on a GeoPackage (issue #20): Kunming copied into a throw-away PostGIS
database, 300 synthetic households imported into it, then found, visited, counted and purged.

The household tables are SQLAlchemy Core, so the same calls give the same answers: matches, the
review list, a staff find within the worker's grids only (and one audit row per household), the
occupancy counts on the map data and the ledger, and a purge everywhere.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from typer.testing import CliRunner

from api.cli import app
from geo.exchange.exports import grid_ledger
from geo.people import access, visits
from geo.people import households as hh
from geo.people.importing import import_households
from geo.people.privacy import Keyring
from geo.people.synthetic import synthetic_households
from geo.storage.store import audit_log, open_store
from geo.usecases.mapdata import read_map_data

SECRET = bytes(range(128, 160))


def test_households_import_find_visit_count_and_purge_on_postgis(staffed, postgis_url, tmp_path):
    import pgcluster

    server = pgcluster.fresh_database(postgis_url)
    copied = CliRunner().invoke(app, ["copy", str(staffed), server])
    assert copied.exit_code == 0, copied.output
    store, keys = open_store(server), Keyring(SECRET)
    rows = synthetic_households(store.read_layer("buildings"), households=300, seed=41)
    listing = tmp_path / "住户.csv"
    rows.drop(columns="_expected").to_csv(listing, index=False, encoding="gbk")
    outcome = import_households(store, listing, keys, actor="importer")
    expected = rows.drop_duplicates("户编号")["_expected"]
    assert outcome.added == int(expected.notna().sum())
    assert outcome.review == int(expected.isna().sum())
    assert import_households(store, listing, keys).unchanged == outcome.added  # idempotent

    person = rows[rows["_expected"].notna() & (rows["身份证号"] != "")].iloc[0]
    places = access.placement(store)
    owner = places.loc[person["_expected"], "worker_id"]
    other = next(w for w in places["worker_id"].dropna().unique() if w != owner)
    query = access.Query(id_number=person["身份证号"])
    mine = access.Viewer("staff", "owner", worker=owner)
    found = access.find(store, keys, mine, query, purpose="走访")
    assert [f["household_id"] for f in found] == [person["户编号"]]
    assert found[0]["residents"][0]["id_number"].startswith(person["身份证号"][:6])
    assert (
        access.find(store, keys, access.Viewer("staff", "x", worker=other), query, purpose="x")
        == []
    )
    with store.reading() as conn:
        reads = conn.execute(
            sa.select(sa.func.count())
            .select_from(audit_log)
            .where(audit_log.c.action == "personal read")
        ).scalar_one()
    assert reads == 1

    visits.assign(store, mine, [person["户编号"]], "干部甲")
    visits.record_visit(
        store, keys, mine, person["户编号"], cadre="干部甲", visited_on=dt.date.today()
    )
    assert person["户编号"] not in set(visits.due(store, mine)["household_id"])

    data = read_map_data(store, with_incidents=False)
    assert int(data.grids["residents"].sum()) == int(data.buildings["residents"].sum()) > 0
    assert int(grid_ledger(store)["近30天走访"].sum()) == 1

    removed = access.purge(store, access.Viewer("admin", "a"), person["户编号"], reason="迁出")
    assert removed["households"] == 1
    assert removed["household_visits"] == 1
    assert person["户编号"] not in set(store.read_table(hh.households)["household_id"])
    store.engine.dispose()
