"""A province's streets side by side (issue #18 §3): ``gridmap incidents stats --by street|county|
city`` rolls the streets of one PostGIS database up, ``gridmap map --division COUNTY`` draws each
street with its figures and opens into its grid map, ``gridmap divisions`` names and lists them.

Three streets in two counties of Kunming (530102: A and B, 530103: C): A the western half of
Kunming's 140 footprints, B the eastern half, C all of them; each partitioned, with a different set of cases, some registered, dispatched or rejected.
A street's row must be what that street's own ``gridmap incidents stats --division`` says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from geo.storage.store import open_store

runner = CliRunner()
A, B, C = "530102001", "530102002", "530103001"
#: cases per street: (how many, every how-many-th is registered)
CASES = {A: (12, 3), B: (7, 2), C: (5, 5)}
#: each street's buildings (filled by the fixture)
BUILDINGS: dict[str, int] = {}
COUNTS = ["reported", "registered", "closed", "closed_on_time", "overdue"]


def gridmap(*args):
    return runner.invoke(app, [str(a) for a in args], env={"GRIDMAP_LANG": "en"})


def _import_cases(url: str, street: str, tmp: Path) -> None:
    """``count`` cases at the street's buildings over two months; some move on in the loop."""
    count, step = CASES[street]
    store = open_store(url, division=street)
    points = store.read_layer("buildings").representative_point().to_crs(4326)
    store.engine.dispose()
    kinds = ["暴露垃圾", "占道经营", "井盖破损"]
    lines = ["id,lon,lat,type,time"] + [
        f"{street}-{i},{points.iloc[i * 5].x:.6f},{points.iloc[i * 5].y:.6f},"
        f"{kinds[i % 3]},2026-{8 + i % 2:02d}-{1 + i:02d} 09:00"
        for i in range(count)
    ]
    feed = tmp / f"{street}.csv"
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = gridmap(
        "incidents", "import", feed, "--db", url, "--division", street, "--json",
        "--id-col", "id", "--lon-col", "lon", "--lat-col", "lat", "--category-col", "type",
        "--time-col", "time",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    listed = json.loads(
        gridmap("incidents", "list", "--db", url, "--division", street, "--limit", "0").stdout
    )
    ids = sorted(case["incident_id"] for case in listed)
    for n, incident in enumerate(ids[::step]):
        steps = ["registered", "dispatched"][: 1 + n % 2] if n % 3 != 2 else ["rejected"]
        for status in steps:
            moved = gridmap(
                "incidents", "update", incident, "--status", status, "--db", url,
                "--division", street, "--author", "test",
            )  # fmt: skip
            assert moved.exit_code == 0, moved.output


def _halves(source: Path, tmp: Path) -> dict[str, Path]:
    """Each street's footprints: A the western half, B the eastern half, C all of them."""
    import geopandas as gpd

    buildings = gpd.read_file(source)
    x = buildings.geometry.representative_point().x
    west = x <= x.median()
    files = {A: tmp / "west.geojson", B: tmp / "east.geojson"}
    buildings.loc[west].to_file(files[A], driver="GeoJSON")
    buildings.loc[~west].to_file(files[B], driver="GeoJSON")
    BUILDINGS.update({A: int(west.sum()), B: int((~west).sum()), C: len(buildings)})
    return files | {C: source}


@pytest.fixture(scope="module")
def province(postgis_url, shared_data, tmp_path_factory):
    """One database holding streets A, B (county 530102) and C (county 530103)."""
    import pgcluster

    url = pgcluster.fresh_database(postgis_url)
    tmp = tmp_path_factory.mktemp("feeds")
    sources = _halves(shared_data / "kunming_buildings.geojson", tmp)
    for street in (A, B, C):
        for step in (
            ("import", sources[street], "--community-field", "community"),
            ("partition",),
        ):
            done = gridmap(*step, "--db", url, "--division", street)
            assert done.exit_code == 0, done.output
        _import_cases(url, street, tmp)
    return url


def _stats(url: str, *options: str) -> list[dict]:
    done = gridmap("incidents", "stats", "--db", url, *options, "--json")
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def test_stats_by_street_are_each_streets_own_stats(province):
    rows = {row["code"]: row for row in _stats(province, "--by", "street")}
    assert list(rows) == [A, B, C]
    for street, (count, _) in CASES.items():
        own = _stats(province, "--division", street)  # per grid, as the street sees itself
        row = rows[street]
        assert row["level"] == "street"
        assert row["streets"] == 1
        for column in COUNTS:
            assert row[column] == sum(grid[column] for grid in own), (street, column)
        assert row["reported"] == count
        assert row["registration_rate"] == pytest.approx(row["registered"] / row["reported"])
        assert row["buildings"] == BUILDINGS[street]
        assert row["grids"] == open_store(province, division=street).count("grids")
    # cases moved on: some registered, some rejected (neither open nor closed... rejected is final)
    assert rows[A]["registered"] > 0
    assert rows[A]["open"] < rows[A]["reported"]


def test_stats_by_county_and_city_sum_their_streets(province):
    streets = {row["code"]: row for row in _stats(province, "--by", "street")}
    counties = {row["code"]: row for row in _stats(province, "--by", "county")}
    assert list(counties) == ["530102", "530103"]
    county = counties["530102"]
    assert county["streets"] == 2
    assert county["level"] == "county"
    for column in [*COUNTS, "open", "buildings", "grids", "communities", "workers"]:
        assert county[column] == streets[A][column] + streets[B][column], column
        assert counties["530103"][column] == streets[C][column]
    assert county["closure_rate"] is None or county["closure_rate"] == pytest.approx(
        county["closed"] / county["registered"]
    )
    (city,) = _stats(province, "--by", "city")
    assert city["code"] == "5301"
    assert city["streets"] == 3
    assert city["reported"] == sum(CASES[s][0] for s in CASES)
    # --division keeps the streets under it
    only = _stats(province, "--by", "street", "--division", "530102")
    assert [row["code"] for row in only] == [A, B]
    table = gridmap("incidents", "stats", "--db", province, "--by", "county")
    assert table.exit_code == 0, table.output
    assert "530102" in table.stdout
    assert "530103" in table.stdout


def test_a_bad_by_or_division_gets_one_line_and_exit_2(province):
    bad = gridmap("incidents", "stats", "--db", province, "--by", "district")
    assert bad.exit_code == 2
    assert "--by must be grid, community, worker, street, county, city or province" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
    malformed = gridmap(
        "incidents", "stats", "--db", province, "--by", "county", "--division", "5x"
    )
    assert malformed.exit_code == 2
    assert len(malformed.output.strip().splitlines()) == 1
    none = gridmap("incidents", "stats", "--db", province, "--by", "street", "--division", "5302")
    assert none.exit_code == 3
    assert "no street under 5302" in none.output


def test_divisions_are_named_and_listed_with_their_counts(province):
    assert gridmap("divisions", "name", "530102", "五华区", "--db", province).exit_code == 0
    assert gridmap("divisions", "name", A, "华山街道", "--db", province).exit_code == 0
    listed = json.loads(gridmap("divisions", "list", "--db", province, "--json").stdout)
    by_code = {row["code"]: row for row in listed}
    assert list(by_code) == ["53", "5301", "530102", A, B, "530103", C]
    assert by_code["530102"] == {
        "code": "530102",
        "level": "county",
        "name": "五华区",
        "streets": 2,
        "buildings": BUILDINGS[A] + BUILDINGS[B],
        "grids": by_code[A]["grids"] + by_code[B]["grids"],
    }
    assert by_code[A]["name"] == "华山街道"
    assert by_code[A]["streets"] == 1
    assert by_code["53"]["streets"] == 3
    assert by_code["53"]["buildings"] == 140 * 2
    under = json.loads(
        gridmap("divisions", "list", "--db", province, "--division", "530103", "--json").stdout
    )
    assert [row["code"] for row in under] == ["53", "5301", "530103", C]
    # a rename replaces the name; the rollups carry it
    assert gridmap("divisions", "name", "530102", "五华", "--db", province).exit_code == 0
    (county,) = _stats(province, "--by", "county", "--division", "530102")
    assert county["name"] == "五华"
    bad = gridmap("divisions", "name", "5301x", "x", "--db", province)
    assert bad.exit_code == 2
    assert len(bad.output.strip().splitlines()) == 1


def test_shipped_names_name_suzhou_by_default():
    from geo.usecases.divisions import _shipped_names

    names = _shipped_names()
    assert names["32"] == "江苏省"
    assert names["3205"] == "苏州市"
    assert names["320581"] == "常熟市"
    assert len(names) == 11


def _county_map(province: str, folder: Path) -> tuple[Path, str]:
    out = folder / "county.html"
    done = gridmap("map", out, "--db", province, "--division", "530102", "--offline")
    assert done.exit_code == 0, done.output
    return out, out.read_text(encoding="utf-8")


def _popups(page: str) -> list[str]:
    """The HTML of each outline's popup (bound as a JSON string)."""
    return [json.loads(text) for text in re.findall(r'\.bindPopup\(("(?:[^"\\]|\\.)*")', page)]


def test_the_county_map_shows_its_streets_and_links_to_their_maps(province, tmp_path):
    _out, page = _county_map(province, tmp_path)
    streets = {row["code"]: row for row in _stats(province, "--by", "street")}
    for street in (A, B):
        link = f"county_files/{street}.html"
        assert f'href="{link}"' in page
        assert (tmp_path / link).is_file()
        own = (tmp_path / link).read_text(encoding="utf-8")
        assert street in own  # the street's grid map, with its grid codes
        # its figures in its popup: buildings and cases as the rollup counts them
        (popup,) = [html for html in _popups(page) if f"{street}</b>" in html]
        assert f'href="{link}"' in popup
        cells = dict(re.findall(r"<td>([^<]+)</td><td>([^<]+)</td>", popup))
        assert int(cells["建筑"]) == BUILDINGS[street]
        assert int(cells["事件"]) == streets[street]["reported"]
        assert int(cells["在办事件"]) == streets[street]["open"]
        assert int(cells["超期事件"]) == streets[street]["overdue"]
    assert C not in page  # another county's street


def test_the_county_map_opens_offline_at_desktop_and_phone_size(province, tmp_path):
    from browser import launch, open_page

    out, _ = _county_map(province, tmp_path)
    shots = {"county_desktop.png": (1280, 800), "county_phone.png": (390, 844)}
    with launch() as browser:
        for name, viewport in shots.items():
            with open_page(out, block_network=True, browser=browser, viewport=viewport) as opened:
                page = opened.page
                page.wait_for_selector("path.leaflet-interactive")
                assert page.locator("path.leaflet-interactive").count() == 2
                assert opened.errors == []
                assert opened.network_requests() == []
                page.locator(".gm-divisions a").first.wait_for()
                page.screenshot(path=str(Path("/tmp/team") / name))
                page.locator(".gm-division-label").first.click()
                page.locator(".leaflet-popup-content a").wait_for()
                href = page.locator(".leaflet-popup-content a").get_attribute("href")
                assert href in (f"county_files/{A}.html", f"county_files/{B}.html")
        with open_page(
            tmp_path / f"county_files/{A}.html", block_network=True, browser=browser
        ) as street:
            assert street.errors == []


def test_a_geopackage_is_one_street_rolled_up_as_itself(kunming_project, tmp_path):
    """A GeoPackage is one street: --by street gives it, a county or city its single row."""
    unnamed = gridmap("incidents", "stats", "--db", kunming_project, "--by", "county")
    assert unnamed.exit_code == 2
    assert "gridmap settings set division_code" in unnamed.output
    assert len(unnamed.output.strip().splitlines()) == 1
    done = gridmap("settings", "set", "division_code", A, "--db", kunming_project)
    assert done.exit_code == 0, done.output
    BUILDINGS.setdefault(A, 140)
    _import_cases(str(kunming_project), A, tmp_path)
    own = _stats(str(kunming_project))
    (street,) = _stats(str(kunming_project), "--by", "street")
    (county,) = _stats(str(kunming_project), "--by", "county")
    assert street["code"] == A
    assert county["code"] == "530102"
    assert county["streets"] == 1
    for column in COUNTS:
        assert street[column] == county[column] == sum(grid[column] for grid in own)
    elsewhere = gridmap(
        "incidents", "stats", "--db", kunming_project, "--by", "city", "--division", "3205"
    )
    assert elsewhere.exit_code == 3
    # its own street's name is its district_name; other divisions are named in a database
    assert gridmap("divisions", "name", A, "华山街道", "--db", kunming_project).exit_code == 0
    refused = gridmap("divisions", "name", "530102", "五华区", "--db", kunming_project)
    assert refused.exit_code == 2
    listed = json.loads(gridmap("divisions", "list", "--db", kunming_project, "--json").stdout)
    assert [row["code"] for row in listed] == ["53", "5301", "530102", A]
    assert listed[-1]["name"] == "华山街道"
    assert listed[-1]["buildings"] == 140
    out = tmp_path / "county.html"
    drawn = gridmap("map", out, "--db", kunming_project, "--division", "530102", "--offline")
    assert drawn.exit_code == 0, drawn.output
    assert (tmp_path / "county_files" / f"{A}.html").is_file()
    (popup,) = _popups(out.read_text(encoding="utf-8"))
    assert f"华山街道 {A}</b>" in popup


def test_a_street_without_a_map_or_with_a_hostile_name_is_drawn_as_text():
    """maps/divisions.py alone: no link where a street has no published plan; names are text."""
    import geopandas as gpd
    from shapely.geometry import box

    from maps.divisions import division_map
    from maps.render import render_html

    hostile = '<script>alert(1)</script>"街道'
    frame = gpd.GeoDataFrame(
        {"name": [hostile, "乙"], "reported": [3, 0], "open": [2, 0]},
        index=[A, B],
        geometry=[box(102.70, 25.06, 102.71, 25.07), None],
        crs=4326,
    )
    m = division_map(frame, figures=["reported", "open"], links={A: None, B: "x/b.html"})
    page = render_html(m, offline=True)
    assert "<script>alert(1)" not in page
    (popup,) = _popups(page)  # B has no outline: listed beside the map only
    assert "href" not in popup
    assert "尚无已发布的网格方案" in popup
    assert "&lt;script&gt;" in popup
    assert 'href="x/b.html"' in page
