"""Access control on every route of the app: no token 401, a lower role 403, the role itself passes.

The routes are read from the app itself, so a route added later is checked too. A route's role
is the :class:`api.deps.RoleGuard` among its dependencies; routes guarded another way (the plan
editor's pages) are held to the same ladder: one lowest role, refused below it, allowed above.
Household records (一户一档) are the exception: they are read by scope, not rank, so a planner,
a viewer and a staff token bound to no worker never get one, while an admin does.
"""

from __future__ import annotations

import contextlib
import importlib
import re

import pytest
from api_support import bearer
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import ROLES
from api.deps import RoleGuard
from api.routers.households import household_viewer
from api.settings import Settings

OPEN_ROUTES = {"/health"}
#: the "role" of a route that answers with personal household records
PERSONAL = "personal records"


def _app(db):
    return create_app(Settings(db=db))


def _guards(dependant) -> list[RoleGuard]:
    found = [d.call for d in dependant.dependencies if isinstance(d.call, RoleGuard)]
    for sub in dependant.dependencies:
        found += _guards(sub)
    return found


def _calls(dependant) -> set:
    return {d.call for d in dependant.dependencies} | {
        call for sub in dependant.dependencies for call in _calls(sub)
    }


def _routes():
    # the routers' own route tables (the app wraps included routers in its own objects)
    from api.app import OPTIONAL_ROUTERS, ROUTERS

    routers = [module.router for module in ROUTERS]
    for name in OPTIONAL_ROUTERS:
        with contextlib.suppress(ModuleNotFoundError):
            routers.append(importlib.import_module(name).router)
    routes = []
    for router in routers:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                continue
            guards = _guards(route.dependant)
            role = guards[0].role if guards else None
            if household_viewer in _calls(route.dependant):
                role = PERSONAL
            for method in sorted(route.methods):
                routes.append(pytest.param(method, route.path, role, id=f"{method} {route.path}"))
    return routes


ROUTES = _routes()


@pytest.fixture(scope="module")
def client(api_db):
    with TestClient(_app(api_db)) as test_client:
        yield test_client


def _path(template: str) -> str:
    # ids that do not exist: the guard answers before the route looks anything up
    return re.sub(
        r"\{(\w+)(?::path)?\}", lambda m: "999999" if m.group(1).endswith("_id") else "x", template
    )


def _call(client, method, path, headers=None):
    return client.request(method, _path(path), headers=headers or {})


def test_every_route_is_listed():
    paths = {p.values[1] for p in ROUTES}
    assert {"/locate", "/incidents", "/ogc/collections/{collection_id}/items", "/tokens"} <= paths
    assert len(ROUTES) >= 30


@pytest.mark.parametrize(("method", "path", "role"), ROUTES)
def test_role_ladder(client, api_tokens, method, path, role):
    if path in OPEN_ROUTES:
        assert role is None
        assert _call(client, method, path).status_code == 200
        return
    anonymous = _call(client, method, path)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    answers = {r: _call(client, method, path, bearer(api_tokens[r])).status_code for r in ROLES}
    assert all(code < 500 for code in answers.values()), answers
    if role == PERSONAL:  # by scope: the test's staff token is bound to no worker
        assert answers["viewer"] == 403, answers
        assert not [r for r in ("staff", "planner") if 200 <= answers[r] < 300], answers
        assert answers["admin"] not in (401, 403), answers
        return
    allowed = [r for r in ROLES if answers[r] not in (401, 403)]
    assert allowed, f"no role may call {method} {path}: {answers}"
    lowest = ROLES.index(allowed[0])
    # one ladder: refused (403) below the lowest allowed role, allowed from it upwards
    assert all(answers[r] == 403 for r in ROLES[:lowest]), answers
    assert allowed == list(ROLES[lowest:]), answers
    if role is not None:
        assert allowed[0] == role


EXPECTED = {
    ("GET", "/grids"): "viewer",
    ("GET", "/ogc/collections"): "viewer",
    ("GET", "/maps/district.html"): "viewer",
    ("GET", "/locate"): "staff",
    ("POST", "/locate"): "staff",
    ("POST", "/incidents"): "staff",
    ("PATCH", "/incidents/{incident_id:path}"): "staff",
    ("GET", "/stats/incidents"): "staff",
    ("PUT", "/workers"): "admin",
    ("POST", "/workers/assign"): "admin",
    ("POST", "/tokens"): "admin",
    ("DELETE", "/tokens/{name}"): "admin",
}


def test_roles_are_the_ones_the_brief_names():
    declared = {(p.values[0], p.values[1]): p.values[2] for p in ROUTES}
    for key, role in EXPECTED.items():
        assert declared[key] == role, key
