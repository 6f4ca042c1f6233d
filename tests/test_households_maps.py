"""以房管人 where the maps and the ledger show it (issue #20): Kunming with 300 synthetic households.

Checked against counts made here from the generated list: a building with records shows the
records' households, residents, rented units and floating residents in place of its bare count
(others keep theirs); a grid's households are its buildings' sum; the grid ledger gains the
occupancy columns only where households exist; the district map's data block carries the
occupancy layer, and in chromium the layer draws every grid and a grid's popup shows the counts.
"""

from __future__ import annotations

import pandas as pd
import pytest
from browser import open_page
from typer.testing import CliRunner

from geo.exchange.exports import OCCUPANCY_HEADERS, grid_ledger
from geo.people import households as hh
from geo.people import occupancy
from geo.people.importing import import_households
from geo.people.privacy import Keyring
from geo.people.synthetic import synthetic_households
from geo.storage.store import open_store
from geo.usecases.mapdata import read_map_data

SECRET = bytes(range(96, 128))


@pytest.fixture(scope="module")
def project(api_db, tmp_path_factory):
    """Kunming (published, staffed) before and after 300 households are imported."""
    store = open_store(api_db)
    plain_ledger = grid_ledger(store)
    rows = synthetic_households(store.read_layer("buildings"), households=300, seed=31)
    listing = tmp_path_factory.mktemp("hh-maps") / "住户.csv"
    rows.drop(columns="_expected").to_csv(listing, index=False, encoding="utf-8-sig")
    import_households(store, listing, Keyring(SECRET), actor="importer")
    return store, rows, plain_ledger, api_db


def _expected_per_building(rows: pd.DataFrame) -> pd.DataFrame:
    """Counted by hand from the generated list (one row per resident, empty names: vacant)."""
    homes = rows.dropna(subset=["_expected"])
    sizes = homes.groupby("户编号")["姓名"].apply(lambda names: int((names != "").sum()))
    first = homes.drop_duplicates("户编号").set_index("户编号")
    first["size"] = sizes
    first["floating"] = first["size"].where(first["户类型"] == "流动", 0)
    grouped = first.groupby("_expected")
    return pd.DataFrame(
        {
            "households": grouped.size(),
            "residents": grouped["size"].sum(),
            "rented_units": grouped["户类型"].agg(lambda s: int((s == "出租").sum())),
            "floating_residents": grouped["floating"].sum(),
        }
    )


def test_buildings_show_their_records_in_place_of_the_bare_count(project):
    store, rows, _, _ = project
    data = read_map_data(store, with_incidents=False)
    shown = data.buildings.set_index("building_id")
    expected = _expected_per_building(rows)
    for column in expected.columns:
        assert shown.loc[expected.index, column].astype(int).tolist() == expected[column].tolist()
    bare = store.read_layer("buildings").set_index("building_id")["households"]
    others = shown.index.difference(expected.index)
    assert shown.loc[others, "households"].astype("Int64").equals(bare.loc[others].astype("Int64"))
    assert shown.loc[others, "residents"].isna().all()
    grids = data.grids.set_index("grid_code")
    summed = shown.groupby("grid_code")["households"].sum()
    covered = grids.index[grids["residents"].notna()]
    assert len(covered) > 0
    assert grids.loc[covered, "households"].astype(int).equals(summed.loc[covered].astype(int))
    assert int(grids["residents"].sum()) == int(expected["residents"].sum())


def test_the_ledger_gains_the_occupancy_columns_where_households_exist(project):
    store, rows, plain_ledger, _ = project
    assert not set(OCCUPANCY_HEADERS.values()) & set(plain_ledger.columns)
    ledger = grid_ledger(store)
    assert set(OCCUPANCY_HEADERS.values()) <= set(ledger.columns)
    expected = _expected_per_building(rows)
    assert int(ledger["居住人口"].sum()) == int(expected["residents"].sum())
    assert int(ledger["流动人口"].sum()) == int(expected["floating_residents"].sum())
    assert int(ledger["出租户"].sum()) == int(expected["rented_units"].sum())
    grid = occupancy.grid_occupancy(store)
    assert int(grid["households"].sum()) == len(store.read_table(hh.households))
    without = ledger["居住人口"].isna()
    unchanged = plain_ledger.set_index("网格编码").loc[ledger.loc[without, "网格编码"], "户数"]
    assert ledger.loc[without, "户数"].tolist() == unchanged.tolist()


@pytest.mark.browser
def test_the_occupancy_layer_draws_and_its_popup_shows_counts_only(project, tmp_path):
    from api.cli import app

    _, rows, _, db = project
    page_file = tmp_path / "map.html"
    result = CliRunner().invoke(
        app, ["map", str(page_file), "--db", str(db), "--offline", "--basemap", "none"]
    )
    assert result.exit_code == 0, result.output
    view = "Object.values(window.gridmap.maps)[0]"
    with open_page(page_file, block_network=True) as opened:
        page = opened.page
        page.wait_for_function("window.__gridmapReady === true")
        names = page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
        assert "以房管人：流动人口占比" in [n.strip() for n in names]
        page.evaluate(f"{view}.map.addLayer({view}.groups.occupancy)")
        stats = page.evaluate("window.__gridmapStats")
        grids = page.evaluate(f"{view}.data.grids.code.length")
        assert stats["occupancy"] == grids
        text = page.evaluate(
            f"""() => {{ const v = {view}, d = v.data.grids;
                const i = d.residents.findIndex(r => r !== null && r > 0);
                return v.gridPopup(i).textContent; }}"""
        )
        assert "居住人口" in text
        assert "流动人口占比" in text
        assert "户籍" in text or "常住" in text or "流动" in text
        assert not opened.errors
    html = page_file.read_text(encoding="utf-8")
    ids = {i for i in rows["身份证号"] if i}
    assert not [i for i in ids if i in html]
