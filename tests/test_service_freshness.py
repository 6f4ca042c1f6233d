"""What a server worker reads again after another process commits (issue #16).

Every batch of posted cases is a commit, and every uvicorn worker looks again at the project
after any commit. It must read only what its next request depends on: a locate the published
plan's parts (not the cases), a token check the tokens (not the grids). Still, a revoke, a
publish and a new worker of a grid show at once. Kunming, staffed; two service states on one
file, as two worker processes hold them; what the reader asks the database is recorded from
its engine.
"""

from __future__ import annotations

import pytest
from api_support import bearer
from fastapi.testclient import TestClient
from sqlalchemy import event

from api.app import create_app
from api.auth import create_token, revoke_token
from api.settings import Settings
from api.state import ProjectState
from geo.errors import Unauthorized
from geo.storage.store import open_store


@pytest.fixture
def reader(api_db):
    """A second worker's state on the project, with the statements it runs recorded."""
    state = ProjectState(Settings(db=str(api_db)))
    statements: list[str] = []
    event.listen(
        state.store.engine,
        "before_cursor_execute",
        lambda _conn, _cursor, statement, *_: statements.append(statement),
    )
    yield state, statements
    state.close()


def _post_a_case(db, token: str, incident_id: str) -> None:
    """One case at a building of the district, through the API of another state."""
    point = open_store(db).read_layer("buildings").head(1).representative_point().to_crs(4326)
    case = {"source": "freshness", "id": incident_id, "category": "暴露垃圾"}
    with TestClient(create_app(Settings(db=str(db))), headers=bearer(token)) as client:
        answer = client.post(
            "/incidents", json={**case, "lon": point.x.iloc[0], "lat": point.y.iloc[0]}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["added"] == 1


def test_after_a_posted_case_a_locate_reads_the_plan_and_never_the_cases(api_db, reader):
    state, statements = reader
    token = create_token(open_store(api_db), "freshness-staff", "staff")
    state.locator()
    state.principal(token)
    _post_a_case(api_db, token, "F-1")
    statements.clear()
    locator = state.locator()
    assert locator.index is not None
    assert statements, "the commit was not seen"
    read = " ".join(statements)
    assert "incident_events" not in read
    assert "incidents" not in read
    assert "tokens" not in read
    assert "plans" in read
    assert "grids" in read
    statements.clear()
    assert state.principal(token).role == "staff"
    assert "grids" not in " ".join(statements)  # the tokens' part, not the plan's
    assert all("FROM tokens" not in s or "hash" not in s for s in statements)  # still cached


def test_a_revoke_still_stops_a_token_with_the_next_request(api_db, reader):
    state, _ = reader
    token = create_token(open_store(api_db), "freshness-revoked", "staff")
    assert state.principal(token).name == "freshness-revoked"
    _post_a_case(api_db, token, "F-2")
    assert state.principal(token).name == "freshness-revoked"  # a case changes no token
    revoke_token(open_store(api_db), "freshness-revoked")
    with pytest.raises(Unauthorized):
        state.principal(token)


def test_the_case_events_part_moves_with_a_posted_case(api_db, reader):
    state, _ = reader
    token = create_token(open_store(api_db), "freshness-cases", "staff")
    before = state.fingerprint()
    _post_a_case(api_db, token, "F-3")
    after = state.fingerprint()
    assert after["incidents"] != before["incidents"]
    assert {k: v for k, v in after.items() if k != "incidents"} == {
        k: v for k, v in before.items() if k != "incidents"
    }
