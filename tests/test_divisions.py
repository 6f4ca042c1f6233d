"""Many streets in one PostGIS database (issue #18 §3): each street (9-digit code) is a schema
of its own with every table and layer, registered in ``gridmap_divisions``; ``--division`` picks
it on every command that takes ``--db``. Streets never see each other's rows, their writers do not
queue behind each other, and a GeoPackage (one street) refuses another street's code."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from test_copy_project import assert_same_project
from typer.testing import CliRunner

from api.cli import app
from geo.divisions import covers, parse_division, rollup_code
from geo.errors import InputError, NotFound
from geo.storage.postgis import registered_divisions
from geo.storage.store import open_store

runner = CliRunner()
A, B = "530102001", "530102002"


def gridmap(*args):
    return runner.invoke(app, [str(a) for a in args], env={"GRIDMAP_LANG": "en"})


@pytest.fixture(scope="module")
def province(postgis_url, shared_data):
    """One database: Kunming in street A (partitioned), Kunming again in street B (not
    partitioned) and the Suzhou-free public project untouched."""
    import pgcluster

    url = pgcluster.fresh_database(postgis_url)
    source = shared_data / "kunming_buildings.geojson"
    for street in (A, B):
        done = gridmap(
            "import", source, "--community-field", "community", "--db", url, "--division", street
        )
        assert done.exit_code == 0, done.output
    done = gridmap("partition", "--db", url, "--division", A)
    assert done.exit_code == 0, done.output
    return url


def test_division_codes_read_at_every_level_and_cover_by_prefix():
    assert [
        parse_division(c).level
        for c in ("32", "320000", "320500", "320581", "320581104", "320581104001")
    ] == ["province", "province", "city", "county", "street", "community"]
    assert parse_division("320581104").ancestors == ["32", "3205", "320581"]
    assert covers("3205", "320581104")
    assert not covers("320582", "320581104")
    assert covers(None, "320581104")
    assert rollup_code("320581104", "county") == "320581"
    assert parse_division("３２０５８１１０４").code == "320581104"  # full-width, as typed
    for bad in ("3205811", "990581104", "32058110x", "", "٣٢٠٥٨١١٠٤", "{{ 7*7 }}", "</script>"):
        with pytest.raises(InputError):
            parse_division(bad)


def test_each_street_is_its_own_schema_with_its_own_rows(province):
    listed = registered_divisions(province)
    assert listed["code"].tolist() == [A, B]
    assert listed["schema_name"].tolist() == [f"street_{A}", f"street_{B}"]
    a, b = open_store(province, division=A), open_store(province, division=B)
    assert a.count("buildings") == b.count("buildings") == 140
    assert a.count("grids") > 0
    assert not b.has_layer("grids")
    # the database's own (public) project holds nothing of either street
    assert not open_store(province).has_layer("buildings")
    codes = a.read_layer("grids", columns=["grid_code"])["grid_code"]
    assert codes.str.startswith(A).all()
    assert a.get_setting("division_code") == A
    assert b.get_setting("division_code") == B
    assert registered_divisions(province, under="530102002")["code"].tolist() == [B]


def test_a_partition_in_one_street_leaves_the_other_as_it_was(province):
    before = open_store(province, division=A).read_layer("grids")
    done = gridmap("partition", "--db", province, "--division", B, "--json")
    assert done.exit_code == 0, done.output
    after = open_store(province, division=A).read_layer("grids")
    assert before.geometry.geom_equals_exact(after.geometry, 0).all()
    b_codes = open_store(province, division=B).read_layer("grids")["grid_code"]
    assert b_codes.str.startswith(B).all()


def test_a_street_not_in_the_database_or_not_a_street_gets_one_line(province):
    missing = gridmap("plan", "list", "--db", province, "--division", "530102009")
    assert missing.exit_code == 3
    assert "holds no street 530102009" in missing.output
    assert "Traceback" not in missing.output
    county = gridmap("plan", "list", "--db", province, "--division", "530102")
    assert county.exit_code == 2
    assert "is a county" in county.output
    with pytest.raises(NotFound):
        open_store(province, division="530102009")
    # a read never adds the street it asked for
    assert registered_divisions(province)["code"].tolist() == [A, B]


def test_writers_of_two_streets_do_not_queue_behind_each_other(province):
    a, a_again, b = (open_store(province, division=d) for d in (A, A, B))
    with a.transaction():
        with b.transaction(wait=False) as conn:  # another street: free at once
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
        with (
            pytest.raises(sa.exc.OperationalError, match="locked"),
            a_again.transaction(wait=False),
        ):
            pass


def test_a_street_moves_from_a_geopackage_into_postgis_and_back(staffed, postgis_url, tmp_path):
    import pgcluster

    url = pgcluster.fresh_database(postgis_url)
    street = "320581104"
    assert gridmap("settings", "set", "division_code", street, "--db", staffed).exit_code == 0
    source = open_store(staffed)
    there = gridmap("copy", staffed, url, "--division", street, "--json")
    assert there.exit_code == 0, there.output
    assert_same_project(source, open_store(url, division=street))
    assert not open_store(url).has_layer("buildings")  # nothing in the public schema
    back = tmp_path / "back.gpkg"
    home = gridmap("copy", url, back, "--division", street)
    assert home.exit_code == 0, home.output
    assert_same_project(source, open_store(back))


def test_a_project_of_another_street_is_refused_before_anything_is_written(
    staffed, postgis_url, tmp_path
):
    import pgcluster

    url = pgcluster.fresh_database(postgis_url)
    assert gridmap("settings", "set", "division_code", "320581104", "--db", staffed).exit_code == 0
    other = "320581199"
    refused = gridmap("copy", staffed, url, "--division", other)
    assert refused.exit_code == 2
    assert f"not {other}" in refused.output
    assert registered_divisions(url).empty
    # a GeoPackage is one street: another street's code is refused on any command
    wrong = gridmap("plan", "list", "--db", staffed, "--division", other)
    assert wrong.exit_code == 2
    assert open_store(staffed).get_setting("division_code") == "320581104"


def test_a_failed_first_import_leaves_no_street_behind(province, tmp_path):
    broken = tmp_path / "broken.geojson"
    broken.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")
    failed = gridmap("import", broken, "--db", province, "--division", "530102003")
    assert failed.exit_code == 2, failed.output
    assert registered_divisions(province)["code"].tolist() == [A, B]


def test_a_streets_division_code_cannot_be_changed_to_another(province):
    changed = gridmap(
        "settings", "set", "division_code", "530102009", "--db", province, "--division", A
    )
    assert changed.exit_code == 2
    assert f"stays {A}" in changed.output
    assert open_store(province, division=A).get_setting("division_code") == A
    same = gridmap("settings", "set", "division_code", A, "--db", province, "--division", A)
    assert same.exit_code == 0, same.output


def test_streets_added_at_once_by_many_processes_all_land(postgis_url):
    # province workers add their streets at the same moment into a fresh database: the registry
    # itself is made once, and every street is added once
    from concurrent.futures import ThreadPoolExecutor

    import pgcluster

    url = pgcluster.fresh_database(postgis_url)
    codes = [f"53010200{i}" for i in range(1, 9)]

    def add(code: str) -> str:
        store = open_store(url, division=code, create=True)
        store.engine.dispose()
        return code

    with ThreadPoolExecutor(len(codes)) as pool:
        assert sorted(pool.map(add, codes)) == codes
    assert registered_divisions(url)["code"].tolist() == codes
