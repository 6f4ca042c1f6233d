"""Map pages cost a bounded amount of rendering whatever ``since``/``until`` a client sends.

Every distinct ``since=`` was a new cache key, so a viewer could force a fresh render per
request and, with enough variants, push the locate index out of the service's cache. Maps now
show whole days (Beijing time) and keep a bounded number of variants.
"""

from __future__ import annotations

import pytest
from api_support import bearer
from fastapi.testclient import TestClient

from api.app import create_app
from api.routers.maps import MAP_PAGES
from api.settings import Settings

CASE = {
    "source": "12345",
    "id": "MAP-DAY-1",
    "reported_at": "2026-01-05T10:00:00+08:00",
    "lon": 102.7105,
    "lat": 25.0405,
}


@pytest.fixture(scope="module")
def client(api_db, api_tokens):
    app = create_app(Settings(db=api_db))
    with TestClient(app, headers=bearer(api_tokens["staff"])) as test_client:
        assert test_client.post("/incidents", json=CASE).status_code == 200
        yield test_client


def map_keys(client: TestClient) -> list[str]:
    return [key for key in client.app.state.project._cache if key.startswith("map:")]


def test_times_within_one_day_share_one_rendered_page(client):
    before = len(map_keys(client))
    pages = [
        client.get("/maps/district.html", params={"since": since}).text
        for since in ("2026-01-05T12:00", "2026-01-05T23:59:59+08:00", "2026-01-05T03:00Z")
    ]
    assert len(map_keys(client)) == before + 1
    assert pages[0] == pages[1] == pages[2]


def test_a_map_shows_the_whole_day_of_since_and_of_until(client):
    same_day = client.get("/maps/district.html", params={"since": "2026-01-05T18:00"}).text
    assert "MAP-DAY-1" in same_day
    ended_earlier = client.get("/maps/district.html", params={"until": "2026-01-05T09:00"}).text
    assert "MAP-DAY-1" in ended_earlier
    next_day = client.get("/maps/district.html", params={"since": "2026-01-06"}).text
    assert "MAP-DAY-1" not in next_day


def test_many_variants_keep_a_bounded_number_of_pages_and_the_locate_index(client):
    for day in range(1, MAP_PAGES + 6):
        page = client.get("/maps/district.html", params={"until": f"2025-03-{day:02d}"})
        assert page.status_code == 200
    assert len(map_keys(client)) <= MAP_PAGES
    assert "locator" in client.app.state.project._cache
    assert client.get("/locate", params={"lon": 102.7105, "lat": 25.0405}).status_code == 200
