"""Access scoped to a division (issue #18 §4): one service serves a province's streets under
``/divisions/{code}/``; a street's tokens reach their street only, a county's viewer reads the
streets under it, a province's admin reads all. Every route of the app is walked with street A's
tokens against street B: each answer is the 404 of a street that does not exist, byte for byte,
so nothing of B is readable or writable and nothing says B exists.

Two streets of one county on a throw-away PostGIS, each imported, partitioned, staffed (workers
and phone numbers of their own) and given cases through the API.
"""

from __future__ import annotations

import re

import pytest
from api_support import bearer, cli_in_english, staffed_project
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_token
from api.settings import Settings
from geo.storage.store import adopt_division, open_store

COUNTY = "530102"
A, B = "530102001", "530102002"
#: a street code no street has: the 404 every hidden street must equal
MADE_UP = "530102999"
OTHER_COUNTY = "530103"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _street(url: str, code: str, source, tmp_path) -> None:
    """Import, partition and staff one street (its workers' names and phones carry its code)."""
    store = open_store(url, create=True, division=code)
    adopt_division(store, code)
    staffed_project(
        store,
        source,
        community_field="community",
        folder=tmp_path,
        tag=code,
        phone_head=f"13{code[-1]}",
    )


def _street_tokens(url: str, code: str, worker: str) -> dict[str, str]:
    store = open_store(url, division=code)
    made = {
        role: create_token(store, f"{code}-{role}", role)
        for role in ("viewer", "staff", "planner", "admin")
    }
    made["worker"] = create_token(store, f"{code}-worker", "staff", worker=worker)
    store.engine.dispose()
    return made


def _scoped_token(url: str, division: str, role: str, name: str) -> str:
    """A token above a street, made as an administrator would: ``gridmap token create``."""
    done = cli_in_english(
        "token", "create", "--db", url, "--division", division, "--role", role, "--name", name
    )
    assert done.exit_code == 0, done.output
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def province(postgis_url, shared_data, tmp_path_factory):
    import pgcluster

    url = pgcluster.fresh_database(postgis_url)
    tmp_path = tmp_path_factory.mktemp("division-scope")
    for code in (A, B):
        _street(url, code, shared_data / "kunming_buildings.geojson", tmp_path)
    tokens = {code: _street_tokens(url, code, f"W{code}000") for code in (A, B)}
    tokens["county"] = _scoped_token(url, COUNTY, "viewer", "county viewer")
    tokens["province"] = _scoped_token(url, "530000", "admin", "province admin")
    tokens["other county"] = _scoped_token(url, OTHER_COUNTY, "admin", "other county")
    return url, tokens


@pytest.fixture(scope="module")
def app(province):
    return create_app(Settings(db=province[0]))


@pytest.fixture(scope="module")
def client(app, province):
    url, tokens = province
    with TestClient(app) as test_client:
        for code in (A, B):  # a few cases in each street, through the street's own API
            cases = _cases(url, code)
            posted = test_client.post(
                f"/divisions/{code}/incidents",
                json={"source": f"src-{code}", "incidents": cases},
                headers=bearer(tokens[code]["staff"]),
            )
            assert posted.status_code == 200, posted.text
            assert posted.json()["added"] == len(cases)
        yield test_client


def _cases(url: str, code: str) -> list[dict]:
    store = open_store(url, division=code)
    points = store.read_layer("buildings").to_crs(4326).geometry.representative_point()
    store.engine.dispose()
    return [
        {
            "id": f"CASE-{code}-{i}",
            "category": "暴露垃圾",
            "reported_at": f"2026-01-0{5 + i}T09:30:00+08:00",
            "description": f"secret of street {code} #{i}",
            "lon": float(points.iloc[i * 7].x),
            "lat": float(points.iloc[i * 7].y),
        }
        for i in range(3)
    ]


@pytest.fixture(scope="module")
def b_ids(client, province):
    """Real ids of street B's resources, to put into every route's path."""
    _, tokens = province
    admin = bearer(tokens[B]["admin"])
    grid = client.get(f"/divisions/{B}/grids", headers=admin).json()
    grid_code = _first(grid, "grid_code")
    building = client.get(f"/divisions/{B}/buildings", headers=admin).json()
    incidents = client.get(f"/divisions/{B}/incidents", headers=admin).json()["items"]
    plans = client.get(f"/divisions/{B}/plans", headers=admin).json()
    community = client.get(f"/divisions/{B}/communities", headers=admin).json()[0]["community"]
    assert grid_code.startswith(B)
    return {
        "grid_code": grid_code,
        "building_id": str(_first(building, "building_id")),
        "incident_id": str(incidents[0]["incident_id"]),
        "plan_id": str(_first(plans, "plan_id")),
        "household_id": "1",
        "community": community,
        "collection_id": "grids",
        "feature_id": grid_code,
        "name": f"{B}-viewer",
        "z": "14",
        "x": "12867",
        "y": "7040",
    }


