"""Commands run with a token (issue #18 §4): ``GRIDMAP_TOKEN`` bounds the CLI as the API is bounded.
A street's token reaches its street only and another street answers as a street the database does
not hold; a county's token reaches the county's streets with its role, and its rollups cover
them only; a command above the token's role is refused (exit 5); a county's planner may add a
street of the county, another county's may not (and nothing is added)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from api.cli import app
from geo.people.tokens import create_token
from geo.storage.postgis import registered_divisions
from geo.storage.store import open_store

A, B, NEW = "530102001", "530102002", "530102003"
COUNTY, OTHER_COUNTY = "530102", "530103"
runner = CliRunner()


def gridmap(token: str | None, *args: object):
    env = {"GRIDMAP_LANG": "en", "GRIDMAP_TOKEN": token or ""}
    return runner.invoke(app, [str(a) for a in args], env=env)


@pytest.fixture(scope="module")
def province(postgis_url, shared_data):
    import pgcluster

    url = pgcluster.fresh_database(postgis_url)
    source = shared_data / "kunming_buildings.geojson"
    for code in (A, B):
        for args in (("import", source, "--community-field", "community"), ("partition",)):
            done = gridmap(None, *args, "--db", url, "--division", code)
            assert done.exit_code == 0, done.output
    street_a = open_store(url, division=A)
    own = open_store(url)
    tokens = {
        "a viewer": create_token(street_a, "a viewer", "viewer"),
        "a planner": create_token(street_a, "a planner", "planner"),
        "county viewer": create_token(own, "county viewer", "viewer", division=COUNTY),
        "county planner": create_token(own, "county planner", "planner", division=COUNTY),
        "other planner": create_token(own, "other planner", "planner", division=OTHER_COUNTY),
    }
    return url, tokens


def test_a_streets_token_reaches_its_street_only(province):
    url, tokens = province
    assert gridmap(tokens["a viewer"], "plan", "list", "--db", url, "--division", A).exit_code == 0
    other = gridmap(tokens["a viewer"], "plan", "list", "--db", url, "--division", B)
    missing = gridmap(tokens["a viewer"], "plan", "list", "--db", url, "--division", "530102009")
    assert other.exit_code == missing.exit_code == 3
    assert other.output.replace(B, "X") == missing.output.replace("530102009", "X")
    assert "Traceback" not in other.output


def test_a_command_above_the_tokens_role_is_refused(province):
    url, tokens = province
    refused = gridmap(tokens["a viewer"], "partition", "--db", url, "--division", A)
    assert refused.exit_code == 5
    assert "needs planner" in refused.output
    revoking = gridmap(tokens["a planner"], "token", "list", "--db", url, "--division", A)
    assert revoking.exit_code == 5  # tokens are an admin's
    allowed = gridmap(tokens["a planner"], "plan", "copy", "1", "--db", url, "--division", A)
    assert allowed.exit_code == 0, allowed.output


def test_a_countys_token_reaches_its_streets_with_its_role(province):
    url, tokens = province
    for street in (A, B):
        shown = gridmap(tokens["county viewer"], "plan", "list", "--db", url, "--division", street)
        assert shown.exit_code == 0, shown.output
    assert (
        gridmap(tokens["county viewer"], "partition", "--db", url, "--division", B).exit_code == 5
    )
    away = gridmap(tokens["other planner"], "plan", "list", "--db", url, "--division", A)
    assert away.exit_code == 3


def test_rollups_cover_only_the_streets_the_token_reaches(province):
    url, tokens = province
    wide = gridmap(
        tokens["county viewer"],
        "incidents",
        "stats",
        "--by",
        "street",
        "--db",
        url,
        "--division",
        "53",
        "--format",
        "json",
    )
    assert wide.exit_code == 0, wide.output
    assert A in wide.stdout
    assert B in wide.stdout
    listed = gridmap(tokens["other planner"], "divisions", "list", "--db", url, "--division", "53")
    assert listed.exit_code == 0, listed.output
    assert A not in listed.stdout
    assert B not in listed.stdout
    apart = gridmap(tokens["other planner"], "divisions", "list", "--db", url, "--division", COUNTY)
    assert apart.exit_code == 3
    street = gridmap(tokens["a viewer"], "divisions", "list", "--db", url, "--division", COUNTY)
    assert street.exit_code == 3
    assert "rollups need" in street.output


def test_only_a_token_of_the_county_adds_a_street_to_it(province, shared_data):
    url, tokens = province
    source = shared_data / "kunming_buildings.geojson"
    add = ("import", source, "--community-field", "community", "--db", url, "--division", NEW)
    refused = gridmap(tokens["other planner"], *add)
    assert refused.exit_code == 3
    assert NEW not in set(registered_divisions(url)["code"])
    added = gridmap(tokens["county planner"], *add)
    assert added.exit_code == 0, added.output
    assert NEW in set(registered_divisions(url)["code"])
