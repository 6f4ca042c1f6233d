"""Schemathesis over the OpenAPI schema: generated requests to every operation, no 5xx.

Runs in-process through ASGI as an admin (so every route goes past its guard) on a Kunming
project; a few examples per operation keep it under a minute. A second run aims hostile payloads
at the parsers the schema cannot describe (times pandas cannot hold, lone surrogates, JSON nested
tens of thousands deep, unknown time zones, words as dates): none may answer 5xx.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from api_support import bearer
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from api.app import create_app
from api.settings import Settings


@pytest.fixture(scope="module")
def admin(api_tokens):
    return api_tokens["admin"]


@pytest.fixture(scope="module")
def app(api_db):
    return create_app(Settings(db=api_db, max_body_bytes=100_000, max_batch=200))


def test_no_server_errors(app, admin):
    # schemathesis' own pytest plugin needs pytest < 9 for lazily loaded schemas: drive its
    # strategies with hypothesis directly, one operation at a time
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=4,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            response = case.call(headers=bearer(admin))
            assert response.status_code < 500, (case.path, response.text[:300])
            if response.status_code >= 400:
                kind = response.headers.get("content-type", [""])[0]
                assert kind.startswith("application/problem+json"), (case.path, kind)

        try:
            check()
        except Exception as error:
            failures[f"{operation.method.upper()} {operation.path}"] = str(error)[:500]
    assert not failures, failures


# -- hostile payloads (issue #13 item 7): each of these once answered 500 -------------------------

#: times pandas cannot hold, words, impossible dates, and values at the edges of the range
HOSTILE_TIMES = [
    "9999-12-31T23:59:59+14:00",
    "0001-01-01",
    "2262-04-12",
    "1677-09-21",
    "12/31/9999",
    "9999年12月31日",
    "9999999999999",
    "2026-13-01",
    "yesterday",
    "1900-01-01",
    "2199-12-31T23:59:59-12:00",
]
#: any character, lone surrogates included (hypothesis leaves them out by default)
ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=30)
#: any character a URL can carry (UTF-8, percent-encoded): no lone surrogates
URL_TEXT = st.text(st.characters(codec="utf-8"), max_size=30)
TEXT_WITH_SURROGATE = st.builds(
    lambda a, s, b: a + s + b, ANY_TEXT, st.sampled_from(["\ud800", "\udfff", "\x00"]), ANY_TEXT
)


def _incident(draw) -> bytes:
    fields = {
        "source": draw(st.sampled_from(["12345", "fuzz"]) | TEXT_WITH_SURROGATE),
        "id": draw(st.integers() | ANY_TEXT | TEXT_WITH_SURROGATE),
        "reported_at": draw(st.sampled_from(HOSTILE_TIMES) | ANY_TEXT | st.none()),
        "description": draw(ANY_TEXT | TEXT_WITH_SURROGATE),
        "lon": draw(st.floats(allow_nan=False, allow_infinity=False) | st.just(102.7105)),
        "lat": draw(st.floats(allow_nan=False, allow_infinity=False) | st.just(25.0405)),
    }
    if draw(st.booleans()):
        fields[draw(TEXT_WITH_SURROGATE)] = 1
    return json.dumps(fields).encode()  # ensure_ascii: lone surrogates as \ud800 escapes


@st.composite
def hostile_requests(draw) -> tuple[str, str, dict, bytes]:
    """(method, path, query, body) of a request built to break a parser or a time conversion."""
    kind = draw(st.sampled_from(["post", "nested", "feed", "query"]))
    if kind == "post":
        return "POST", "/incidents", {}, _incident(draw)
    if kind == "nested":
        depth = draw(st.integers(1, 20_000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        body = (opener * depth + "1" + closer * depth).encode()
        return "POST", "/incidents/import", {"source": "deep", "id_col": "a"}, body
    if kind == "feed":
        query = {
            "source": "fuzz-feed",
            "id_col": "id",
            "lon_col": "lon",
            "lat_col": "lat",
            "time_col": "reported_at",
            "tz": draw(st.sampled_from(["Mars/Olympus", "Asia/Shanghai", "", "../etc"]) | URL_TEXT),
        }
        return "POST", "/incidents/import", query, b"[" + _incident(draw) + b"]"
    route = draw(st.sampled_from(["/incidents", "/stats/incidents", "/maps/district.html"]))
    bound = draw(st.sampled_from(["since", "until"]))
    return "GET", route, {bound: draw(st.sampled_from(HOSTILE_TIMES) | URL_TEXT)}, b""


def test_hostile_payloads_never_give_a_server_error(api_db, admin):
    app = create_app(Settings(db=api_db, max_body_bytes=100_000, max_batch=200))
    with TestClient(app, raise_server_exceptions=False, headers=bearer(admin)) as client:

        @given(request=hostile_requests())
        @settings(
            max_examples=150,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @example(request=("POST", "/incidents", {}, b'{"source":"12345","id":"J\\ud800"}'))
        def check(request):
            method, path, query, body = request
            kind = "application/json" if method == "POST" else None
            response = client.request(
                method,
                path,
                params=query,
                content=body or None,
                headers={"content-type": kind} if kind else {},
            )
            assert response.status_code < 500, (path, query, body[:200], response.text[:300])
            if response.status_code >= 400:
                assert response.headers["content-type"].startswith("application/problem+json")

        check()