def _first(body, key: str):
    items = body["items"] if isinstance(body, dict) and "items" in body else body
    if isinstance(body, dict) and "features" in body:
        items = [f["properties"] | {"id": f.get("id")} for f in body["features"]]
    return items[0][key]


def _routes(app) -> list[tuple[str, str]]:
    """(method, path template) of every path of the app's OpenAPI and its pages outside it
    (docs, the schema, the vendored scripts), each with every method."""
    paths = set(app.openapi()["paths"]) | {"/docs", "/openapi.json", "/static/vendor/x.js"}
    paths.discard("/divisions")
    assert len(paths) > 40
    return [(method, path) for path in sorted(paths) for method in METHODS]


def _fill(template: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(?::path)?\}", lambda m: ids[m.group(1)], template)


def _secrets(ids: dict[str, str]) -> list[str]:
    """What of B an answer must never carry: its code, case ids, texts, workers, tokens."""
    return [B, "CASE-530102002", f"secret of street {B}", f"网格员{B}", f"W{B}", "1320000"]


def _same(one, other) -> bool:
    return (
        one.status_code == other.status_code
        and one.content == other.content
        and dict(one.headers) == dict(other.headers)
    )


# -- a street's tokens against another street --------------------------------------------------


def test_every_route_of_street_b_is_a_street_that_does_not_exist_to_street_a(
    app, client, province, b_ids
):
    _, tokens = province
    walked = 0
    for who in ("viewer", "staff", "planner", "admin", "worker"):
        headers = bearer(tokens[A][who])
        for method, template in _routes(app):
            path = _fill(template, b_ids)
            hidden = client.request(method, f"/divisions/{B}{path}", headers=headers, json={})
            made_up = client.request(
                method, f"/divisions/{MADE_UP}{path}", headers=headers, json={}
            )
            assert hidden.status_code == 404, (who, method, path, hidden.text)
            assert _same(hidden, made_up), (who, method, path)
            assert not [s for s in _secrets(b_ids) if s in hidden.text], (method, path)
            walked += 1
    assert walked >= 5 * 5 * 40  # tokens * methods * paths
    # the page token of a browser (?token=) and no token at all: the same 404
    page = client.get(f"/divisions/{B}/maps/district.html", params={"token": tokens[A]["admin"]})
    anonymous = client.get(f"/divisions/{B}/ogc/collections/grids/items")
    made_up = client.get(f"/divisions/{MADE_UP}/ogc/collections/grids/items")
    assert _same(page, made_up)
    assert _same(anonymous, made_up)


def test_nothing_of_street_b_was_written_by_street_a(client, province):
    _, tokens = province
    listed = client.get(f"/divisions/{B}/incidents", headers=bearer(tokens[B]["admin"])).json()
    assert sorted(i["source_id"] for i in listed["items"]) == [f"CASE-{B}-{i}" for i in range(3)]
    names = client.get(f"/divisions/{B}/tokens", headers=bearer(tokens[B]["admin"])).json()
    assert sorted(t["name"] for t in names) == sorted(
        f"{B}-{r}" for r in ("admin", "planner", "staff", "viewer", "worker")
    )


def test_a_street_reads_and_writes_its_own_street(client, province):
    _, tokens = province
    own = bearer(tokens[A]["staff"])
    items = client.get(f"/divisions/{A}/incidents", headers=own).json()["items"]
    assert sorted(i["source_id"] for i in items) == [f"CASE-{A}-{i}" for i in range(3)]
    grids = client.get(f"/divisions/{A}/ogc/collections/grids/items", headers=own).json()
    assert grids["features"]
    assert all(f["properties"]["grid_code"].startswith(A) for f in grids["features"])
    # the OGC links stay in the street: QGIS adds /divisions/{code}/ogc as a server
    landing = client.get(f"/divisions/{A}/ogc", headers=own).json()
    assert all(f"/divisions/{A}/" in link["href"] for link in landing["links"])
    located = client.get(
        f"/divisions/{A}/locate",
        params={"lon": 102.7105, "lat": 25.0405},
        headers=own,
    )
    assert located.status_code == 200, located.text
    assert [d["code"] for d in client.get("/divisions", headers=own).json()] == [A]


