"""``gridmap token create|list|revoke`` on a real project file; the printed token works once created."""

from __future__ import annotations

import pytest
from api_support import project_copy
from typer.testing import CliRunner

from api.auth import verify_token
from api.cli import app
from geo.errors import Unauthorized
from geo.store import open_store, tokens


@pytest.fixture(scope="module")
def db(tmp_path_factory, shared_data):
    return project_copy(
        tmp_path_factory,
        shared_data / "kunming_buildings.geojson",
        name="kunming",
        community_field="community",
    )


def test_token_life_cycle(db):
    runner = CliRunner()
    made = runner.invoke(
        app, ["token", "create", "--role", "planner", "--name", "王工", "--db", str(db)]
    )
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("gm_")
    store = open_store(db)
    assert verify_token(store, token).role == "planner"
    stored = store.read_table(tokens)
    assert token not in stored.to_string()  # only the hash is kept
    listed = runner.invoke(app, ["token", "list", "--db", str(db)])
    assert "王工" in listed.output
    assert runner.invoke(app, ["token", "revoke", "王工", "--db", str(db)]).exit_code == 0
    with pytest.raises(Unauthorized):
        verify_token(store, token)
    again = runner.invoke(app, ["token", "revoke", "王工", "--db", str(db)])
    assert again.exit_code == 3  # NotFound
    bad = runner.invoke(app, ["token", "create", "--role", "boss", "--name", "x", "--db", str(db)])
    assert bad.exit_code == 2
    assert "boss" in bad.output
