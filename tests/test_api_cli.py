"""``gridmap token create|list|revoke`` on a real project file; the printed token works once created."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from api.auth import verify_token
from api.cli import app
from geo.errors import Unauthorized
from geo.storage.store import open_store, tokens


def test_token_life_cycle(api_db):
    runner = CliRunner()
    made = runner.invoke(
        app, ["token", "create", "--role", "planner", "--name", "王工", "--db", str(api_db)]
    )
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("gm_")
    store = open_store(api_db)
    assert verify_token(store, token).role == "planner"
    stored = store.read_table(tokens)
    assert token not in stored.to_string()  # only the hash is kept
    listed = runner.invoke(app, ["token", "list", "--db", str(api_db)])
    assert "王工" in listed.output
    assert runner.invoke(app, ["token", "revoke", "王工", "--db", str(api_db)]).exit_code == 0
    with pytest.raises(Unauthorized):
        verify_token(store, token)
    again = runner.invoke(app, ["token", "revoke", "王工", "--db", str(api_db)])
    assert again.exit_code == 3  # NotFound
    bad = runner.invoke(
        app, ["token", "create", "--role", "boss", "--name", "x", "--db", str(api_db)]
    )
    assert bad.exit_code == 2
    assert "boss" in bad.output