# -- tokens above a street ----------------------------------------------------------------------


def test_a_county_viewer_reads_its_streets_as_their_own_viewer_and_writes_nothing(
    app, client, province, b_ids
):
    _, tokens = province
    county = bearer(tokens["county"])
    own_viewer = bearer(tokens[B]["viewer"])
    read = 0
    for method, template in _routes(app):
        path = f"/divisions/{B}{_fill(template, b_ids)}"
        answer = client.request(method, path, headers=county, json=None if method == "GET" else {})
        if method != "GET":
            assert answer.status_code in (403, 405), (method, path, answer.text)
            continue
        expected = client.request(method, path, headers=own_viewer)
        assert answer.status_code == expected.status_code, (path, answer.text, expected.text)
        read += answer.status_code == 200
    assert read >= 20  # OGC, grids, buildings, communities, maps, plans ...
    for path in ("/ogc/collections/grids/items", "/grids", "/maps/district.html", "/health"):
        for code in (A, B):
            assert client.get(f"/divisions/{code}{path}", headers=county).status_code == 200
    listed = client.get("/divisions", headers=county).json()
    assert [d["code"] for d in listed] == [A, B]
    assert listed[1]["ogc"].endswith(f"/divisions/{B}/ogc")


def test_a_province_admin_reads_every_street(client, province):
    _, tokens = province
    admin = bearer(tokens["province"])
    for code in (A, B):
        items = client.get(f"/divisions/{code}/incidents", headers=admin).json()["items"]
        assert sorted(i["source_id"] for i in items) == [f"CASE-{code}-{i}" for i in range(3)]
        assert client.get(f"/divisions/{code}/tokens", headers=admin).status_code == 200
    assert [d["code"] for d in client.get("/divisions", headers=admin).json()] == [A, B]


def test_another_countys_token_sees_neither_street(app, client, province, b_ids):
    _, tokens = province
    other = bearer(tokens["other county"])
    for code in (A, B):
        for method, template in _routes(app)[::7]:
            path = _fill(template, b_ids)
            answer = client.request(method, f"/divisions/{code}{path}", headers=other, json={})
            made_up = client.request(method, f"/divisions/{MADE_UP}{path}", headers=other, json={})
            assert _same(answer, made_up), (method, path)
    assert client.get("/divisions", headers=other).json() == []


def test_scoped_and_street_tokens_are_not_the_databases_own_projects(client, province):
    _, tokens = province
    for token in (tokens["county"], tokens["province"], tokens[A]["admin"]):
        assert client.get("/grids", headers=bearer(token)).status_code == 401
    assert client.get("/divisions").status_code == 401
    assert client.get("/divisions", headers=bearer("gm_nobody")).status_code == 401


def test_a_revoked_county_token_stops_at_once(client, province):
    url, _ = province
    token = _scoped_token(url, COUNTY, "viewer", "short-lived")
    assert client.get(f"/divisions/{B}/grids", headers=bearer(token)).status_code == 200
    done = cli_in_english("token", "revoke", "short-lived", "--db", url, "--division", COUNTY)
    assert done.exit_code == 0, done.output
    gone = client.get(f"/divisions/{B}/grids", headers=bearer(token))
    made_up = client.get(f"/divisions/{MADE_UP}/grids", headers=bearer(token))
    assert _same(gone, made_up)


def test_token_commands_keep_a_county_token_in_the_databases_own_project(province, tmp_path):
    url, _ = province
    listed = cli_in_english("token", "list", "--db", url, "--division", COUNTY, "--json")
    assert listed.exit_code == 0, listed.output
    assert '"county viewer"' in listed.stdout
    assert f"{B}-viewer" not in listed.stdout
    bound = cli_in_english(
        "token",
        "create",
        "--db",
        url,
        "--division",
        COUNTY,
        "--role",
        "staff",
        "--name",
        "x",
        "--worker",
        f"W{A}000",
    )
    assert bound.exit_code == 2, bound.output
    gpkg = tmp_path / "one.gpkg"
    on_file = cli_in_english(
        "token", "create", "--db", gpkg, "--division", COUNTY, "--role", "viewer", "--name", "x"
    )
    assert on_file.exit_code == 2, on_file.output


def test_a_street_served_alone_takes_its_own_and_its_countys_tokens(province):
    url, tokens = province
    with TestClient(create_app(Settings(db=url, division=A))) as alone:
        for token in (tokens[A]["viewer"], tokens["county"], tokens["province"]):
            grids = alone.get("/grids", headers=bearer(token))
            assert grids.status_code == 200, grids.text
            assert _first(grids.json(), "grid_code").startswith(A)
        for token in (tokens[B]["admin"], tokens["other county"]):
            assert alone.get("/grids", headers=bearer(token)).status_code == 401
        assert (
            alone.get(f"/divisions/{A}/grids", headers=bearer(tokens[A]["viewer"])).status_code
            == 404
        )


