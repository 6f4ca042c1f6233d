"""The service's own assets, through FastAPI's TestClient: no page links a CDN.

The browser test (test_service_offline_browser.py) shows the pages work with the internet cut
off; these check the links and the asset answers themselves, quickly.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from api.static import ASSETS_URL
from maps.offline import VENDOR_DIR

REMOTE_LINK = re.compile(r"<(?:script|link)\b[^>]*(?:src|href)=\"https?://", re.IGNORECASE)


@pytest.fixture(scope="module")
def client(api_db):
    with TestClient(create_app(Settings(db=api_db))) as test_client:
        yield test_client


def test_the_docs_page_loads_swagger_ui_from_the_service(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert f'src="{ASSETS_URL}/swagger-ui-dist/swagger-ui-bundle.js"' in page.text
    assert REMOTE_LINK.search(page.text) is None
    assert '"validatorUrl": null' in page.text  # no badge image from validator.swagger.io
    script = client.get(f"{ASSETS_URL}/swagger-ui-dist/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert script.content == (VENDOR_DIR / "swagger-ui-dist" / "swagger-ui-bundle.js").read_bytes()


def test_vendored_files_are_served_without_a_token_and_revalidated_by_etag(client):
    answer = client.get(f"{ASSETS_URL}/leaflet/dist/leaflet.js")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-cache"
    again = client.get(
        f"{ASSETS_URL}/leaflet/dist/leaflet.js", headers={"If-None-Match": answer.headers["etag"]}
    )
    assert again.status_code == 304


def test_the_cdn_docs_pages_of_fastapi_are_not_served(client):
    assert client.get("/redoc").status_code == 404


def test_a_served_map_links_leaflet_and_its_plugins_from_the_service(client, api_tokens):
    page = client.get(f"/maps/district.html?token={api_tokens['viewer']}")
    assert page.status_code == 200
    assert f'src="{ASSETS_URL}/leaflet/dist/leaflet.js"' in page.text
    assert "cdn.jsdelivr.net" not in page.text
    assert REMOTE_LINK.search(page.text) is None
    linked = set(re.findall(rf"(?:src|href)=\"({ASSETS_URL}/[^\"]+)\"", page.text))
    assert len(linked) >= 4  # Leaflet's script and style, and the plugins' (fullscreen, locate ...)
    assert {url: client.get(url).status_code for url in linked} == dict.fromkeys(linked, 200)