def test_streets_beyond_the_cache_and_streets_added_later_are_served(province):
    url, tokens = province
    admin = bearer(tokens["province"])
    app = create_app(Settings(db=url, division_cache=1))
    app.state.divisions.REREAD_SECONDS = 0.0
    with TestClient(app) as small:
        # those outside a street never make the service open it
        for token in (tokens[A]["admin"], tokens["other county"]):
            assert small.get(f"/divisions/{B}/grids", headers=bearer(token)).status_code == 404
        assert app.state.divisions.open_state(B) is None
        for code in (A, B, A, B):  # each opens the street again; the one let go still answers
            answer = small.get(f"/divisions/{code}/grids", headers=admin)
            assert answer.status_code == 200, answer.text
        added = open_store(url, create=True, division="530102003")
        try:
            assert small.get("/divisions/530102003/health", headers=admin).status_code == 200
            listed = small.get("/divisions", headers=admin).json()
            assert [d["code"] for d in listed] == [A, B, "530102003"]
        finally:
            added.drop_division()


def test_pages_under_a_street_call_that_streets_api(client, province):
    _, tokens = province
    token = tokens[B]["planner"]
    street = f"/divisions/{B}"
    shown = client.get(f"{street}/docs", headers=bearer(token))
    assert shown.status_code == 200
    assert f"{street}/openapi.json" in shown.text
    schema = client.get(f"{street}/openapi.json", headers=bearer(token)).json()
    assert schema["servers"][0]["url"] == street
    plans = client.get(f"{street}/plans", headers=bearer(token)).json()
    plan = next(p["plan_id"] for p in plans if p["status"] == "published")
    page = client.get(f"{street}/plans/{plan}/edit", params={"token": token, "basemap": "none"})
    assert page.status_code == 200, page.text[:300]
    assert f'"api": "{street}"' in page.text or f'"api":"{street}"' in page.text
    alone = client.get(f"/plans/{plan}/edit", params={"token": tokens["province"]})
    assert alone.status_code == 401  # the database's own project does not take scoped tokens


def test_a_large_streets_map_fetches_its_footprints_from_its_own_street(province):
    url, tokens = province
    small = create_app(Settings(db=url, max_embedded_buildings=10))
    with TestClient(small) as client:
        page = client.get(
            f"/divisions/{B}/maps/district.html", params={"token": tokens[B]["viewer"]}
        )
    assert page.status_code == 200, page.text[:300]
    assert f"/divisions/{B}/maps/buildings.geojson" in page.text


def test_the_databases_administrator_makes_a_county_token_through_the_api(client, province):
    # issue #18 §4: county tokens were made by the CLI only
    url, tokens = province
    root = bearer(create_token(open_store(url), "root admin (api)", "admin"))
    made = client.post(
        "/tokens",
        json={"name": "县级只读 (api)", "role": "viewer", "division": COUNTY},
        headers=root,
    )
    assert made.status_code == 201, made.text
    county = bearer(made.json()["token"])
    for code in (A, B):
        assert client.get(f"/divisions/{code}/grids", headers=county).status_code == 200
    refused = client.post(f"/divisions/{B}/plans/1/copy", headers=county)  # a viewer writes nothing
    assert refused.status_code in (403, 404)
    listed = client.get("/tokens", headers=root).json()
    assert {"name": "县级只读 (api)", "division": COUNTY} in [
        {"name": row["name"], "division": row["division"]} for row in listed
    ]
    for body, where in (
        ({"name": "a street's", "role": "viewer", "division": A}, "/tokens"),  # a street's own
        ({"name": "not a code", "role": "viewer", "division": "53x"}, "/tokens"),
        (
            {"name": "under a street", "role": "viewer", "division": COUNTY},
            f"/divisions/{A}/tokens",
        ),
    ):
        headers = root if where == "/tokens" else bearer(tokens[A]["admin"])
        answer = client.post(where, json=body, headers=headers)
        assert answer.status_code == 422, (where, answer.text)
        assert "Traceback" not in answer.text
    bound = client.post(
        f"/divisions/{A}/tokens",
        json={"name": "A's worker (api)", "role": "staff", "worker": f"W{A}000"},
        headers=bearer(tokens[A]["admin"]),
    )
    assert bound.status_code == 201, bound.text
